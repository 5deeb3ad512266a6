"""The VOC segmentation reader (class and instance masks, labelmap colours, void, checks, splits) on small folders
built here, the synthetic masks set and, where present, the real Penn-Fudan masks."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from benchsuite.data import synthetic_segmentation as synth
from benchsuite.data import voc_segmentation as vs
from benchsuite.data.datasets import OpenRequest
from benchsuite.data.detection import decode_seconds
from benchsuite.data.voc import read_voc
from benchsuite.errors import ConfigError, DataError

PENN_LABELMAP = "# label:color_rgb:parts:actions\nbackground:0,0,0::\nperson:192,128,128::\n"


def test_voc_palette_matches_the_devkit_colours():
    pal = vs.voc_palette()
    # colours listed by the VOC devkit (VOCdevkit/VOCcode/VOClabelcolormap.m)
    known = {0: (0, 0, 0), 1: (128, 0, 0), 2: (0, 128, 0), 3: (128, 128, 0), 4: (0, 0, 128), 7: (128, 128, 128),
             8: (64, 0, 0), 15: (192, 128, 128), 20: (0, 64, 128), 255: (224, 224, 192)}
    for index, colour in known.items():
        assert tuple(pal[index].tolist()) == colour, index
    assert len({tuple(c) for c in pal.tolist()}) == 256


def test_labelmap_parsing_and_its_errors(tmp_path):
    path = tmp_path / "labelmap.txt"
    path.write_text(PENN_LABELMAP)
    lm = vs.read_labelmap(path)
    assert lm.names == ("background", "person")
    assert lm.colours.tolist() == [[0, 0, 0], [192, 128, 128]]
    path.write_text("background:0,0,0::\nperson:192,128::\n")
    with pytest.raises(DataError, match=r"labelmap.txt:2: .*name:r,g,b"):
        vs.read_labelmap(path)
    path.write_text("background:0,0,0::\nperson:0,0,0::\n")
    with pytest.raises(DataError, match=r"labelmap.txt:2: colour 0,0,0 .* 'background'"):
        vs.read_labelmap(path)
    path.write_text("# only a comment\n")
    with pytest.raises(DataError, match="no label line"):
        vs.read_labelmap(path)


# ---------------------------------------------------------------------- folder builders
def save_palette_png(values: np.ndarray, path: Path) -> None:
    img = Image.frombytes("P", (values.shape[1], values.shape[0]), np.ascontiguousarray(values, np.uint8).tobytes())
    img.putpalette(vs.voc_palette().reshape(-1).tolist())
    img.save(path)


def make_seg_folder(folder: Path, masks: dict[str, np.ndarray], splits: dict[str, list[str]] | None = None,
                    labelmap: str | None = PENN_LABELMAP, instances: dict[str, np.ndarray] | None = None) -> Path:
    """A VOC folder with segmentation masks: ``masks`` maps id -> raw mask values (palette PNGs)."""
    for sub in ("JPEGImages", "SegmentationClass", "SegmentationObject", "ImageSets/Segmentation"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for image_id, values in masks.items():
        h, w = values.shape
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / "JPEGImages" / f"{image_id}.jpg")
        save_palette_png(values, folder / "SegmentationClass" / f"{image_id}.png")
    for image_id, values in (instances or {}).items():
        save_palette_png(values, folder / "SegmentationObject" / f"{image_id}.png")
    ids = list(masks)
    if splits is None:
        splits = {"train": ids[:2], "val": ids[2:3], "test": ids[3:]}
    for name, members in splits.items():
        (folder / "ImageSets" / "Segmentation" / f"{name}.txt").write_text("".join(f"{m}\n" for m in members))
    if labelmap is not None:
        (folder / "labelmap.txt").write_text(labelmap)
    return folder


def person_mask(h: int = 12, w: int = 16, value: int = 15) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[2:9, 3:8] = value
    m[2:9, 8] = 255  # a void band beside the person
    return m


def test_labelmap_colours_map_palette_indices_to_classes(tmp_path):
    masks = {f"im{i}": person_mask() for i in range(4)}
    inst = {"im0": np.where(person_mask() == 15, 1, np.where(person_mask() == 255, 255, 0)).astype(np.uint8)}
    folder = make_seg_folder(tmp_path / "PF", masks, instances=inst)
    ds = vs.VocSegmentationDataset(folder, "PF")
    assert ds.info.annotations == ["masks"] and ds.info.classes == ["background", "person"]
    assert ds.info.split_counts == {"train": 2, "val": 1, "trainval": 3, "test": 1}
    train = ds.load("train")
    before = decode_seconds()
    label = train.load_mask(0)
    assert decode_seconds() > before  # mask decoding counts as data loading
    expected = np.zeros((12, 16), np.uint8)
    expected[2:9, 3:8] = 1
    expected[2:9, 8] = vs.VOID
    np.testing.assert_array_equal(label, expected)
    np.testing.assert_array_equal(train.load_instances(0), inst["im0"])
    assert train.load_instances(1) is None and not train.has_instances
    assert train.class_pixel_counts().tolist() == [2 * (12 * 16 - 35 - 7), 2 * 35]


def test_rgb_and_grey_masks_read_like_palette_masks(tmp_path):
    masks = {f"im{i}": person_mask() for i in range(4)}
    folder = make_seg_folder(tmp_path / "PF", masks)
    want = vs.VocSegmentationDataset(folder, "PF").load("test").load_mask(0)
    colour = vs.voc_palette()[person_mask()]
    Image.fromarray(colour).save(folder / "SegmentationClass" / "im3.png")  # an RGB colour mask
    assert Image.open(folder / "SegmentationClass" / "im3.png").mode == "RGB"
    np.testing.assert_array_equal(vs.VocSegmentationDataset(folder, "PF").load("test").load_mask(0), want)
    Image.fromarray(person_mask()).save(folder / "SegmentationClass" / "im3.png")  # grey: values via the VOC map
    np.testing.assert_array_equal(vs.VocSegmentationDataset(folder, "PF").load("test").load_mask(0), want)


def test_voc_proper_without_labelmap_reads_values_as_class_indices(tmp_path):
    masks = {f"im{i}": person_mask(value=7 + i) for i in range(4)}
    ds = vs.VocSegmentationDataset(make_seg_folder(tmp_path / "V", masks, labelmap=None), "V")
    assert ds.info.classes == list(vs.VOC_SEGMENTATION_CLASSES) and len(ds.info.classes) == 21
    label = ds.load("train").load_mask(1)
    assert set(np.unique(label).tolist()) == {0, 8, vs.VOID}
    assert vs.VOC_SEGMENTATION_CLASSES[8] == "cat"


def test_values_that_name_no_class_are_an_error_naming_the_file(tmp_path):
    masks = {f"im{i}": person_mask() for i in range(4)}
    masks["im1"] = person_mask(value=7)  # index 7 (grey 128,128,128) is not in Penn-Fudan's labelmap
    ds = vs.VocSegmentationDataset(make_seg_folder(tmp_path / "PF", masks), "PF")
    with pytest.raises(DataError, match=r"im1\.png: value 7 \(colour 128,128,128\) names no class"):
        ds.load("train").load_mask(1)
    masks = {f"im{i}": person_mask(value=21) for i in range(4)}
    ds = vs.VocSegmentationDataset(make_seg_folder(tmp_path / "V", masks, labelmap=None), "V")
    with pytest.raises(DataError, match=r"im0\.png: value 21 .*expected 0\.\.20, or 255"):
        ds.load("train").load_mask(0)


def test_folder_problems_are_one_line_errors_naming_the_file(tmp_path):
    masks = {f"im{i}": person_mask() for i in range(4)}
    folder = make_seg_folder(tmp_path / "PF", masks)
    save_palette_png(person_mask(10, 16), folder / "SegmentationClass" / "im2.png")
    with pytest.raises(DataError, match=r"im2\.png: mask of 16x10 pixels for the 16x12 image im2\.jpg"):
        vs.VocSegmentationDataset(folder, "PF")
    save_palette_png(person_mask(), folder / "SegmentationClass" / "im2.png")
    save_palette_png(np.zeros((12, 15), np.uint8), folder / "SegmentationObject" / "im1.png")
    with pytest.raises(DataError, match=r"SegmentationObject/im1\.png: mask of 15x12"):
        vs.VocSegmentationDataset(folder, "PF")
    (folder / "SegmentationObject" / "im1.png").unlink()
    (folder / "SegmentationClass" / "im3.png").unlink()
    with pytest.raises(DataError, match=r"SegmentationClass/im3\.png: missing"):
        vs.VocSegmentationDataset(folder, "PF")
    save_palette_png(person_mask(), folder / "SegmentationClass" / "im3.png")
    (folder / "JPEGImages" / "im0.jpg").unlink()
    with pytest.raises(DataError, match=r"im0\.jpg: missing; ImageSets/Segmentation lists im0"):
        vs.VocSegmentationDataset(folder, "PF")
    (folder / "ImageSets" / "Segmentation" / "test.txt").rename(folder / "test.txt")
    for name in ("train", "val"):
        (folder / "ImageSets" / "Segmentation" / f"{name}.txt").unlink()
    with pytest.raises(DataError, match=r"ImageSets/Segmentation: no split file"):
        vs.VocSegmentationDataset(folder, "PF")
    (folder / "ImageSets" / "Segmentation").rmdir()
    with pytest.raises(DataError, match=r"ImageSets/Segmentation: missing"):
        vs.VocSegmentationDataset(folder, "PF")


def test_splits_without_val_draw_a_fixed_val_and_voc2012_scores_val_as_test(tmp_path):
    masks = {f"im{i:02d}": person_mask() for i in range(12)}
    ids = list(masks)
    folder = make_seg_folder(tmp_path / "A", masks, {"trainval": ids[:10], "test": ids[10:]})
    a, b = vs.VocSegmentationDataset(folder, "A"), vs.VocSegmentationDataset(folder, "A")
    assert a.info.split_counts == {"train": 8, "val": 2, "trainval": 10, "test": 2}
    assert a.split_ids("val") == b.split_ids("val") and set(a.split_ids("val")) <= set(ids[:10])
    assert any("val is a fixed seeded 20% of trainval" in n for n in a.info.notes)
    folder = make_seg_folder(tmp_path / "B", masks, {"train": ids[:8], "val": ids[8:]})
    with pytest.raises(DataError, match=r"test\.txt: missing"):
        vs.VocSegmentationDataset(folder, "B")
    c = vs.VocSegmentationDataset(folder, "B", test_from_val=True)
    assert c.split_ids("test") == ids[8:] and set(c.split_ids("train")) | set(c.split_ids("val")) == set(ids[:8])
    sub = a.load("trainval", max_images=4)
    assert len(sub) == 4 and sub.image_ids == a.load("trainval", max_images=4).image_ids
    with pytest.raises(ConfigError, match="unknown split"):
        a.load("dev")


def test_manifest_is_written_apart_from_the_detection_manifest(tmp_path):
    masks = {f"im{i}": person_mask() for i in range(4)}
    ds = vs.VocSegmentationDataset(make_seg_folder(tmp_path / "PF", masks), "PF")
    path = ds.write_manifest(tmp_path)
    assert path.name == "PF.segmentation.split.json"
    assert ds.manifest()["splits"]["test"] == ["im3"]


# ---------------------------------------------------------------------- synthetic masks
SMALL = {"train": 3, "val": 1, "test": 2}


@pytest.fixture(scope="module")
def synthetic_folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("synthseg")
    out = {}
    for variant in synth.VARIANTS:
        synth.write_variant(root / variant, variant, SMALL)
        out[variant] = root / variant
    return out


def test_synthetic_sets_are_deterministic(synthetic_folders, tmp_path):
    synth.write_variant(tmp_path / "again", "default", SMALL)
    a = vs.VocSegmentationDataset(synthetic_folders["default"], "a")
    b = vs.VocSegmentationDataset(tmp_path / "again", "b")
    assert a.info.fingerprint == b.info.fingerprint and a.origin == "synthetic"


@pytest.mark.parametrize("variant", list(synth.VARIANTS))
def test_synthetic_masks_are_consistent_with_their_instances_and_boxes(synthetic_folders, variant):
    folder = synthetic_folders[variant]
    ds = vs.VocSegmentationDataset(folder, variant)
    v = synth.VARIANTS[variant]
    assert tuple(ds.info.classes) == ("background", *v.classes)
    boxes = {s.image_id: s for s in read_voc(folder, v.classes).samples}  # the same folder as a detection set
    split = ds.load("trainval")
    assert split.has_instances
    objects = 0
    for sample, image, label, inst in split.iter_samples(instances=True):
        assert image.shape == (*label.shape, 3)
        if v.channels == 1:
            assert Image.open(sample.path).mode == "L" and (image[..., 0] == image[..., 2]).all()
        assert ((label == vs.VOID) == (inst == vs.VOID)).all()
        thing = (label != 0) & (label != vs.VOID)
        assert ((inst > 0) & (inst != vs.VOID) == thing).all()  # every object pixel belongs to one instance
        numbers = [n for n in np.unique(inst).tolist() if n not in (0, vs.VOID)]
        assert numbers == list(range(1, len(numbers) + 1))
        det = boxes[sample.image_id]
        assert len(det.boxes) == len(numbers)
        for n, box in zip(numbers, det.boxes):
            ys, xs = np.nonzero(inst == n)
            assert len(np.unique(label[inst == n])) == 1  # one class per object
            # the annotated box holds the object's scored pixels (void outline pixels may reach beyond them)
            assert box[0] <= xs.min() and box[1] <= ys.min() and xs.max() < box[2] and ys.max() < box[3]
            if variant == "tiny":
                assert len(xs) < 32**2
            if variant == "thin":  # no pixel is more than 3 px from the wire's edge (wires are 1.5-4 px wide)
                assert ndimage.distance_transform_edt(inst == n).max() <= 3
        if not v.void_edges:
            assert not (label == vs.VOID).any()
        objects += len(numbers)
    assert objects > 0


def test_synthetic_opener_and_unknown_variant(tmp_path, cache_dir):
    req = OpenRequest("synthetic-voc:tiny", tmp_path, cache_dir)
    ds = vs.open_synthetic_segmentation(req)
    assert ds.name == "synthetic-voc-tiny" and ds.info.origin == "synthetic" and "tiny objects" in ds.info.description
    with pytest.raises(ConfigError, match="unknown synthetic segmentation variant 'huge'"):
        vs.open_synthetic_segmentation(OpenRequest("synthetic-voc:huge", tmp_path, cache_dir))
    missing = vs.open_voc_segmentation_year(OpenRequest("voc2012", tmp_path, cache_dir), 2012)
    assert missing.name == "synthetic-voc"  # no VOC2012 under the root: the synthetic stand-in


# ---------------------------------------------------------------------- real data
@pytest.mark.realdata
def test_real_penn_fudan_masks():
    root = os.environ.get("BENCHSUITE_REAL_DATA")
    if not root:
        pytest.skip("BENCHSUITE_REAL_DATA is not set")
    folder = Path(root) / "pennfudan-voc" / "PennFudan"
    if not (folder / "SegmentationClass").is_dir():
        pytest.skip(f"no Penn-Fudan masks under {root}")
    ds = vs.open_voc_segmentation_folder(OpenRequest(f"voc:{folder}", Path(root), Path(root) / "unused-cache"))
    assert ds.name == "PennFudan" and ds.info.classes == ["background", "person"]
    assert ds.info.split_counts == {"train": 80, "val": 20, "trainval": 100, "test": 70}
    main_test = (folder / "ImageSets" / "Main" / "test.txt").read_text().split()
    assert ds.split_ids("test") == main_test  # the detection task's test images
    test = ds.load("test")
    for i in range(3):
        label, inst = test.load_mask(i), test.load_instances(i)
        assert set(np.unique(label).tolist()) <= {0, 1} and (label == 1).any()
        assert ((inst > 0) == (label == 1)).all()
