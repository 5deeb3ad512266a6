"""imagefolder:PATH: layouts, seeded stratified splits, the size policy, the cache, bad input and confinement."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchsuite.data import synthetic_cifar
from benchsuite.data.datasets import open_dataset
from benchsuite.data.format_writers import write_imagefolder
from benchsuite.data.imagefolder import MAX_SIDE, ImageFolderDataset
from benchsuite.data.synthetic_formats import CIFAR_SEED, ensure_synthetic_cifar_folders, ensure_synthetic_crops
from benchsuite.errors import ConfigError, DataError


def _images(n: int, size: tuple[int, int] = (20, 12), grey: bool = False, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    w, h = size
    shape = (h, w) if grey else (h, w, 3)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(n)]


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


def _open(spec: str, cache: Path) -> ImageFolderDataset:
    return open_dataset(spec, Path("."), cache)  # type: ignore[return-value]


def test_flat_layout_draws_a_seeded_stratified_split_and_writes_nothing_into_the_folder(tmp_path):
    folder = write_imagefolder(tmp_path / "set", _images(90), [0] * 60 + [1] * 30, ["cat", "dog"])
    before = _files(folder)
    ds = _open(f"imagefolder:{folder}", tmp_path / "cache")
    assert ds.info.classes == ["cat", "dog"]
    counts = ds.info.split_counts
    assert counts["test"] == 18 and counts["val"] == 7 and counts["train"] == 65  # 0.2 of 90, 0.1 of the rest
    assert counts["trainval"] == counts["train"] + counts["val"]
    # stratified: each split keeps the 2:1 ratio (largest remainder)
    for split, (cats, dogs) in {"test": (12, 6), "train": (43, 22)}.items():
        labels = ds.load(split).labels
        assert (int((labels == 0).sum()), int((labels == 1).sum())) == (cats, dogs)
    ids = {s: set(ds.split_ids(s)) for s in ("train", "val", "test")}
    assert not (ids["train"] & ids["test"]) and not (ids["val"] & ids["test"]) and not (ids["train"] & ids["val"])
    again = _open(f"imagefolder:{folder}", tmp_path / "cache2")
    assert {s: again.split_ids(s) for s in ids} == {s: ds.split_ids(s) for s in ids}  # seeded: the same draw
    assert ds.info.options["val_fraction"] == 0.1 and ds.info.options["test_fraction"] == 0.2
    manifest = ds.write_manifest(tmp_path / "run" / "splits")
    assert manifest.is_file() and _files(folder) == before  # nothing written into the user's folder


def test_fractions_from_the_spec(tmp_path):
    folder = write_imagefolder(tmp_path / "set", _images(40), [0, 1] * 20, ["a", "b"])
    ds = _open(f"imagefolder:{folder}?test_fraction=0.5&val_fraction=0.25", tmp_path / "cache")
    assert ds.info.split_counts["test"] == 20 and ds.info.split_counts["val"] == 5
    with pytest.raises(ConfigError, match="test_fraction"):
        _open(f"imagefolder:{folder}?test_fraction=1.5", tmp_path / "cache")
    with pytest.raises(ConfigError, match="unknown option 'colour'"):
        _open(f"imagefolder:{folder}?colour=1", tmp_path / "cache")


def test_split_folders_as_given_and_val_drawn_from_train(tmp_path):
    images = _images(60)
    labels = [0, 1, 2] * 20
    splits = ["train"] * 45 + ["test"] * 15
    folder = write_imagefolder(tmp_path / "set", images, labels, ["a", "b", "c"], splits=splits)
    ds = _open(f"imagefolder:{folder}", tmp_path / "cache")
    assert ds.info.split_counts == {"train": 41, "val": 4, "trainval": 45, "test": 15}  # val: round(0.1 x 45)
    assert all(p.startswith("test/") for p in ds.split_ids("test"))
    assert all(p.startswith("train/") for p in ds.split_ids("val"))
    # with a val/ folder (here named valid/) the three are used as they are
    folder = write_imagefolder(tmp_path / "set2", images, labels, ["a", "b", "c"],
                               splits=["train"] * 30 + ["valid"] * 15 + ["test"] * 15)
    ds = _open(f"imagefolder:{folder}", tmp_path / "cache")
    assert ds.info.split_counts == {"train": 30, "val": 15, "trainval": 45, "test": 15}
    assert all(p.startswith("valid/") for p in ds.split_ids("val"))
    # a class without training images cannot be learnt
    folder = write_imagefolder(tmp_path / "set3", images, [0] * 45 + [1] * 15, ["a", "b"], splits=splits)
    with pytest.raises(DataError, match="class 'b' has no training image"):
        _open(f"imagefolder:{folder}", tmp_path / "cache")
    (folder / "extra").mkdir()
    with pytest.raises(DataError, match="a folder beside the split folders"):
        _open(f"imagefolder:{folder}", tmp_path / "cache")


def test_train_and_val_without_test_scores_val_as_test(tmp_path):
    folder = write_imagefolder(tmp_path / "set", _images(40), [0, 1] * 20, ["a", "b"],
                               splits=["train"] * 30 + ["val"] * 10)
    ds = _open(f"imagefolder:{folder}", tmp_path / "cache")
    assert ds.info.split_counts["test"] == 10 and ds.info.split_counts["val"] == 3
    assert any("scored as test" in n for n in ds.info.notes)


def test_size_policy_median_cap_and_given(tmp_path):
    sizes = [(30, 10), (32, 12), (34, 14), (40, 16), (28, 8)] * 4
    images = [np.full((h, w, 3), 100, np.uint8) for w, h in sizes]
    folder = write_imagefolder(tmp_path / "set", images, [0, 1] * 10, ["a", "b"])
    ds = _open(f"imagefolder:{folder}", tmp_path / "cache")
    assert ds.info.options["image_size"] == [32, 12]  # the median width and height
    train = ds.load("train")
    assert train.images.shape[1:] == (12, 32, 3) and train.images.dtype == np.uint8
    fixed = _open(f"imagefolder:{folder}?size=16x24", tmp_path / "cache")
    assert fixed.load("test").images.shape[1:] == (24, 16, 3)
    assert fixed.info.name.endswith("-16x24") and fixed.info.name != ds.info.name  # both can be in one run
    square = _open(f"imagefolder:{folder}?size=20", tmp_path / "cache")
    assert square.info.options["image_size"] == [20, 20]
    with pytest.raises(ConfigError, match="size="):
        _open(f"imagefolder:{folder}?size=0x4", tmp_path / "cache")
    big = write_imagefolder(tmp_path / "big", [np.zeros((300, 600, 3), np.uint8)] * 6, [0, 1] * 3, ["a", "b"])
    assert _open(f"imagefolder:{big}", tmp_path / "cache").info.options["image_size"] == [MAX_SIDE, MAX_SIDE // 2]


def test_pixels_unchanged_at_the_size_and_grey_repeated(tmp_path):
    images = _images(12, (20, 12), grey=True)
    folder = write_imagefolder(tmp_path / "set", images, [0, 1] * 6, ["a", "b"])
    ds = _open(f"imagefolder:{folder}?test_fraction=0.5", tmp_path / "cache")
    loaded = ds.load("test")
    for path, array in zip(ds.split_ids("test"), loaded.images):
        original = np.asarray(Image.open(folder / path))
        assert np.array_equal(array, np.repeat(original[:, :, None], 3, axis=2))
    assert any("single-channel" in n for n in ds.info.notes)


def test_the_pixel_cache_is_used_and_a_damaged_one_rebuilt(tmp_path, monkeypatch):
    folder = write_imagefolder(tmp_path / "set", _images(20), [0, 1] * 10, ["a", "b"])
    ds = _open(f"imagefolder:{folder}", tmp_path / "cache")
    first = ds.load("train").images
    cache = ds._pixel_cache()
    assert cache is not None and cache.is_file()
    monkeypatch.setattr(ImageFolderDataset, "_decode", lambda self, positions: pytest.fail("decoded again"))
    assert np.array_equal(_open(f"imagefolder:{folder}", tmp_path / "cache").load("train").images, first)
    monkeypatch.undo()
    cache.write_bytes(b"not an array")
    assert np.array_equal(_open(f"imagefolder:{folder}", tmp_path / "cache").load("train").images, first)


def test_bad_input_is_one_line_naming_the_folder(tmp_path):
    folder = write_imagefolder(tmp_path / "set", _images(6), [0, 1] * 3, ["a", "b"])
    (folder / "c").mkdir()
    (folder / "c" / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError) as err:
        _open(f"imagefolder:{folder}", tmp_path / "cache")
    assert f"{folder / 'c'}: a class folder with no readable image" in str(err.value)
    (folder / "c" / "broken.jpg").unlink()
    with pytest.raises(DataError, match="class folder with no image file"):
        _open(f"imagefolder:{folder}", tmp_path / "cache")
    one = write_imagefolder(tmp_path / "one", _images(4), [0] * 4, ["a"])
    with pytest.raises(DataError, match="expected at least 2"):
        _open(f"imagefolder:{one}", tmp_path / "cache")
    with pytest.raises(DataError, match="no such folder"):
        _open(f"imagefolder:{tmp_path / 'absent'}", tmp_path / "cache")


def test_unreadable_images_are_skipped_and_counted(tmp_path):
    folder = write_imagefolder(tmp_path / "set", _images(10), [0, 1] * 5, ["a", "b"])
    (folder / "a" / "truncated.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    ds = _open(f"imagefolder:{folder}", tmp_path / "cache")
    assert sum(ds.info.split_counts[s] for s in ("train", "val", "test")) == 10
    assert any("unreadable image" in n and "truncated.png" in n for n in ds.info.notes)


def test_links_outside_and_special_files_are_never_opened(tmp_path):
    outside = write_imagefolder(tmp_path / "outside", _images(2), [0, 1], ["x", "y"])
    folder = write_imagefolder(tmp_path / "set", _images(10), [0, 1] * 5, ["a", "b"])
    os.symlink(outside / "x" / "000000.png", folder / "a" / "linked-out.png")
    os.mkfifo(folder / "b" / "fifo.png")
    signal.alarm(20)  # opening a FIFO would block: fail instead of hanging
    try:
        ds = _open(f"imagefolder:{folder}", tmp_path / "cache")
        files = [p for s in ("train", "val", "test") for p in ds.split_ids(s)]
        ds.load("train")
    finally:
        signal.alarm(0)
    assert len(files) == 10 and not any("linked-out" in f or "fifo" in f for f in files)


def test_synthetic_cifar_folders_hold_the_generated_pixels(cache_dir):
    ds = _open(ensure_synthetic_cifar_folders(cache_dir), cache_dir)
    assert ds.info.origin == "synthetic" and ds.info.split_counts["test"] == 200
    _, _, test_images, test_labels = synthetic_cifar.generate(60, 20, CIFAR_SEED)
    test = ds.load("test")
    names = [synthetic_cifar.CLASSES.index(test.classes[k]) for k in test.labels]
    key = lambda images, labels: sorted((int(k), im.tobytes()) for im, k in zip(images, labels))  # noqa: E731
    assert key(test.images, names) == key(test_images, test_labels)  # PNG: lossless, same pixels and labels


def test_synthetic_crops_are_non_square_grey_and_imbalanced(cache_dir):
    ds = _open(ensure_synthetic_crops(cache_dir), cache_dir)
    assert ds.info.options["image_size"] == [100, 40]
    train = ds.load("train")
    assert train.images.shape[1:] == (40, 100, 3)
    assert np.array_equal(train.images[..., 0], train.images[..., 2])  # grey
    counts = np.bincount(train.labels)
    assert counts[0] > 2 * counts[1]
