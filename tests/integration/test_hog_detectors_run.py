"""hog-svm-det and opencv-hog-people end to end through the runner on the synthetic VOC set (smoke)."""

from __future__ import annotations

import pytest

from benchsuite.runner.run import RunConfig, run


@pytest.mark.slow
def test_hog_detectors_on_synthetic_voc(tmp_path, cache_dir, assert_records_match_schema):
    cfg = RunConfig(profile="smoke", tasks=["detection"], out=tmp_path / "run", cache_dir=cache_dir,
                    data_root=tmp_path / "no-data", pipelines=["hog-svm-det", "opencv-hog-people"])
    recs = {r["pipeline"]: r for r in run(cfg).records}
    assert_records_match_schema(tmp_path / "run")

    hog = recs["hog-svm-det"]
    assert hog["status"] == "ok", hog["error"]
    info = hog["fit_info"]
    assert info["classes_trained"] == ["car", "pedestrian", "sign"]  # one model per class
    (ch, cw), (ph, pw), (sh, sw) = (info["windows"][c] for c in ("car", "pedestrian", "sign"))
    assert cw > ch and ph > pw and sh == sw  # window shapes follow the classes' boxes
    assert all(n[0] > 0 for n in info["hard_negatives_per_round"].values())
    assert {"C", "pyramid_step", "stride", "nms_threshold", "score_threshold"} <= info.keys()
    # the synthetic objects are easy for a trained detector: far above the mean-box floor
    assert hog["metrics"]["map50"] > 0.3, hog["metrics"]["per_class"]

    ref = recs["opencv-hog-people"]
    assert ref["status"] == "ok", ref["error"]
    assert ref["fit_info"]["person_class"] == "pedestrian"
    per_class = ref["metrics"]["per_class"]
    assert per_class["car"]["num_det"] == per_class["sign"]["num_det"] == 0  # only the people class
