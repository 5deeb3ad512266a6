"""``overfeat``: a small CNN as a sliding-window detector, applied fully convolutionally (Sermanet et al., 2014).

The deep twin of ``hog-svm-det`` under one window protocol: everything but the window classifier is shared.

- **Windows** per class from its training boxes (:func:`benchsuite.ops.windows.class_window`: the same base size,
  context, aspect limit, upscaled pyramid start and small-object shrinking as ``hog-svm-det``; sides are multiples
  of the network's stride, 8 px by default, the HOG cell);
- **positives**: every non-difficult box cropped to the window with jittered and mirrored copies
  (:func:`benchsuite.ops.windows.positive_crops`); **negatives**: background windows of the training images at the
  pyramid's scales (:class:`benchsuite.ops.negatives.NegativeSource`), then ``mining_rounds`` rounds of hard
  negatives, the best-scoring windows over every training image that overlap no box of the class
  (:func:`benchsuite.ops.negatives.mine_sources`), after each of which training goes on with the new windows;
- **detection**: an image pyramid (:func:`benchsuite.ops.windows.image_pyramid`), window hits that are local maxima
  of their level's score map above a threshold, NMS per class (:func:`benchsuite.ops.windows.class_detections`);
  the pyramid step, NMS and score thresholds chosen by val mAP50.

The classifier is one small CNN per class (as ``hog-svm-det`` fits one SVM per class), trained on window crops
that carry the margin its convolutions need (valid convolutions, no padding: a crop of the window plus ``margin``
pixels per side gives exactly one output). Its dense layers are convolutions (the first one's kernel is the
window in feature cells), so the network runs over a whole pyramid level at once and its output map is the score
of every window at the network's stride ``s`` (8 px): one pass per level, no crops at test time.

**Shift-and-stitch** (``shift_and_stitch``, factor ``f``): the last max-pooling (stride ``p``) is evaluated at every
offset ``(a, b) * p / f`` and the ``f x f`` outputs are interleaved, so the output stride drops from ``s`` to
``s / f`` (:func:`shift_and_stitch`): windows are scored on a finer grid, at ``f ** 2`` times the cost of the layers
after that pooling. The record gives the output stride, the windows scored per image and, in its timing, seconds
per image.

The ERF of the score (the head's output) is measured for the first class's network on val crops around its objects
(:mod:`benchsuite.erf`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchsuite.api import Choice, Context, Detections, Detector
from benchsuite.data.detection import DetectionSet
from benchsuite.erf import ErfProbe, theoretical_field
from benchsuite.errors import EmptyModelError
from benchsuite.metrics.detection import score_detections
from benchsuite.ops.negatives import NegativeSource, mine_sources
from benchsuite.ops.windows import (
    WindowSize,
    class_detections,
    class_window,
    crop_windows,
    image_pyramid,
    local_maxima,
    object_boxes,
    positions_to_boxes,
    positive_crops,
    window_boxes,
)
from benchsuite.training import Schedule, Trainer, param_groups, prepare_device

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------ the network


def conv_bn_relu(c_in: int, c_out: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    """A valid (unpadded) convolution, batch norm, ReLU."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride=stride, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True))


