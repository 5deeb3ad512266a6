"""The training engine: its schedules equal the three loops' old formulas, float16 loss scaling on the CPU, the
divergence check, the opt-in time budget."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
from torch import nn

from benchsuite.api import Budget, Context
from benchsuite.errors import BenchsuiteError, TrainingDivergedError
from benchsuite.training import Schedule, Trainer, steps_within, time_budget
from benchsuite.training import time as training_time

# ---------------------------------------------------------------- the schedules the loops used before the engine,
# written out as they were (classifier_training.one_cycle, detection_training.lr_factor, rcnn's LambdaLR lambda)


def old_one_cycle(step: int, total: int, warmup_fraction: float) -> float:
    warm = max(1, int(total * warmup_fraction))
    if step < warm:
        return 0.1 + 0.9 * step / warm
    return max(0.0, (total - step) / max(1, total - warm))


def old_detector_factor(step: int, total: int, warmup: int, decay: str) -> float:
    warmup = min(warmup, max(1, total // 5))  # the loop's per-step cap
    if step < warmup:
        return 0.001 + (1 - 0.001) * step / max(1, warmup)
    if decay == "cosine":
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return 0.01 if step >= total * 8 / 9 else 0.1 if step >= total * 2 / 3 else 1.0


def old_rcnn_lambda(steps: int):
    warm = max(1, steps // 20)
    return lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / max(1, steps))))


TOTALS = [*range(1, 130), 180, 216, 243, 600, 1000, 5000]


@pytest.mark.parametrize("fraction", [0.2, 0.1, 0.3])
def test_schedule_equals_the_classifier_one_cycle(fraction):
    schedule = Schedule("linear", warmup_fraction=fraction, warmup_start=0.1)
    for total in TOTALS:
        for step in range(total):
            assert schedule.factor(step, total) == old_one_cycle(step, total, fraction), (total, step)


@pytest.mark.parametrize("decay", ["cosine", "step"])
@pytest.mark.parametrize("warmup", [0, 1, 3, 10, 100])
def test_schedule_equals_the_detector_schedule(decay, warmup):
    schedule = Schedule(decay, warmup_fraction=0.2, max_warmup_steps=warmup, warmup_start=0.001)
    for total in TOTALS:
        for step in range(total + 1):
            assert schedule.factor(step, total) == old_detector_factor(step, total, warmup, decay), (total, step)


def test_schedule_equals_the_rcnn_schedule():
    schedule = Schedule("cosine", warmup="ramp", warmup_fraction=0.05)
    for total in TOTALS:
        old = old_rcnn_lambda(total)
        for step in range(total + 1):
            assert schedule.factor(step, total) == old(step), (total, step)


def test_trainer_learning_rates_equal_lambdalr_step_by_step():
    """The optimiser's lr at every step, through the engine and through the old LambdaLR, are the same floats."""
    total, base = 40, 2e-3
    old_opt = torch.optim.AdamW(nn.Linear(2, 1).parameters(), lr=base)
    sched = torch.optim.lr_scheduler.LambdaLR(old_opt, old_rcnn_lambda(total))
    old = []
    for _ in range(total):
        old.append(old_opt.param_groups[0]["lr"])
        old_opt.step()
        sched.step()
    model = nn.Linear(2, 1)
    trainer = Trainer(model, torch.optim.AdamW(model.parameters(), lr=base), Context(), steps=total,
                      schedule=Schedule("cosine", warmup="ramp", warmup_fraction=0.05), precision=None)
    new = []
    for _ in trainer.steps():
        new.append(trainer.lr)
        trainer.step(model(torch.ones(1, 2)).sum())
    assert new == old


def test_schedule_rejects_unknown_names():
    with pytest.raises(ValueError, match="decay='poly'"):
        Schedule("poly")
    with pytest.raises(ValueError, match="warmup='exp'"):
        Schedule(warmup="exp")
    assert Schedule("step", milestones=((Fraction(1, 2), 0.5),)).factor(5, 10) == 0.5
    assert Schedule("constant").factor(7, 10) == 1.0


# ---------------------------------------------------------------- float16 and loss scaling

#: the loss's factor: its gradient (1e-8 per output) is below float16's smallest subnormal (6e-8)
TINY = 1e-8


