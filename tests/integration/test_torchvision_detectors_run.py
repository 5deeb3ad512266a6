"""A torchvision detector through the runner on the synthetic VOC set (smoke profile), weights recorded."""

from __future__ import annotations

import pytest

from benchsuite.runner.run import RunConfig, run


@pytest.mark.slow
def test_ssdlite_smoke_run_records_metrics_and_weights(tmp_path, cache_dir, assert_records_match_schema):
    cfg = RunConfig(profile="smoke", tasks=["detection"], out=tmp_path / "run", cache_dir=cache_dir,
                    data_root=tmp_path / "no-data", pipelines=["ssdlite-mbv3"])
    (rec,) = run(cfg).records
    assert_records_match_schema(tmp_path / "run")
    assert rec["status"] == "ok", rec.get("error")
    assert rec["family"] == "deep" and rec["dataset"] == "synthetic-voc"
    assert {"map50", "ap_small", "ap_medium", "ap_large"} <= rec["metrics"].keys()
    info = rec["fit_info"]
    assert info["weights"] == "scratch" or info["weights_file"]  # scratch unless weights sit in the hub cache
    assert info["train_steps"] > 0 and "val_map50" in info
    assert rec["timing"]["seconds_per_image"] > 0
