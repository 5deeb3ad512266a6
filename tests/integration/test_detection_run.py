"""Detection and proposal tasks end to end on the synthetic VOC set (and on Penn-Fudan when present)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from benchsuite.runner.run import RunConfig, run

DETECTION_KEYS = {"map50", "map50_voc07", "coco_ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large",
                  "per_class", "pr_curves"}
PROPOSAL_KEYS = {f"recall_at_{n}_iou{t}" for n in (100, 500, 1000, 2000) for t in (50, 70)} | {
    "mabo", "proposals_per_image", "recall_curve"}


@pytest.mark.slow
def test_reference_pipelines_and_bad_detectors_on_synthetic_voc(tmp_path, cache_dir, plugin_dist,
                                                               assert_records_match_schema):
    cfg = RunConfig(profile="smoke", tasks=["detection", "proposals"], out=tmp_path / "run", cache_dir=cache_dir,
                    data_root=tmp_path / "no-data",
                    pipelines=["mean-box", "sliding-boxes", "test-det-inverted", "test-det-spilling"])
    result = run(cfg)
    recs = {r["pipeline"]: r for r in result.records}
    assert_records_match_schema(result.run_dir)
    assert set(recs) == {"mean-box", "sliding-boxes", "test-det-inverted", "test-det-spilling"}
    for r in recs.values():
        assert r["dataset"] == "synthetic-voc" and r["data_origin"] == "synthetic"
        assert r["split_fingerprint"]

    box = recs["mean-box"]
    assert box["status"] == "ok", box["error"]
    assert box["metrics"].keys() >= DETECTION_KEYS
    assert set(box["metrics"]["per_class"]) == {"car", "pedestrian", "sign"}
    assert box["metrics"]["num_images"] == 16  # the smoke cap on test images
    assert box["timing"]["seconds_per_image"] > 0 and box["timing"]["latency_ms_p50"] > 0
    export = result.run_dir / box["artifacts"]["voc_results"]
    expected_files = [f"comp4_det_test_{c}.txt" for c in ("car", "pedestrian", "sign")]
    assert sorted(p.name for p in export.iterdir()) == expected_files
    coco = json.loads((result.run_dir / box["artifacts"]["coco_detections"]).read_text())
    assert len(coco) == box["output"]["detections"]

    props = recs["sliding-boxes"]
    assert props["status"] == "ok", props["error"]
    assert props["metrics"].keys() >= PROPOSAL_KEYS
    m = props["metrics"]
    assert m["recall_at_100_iou50"] <= m["recall_at_2000_iou50"]
    assert m["recall_at_2000_iou70"] <= m["recall_at_2000_iou50"]
    assert 0 < m["mabo"] <= 1

    bad = recs["test-det-inverted"]
    assert (bad["status"], bad["failure"]) == ("failed", "invalid-output")
    assert "x2 <= x1" in bad["error"]
    spill = recs["test-det-spilling"]
    assert spill["status"] == "ok"
    assert spill["output"]["boxes_clipped"] == 16 and spill["output"]["boxes_dropped_outside_image"] == 16

    report = (result.run_dir / "report.md").read_text()
    assert "## detection: synthetic-voc, test split" in report and "## proposals: synthetic-voc" in report


@pytest.mark.realdata
@pytest.mark.skipif(not os.environ.get("BENCHSUITE_REAL_DATA"), reason="BENCHSUITE_REAL_DATA not set")
def test_reference_pipelines_on_pennfudan(tmp_path, cache_dir):
    folder = Path(os.environ["BENCHSUITE_REAL_DATA"]) / "pennfudan-voc" / "PennFudan"
    cfg = RunConfig(profile="quick", tasks=["detection", "proposals"], datasets=[f"voc:{folder}"],
                    pipelines=["mean-box", "sliding-boxes"], out=tmp_path / "run", cache_dir=cache_dir)
    recs = {r["pipeline"]: r for r in run(cfg).records}
    box = recs["mean-box"]
    assert box["status"] == "ok" and box["dataset"] == "PennFudan" and box["metrics"]["num_images"] == 70
    assert "lamr" in box["metrics"]  # one class: the pedestrian-benchmark measure applies
    assert 0.0 < box["metrics"]["map50"] < 0.5  # a floor, far below any real detector
    assert recs["sliding-boxes"]["metrics"]["recall_at_2000_iou50"] > 0.8
