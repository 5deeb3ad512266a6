"""The classifier training loop on the engine: its wall-clock budget gives fewer whole epochs, the one-cycle shape
kept."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchsuite import training
from benchsuite.api import Context
from benchsuite.data.images import ImageSet
from pipelines.deep.classifier_training import TrainConfig, train_classifier
from pipelines.deep.cnn import CompactResNet


def _tiny_sets(n: int = 64) -> tuple[ImageSet, ImageSet]:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 3, n)
    classes = ("a", "b", "c")
    return ImageSet(images, labels, classes, "t/train"), ImageSet(images[:16], labels[:16], classes, "t/val")


def _fake_clock(monkeypatch: pytest.MonkeyPatch, seconds_per_call: float) -> None:
    """``time.perf_counter`` of the training engine advances by a fixed step per call: a slow machine."""
    now = [0.0]

    def tick() -> float:
        now[0] += seconds_per_call
        return now[0]

    monkeypatch.setattr(training.time, "perf_counter", tick)


def test_budget_shortens_to_whole_epochs_and_keeps_the_schedule_annealed(monkeypatch):
    train, val = _tiny_sets()
    lrs: list[float] = []
    real_step = torch.optim.SGD.step

    def spy(self, *args, **kwargs):
        lrs.append(self.param_groups[0]["lr"])
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", spy)
    _fake_clock(monkeypatch, 1.0)  # one clock read per step: 1 s a step
    cfg = TrainConfig(epochs=40, batch_size=16, lr=0.1, max_train_s=30.0, timing_steps=4)
    torch.manual_seed(0)
    _, history = train_classifier(CompactResNet(3, (8, 8, 8)), train, val, cfg, Context(seed=0))
    steps_per_epoch = 64 // 16
    assert history["epochs_planned"] == 40
    assert history["schedule_shortened"] is True
    assert 1 <= history["epochs"] < 40
    assert len(history["train_loss"]) == history["epochs"]
    assert len(lrs) == history["epochs"] * steps_per_epoch
    # 30 s at 1 s a step, less about 3.3 s of validation passes (5 x 16 val images / 16 per batch x 2 (flip) / 3):
    # 26 steps, six whole epochs of 4
    assert history["epochs"] == 6
    assert history["seconds_per_step"] == pytest.approx(1.0)
    # the learning rate still follows a one-cycle over the shortened run: linear decay to 0 over 24 steps, after a
    # warm-up of int(0.2 * 24) = 4 steps
    total = history["epochs"] * steps_per_epoch
    assert lrs[-1] == pytest.approx(0.1 * (total - (total - 1)) / (total - 4), rel=1e-6)
    assert lrs[-1] < 0.1 * 0.5


def test_no_budget_trains_every_epoch():
    train, val = _tiny_sets()
    cfg = TrainConfig(epochs=3, batch_size=16, lr=0.1)
    _, history = train_classifier(CompactResNet(3, (8, 8, 8)), train, val, cfg, Context(seed=0))
    assert history["epochs"] == 3
    assert history["schedule_shortened"] is False
    assert len(history["train_loss"]) == 3


def test_budget_that_fits_changes_nothing(monkeypatch):
    train, val = _tiny_sets()
    _fake_clock(monkeypatch, 1e-4)
    cfg = TrainConfig(epochs=3, batch_size=16, lr=0.1, max_train_s=1e6, timing_steps=4)
    _, history = train_classifier(CompactResNet(3, (8, 8, 8)), train, val, cfg, Context(seed=0))
    assert history["epochs"] == 3
    assert history["schedule_shortened"] is False
