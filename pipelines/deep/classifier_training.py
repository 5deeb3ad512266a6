"""Training and inference for the suite's image classifiers (shared by ``cnn`` and ``cnn-fusion``).

Standard practice for small images: per-channel normalisation, random crops from a reflection-padded
image and horizontal flips (done on whole batches of uint8 tensors, no per-image Python), label
smoothing, SGD with Nesterov momentum under a one-cycle schedule (linear warm-up, linear decay to 0),
weight decay on weights but not on norms and biases, mixed precision and channels-last memory where
the device supports them, and flip test-time augmentation.

The planned epochs are the work: the same on every machine, whatever its load. Only in the opt-in time-boxed
mode (``TrainConfig.max_train_s``, or ``--time-budget`` through ``ctx.budget.train_time_s``) does the speed of
the first steps set how many whole epochs fit; the one-cycle schedule is then laid over that many, so a
shortened run still ends annealed, and the fit reports the shortcut (``ctx.shortcut``), which marks the record
as not comparable. The history records the epochs planned and run.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchsuite.api import Context
from benchsuite.data.images import ImageSet
from pipelines.deep.common import amp_dtype, autocast, param_groups, prepare_device

log = logging.getLogger(__name__)


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
    timing_steps: int = 20  # steps timed (after 3 warm-up steps) to decide whether the epochs fit the cap


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


def epochs_within(budget_s: float, seconds_per_step: float, steps_per_epoch: int, epochs: int,
                  overhead_s: float = 0.0) -> int:
    """The most whole epochs (at least 1, at most ``epochs``) that fit ``budget_s`` seconds of training at
    ``seconds_per_step``, after ``overhead_s`` seconds of per-epoch extras (validation) are set aside."""
    per_epoch = seconds_per_step * steps_per_epoch + overhead_s
    if per_epoch <= 0:
        return epochs
    return max(1, min(epochs, int(budget_s // per_epoch)))


def one_cycle(step: int, total: int, warmup_fraction: float) -> float:
    """Learning-rate multiplier: linear from 0.1 to 1 over the warm-up, then linearly to 0."""
    warm = max(1, int(total * warmup_fraction))
    if step < warm:
        return 0.1 + 0.9 * step / warm
    return max(0.0, (total - step) / max(1, total - warm))


class ImageClassifierModel(nn.Module):
    """Normalisation followed by a network that maps float NCHW images to logits."""

    def __init__(self, net: nn.Module, mean: np.ndarray, std: np.ndarray):
        super().__init__()
        self.norm = Normalizer(mean, std)
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.norm(x))


def train_classifier(net: nn.Module, train: ImageSet, val: ImageSet, cfg: TrainConfig, ctx: Context
                     ) -> tuple[ImageClassifierModel, dict[str, Any]]:
    """Train ``net`` on ``train``; returns the model (eval mode) and a history for the record."""
    device = prepare_device(ctx.device)
    dtype = amp_dtype(ctx.device)
    mean = train.images.reshape(-1, 3).mean(0)
    std = train.images.reshape(-1, 3).std(0) + 1e-3
    model = ImageClassifierModel(net, mean, std).to(device).to(memory_format=torch.channels_last)
    images = to_nchw(train.images)
    labels = torch.from_numpy(train.labels)
    n = len(labels)
    steps_per_epoch = max(1, n // cfg.batch_size)  # drop the ragged last batch: BN needs full batches
    plan = {"epochs": cfg.epochs, "total": steps_per_epoch * cfg.epochs}  # read by the schedule, may shrink
    opt = torch.optim.SGD(param_groups(model, cfg.weight_decay), lr=cfg.lr, momentum=cfg.momentum,
                          nesterov=True)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: one_cycle(s, plan["total"], cfg.warmup_fraction))
    gen = torch.Generator().manual_seed(ctx.seed)
    cap_s, cap_reason = cfg.max_train_s, f"max_train_s={cfg.max_train_s} s (time-boxed training)"
    if cap_s is None and ctx.budget.train_time_s is not None:
        cap_s, cap_reason = float(ctx.budget.train_time_s), f"--time-budget {ctx.budget.train_time_s:g} s"
    history: dict[str, Any] = {"epochs": cfg.epochs, "epochs_planned": cfg.epochs,
                               "amp": str(dtype).replace("torch.", "") if dtype else None,
                               "max_train_s": cap_s, "train_loss": [], "val_accuracy": []}
    warm_steps = 3
    timed_from = None
    start = time.perf_counter()
    epoch = 0
    bar = iter(ctx.progress(range(cfg.epochs), desc="epochs", total=cfg.epochs))
    while epoch < plan["epochs"]:
        model.train()
        order = torch.randperm(n, generator=gen)
        loss_sum = 0.0
        for step in range(steps_per_epoch):
            idx = order[step * cfg.batch_size:(step + 1) * cfg.batch_size]
            x = random_crop_flip(images[idx], cfg.crop_padding, gen).to(device, non_blocking=True)
            x = x.contiguous(memory_format=torch.channels_last)
            y = labels[idx].to(device, non_blocking=True)
            with autocast(ctx.device, dtype):
                loss = F.cross_entropy(model(x), y, label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += float(loss.detach())
            done = epoch * steps_per_epoch + step + 1
            if cap_s is not None and done == warm_steps:
                timed_from = time.perf_counter()
            if cap_s is not None and timed_from is not None and done == warm_steps + cfg.timing_steps:
                per_step = (time.perf_counter() - timed_from) / cfg.timing_steps
                # a val pass (forward only, flip TTA doubling it) costs about a third of a train step per image;
                # about five of them run (every quarter of the schedule and at the end)
                val_s = per_step * len(val) / cfg.batch_size * (2 if cfg.flip_tta else 1) / 3
                fit = epochs_within(cap_s, per_step, steps_per_epoch, plan["epochs"],
                                    overhead_s=5 * val_s / plan["epochs"])
                if fit < plan["epochs"]:
                    log.warning("%d epochs would take %.0f s (with validation), over the %.0f s training budget: "
                                "training %d epochs",
                                plan["epochs"], plan["epochs"] * steps_per_epoch * per_step + 5 * val_s,
                                cap_s, fit)
                    ctx.shortcut("epochs", plan["epochs"], fit, cap_reason)
                    plan["epochs"], plan["total"] = fit, fit * steps_per_epoch
                history["seconds_per_step"] = round(per_step, 4)
        history["train_loss"].append(round(loss_sum / steps_per_epoch, 4))
        last = epoch == plan["epochs"] - 1
        if last or (len(val) and epoch % max(1, plan["epochs"] // 4) == 0):
            val_pred = predict_labels(model, val.images, ctx.device, flip_tta=cfg.flip_tta)
            history["val_accuracy"].append([epoch + 1, round(float(np.mean(val_pred == val.labels)), 4)])
        if not math.isfinite(loss_sum):
            raise FloatingPointError(f"training diverged at epoch {epoch + 1} (loss {loss_sum})")
        epoch += 1
        next(bar, None)
    history["epochs"] = plan["epochs"]
    history["schedule_shortened"] = plan["epochs"] < cfg.epochs
    history["train_s"] = round(time.perf_counter() - start, 2)
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
