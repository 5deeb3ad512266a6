"""The test mAP50 difference between two detection records on the same test images, with a paired bootstrap interval.

Each record's job saved its per-image evidence when the task scored the split (``jobs/<job>/evidence-test.npz``);
both are resampled with the *same* image draws (:func:`benchsuite.metrics.bootstrap.resample_weights`), so the
interval is that of the difference itself, narrower than the two records' own intervals side by side when the
two detectors succeed and fail on the same images. The records may come from one run or from two (e.g. a run
with ``--param overfeat.shift_and_stitch=false`` beside the default one); their test images must be the same, in
the same order (checked against the saved predictions' image ids).

    python tools/paired_difference.py RUN_A:overfeat RUN_B:overfeat          # A minus B
    python tools/paired_difference.py RUN:overfeat RUN:hog-svm-det --resamples 2000
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchsuite.metrics.bootstrap import (
    DetectionEvidence,
    map50_for_weights,
    percentile_interval,
    resample_weights,
)
from benchsuite.results.evidence import evidence_name, load_evidence, load_ragged
from benchsuite.results.store import RunStore


def find_record(run: Path, pipeline: str, split: str = "test", seed: int | None = None) -> dict[str, Any]:
    """The ok detection record of ``pipeline`` on ``split`` in the run folder ``run`` (the lowest seed unless
    ``seed`` is given). Raises SystemExit naming what is missing."""
    found = [r for r in RunStore(run).records() if r.get("pipeline") == pipeline and r.get("split") == split
             and r.get("status") == "ok" and (seed is None or r.get("seed") == seed)]
    if not found:
        raise SystemExit(f"{run}: no ok {split} record of {pipeline!r}")
    return min(found, key=lambda r: int(r.get("seed", 0)))


def _job_files(run: Path, record: dict[str, Any], split: str) -> tuple[DetectionEvidence, list[str]]:
    job = Path(run) / "jobs" / str(record["job_id"])
    ev = load_evidence(job / evidence_name(split))
    ids, _ = load_ragged(job / f"predictions-{split}.npz")
    return DetectionEvidence.from_arrays(dict(ev.arrays)), ids


def paired_difference(a: DetectionEvidence, b: DetectionEvidence, resamples: int = 1000, seed: int = 0
                      ) -> dict[str, Any]:
    """``{"a", "b", "difference", "interval", "a_better_share"}``: the two full-set mAP50s, their difference
    ``a - b``, its 95% percentile interval over ``resamples`` paired image resamples and the share of resamples in
    which ``a`` scores higher."""
    if a.num_images != b.num_images:
        raise ValueError(f"the records scored {a.num_images} and {b.num_images} test images; a paired difference "
                         f"needs the same images")
    full = np.ones((1, a.num_images), np.int64)
    diffs = np.concatenate([map50_for_weights(a, w) - map50_for_weights(b, w)
                            for w in resample_weights(a.num_images, resamples, seed)])
    value_a, value_b = float(map50_for_weights(a, full)[0]), float(map50_for_weights(b, full)[0])
    iv = percentile_interval(diffs)
    return {"a": value_a, "b": value_b, "difference": value_a - value_b, "interval": iv,
            "a_better_share": float(np.mean(diffs[np.isfinite(diffs)] > 0)) if np.isfinite(diffs).any() else None}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", help="RUN_FOLDER:PIPELINE (the minuend)")
    parser.add_argument("b", help="RUN_FOLDER:PIPELINE (the subtrahend)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=None, help="the records' seed (default: the lowest)")
    args = parser.parse_args(argv)
    sides = []
    for spec in (args.a, args.b):
        run, _, pipeline = spec.rpartition(":")
        if not run or not pipeline:
            raise SystemExit(f"{spec!r}: expected RUN_FOLDER:PIPELINE")
        record = find_record(Path(run), pipeline, args.split, args.seed)
        sides.append((spec, record, *_job_files(Path(run), record, args.split)))
    (sa, ra, ea, ids_a), (sb, rb, eb, ids_b) = sides
    if ids_a != ids_b:
        raise SystemExit(f"{sa} and {sb} scored different {args.split} images; a paired difference needs the same")
    out = paired_difference(ea, eb, args.resamples)
    iv = out["interval"]
    share = out["a_better_share"]
    spi = [(r.get("timing") or {}).get("seconds_per_image") for r in (ra, rb)]
    sys.stdout.write(
        f"{args.split} mAP50 over {ea.num_images} images ({args.resamples} paired resamples)\n"
        f"  A {sa}: {out['a']:.4f}  ({spi[0] if spi[0] is not None else float('nan'):.3f} s per image)\n"
        f"  B {sb}: {out['b']:.4f}  ({spi[1] if spi[1] is not None else float('nan'):.3f} s per image)\n"
        f"  A - B: {out['difference']:+.4f}, 95% interval "
        f"{'-' if iv is None else f'[{iv[0]:+.4f}, {iv[1]:+.4f}]'}; A better in "
        f"{'-' if share is None else f'{share:.0%}'} of resamples\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