def shift_and_stitch(features: torch.Tensor, tail: nn.Module, pool_stride: int, factor: int) -> torch.Tensor:
    """``tail`` (a pooling of stride ``pool_stride`` and the layers after it) evaluated at every offset and
    interleaved: output stride ``pool_stride / factor`` feature units instead of ``pool_stride``.

    For ``a, b`` in ``range(factor)`` the tail runs on ``features[..., a * d:, b * d:]`` (``d = pool_stride //
    factor``), and its output ``o_ab`` fills ``out[..., a::factor, b::factor]`` (each cropped to the smallest of the
    ``factor ** 2`` outputs). So ``out[..., factor * i + a, factor * j + b]`` is the plain network's unit ``(i, j)``
    on the input shifted by ``(a, b) * d`` feature units (``(a, b) * s / factor`` input pixels for a network of
    total stride ``s``).

    Args:
        features: ``(N, C, H, W)`` the map the last pooling reads.
        tail: the last pooling and everything after it, ``(N, C, H, W) -> (N, K, H', W')``.
        pool_stride: that pooling's stride ``p``.
        factor: ``f``, dividing ``p`` (1: the plain network).
    """
    if factor < 1 or pool_stride % factor:
        raise ValueError(f"shift_and_stitch: factor {factor} must divide the pooling stride {pool_stride}")
    if factor == 1:
        return tail(features)
    d = pool_stride // factor
    outs = [[tail(features[:, :, a * d:, b * d:]) for b in range(factor)] for a in range(factor)]
    h = min(o.shape[-2] for row in outs for o in row)
    w = min(o.shape[-1] for row in outs for o in row)
    first = outs[0][0]
    out = first.new_zeros(first.shape[0], first.shape[1], h * factor, w * factor)
    for a in range(factor):
        for b in range(factor):
            out[:, :, a::factor, b::factor] = outs[a][b][:, :, :h, :w]
    return out


class WindowNet(nn.Module):
    """A window classifier whose dense layers are convolutions, so it runs over whole images.

    ``trunk`` (valid convolutions, no padding): a 4x4 convolution of stride 2 (the cheap first layer OverFeat's
    strided first layer stands for), a 3x3 one, a 2x2 max-pool, three 3x3 ones, each with batch norm and ReLU
    (input stride 4 at its output); ``pool``: the last max-pool (kernel = stride = ``last_pool``: total stride
    ``s = 4 * last_pool``); ``head``: a convolution whose kernel is the window in feature cells (the first dense
    layer), then two 1x1 convolutions (the dense layers) down to one score, with ``dropout`` before each. Input:
    float ``(N, C, H, W)`` pixels 0-255; output ``(N, 1, H', W')`` logits, unit ``(i, j)`` scoring the window whose
    top-left corner is input pixel ``(i * s + margin, j * s + margin)`` (:func:`window_margin`).
    """

    def __init__(self, window_cells: tuple[int, int], widths: tuple[int, int, int] = (16, 32, 32), hidden: int = 48,
                 last_pool: int = 2, in_channels: int = 3, dropout: float = 0.0):
        super().__init__()
        w1, w2, w3 = widths
        self.last_pool = int(last_pool)
        self.trunk = nn.Sequential(conv_bn_relu(in_channels, w1, 4, 2), conv_bn_relu(w1, w1), nn.MaxPool2d(2),
                                   conv_bn_relu(w1, w2), conv_bn_relu(w2, w2), conv_bn_relu(w2, w3))
        self.pool = nn.MaxPool2d(self.last_pool)
        self.head = nn.Sequential(nn.Conv2d(w3, hidden, window_cells), nn.ReLU(inplace=True), nn.Dropout(dropout),
                                  nn.Conv2d(hidden, hidden, 1), nn.ReLU(inplace=True), nn.Dropout(dropout),
                                  nn.Conv2d(hidden, 1, 1))

    @property
    def stride(self) -> int:
        """Input pixels between adjacent output units (plain network)."""
        return 4 * self.last_pool

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk((x.float() - 127.5) / 64.0)

    def tail(self, f: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(f))

    def forward(self, x: torch.Tensor, stitch: int = 1) -> torch.Tensor:
        f = self.features(x)
        if stitch == 1:
            return self.tail(f)
        return shift_and_stitch(f, _Tail(self), self.last_pool, stitch)


class _Tail(nn.Module):
    """The last pooling and the head of a :class:`WindowNet` as one module (for :func:`shift_and_stitch`)."""

    def __init__(self, net: WindowNet):
        super().__init__()
        self.net = net

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.net.tail(f)


