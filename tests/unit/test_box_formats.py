"""coco:, yolo: and vocxml: readers: the same samples as the VOC layout they were written from, exact box
conversions, splits, and every bad input as one line naming its file (and paths confined to the data set)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from benchsuite.data import synthetic_voc
from benchsuite.data.datasets import open_dataset
from benchsuite.data.format_writers import write_coco, write_vocxml, write_yolo, yolo_line
from benchsuite.data.voc import VocDataset
from benchsuite.data.yolo import parse_label_line
from benchsuite.errors import DataError
from tests.fixtures.convert_formats import convert_voc, voc_splits

COUNTS = {"train": 10, "val": 4, "test": 8}


@pytest.fixture(scope="module")
def small_voc(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("voc") / "SmallVOC"
    synthetic_voc.write_synthetic_voc(folder, COUNTS, seed=3)
    return folder


@pytest.fixture(scope="module")
def converted(small_voc, tmp_path_factory) -> dict[str, str]:
    return convert_voc(small_voc, tmp_path_factory.mktemp("formats"), category_ids=[2, 7, 40])


def _open(spec: str, tmp: Path):
    return open_dataset(spec, Path("."), tmp)


@pytest.mark.parametrize("fmt", ["coco", "yolo", "vocxml"])
def test_each_format_reads_back_the_voc_samples(fmt, small_voc, converted, tmp_path):
    reference = _open(converted["voc-nodifficult"] if fmt == "yolo" else f"voc:{small_voc}", tmp_path)
    ds = _open(converted[fmt], tmp_path)
    assert ds.info.classes == list(reference.info.classes)
    assert ds.info.split_counts == reference.info.split_counts
    for split in ("train", "val", "test", "trainval"):
        a, b = reference.load(split), ds.load(split)
        assert sorted(a.image_ids) == b.image_ids
        by_id = {s.image_id: s for s in a}
        for s in b:
            r = by_id[s.image_id]
            assert (s.width, s.height) == (r.width, r.height)
            np.testing.assert_array_equal(s.boxes, r.boxes)  # exact, float32
            np.testing.assert_array_equal(s.labels, r.labels)
            np.testing.assert_array_equal(s.difficult, r.difficult)


def test_coco_boxes_agree_with_pycocotools(converted):
    from pycocotools.coco import COCO

    folder = Path(converted["coco"].partition(":")[2])
    ds = _open(converted["coco"], folder)
    ours = {s.image_id: s for s in ds.load("test")}
    oracle = COCO(str(folder / "annotations" / "instances_test.json"))
    names = {c["id"]: c["name"] for c in oracle.loadCats(oracle.getCatIds())}
    assert sorted(names) == [2, 7, 40]  # non-contiguous ids
    for img in oracle.loadImgs(oracle.getImgIds()):
        anns = oracle.loadAnns(oracle.getAnnIds(imgIds=img["id"]))
        sample = ours[Path(img["file_name"]).stem]
        want = sorted((names[a["category_id"]], a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2],
                       a["bbox"][1] + a["bbox"][3], bool(a["iscrowd"])) for a in anns)
        got = sorted((ds.info.classes[k], *map(float, b), bool(d))
                     for b, k, d in zip(sample.boxes, sample.labels, sample.difficult))
        assert got == pytest.approx(want)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 4000), st.integers(1, 4000), st.data())
def test_yolo_round_trip(width, height, data):
    """Coordinates on a 1/256-pixel grid (what annotation tools write) come back as the same float32; any
    coordinate within 1e-6 px."""
    def edges(size: int) -> tuple[float, float]:
        a = data.draw(st.integers(0, size * 256 - 1))
        b = data.draw(st.integers(a + 1, size * 256))
        return a / 256, b / 256

    (x1, x2), (y1, y2) = edges(width), edges(height)
    cls, box = parse_label_line(yolo_line(3, [x1, y1, x2, y2], width, height), 5)
    pixels = np.array(box) * [width, height, width, height]
    assert cls == 3
    np.testing.assert_array_equal(pixels.astype(np.float32), np.array([x1, y1, x2, y2], np.float32))
    fx1 = data.draw(st.floats(0, width - 0.5))
    fx2 = data.draw(st.floats(fx1 + 0.25, width))
    _, box = parse_label_line(yolo_line(0, [fx1, y1, fx2, y2], width, height), 1)
    np.testing.assert_allclose(np.array(box) * [width, height, width, height], [fx1, y1, fx2, y2], rtol=0, atol=1e-6)


def test_yolo_pixel_convention():
    """A box over pixel columns 10..19 and rows 0..4 of a 100 x 50 image: cx 15/100, w 10/100, cy 2.5/50, h 5/50."""
    assert yolo_line(0, [10, 0, 20, 5], 100, 50) == "0 0.15 0.05 0.1 0.1"
    _, box = parse_label_line("1 0.5 0.5 1 1", 2)
    assert box == (0.0, 0.0, 1.0, 1.0)
    _, poly = parse_label_line("0 0.1 0.2 0.4 0.2 0.3 0.6", 1)
    assert poly == (0.1, 0.2, 0.4, 0.6)


@pytest.mark.parametrize(("line", "message"), [
    ("0 0.5 0.5 0.2", "4 number(s); expected 5"),
    ("0 0.5 1.5 0.2 0.2", "coordinate 1.5 outside 0..1"),
    ("0 -0.1 0.5 0.2 0.2", "coordinate -0.1 outside 0..1"),
    ("3 0.5 0.5 0.2 0.2", "class '3' outside 0..1"),
    ("0 nan 0.5 0.2 0.2", "not finite"),
    ("0 0.5 0.5 0.2 0.2 0.9", "6 number(s)"),
    ("x 0.5 0.5 0.2 0.2", "not a number"),
])
def test_yolo_bad_lines_name_file_and_line(line, message, small_voc, tmp_path):
    splits, classes = voc_splits(small_voc)
    folder = write_yolo(splits, classes[:2] if "class '3'" in message else classes, tmp_path / "y")
    label = sorted((folder / "labels" / "train").glob("*.txt"))[0]
    label.write_text("0 0.5 0.5 0.1 0.1\n" + line + "\n")
    with pytest.raises(DataError) as err:
        _open(f"yolo:{folder}", tmp_path)
    text = str(err.value)
    assert f"labels/train/{label.name}:2: " in text and message in text and "\n" not in text


def test_yolo_without_data_yaml_draws_a_split_and_empty_labels_are_background(small_voc, tmp_path):
    splits, classes = voc_splits(small_voc)
    folder = write_yolo({"": [s for v in splits.values() for s in v]}, classes, tmp_path / "y", data_yaml=False)
    first = sorted((folder / "labels").glob("*.txt"))[0]
    first.unlink()  # no label file: a background image
    ds = _open(f"yolo:{folder}", tmp_path)
    assert sum(ds.info.split_counts[s] for s in ("train", "val", "test")) == sum(COUNTS.values())
    samples = {s.image_id: s for split in ("train", "val", "test") for s in ds.load(split)}
    assert len(samples[first.stem]) == 0


def test_yolo_data_yaml_paths_stay_inside(small_voc, tmp_path):
    splits, classes = voc_splits(small_voc)
    folder = write_yolo(splits, classes, tmp_path / "y")
    outside = tmp_path / "outside" / "images"
    outside.mkdir(parents=True)
    for test_path in ("../outside/images", str(outside)):
        (folder / "data.yaml").write_text(f"train: images/train\nval: images/val\ntest: {test_path}\n"
                                          f"names: {json.dumps(list(classes))}\n")
        with pytest.raises(DataError, match=r"leads outside|absolute path"):
            _open(f"yolo:{folder}", tmp_path)
    os.symlink(outside, folder / "images" / "escape")
    (folder / "data.yaml").write_text(f"train: images/train\ntest: images/escape\nnames: {json.dumps(list(classes))}\n")
    with pytest.raises(DataError, match="leads outside"):
        _open(f"yolo:{folder}", tmp_path)
    # Ultralytics's rule: a ../ path that does not exist is tried without it (Roboflow's data.yaml)
    (folder / "data.yaml").write_text("train: ../images/train\nval: ../images/val\ntest: ../images/test\npath: /etc\n"
                                      f"names: {json.dumps(list(classes))}\n")
    ds = _open(f"yolo:{folder}", tmp_path)
    assert ds.info.split_counts["test"] == COUNTS["test"]
    assert any("data.yaml path ignored" in n for n in ds.info.notes)


def test_coco_bad_input_names_the_file(small_voc, tmp_path):
    splits, classes = voc_splits(small_voc)
    folder = write_coco(splits, classes, tmp_path / "c")
    path = folder / "annotations" / "instances_test.json"
    doc = json.loads(path.read_text())
    doc["images"][0]["file_name"] = "gone.jpg"
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError) as err:
        _open(f"coco:{folder}", tmp_path)
    assert str(err.value).startswith(f"{path} (images[0]): image id") and "'gone.jpg' not found" in str(err.value)
    for name, match in (("../../escape.jpg", "leads outside"), ("/etc/passwd", "absolute path")):
        doc["images"][0]["file_name"] = name
        path.write_text(json.dumps(doc))
        with pytest.raises(DataError, match=match):
            _open(f"coco:{folder}", tmp_path)
    doc["images"][0]["file_name"] = splits["test"][0].path.name
    doc["annotations"][0]["bbox"] = [1, 2, float("nan"), 4]
    doc["annotations"][1]["category_id"] = 99
    doc["annotations"][2]["iscrowd"] = 2
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError) as err:
        _open(f"coco:{folder}", tmp_path)
    assert "(annotations[0]): bbox" in str(err.value) and "and 2 more problem(s)" in str(err.value)


def test_coco_two_entries_claiming_one_image_and_a_fifo(small_voc, tmp_path):
    splits, classes = voc_splits(small_voc)
    folder = write_coco(splits, classes, tmp_path / "c")
    path = folder / "annotations" / "instances_val.json"
    doc = json.loads(path.read_text())
    doc["images"][1]["file_name"] = doc["images"][0]["file_name"]
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError, match=r"which .* claims too"):
        _open(f"coco:{folder}", tmp_path)
    doc["images"][1]["file_name"] = "fifo.jpg"
    path.write_text(json.dumps(doc))
    os.mkfifo(folder / "images" / "fifo.jpg")
    signal.alarm(20)
    try:
        with pytest.raises(DataError, match="a FIFO"):
            _open(f"coco:{folder}", tmp_path)
    finally:
        signal.alarm(0)


def test_coco_size_limit_and_not_json(small_voc, tmp_path, monkeypatch):
    splits, classes = voc_splits(small_voc)
    path = write_coco(splits, classes, tmp_path / "c", one_file=True)
    monkeypatch.setattr("benchsuite.data.coco.MAX_JSON_BYTES", 100)
    with pytest.raises(DataError, match="over the 100-byte limit"):
        _open(f"coco:{path}", tmp_path)
    monkeypatch.undo()
    path.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        _open(f"coco:{path}", tmp_path)


def test_coco_one_file_split_by_seed_crowd_and_background(small_voc, tmp_path):
    splits, classes = voc_splits(small_voc)
    path = write_coco(splits, classes, tmp_path / "c", one_file=True)
    doc = json.loads(path.read_text())
    doc["annotations"] = [a for a in doc["annotations"] if a["image_id"] != 1]  # image 1: background
    doc["annotations"][0]["iscrowd"] = 1
    crowd_image = doc["annotations"][0]["image_id"]
    path.write_text(json.dumps(doc))
    ds = _open(f"coco:{path}", tmp_path)
    counts = ds.info.split_counts
    assert counts["test"] == round(0.2 * sum(COUNTS.values())) and counts["trainval"] + counts["test"] == 22
    samples = {s.image_id: s for split in ("train", "val", "test") for s in ds.load(split)}
    names = {img["id"]: Path(img["file_name"]).stem for img in doc["images"]}
    assert len(samples[names[1]]) == 0
    assert samples[names[crowd_image]].difficult.any()
    val = _open(f"coco:{path}?test_fraction=0.5", tmp_path)
    assert val.info.split_counts["test"] == 11


def test_vocxml_matching_and_bad_input(small_voc, tmp_path):
    splits, classes = voc_splits(small_voc)
    folder = write_vocxml(splits, classes, tmp_path / "x", split_folders=False, beside=True)
    ds = _open(f"vocxml:{folder}", tmp_path)  # no split files: a seeded split
    assert ds.info.split_counts["test"] == round(0.2 * sum(COUNTS.values()))
    xml = sorted((folder / "annotations").glob("*.xml"))[0]
    text = xml.read_text()
    # <filename> naming no image, but the XML's stem matches one: matched by the stem
    xml.write_text(text.replace(f"<filename>{xml.stem}.jpg", "<filename>renamed.jpg"))
    assert _open(f"vocxml:{folder}", tmp_path).info.split_counts == ds.info.split_counts
    # nothing matches
    (folder / "annotations" / "other.xml").write_text(text.replace(f"<filename>{xml.stem}.jpg",
                                                                   "<filename>nowhere.jpg"))
    with pytest.raises(DataError) as err:
        _open(f"vocxml:{folder}", tmp_path)
    other = folder / "annotations" / "other.xml"
    assert str(err.value).startswith(f"{other}: <filename> 'nowhere.jpg' matches no image")
    # two XMLs claiming one image
    (folder / "annotations" / "other.xml").write_text(text)
    with pytest.raises(DataError, match=f"claims image images/{xml.stem}.jpg, which .*annotations/{xml.name} claims"):
        _open(f"vocxml:{folder}", tmp_path)
    (folder / "annotations" / "other.xml").unlink()
    xml.write_text(text)
    with_object = next(p for p in sorted((folder / "annotations").glob("*.xml")) if "<difficult>0" in p.read_text())
    saved = with_object.read_text()
    with_object.write_text(saved.replace("<difficult>0</difficult>", "<difficult>inf</difficult>", 1))
    with pytest.raises(DataError, match="malformed VOC annotation: <difficult> is 'inf'"):  # never an OverflowError
        _open(f"vocxml:{folder}", tmp_path)
    with_object.write_text(saved.replace("<xmax>", "<xmax>1e999", 1).replace("<truncated>0", "<truncated>1e999", 1))
    with pytest.raises(DataError, match="malformed VOC annotation"):
        _open(f"vocxml:{folder}", tmp_path)
    with_object.write_text(saved)
    (folder / "notes.xml").write_text("<project><name>x</name></project>")
    assert any("not a VOC annotation" in n for n in _open(f"vocxml:{folder}", tmp_path).info.notes)


def test_vocxml_split_folders_and_images_without_xml(small_voc, converted, tmp_path):
    folder = Path(converted["vocxml"].partition(":")[2])
    ds = _open(converted["vocxml"], tmp_path)
    assert ds.info.split_counts == VocDataset(small_voc, "x").info.split_counts
    extra = folder / "test" / "unannotated.png"
    Image.new("RGB", (8, 8)).save(extra)
    try:
        assert any("no annotation XML" in n for n in _open(converted["vocxml"], tmp_path).info.notes)
    finally:
        extra.unlink()


def test_coco_layouts_roboflow_folders_and_images_option(small_voc, tmp_path):
    splits, classes = voc_splits(small_voc)
    # Roboflow's export: <split>/_annotations.coco.json beside the split's images
    for split, folder_name in (("train", "train"), ("val", "valid"), ("test", "test")):
        out = write_coco({split: splits[split]}, classes, tmp_path / "rf-tmp" / folder_name)
        target = tmp_path / "rf" / folder_name
        target.mkdir(parents=True)
        for image in (out / "images").iterdir():
            image.rename(target / image.name)
        (out / "annotations" / f"instances_{split}.json").rename(target / "_annotations.coco.json")
    ds = _open(f"coco:{tmp_path / 'rf'}", tmp_path)
    assert ds.info.split_counts == VocDataset(small_voc, "x").info.split_counts
    # one file per split given in the spec, the images in a folder of their own
    folder = write_coco(splits, classes, tmp_path / "c")
    (folder / "images").rename(tmp_path / "pictures")
    train = folder / "annotations" / "instances_train.json"
    spec = f"coco:{train}?val=instances_val.json&test=instances_test.json&images={tmp_path / 'pictures'}"
    assert _open(spec, tmp_path).info.split_counts == ds.info.split_counts
    with pytest.raises(DataError, match="not found in"):
        _open(f"coco:{train}", tmp_path)  # without images=, the images are not beside the file
