"""Run every detector on every data-shape variant of the synthetic VOC set, and every segmenter on every variant of
the synthetic segmentation set, and print the tables.

The detection variants (``synthetic-voc:crop``, ``:tiny``, ``:crowd``, ``:wide``, ``:grey``, ``:faces``; see
``benchsuite.data.synthetic_voc.VARIANTS``) and the segmentation variants (``synthetic-voc:default``, ``:tiny``,
``:thin``, ``:grey``; ``benchsuite.data.synthetic_segmentation.VARIANTS``, other sets under the same names: a task
that needs masks opens the segmentation set) are generated once into the cache folder. One run of the suite's runner
holds every (variant, pipeline) job; each table gives, per cell, the test split's primary metric (mAP50, mean IU)
and the prediction seconds per test image (``timing.seconds_per_image``), or the failure.

    python tools/data_shape_matrix.py                       # quick profile (whole variants), both tasks
    python tools/data_shape_matrix.py --profile smoke       # the CI sizes
    python tools/data_shape_matrix.py --tasks segmentation --profile smoke
    python tools/data_shape_matrix.py --variants crop,tiny --pipelines hog-svm-det,mean-box --out results/dsm
    python tools/data_shape_matrix.py --variants crop --pipelines faster-rcnn-mbv3-fpn \
        --param faster-rcnn-mbv3-fpn.paste_crops=false            # the deep wrapper without crop pasting
    python tools/data_shape_matrix.py --from-run results/dsm   # the tables of an existing run, nothing rerun
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchsuite.api import Detector
from benchsuite.data import synthetic_segmentation, synthetic_voc
from benchsuite.tasks.segmentation import Segmenter

log = logging.getLogger("data_shape_matrix")

DETECTORS = ("mean-box", "hog-svm-det", "viola-jones", "ism", "ss-hog-svm", "rcnn", "faster-rcnn-mbv3-fpn",
             "overfeat")
SEGMENTERS = ("majority-class", "superpixel-svm", "fcn-32s", "fcn-16s", "fcn-8s", "unet", "dilated")


@dataclass(frozen=True)
class Matrix:
    """One task's matrix: its variants (rows), pipelines (columns) and the metric of its cells."""

    task: str
    variants: tuple[str, ...]
    pipelines: tuple[str, ...]
    metric: str
    title: str


MATRICES = {m.task: m for m in (
    Matrix(Detector.task, tuple(synthetic_voc.VARIANTS), DETECTORS, "map50", "test mAP50"),
    Matrix(Segmenter.task, tuple(synthetic_segmentation.VARIANTS), SEGMENTERS, "mean_iou", "test mean IU"),
)}


def cells(records: Iterable[dict[str, Any]], task: str = Detector.task) -> dict[tuple[str, str], dict[str, Any]]:
    """``{(variant, pipeline): record}`` for the test-split records of ``task`` on variant data sets."""
    out = {}
    for r in records:
        name = str(r.get("dataset", ""))
        if r.get("task") != task or r.get("split", "test") != "test" or not name.startswith("synthetic-voc-"):
            continue
        out[(name.removeprefix("synthetic-voc-"), str(r["pipeline"]))] = r
    return out


def cell_text(r: dict[str, Any] | None, metric: str = "map50") -> str:
    """``"0.734 / 0.052 s"`` (metric / seconds per image), ``"FAILED (reason)"`` or ``"-"``."""
    if r is None:
        return "-"
    if r.get("status") != "ok":
        return f"FAILED ({r.get('failure') or 'error'})"
    value = (r.get("metrics") or {}).get(metric)
    shown = "n/a" if value is None else f"{value:.3f}"
    seconds = (r.get("timing") or {}).get("seconds_per_image")
    return f"{shown} / {seconds:.3f} s" if seconds is not None else shown