def _tiny_loss(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``TINY * sum(model(x))``: under float16 autocast the gradient reaching the linear layer is TINY, which
    float16 rounds to 0 unless the loss is scaled."""
    return model(x).float().sum() * TINY


def test_float16_gradient_underflows_without_scaling():
    torch.manual_seed(0)
    model, x = nn.Linear(8, 4), torch.rand(16, 8)
    with torch.autocast("cpu", dtype=torch.float16):
        loss = _tiny_loss(model, x)
    loss.backward()
    assert model.weight.grad is not None and not model.weight.grad.any()  # every gradient flushed to 0


def test_float16_step_with_the_loss_scaler_keeps_the_gradient():
    torch.manual_seed(0)
    model, x = nn.Linear(8, 4), torch.rand(16, 8)
    before = model.weight.detach().clone()
    lr = 1e6  # makes the update of a 1e-8 gradient visible
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=lr), Context(), steps=1,
                      schedule=Schedule("constant"), precision=torch.float16)
    assert trainer.scaler.is_enabled()
    for _ in trainer.steps():
        with trainer.autocast():
            loss = _tiny_loss(model, x)
        trainer.step(loss)
    # the float32 oracle: d(TINY * sum_n sum_o (W x_n + b)_o) / dW[o, i] = TINY * sum_n x[n, i]
    expected = before - lr * TINY * x.sum(0).expand(4, 8)
    torch.testing.assert_close(model.weight.detach(), expected, rtol=0, atol=lr * TINY * 16 * 2e-3)
    assert (model.weight.detach() != before).all()
    summary = trainer.summary()
    assert summary["amp"] == "float16" and summary["loss_scaling"]["skipped_steps"] == 0


def test_no_loss_scaling_for_bfloat16_or_float32():
    model = nn.Linear(2, 1)
    for precision in (torch.bfloat16, None):
        trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), Context(), steps=1,
                          precision=precision)
        assert not trainer.scaler.is_enabled() and "loss_scaling" not in trainer.summary()


def test_scaler_skips_overflowing_steps_then_recovers():
    """A float16 gradient that overflows at the starting scale (65536) is skipped and the scale halved until it
    fits; the parameters move only on the steps that were not skipped."""
    torch.manual_seed(0)
    model, x = nn.Linear(8, 4), torch.rand(16, 8)
    before = model.weight.detach().clone()
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=1e-9), Context(), steps=15,
                      schedule=Schedule("constant"), precision=torch.float16)
    for _ in trainer.steps():
        with trainer.autocast():
            loss = model(x).float().sum() * 100.0  # 100 * 65536 > float16's largest value (65504)
        trainer.step(loss)
    assert 1 <= trainer.skipped_steps < 15
    assert trainer.scaler.get_scale() <= 65504 / 100  # the scale that let the last steps through
    assert torch.isfinite(model.weight).all() and not torch.equal(model.weight.detach(), before)


# ---------------------------------------------------------------- divergence


def _trainer(model: nn.Module, steps: int = 10, **kwargs) -> Trainer:
    return Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), Context(), steps=steps, name="toy",
                   **kwargs)


def test_nan_loss_fails_naming_the_step_and_loss_and_leaves_the_weights_alone():
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    trainer = _trainer(model, precision=None)
    with pytest.raises(TrainingDivergedError) as info:
        for step in trainer.steps():
            x = torch.full((4, 3), float("nan")) if step == 2 else torch.ones(4, 3)
            trainer.step(model(x).pow(2).mean())
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("toy: training diverged at step 3 of 10: the loss is nan")
    assert isinstance(info.value, BenchsuiteError)
    assert torch.isfinite(model.weight).all() and trainer.steps_done == 2


def test_non_finite_gradients_fail_once_the_scaler_gives_up():
    """A finite loss (0) with a NaN gradient at every scale: the scaler skips, and after ``max_skipped_steps``
    steps in a row the job fails."""
    model = nn.Linear(3, 1)
    trainer = _trainer(model, precision=torch.float16, max_skipped_steps=3)
    with pytest.raises(TrainingDivergedError, match=r"at step 3 of 10: the loss is 0 but the gradients stayed "
                                                    r"non-finite for 3 steps"):
        for _ in trainer.steps():
            trainer.step(torch.sqrt((model.weight - model.weight.detach()).abs().sum()))


def test_non_finite_gradient_norm_without_a_scaler_fails_at_once():
    model = nn.Linear(3, 1)
    trainer = _trainer(model, precision=None, clip_grad=1.0)
    with pytest.raises(TrainingDivergedError, match=r"at step 1 of 10: the loss is 0 but the gradient norm is nan"):
        for _ in trainer.steps():
            trainer.step(torch.sqrt((model.weight - model.weight.detach()).abs().sum()))


@pytest.mark.slow
def test_a_diverging_pipeline_fails_its_job_with_one_line(tmp_path, cache_dir):
    from benchsuite.runner.run import RunConfig, run

    cfg = RunConfig(profile="smoke", tasks=["classification"], out=tmp_path / "run", cache_dir=cache_dir,
                    data_root=tmp_path / "no-data", pipelines=["cnn"], params={"cnn": {"lr": 1e30}})
    rec = run(cfg).records[0]
    assert rec["status"] == "failed"
    assert rec["error"].startswith("TrainingDivergedError: cnn: training diverged at step ")
    assert "the loss is" in rec["error"] and "\n" not in rec["error"]


# ---------------------------------------------------------------- the opt-in time budget


@pytest.mark.parametrize(("budget", "per_step", "planned", "granularity", "extra", "expected"), [
    (100.0, 0.1, 2000, 100, 0.0, 1000),  # ten epochs of 100 steps fit
    (100.0, 0.1, 800, 100, 0.0, 800),    # never more than planned
    (5.0, 0.1, 800, 100, 0.0, 100),      # at least one epoch, even over the budget
    (100.0, 0.1, 2000, 100, 50.0, 500),  # the time besides the steps is set aside
    (99.9, 0.1, 2000, 100, 0.0, 900),    # whole epochs only
    (99.9, 0.1, 2000, 1, 0.0, 999),      # or whole steps
])
def test_steps_within(budget, per_step, planned, granularity, extra, expected):
    assert steps_within(budget, per_step, planned, granularity, extra) == expected


def test_time_budget_comes_from_the_pipeline_else_the_user():
    ctx = Context(budget=Budget(profile="quick", train_time_s=60))
    assert time_budget(None, ctx) == (60.0, "--time-budget 60 s")
    assert time_budget(5.0, ctx) == (5.0, "max_train_s=5.0 s (time-boxed training)")
    assert time_budget(None, Context()) == (None, "")


def _fake_clock(monkeypatch: pytest.MonkeyPatch, seconds_per_call: float) -> None:
    """The engine's ``time.perf_counter`` advances by a fixed step per call: one call per optimiser step."""
    now = [0.0]

    def tick() -> float:
        now[0] += seconds_per_call
        return now[0]

    monkeypatch.setattr(training_time, "perf_counter", tick)


def test_budget_shortens_the_schedule_records_the_shortcut_and_still_anneals(monkeypatch):
    _fake_clock(monkeypatch, 1.0)  # one second a step
    ctx = Context(budget=Budget(profile="quick", train_time_s=30))
    model = nn.Linear(2, 1)
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.5), ctx, steps=100, name="toy",
                      schedule=Schedule("cosine", warmup_fraction=0.1), timing_steps=4)
    lrs = []
    for _ in trainer.steps():
        lrs.append(trainer.lr)
        trainer.step(model(torch.ones(1, 2)).sum())
    assert trainer.seconds_per_step == pytest.approx(1.0)
    assert trainer.steps_done == trainer.total_steps == 30 and trainer.shortened
    assert ctx.info["shortcuts"] == [{"what": "train_steps", "asked": 100, "done": 30, "reason": "--time-budget 30 s"}]
    assert lrs[-1] == pytest.approx(0.5 * Schedule("cosine", warmup_fraction=0.1).factor(29, 30))
    assert lrs[-1] < 0.01
    assert trainer.summary()["schedule_shortened"] is True


