"""Runs on the new formats end to end (smoke profile): non-square grey crops through every built-in classifier,
loose XML without split files through the detectors, and the same test mAP50 from every format as from the VOC
layout the formats were written from."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from benchsuite.data import synthetic_voc
from benchsuite.data.synthetic_formats import ensure_synthetic_crops, ensure_synthetic_detection
from benchsuite.registry import list_pipelines
from benchsuite.runner.run import RunConfig, run
from tests.fixtures.convert_formats import convert_voc


@pytest.mark.slow
def test_grey_non_square_crops_through_every_classifier(tmp_path, cache_dir, assert_records_match_schema):
    spec = ensure_synthetic_crops(cache_dir)
    builtin = sorted(p.id for p in list_pipelines(task="classification") if p.distribution == "benchsuite")
    assert {"nn-l1", "hog-svm", "cnn", "cnn-fusion"} <= set(builtin)
    # one epoch for the networks: the test is about the images reaching every classifier, not what they learn
    short = {p: {"epochs": 1} for p in builtin if p in ("cnn", "cnn-fusion") or p.startswith("rf-")}
    result = run(RunConfig(profile="smoke", tasks=["classification"], datasets=[spec], pipelines=builtin,
                           out=tmp_path / "run", cache_dir=cache_dir, data_root=tmp_path / "no-data", params=short))
    assert_records_match_schema(result.run_dir)
    recs = {r["pipeline"]: r for r in result.records}
    assert sorted(recs) == builtin
    for r in recs.values():
        assert r["status"] == "ok", (r["pipeline"], r["error"])
        assert {"accuracy", "macro_f1", "balanced_accuracy"} <= set(r["metrics"])
    assert recs["hog-svm"]["fit_info"]["cells"] == [8, 16]  # 4 and 8 px on 32 x 32, scaled to 100 x 40
    assert recs["null-classifier"]["metrics"]["balanced_accuracy"] == pytest.approx(0.5)
    info = json.loads((result.run_dir / "run.json").read_text())["datasets"][0]
    assert info["options"]["image_size"] == [100, 40] and info["origin"] == "synthetic"
    assert (result.run_dir / "splits" / f"{info['name']}.split.json").is_file()
    assert "balanced acc." in (result.run_dir / "report.md").read_text()


@pytest.mark.slow
def test_loose_xml_without_split_files_through_the_detectors(tmp_path, cache_dir):
    """A representative detector of each kind of data use (box statistics, windows and negatives, proposals from
    the cache); every built-in detector and proposer ran on it by hand (the helper's note: 20 of 20 ok)."""
    spec = ensure_synthetic_detection(cache_dir, "vocxml", split=False)
    pipelines = ["mean-box", "hog-svm-det", "ss-hog-svm", "selective-search"]
    result = run(RunConfig(profile="smoke", tasks=["detection", "proposals"], datasets=[spec], pipelines=pipelines,
                           out=tmp_path / "run", cache_dir=cache_dir, data_root=tmp_path / "no-data",
                           write_report=False))
    recs = {r["pipeline"]: r for r in result.records}
    assert sorted(recs) == sorted(pipelines)
    for r in recs.values():
        assert r["status"] == "ok", (r["pipeline"], r["error"])
    info = json.loads((result.run_dir / "run.json").read_text())["datasets"][0]
    assert any("no split given" in n for n in info["notes"])


@pytest.mark.slow
def test_every_format_gives_the_voc_layouts_map50(tmp_path, cache_dir):
    """mean-box on every format; hog-svm-det and viola-jones on the YOLO pair (the one conversion that is not a copy
    of whole numbers: normalised fractions back to pixels). The samples of every format equal the VOC layout's
    exactly (tests/unit/test_box_formats.py); the helper's note has all three pipelines on every format of
    Penn-Fudan at quick size."""
    voc = synthetic_voc.ensure_synthetic_voc(cache_dir)
    specs = convert_voc(voc, tmp_path / "formats")
    every = [f"voc:{voc}", specs["coco"], specs["vocxml"], specs["voc-nodifficult"], specs["yolo"]]
    runs = [(every, ["mean-box"]), ([specs["voc-nodifficult"], specs["yolo"]], ["hog-svm-det", "viola-jones"])]
    m = {}
    for i, (datasets, pipelines) in enumerate(runs):
        result = run(RunConfig(profile="smoke", tasks=["detection"], datasets=datasets, pipelines=pipelines,
                               out=tmp_path / f"run{i}", cache_dir=cache_dir, data_root=tmp_path / "no-data",
                               write_report=False))
        names = {os.path.realpath(d["root"]): d["name"]
                 for d in json.loads((result.run_dir / "run.json").read_text())["datasets"]}
        spec_of = {names[os.path.realpath(spec.partition(":")[2])]: spec for spec in datasets}
        for r in result.records:
            assert r["status"] == "ok", (r["dataset"], r["pipeline"], r["error"])
            m[(spec_of[r["dataset"]], r["pipeline"])] = r["metrics"]
    pairs = [("mean-box", f"voc:{voc}", specs[f]) for f in ("coco", "vocxml")]
    pairs += [(p, specs["voc-nodifficult"], specs["yolo"]) for p in ("mean-box", "hog-svm-det", "viola-jones")]
    for pipeline, reference, converted in pairs:
        a, b = m[(reference, pipeline)], m[(converted, pipeline)]
        assert a["num_images"] == b["num_images"]
        assert abs(a["map50"] - b["map50"]) <= 0.001, (pipeline, converted, a["map50"], b["map50"])
    assert m[(specs["yolo"], "hog-svm-det")]["map50"] > 0.3  # a detector that learned something


def test_specs_are_formats_of_the_entry_point_group():
    from benchsuite.data.datasets import format_of_spec

    for prefix in ("imagefolder", "coco", "yolo", "vocxml"):
        fmt = format_of_spec(f"{prefix}:{Path('/x')}")
        assert fmt.prefix == prefix and fmt.opener.__module__ == f"benchsuite.data.{prefix}"
