"""A data-set format is one entry point (``benchsuite.datasets``), like a pipeline or a task: a test-only format
installed as a third-party distribution (tests/fixtures/toy_format.py, ``format_dist``) opens in this process and in
the runner's workers, and serves every task whose needs its annotations meet. Annotations decide which tasks run on
a data set: a VOC folder provides boxes, and masks when it has ``SegmentationClass/``."""

from __future__ import annotations

import os

import pytest

from benchsuite.data.datasets import BOXES, FORMATS, IMAGE_LABELS, MASKS, open_dataset, spec_annotations
from benchsuite.errors import ConfigError
from benchsuite.tasks.registry import get_task


def test_the_suites_formats_are_entry_points():
    assert set(FORMATS.names()) == {"cifar10", "voc2007", "voc2012", "voc", "synthetic-voc", "imagefolder", "coco",
                                    "yolo", "vocxml", "study"}
    assert spec_annotations("cifar10") == {IMAGE_LABELS} and spec_annotations("synthetic-voc:crop") == {BOXES}
    assert spec_annotations("imagefolder:x") == {IMAGE_LABELS}
    assert spec_annotations("coco:x.json") == spec_annotations("yolo:x") == spec_annotations("vocxml:x") == {BOXES}
    with pytest.raises(ConfigError, match=r"unknown data set 'imagenet'; known data sets: .*voc:PATH"):
        open_dataset("imagenet", ".", ".")


def test_a_plugin_format_opens_here_and_is_listed(format_dist, cache_dir, capsys):
    ds = open_dataset("toy-boxes", cache_dir / "no-data", cache_dir)
    assert ds.info.name == "toy-boxes" and ds.info.annotations == [BOXES]
    assert ds.info.split_counts["test"] == 6 and len(ds.load("train")) == 10
    assert get_task("detection").runs_on("toy-boxes") and not get_task("classification").runs_on("toy-boxes")
    broken = FORMATS.discover()["toy-broken"]
    assert not broken.ok and "is not a data set format" in broken.error
    with pytest.raises(ConfigError, match=r"data set 'toy-broken' \(toy_format:open_undecorated, from "
                                          r"benchsuite-toy-format\) cannot be used: .*dataset_format"):
        open_dataset("toy-broken", ".", cache_dir)
    from benchsuite.cli import main

    assert main(["list", "--strict"]) == 1
    assert "broken data set format plugin toy-broken (toy_format:open_undecorated" in capsys.readouterr().err


def test_a_plugin_format_runs_through_the_runner_and_its_workers(format_dist, tmp_path, cache_dir):
    from benchsuite.runner.run import RunConfig, run

    result = run(RunConfig(profile="smoke", datasets=["toy-boxes"], pipelines=["null-detector", "null-proposer"],
                           out=tmp_path / "run", cache_dir=cache_dir, data_root=tmp_path / "no-data",
                           write_report=False))
    got = {(r["task"], r["dataset"], r["status"]) for r in result.records}
    assert got == {("detection", "toy-boxes", "ok"), ("proposals", "toy-boxes", "ok")}, result.records


def test_annotations_follow_the_folder_and_tasks_follow_their_needs(tmp_path):
    folder = tmp_path / "voc"
    (folder / "JPEGImages").mkdir(parents=True)
    assert spec_annotations(f"voc:{folder}") == {BOXES}
    (folder / "SegmentationClass").mkdir()
    assert spec_annotations(f"voc:{folder}") == {BOXES, MASKS}
    detection = get_task("detection")
    assert detection.runs_on(f"voc:{folder}")  # masks besides the boxes do not stop a task that needs boxes

    class NeedsMasks(type(detection)):
        needs = frozenset({MASKS})

    assert NeedsMasks().runs_on(f"voc:{folder}") and not NeedsMasks().runs_on("synthetic-voc:crop")
    assert NeedsMasks().runs_on("synthetic-voc")  # the synthetic segmentation stand-in
    assert not NeedsMasks().runs_on("cifar10")


@pytest.mark.realdata
def test_penn_fudan_provides_boxes_and_masks():
    root = os.environ.get("BENCHSUITE_REAL_DATA")
    if not root:
        pytest.skip("BENCHSUITE_REAL_DATA is not set")
    spec = f"voc:{root}/pennfudan-voc"
    assert spec_annotations(spec) == {BOXES, MASKS} and get_task("detection").runs_on(spec)
