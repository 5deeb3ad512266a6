"""``rcnn``: region-based CNN detection (Girshick et al., 2014) on selective-search proposals.

Training: the proposals of every training image (computed once and cached, see
:mod:`benchsuite.proposal_cache`), plus the ground-truth boxes themselves, are labelled against the
image's boxes as in R-CNN: IoU >= ``fg_iou`` with a box is a positive of that box's class, IoU <
``bg_iou`` with every box is background, anything between is ignored. Each region, enlarged by a margin of
context (``context`` pixels at the warped size, as R-CNN's 16 of 227), is warped to a ``crop_size``
square (bilinear, ``torchvision.ops.roi_align``; outside the image the mean colour) and a CNN with a
``C + 1``-way classifier and a class-specific box regressor (R-CNN's parametrisation,
:mod:`benchsuite.ops.box_coding`) is trained on minibatches of fixed positive fraction (R-CNN's 25 %),
with horizontal flips.

Detection: proposals (cached) -> warped crops -> class probabilities and regressed boxes -> per-class
NMS. Validation images choose the NMS threshold.

Backbone: a compact residual CNN from scratch by default. When the user gives a weights file (a state
dict of a torchvision ResNet-18, ``--weights``) or torchvision's ImageNet ResNet-18 is already in the
local torch hub cache, a ResNet-18 backbone starts from those weights. Nothing is downloaded; the record
says which (``weights``: ``scratch``, ``imagenet-backbone`` or ``backbone-file``).
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import roi_align

from benchsuite.api import Context, Detections, Detector, Proposer
from benchsuite.data.detection import DetectionSet
from benchsuite.metrics.detection import score_detections
from benchsuite.ops.box_coding import decode_boxes, encode_boxes
from benchsuite.ops.boxes import batched_nms, box_iou, clip_boxes, remove_small_boxes
from benchsuite.proposal_cache import default_workers, proposals_for, proposals_for_images
from benchsuite.training import Schedule, Trainer, amp_dtype, autocast, prepare_device
from pipelines.classical.selective_search import SS_SMOKE
from pipelines.deep.cnn import Stage, conv_bn

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)


# --------------------------------------------------------------------------------------------- proposals
def make_proposer(params: dict[str, Any] | None = None) -> Proposer:
    """The proposer whose (cached) boxes the pipeline classifies: the suite's selective search (fast preset
    unless ``params`` say otherwise). Equal parameters give the same cache key as every other user of that
    proposer (``ss-hog-svm``, the proposals task), so each image's proposals are computed once."""
    from pipelines.classical.selective_search import SelectiveSearch

    return SelectiveSearch(**(params or {}))


def dataset_proposals(data: DetectionSet, proposer: Proposer, ctx: Context, desc: str) -> list[np.ndarray]:
    """Proposals of every image of ``data``, through the shared cache (computed over ``ctx.num_threads``
    processes when missing)."""
    return proposals_for(data, proposer, ctx.cache_dir, workers=ctx.num_threads, progress=ctx.progress, desc=desc)


def prepare_proposals(boxes: np.ndarray, width: int, height: int, max_proposals: int, min_size: float
                      ) -> np.ndarray:
    """The first ``max_proposals`` proposals, clipped to the image, without those under ``min_size`` pixels:
    ``(N, 4)`` float32."""
    b = clip_boxes(np.asarray(boxes, np.float32).reshape(-1, 4), width, height)
    b = b[remove_small_boxes(b, min_size)]
    return b[:max_proposals].astype(np.float32)


