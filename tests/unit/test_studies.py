"""Studies over a data axis (issue 25): nested subsets, the axes' values and derivations, the corruptions, the
work rule, the derived data set and its spec, and the crossover against brute force."""

from __future__ import annotations

import colorsys
import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from benchsuite.api import Budget
from benchsuite.data.datasets import DatasetInfo
from benchsuite.data.detection import DetectionSample, DetectionSet
from benchsuite.data.images import ImageSet
from benchsuite.errors import ConfigError
from benchsuite.studies import corruptions as cr
from benchsuite.studies.axes import axis_names, get_axis, scaled_epochs
from benchsuite.studies.builtin import scale_sample
from benchsuite.studies.crossover import crossover, envelope, last_change
from benchsuite.studies.derived import DerivedDataset, make_spec, parse_spec
from benchsuite.studies.subsets import nested_order, nested_subset, subset_size
from benchsuite.tasks.base import split_cap

# ------------------------------------------------------------------------------------------------ registry


def test_the_suites_axes_are_registered_through_entry_points():
    assert set(axis_names()) >= {"train-size", "resolution", "corruption"}
    with pytest.raises(ConfigError, match=r"unknown study axis 'lighting'; known axes: .*train-size"):
        get_axis("lighting")


# ------------------------------------------------------------------------------------------------ subsets


@pytest.mark.parametrize("seed", [0, 3])
def test_nested_subsets_are_nested_and_stratified_within_one_image_per_class(seed):
    labels = np.random.default_rng(5).choice(7, size=2000, p=[0.3, 0.2, 0.15, 0.15, 0.1, 0.05, 0.05])
    sizes = [1, 7, 20, 100, 333, 1000, 2000]
    subsets = [set(nested_subset(labels, n, seed).tolist()) for n in sizes]
    for small, large in itertools.pairwise(subsets):
        assert small <= large
    share = np.bincount(labels, minlength=7) / len(labels)
    for n, chosen in zip(sizes, subsets):
        counts = np.bincount(labels[sorted(chosen)], minlength=7)
        assert len(chosen) == n
        assert np.all(np.abs(counts - n * share) < 1.0 + 1e-9), (n, counts, n * share)


def test_nested_order_is_a_permutation_that_depends_on_the_seed_only():
    labels = np.repeat(np.arange(4), 25)
    a, b = nested_order(labels, 1), nested_order(labels, 1)
    assert np.array_equal(a, b) and sorted(a.tolist()) == list(range(100))
    assert not np.array_equal(a, nested_order(labels, 2))


def test_subset_size_rounds_fractions_and_clips_counts():
    assert subset_size(45000, 0.01) == 450 and subset_size(10, 0.01) == 1 and subset_size(10, 1.0) == 10
    assert subset_size(100, 500) == 100 and subset_size(100, 30) == 30


# ------------------------------------------------------------------------------------------------ values


def test_train_size_values_are_fractions_or_counts_never_both():
    axis = get_axis("train-size")
    assert [p.value for p in axis.points("50%,1%,0.1,1.0,10%")] == [0.01, 0.1, 0.5, 1.0]
    assert [p.label for p in axis.points("1%,100%")] == ["1%", "100%"]
    assert [(p.value, p.slug) for p in axis.points("5000,500")] == [(500, "n500"), (5000, "n5000")]
    for bad, match in (("1%,500", "mixes fractions and counts"), ("0%", r"outside \(0, 1\]"),
                       ("150%", "outside"), ("2.5e", "not a number"), ("", "no value")):
        with pytest.raises(ConfigError, match=match):
            axis.points(bad)
    p = axis.points("3%")[0]
    assert axis.points(p.text) == [p]  # the canonical text reads back to the same point