def test_budget_in_whole_epochs_finishes_the_epoch_under_way(monkeypatch):
    _fake_clock(monkeypatch, 1.0)
    ctx = Context()
    model = nn.Linear(2, 1)
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.5), ctx, steps=40, steps_per_epoch=8,
                      whole_epochs=True, max_train_s=3.0, timing_steps=4)  # decides after step 7 of epoch 1
    for _epoch in trainer.epochs():
        for _ in trainer.epoch_steps():
            trainer.step(model(torch.ones(1, 2)).sum())
    assert trainer.steps_done == 8 and trainer.epochs_total == 1
    assert ctx.info["shortcuts"][0]["what"] == "epochs" and ctx.info["shortcuts"][0]["done"] == 1


def test_without_a_budget_the_planned_steps_are_the_work(monkeypatch):
    _fake_clock(monkeypatch, 100.0)  # a very slow machine changes nothing
    ctx = Context()
    model = nn.Linear(2, 1)
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.5), ctx, steps=30, timing_steps=4)
    trainer.fit(iter([torch.ones(1, 2)] * 30), lambda x: model(x).sum())
    assert trainer.steps_done == 30 and not trainer.shortened and "shortcuts" not in ctx.info


def test_fit_says_when_the_batches_run_out():
    model = nn.Linear(2, 1)
    trainer = _trainer(model, steps=5)
    with pytest.raises(ValueError, match="toy: the batches ran out at step 3 of 5"):
        trainer.fit([torch.ones(1, 2)] * 2, lambda x: model(x).sum())