def window_margin(widths: tuple[int, int, int], last_pool: int) -> int:
    """The pixels of context per side a window crop needs so that the :class:`WindowNet` gives one output for it:
    from the theoretical receptive field of one pooled unit (:func:`benchsuite.erf.theoretical_field`)."""
    probe = WindowNet((1, 1), (2, 2, 2), 2, last_pool)
    field, _ = theoretical_field(probe, "pool", torch.zeros(1, 3, 96, 96))
    assert field is not None and not field.whole
    s = probe.stride
    margin = (field.size[0] - s) / 2
    if margin != int(margin) or field.first[0] != margin + s / 2:
        raise AssertionError(f"WindowNet geometry: field {field} is not a {s}-px cell with a whole margin")
    return int(margin)


# ------------------------------------------------------------------------------------------ per-class model


@dataclass
class ClassNet:
    """The detector of one class: its window and its network (eval mode).

    Attributes:
        label: the class index in the data set.
        window: ``(height, width)`` of the window in pixels (multiples of the network's stride).
        net: the trained :class:`WindowNet`.
    """

    label: int
    window: WindowSize
    net: WindowNet


@dataclass
class _Hits:
    """Window hits of one class in one image: object boxes, window boxes (image pixels) and logits."""

    boxes: np.ndarray
    windows: np.ndarray
    scores: np.ndarray


def _rgb(image: np.ndarray) -> np.ndarray:
    """``(H, W, 3)``: a grey ``(H, W)`` or ``(H, W, 1)`` image with its channel repeated; RGB as it is."""
    if image.ndim == 2:
        image = image[:, :, None]
    return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image