def test_resolution_and_corruption_values():
    res = get_axis("resolution")
    assert [p.label for p in res.points("1,x0.25,0.5")] == ["x0.25", "x0.5", "x1"]
    assert [p.value for p in res.points("16px,8px")] == [8, 16]
    with pytest.raises(ConfigError, match="mixes factors and pixel sizes"):
        res.points("0.5,16px")
    cor = get_axis("corruption")
    assert len(cor.points("1,3,5")) == 3 * len(cr.CORRUPTIONS)
    assert [p.text for p in cor.points("jpeg")] == [f"jpeg-{s}" for s in cr.SEVERITIES]
    got = cor.points("contrast-5,gaussian-noise-3")
    assert [(p.curve, p.position) for p in got] == [("gaussian-noise", 3.0), ("contrast", 5.0)]  # the table's order
    for bad in ("fog-3", "gaussian-noise-6", "gaussian-noise-x"):
        with pytest.raises(ConfigError, match="corruption"):
            cor.points(bad)


# ------------------------------------------------------------------------------------------------ work rule


def test_the_work_floor_raises_epochs_on_small_subsets_only():
    ctor = {"epochs": (int, 16), "lr": (float, 0.1)}
    params, changed = scaled_epochs({"epochs": 9}, 0.01, 0.25, ctor)
    assert params["epochs"] == 225 and changed["epochs"] == [9, 225]  # 9 x 0.25 / 0.01
    assert scaled_epochs({"epochs": 9}, 0.5, 0.25, ctor) == ({"epochs": 9}, None)  # 9 x 0.5 >= 9 x 0.25
    assert scaled_epochs({"epochs": 9}, 0.01, 0.0, ctor) == ({"epochs": 9}, None)  # floor 0: epochs per point
    assert scaled_epochs({}, 0.1, 1.0, ctor)[0] == {"epochs": 160}  # the constructor's default, equal training
    assert scaled_epochs({"epochs": 2.0}, 0.1, 0.25, {"epochs": (float, 2.0)})[0] == {"epochs": 5.0}
    assert scaled_epochs({"iterations": 400}, 0.01, 0.25, {"iterations": (int, 100)}) == ({"iterations": 400}, None)


def test_train_size_turns_off_the_refit_on_train_and_val():
    axis = get_axis("train-size")
    point = axis.points("10%")[0]
    params, changed = axis.work({"k_values": (1, 3)}, point, 0.25, 45000,
                                {"k_values": (tuple, (1,)), "refit_on_trainval": (bool, True)})
    assert params == {"k_values": (1, 3), "refit_on_trainval": False} and changed == {"refit_on_trainval": False}
    count = axis.points("4500")[0]
    params, changed = axis.work({"epochs": 4}, count, 0.5, 45000, {"epochs": (int, 4)})
    assert params["epochs"] == 20  # 4500 of 45000 is a share of 0.1: 4 x 0.5 / 0.1


# ------------------------------------------------------------------------------------------------ derivations


def _boxes_set(tmp_path: Path) -> DetectionSet:
    from PIL import Image

    image = np.zeros((60, 80, 3), np.uint8)
    image[10:30, 20:60] = 255  # the object: x 20..60, y 10..30
    path = tmp_path / "a.png"
    Image.fromarray(image).save(path)
    sample = DetectionSample("a", path, 80, 60, np.array([[20, 10, 60, 30]], np.float32), np.array([0]),
                             np.array([False]), np.array([False]))
    return DetectionSet([sample], ("thing",), "toy/test")


