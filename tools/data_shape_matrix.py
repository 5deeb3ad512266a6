"""Run every detector on every data-shape variant of the synthetic VOC set and print the table.

The variants (``synthetic-voc:crop``, ``:tiny``, ``:crowd``, ``:wide``, ``:grey``; see
``benchsuite.data.synthetic_voc.VARIANTS``) are generated once into the cache folder. One run of the suite's
runner holds every (variant, detector) job; the table gives, per cell, the test mAP50 and the detection seconds
per test image (``timing.seconds_per_image``), or the failure.

    python tools/data_shape_matrix.py                       # quick profile (whole variants), all detectors
    python tools/data_shape_matrix.py --profile smoke       # the CI sizes
    python tools/data_shape_matrix.py --variants crop,tiny --pipelines hog-svm-det,mean-box --out results/dsm
    python tools/data_shape_matrix.py --variants crop --pipelines faster-rcnn-mbv3-fpn \
        --param faster-rcnn-mbv3-fpn.paste_crops=false            # the deep wrapper without crop pasting
    python tools/data_shape_matrix.py --from-run results/dsm   # the table of an existing run, nothing rerun
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from benchsuite.api import Detector
from benchsuite.data.synthetic_voc import VARIANTS

log = logging.getLogger("data_shape_matrix")

TASK = Detector.task  # the task of every detector
DETECTORS = ("mean-box", "hog-svm-det", "viola-jones", "ism", "ss-hog-svm", "rcnn", "faster-rcnn-mbv3-fpn", "overfeat")


def cells(records: Iterable[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """``{(variant, pipeline): record}`` for the test-split detection records of variant data sets."""
    out = {}
    for r in records:
        name = str(r.get("dataset", ""))
        if r.get("task") != TASK or r.get("split", "test") != "test" or not name.startswith("synthetic-voc-"):
            continue
        out[(name.removeprefix("synthetic-voc-"), str(r["pipeline"]))] = r
    return out


def cell_text(r: dict[str, Any] | None) -> str:
    """``"0.734 / 0.052 s"`` (mAP50 / seconds per image), ``"FAILED (reason)"`` or ``"-"``."""
    if r is None:
        return "-"
    if r.get("status") != "ok":
        return f"FAILED ({r.get('failure') or 'error'})"
    seconds = (r.get("timing") or {}).get("seconds_per_image")
    return f"{r['metrics']['map50']:.3f} / {seconds:.3f} s" if seconds is not None else f"{r['metrics']['map50']:.3f}"


def table(records: Iterable[dict[str, Any]], variants: Sequence[str] = tuple(VARIANTS),
          pipelines: Sequence[str] = DETECTORS) -> str:
    """A Markdown table: one row per variant, one column per detector; cells ``mAP50 / s per image``."""
    found = cells(records)
    lines = ["| variant | " + " | ".join(pipelines) + " |", "| --- |" + " --- |" * len(pipelines)]
    for v in variants:
        lines.append(f"| {v} | " + " | ".join(cell_text(found.get((v, p))) for p in pipelines) + " |")
    errors = [f"- {v} x {p}: {r.get('error')}" for (v, p), r in sorted(found.items()) if r.get("status") != "ok"]
    if errors:
        lines += ["", "failures:", *errors]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="quick", help="smoke | quick (default) | full")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated variant names")
    parser.add_argument("--pipelines", default=",".join(DETECTORS), help="comma-separated detector ids")
    parser.add_argument("--out", type=Path, default=None, help="run folder (default results/<run-id>)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="cache folder (default the suite's)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--param", action="append", default=[], metavar="PIPELINE.NAME=VALUE",
                        help="a pipeline parameter, as in benchsuite run (repeatable)")
    parser.add_argument("--from-run", type=Path, default=None, help="print the table of this run folder only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    pipelines = [p.strip() for p in args.pipelines.split(",") if p.strip()]
    if args.from_run is not None:
        from benchsuite.results.store import RunStore

        records = RunStore(args.from_run).records()
    else:
        from benchsuite.cli import parse_params
        from benchsuite.runner.run import RunConfig, run

        cfg = RunConfig(profile=args.profile, tasks=[TASK], datasets=[f"synthetic-voc:{v}" for v in variants],
                        pipelines=pipelines, out=args.out, device=args.device, jobs=args.jobs, resume=args.resume,
                        params=parse_params(args.param), write_report=False,
                        argv=["tools/data_shape_matrix.py", *(argv or sys.argv[1:])])
        if args.cache_dir is not None:
            cfg.cache_dir = args.cache_dir
        result = run(cfg)
        records = result.records
        log.info("run folder: %s", result.run_dir)
    sys.stdout.write(f"data-shape matrix ({args.profile}): test mAP50 / detection seconds per image\n\n")
    sys.stdout.write(table(records, variants, pipelines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
