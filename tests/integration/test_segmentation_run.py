"""The segmentation task end to end at smoke size: one spec serves detection (its boxes) and segmentation (its masks)
as two data sets, a resumed run keeps both, and the report, mask gallery and FCN study table included, renders from
the run folder alone (the data and the cache out of reach)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from benchsuite.data.datasets import BOXES, MASKS
from benchsuite.report.markdown import write_report
from benchsuite.report.model import build_model
from benchsuite.runner.run import RunConfig, run

SEGMENTERS = ["majority-class", "superpixel-svm", "fcn-32s", "fcn-8s"]
PARAMS = {"fcn-32s": {"steps": 10}, "fcn-8s": {"steps": 10}}


def _config(out: Path, cache: Path, **extra) -> RunConfig:
    return RunConfig(profile="smoke", tasks=["detection", "segmentation"], datasets=["synthetic-voc"],
                     pipelines=["null-detector", *SEGMENTERS], params=PARAMS, out=out, cache_dir=cache,
                     data_root=out.parent / "no-data", device="cpu", **extra)


@pytest.fixture(scope="module")
def segmentation_run(tmp_path_factory, cache_dir) -> tuple[Path, Path]:
    """A smoke run of the detection and segmentation tasks on ``synthetic-voc``, its data in a cache of its own:
    ``(run_dir, cache)``."""
    root = tmp_path_factory.mktemp("segmentation-run")
    cache = root / "cache"
    shutil.copytree(cache_dir, cache)
    result = run(_config(root / "run", cache))
    assert all(r["status"] == "ok" for r in result.records), [r.get("error") for r in result.records]
    return result.run_dir, cache


@pytest.mark.slow
def test_one_spec_is_two_data_sets_and_a_resumed_run_keeps_both(segmentation_run):
    run_dir, cache = segmentation_run
    datasets = json.loads((run_dir / "run.json").read_text())["datasets"]
    by_annotations = {tuple(d["annotations"]): d for d in datasets}
    assert set(by_annotations) == {(BOXES,), (MASKS,)}
    boxes, masks = by_annotations[(BOXES,)], by_annotations[(MASKS,)]
    assert boxes["name"] == masks["name"] == "synthetic-voc" and boxes["fingerprint"] != masks["fingerprint"]
    assert masks["classes"][0] == "background" and "background" not in boxes["classes"]
    assert {p.name for p in (run_dir / "splits").iterdir()} == {"synthetic-voc.split.json",
                                                                "synthetic-voc.segmentation.split.json"}
    records = [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines()]
    fingerprints = {r["task"]: r["dataset_fingerprint"] for r in records}
    assert fingerprints == {"detection": boxes["fingerprint"], "segmentation": masks["fingerprint"]}
    floors = {r["pipeline"]: r["metrics"]["floor"] for r in records if r["task"] == "segmentation"}
    assert set(floors) == set(SEGMENTERS) and all(f["pipeline"] == "majority-class" for f in floors.values())
    assert floors["majority-class"]["is_floor"] and not floors["majority-class"]["non_result"]
    assert all(f["mean_iou"] == floors["majority-class"]["mean_iou"] for f in floors.values())  # one floor
    again = run(_config(run_dir, cache, resume=True, write_report=False))  # nothing to rerun, nothing refused
    assert len(again.records) == len(records)
    assert len(json.loads((run_dir / "run.json").read_text())["datasets"]) == 2


@pytest.mark.slow
def test_the_report_and_its_mask_gallery_render_from_the_run_folder_alone(segmentation_run, tmp_path, monkeypatch):
    run_dir, cache = segmentation_run
    copy = tmp_path / "elsewhere" / run_dir.name
    shutil.copytree(run_dir, copy)
    for stale in ("report_files", "report.md", "report.html"):
        path = copy / stale
        if path.exists():
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    cache.rename(cache.with_name("cache-out-of-reach"))

    def no_data(*args, **kwargs):
        raise AssertionError("the report reopened a data set")

    monkeypatch.setattr("benchsuite.data.datasets.open_dataset", no_data)
    paths = write_report(copy)
    md = paths.markdown.read_text()
    assert "segmentation, synthetic-voc (test)**, mean IU" in md  # the task's headline
    assert "## FCN skip fusion" in md and "Mask gallery" in md and "IoU smallest third" in md
    figures = {p.name for p in (copy / "report_files").glob("*.png")}
    slug = "segmentation-synthetic-voc-test"
    assert {f"{slug}-masks-images.png", f"{slug}-masks-truth.png", f"{slug}-per-class.png"} <= figures
    assert {f"{slug}-masks-{p}.png" for p in SEGMENTERS} <= figures
    html = paths.html.read_text()
    assert html.count("data:image/png;base64,") >= len(figures)
    rows = {r.pipeline: r for r in build_model(copy).rows() if r.task == "segmentation"}
    for key in ("mean_iou", "boundary_f1"):
        est = rows["superpixel-svm"].estimates[key]
        assert est.has_interval and est.lo <= est.value <= est.hi, (key, est)
