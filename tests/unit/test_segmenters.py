"""The segmentation pipelines' own parts: the deep wrapper's crops, resizing and ``--weights``, the floor, and
superpixel-svm's choice on val (the conformance checks, tests/unit/test_conformance.py, cover the contract)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchsuite.api import Budget, Context
from benchsuite.data.voc_segmentation import VOID, tiny_splits
from pipelines.classical.superpixel_svm import SuperpixelSVM
from pipelines.deep.segmentation.training import random_crop, resize_short_side
from pipelines.deep.segmenters import FCN8s, UNetSegmenter
from pipelines.reference.majority_class import MajorityClassSegmenter

TINY = {"steps": 2, "batch_size": 2, "short_side": 64, "crop": 64}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_splits(tmp_path_factory.mktemp("tiny-seg"))


def test_resize_keeps_the_aspect_and_labels():
    mask = np.zeros((100, 150), np.uint8)
    mask[:, 75:] = 2
    small = resize_short_side(mask, 40, nearest=True)
    assert small.shape == (40, 60) and set(np.unique(small)) == {0, 2}
    assert resize_short_side(np.zeros((30, 50, 3), np.uint8), 60).shape == (60, 100, 3)


def test_crops_pad_with_void_and_flip_image_and_mask_together():
    rng = np.random.default_rng(0)
    image = np.arange(20 * 30, dtype=np.float32).reshape(20, 30, 1).repeat(3, axis=2)
    mask = (np.arange(30)[None, :] % 3).repeat(20, axis=0).astype(np.uint8)
    fill = np.full(3, -5.0, np.float32)
    for _ in range(20):
        x, y = random_crop(image, mask, 40, (1.0, 1.0), True, rng, fill)
        assert x.shape == (40, 40, 3) and y.shape == (40, 40)
        outside = y == VOID
        assert outside.sum() == 40 * 40 - 20 * 30 and (x[outside] == -5.0).all()
        inside = ~outside
        assert np.array_equal(x[..., 0][inside].astype(np.int64) % 30 % 3, y[inside].astype(np.int64))
    x, y = random_crop(image, mask, 10, (0.5, 2.0), False, rng, fill)
    assert x.shape == (10, 10, 3) and (y != VOID).all()


def test_weights_start_the_network_from_a_local_state_dict(tiny, tmp_path):
    train, val, _ = tiny
    first = FCN8s(**TINY).fit(train, val, Context(budget=Budget("smoke")))
    path = tmp_path / "fcn8s.pth"
    torch.save({"model": first.model_.state_dict()}, path)  # a wrapped checkpoint, as training scripts save them
    ctx = Context(budget=Budget("smoke"), weights=str(path))
    again = FCN8s(**{**TINY, "steps": 1, "lr": 1e-9}).fit(train, val, ctx)
    assert ctx.info["weights"] == "file" and ctx.info["weights_tensors_loaded"] == len(first.model_.state_dict())
    before, after = first.model_.state_dict(), again.model_.state_dict()
    assert torch.allclose(before["score_fr.weight"], after["score_fr.weight"], atol=1e-6)
    with pytest.raises(ValueError, match="tensors match the unet network"):
        UNetSegmenter(**TINY).fit(train, val, Context(budget=Budget("smoke"), weights=str(path)))


def test_the_floor_labels_every_pixel_with_the_commonest_class(tiny):
    train, val, test = tiny
    counts = train.class_pixel_counts()
    floor = MajorityClassSegmenter().fit(train, val, Context())
    out = floor.segment(test.load_image(0))
    assert out.shape == test.load_mask(0).shape and (out == int(np.argmax(counts))).all()


def test_superpixel_svm_records_its_choice_and_refits_on_train_and_val(tiny):
    train, val, test = tiny
    ctx = Context()
    model = SuperpixelSVM(n_segments=60, c_grid=(0.1, 1.0), smoothings=("none", "average")).fit(train, val, ctx)
    selection = ctx.info["selection"]
    assert selection["metric"] == "val_mean_iou" and len(selection["grid"]) == 4
    assert ctx.info["trained_on"] == "train+val"
    assert selection["chosen"]["smoothing"] == model.smoothing_
    scores = [s if s is not None else -1 for s in selection["scores"]]
    assert selection["score"] == max(scores)
    pred = model.segment(test.load_image(0))
    assert pred.shape == test.load_mask(0).shape and pred.max() < test.num_classes
