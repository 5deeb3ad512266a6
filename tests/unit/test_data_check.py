"""`benchsuite data check SPEC`: the summary of each format, and every bad input of issue 23 named with its file
(exit 1), several at once."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchsuite.cli import main
from benchsuite.data import synthetic_voc
from benchsuite.data.format_writers import write_coco, write_imagefolder, write_vocxml, write_yolo
from tests.fixtures.convert_formats import convert_voc, voc_splits


@pytest.fixture(scope="module")
def small_voc(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("voc") / "SmallVOC"
    synthetic_voc.write_synthetic_voc(folder, {"train": 10, "val": 4, "test": 8}, seed=3)
    return folder


def _check(spec: str, tmp_path: Path, capsys) -> tuple[int, str]:
    code = main(["data", "check", spec, "--cache-dir", str(tmp_path / "cache")])
    return code, capsys.readouterr().out


def test_summary_of_each_detection_format(small_voc, tmp_path, capsys):
    specs = {"voc": f"voc:{small_voc}", **convert_voc(small_voc, tmp_path / "formats")}
    for fmt, spec in specs.items():
        code, out = _check(spec, tmp_path, capsys)
        assert code == 0, out
        prefix = spec.partition(":")[0]
        assert out.startswith(f"data set {spec} (format {prefix})")
        assert "split sizes: train 10, val 4, test 8" in out
        assert "fingerprint " in out and "COCO sizes: small (area < 32²)" in out and "aspect (w/h) min" in out
        for name in synthetic_voc.CLASSES:
            assert f"\n  {name} " in out, (fmt, out)
        assert out.rstrip().endswith("warning(s))") and "OK: a run can use it" in out


def test_summary_counts_objects_per_class(small_voc, tmp_path, capsys):
    from benchsuite.data.voc import VocDataset

    test = VocDataset(small_voc, "x").load("test")
    _, out = _check(f"voc:{small_voc}", tmp_path, capsys)
    for k, name in enumerate(test.classes):
        images = sum(1 for s in test if (s.labels == k).any())
        objects = int(sum((s.labels == k).sum() for s in test))
        row = next(line for line in out.splitlines() if line.startswith(f"  {name} "))
        assert row.split()[-4:-1] == [str(images), "/", str(objects)], row


def test_summary_of_an_image_folder(tmp_path, capsys):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (40, 100), dtype=np.uint8) for _ in range(30)]
    folder = write_imagefolder(tmp_path / "crops", images, [0] * 20 + [1] * 10, ["wide", "narrow"])
    code, out = _check(f"imagefolder:{folder}", tmp_path, capsys)
    assert code == 0
    assert "format imagefolder" in out and "pipelines see every image at 100x40" in out
    assert "all 100x40" in out and "imbalance: the largest class has 2.0x" in out
    assert "image_size: [100, 40]" in out


def test_each_bad_input_is_named_with_its_file(small_voc, tmp_path, capsys):
    splits, classes = voc_splits(small_voc)
    # a class folder with no readable image
    folder = write_imagefolder(tmp_path / "if", [np.zeros((8, 8), np.uint8)] * 4, [0, 1] * 2, ["a", "b"])
    (folder / "c").mkdir()
    (folder / "c" / "x.jpg").write_bytes(b"garbage")
    code, out = _check(f"imagefolder:{folder}", tmp_path, capsys)
    assert code == 1 and f"error: {folder / 'c'}: a class folder with no readable image" in out
    # a COCO file whose image is missing (two of them: both listed)
    coco = write_coco(splits, classes, tmp_path / "coco")
    ann = coco / "annotations" / "instances_train.json"
    doc = json.loads(ann.read_text())
    doc["images"][0]["file_name"] = "missing-1.jpg"
    doc["images"][3]["file_name"] = "missing-2.jpg"
    ann.write_text(json.dumps(doc))
    code, out = _check(f"coco:{coco}", tmp_path, capsys)
    assert code == 1 and "2 error(s):" in out
    assert f"error: {ann} (images[0]): image id {doc['images'][0]['id']}: file_name 'missing-1.jpg' not found" in out
    assert "'missing-2.jpg' not found" in out and "NOT USABLE" in out
    # YOLO: a line with 4 numbers and a coordinate outside 0..1
    yolo = write_yolo(splits, classes, tmp_path / "yolo")
    labels = sorted((yolo / "labels" / "train").glob("*.txt"))
    labels[0].write_text("0 0.5 0.5 0.2\n")
    labels[1].write_text("1 0.5 0.5 0.2 0.2\n0 0.5 1.25 0.2 0.2\n")
    code, out = _check(f"yolo:{yolo}", tmp_path, capsys)
    assert code == 1
    assert f"error: {labels[0]}:1: 4 number(s); expected 5" in out
    assert f"error: {labels[1]}:2: coordinate 1.25 outside 0..1" in out
    # loose XML: a <filename> that matches no image, and two XMLs claiming one image
    xml_folder = write_vocxml(splits, classes, tmp_path / "xml", split_folders=False)
    xmls = sorted(xml_folder.glob("*.xml"))
    xmls[0].write_text(xmls[0].read_text().replace(f"<filename>{xmls[0].stem}.jpg", "<filename>ghost.jpg"))
    xmls[0].rename(xml_folder / "ghost-annotation.xml")
    (xml_folder / "copy.xml").write_text(xmls[1].read_text())
    code, out = _check(f"vocxml:{xml_folder}", tmp_path, capsys)
    assert code == 1
    assert f"error: {xml_folder / 'ghost-annotation.xml'}: <filename> 'ghost.jpg' matches no image" in out
    assert f"claims image {xmls[1].stem}.jpg, which " in out and "copy.xml" in out


def test_a_spec_that_cannot_open_exits_1_and_an_unknown_format_2(tmp_path, capsys):
    code, out = _check(f"vocxml:{tmp_path / 'absent'}", tmp_path, capsys)
    assert code == 1 and "cannot be opened:" in out and "no such folder" in out
    assert main(["data", "check", "nosuchformat:x"]) == 2
