"""viola-jones (trained by the suite) and opencv-haar (pretrained reference) end to end on synthetic VOC."""

from __future__ import annotations

import pytest

from benchsuite.runner.run import RunConfig, run


@pytest.mark.slow
def test_viola_jones_and_opencv_haar_on_synthetic_voc(tmp_path, cache_dir, assert_records_match_schema):
    cfg = RunConfig(profile="smoke", tasks=["detection"], out=tmp_path / "run", cache_dir=cache_dir,
                    data_root=tmp_path / "no-data", pipelines=["viola-jones", "opencv-haar"])
    recs = {r["pipeline"]: r for r in run(cfg).records}
    assert_records_match_schema(tmp_path / "run")
    vj, cv = recs["viola-jones"], recs["opencv-haar"]
    assert vj["status"] == "ok", vj["error"]
    assert cv["status"] == "ok", cv["error"]
    assert cv["pretrained_reference"] and not vj["pretrained_reference"]

    info = vj["fit_info"]
    assert set(info["stages"]) == {"car", "pedestrian", "sign"}
    for name, n in info["stages"].items():
        assert n >= 1 and len(info["features_per_stage"][name]) == n
        h, w = info["classes"][name]["window_hw"]
        assert {"car": w > h, "pedestrian": h > w, "sign": h == w}[name]  # window shape follows the boxes
    stats = info["detect_stats"]
    assert stats["images"] > 0 and stats["windows"] > 0
    assert 0 < stats["features_per_window"] < sum(sum(f) for f in info["features_per_stage"].values())
    assert vj["metrics"]["map50"] > 0

    assert cv["fit_info"]["cascades"] == {"pedestrian": "haarcascade_fullbody.xml"}
    assert cv["fit_info"]["classes_without_cascade"] == ["car", "sign"]
    assert cv["fit_info"]["detect_stats"]["images"] > 0
    assert cv["metrics"]["per_class"]["car"]["num_det"] == 0
