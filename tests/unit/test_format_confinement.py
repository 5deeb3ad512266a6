"""Issue 22's rules in the new readers: a path read from a data file never leads outside the data set's folder,
special files are never opened, sizes are checked before reading, class names are data (hostile cases)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchsuite.data import synthetic_voc
from benchsuite.data.confine import checked_name, is_inside, read_limited, real_folder, resolve_inside
from benchsuite.data.datasets import open_dataset
from benchsuite.data.format_writers import write_coco, write_imagefolder, write_vocxml, write_yolo
from benchsuite.data.problems import Problems
from benchsuite.data.vocxml import read_vocxml
from benchsuite.errors import DataError
from tests.fixtures.convert_formats import voc_splits

hostile_paths = st.one_of(
    st.text(alphabet=st.sampled_from(["a", "b", ".", "/", "\\", "~", ":", "\0", " ", "é"]), min_size=0, max_size=24),
    st.lists(st.sampled_from(["..", ".", "a", "b", "link", "", "/", "C:"]), min_size=1, max_size=8).map("/".join),
)


@pytest.fixture(scope="module")
def small_voc(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("voc") / "SmallVOC"
    synthetic_voc.write_synthetic_voc(folder, {"train": 6, "val": 2, "test": 4}, seed=3)
    return folder


@pytest.mark.fault("data: a path read from a data file never resolves outside the data set folder")
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hostile_paths)
def test_resolve_inside_never_leaves_the_folder(tmp_path, text):
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True, exist_ok=True)
    (tmp_path / "outside").mkdir(exist_ok=True)
    if not (root / "link").exists():
        os.symlink(tmp_path / "outside", root / "link")
    real_root = real_folder(root, "a folder")
    try:
        resolved = resolve_inside(real_root, text, "data.json", "file_name")
    except DataError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("data.json: file_name")
        return
    assert is_inside(resolved, real_root)


@pytest.mark.fault("data: a class name from a file is checked (length, control characters), never a path")
@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_checked_names_are_refused_in_one_line_or_kept_as_data(name):
    try:
        out = checked_name(name, "classes.txt")
    except DataError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("classes.txt: ")
        return
    assert out == name.strip() and 0 < len(out) <= 200 and all(ord(c) >= 32 and ord(c) != 127 for c in out)


@pytest.mark.fault("data: an annotation file over its size limit is refused before it is read; a FIFO never opened")
def test_read_limited_refuses_large_files_and_fifos(tmp_path):
    big = tmp_path / "big.json"
    big.write_bytes(b"x" * 1001)
    with pytest.raises(DataError, match="1,001 bytes, over the 1,000-byte limit"):
        read_limited(big, 1000, "COCO annotation file")
    os.mkfifo(tmp_path / "fifo.json")
    signal.alarm(20)
    try:
        with pytest.raises(DataError, match=r"fifo.json: is a FIFO \(named pipe\), not a regular file; refused "
                                            r".*expected a COCO annotation file"):
            read_limited(tmp_path / "fifo.json", 1000, "COCO annotation file")
    finally:
        signal.alarm(0)


@pytest.mark.fault("data: a class folder linking outside the image folder is refused")
def test_imagefolder_class_folder_linking_outside(tmp_path):
    outside = write_imagefolder(tmp_path / "outside", [np.zeros((8, 8), np.uint8)] * 2, [0, 1], ["x", "y"])
    folder = write_imagefolder(tmp_path / "set", [np.zeros((8, 8), np.uint8)] * 4, [0, 1] * 2, ["a", "b"])
    os.symlink(outside / "x", folder / "c")
    with pytest.raises(DataError, match="links outside the data set folder"):
        open_dataset(f"imagefolder:{folder}", Path("."), tmp_path / "cache")


@pytest.mark.fault("data: COCO and YOLO files found by name that link outside are refused")
def test_linked_annotation_files_outside(small_voc, tmp_path):
    splits, classes = voc_splits(small_voc)
    coco = write_coco(splits, classes, tmp_path / "coco")
    outside = tmp_path / "elsewhere.json"
    (coco / "annotations" / "instances_test.json").rename(outside)
    os.symlink(outside, coco / "annotations" / "instances_test.json")
    with pytest.raises(DataError, match="links outside"):
        open_dataset(f"coco:{coco}", Path("."), tmp_path)
    yolo = write_yolo({"": [s for v in splits.values() for s in v]}, classes, tmp_path / "yolo", data_yaml=False)
    (yolo / "classes.txt").rename(tmp_path / "classes.txt")
    os.symlink(tmp_path / "classes.txt", yolo / "classes.txt")
    with pytest.raises(DataError, match="links outside"):
        open_dataset(f"yolo:{yolo}", Path("."), tmp_path)
    label = sorted((yolo / "labels").glob("*.txt"))[0]
    label.rename(tmp_path / "label.txt")
    os.symlink(tmp_path / "label.txt", label)
    (yolo / "classes.txt").unlink()
    (tmp_path / "classes.txt").rename(yolo / "classes.txt")
    with pytest.raises(DataError, match="leads outside"):
        open_dataset(f"yolo:{yolo}", Path("."), tmp_path)


@pytest.mark.fault("data: hostile COCO field values give one line naming the file and entry")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(["id", "image_id", "category_id", "bbox", "iscrowd"]),
       value=st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                       st.text(max_size=5), st.lists(st.integers(), max_size=6),
                       st.dictionaries(st.text(max_size=3), st.integers(), max_size=3)))
def test_hostile_coco_annotation_fields(small_voc, tmp_path_factory, field, value):
    splits, classes = voc_splits(small_voc)
    folder = tmp_path_factory.mktemp("c")
    path = write_coco(splits, classes, folder, one_file=True)
    doc = json.loads(path.read_text())
    doc["annotations"][0][field] = value
    path.write_text(json.dumps(doc, allow_nan=True))
    try:
        ds = open_dataset(f"coco:{path}", Path("."), folder)
    except DataError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(str(path))
        return
    assert sum(len(s) for split in ("train", "val", "test") for s in ds.load(split)) > 0


@pytest.mark.fault("data: a data.yaml whose names are not text is refused in one line")
def test_yolo_names_not_text(small_voc, tmp_path):
    splits, classes = voc_splits(small_voc)
    yolo = write_yolo(splits, classes, tmp_path / "yolo")
    (yolo / "data.yaml").write_text("a: &a [1, 2]\nb: &b [*a, *a, *a]\nc: &c [*b, *b, *b]\n"
                                    "train: images/train\ntest: images/test\nnames: [*c, *c]\nnc: *c\n")
    with pytest.raises(DataError, match="names holds a value that is not a name"):
        open_dataset(f"yolo:{yolo}", Path("."), tmp_path)


@pytest.mark.fault("data: image folders found by name (YOLO images/, its split folders, COCO images/) that link "
                   "outside are refused in one line naming the folder")
def test_linked_image_folders_outside(small_voc, tmp_path):
    splits, classes = voc_splits(small_voc)
    elsewhere = write_yolo(splits, classes, tmp_path / "elsewhere")
    flat = write_yolo(splits, classes, tmp_path / "flat", data_yaml=False)
    (flat / "images").rename(tmp_path / "flat-images")
    os.symlink(tmp_path / "flat-images", flat / "images")
    with pytest.raises(DataError, match=r"/flat/images: a folder of images that links outside"):
        open_dataset(f"yolo:{flat}", Path("."), tmp_path)
    split = write_yolo(splits, classes, tmp_path / "split")
    (split / "data.yaml").rename(tmp_path / "unused.yaml")
    (split / "classes.txt").write_text("".join(f"{c}\n" for c in classes))
    os.rename(split / "images" / "train", tmp_path / "train-images")
    os.symlink(elsewhere / "images" / "train", split / "images" / "train")
    with pytest.raises(DataError, match=r"/split/images/train: a split folder that links outside"):
        open_dataset(f"yolo:{split}", Path("."), tmp_path)
    coco = write_coco(splits, classes, tmp_path / "coco")
    (coco / "images").rename(tmp_path / "coco-images")
    os.symlink(tmp_path / "coco-images", coco / "images")
    with pytest.raises(DataError, match=r"/coco/images: a folder of images that links outside"):
        open_dataset(f"coco:{coco}", Path("."), tmp_path)


@pytest.mark.fault("data: a linked folder under a loose-XML set is not followed, and data check lists it")
def test_vocxml_linked_folder_is_left_out_with_a_warning(small_voc, tmp_path):
    splits, classes = voc_splits(small_voc)
    outside = write_vocxml(splits, classes, tmp_path / "outside")
    folder = write_vocxml({k: v for k, v in splits.items() if k != "test"}, classes, tmp_path / "set")
    os.symlink(outside / "test", folder / "test")
    problems = Problems("vocxml:set")
    raws, *_ = read_vocxml(real_folder(folder, "a folder"), problems)
    assert all(not is_inside(Path(os.path.realpath(r.path)), real_folder(outside, "a folder")) for r in raws)
    assert [(p.kind, Path(p.file).name) for p in problems.warnings] == [("linked entry not followed", "test")]
    assert len(raws) == len(splits["train"]) + len(splits["val"])
