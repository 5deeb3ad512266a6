"""The Pascal VOC reader, splits, data set openers and the detection data set, on small folders built here."""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchsuite.data import voc
from benchsuite.data.datasets import open_dataset
from benchsuite.data.detection import DetectionSample, DetectionSet, read_rgb
from benchsuite.errors import ConfigError, DataError

# ---------------------------------------------------------------------- folder builders


def _obj(name: str, box: tuple, difficult: int | None = 0, truncated: int | None = 0) -> str:
    flags = ""
    if truncated is not None:
        flags += f"<truncated>{truncated}</truncated>"
    if difficult is not None:
        flags += f"<difficult>{difficult}</difficult>"
    xmin, ymin, xmax, ymax = box
    return (f"<object><name>{name}</name><pose>Unspecified</pose>{flags}<bndbox><xmin>{xmin}</xmin>"
            f"<ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>")


def _xml(filename: str, width: int, height: int, objects: list[str]) -> str:
    return (f"<annotation><folder>T</folder><filename>{filename}</filename><size><width>{width}</width>"
            f"<height>{height}</height><depth>3</depth></size><segmented>0</segmented>{''.join(objects)}"
            f"</annotation>")


def _image(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def make_voc(folder: Path, images: dict[str, tuple[int, int, list[str]]],
             splits: dict[str, list[str]] | None = None, suffix: str = ".jpg") -> Path:
    """A VOC folder: ``images`` maps id -> (width, height, object XML snippets); ``splits`` id lists."""
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for k, (image_id, (w, h, objects)) in enumerate(images.items()):
        _image(w, h, k).save(folder / "JPEGImages" / f"{image_id}{suffix}")
        (folder / "Annotations" / f"{image_id}.xml").write_text(_xml(f"{image_id}{suffix}", w, h, objects))
    ids = list(images)
    if splits is None:
        n = len(ids)
        splits = {"train": ids[: n // 2], "val": ids[n // 2: 3 * n // 4], "test": ids[3 * n // 4:]}
        splits["trainval"] = splits["train"] + splits["val"]
    for name, members in splits.items():
        (folder / "ImageSets" / "Main" / f"{name}.txt").write_text("".join(f"{m}\n" for m in members))
    return folder


def simple_images(n: int = 8, names: tuple[str, ...] = ("person", "dog")) -> dict[str, tuple[int, int, list[str]]]:
    return {f"{i:06d}": (64 + i, 48, [_obj(names[i % len(names)], (5 + i, 6, 30 + i, 40))]) for i in range(n)}


def by_id(ds: DetectionSet) -> dict[str, DetectionSample]:
    return {s.image_id: s for s in ds}


# ---------------------------------------------------------------------- reading


def test_coordinates_flags_and_dtypes(tmp_path):
    images = {
        "a": (10, 8, [_obj("cat", (1, 1, 1, 1)), _obj("cat", (3, 4, 10, 8), difficult=1, truncated=1)]),
        "b": (20, 20, [_obj("dog", (11, 21 - 10, 15, 20), difficult=None, truncated=None)]),
        "c": (12, 12, [_obj("dog", (2.5, 3.0, 7.5, 9.0))]),
    }
    folder = make_voc(tmp_path / "V", images, {"trainval": ["a", "b"], "val": ["b"], "train": ["a"],
                                               "test": ["c"]})
    ds = voc.VocDataset(folder, "V")
    s = by_id(ds.load("trainval"))
    a = s["a"]
    np.testing.assert_array_equal(a.boxes, [[0, 0, 1, 1], [2, 3, 10, 8]])  # the pixel (0, 0) box; full width
    assert a.boxes.dtype == np.float32 and a.labels.dtype == np.int64
    assert a.difficult.tolist() == [False, True] and a.truncated.tolist() == [False, True]
    assert (a.width, a.height) == (10, 8)
    assert s["b"].difficult.tolist() == [False] and s["b"].truncated.tolist() == [False]  # absent flags
    np.testing.assert_allclose(by_id(ds.load("test"))["c"].boxes, [[1.5, 2.0, 7.5, 9.0]])
    assert ds.info.notes == ["3 images, 4 objects (1 difficult)"]  # nothing clipped: x2 == width is inside


def test_class_list_from_annotations_is_sorted(tmp_path):
    images = {"x1": (30, 30, [_obj("zebra", (1, 1, 9, 9))]), "x2": (30, 30, [_obj("apple", (1, 1, 9, 9))]),
              "x3": (30, 30, [_obj(" zebra ", (2, 2, 9, 9)), _obj("mango", (1, 1, 5, 5))])}
    folder = make_voc(tmp_path / "F", images, {"trainval": ["x1", "x2"], "val": ["x2"], "test": ["x3"]})
    data = voc.read_voc(folder)
    assert data.classes == ("apple", "mango", "zebra")
    labels = {s.image_id: s.labels.tolist() for s in data.samples}
    assert labels == {"x1": [2], "x2": [0], "x3": [2, 1]}


def test_canonical_classes_drop_unknown_names_and_count_them(tmp_path):
    images = {f"{i:06d}": (40, 40, [_obj("person", (1, 1, 20, 20)), _obj("alien", (2, 2, 9, 9))]) for i in range(4)}
    make_voc(tmp_path / "VOCdevkit" / "VOC2007", images)
    ds = open_dataset("voc2007", tmp_path, tmp_path / "cache")
    assert ds.info.name == "voc2007" and ds.info.origin == "real"
    assert tuple(ds.info.classes) == voc.VOC_CLASSES
    assert ds.info.canonical is False  # 4 images, not the official 5011 + 4952
    line = next(n for n in ds.info.notes if "not in the class list" in n)
    assert line.startswith("4 object(s)") and "000000.xml" in line
    for s in ds.load("trainval"):
        assert s.labels.tolist() == [voc.VOC_CLASSES.index("person")]


def test_background_images_are_valid_samples(tmp_path):
    images = {"bg": (32, 24, []), "obj": (32, 24, [_obj("car", (2, 2, 10, 10))]), "t": (32, 24, [])}
    folder = make_voc(tmp_path / "B", images, {"trainval": ["bg", "obj"], "val": ["obj"], "test": ["t", "obj"]})
    ds = voc.VocDataset(folder, "B")
    bg = by_id(ds.load("trainval"))["bg"]
    assert bg.boxes.shape == (0, 4) and bg.boxes.dtype == np.float32
    assert bg.labels.shape == (0,) and bg.labels.dtype == np.int64
    assert bg.difficult.dtype == bool and bg.truncated.dtype == bool and len(bg) == 0
    test = ds.load("test")
    assert test.image_ids == ["t", "obj"]  # file order kept
    boxes, labels, _, _, index = test.all_objects()
    assert labels.tolist() == [0]
    assert boxes.shape == (1, 4) and index.tolist() == [1]
    assert test.stratification_labels().tolist() == [1, 0]  # background is a stratum of its own


# ---------------------------------------------------------------------- splits


def test_splits_come_from_image_sets(tmp_path):
    folder = make_voc(tmp_path / "S", simple_images(8))
    ds = voc.VocDataset(folder, "S")
    assert ds.info.split_counts == {"train": 4, "val": 2, "trainval": 6, "test": 2}
    assert ds.split_ids("val") == ["000004", "000005"]
    assert ds.load("test").name == "S/test"
    with pytest.raises(ConfigError, match="unknown split"):
        ds.load("holdout")


def test_val_derived_from_trainval_when_missing(tmp_path):
    ids = [f"{i:06d}" for i in range(20)]
    folder = make_voc(tmp_path / "D", simple_images(26), {"trainval": ids, "test": [f"{i:06d}" for i in range(20, 26)]})
    ds = voc.VocDataset(folder, "D")
    train, val = ds.split_ids("train"), ds.split_ids("val")
    assert len(val) == 4 and len(train) == 16 and sorted(train + val) == ids
    assert any("no ImageSets/Main/val.txt" in n and "trainval" in n for n in ds.info.notes)
    again = voc.VocDataset(folder, "D")
    assert again.split_ids("val") == val and again.info.split_fingerprints == ds.info.split_fingerprints
    # stratified: both classes are in val
    assert len({int(s.labels[0]) for s in ds.load("val")}) == 2


def test_voc2012_scores_the_official_val_split(tmp_path):
    ids = [f"{i:06d}" for i in range(12)]
    make_voc(tmp_path / "VOC2012", simple_images(12), {"train": ids[:8], "val": ids[8:], "trainval": ids})
    ds = open_dataset("voc2012", tmp_path, tmp_path / "cache")
    assert ds.info.name == "voc2012"
    assert ds.split_ids("test") == ids[8:]
    assert sorted(ds.split_ids("train") + ds.split_ids("val")) == ids[:8]
    assert any("scored as 'test'" in n for n in ds.info.notes)


def test_subset_is_deterministic_and_stratified(tmp_path):
    folder = make_voc(tmp_path / "P", simple_images(40), {"trainval": [f"{i:06d}" for i in range(30)],
                                                          "val": [f"{i:06d}" for i in range(24, 30)],
                                                          "test": [f"{i:06d}" for i in range(30, 40)]})
    a = voc.VocDataset(folder, "P").load("trainval", 10)
    b = voc.VocDataset(folder, "P").load("trainval", 10)
    assert len(a) == 10 and a.image_ids == b.image_ids
    assert a.class_counts().tolist() == [5, 5]
    assert len(voc.VocDataset(folder, "P").load("test", 100)) == 10


def test_manifest_lists_ids_and_fingerprints(tmp_path):
    folder = make_voc(tmp_path / "M", simple_images(8))
    ds = voc.VocDataset(folder, "M")
    path = ds.write_manifest(tmp_path / "splits")
    assert path.name == "M.split.json"
    m = json.loads(path.read_text())
    assert m["splits"]["test"] == ["000006", "000007"]
    assert m["split_fingerprints"] == ds.info.split_fingerprints
    assert m["dataset_fingerprint"] == ds.info.fingerprint and m["counts"]["trainval"] == 6


def test_fingerprint_follows_annotations_only(tmp_path):
    folder = make_voc(tmp_path / "G", simple_images(8))
    first = voc.VocDataset(folder, "G").info
    assert voc.VocDataset(folder, "G").info.fingerprint == first.fingerprint
    # moving images between splits changes those splits' fingerprints, not the data set's
    main = folder / "ImageSets" / "Main"
    originals = {f.name: f.read_text() for f in main.iterdir()}
    (main / "val.txt").write_text("000004\n000006\n")
    (main / "trainval.txt").write_text("000000\n000001\n000002\n000003\n000004\n000006\n")
    (main / "test.txt").write_text("000005\n000007\n")
    moved = voc.VocDataset(folder, "G").info
    assert moved.fingerprint == first.fingerprint
    assert moved.split_fingerprints["train"] == first.split_fingerprints["train"]
    assert all(moved.split_fingerprints[s] != first.split_fingerprints[s] for s in ("val", "trainval", "test"))
    for name, text in originals.items():
        (main / name).write_text(text)
    assert voc.VocDataset(folder, "G").info.split_fingerprints == first.split_fingerprints
    # an annotation edit changes the data set and every split fingerprint
    xml = folder / "Annotations" / "000003.xml"
    xml.write_text(xml.read_text().replace("<difficult>0</difficult>", "<difficult>1</difficult>"))
    edited = voc.VocDataset(folder, "G").info
    assert edited.fingerprint != first.fingerprint
    assert all(edited.split_fingerprints[s] != first.split_fingerprints[s] for s in voc.SPLITS)


# ---------------------------------------------------------------------- bad input: folder level


def test_missing_layout_parts_name_the_path(tmp_path):
    with pytest.raises(DataError, match=r"Nope: no such folder; expected a Pascal VOC layout"):
        voc.read_voc(tmp_path / "Nope")
    folder = make_voc(tmp_path / "L", simple_images(4))
    for f in (folder / "ImageSets" / "Main").iterdir():
        f.unlink()
    with pytest.raises(DataError, match=r"ImageSets/Main: no split file"):
        voc.read_voc(folder)
    (folder / "ImageSets" / "Main").rmdir()
    with pytest.raises(DataError, match=r"L/ImageSets/Main: missing"):
        voc.read_voc(folder)


def test_missing_test_split_and_empty_split_file(tmp_path):
    folder = make_voc(tmp_path / "T", simple_images(6), {"trainval": ["000000", "000001"], "val": ["000001"]})
    with pytest.raises(DataError, match=r"T/ImageSets/Main/test.txt: missing; expected a test split"):
        voc.VocDataset(folder, "T")
    (folder / "ImageSets" / "Main" / "test.txt").write_text("\n\n")
    with pytest.raises(DataError, match=r"test.txt: empty"):
        voc.VocDataset(folder, "T")


def test_split_with_no_readable_image_is_an_error(tmp_path):
    folder = make_voc(tmp_path / "E", simple_images(6))
    for i in ("000004", "000005"):  # the two test images
        (folder / "JPEGImages" / f"{i}.jpg").unlink()
    with pytest.raises(DataError, match=r"E: split 'test' of ImageSets/Main has no readable image"):
        voc.VocDataset(folder, "E")


def test_voc_spec_errors(tmp_path):
    with pytest.raises(DataError, match=r"missing-folder: no such folder; expected a Pascal VOC layout"):
        open_dataset(f"voc:{tmp_path / 'missing-folder'}", tmp_path, tmp_path)
    with pytest.raises(ConfigError, match="expected voc:PATH"):
        open_dataset("voc:", tmp_path, tmp_path)


def test_a_folder_holding_one_voc_folder_is_read_through(tmp_path):
    """An unpacked archive (``pennfudan-voc/PennFudan``) is read through its only VOC layout child and named after
    the folder given; two candidates or a linked child are not guessed at: the folder is read as given."""
    make_voc(tmp_path / "archive" / "Inner", simple_images())
    ds = open_dataset(f"voc:{tmp_path / 'archive'}", tmp_path, tmp_path)
    assert ds.info.name == "archive" and len(ds.load("train")) == 4
    assert voc.voc_folder_of_spec(f"voc:{tmp_path / 'archive'}")[0] == tmp_path / "archive" / "Inner"
    make_voc(tmp_path / "archive" / "Other", simple_images())
    with pytest.raises(DataError, match=r"archive/Annotations: missing; expected a Pascal VOC layout"):
        open_dataset(f"voc:{tmp_path / 'archive'}", tmp_path, tmp_path)
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / "Inner").symlink_to(tmp_path / "archive" / "Inner")
    with pytest.raises(DataError, match=r"linked/Annotations: missing"):
        open_dataset(f"voc:{tmp_path / 'linked'}", tmp_path, tmp_path)


# ---------------------------------------------------------------------- bad input: per image


def test_per_image_problems_are_counted_in_notes(tmp_path):
    ok = [_obj("person", (2, 2, 20, 20))]
    images = {f"{i:06d}": (40, 30, ok) for i in range(12)}
    images["000001"] = (40, 30, [_obj("person", (-3, 2, 50, 20)), _obj("person", (30, 25, 45, 40))])  # clipped x2
    images["000002"] = (40, 30, [_obj("person", (5, 5, 4, 20)), _obj("person", (45, 2, 60, 20)), *ok])  # dropped
    folder = make_voc(tmp_path / "Q", images)
    ann = folder / "Annotations"
    (ann / "000003.xml").write_text("<annotation><size>")  # not well-formed
    (ann / "000004.xml").write_text(_xml("000004.jpg", 40, 30, ["<object><name>person</name></object>"]))
    (ann / "000005.xml").unlink()
    (folder / "JPEGImages" / "000006.jpg").unlink()
    (folder / "JPEGImages" / "000007.jpg").write_bytes(b"not an image at all")
    (ann / "000008.xml").write_text(_xml("000008.jpg", 99, 77, ok))  # wrong <size>
    ds = voc.VocDataset(folder, "Q")
    notes = "\n".join(ds.info.notes)
    assert "2 image(s) skipped: annotation XML malformed (e.g. 000003.xml, 000004.xml)" in notes
    expected = {
        "annotation XML missing": "000005.xml",
        "annotation XML malformed": "000003.xml, 000004.xml",
        "image file missing": "000006.jpg",
        "image file unreadable": "000007.jpg",
        "differs from the file": "000008.xml",
        "outside the image: clipped": "000001.xml",
        "zero or negative area": "000002.xml",
    }
    for phrase, example in expected.items():
        line = next(n for n in ds.info.notes if phrase in n)
        assert example in line, line
    assert next(n for n in ds.info.notes if "malformed" in n).startswith("2 image(s)")
    assert next(n for n in ds.info.notes if "clipped" in n).startswith("2 box(es)")
    assert next(n for n in ds.info.notes if "zero or negative" in n).startswith("2 box(es)")
    samples = {s.image_id: s for s in ds.data.samples}
    assert set(samples) == {f"{i:06d}" for i in range(12)} - {"000003", "000004", "000005", "000006", "000007"}
    np.testing.assert_array_equal(samples["000001"].boxes, [[0, 1, 40, 20], [29, 24, 40, 30]])
    assert len(samples["000002"]) == 1
    assert (samples["000008"].width, samples["000008"].height) == (40, 30)  # the file's size wins
    assert ds.data.problems.counts["missing image"] == 1


def test_undecodable_image_raises_on_load(tmp_path):
    folder = make_voc(tmp_path / "U", simple_images(4))
    path = folder / "JPEGImages" / "000003.jpg"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the header survives, the pixels do not
    ds = voc.VocDataset(folder, "U")
    test = ds.load("test")
    with pytest.raises(DataError, match=r"000003.jpg: cannot decode image"):
        test.load_image(test.image_ids.index("000003"))


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA", "CMYK", "I;16", "1", "RGB-png"])
def test_image_modes_load_as_rgb(tmp_path, mode):
    rgb = np.zeros((6, 8, 3), np.uint8)
    rgb[:, :4] = (200, 40, 10)
    rgb[:, 4:] = (10, 90, 250)
    base = Image.fromarray(rgb)
    if mode == "I;16":
        grey = np.full((6, 8), 40000, np.uint16)
        img, suffix, want = Image.fromarray(grey), ".png", np.full((6, 8, 3), round(40000 / 257))
    elif mode == "CMYK":
        img, suffix, want = base.convert("CMYK"), ".jpg", rgb
    elif mode == "RGB-png":
        img, suffix, want = base, ".png", rgb
    elif mode == "1":
        img, suffix = base.convert("L").point(lambda v: 255 if v > 80 else 0).convert("1"), ".png"
        want = np.asarray(img.convert("RGB"))
    else:
        img = base.convert(mode)
        suffix = ".jpg" if mode == "L" else ".png"
        want = np.asarray(img.convert("RGB"))
    path = tmp_path / f"img{suffix}"
    img.save(path)
    out = read_rgb(path)
    assert out.shape == (6, 8, 3) and out.dtype == np.uint8
    tol = 30 if suffix == ".jpg" else 0
    assert np.abs(out.astype(int) - np.asarray(want, int)).max() <= tol


def test_png_and_grey_images_in_a_folder(tmp_path):
    folder = make_voc(tmp_path / "N", simple_images(4), suffix=".png")
    grey = folder / "JPEGImages" / "000001.png"
    Image.open(grey).convert("L").save(grey)
    ds = voc.VocDataset(folder, "N")
    trainval = ds.load("trainval")
    for i in range(len(trainval)):
        image = trainval.load_image(i)
        assert image.shape == (trainval[i].height, trainval[i].width, 3) and image.dtype == np.uint8


# ---------------------------------------------------------------------- openers


def test_voc_spec_relative_path_and_name(tmp_path, monkeypatch):
    make_voc(tmp_path / "My Data (v2)", simple_images(6))
    monkeypatch.chdir(tmp_path)
    ds = open_dataset("voc:My Data (v2)", tmp_path / "root", tmp_path / "cache", force_synthetic=True)
    assert ds.info.name == "My_Data_v2" and ds.info.origin == "real"  # an explicit folder is read as given
    assert ds.info.canonical is None and ds.info.annotations == ["boxes"]
    assert ds.load("test").name == "My_Data_v2/test"


def test_missing_voc_falls_back_to_synthetic(tmp_path, cache_dir, caplog):
    ds = open_dataset("voc2007", tmp_path, cache_dir)
    assert ds.info.origin == "synthetic" and ds.info.name == "synthetic-voc"
    assert "no VOC2007 under" in caplog.text


def test_download_failure_is_a_data_error(tmp_path, monkeypatch):
    class Failing:
        def __init__(self, **kwargs):
            raise OSError("network unreachable")

    package = types.ModuleType("torchvision")
    datasets = types.ModuleType("torchvision.datasets")
    datasets.VOCDetection = Failing
    package.datasets = datasets
    monkeypatch.setitem(sys.modules, "torchvision", package)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", datasets)
    with pytest.raises(DataError, match=r"could not download VOC2007 into .*network unreachable"):
        open_dataset("voc2007", tmp_path, tmp_path / "cache", download=True)


# ---------------------------------------------------------------------- real data


@pytest.mark.realdata
def test_real_penn_fudan():
    root = os.environ.get("BENCHSUITE_REAL_DATA")
    if not root:
        pytest.skip("BENCHSUITE_REAL_DATA is not set")
    folder = Path(root) / "pennfudan-voc" / "PennFudan"
    if not folder.is_dir():
        pytest.skip(f"no Penn-Fudan data under {root}")
    ds = open_dataset(f"voc:{folder}", Path(root), Path(root) / "unused-cache")
    info = ds.info
    assert info.name == "PennFudan" and info.classes == ["person"] and info.origin == "real"
    assert info.split_counts == {"train": 80, "val": 20, "trainval": 100, "test": 70}
    assert not ds.data.problems, info.notes
    trainval, test = ds.load("trainval"), ds.load("test")
    assert trainval.num_objects(include_difficult=False) < trainval.num_objects()
    assert test.num_objects() > test.num_objects(include_difficult=False)
    image = test.load_image(0)
    assert image.shape == (test[0].height, test[0].width, 3) and image.dtype == np.uint8
    boxes, *_ = test.all_objects()
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