def _bright_box(image: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(image[..., 0] > 127)
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


@pytest.mark.parametrize("value", ["0.5", "x0.25", "1.5", "40px"])
def test_resolution_scales_boxes_with_their_pixels(tmp_path, value):
    axis = get_axis("resolution")
    point = axis.points(value)[0]
    derived = axis.derive(_boxes_set(tmp_path), "test", point, 0)
    image = derived.load_image(0)
    s = derived[0]
    assert image.shape[:2] == (s.height, s.width)
    # the box of the bright region in the resampled pixels is the scaled box, within a pixel of blur
    assert np.allclose(_bright_box(image), s.boxes[0], atol=1.0), (_bright_box(image), s.boxes[0])
    assert derived.subset([0]).load_image(0).shape == image.shape


def test_resolution_resamples_classification_images_and_scale_sample_drops_vanished_boxes(tmp_path):
    axis = get_axis("resolution")
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    out = axis.derive(ImageSet(images, np.arange(4), ("a", "b", "c", "d")), "train", axis.points("12px")[0], 0)
    assert out.images.shape == (4, 12, 12, 3) and np.array_equal(out.labels, np.arange(4))
    s = DetectionSample("b", tmp_path / "b.png", 100, 100, np.array([[0, 0, 50, 50], [10, 10, 10.5, 60]]),
                        np.array([0, 0]), np.array([False, False]), np.array([False, True]))
    small = scale_sample(s, axis.points("0.01")[0])
    assert (small.width, small.height) == (1, 1) and len(small.boxes) == 2
    assert np.allclose(small.boxes[0], [0, 0, 0.5, 0.5])


def test_train_size_subsets_train_only_and_refuses_trainval():
    axis = get_axis("train-size")
    labels = np.repeat(np.arange(5), 20)
    data = ImageSet(np.zeros((100, 4, 4, 3), np.uint8), labels, tuple("abcde"))
    point = axis.points("30%")[0]
    sub = axis.derive(data, "train", point, 2)
    assert len(sub) == 30 and np.array_equal(np.bincount(sub.labels), [6] * 5)
    assert axis.derive(data, "val", point, 2) is data
    with pytest.raises(ConfigError, match="trainval"):
        axis.derive(data, "trainval", point, 2)


# ------------------------------------------------------------------------------------------------ corruptions


def _images(n: int = 6, size: int = 32) -> np.ndarray:
    rng = np.random.default_rng(3)
    base = rng.integers(40, 216, (n, 1, 1, 3))
    grad = np.linspace(-30, 30, size)[None, :, None, None]
    return np.clip(base + grad + rng.normal(0, 2, (n, size, size, 3)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("family", list(cr.CORRUPTIONS))
def test_each_corruption_is_deterministic_per_image_and_grows_with_severity(family):
    x = _images()
    a = cr.corrupt_batch(x, family, 3, seed=0)
    assert a.shape == x.shape and a.dtype == np.uint8
    assert np.array_equal(a, cr.corrupt_batch(x, family, 3, seed=0))
    assert np.array_equal(a[2], cr.corrupt(x[2], family, 3, seed=0))  # independent of the batch
    assert np.array_equal(cr.corrupt_batch(x[::-1], family, 3, 0), a[::-1])  # and of the order
    change = [np.abs(cr.corrupt_batch(x, family, s, 0).astype(int) - x).mean() for s in cr.SEVERITIES]
    assert change[0] > 0 and change[-1] > change[0]


def test_noise_depends_on_the_seed_and_blur_on_nothing_else():
    x = _images()
    assert not np.array_equal(cr.corrupt_batch(x, "gaussian-noise", 2, 0), cr.corrupt_batch(x, "gaussian-noise", 2, 1))
    assert np.array_equal(cr.corrupt_batch(x, "defocus-blur", 2, 0), cr.corrupt_batch(x, "defocus-blur", 2, 1))


def test_contrast_and_brightness_against_their_definitions():
    x = _images(3)
    c = cr.CORRUPTIONS["contrast"].parameter(4)
    got = cr.corrupt_batch(x, "contrast", 4, 0).astype(np.float64) / 255
    f = x.astype(np.float64) / 255
    want = (f - f.mean(axis=(1, 2, 3), keepdims=True)) * c + f.mean(axis=(1, 2, 3), keepdims=True)
    assert np.abs(got - want).max() <= 0.5 / 255 + 1e-9
    b = cr.CORRUPTIONS["brightness"].parameter(5)
    out = cr.corrupt_batch(x, "brightness", 5, 0)
    for pixel_in, pixel_out in zip(x.reshape(-1, 3)[::97], out.reshape(-1, 3)[::97]):
        h, s, v = colorsys.rgb_to_hsv(*(pixel_in / 255))
        want = np.array(colorsys.hsv_to_rgb(h, s, min(1.0, v + b))) * 255
        assert np.abs(pixel_out - want).max() <= 0.51


def test_pixelate_makes_blocks_and_motion_kernels_are_one_sided_lines():
    x = _images(1, 64)
    out = cr.corrupt_batch(x, "pixelate", 5, 0)[0]
    distinct = len(np.unique(out.reshape(-1, 3), axis=0))
    assert distinct <= int(64 * 0.65) ** 2
    k = cr.motion_kernel(6.0, 2.0, 0.0)
    assert np.isclose(k.sum(), 1.0) and k.shape == (13, 13)
    row = k[6]
    assert row[:6].sum() == 0 and np.all(np.diff(row[6:]) <= 0)  # from the centre forward, weights falling


# ------------------------------------------------------------------------------------------------ derived set


class _ToyDataset:
    """A base data set of 40 train / 10 val / 20 test images, as a format would open it."""

    def __init__(self):
        rng = np.random.default_rng(0)
        self.splits = {s: ImageSet(rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8), np.arange(n) % 4,
                                   tuple("abcd"), f"toy/{s}") for s, n in (("train", 40), ("val", 10), ("test", 20))}
        self.info = DatasetInfo("toy", ["image-labels"], "synthetic", False, "f00d", "/toy", list("abcd"),
                                {s: len(v) for s, v in self.splits.items()},
                                {s: f"{s}-fp" for s in self.splits}, "a toy set")

    def load(self, split, max_images=None):
        data = self.splits[split]
        return data if max_images is None else data.subset(np.arange(min(max_images, len(data))))

    def write_manifest(self, folder):
        return Path(folder) / "toy.split.json"


def test_a_derived_data_set_names_its_point_and_fingerprints_the_splits_it_changes():
    axis = get_axis("train-size")
    a = DerivedDataset(_ToyDataset(), axis, axis.points("25%"), 0, "toy")
    b = DerivedDataset(_ToyDataset(), axis, axis.points("25%"), 1, "toy")
    assert a.name == "toy.train-size-25pct" and a.info.split_counts["train"] == 10
    assert a.info.fingerprint == b.info.fingerprint  # the data set's identity: base, axis, point
    fa, fb = a.info.split_fingerprints, b.info.split_fingerprints
    assert fa["test"] == fb["test"] == "test-fp" and fa["train"] != fb["train"] != "train-fp"  # seeds draw
    assert len(a.load("train")) == 10 and len(a.load("test")) == 20
    assert a.study_point("test")["label"] == "25%" and a.eval_splits(["test"]) == ["test"]
    spec = make_spec("train-size", axis.points("25%"), 1, "voc:/data/a:b")
    got_axis, points, seed, base = parse_spec(spec)
    assert (got_axis.name, [p.text for p in points], seed, base) == ("train-size", ["0.25"], 1, "voc:/data/a:b")
    with pytest.raises(ConfigError, match="expected study:AXIS:VALUES:SEED:BASE_SPEC"):
        parse_spec("study:train-size:0.1:cifar10")


def test_a_one_fit_axis_scores_every_point_as_a_variant_of_test():
    axis = get_axis("corruption")
    ds = DerivedDataset(_ToyDataset(), axis, axis.points("contrast-2,jpeg-4"), 0, "toy")
    assert ds.name == "toy.corruption"
    assert ds.eval_splits(["val", "test"]) == ["val", "test", "test.jpeg-4", "test.contrast-2"]  # the table's order
    clean, jpeg = ds.load("test"), ds.load("test.jpeg-4", 5)
    assert len(jpeg) == 5 and np.array_equal(jpeg.labels, clean.labels[:5])
    assert np.array_equal(jpeg.images, cr.corrupt_batch(clean.images[:5], "jpeg", 4, 0))
    assert ds.load("train") is not None and ds.study_point("test")["text"] == "clean"
    assert ds.study_point("test.jpeg-4")["curve"] == "jpeg" and ds.study_point("val") is None
    assert ds.info.split_fingerprints["test.jpeg-4"] != ds.info.split_fingerprints["test"]
    # a variant of a split has that split's cap
    assert split_cap(Budget(profile="smoke", max_test_images=7), "test.jpeg-4") == 7


# ------------------------------------------------------------------------------------------------ crossover


def _brute_last_crossing(x, d, log):
    """The last place where the piecewise-linear difference (in log or linear x) goes through zero with a real
    change of sign, by dense sampling."""
    t = np.log(x) if log else np.asarray(x, float)
    grid = np.linspace(t[0], t[-1], 200001)
    curve = np.interp(grid, t, d)
    s = np.sign(curve)
    nz = np.flatnonzero(s != 0)
    flips = [nz[i + 1] for i in range(len(nz) - 1) if s[nz[i]] != s[nz[i + 1]]]
    if not flips:
        return None
    at = grid[flips[-1]]
    return math.exp(at) if log else at


@pytest.mark.parametrize("seed", range(6))
def test_the_crossover_is_the_last_change_of_lead_as_brute_force_finds_it(seed):
    rng = np.random.default_rng(seed)
    x = np.array([0.01, 0.03, 0.1, 0.2, 0.5, 1.0])
    deep, classical = rng.uniform(0.2, 0.9, 6), rng.uniform(0.2, 0.9, 6)
    pos, changes = last_change(x, deep - classical, "log")
    want = _brute_last_crossing(x, deep - classical, True)
    assert (pos is None) == (want is None)
    if pos is not None:
        assert abs(math.log(pos) - math.log(want)) < 1e-3
        assert changes == sum(np.sign(a) != np.sign(b) for a, b in zip(deep - classical, (deep - classical)[1:]))


def test_crossover_interval_covers_the_true_crossing_and_no_crossover_says_who_leads():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    classical = np.array([0.60, 0.58, 0.55, 0.50, 0.45])
    deep = np.array([0.70, 0.60, 0.50, 0.40, 0.30])  # classical overtakes between 2 and 3
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.01, (300, 5))
    c = crossover(x, deep, classical, scale="linear", deep_resamples=deep + noise,
                  classical_resamples=classical + rng.normal(0, 0.01, (300, 5)))
    assert c.first == "deep" and c.last == "classical" and c.changes == 1
    assert abs(c.position - (2 + 0.02 / 0.07)) < 1e-9
    assert c.lo <= c.position <= c.hi and c.lo >= 1.5 and c.hi <= 3.5
    # lower is better flips the lead
    assert crossover(x, deep, classical, higher_is_better=False).first == "classical"
    ahead = crossover(x, deep + 0.5, classical, deep_resamples=np.tile(deep + 0.5, (10, 1)),
                      classical_resamples=np.tile(classical, (10, 1)))
    assert ahead.position is None and ahead.last == "deep" and ahead.share == 0.0
    assert np.allclose(envelope(np.array([[0.1, np.nan], [0.3, np.nan]])), [0.3, np.nan], equal_nan=True)


def test_resamples_that_never_cross_put_the_interval_beyond_the_sweep():
    x = np.array([0.1, 0.5, 1.0])
    classical, deep = np.array([0.5, 0.5, 0.5]), np.array([0.4, 0.49, 0.6])  # deep overtakes between 0.5 and 1
    flat = np.tile(classical, (40, 1))
    draws = np.vstack([np.tile(deep, (20, 1)), np.tile([0.4, 0.45, 0.49], (20, 1))])  # half never cross
    c = crossover(x, deep, classical, scale="log", deep_resamples=draws, classical_resamples=flat)
    assert c.position is not None and c.hi == math.inf and c.share == 0.5