# ------------------------------------------------------------------------------------------- labelling
def label_proposals(proposals: np.ndarray, gt_boxes: np.ndarray, gt_labels: np.ndarray,
                    gt_difficult: np.ndarray | None = None, fg_iou: float = 0.5, bg_iou: float = 0.3
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R-CNN's labelling of proposals against an image's ground truth.

    Args:
        proposals: ``(N, 4)`` boxes; gt_boxes: ``(M, 4)``; gt_labels: ``(M,)`` class indices ``0..C-1``.
        gt_difficult: ``(M,)`` bool; difficult boxes never make positives, and a proposal overlapping one
            by ``bg_iou`` or more is not background either (it is ignored).
        fg_iou: a proposal whose best IoU with a (non-difficult) box is ``>= fg_iou`` is a positive.
        bg_iou: a proposal whose IoU with every box is ``< bg_iou`` is background.

    Returns:
        ``(labels (N,) int64, matched (N,) int64, best_iou (N,) float64)``: ``labels`` is ``k + 1`` for a
        positive of class ``k``, 0 for background and -1 for ignored; ``matched`` the index of the best
        non-difficult box (-1 when there is none), ``best_iou`` its IoU.
    """
    n = len(proposals)
    gt_boxes = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    difficult = np.zeros(len(gt_boxes), bool) if gt_difficult is None else np.asarray(gt_difficult, bool)
    labels = np.zeros(n, np.int64)
    matched = np.full(n, -1, np.int64)
    best = np.zeros(n, np.float64)
    if not len(gt_boxes) or not n:
        return labels, matched, best
    iou = box_iou(proposals, gt_boxes)
    regular = np.flatnonzero(~difficult)
    if len(regular):
        j = iou[:, regular].argmax(1)
        matched = regular[j]
        best = iou[np.arange(n), matched]
    any_iou = iou.max(1)
    labels[any_iou >= bg_iou] = -1
    pos = (matched >= 0) & (best >= fg_iou)
    labels[pos] = np.asarray(gt_labels, np.int64)[matched[pos]] + 1
    return labels, matched, best


# ----------------------------------------------------------------------------------------------- crops
def context_boxes(boxes: np.ndarray, crop_size: int, context: int) -> np.ndarray:
    """Boxes enlarged so that, once warped to ``crop_size``, the original box sits ``context`` pixels in from
    every side (R-CNN's context padding)."""
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    inner = max(1, crop_size - 2 * context)
    scale = crop_size / inner
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    hw, hh = (b[:, 2] - b[:, 0]) * scale / 2, (b[:, 3] - b[:, 1]) * scale / 2
    return np.stack([cx - hw, cy - hh, cx + hw, cy + hh], 1)


def warp_regions(image: np.ndarray, boxes: np.ndarray, crop_size: int, context: int, mean: np.ndarray,
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """Each box (with context) of a ``(H, W, 3)`` uint8 RGB image warped to ``crop_size`` squares:
    ``(N, 3, S, S)`` float32 tensor of pixel values with the mean colour where a box leaves the image."""
    img = torch.from_numpy(np.require(image, np.uint8, ['C', 'W'])).to(device).permute(2, 0, 1).float()[None]
    m = torch.as_tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    rois = torch.from_numpy(context_boxes(boxes, crop_size, context)).to(device)
    if not len(rois):
        return torch.zeros((0, 3, crop_size, crop_size), device=device)
    crops = roi_align(img - m, [rois], output_size=crop_size, spatial_scale=1.0, sampling_ratio=2, aligned=True)
    return crops + m


# ----------------------------------------------------------------------------------------------- model
class CompactBackbone(nn.Module):
    """Stride-2 stem and three residual stages (the ``cnn`` classifier's stages): 64 px -> 4 x 4 features."""

    def __init__(self, widths: tuple[int, int, int] = (32, 64, 128)):
        super().__init__()
        w1, w2, w3 = widths
        stem = max(8, w1 // 2)
        self.stem = nn.Sequential(nn.Conv2d(3, stem, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(stem),
                                  nn.GELU(), conv_bn(stem, stem))
        self.stages = nn.Sequential(Stage(stem, w1), Stage(w1, w2), Stage(w2, w3))
        self.out_channels = w3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(F.adaptive_avg_pool2d(self.stages(self.stem(x)), 1), 1)


class ResNet18Backbone(nn.Module):
    """torchvision's ResNet-18 without its classifier: 512 pooled features."""

    def __init__(self, state: dict[str, torch.Tensor] | None):
        super().__init__()
        from torchvision.models import resnet18

        net = resnet18(weights=None)
        if state is not None:
            missing, _ = net.load_state_dict({k: v for k, v in state.items() if not k.startswith("fc.")},
                                                      strict=False)
            missing = [k for k in missing if not k.startswith("fc.")]
            if missing:
                raise ValueError(f"rcnn: the ResNet-18 weights lack {len(missing)} tensors (first: {missing[0]})")
        net.fc = nn.Identity()
        self.net = net
        self.out_channels = 512

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class RegionNet(nn.Module):
    """Normalisation, a backbone, a ``C + 1``-way classifier and a ``4 C`` box regressor."""

    def __init__(self, backbone: nn.Module, num_classes: int, mean: tuple[float, ...], std: tuple[float, ...],
                 dropout: float = 0.2):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        self.backbone = backbone
        self.drop = nn.Dropout(dropout)
        self.cls = nn.Linear(backbone.out_channels, num_classes + 1)
        self.reg = nn.Linear(backbone.out_channels, 4 * num_classes)
        nn.init.normal_(self.reg.weight, std=0.001)
        nn.init.zeros_(self.reg.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.drop(self.backbone((x - self.mean) / self.std))
        return self.cls(f), self.reg(f)


def resolve_backbone(backbone: str, weights_file: str | None) -> tuple[str, dict[str, torch.Tensor] | None, str | None]:
    """``(kind, state dict or None, weights source)`` of the backbone to build; never downloads.

    ``backbone``: ``"auto"`` (ResNet-18 when weights are at hand: the user's file, else torchvision's
    ImageNet file already in the torch hub cache; otherwise the compact CNN from scratch), ``"scratch"`` or
    ``"resnet18"`` (from the weights at hand, or random).
    """
    if backbone not in ("auto", "scratch", "resnet18"):
        raise ValueError(f"rcnn: backbone must be 'auto', 'scratch' or 'resnet18', got {backbone!r}")
    if backbone == "scratch":
        return "compact", None, "scratch"
    if weights_file:
        path = Path(weights_file)
        if not path.is_file():
            raise FileNotFoundError(f"rcnn: weights file {path} does not exist; expected a ResNet-18 state dict")
        obj = torch.load(path, map_location="cpu", weights_only=True)
        for key in ("state_dict", "model", "model_state_dict"):
            if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
                obj = obj[key]
        if not isinstance(obj, dict):
            raise ValueError(f"rcnn: {path} holds {type(obj).__name__}; expected a ResNet-18 state dict")
        return "resnet18", {k.removeprefix("module."): v for k, v in obj.items()}, "backbone-file"
    from torchvision.models import ResNet18_Weights

    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(ResNet18_Weights.IMAGENET1K_V1.url)
    if cached.is_file():
        return "resnet18", torch.load(cached, map_location="cpu", weights_only=True), "imagenet-backbone"
    if backbone == "resnet18":
        return "resnet18", None, "scratch"
    return "compact", None, "scratch"


# -------------------------------------------------------------------------------------------- training
@dataclass
class RegionSet:
    """Warped training regions: ``crops (N, 3, S, S)`` uint8, ``labels (N,)`` (0 background, k + 1 class k),
    ``targets (N, 4)`` float32 regression targets (zeros for background)."""

    crops: torch.Tensor
    labels: torch.Tensor
    targets: torch.Tensor


def sample_regions(data: DetectionSet, proposals: list[np.ndarray], crop_size: int, context: int,
                   mean: np.ndarray, fg_iou: float, bg_iou: float, max_pos: int, max_bg: int,
                   rng: np.random.Generator, progress: Any) -> RegionSet:
    """Labelled, warped regions of every image: up to ``max_pos`` positives (the ground-truth boxes
    included) and ``max_bg`` background proposals per image."""
    crops, labels, targets = [], [], []
    for i in progress(range(len(data)), desc="rcnn regions", total=len(data)):
        s = data[i]
        regular = ~s.difficult
        boxes = np.concatenate([s.boxes[regular], proposals[i]]) if len(proposals[i]) else s.boxes[regular]
        lab, matched, _ = label_proposals(boxes, s.boxes, s.labels, s.difficult, fg_iou, bg_iou)
        pos, bg = np.flatnonzero(lab > 0), np.flatnonzero(lab == 0)
        if len(pos) > max_pos:
            pos = rng.choice(pos, max_pos, replace=False)
        if len(bg) > max_bg:
            bg = rng.choice(bg, max_bg, replace=False)
        pick = np.concatenate([pos, bg])
        if not len(pick):
            continue
        image = data.load_image(i)
        warped = warp_regions(image, boxes[pick], crop_size, context, mean)
        crops.append(warped.round().clamp(0, 255).to(torch.uint8))
        t = np.zeros((len(pick), 4), np.float32)
        if len(pos):
            t[: len(pos)] = encode_boxes(boxes[pos], s.boxes[matched[pos]])
        labels.append(torch.from_numpy(lab[pick]))
        targets.append(torch.from_numpy(t))
    if not crops:
        raise ValueError(f"rcnn: no labelled regions in {data.name} ({len(data)} images)")
    return RegionSet(torch.cat(crops), torch.cat(labels), torch.cat(targets))


def balanced_batches(labels: np.ndarray, batch_size: int, positive_fraction: float, steps: int,
                     rng: np.random.Generator) -> np.ndarray:
    """``(steps, batch_size)`` indices, each row ``round(positive_fraction * batch_size)`` positives (label > 0,
    drawn without replacement while they last) and the rest background."""
    pos, bg = np.flatnonzero(labels > 0), np.flatnonzero(labels == 0)
    n_pos = round(positive_fraction * batch_size) if len(pos) else 0
    if not len(bg):
        n_pos = batch_size
    n_bg = batch_size - n_pos

    def stream(pool: np.ndarray, count: int) -> np.ndarray:
        if count == 0:
            return np.zeros((steps, 0), np.int64)
        reps = math.ceil(steps * count / len(pool))
        return np.concatenate([rng.permutation(pool) for _ in range(reps)])[: steps * count].reshape(steps, count)

    return np.concatenate([stream(pos, n_pos), stream(bg, n_bg)], axis=1)


def flip_targets(targets: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Regression targets of horizontally flipped regions (``tx`` changes sign)."""
    t = targets.clone()
    t[flip, 0] = -t[flip, 0]
    return t


# -------------------------------------------------------------------------------------------- pipeline
class RCNN(Detector):
    """R-CNN: selective-search proposals, warped regions classified by a CNN, class-specific box regression.

    Parameters:
        crop_size, context: warped region size and the context margin (pixels at that size).
        fg_iou, bg_iou: labelling thresholds (R-CNN: 0.5 and 0.3; between is ignored).
        max_train_proposals, max_test_proposals: proposals used per image (best first).
        positives_per_image, background_per_image: regions kept per training image.
        iterations, batch_size, positive_fraction, lr, weight_decay: the training schedule (AdamW, cosine).
        box_regression: train and apply the class-specific box regressor.
        backbone: ``"auto"``, ``"scratch"`` or ``"resnet18"`` (see :func:`resolve_backbone`).
        widths: channels of the compact backbone's stages.
        nms_ious: candidate per-class NMS thresholds, chosen on val.
        score_threshold: detections with a lower class probability are dropped.
        max_detections: per image.
        min_proposal_size: proposals smaller than this (pixels) are dropped.
        proposer_params: parameters of the ``selective-search`` proposer (None: its defaults, the fast preset).
    """

    id: ClassVar[str] = "rcnn"
    family: ClassVar[str] = "deep"
    devices: ClassVar[tuple[str, ...]] = ("cpu", "cuda")
    description: ClassVar[str] = "R-CNN: selective search + warped-region CNN + box regression"
    detect_batch_size: ClassVar[int] = 8
    consumes: ClassVar[tuple[str, ...]] = ("selective-search",)  # its proposals, through the proposal cache
    erf_layer: ClassVar[str] = "backbone.stages"  # the compact backbone's last stage, on 64-px val object crops
    erf_input: ClassVar[dict[str, Any]] = {"size": 64}
    profile_params: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"proposer_params": SS_SMOKE, "iterations": 40, "batch_size": 64, "widths": (16, 32, 64),
                  "max_train_proposals": 300, "max_test_proposals": 150, "positives_per_image": 32,
                  "background_per_image": 48, "nms_ious": (0.3,)},
        "full": {"iterations": 5000, "max_train_proposals": 2000, "max_test_proposals": 2000, "crop_size": 96,
                 "context": 6, "positives_per_image": 64, "background_per_image": 192},
    }

    def __init__(self, crop_size: int = 64, context: int = 4, fg_iou: float = 0.5, bg_iou: float = 0.3,
                 max_train_proposals: int = 1000, max_test_proposals: int = 500, positives_per_image: int = 48,
                 background_per_image: int = 144, iterations: int = 600, batch_size: int = 128,
                 positive_fraction: float = 0.25, lr: float = 2e-3, weight_decay: float = 5e-4,
                 box_regression: bool = True, backbone: str = "auto", widths: tuple[int, int, int] = (32, 64, 128),
                 nms_ious: tuple[float, ...] = (0.3, 0.45), score_threshold: float = 0.01, max_detections: int = 100,
                 min_proposal_size: float = 8.0, proposer_params: dict[str, Any] | None = None):
        self.crop_size = crop_size
        self.context = context
        self.fg_iou = fg_iou
        self.bg_iou = bg_iou
        self.max_train_proposals = max_train_proposals
        self.max_test_proposals = max_test_proposals
        self.positives_per_image = positives_per_image
        self.background_per_image = background_per_image
        self.iterations = iterations
        self.batch_size = batch_size
        self.positive_fraction = positive_fraction
        self.lr = lr
        self.weight_decay = weight_decay
        self.box_regression = box_regression
        self.backbone = backbone
        self.widths = widths
        self.nms_ious = nms_ious
        self.score_threshold = score_threshold
        self.max_detections = max_detections
        self.min_proposal_size = min_proposal_size
        self.proposer_params = proposer_params

    # ---------------------------------------------------------------------------------------- fitting
    def _build(self, num_classes: int, ctx: Context) -> tuple[RegionNet, str]:
        kind, state, source = resolve_backbone(self.backbone, ctx.weights)
        if kind == "resnet18":
            return RegionNet(ResNet18Backbone(state), num_classes, IMAGENET_MEAN, IMAGENET_STD), source
        return RegionNet(CompactBackbone(tuple(self.widths)), num_classes, self.fill_, self.std_), source

    def _train(self, model: RegionNet, regions: RegionSet, ctx: Context) -> list[float]:
        """AdamW on balanced minibatches of flipped regions through the suite's engine, R-CNN's schedule (a
        ramp over the first 5 % of the steps on a cosine over all of them); returns the mean loss of each tenth
        of the schedule."""
        steps = int(self.iterations)
        batches = balanced_batches(regions.labels.numpy(), int(self.batch_size), self.positive_fraction, steps,
                                   ctx.rng(11))
        opt = torch.optim.AdamW(model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        trainer = Trainer(model, opt, ctx, steps=steps, name=self.id, channels_last=True,
                          schedule=Schedule("cosine", warmup="ramp", warmup_fraction=0.05))
        gen = torch.Generator().manual_seed(ctx.seed)

        def loss_of(idx: torch.Tensor) -> torch.Tensor:
            x = regions.crops[idx].float()
            flip = torch.rand(len(idx), generator=gen) < 0.5
            x = trainer.to_device(torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x))
            y, t = trainer.to_device(regions.labels[idx]), trainer.to_device(flip_targets(regions.targets[idx], flip))
            logits, deltas = model(x)
            loss = F.cross_entropy(logits.float(), y)
            pos = y > 0
            if self.box_regression and bool(pos.any()):
                d = deltas.float().view(len(y), -1, 4)[pos, y[pos] - 1]
                loss = loss + F.smooth_l1_loss(d, t[pos], beta=1.0 / 9, reduction="sum") / len(y)
            return loss

        model.train()
        step_losses = trainer.fit((torch.from_numpy(row) for row in batches), loss_of)
        model.eval()
        ctx.record(train_steps=trainer.steps_done, **({"loss_scaling": trainer.summary()["loss_scaling"]}
                                                       if trainer.scaler.is_enabled() else {}))
        curve, running, tenth = [], 0.0, max(1, steps // 10)
        for i, value in enumerate(step_losses):
            running += value
            if (i + 1) % tenth == 0:
                curve.append(round(running / tenth, 4))
                running = 0.0
        return curve

    def fit(self, train: DetectionSet, val: DetectionSet, ctx: Context) -> RCNN:
        if not len(train):
            raise ValueError("rcnn: the training split is empty")
        start = time.perf_counter()
        torch.manual_seed(ctx.seed)
        torch.set_num_threads(max(1, int(ctx.num_threads)))
        self.device_ = prepare_device(ctx.device)
        self.cache_dir_ = Path(ctx.cache_dir)
        self.workers_ = default_workers(ctx.num_threads)
        self.num_classes_ = train.num_classes
        self.proposer_ = make_proposer(self.proposer_params)
        props = dataset_proposals(train, self.proposer_, ctx, "rcnn train proposals")
        props = [prepare_proposals(p, s.width, s.height, int(self.max_train_proposals), self.min_proposal_size)
                 for p, s in zip(props, train)]
        proposal_s = time.perf_counter() - start
        # mean colour and spread of the training pixels (a subsample of images)
        stats = np.stack([train.load_image(i).reshape(-1, 3)[::97].mean(0) for i in range(0, len(train), 4)])
        self.fill_ = tuple(float(v) for v in stats.mean(0))  # the colour outside the image in warped regions
        self.std_ = (60.0, 60.0, 60.0)
        rng = ctx.rng(7)
        regions = sample_regions(train, props, int(self.crop_size), int(self.context), np.array(self.fill_),
                                 self.fg_iou, self.bg_iou, int(self.positives_per_image),
                                 int(self.background_per_image), rng, ctx.progress)
        model, source = self._build(train.num_classes, ctx)
        self.model_ = model.to(self.device_).to(memory_format=torch.channels_last)
        t0 = time.perf_counter()
        losses = self._train(self.model_, regions, ctx)
        train_s = time.perf_counter() - t0
        self.nms_iou_ = float(self.nms_ious[0])
        val_map50: dict[str, float] = {}  # the chosen threshold's val mAP50, when val was scored
        if len(val) and len(self.nms_ious) > 0:
            vprops = dataset_proposals(val, self.proposer_, ctx, "rcnn val proposals")
            raw = [self._score_regions(val.load_image(i), vprops[i]) for i in range(len(val))]
            best = ctx.select([{"nms_iou": float(t)} for t in self.nms_ious], lambda s: score_detections(
                val, [self._finish(*r, s["nms_iou"]) for r in raw], val.classes, ("voc",))["map50"], metric="val_map50")
            self.nms_iou_ = best.settings["nms_iou"]
            val_map50 = {"val_map50": round(best.score or 0.0, 4)}
        n_pos = int((regions.labels > 0).sum())
        ctx.record(weights=source, backbone="resnet18" if isinstance(model.backbone, ResNet18Backbone) else "compact",
                   parameters=sum(p.numel() for p in model.parameters()), regions=len(regions.labels),
                   positive_regions=n_pos, proposals_per_train_image=round(float(np.mean([len(p) for p in props])), 1),
                   proposal_s=round(proposal_s, 2), train_s=round(train_s, 2), iterations=int(self.iterations),
                   amp=str(amp_dtype(ctx.device)).replace("torch.", "") if amp_dtype(ctx.device) else None,
                   loss_curve=losses, nms_iou=self.nms_iou_, box_regression=bool(self.box_regression), **val_map50)
        return self

    # -------------------------------------------------------------------------------------- detection
    @torch.no_grad()
    def _score_regions(self, image: np.ndarray, proposals: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                                 np.ndarray, int, int]:
        """``(proposals (N, 4), probabilities (N, C + 1), deltas (N, C, 4), width, height)``."""
        h, w = image.shape[:2]
        boxes = prepare_proposals(proposals, w, h, int(self.max_test_proposals), self.min_proposal_size)
        c = self.num_classes_
        if not len(boxes):
            return boxes, np.zeros((0, c + 1), np.float32), np.zeros((0, c, 4), np.float32), w, h
        dtype = amp_dtype(str(self.device_))
        probs, deltas = [], []
        for s in range(0, len(boxes), 512):
            x = warp_regions(image, boxes[s:s + 512], int(self.crop_size), int(self.context), np.array(self.fill_),
                             self.device_).contiguous(memory_format=torch.channels_last)
            with autocast(str(self.device_), dtype):
                logits, d = self.model_(x)
            probs.append(torch.softmax(logits.float(), 1).cpu())
            deltas.append(d.float().view(len(x), c, 4).cpu())
        return boxes, torch.cat(probs).numpy(), torch.cat(deltas).numpy(), w, h

    def _finish(self, boxes: np.ndarray, probs: np.ndarray, deltas: np.ndarray, w: int, h: int, nms_iou: float
                ) -> Detections:
        """Per-class boxes (regressed), scores and labels after thresholding and NMS."""
        if not len(boxes):
            return Detections.empty()
        rows, cls = np.nonzero(probs[:, 1:] >= self.score_threshold)
        if not len(rows):
            return Detections.empty()
        scores = probs[rows, cls + 1]
        out = boxes[rows].astype(np.float64)
        if self.box_regression:
            out = decode_boxes(out, deltas[rows, cls])
        out = clip_boxes(out, w, h)
        ok = (out[:, 2] > out[:, 0]) & (out[:, 3] > out[:, 1])
        out, scores, cls = out[ok], scores[ok], cls[ok]
        keep = batched_nms(out, scores, cls, nms_iou)[: int(self.max_detections)]
        return Detections(out[keep].astype(np.float32), scores[keep].astype(np.float32), cls[keep].astype(np.int64))

    def detect(self, image: np.ndarray) -> Detections:
        return self.detect_batch([image])[0]

    def detect_batch(self, images: list[np.ndarray]) -> list[Detections]:
        """Proposals of the batch over the job's processes (or from the cache), then the CNN image by image."""
        workers = self.workers_ if len(images) > 1 else 1
        props = proposals_for_images(images, self.proposer_, self.cache_dir_, workers=workers)
        return [self._finish(*self._score_regions(im, p), self.nms_iou_) for im, p in zip(images, props)]
