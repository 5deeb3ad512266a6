"""The stacked-kernel study: a stack of 3x3 convolutions against one large kernel of the same theoretical field.

Luo et al. (2016) found the effective receptive field (ERF) of ``n`` stacked layers Gaussian-shaped with a width
growing like ``sqrt(n)`` while the theoretical field grows like ``n``, so a stack of 3x3 convolutions has a smaller
ERF than one ``(2n + 1) x (2n + 1)`` kernel that sees exactly as far. These classifiers differ only in their first
block: ``depth`` 3x3 conv-BN-ReLU layers (``rf-3x3x2``, ``rf-3x3x4``, ``rf-3x3x8``) against one ``2 * depth + 1``
kernel conv-BN-ReLU (``rf-5x5``, ``rf-9x9``, ``rf-17x17``), both at full resolution and ``width`` channels, so each
pair has the same theoretical field (5, 9, 17 px). The rest is one shared head (pooling, two 3x3 conv-BN-ReLU
stages, global average pooling, a linear layer) and the suite's classifier recipe
(:func:`pipelines.deep.classifier_training.train_classifier`: the same data, augmentation, schedule and steps for
every variant). Each declares ``erf_layer = "block"``: the engine measures the ERF of the block's centre unit at
initialisation and after training (:mod:`benchsuite.erf`); the report shows the variants' accuracies in one study
table and their ERF sizes in the ERF section.

The quick profile trains each variant on a fixed, seeded subset of the training split (``train_images``), so the
six fit in minutes each on a 2-core CPU; ``fit_info`` says how many images were used.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from benchsuite.api import Classifier, ClassifierOutput, Context
from benchsuite.data.images import ImageSet
from pipelines.deep.classifier_training import TrainConfig, predict_logits, train_classifier


def conv_bn_relu(c_in: int, c_out: int, kernel: int) -> nn.Sequential:
    """A ``kernel x kernel`` convolution (same padding), batch norm, ReLU."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True))


