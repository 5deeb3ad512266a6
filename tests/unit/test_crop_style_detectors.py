"""hog-svm-det, ism and ss-hog-svm on a crop-style training set, and their failure when nothing can be learnt.

The crop-style set is built here: training positives are tight crops of a planted figure (the box is the
whole image), negatives separate background images, some exactly the crop's size; val and test are full
scenes. A set of tight crops with no background at all must make every detector fail with
:class:`EmptyModelError` (one line naming the cause), never train an empty model.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from benchsuite.api import Context
from benchsuite.data.detection import DetectionSample, DetectionSet
from benchsuite.errors import EmptyModelError
from benchsuite.ops.boxes import box_iou
from benchsuite.ops.windows import keep_inside, positive_crops
from pipelines.classical.hog_svm_det import HogSvmDetector
from pipelines.classical.ism import ImplicitShapeModel
from pipelines.classical.ss_hog_svm import SelectiveSearchHogSVM

FIG_HW = (48, 24)


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    img = rng.integers(90, 170, (h, w, 3)).astype(np.uint8)
    img = cv2.GaussianBlur(img, (5, 5), 2)
    for _ in range(max(1, h * w // 3000)):  # clutter: random bars
        colour = tuple(int(v) for v in rng.integers(0, 255, 3))
        cv2.line(img, (int(rng.integers(0, w)), int(rng.integers(0, h))),
                 (int(rng.integers(0, w)), int(rng.integers(0, h))), colour, 2)
    return img


def _figure(img: np.ndarray, x1: int, y1: int) -> np.ndarray:
    """Draw the figure with its top-left corner at ``(x1, y1)``; returns its box."""
    oh, ow = FIG_HW
    cv2.rectangle(img, (x1 + 4, y1 + 12), (x1 + ow - 5, y1 + oh - 1), (250, 250, 250), -1)
    cv2.rectangle(img, (x1 + 6, y1 + 14), (x1 + ow - 7, y1 + oh - 3), (20, 20, 20), -1)
    cv2.circle(img, (x1 + ow // 2, y1 + 6), 6, (250, 250, 250), -1)
    cv2.circle(img, (x1 + ow // 2, y1 + 6), 4, (20, 20, 20), -1)
    return np.array([[x1, y1, x1 + ow, y1 + oh]], np.float32)


def _write(folder: Path, name: str, img: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    cv2.imwrite(str(path), np.ascontiguousarray(img[:, :, ::-1]))
    return path


def _crop_style_train(folder: Path, n_pos: int, n_neg: int, seed: int = 0) -> DetectionSet:
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(n_pos):  # tight crops: the figure fills the image
        img = _background(rng, *FIG_HW)
        box = _figure(img, 0, 0)
        path = _write(folder, f"pos{i}", img)
        samples.append(DetectionSample(f"pos{i}", path, FIG_HW[1], FIG_HW[0], box, [0], [False], [False]))
    for i in range(n_neg):  # background images: half exactly the crop's size, half larger
        h, w = FIG_HW if i % 2 == 0 else (96, 96)
        path = _write(folder, f"neg{i}", _background(rng, h, w))
        samples.append(DetectionSample.empty(f"neg{i}", path, w, h))
    return DetectionSet(samples, ("figure",), "crops/train")


def _scenes(folder: Path, n: int, seed: int, name: str) -> DetectionSet:
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(n):
        img = _background(rng, 120, 160)
        box = _figure(img, int(rng.integers(0, 160 - FIG_HW[1])), int(rng.integers(0, 120 - FIG_HW[0])))
        path = _write(folder, f"{name}{i}", img)
        samples.append(DetectionSample(f"{name}{i}", path, 160, 120, box, [0], [False], [False]))
    return DetectionSet(samples, ("figure",), f"crops/{name}")


@pytest.fixture(scope="module")
def crop_style(tmp_path_factory) -> tuple[DetectionSet, DetectionSet, DetectionSet]:
    root = tmp_path_factory.mktemp("crop-style")
    return (_crop_style_train(root / "train", 16, 16), _scenes(root / "val", 3, 1, "val"),
            _scenes(root / "test", 4, 2, "test"))


def _hits(det, test: DetectionSet) -> int:
    """Test images whose best detection finds the figure (IoU > 0.5)."""
    found = 0
    for s, image in test.iter_images():
        out = det.detect(image)
        found += int(len(out) > 0 and box_iou(out.boxes[:1], s.boxes)[0, 0] > 0.5)
    return found


HOG = dict(base_size=32, jitter=1, negatives_per_image=15, c_values=(0.1,), steps=(1.2,), strides=(8,),
           nms_thresholds=(0.3,), score_thresholds=(-0.5,), mining_rounds=1)


def test_hog_svm_det_trains_on_tight_crops_and_finds_objects_in_scenes(crop_style):
    train, val, test = crop_style
    ctx = Context()
    det = HogSvmDetector(**HOG).fit(train, val, ctx)
    stats = ctx.info["negative_source"]["figure"]
    assert stats["images_with_background"] == 16  # every background image, none of the tight crops
    assert stats["images_used"] == 16 and stats["found"] == min(stats["requested"], stats["available"])
    assert _hits(det, test) >= 3


def test_ss_hog_svm_trains_on_tight_crops_without_a_size_prior(crop_style, tmp_path):
    train, val, test = crop_style
    ctx = Context(cache_dir=tmp_path)
    det = SelectiveSearchHogSVM(proposer_params={"preset": "fast", "ks": (100,), "max_side": 200},
                                train_proposals=200, test_proposals=300, c_values=(0.03,), nms_values=(0.3,),
                                refit_on_trainval=False, n_jobs=1).fit(train, val, ctx)
    assert ctx.info["size_prior"] is False and ctx.info["positives_fill_image"] == 1.0
    assert ctx.info["negative_source"]["figure"]["found"] > 0
    assert _hits(det, test) >= 2


def test_ism_trains_on_tight_crops(crop_style):
    train, val, test = crop_style
    ctx = Context()
    det = ImplicitShapeModel(codebook_sizes=(60,), bandwidths=(0.1,), specificity_powers=(3.0,), max_side=None,
                             min_object_height=0, min_object_heights=None).fit(train, val, ctx)
    assert ctx.info["background_features"]["figure"] > 0
    assert sum(len(det.detect(im)) > 0 for _, im in test.iter_images()) >= 3


@pytest.fixture(scope="module")
def crops_only(tmp_path_factory) -> tuple[DetectionSet, DetectionSet]:
    root = tmp_path_factory.mktemp("crops-only")
    return _crop_style_train(root / "train", 8, 0), _scenes(root / "val", 2, 1, "val")


def test_no_negatives_hog_svm_det_fails_with_one_line(crops_only):
    train, val = crops_only
    with pytest.raises(EmptyModelError, match="no background windows") as err:
        HogSvmDetector(**HOG).fit(train, val, Context())
    assert "\n" not in str(err.value)


def test_no_negatives_ss_hog_svm_fails_with_one_line(crops_only, tmp_path):
    train, val = crops_only
    with pytest.raises(EmptyModelError, match="no background") as err:
        SelectiveSearchHogSVM(proposer_params={"preset": "fast", "ks": (100,), "max_side": 200},
                              n_jobs=1).fit(train, val, Context(cache_dir=tmp_path))
    assert "\n" not in str(err.value)


def test_no_negatives_ism_fails_with_one_line(crops_only):
    train, val = crops_only
    with pytest.raises(EmptyModelError, match="no background features") as err:
        ImplicitShapeModel(codebook_sizes=(40,), bandwidths=(0.1,), specificity_powers=(3.0,),
                           max_side=None).fit(train, val, Context())
    assert "\n" not in str(err.value)


def test_no_objects_at_all_fails(tmp_path):
    path = _write(tmp_path, "bg", _background(np.random.default_rng(0), 64, 64))
    empty = DetectionSet([DetectionSample.empty("bg", path, 64, 64)], ("figure",), "empty")
    with pytest.raises(EmptyModelError, match="no codebook"):
        ImplicitShapeModel(codebook_sizes=(40,), bandwidths=(0.1,)).fit(empty, empty, Context())
    with pytest.raises(EmptyModelError, match="no training boxes"):
        SelectiveSearchHogSVM(n_jobs=1).fit(empty, empty, Context(cache_dir=tmp_path))


def test_jittered_positives_of_tight_crops_stay_inside_the_image():
    rng = np.random.default_rng(0)
    image = np.full((48, 24, 3), 200, np.uint8)
    image[:, :2] = 0  # a dark left edge: mirrored padding would show it twice
    boxes = np.array([[0, 0, 24, 48]], float)
    crops = positive_crops(image, boxes, (48, 24), context=0.0, flip=False, jitter=20, rng=rng,
                           shift=0.2, scale=0.0)
    # shifted copies are moved back: every crop is the image itself (no mirrored border pulled in)
    np.testing.assert_array_equal(crops, np.repeat(image[None], 21, axis=0))
    moved = keep_inside(np.array([[-5, 10, 15, 30], [90, -3, 110, 7], [-10, 0, 200, 10]], float),
                        np.array([[0, 10, 20, 30], [80, 0, 100, 10], [0, 0, 100, 10]], float), 100, 50)
    np.testing.assert_allclose(moved, [[0, 10, 20, 30], [80, 0, 100, 10], [-55, 0, 155, 10]])