class OverFeat(Detector):
    """Sliding-window CNN detector (OverFeat), applied fully convolutionally, with shift-and-stitch.

    Parameters:
        base_size, context, max_aspect, max_upscale, min_base_size: the window protocol of ``hog-svm-det``
            (:func:`benchsuite.ops.windows.class_window`).
        widths: channels of the trunk's convolutions (first two, next two, last); hidden: of the dense layers.
        last_pool: kernel and stride of the last max-pooling (total stride ``4 * last_pool`` px).
        dropout: before each of the head's 1x1 (dense) layers, while training.
        shift_and_stitch: evaluate the last pooling at every offset and interleave (output stride ``s / factor``).
        stitch_factor: ``f``, dividing ``last_pool``.
        jitter: jittered copies of each positive (each also mirrored).
        photometric: training crops get a random contrast factor in ``1 +- photometric`` and brightness shift of
            ``+- 64 * photometric`` (0: none).
        negatives_per_image, max_negatives, max_positives, negative_overlap, max_small_upscale: the random
            negatives (:class:`benchsuite.ops.negatives.NegativeSource`) and the training caps.
        mining_rounds, hard_per_image, mining_threshold, mining_step: hard-negative mining (the best windows with
            logits above the threshold, up to ``hard_per_image`` per image; plain stride, the pyramid at
            ``mining_step``). The threshold is low: a confident network still gets its hardest windows back.
        pad_cells: each pyramid level is padded by this many strides (mirrored) so windows reach past the border.
        steps_first: optimiser steps before the first mining round; steps_per_round: steps after each round.
        batch_size, positive_fraction, lr, weight_decay: the training batches and AdamW (decoupled decay).
        steps: candidate pyramid steps; nms_thresholds, score_thresholds (logits): chosen on val.
        max_detections: at most this many detections per image.
        tune_images: at most this many val images (a fixed random subset) score the choices.
        erf_images: val objects whose crops probe the ERF of the first class's network (0: not measured).
    """

    id: ClassVar[str] = "overfeat"
    family: ClassVar[str] = "deep"
    devices: ClassVar[tuple[str, ...]] = ("cpu", "cuda")
    description: ClassVar[str] = "OverFeat: window CNN applied fully convolutionally, shift-and-stitch, hard negatives"
    profile_params: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"base_size": 48, "widths": (8, 16, 16), "hidden": 16, "steps_first": 30, "steps_per_round": 10,
                  "batch_size": 16, "negatives_per_image": 10, "mining_rounds": 1, "hard_per_image": 10,
                  "max_upscale": 1.5, "mining_step": 1.3, "steps": (1.2,), "nms_thresholds": (0.3,),
                  "erf_images": 4},
        "full": {"steps_first": 3000, "steps_per_round": 1000, "max_negatives": 10000, "tune_images": 500},
    }

    def __init__(self, base_size: int = 80, context: float = 0.15, max_aspect: float = 3.0, max_upscale: float = 2.0,
                 min_base_size: int = 32, widths: tuple[int, int, int] = (24, 48, 64), hidden: int = 96,
                 last_pool: int = 2, dropout: float = 0.5, shift_and_stitch: bool = True, stitch_factor: int = 2,
                 jitter: int = 2, photometric: float = 0.25,
                 negatives_per_image: int = 20, max_negatives: int = 12000, max_positives: int = 6000,
                 negative_overlap: float = 0.3, max_small_upscale: float = 2.0, mining_rounds: int = 2,
                 hard_per_image: int = 20, mining_threshold: float = -8.0, mining_step: float = 1.2,
                 pad_cells: int = 2, steps_first: int = 600, steps_per_round: int = 200, batch_size: int = 32,
                 positive_fraction: float = 0.25, lr: float = 2e-3, weight_decay: float = 0.05,
                 steps: tuple[float, ...] = (1.1, 1.2), nms_thresholds: tuple[float, ...] = (0.3, 0.5),
                 score_thresholds: tuple[float, ...] = (-2.0, 0.0), max_detections: int = 100,
                 tune_images: int | None = 200, erf_images: int = 16):
        self.base_size = base_size
        self.context = context
        self.max_aspect = max_aspect
        self.max_upscale = max_upscale
        self.min_base_size = min_base_size
        self.widths = widths
        self.hidden = hidden
        self.last_pool = last_pool
        self.dropout = dropout
        self.shift_and_stitch = shift_and_stitch
        self.stitch_factor = stitch_factor
        self.jitter = jitter
        self.photometric = photometric
        self.negatives_per_image = negatives_per_image
        self.max_negatives = max_negatives
        self.max_positives = max_positives
        self.negative_overlap = negative_overlap
        self.max_small_upscale = max_small_upscale
        self.mining_rounds = mining_rounds
        self.hard_per_image = hard_per_image
        self.mining_threshold = mining_threshold
        self.mining_step = mining_step
        self.pad_cells = pad_cells
        self.steps_first = steps_first
        self.steps_per_round = steps_per_round
        self.batch_size = batch_size
        self.positive_fraction = positive_fraction
        self.lr = lr
        self.weight_decay = weight_decay
        self.steps = steps
        self.nms_thresholds = nms_thresholds
        self.score_thresholds = score_thresholds
        self.max_detections = max_detections
        self.tune_images = tune_images
        self.erf_images = erf_images

    # ------------------------------------------------------------------------------------ geometry

    @property
    def stride(self) -> int:
        """The plain network's stride in pixels (the window grid of a level)."""
        return 4 * int(self.last_pool)

    @property
    def factor(self) -> int:
        """The shift-and-stitch factor in use (1 when off)."""
        return int(self.stitch_factor) if self.shift_and_stitch else 1

    def _check(self) -> None:
        if int(self.last_pool) < 1 or int(self.stitch_factor) < 1 or int(self.last_pool) % int(self.stitch_factor):
            raise ValueError(f"overfeat: stitch_factor {self.stitch_factor} must divide last_pool {self.last_pool}")
        if len(self.widths) != 3:
            raise ValueError(f"overfeat: widths must name 3 channel counts, got {self.widths}")

    # ------------------------------------------------------------------------------------ scanning

    def _scan(self, image: np.ndarray, models: list[ClassNet], step: float, factor: int, threshold: float,
              peaks_only: bool) -> tuple[list[_Hits], int]:
        """Window hits scoring above ``threshold`` for every model over the pyramid of ``image`` (with
        ``peaks_only``, only local maxima of each level's score map), and the number of windows scored."""
        image = _rgb(image)
        s, pad = self.stride, int(self.pad_cells) * self.stride
        out_stride = s // factor
        border = self.margin_ + pad
        min_h = min(m.window[0] for m in models)
        min_w = min(m.window[1] for m in models)
        fit_window = (max(s, min_h - 2 * pad), max(s, min_w - 2 * pad))
        levels = image_pyramid(image, fit_window, step, self.start_scale_) if models else []
        found: list[list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = [[] for _ in models]
        scored = 0
        with torch.no_grad():
            for lev in levels:
                img = cv2.copyMakeBorder(np.ascontiguousarray(lev.image), border, border, border, border,
                                         cv2.BORDER_REFLECT)
                x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None].to(self.device_)
                for k, m in enumerate(models):
                    need = (m.window[0] + 2 * self.margin_ + s * (factor > 1), m.window[1] + 2 * self.margin_
                            + s * (factor > 1))
                    if img.shape[0] < need[0] or img.shape[1] < need[1]:
                        continue
                    f = m.net.features(x)
                    out = shift_and_stitch(f, _Tail(m.net), m.net.last_pool, factor) if factor > 1 else m.net.tail(f)
                    scores = out[0, 0].float().cpu().numpy()
                    scored += scores.size
                    keep = scores > threshold
                    if peaks_only:
                        keep &= local_maxima(scores)
                    ii, jj = np.nonzero(keep)
                    if not len(ii):
                        continue
                    pos = np.stack([ii * out_stride - pad, jj * out_stride - pad], axis=1)
                    win = positions_to_boxes(pos, m.window, lev.scale_y, lev.scale_x)
                    found[k].append((object_boxes(win, self.context), win, scores[ii, jj].astype(np.float64)))
        hits = []
        for parts in found:
            if parts:
                hits.append(_Hits(*(np.concatenate([p[i] for p in parts]) for i in range(3))))
            else:
                hits.append(_Hits(np.zeros((0, 4)), np.zeros((0, 4)), np.zeros(0)))
        return hits, scored

    def _detections(self, hits: list[_Hits], models: list[ClassNet], width: int, height: int, nms_threshold: float,
                    score_threshold: float) -> Detections:
        return Detections(*class_detections([(h.boxes, h.scores) for h in hits], [m.label for m in models], width,
                                            height, nms_threshold, score_threshold, self.max_detections))

    # ------------------------------------------------------------------------------------ training windows

    def _crop_size(self, window: WindowSize) -> tuple[int, int]:
        return window[0] + 2 * self.margin_, window[1] + 2 * self.margin_

    def _collect(self, train: DetectionSet, windows: dict[int, WindowSize], sources: dict[int, NegativeSource],
                 ctx: Context) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray], dict[str, Any]]:
        """Positive and random negative crops per class (uint8 ``(N, h + 2m, w + 2m, 3)``) and the negative
        source's counts per class."""
        rng = ctx.rng(11)
        labels = sorted(windows)
        pos: dict[int, list[np.ndarray]] = {k: [] for k in labels}
        neg: dict[int, list[np.ndarray]] = {k: [] for k in labels}
        want = min(self.max_negatives, self.negatives_per_image * max(1, len(train)))
        sampled = {k: sources[k].sample_boxes(want, rng) for k in labels}
        for i in ctx.progress(range(len(train)), desc="training windows"):
            s = train[i]
            if not len(s.labels) and not any((sampled[k].image_index == i).any() for k in labels):
                continue
            image = _rgb(train.load_image(i))
            for k in labels:
                boxes = s.boxes[(s.labels == k) & ~s.difficult]
                if len(boxes):
                    pos[k].append(positive_crops(image, boxes, windows[k], self.context, margin=self.margin_,
                                                 flip=True, jitter=self.jitter, rng=rng))
                nb = sampled[k].of_image(i)
                if len(nb):
                    neg[k].append(crop_windows(image, nb, windows[k], self.margin_))
        out_pos, out_neg = {}, {}
        for k in labels:
            shape = (0, *self._crop_size(windows[k]), 3)
            p = np.concatenate(pos[k]) if pos[k] else np.zeros(shape, np.uint8)
            if len(p) > self.max_positives:
                p = p[np.sort(rng.choice(len(p), self.max_positives, replace=False))]
            out_pos[k] = p
            out_neg[k] = np.concatenate(neg[k]) if neg[k] else np.zeros(shape, np.uint8)
        return out_pos, out_neg, {train.classes[k]: sampled[k].stats.as_dict() for k in labels}

    def _mine(self, train: DetectionSet, models: list[ClassNet], sources: list[NegativeSource], ctx: Context,
              round_no: int) -> list[np.ndarray]:
        """Hard negatives per model: the best-scoring windows overlapping no box of its class over every training
        image (one scan per image for all classes), as crops."""

        def scan(i: int, image: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, Any]]:
            hits, _ = self._scan(image, models, self.mining_step, 1, self.mining_threshold, peaks_only=False)
            rgb = _rgb(image)

            def extractor(h: _Hits, m: ClassNet) -> Any:
                return lambda idx: crop_windows(rgb, h.windows[idx], m.window, self.margin_)

            return [(h.boxes, h.scores, extractor(h, m)) for h, m in zip(hits, models)]

        mined = mine_sources(sources, scan, count=self.hard_per_image * max(1, len(train)),
                             per_image=self.hard_per_image, threshold=self.mining_threshold,
                             progress=lambda it, desc: ctx.progress(it, desc=f"{desc}, round {round_no}"))
        return [h.features if h.features is not None else np.zeros((0, *self._crop_size(m.window), 3), np.uint8)
                for h, m in zip(mined, models)]

    def _train(self, model: ClassNet, pos: np.ndarray, neg: np.ndarray, steps: int, ctx: Context, lr: float,
               name: str, seed: int) -> list[float]:
        """``steps`` AdamW steps on balanced batches (``positive_fraction`` positives), random horizontal flips and
        photometric jitter."""
        net = model.net
        device = self.device_
        opt = torch.optim.AdamW(param_groups(net, self.weight_decay), lr=lr)
        trainer = Trainer(net, opt, ctx, steps=int(steps), name=name, clip_grad=10.0,
                          schedule=Schedule("cosine", warmup_fraction=0.05))
        gen = np.random.default_rng([ctx.seed, seed])
        n_pos = max(1, round(self.batch_size * self.positive_fraction)) if len(pos) else 0
        n_neg = self.batch_size - n_pos if len(neg) else 0
        crops = torch.from_numpy(np.concatenate([pos, neg])).permute(0, 3, 1, 2)
        labels = torch.cat([torch.ones(len(pos)), torch.zeros(len(neg))])
        net.train()
        for _ in trainer.steps():
            idx = np.concatenate([gen.integers(0, len(pos), n_pos), len(pos) + gen.integers(0, len(neg), n_neg)])
            x = crops[idx].float()
            flip = torch.from_numpy(gen.random(len(idx)) < 0.5)
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
            if self.photometric > 0:  # contrast about the crop's mean, then brightness
                a = float(self.photometric)
                contrast = torch.from_numpy(gen.uniform(1 - a, 1 + a, (len(idx), 1, 1, 1))).float()
                shift = torch.from_numpy(gen.uniform(-64 * a, 64 * a, (len(idx), 1, 1, 1))).float()
                mean = x.mean(dim=(1, 2, 3), keepdim=True)
                x = ((x - mean) * contrast + mean + shift).clamp(0, 255)
            x = x.to(device)
            y = labels[idx].to(device)
            with trainer.autocast():
                logits = net(x).flatten().float()
                loss = F.binary_cross_entropy_with_logits(logits, y)
            trainer.step(loss)
        net.eval()
        return trainer.losses

    # ------------------------------------------------------------------------------------ fit

    def _windows(self, train: DetectionSet) -> dict[int, WindowSize]:
        windows: dict[int, WindowSize] = {}
        starts = []
        for k in range(train.num_classes):
            boxes = [s.boxes[(s.labels == k) & ~s.difficult] for s in train]
            boxes = np.concatenate(boxes) if boxes else np.zeros((0, 4), np.float32)
            if not len(boxes):
                continue
            windows[k], start = class_window(boxes, self.base_size, self.stride, self.context, self.max_aspect,
                                             self.max_upscale, self.min_base_size)
            starts.append(start)
        self.start_scale_ = float(min(self.max_upscale, max([1.0, *starts])))
        return windows

    def _erf_probe(self, val: DetectionSet, model: ClassNet) -> ErfProbe | None:
        """An ERF probe of the score of ``model``'s network on crops of up to ``erf_images`` val objects of its class
        (window plus margin, doubled about the object, so the centre unit's whole field is inside)."""
        if self.erf_images <= 0:
            return None
        crops = []
        h, w = model.window
        for i, s in enumerate(val):
            boxes = s.boxes[(s.labels == model.label) & ~s.difficult]
            if len(boxes):
                wb = window_boxes(boxes, model.window, self.context)
                c = (wb[:, :2] + wb[:, 2:]) / 2
                half = (wb[:, 2:] - wb[:, :2])  # twice the window about its centre
                crops.append(crop_windows(_rgb(val.load_image(i)), np.concatenate([c - half, c + half], 1),
                                          (2 * h, 2 * w), self.margin_))
            if sum(len(c) for c in crops) >= self.erf_images:
                break
        if not crops:
            return None
        images = np.concatenate(crops)[: self.erf_images].transpose(0, 3, 1, 2)
        return ErfProbe("head", torch.from_numpy(np.ascontiguousarray(images)).float(), split="val",
                        network=f"{self.id} ({val.classes[model.label]})",
                        input_note="val objects: twice the window about each, plus the margin, float pixels 0-255")

    def fit(self, train: DetectionSet, val: DetectionSet, ctx: Context) -> OverFeat:
        self._check()
        t0 = time.perf_counter()
        torch.manual_seed(ctx.seed)
        self.device_ = prepare_device(ctx.device)
        self.margin_ = window_margin(tuple(self.widths), int(self.last_pool))
        self.classes_ = tuple(train.classes)
        windows = self._windows(train)
        if not windows:
            raise EmptyModelError(f"overfeat: no training boxes for any class in {len(train)} training images")
        sources = {k: NegativeSource.from_dataset(train, k, win, max_overlap=self.negative_overlap,
                                                  start_scale=self.start_scale_, step=self.mining_step,
                                                  stride=self.stride, max_small_upscale=self.max_small_upscale)
                   for k, win in windows.items()}
        pos, neg, neg_stats = self._collect(train, windows, sources, ctx)
        skipped = {train.classes[k]: "no background windows in the training images" for k in windows if not len(neg[k])}
        windows = {k: w for k, w in windows.items() if len(neg[k])}
        if not windows:
            first = next(iter(neg_stats.values()))
            raise EmptyModelError(
                f"overfeat: no background windows to train against ({first['images']} training images, "
                f"{first['images_with_background']} with background at the window's scales, "
                f"{first['small_images_skipped']} too small for the window)")
        labels = sorted(windows)
        models = [ClassNet(k, windows[k], WindowNet((windows[k][0] // self.stride, windows[k][1] // self.stride),
                                                    tuple(self.widths), int(self.hidden), int(self.last_pool),
                                                    dropout=float(self.dropout)).to(self.device_)) for k in labels]
        t_windows = time.perf_counter() - t0
        probe = self._erf_probe(val, models[0])
        if probe is not None:
            probe.measure(models[0].net, "init")

        # training, then rounds of hard negatives, training going on after each
        negs = {k: neg[k] for k in labels}
        losses: dict[str, list[float]] = {train.classes[k]: [] for k in labels}
        mined: dict[str, list[int]] = {train.classes[k]: [] for k in labels}
        for m in models:
            name = train.classes[m.label]
            loss = self._train(m, pos[m.label], negs[m.label], self.steps_first, ctx, self.lr, f"{self.id} {name}",
                               seed=1000 * m.label)
            losses[name].append(round(float(np.mean(loss[-20:])), 4))
        for r in range(1, int(self.mining_rounds) + 1):
            hard = self._mine(train, models, [sources[k] for k in labels], ctx, r)
            for m, h in zip(models, hard):
                name = train.classes[m.label]
                mined[name].append(len(h))
                if len(h):
                    negs[m.label] = np.concatenate([negs[m.label], h])
                if self.steps_per_round > 0:
                    loss = self._train(m, pos[m.label], negs[m.label], self.steps_per_round, ctx, self.lr / 2,
                                       f"{self.id} {name} round {r}", seed=1000 * m.label + r)
                    losses[name].append(round(float(np.mean(loss[-20:])), 4))
        self.models_ = models
        if probe is not None:
            probe.measure(models[0].net, "trained")
            probe.finish(ctx)

        val_ap, windows_per_image = self._choose(val, ctx)
        ctx.record(
            classes_trained=[train.classes[k] for k in labels], classes_skipped=skipped,
            windows={train.classes[k]: list(w) for k, w in windows.items()}, window_margin=self.margin_,
            positives={train.classes[k]: len(pos[k]) for k in labels},
            random_negatives={train.classes[k]: len(neg[k]) for k in labels},
            negatives={train.classes[k]: len(negs[k]) for k in labels}, negative_source=neg_stats,
            hard_negatives_per_round=mined, train_loss=losses, start_scale=self.start_scale_,
            network_stride=self.stride, shift_and_stitch=bool(self.shift_and_stitch), stitch_factor=self.factor,
            output_stride=self.stride / self.factor, windows_per_image=windows_per_image,
            parameters=sum(p.numel() for m in models for p in m.net.parameters()),
            pyramid_step=self.step_, nms_threshold=self.nms_threshold_, score_threshold=self.score_threshold_,
            val_map50=round(val_ap, 4), window_collection_s=round(t_windows, 2),
        )
        return self

    # ------------------------------------------------------------------------------------ val selection

    def _choose(self, val: DetectionSet, ctx: Context) -> tuple[float, float]:
        """The pyramid step, then for it the NMS and score thresholds, with the best val mAP50 (:meth:`Context.select`,
        recorded); returns that mAP50 and the windows scored per val image at the chosen step."""
        if self.tune_images is not None and len(val) > self.tune_images:
            val = val.subset(np.sort(ctx.rng(12).choice(len(val), self.tune_images, replace=False)))
        images = [val.load_image(i) for i in range(len(val))]
        low = min(self.score_thresholds)
        # score thresholds descending: on a tie the higher threshold wins
        thresholds = [{"nms_threshold": float(t_nms), "score_threshold": float(t_score)}
                      for t_nms in self.nms_thresholds for t_score in sorted(self.score_thresholds, reverse=True)]

        def with_step(s: dict[str, Any]) -> Choice:
            step = s["pyramid_step"]
            scans = [self._scan(im, self.models_, step, self.factor, low, peaks_only=True) for im in images]

            def val_map50(t: dict[str, Any]) -> tuple[float, float]:
                dets = [self._detections(h, self.models_, v.width, v.height, t["nms_threshold"], t["score_threshold"])
                        for (h, _), v in zip(scans, val)]
                per_image = float(np.mean([n for _, n in scans])) if scans else 0.0
                return score_detections(val, dets, val.classes, ("voc",))["map50"], per_image

            return ctx.select(thresholds, val_map50, metric="val_map50", record=False)

        best = ctx.select([{"pyramid_step": float(step)} for step in self.steps], with_step, metric="val_map50")
        self.step_ = best.settings["pyramid_step"]
        self.nms_threshold_, self.score_threshold_ = best.settings["nms_threshold"], best.settings["score_threshold"]
        return float(best.score or 0.0), round(float(best.payload.payload), 1)

    # ------------------------------------------------------------------------------------ inference

    def detect(self, image: np.ndarray) -> Detections:
        if not self.models_:
            return Detections.empty()
        hits, _ = self._scan(image, self.models_, self.step_, self.factor, self.score_threshold_, peaks_only=True)
        return self._detections(hits, self.models_, image.shape[1], image.shape[0], self.nms_threshold_,
                                self.score_threshold_)