class KernelStudyNet(nn.Module):
    """``block`` (``depth`` conv-BN-ReLU layers of ``kernel``) then the shared head; ``(N, 3, H, W)`` -> logits."""

    def __init__(self, num_classes: int, kernel: int, depth: int, width: int = 16):
        super().__init__()
        layers = [conv_bn_relu(3 if i == 0 else width, width, kernel) for i in range(depth)]
        self.block = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.MaxPool2d(2), conv_bn_relu(width, 2 * width, 3), nn.MaxPool2d(2),
                                  conv_bn_relu(2 * width, 4 * width, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(4 * width, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block(x))


STUDY = "Stacked 3×3 kernels against one large kernel (effective receptive field)"
NOTE = ("Luo et al. (2016): the ERF of n stacked layers is Gaussian with a width growing like √n while the "
        "theoretical field grows like n, so n stacked 3×3 convolutions have a smaller ERF than one (2n+1)×(2n+1) "
        "kernel of the same theoretical field. Each pair (3×3×2 / 5×5, 3×3×4 / 9×9, 3×3×8 / 17×17) differs only in "
        "its first block; ERF sizes of the block's centre unit are in the effective receptive fields table.")


class _KernelStudy(Classifier):
    """One variant of the stacked-kernel study (see the module docstring).

    Parameters:
        epochs, batch_size, lr, weight_decay, label_smoothing: the suite's classifier recipe
            (:class:`pipelines.deep.classifier_training.TrainConfig`), the same for every variant.
        width: channels of the block (the head doubles them twice).
        train_images: a fixed, seeded, class-stratified subset of the training split of this many images
            (None: all of it).
    """

    family: ClassVar[str] = "deep"
    devices: ClassVar[tuple[str, ...]] = ("cpu", "cuda")
    predict_batch_size: ClassVar[int] = 1000
    report_group: ClassVar[str] = STUDY
    report_note: ClassVar[str] = NOTE
    erf_layer: ClassVar[str] = "block"
    kernel: ClassVar[int] = 3
    depth: ClassVar[int] = 1
    profile_params: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"epochs": 2, "width": 8, "batch_size": 64, "train_images": None},
        "quick": {"epochs": 4, "width": 16, "train_images": 10000},
        "full": {"epochs": 30, "width": 32, "train_images": None},
    }

    def __init__(self, epochs: int = 8, width: int = 16, batch_size: int = 128, lr: float = 0.1,
                 weight_decay: float = 5e-4, label_smoothing: float = 0.1, train_images: int | None = None):
        self.epochs = epochs
        self.width = width
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.label_smoothing = label_smoothing
        self.train_images = train_images

    def fit(self, train: ImageSet, val: ImageSet, ctx: Context) -> _KernelStudy:
        torch.manual_seed(ctx.seed)
        if self.train_images is not None and len(train) > int(self.train_images):
            train = train.subset(_stratified(train.labels, int(self.train_images), ctx.rng(21)))
        cfg = TrainConfig(epochs=int(self.epochs), batch_size=int(self.batch_size), lr=float(self.lr),
                          weight_decay=float(self.weight_decay), label_smoothing=float(self.label_smoothing),
                          flip_tta=False)
        net = KernelStudyNet(train.num_classes, type(self).kernel, type(self).depth, int(self.width))
        self.model_, history = train_classifier(net, train, val, cfg, ctx, name=self.id)
        self.device_ = ctx.device
        self.num_classes_ = train.num_classes
        ctx.record(kernel=type(self).kernel, depth=type(self).depth,
                   theoretical_block_rf=type(self).depth * (type(self).kernel - 1) + 1, train_images_used=len(train),
                   parameters=sum(p.numel() for p in net.parameters()),
                   block_parameters=sum(p.numel() for p in net.block.parameters()), **history)
        return self

    def predict(self, images: np.ndarray) -> ClassifierOutput:
        if not len(images):
            return ClassifierOutput(np.zeros(0, np.int64), np.zeros((0, self.num_classes_), np.float32))
        logits = predict_logits(self.model_, images, self.device_, flip_tta=False)
        return ClassifierOutput(labels=logits.argmax(1).astype(np.int64), scores=logits)


def _stratified(labels: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``count`` images, each class in its share of ``labels`` (the largest remainders first)."""
    classes, sizes = np.unique(labels, return_counts=True)
    quota = sizes * count / len(labels)
    take = np.floor(quota).astype(np.int64)
    extra = np.argsort(-(quota - take), kind="stable")[: count - int(take.sum())]
    take[extra] += 1
    picks = [rng.choice(np.flatnonzero(labels == c), int(t), replace=False) for c, t in zip(classes, take)]
    return np.sort(np.concatenate(picks))


class Stack3x3x2(_KernelStudy):
    """Two stacked 3x3 convolutions (theoretical field 5 px)."""

    id: ClassVar[str] = "rf-3x3x2"
    kernel, depth = 3, 2


class Single5x5(_KernelStudy):
    """One 5x5 convolution (theoretical field 5 px)."""

    id: ClassVar[str] = "rf-5x5"
    kernel, depth = 5, 1


class Stack3x3x4(_KernelStudy):
    """Four stacked 3x3 convolutions (theoretical field 9 px)."""

    id: ClassVar[str] = "rf-3x3x4"
    kernel, depth = 3, 4


class Single9x9(_KernelStudy):
    """One 9x9 convolution (theoretical field 9 px)."""

    id: ClassVar[str] = "rf-9x9"
    kernel, depth = 9, 1


class Stack3x3x8(_KernelStudy):
    """Eight stacked 3x3 convolutions (theoretical field 17 px)."""

    id: ClassVar[str] = "rf-3x3x8"
    kernel, depth = 3, 8


class Single17x17(_KernelStudy):
    """One 17x17 convolution (theoretical field 17 px)."""

    id: ClassVar[str] = "rf-17x17"
    kernel, depth = 17, 1