def table(records: Iterable[dict[str, Any]], variants: Sequence[str] = tuple(synthetic_voc.VARIANTS),
          pipelines: Sequence[str] = DETECTORS, task: str = Detector.task, metric: str = "map50") -> str:
    """A Markdown table: one row per variant, one column per pipeline; cells ``metric / s per image``."""
    found = cells(records, task)
    lines = ["| variant | " + " | ".join(pipelines) + " |", "| --- |" + " --- |" * len(pipelines)]
    for v in variants:
        lines.append(f"| {v} | " + " | ".join(cell_text(found.get((v, p)), metric) for p in pipelines) + " |")
    errors = [f"- {v} x {p}: {r.get('error')}" for (v, p), r in sorted(found.items()) if r.get("status") != "ok"]
    if errors:
        lines += ["", "failures:", *errors]
    return "\n".join(lines)


def chosen(matrix: Matrix, variants: Sequence[str] | None, pipelines: Sequence[str] | None) -> Matrix:
    """``matrix`` narrowed to the given variants and pipelines (those of other tasks are ignored)."""
    vs = tuple(v for v in variants if v in matrix.variants) if variants else matrix.variants
    ps = tuple(p for p in pipelines if _task_of(p) == matrix.task) if pipelines else matrix.pipelines
    return Matrix(matrix.task, vs, ps, matrix.metric, matrix.title)


def _task_of(pipeline: str) -> str | None:
    from benchsuite.registry import discover

    info = discover().get(pipeline)
    return info.task if info is not None and info.ok else None


def run_matrices(matrices: Sequence[Matrix], profile: str, **config: Any) -> list[dict[str, Any]]:
    """One run of the suite's runner over every (variant, pipeline) job of ``matrices``; returns its records.
    ``config``: further :class:`benchsuite.runner.run.RunConfig` fields (``out``, ``cache_dir``, ``jobs``, ...)."""
    from benchsuite.runner.run import RunConfig, run

    specs = list(dict.fromkeys(f"synthetic-voc:{v}" for m in matrices for v in m.variants))
    pipelines = list(dict.fromkeys(p for m in matrices for p in m.pipelines))
    cfg = RunConfig(profile=profile, tasks=[m.task for m in matrices], datasets=specs, pipelines=pipelines,
                    write_report=False, **config)
    result = run(cfg)
    log.info("run folder: %s", result.run_dir)
    return result.records


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="quick", help="smoke | quick (default) | full")
    parser.add_argument("--tasks", default=",".join(MATRICES), help="comma-separated: detection, segmentation")
    parser.add_argument("--variants", default="", help="comma-separated variant names (default: every variant)")
    parser.add_argument("--pipelines", default="", help="comma-separated pipeline ids (default: the tasks' lists)")
    parser.add_argument("--out", type=Path, default=None, help="run folder (default results/<run-id>)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="cache folder (default the suite's)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--param", action="append", default=[], metavar="PIPELINE.NAME=VALUE",
                        help="a pipeline parameter, as in benchsuite run (repeatable)")
    parser.add_argument("--from-run", type=Path, default=None, help="print the tables of this run folder only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    split = lambda text: [x.strip() for x in text.split(",") if x.strip()]  # noqa: E731
    unknown = [t for t in split(args.tasks) if t not in MATRICES]
    if unknown:
        parser.error(f"unknown task(s) {unknown}; expected some of {list(MATRICES)}")
    matrices = [chosen(MATRICES[t], split(args.variants), split(args.pipelines)) for t in split(args.tasks)]
    matrices = [m for m in matrices if m.variants and m.pipelines]
    if args.from_run is not None:
        from benchsuite.results.store import RunStore

        records = RunStore(args.from_run).records()
    else:
        from benchsuite.cli import parse_params

        extra: dict[str, Any] = {"cache_dir": args.cache_dir} if args.cache_dir is not None else {}
        records = run_matrices(matrices, args.profile, out=args.out, device=args.device, jobs=args.jobs,
                               resume=args.resume, params=parse_params(args.param),
                               argv=["tools/data_shape_matrix.py", *(argv or sys.argv[1:])], **extra)
    for m in matrices:
        sys.stdout.write(f"\ndata-shape matrix, {m.task} ({args.profile}): {m.title} / seconds per image\n\n")
        sys.stdout.write(table(records, m.variants, m.pipelines, m.task, m.metric) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
