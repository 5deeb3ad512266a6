"""The deep segmenters' shared wrapper: one network of :func:`pipelines.deep.segmentation.build_network`, trained
from scratch through :class:`benchsuite.training.Trainer` and predicting at a fixed working resolution.

**Resolution.** Every image is resized so that its shorter side is ``short_side`` pixels (area interpolation; masks
by nearest neighbour), for training and prediction alike; the class scores are resized back to the image's full
size (bilinear) before the argmax, so the label map has the image's size. Every deep segmenter of a profile works at
the same ``short_side`` (the record's ``fit_info.short_side``).

**Training.** Random ``crop`` x ``crop`` crops of the resized training images, each scaled by a factor drawn
log-uniformly from ``scale_range`` first and flipped left-right with probability 0.5 (``augment``; a crop reaching
past a scaled image is padded with the mean colour and void labels), normalised by the training set's channel means
and spreads; per-pixel cross-entropy with void pixels ignored; AdamW with weight decay on the kernels only, a short
linear warm-up, then cosine decay (:class:`benchsuite.training.Schedule`); a fixed number of optimiser steps per
profile (the work). ``--weights PATH`` (``ctx.weights``) starts the network from a local state dict (the tensors
whose names and shapes match; fewer than half of the file's matching is an error) before the same training.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import Any, ClassVar

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchsuite.api import Context
from benchsuite.data.voc_segmentation import VOID, SegmentationSet
from benchsuite.errors import EmptyModelError
from benchsuite.tasks.segmentation import Segmenter
from benchsuite.training import Schedule, Trainer, param_groups, prepare_device
from pipelines.deep.detection_weights import load_matching, read_weights_file
from pipelines.deep.segmentation import build_network

log = logging.getLogger(__name__)


def resize_short_side(image: np.ndarray, short_side: int, nearest: bool = False) -> np.ndarray:
    """``image`` (``(H, W, 3)`` or ``(H, W)``) resized so that its shorter side is ``short_side`` pixels."""
    h, w = image.shape[:2]
    scale = short_side / min(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if size == (w, h):
        return image
    interp = cv2.INTER_NEAREST if nearest else (cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    return cv2.resize(image, size, interpolation=interp)


def random_crop(image: np.ndarray, mask: np.ndarray, crop: int, scale_range: tuple[float, float], flip: bool,
                rng: np.random.Generator, fill: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One augmented ``crop`` x ``crop`` training crop of ``image`` ``(H, W, 3)`` float32 and ``mask`` ``(H, W)``
    uint8: scaled by a log-uniform factor of ``scale_range``, cut at a random place (padded with ``fill`` and
    :data:`VOID` where the scaled image is smaller), flipped left-right with probability 0.5 when ``flip``."""
    lo, hi = scale_range
    scale = math.exp(rng.uniform(math.log(lo), math.log(hi))) if hi > lo else lo
    h, w = mask.shape
    if scale != 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        mask = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)
        h, w = mask.shape
    out_image = np.empty((crop, crop, 3), np.float32)
    out_image[:] = fill
    out_mask = np.full((crop, crop), VOID, np.uint8)
    y0 = int(rng.integers(0, max(h - crop, 0) + 1))
    x0 = int(rng.integers(0, max(w - crop, 0) + 1))
    oy = int(rng.integers(0, max(crop - h, 0) + 1))
    ox = int(rng.integers(0, max(crop - w, 0) + 1))
    ch, cw = min(crop, h), min(crop, w)
    out_image[oy:oy + ch, ox:ox + cw] = image[y0:y0 + ch, x0:x0 + cw]
    out_mask[oy:oy + ch, ox:ox + cw] = mask[y0:y0 + ch, x0:x0 + cw]
    if flip and rng.random() < 0.5:
        out_image, out_mask = out_image[:, ::-1], out_mask[:, ::-1]
    return out_image, out_mask


