"""Training and inference for the suite's image classifiers (shared by ``cnn`` and ``cnn-fusion``).

Standard practice for small images: per-channel normalisation, random crops from a reflection-padded
image and horizontal flips (done on whole batches of uint8 tensors, no per-image Python), label
smoothing, SGD with Nesterov momentum under a one-cycle schedule (linear warm-up from 0.1 over a fifth of the
steps, linear decay to 0), weight decay on weights but not on norms and biases, mixed precision and
channels-last memory where the device supports them, and flip test-time augmentation. The optimiser steps,
schedule, precision, divergence check and time budget are the suite's training engine
(:class:`benchsuite.training.Trainer`).

The planned epochs are the work: the same on every machine, whatever its load. Only in the opt-in time-boxed
mode (``TrainConfig.max_train_s``, or ``--time-budget`` through ``ctx.budget.train_time_s``) does the speed of
the first steps set how many whole epochs fit (after the validation passes' estimated seconds); the one-cycle
schedule is then laid over that many, so a shortened run still ends annealed, and the engine reports the
shortcut (``ctx.shortcut``), which marks the record as not comparable. The history records the epochs planned
and run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchsuite.api import Context
from benchsuite.data.images import ImageSet
from benchsuite.training import (
    Schedule,
    Trainer,
    amp_dtype,
    autocast,
    dtype_name,
    param_groups,
    prepare_device,
)


@dataclass
class TrainConfig:
    epochs: int = 16
    batch_size: int = 256
    lr: float = 0.2
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.2
    warmup_fraction: float = 0.2
    crop_padding: int = 2
    flip_tta: bool = True
    max_train_s: float | None = None  # opt-in wall-clock cap on training, seconds (None: the planned epochs)
    timing_steps: int = 20  # steps timed (after the engine's first 3) to decide whether the epochs fit the cap


def to_nchw(images: np.ndarray) -> torch.Tensor:
    """uint8 ``(N, H, W, 3)`` -> uint8 tensor ``(N, 3, H, W)``."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()


class Normalizer(nn.Module):
    """uint8 NCHW -> float, standardised with the training set's per-channel mean and std."""

    def __init__(self, mean: np.ndarray, std: np.ndarray):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() - self.mean) / self.std


