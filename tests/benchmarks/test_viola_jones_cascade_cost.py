"""viola-jones's attentional cascade: Haar features evaluated per scanned window, against the target of
issue 28.3 (at most 15 on average, Viola & Jones report about 10 for faces), beside test AP50
(run on demand: ``pytest tests/benchmarks/test_viola_jones_cascade_cost.py --run-benchmarks -s``).

The detector is trained at the quick profile (its defaults) on the crop-style and ``tiny`` data-shape
variants of the synthetic VOC set (generated into a temporary cache) and, when ``BENCHSUITE_REAL_DATA``
holds ``pennfudan-voc``, on Penn-Fudan; the test split is then detected and the cost is the detector's own
tally (``fit_info.detect_stats.features_per_window``: features evaluated / windows scanned, every class,
every pyramid level). Each case prints ``features per window X (target <= 15) | test mAP50 Y (floor Z)``,
with the floor the test AP50 measured before the budget (Penn-Fudan 0.429 at commit ada40dd; none for the
variants). Minutes per case on 2 cores: training, a val scan and a test scan.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchsuite.api import Context
from benchsuite.data.datasets import open_dataset
from benchsuite.metrics.detection import score_detections
from pipelines.classical.viola_jones import ViolaJonesDetector

TARGET = 15.0
#: test AP50 before the budget (quick profile, commit ada40dd); the issue asks for no drop
FLOORS = {"pennfudan": 0.429}


def _cases() -> list[tuple[str, str]]:
    cases = [("crop", "synthetic-voc:crop"), ("tiny", "synthetic-voc:tiny")]
    real = os.environ.get("BENCHSUITE_REAL_DATA")
    if real and (Path(real) / "pennfudan-voc").is_dir():
        cases.append(("pennfudan", f"voc:{Path(real) / 'pennfudan-voc'}"))
    return cases


@pytest.mark.parametrize(("name", "spec"), _cases(), ids=[c[0] for c in _cases()])
def test_features_per_window_within_target(name, spec, tmp_path_factory, benchmark):
    root = tmp_path_factory.mktemp("data")
    ds = open_dataset(spec, root, tmp_path_factory.mktemp("cache"))
    train, val, test = ds.load("train"), ds.load("val"), ds.load("test")
    ctx = Context(seed=0)
    det = benchmark.pedantic(lambda: ViolaJonesDetector().fit(train, val, ctx), rounds=1, iterations=1)
    dets = [det.detect(image) for _, image in test.iter_images()]
    ap50 = score_detections(test, dets, test.classes, ("voc",))["map50"]
    cost = det._stats["features_per_window"]
    floor = FLOORS.get(name)
    per_stage = {k: c["val_cost_per_stage"] for k, c in ctx.info["chosen_on_val"].items() if isinstance(c, dict)}
    print(f"\n{name}: features per window {cost:.2f} (target <= {TARGET:g}) | test mAP50 {ap50:.3f}"
          + (f" (floor {floor})" if floor is not None else "") + f" | val cost per stage {per_stage}")
    benchmark.extra_info.update(features_per_window=cost, target=TARGET, test_map50=ap50, floor=floor)
    assert cost <= TARGET
    if floor is not None:
        assert ap50 >= floor - 0.01  # one image's worth of rounding