class DeepSegmenter(Segmenter):
    """A segmentation network trained from scratch (the module docstring). Subclasses set ``id`` and ``network``.

    Parameters:
        steps: optimiser steps (the work; the profile sets it); batch_size: crops per step.
        short_side: the working resolution (shorter side, pixels) for training and prediction.
        crop: the side of the square training crops, pixels.
        lr, weight_decay: AdamW's; warmup_fraction: the share of the steps spent warming up.
        augment: random scales (``scale_range``) and left-right flips; scale_range: the scale factors' range.
        widths: the network's channel widths (None: the network's defaults).
        flip_tta: also score the mirrored image and average (doubles the prediction cost).
        clip_grad: the largest gradient norm.
        max_train_s: opt-in time budget for training (None: the planned steps).
    """

    family: ClassVar[str] = "deep"
    devices: ClassVar[tuple[str, ...]] = ("cpu", "cuda")
    #: the network of :func:`pipelines.deep.segmentation.build_network`
    network: ClassVar[str] = ""

    def __init__(self, steps: int = 600, batch_size: int = 8, short_side: int = 224, crop: int = 224,
                 lr: float = 2e-3, weight_decay: float = 1e-4, warmup_fraction: float = 0.05, augment: bool = True,
                 scale_range: tuple[float, float] = (0.7, 1.4), widths: tuple[int, ...] | None = None,
                 flip_tta: bool = False, clip_grad: float = 5.0, max_train_s: float | None = None):
        self.steps = steps
        self.batch_size = batch_size
        self.short_side = short_side
        self.crop = crop
        self.lr = lr
        self.weight_decay = weight_decay
        self.warmup_fraction = warmup_fraction
        self.augment = augment
        self.scale_range = scale_range
        self.widths = widths
        self.flip_tta = flip_tta
        self.clip_grad = clip_grad
        self.max_train_s = max_train_s

    # ------------------------------------------------------------------------------------------ data
    def _batches(self, images: list[np.ndarray], masks: list[np.ndarray], rng: np.random.Generator
                 ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        crop, fill = int(self.crop), np.zeros(3, np.float32)
        scale_range = tuple(self.scale_range) if self.augment else (1.0, 1.0)
        while True:
            picks = rng.integers(0, len(images), size=int(self.batch_size))
            pairs = [random_crop(images[i], masks[i], crop, scale_range, bool(self.augment), rng, fill) for i in picks]
            x = np.stack([p[0] for p in pairs]).transpose(0, 3, 1, 2)
            y = np.stack([p[1] for p in pairs]).astype(np.int64)
            yield torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y)

    def _normalised(self, image: np.ndarray) -> np.ndarray:
        im = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
        return (im[..., :3].astype(np.float32) - self.mean_) / self.std_

    # ------------------------------------------------------------------------------------------ fit
    def build(self, num_classes: int) -> nn.Module:
        options = {} if self.widths is None else {"widths": tuple(int(w) for w in self.widths)}
        return build_network(self.network, num_classes, **options)

    def fit(self, train: SegmentationSet, val: SegmentationSet, ctx: Context) -> DeepSegmenter:
        torch.manual_seed(ctx.seed)
        rng = ctx.rng()
        side = int(self.short_side)
        images = [resize_short_side(train.load_image(i), side) for i in range(len(train))]
        masks = [resize_short_side(train.load_mask(i), side, nearest=True) for i in range(len(train))]
        labelled = sum(int((m != VOID).sum()) for m in masks)
        if not labelled:
            raise EmptyModelError(f"{self.id}: the {len(train)} training masks hold no labelled (non-void) pixel")
        pixels = np.concatenate([im.reshape(-1, 3) for im in images]).astype(np.float64)
        self.mean_ = pixels.mean(axis=0).astype(np.float32)
        self.std_ = np.maximum(pixels.std(axis=0), 1.0).astype(np.float32)
        normalised = [self._normalised(im) for im in images]
        self.num_classes_ = train.num_classes
        device = prepare_device(ctx.device)
        model = self.build(train.num_classes).to(device)
        weights = self._load_weights(model, ctx)
        opt = torch.optim.AdamW(param_groups(model, float(self.weight_decay)), lr=float(self.lr))
        trainer = Trainer(model, opt, ctx, steps=int(self.steps), name=self.id,
                          schedule=Schedule("cosine", warmup_fraction=float(self.warmup_fraction)),
                          clip_grad=float(self.clip_grad), max_train_s=self.max_train_s)
        model.train()

        def loss_of(batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
            x, y = batch
            return F.cross_entropy(model(trainer.to_device(x)), trainer.to_device(y), ignore_index=VOID)

        losses = trainer.fit(self._batches(normalised, masks, rng), loss_of)
        model.eval()
        self.model_, self.device_ = model, device
        tail = max(1, len(losses) // 10)
        ctx.record(**trainer.summary(), **weights, network=self.network, short_side=side, crop=int(self.crop),
                   batch_size=int(self.batch_size), augment=bool(self.augment), trained_on="train",
                   parameters=sum(p.numel() for p in model.parameters()),
                   train_loss_first=round(float(np.mean(losses[:tail])), 4),
                   train_loss_last=round(float(np.mean(losses[-tail:])), 4))
        return self

    def _load_weights(self, model: nn.Module, ctx: Context) -> dict[str, Any]:
        """Start ``model`` from the user's state dict (``--weights``) where there is one; facts for the record."""
        if not ctx.weights:
            return {"weights": "scratch"}
        state, _ = read_weights_file(ctx.weights)
        loaded, total = load_matching(model, state, ("", "model.", "module."))
        if loaded < 0.5 * len(state):
            raise ValueError(f"--weights {ctx.weights}: only {loaded} of its {len(state)} tensors match the "
                             f"{self.network} network's names and shapes; is it the right architecture?")
        log.info("%s: loaded %d of %d tensors from %s", self.id, loaded, total, ctx.weights)
        return {"weights": "file", "weights_file": str(ctx.weights), "weights_tensors_loaded": loaded,
                "weights_tensors_in_model": total}

    # ------------------------------------------------------------------------------------------ predict
    @torch.no_grad()
    def segment(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        small = self._normalised(resize_short_side(np.asarray(image), int(self.short_side)))
        x = torch.from_numpy(np.ascontiguousarray(small.transpose(2, 0, 1)[None])).to(self.device_)
        logits = self.model_(x)
        if self.flip_tta:
            logits = logits + self.model_(x.flip(-1)).flip(-1)
        logits = F.interpolate(logits.float(), size=(h, w), mode="bilinear", align_corners=False)
        return logits[0].argmax(0).to(torch.uint8).cpu().numpy()