def random_crop_flip(batch: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Random ``pad``-pixel translations (reflection padding) and horizontal flips of a uint8 batch."""
    n, c, h, w = batch.shape
    if pad > 0:
        padded = F.pad(batch.float(), (pad, pad, pad, pad), mode="reflect")
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
        rows = (dy[:, None] + torch.arange(h)[None]).view(n, 1, h, 1).expand(n, c, h, w + 2 * pad)
        out = torch.gather(padded, 2, rows)
        cols = (dx[:, None] + torch.arange(w)[None]).view(n, 1, 1, w).expand(n, c, h, w)
        batch = torch.gather(out, 3, cols)
    flip = torch.rand(n, generator=generator) < 0.5
    return torch.where(flip.view(n, 1, 1, 1), batch.flip(3), batch)


class ImageClassifierModel(nn.Module):
    """Normalisation followed by a network that maps float NCHW images to logits."""

    def __init__(self, net: nn.Module, mean: np.ndarray, std: np.ndarray):
        super().__init__()
        self.norm = Normalizer(mean, std)
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.norm(x))


def train_classifier(net: nn.Module, train: ImageSet, val: ImageSet, cfg: TrainConfig, ctx: Context,
                     name: str = "cnn") -> tuple[ImageClassifierModel, dict[str, Any]]:
    """Train ``net`` (float ``(N, 3, H, W)`` images -> ``(N, C)`` logits) on ``train``'s uint8 ``(N, H, W, 3)``
    images through the suite's engine; ``name`` (the pipeline's id) heads its log lines and errors. Returns the
    model (eval mode; it takes uint8 NCHW batches) and a history for the record: train loss per epoch, val
    accuracy ``[epoch, accuracy]`` at every quarter and at the end, epochs planned and run, ``train_s``."""
    device = prepare_device(ctx.device)
    mean = train.images.reshape(-1, 3).mean(0)
    std = train.images.reshape(-1, 3).std(0) + 1e-3
    model = ImageClassifierModel(net, mean, std).to(device).to(memory_format=torch.channels_last)
    images = to_nchw(train.images)
    labels = torch.from_numpy(train.labels)
    n = len(labels)
    steps_per_epoch = max(1, n // cfg.batch_size)  # drop the ragged last batch: BN needs full batches
    opt = torch.optim.SGD(param_groups(model, cfg.weight_decay), lr=cfg.lr, momentum=cfg.momentum,
                          nesterov=True)

    def validation_s(seconds_per_step: float) -> float:
        # a val pass (forward only, flip TTA doubling it) costs about a third of a train step per image; about
        # five of them run (every quarter of the schedule and at the end)
        return 5 * seconds_per_step * len(val) / cfg.batch_size * (2 if cfg.flip_tta else 1) / 3

    trainer = Trainer(model, opt, ctx, steps=steps_per_epoch * cfg.epochs, name=name,
                      schedule=Schedule("linear", warmup_fraction=cfg.warmup_fraction, warmup_start=0.1),
                      channels_last=True, steps_per_epoch=steps_per_epoch, whole_epochs=True,
                      max_train_s=cfg.max_train_s, extra_s=validation_s, timing_steps=cfg.timing_steps)
    gen = torch.Generator().manual_seed(ctx.seed)
    history: dict[str, Any] = {"epochs": cfg.epochs, "epochs_planned": cfg.epochs, "amp": dtype_name(trainer.dtype),
                               "max_train_s": trainer.budget_s, "train_loss": [], "val_accuracy": []}
    for epoch in trainer.epochs():
        model.train()
        order = torch.randperm(n, generator=gen)
        loss_sum = 0.0
        for i, _ in enumerate(trainer.epoch_steps()):
            idx = order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            x = trainer.to_device(random_crop_flip(images[idx], cfg.crop_padding, gen))
            y = trainer.to_device(labels[idx])
            with trainer.autocast():
                loss = F.cross_entropy(model(x), y, label_smoothing=cfg.label_smoothing)
            loss_sum += trainer.step(loss)
        history["train_loss"].append(round(loss_sum / steps_per_epoch, 4))
        epochs = trainer.epochs_total
        if epoch == epochs - 1 or (len(val) and epoch % max(1, epochs // 4) == 0):
            val_pred = predict_labels(model, val.images, ctx.device, flip_tta=cfg.flip_tta)
            history["val_accuracy"].append([epoch + 1, round(float(np.mean(val_pred == val.labels)), 4)])
    if trainer.seconds_per_step is not None:
        history["seconds_per_step"] = round(trainer.seconds_per_step, 4)
    history["epochs"] = trainer.epochs_total
    history["schedule_shortened"] = trainer.shortened
    history["train_s"] = round(trainer.seconds, 2)
    model.eval()
    return model, history


@torch.no_grad()
def predict_logits(model: nn.Module, images: np.ndarray, device: str, batch_size: int = 500,
                   flip_tta: bool = True) -> np.ndarray:
    """Float32 logits ``(N, C)`` for uint8 ``(N, H, W, 3)`` images, averaged over a flip if asked."""
    model.eval()
    dtype = amp_dtype(device)
    out = []
    for s in range(0, len(images), batch_size):
        x = to_nchw(images[s:s + batch_size]).to(device).contiguous(memory_format=torch.channels_last)
        with autocast(device, dtype):
            logits = model(x).float()
            if flip_tta:
                logits = 0.5 * (logits + model(x.flip(3)).float())
        out.append(logits.cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


def predict_labels(model: nn.Module, images: np.ndarray, device: str, flip_tta: bool = True) -> np.ndarray:
    return predict_logits(model, images, device, flip_tta=flip_tta).argmax(1).astype(np.int64)
