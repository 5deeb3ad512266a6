"""``cnn``: a compact residual CNN trained from scratch on the classification data."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from benchsuite.api import Classifier, ClassifierOutput, Context
from benchsuite.data.images import ImageSet
from pipelines.deep.classifier_training import TrainConfig, predict_logits, train_classifier

#: quick: cnn and cnn-fusion train the same fixed schedule (9 epochs), sized so that the whole classification
#: task (nn-l1, hog-svm and both CNNs) stays within 15 minutes on an idle 2-core machine
CNN_QUICK: dict[str, Any] = {"epochs": 9}


def conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.GELU())


class Stage(nn.Module):
    """conv -> 2x2 max-pool -> BN -> GELU, then a residual conv-BN-GELU at the pooled resolution."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.bn = nn.BatchNorm2d(c_out)
        self.act = nn.GELU()
        self.residual = conv_bn(c_out, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.bn(self.pool(self.conv(x))))
        return x + self.residual(x)


class CompactResNet(nn.Module):
    """A stem and three residual stages that halve the resolution (32 -> 16 -> 8 -> 4 on CIFAR-10).

    ``stage_outputs`` exposes the feature map after each pooling stage, for the fusion variant.
    """

    def __init__(self, num_classes: int, widths: tuple[int, int, int] = (32, 64, 128), logit_scale: float = 0.125):
        super().__init__()
        w1, w2, w3 = widths
        self.stem = conv_bn(3, max(8, w1 // 2))
        self.stages = nn.ModuleList([Stage(max(8, w1 // 2), w1), Stage(w1, w2), Stage(w2, w3)])
        self.head = nn.Linear(w3, num_classes, bias=False)
        self.logit_scale = logit_scale

    def stage_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        deepest = self.stage_outputs(x)[-1]
        pooled = torch.amax(deepest, dim=(2, 3))
        return self.head(pooled) * self.logit_scale


class ResidualCNN(Classifier):
    """Compact residual CNN from scratch: crops + flips, label smoothing, one-cycle SGD, bf16/AMP, flip TTA.

    Parameters:
        epochs, batch_size, lr, weight_decay, label_smoothing: the training schedule.
        widths: channels of the three stages.
        max_train_s: opt-in wall-clock cap on training in seconds (None: the planned epochs); when the speed says the
            epochs would overrun it, fewer whole epochs are trained under the same one-cycle shape, and the
            record says how many (``fit_info.epochs`` of ``fit_info.epochs_planned``) and is marked shortened.
    """

    id: ClassVar[str] = "cnn"
    family: ClassVar[str] = "deep"
    devices: ClassVar[tuple[str, ...]] = ("cpu", "cuda")
    predict_batch_size: ClassVar[int] = 1000
    erf_layer: ClassVar[str] = "stages.2"  # the deepest stage's map: its ERF is measured (benchsuite.erf)
    profile_params: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"epochs": 8, "widths": (16, 32, 64), "batch_size": 64},
        "quick": CNN_QUICK,
        "full": {"epochs": 40, "widths": (64, 128, 256)},
    }

    def __init__(self, epochs: int = 16, widths: tuple[int, int, int] = (32, 64, 128), batch_size: int = 256,
                 lr: float = 0.2, weight_decay: float = 5e-4, label_smoothing: float = 0.2, flip_tta: bool = True,
                 max_train_s: float | None = None):
        self.epochs = epochs
        self.max_train_s = max_train_s
        self.widths = widths
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.label_smoothing = label_smoothing
        self.flip_tta = flip_tta

    def build_network(self, num_classes: int) -> nn.Module:
        return CompactResNet(num_classes, tuple(self.widths))

    def fit(self, train: ImageSet, val: ImageSet, ctx: Context) -> ResidualCNN:
        torch.manual_seed(ctx.seed)
        cfg = TrainConfig(epochs=int(self.epochs), batch_size=int(self.batch_size), lr=self.lr,
                          weight_decay=self.weight_decay, label_smoothing=self.label_smoothing,
                          flip_tta=self.flip_tta,
                          max_train_s=None if self.max_train_s is None else float(self.max_train_s))
        net = self.build_network(train.num_classes)
        self.model_, history = train_classifier(net, train, val, cfg, ctx, name=self.id)
        self.device_ = ctx.device
        self.num_classes_ = train.num_classes
        ctx.record(weights="scratch", parameters=sum(p.numel() for p in net.parameters()), **history)
        return self

    def predict(self, images: np.ndarray) -> ClassifierOutput:
        if not len(images):
            return ClassifierOutput(labels=np.zeros(0, np.int64), scores=np.zeros((0, self.num_classes_), np.float32))
        logits = predict_logits(self.model_, images, self.device_, flip_tta=self.flip_tta)
        return ClassifierOutput(labels=logits.argmax(1).astype(np.int64), scores=logits)
