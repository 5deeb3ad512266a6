"""The synthetic VOC-layout detection set: deterministic, read by the VOC reader, varied enough to be useful."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from benchsuite.data import synthetic_voc
from benchsuite.data.datasets import open_dataset
from benchsuite.data.voc import VocDataset, read_voc
from benchsuite.errors import ConfigError

SMALL = {"train": 6, "val": 2, "test": 4}


@pytest.fixture(scope="module")
def synthetic(cache_dir, tmp_path_factory) -> VocDataset:
    return open_dataset("synthetic-voc", tmp_path_factory.mktemp("no-data"), cache_dir)


def _objects(ds: VocDataset) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    sets = [ds.load(s) for s in ("trainval", "test")]
    parts = [s.all_objects() for s in sets]
    return tuple(np.concatenate([p[k] for p in parts]) for k in range(4))  # type: ignore[return-value]


def test_layout_counts_and_provenance(synthetic):
    info = synthetic.info
    assert info.name == "synthetic-voc" and info.origin == "synthetic" and info.canonical is False
    assert info.annotations == ["boxes"] and info.classes == ["car", "pedestrian", "sign"]
    assert info.split_counts == {"train": 160, "val": 40, "trainval": 200, "test": 100}
    assert "synthetic" in info.description
    assert not synthetic.data.problems, info.notes  # sizes, boxes and classes all consistent
    folder = synthetic.folder
    assert folder.name == "SyntheticVOC" and folder.parent.name == f"voc-v{synthetic_voc.VERSION}"
    assert (folder / "ImageSets" / "Main" / "car_trainval.txt").is_file()


def test_generation_is_deterministic(tmp_path, synthetic):
    a = synthetic_voc.write_synthetic_voc(tmp_path / "a", SMALL)
    b = synthetic_voc.write_synthetic_voc(tmp_path / "b", SMALL)
    assert a == b
    assert read_voc(tmp_path / "a").fingerprint == read_voc(tmp_path / "b").fingerprint
    for name in ("000001", "000005"):
        assert (tmp_path / "a" / "Annotations" / f"{name}.xml").read_bytes() == \
            (tmp_path / "b" / "Annotations" / f"{name}.xml").read_bytes()
        # image i depends only on (seed, i): the small set is a prefix of the cached full one
        assert (tmp_path / "a" / "Annotations" / f"{name}.xml").read_bytes() == \
            (synthetic.folder / "Annotations" / f"{name}.xml").read_bytes()
    synthetic_voc.write_synthetic_voc(tmp_path / "c", SMALL, seed=1)
    assert read_voc(tmp_path / "c").fingerprint != read_voc(tmp_path / "a").fingerprint


def test_reopening_gives_the_same_fingerprints(synthetic, cache_dir, tmp_path):
    again = open_dataset("synthetic-voc", tmp_path, cache_dir)
    assert again.info.fingerprint == synthetic.info.fingerprint
    assert again.info.split_fingerprints == synthetic.info.split_fingerprints
    smoke = open_dataset("voc2007", tmp_path, cache_dir, force_synthetic=True)
    assert smoke.info.fingerprint == synthetic.info.fingerprint and smoke.info.origin == "synthetic"


def test_sizes_flags_and_shapes_vary(synthetic):
    boxes, labels, difficult, truncated = _objects(synthetic)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    area = w * h
    assert (area < 32**2).sum() > 50 and ((area >= 32**2) & (area < 96**2)).sum() > 50 and (area >= 96**2).sum() > 20
    longer = np.maximum(w, h)
    assert longer.min() < 32 and longer.max() > 96
    assert 0.03 < difficult.mean() < 0.3 and 0.02 < truncated.mean() < 0.2
    clean = ~difficult & ~truncated
    aspect = w / h
    medians = {k: float(np.median(aspect[clean & (labels == i)])) for i, k in enumerate(synthetic.info.classes)}
    assert medians["car"] > 1.6 and medians["pedestrian"] < 0.55 and 0.85 < medians["sign"] < 1.15
    assert np.bincount(labels).min() > 150  # every class well represented
    per_image = [len(s) for s in synthetic.data.samples]
    assert min(per_image) == 0 and max(per_image) == 6
    sizes = synthetic.load("trainval").sizes
    assert sizes[:, 1].min() >= 240 and sizes[:, 1].max() <= 400 and len(np.unique(sizes[:, 1])) > 20


def test_images_load_and_boxes_fit(synthetic):
    test = synthetic.load("test", 16)  # the smoke profile's cap
    assert len(test) == 16 and test.name == "synthetic-voc/test"
    for i in range(3):
        image = test.load_image(i)
        s = test[i]
        assert image.shape == (s.height, s.width, 3) and image.dtype == np.uint8
        assert (s.boxes[:, :2] >= 0).all() and (s.boxes[:, 2] <= s.width).all()
        assert (s.boxes[:, 3] <= s.height).all()
        assert image.std() > 20  # textured, not flat
    assert len(synthetic.load("train", 24)) == 24 and len(synthetic.load("val", 8)) == 8


def test_objects_stand_out_from_their_surroundings(synthetic):
    """A crude learnability check: inside non-difficult boxes the pixels differ from a ring around them."""
    ds = synthetic.load("test")
    gaps = []
    for i in range(10):
        image = ds.load_image(i).astype(np.float32)
        for box, diff in zip(ds[i].boxes.astype(int), ds[i].difficult):
            x1, y1, x2, y2 = box
            if diff or min(x2 - x1, y2 - y1) < 8:
                continue
            inner = image[y1:y2, x1:x2].reshape(-1, 3).mean(0)
            ring = image[max(y1 - 6, 0):y2 + 6, max(x1 - 6, 0):x2 + 6].reshape(-1, 3).mean(0)
            gaps.append(np.abs(inner - ring).sum() + image[y1:y2, x1:x2].std())
    assert len(gaps) > 10 and np.median(gaps) > 20


def test_incomplete_cache_folder_is_regenerated(tmp_path, monkeypatch):
    monkeypatch.setattr(synthetic_voc, "COUNTS", SMALL)
    folder = tmp_path / "synthetic" / f"voc-v{synthetic_voc.VERSION}" / synthetic_voc.FOLDER_NAME
    (folder / "Annotations").mkdir(parents=True)
    (folder / "Annotations" / "half.xml").write_text("<annot")  # an interrupted generation, no marker
    assert synthetic_voc.ensure_synthetic_voc(tmp_path) == folder
    assert (folder / synthetic_voc.MARKER).is_file() and not (folder / "Annotations" / "half.xml").exists()
    stamp = (folder / synthetic_voc.MARKER).stat().st_mtime_ns
    synthetic_voc.ensure_synthetic_voc(tmp_path)
    assert (folder / synthetic_voc.MARKER).stat().st_mtime_ns == stamp  # generated once
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temporary folders left
    assert len(read_voc(folder).samples) == sum(SMALL.values())


# ---------------------------------------------------------------------- the data-shape variants
VARIANT_SMALL = {"train": 8, "val": 2, "test": 3}


@pytest.fixture(scope="module")
def variants(cache_dir, tmp_path_factory) -> dict[str, VocDataset]:
    root = tmp_path_factory.mktemp("no-data")
    # faces: 300 larger images (half a minute to generate); tests/unit/test_synthetic_faces.py opens it small
    return {v: open_dataset(f"synthetic-voc:{v}", root, cache_dir) for v in synthetic_voc.VARIANTS if v != "faces"}


def _heights_widths(ds: VocDataset, split: str) -> tuple[np.ndarray, np.ndarray]:
    boxes = np.concatenate([s.boxes for s in ds.load(split)] + [np.zeros((0, 4), np.float32)])
    return boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]


def test_variant_specs_open_as_synthetic_voc_sets(variants, cache_dir, tmp_path):
    assert set(variants) == {"crop", "tiny", "crowd", "wide", "grey"}
    for name, ds in variants.items():
        v = synthetic_voc.VARIANTS[name]
        info = ds.info
        assert info.name == f"synthetic-voc-{name}" and info.origin == "synthetic" and info.canonical is False
        assert info.annotations == ["boxes"] and info.classes == list(v.classes)
        assert info.split_counts["test"] == v.counts["test"] and info.split_counts["val"] == v.counts["val"]
        assert "synthetic" in info.description and name in info.description
        assert not ds.data.problems, info.notes
        assert ds.folder.parent.name == f"voc-{name}-v{synthetic_voc.VARIANT_VERSION}"
    again = open_dataset("synthetic-voc:wide", tmp_path, cache_dir)
    assert again.info.fingerprint == variants["wide"].info.fingerprint
    assert again.info.fingerprint != open_dataset("synthetic-voc", tmp_path, cache_dir).info.fingerprint
    with pytest.raises(ConfigError, match="unknown synthetic VOC variant 'huge'"):
        open_dataset("synthetic-voc:huge", tmp_path, cache_dir)


def test_variant_generation_is_deterministic(tmp_path):
    for name in ("crop", "grey"):
        a = synthetic_voc.write_variant(tmp_path / f"{name}-a", name, VARIANT_SMALL)
        b = synthetic_voc.write_variant(tmp_path / f"{name}-b", name, VARIANT_SMALL)
        assert a == b
        assert read_voc(tmp_path / f"{name}-a").fingerprint == read_voc(tmp_path / f"{name}-b").fingerprint
        for image_id in ("000001", "000002", "000011"):
            for sub, ext in (("Annotations", "xml"), ("JPEGImages", "jpg")):
                assert (tmp_path / f"{name}-a" / sub / f"{image_id}.{ext}").read_bytes() == \
                    (tmp_path / f"{name}-b" / sub / f"{image_id}.{ext}").read_bytes()


def test_crop_variant_trains_on_tight_crops_and_background_images(variants):
    ds = variants["crop"]
    trainval = ds.load("trainval")
    crops = [s for s in trainval if len(s)]
    backgrounds = [s for s in trainval if not len(s)]
    assert len(crops) >= 40 and len(backgrounds) >= 25
    for s in crops:  # the box is the whole image
        assert len(s) == 1 and s.boxes[0].tolist() == [0, 0, s.width, s.height]
    window = synthetic_voc.CROP_WINDOW
    sizes = {(s.width, s.height) for s in backgrounds}
    assert window in sizes  # exactly window-sized
    assert any(w < window[0] and h < window[1] for w, h in sizes)  # smaller than the window
    assert any(w >= 240 for w, _ in sizes)  # scene-sized
    test = ds.load("test")
    assert all(len(s) >= 1 for s in test)
    fractions = [(b[2] - b[0]) * (b[3] - b[1]) / (s.width * s.height) for s in test for b in s.boxes]
    assert max(fractions) < 0.3  # full scenes: no test object fills its image


def test_tiny_crowd_wide_and_grey_have_their_shapes(variants):
    h, _ = _heights_widths(variants["tiny"], "test")
    assert h.min() >= 9 and h.max() <= 30
    assert min(len(s) for s in variants["tiny"].load("test")) >= 20
    assert all(not s.difficult.any() for s in variants["tiny"].load("test"))  # tiny is the point, not an excuse
    assert min(len(s) for s in variants["crowd"].load("trainval")) >= 50
    assert min(len(s) for s in variants["crowd"].load("test")) >= 50
    wide = variants["wide"].load("test")
    aspects = np.concatenate([(s.boxes[:, 2] - s.boxes[:, 0]) / (s.boxes[:, 3] - s.boxes[:, 1])
                              for s in wide if len(s)])
    untruncated = np.concatenate([~s.truncated for s in wide if len(s)])
    # visible boxes: a partly hidden car can look narrower, but nine in ten keep 2.4:1 or more
    assert np.quantile(aspects[untruncated], 0.1) >= 2.4 and np.median(aspects) >= 2.8
    grey = variants["grey"].load("test")
    assert Image.open(grey[0].path).mode == "L"
    image = grey.load_image(0)  # read as RGB, three equal channels
    assert image.ndim == 3 and image.shape[2] == 3 and (image[..., 0] == image[..., 2]).all()
