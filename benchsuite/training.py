"""The deep training engine: one optimiser-step loop for every torch model the suite trains.

The built-in classifiers (``cnn``, ``cnn-fusion``), the torchvision-style detectors (and the fusion study's)
and ``rcnn`` train through it, and a plugin may too. The loop around it stays the caller's (how batches are
drawn, what the loss is, when to validate); the engine owns what must be the same everywhere:

- **the learning-rate schedule** (:class:`Schedule`): a warm-up, then cosine, linear, step or constant decay,
  one multiplier per optimiser step, applied to each parameter group's starting learning rate;
- **mixed precision**: the autocast dtype is chosen once per device (:func:`amp_dtype`), and wherever it is
  float16 the loss is scaled (``torch.amp.GradScaler``) so that small gradients do not underflow; bfloat16
  and float32 need no scaling and get none;
- **the divergence check**: a non-finite loss, a non-finite gradient norm without a scaler, or a scaler that
  keeps skipping steps fails the job with one line naming the step and the loss
  (:class:`benchsuite.errors.TrainingDivergedError`), so no record is ever "ok" after training on NaN;
- **the opt-in time budget** (``max_train_s`` or ``--time-budget``, :attr:`benchsuite.api.Budget.train_time_s`):
  the first steps are timed, the schedule is laid over the steps that fit (still annealed), and the shortcut
  is recorded with :meth:`benchsuite.api.Context.shortcut`; without it the planned steps are the work;
- **progress**: ``ctx.progress`` over the steps and a log line at least every 30 seconds;
- gradient clipping, channels-last inputs and the usual parameter groups (:func:`param_groups`);
- **the effective receptive field** (:mod:`benchsuite.erf`): given a probe (``erf=ErfProbe(layer, images)``), or
  when the pipeline declares ``erf_layer`` (``ctx.erf``), the ERF of that layer is measured before the first step
  and after the last, saved to the job folder and recorded (``fit_info["erf"]``).

Importing this module imports torch: the framework never imports it on a classical job's path.

Usage (a model, an optimiser, batches and a loss)::

    model = Net().to(prepare_device(ctx.device))
    opt = torch.optim.SGD(param_groups(model, 5e-4), lr=0.1, momentum=0.9)
    trainer = Trainer(model, opt, ctx, steps=1000, name="my-net",
                      schedule=Schedule(decay="cosine", warmup_fraction=0.05), clip_grad=10.0)
    model.train()
    for step in trainer.steps():
        x, y = next(batches)
        with trainer.autocast():
            loss = F.cross_entropy(model(trainer.to_device(x)), trainer.to_device(y))
        trainer.step(loss)
    ctx.record(**trainer.summary())

or, when every step is "one batch, one loss", ``trainer.fit(batches, lambda b: loss_of(model, b))``.
Gradient accumulation: call :meth:`Trainer.backward` once per micro-batch, then :meth:`Trainer.step` with no
loss.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import torch
from torch import nn

from benchsuite.api import Context
from benchsuite.erf import ErfProbe
from benchsuite.errors import TrainingDivergedError

log = logging.getLogger(__name__)

#: steps left out of the timing of the opt-in time budget (first-call allocations, kernel selection)
TIMING_SKIP_STEPS = 3
DECAYS = ("cosine", "linear", "step", "constant")
WARMUPS = ("linear", "ramp")


# ------------------------------------------------------------------------------------------ device and precision


def amp_dtype(device: str) -> torch.dtype | None:
    """The autocast dtype for ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:1"``), or None for plain float32.

    CUDA: bfloat16 where the GPU supports it, else float16 (which :class:`Trainer` trains with loss scaling).
    CPU: bfloat16 only where oneDNN has native bf16 kernels (AVX-512 BF16 or AMX); elsewhere bf16 is emulated
    and slower than float32, so None.
    """
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    try:
        native = torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    except (AttributeError, RuntimeError):
        native = False
    return torch.bfloat16 if native else None


def device_type(device: str) -> str:
    """``"cuda"`` for any CUDA device string, else ``"cpu"`` (the ``device_type`` of autocast and GradScaler)."""
    return "cuda" if device.startswith("cuda") else "cpu"


@contextlib.contextmanager
def autocast(device: str, dtype: torch.dtype | None) -> Iterator[None]:
    """``torch.autocast`` to ``dtype`` on ``device``'s type; nothing when ``dtype`` is None (float32)."""
    if dtype is None:
        yield
        return
    with torch.autocast(device_type=device_type(device), dtype=dtype):
        yield


def dtype_name(dtype: torch.dtype | None) -> str | None:
    """``"bfloat16"``, ``"float16"`` ... for the record; None for float32 training."""
    return str(dtype).replace("torch.", "") if dtype is not None else None


def prepare_device(device: str) -> torch.device:
    """A torch device, with cuDNN autotuning switched on for CUDA."""
    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
    return torch.device(device)


def to_device(x: torch.Tensor, device: torch.device | str, channels_last: bool = False) -> torch.Tensor:
    """``x`` on ``device`` (non-blocking from pinned memory); a 4-D ``(N, C, H, W)`` batch in channels-last
    memory order when asked (the layout the convolutions of a channels-last model run fastest in)."""
    x = x.to(device, non_blocking=True)
    if channels_last and x.ndim == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Optimiser parameter groups: weight decay on weight matrices and kernels (``ndim > 1``), none on biases
    and normalisation parameters; frozen parameters (``requires_grad=False``) are left out."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


# ------------------------------------------------------------------------------------------ schedule


@dataclass(frozen=True)
class Schedule:
    """The learning-rate multiplier of each optimiser step: a warm-up, then a decay.

    The optimiser's learning rate at step ``s`` (0-based) of ``total`` is each parameter group's starting
    ``lr`` times :meth:`factor`. The warm-up lasts ``W`` steps: ``max(1, int(total * warmup_fraction))`` when
    ``warmup_fraction > 0`` (else 0), at most ``max_warmup_steps`` (None: no cap). Two warm-up shapes:

    ``warmup="linear"``
        for ``s < W`` the multiplier rises linearly from ``warmup_start`` (at ``s = 0``) towards 1:
        ``warmup_start + (1 - warmup_start) * s / W``; from ``W`` on the decay runs over steps ``W..total``.
    ``warmup="ramp"``
        the decay runs over the whole schedule from step 0 and is multiplied by ``min(1, (s + 1) / W)``.

    Decays, with ``s0`` the step the decay starts from (``W`` or 0) and ``n = max(1, total - s0)``:
    ``"cosine"`` ``0.5 (1 + cos(pi min(1, (s - s0) / n)))`` (1 to 0); ``"linear"`` ``max(0, (total - s) / n)``
    (1 to 0); ``"step"`` the factor of the last milestone reached, a milestone being ``(fraction, factor)`` with
    ``s >= fraction * total`` (exact fractions, 1 before the first); ``"constant"`` 1.

    These express the suite's schedules: the classifiers' one-cycle is ``Schedule("linear",
    warmup_fraction=0.2, warmup_start=0.1)``, the detectors' ``Schedule("cosine", warmup_fraction=0.2,
    max_warmup_steps=warmup, warmup_start=0.001)``, R-CNN's ``Schedule("cosine", warmup="ramp",
    warmup_fraction=0.05)``.
    """

    decay: str = "cosine"
    warmup: str = "linear"
    warmup_fraction: float = 0.0
    max_warmup_steps: int | None = None
    warmup_start: float = 0.0
    milestones: tuple[tuple[Fraction, float], ...] = ((Fraction(2, 3), 0.1), (Fraction(8, 9), 0.01))

    def __post_init__(self) -> None:
        if self.decay not in DECAYS:
            raise ValueError(f"decay={self.decay!r}; expected one of {DECAYS}")
        if self.warmup not in WARMUPS:
            raise ValueError(f"warmup={self.warmup!r}; expected one of {WARMUPS}")
        if not 0.0 <= self.warmup_fraction <= 1.0:
            raise ValueError(f"warmup_fraction={self.warmup_fraction}; expected a share of the steps in [0, 1]")
        if self.max_warmup_steps is not None and self.max_warmup_steps < 0:
            raise ValueError(f"max_warmup_steps={self.max_warmup_steps}; expected >= 0 or None")

    def warmup_steps(self, total: int) -> int:
        """``W``, the warm-up's length in steps for a schedule of ``total`` steps."""
        w = max(1, int(total * self.warmup_fraction)) if self.warmup_fraction > 0 else 0
        return w if self.max_warmup_steps is None else min(int(self.max_warmup_steps), w)

    def factor(self, step: int, total: int) -> float:
        """The learning-rate multiplier of optimiser step ``step`` (0-based) of ``total``."""
        w = self.warmup_steps(total)
        if self.warmup == "linear":
            if step < w:
                return self.warmup_start + (1 - self.warmup_start) * step / w
            return self._decay(step, total, w)
        ramp = min(1.0, (step + 1) / w) if w > 0 else 1.0
        return ramp * self._decay(step, total, 0)

    def _decay(self, step: int, total: int, start: int) -> float:
        if self.decay == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - start) / max(1, total - start))))
        if self.decay == "linear":
            return max(0.0, (total - step) / max(1, total - start))
        if self.decay == "step":
            reached = [factor for fraction, factor in sorted(self.milestones) if step >= Fraction(fraction) * total]
            return reached[-1] if reached else 1.0
        return 1.0


# ------------------------------------------------------------------------------------------ time budget


def time_budget(max_train_s: float | None, ctx: Context) -> tuple[float | None, str]:
    """``(seconds, reason)`` of the opt-in training time budget: a pipeline's ``max_train_s``, else the user's
    ``--time-budget`` (``ctx.budget.train_time_s``), else ``(None, "")``: train the planned steps."""
    if max_train_s is not None:
        return float(max_train_s), f"max_train_s={max_train_s} s (time-boxed training)"
    if ctx.budget.train_time_s is not None:
        return float(ctx.budget.train_time_s), f"--time-budget {ctx.budget.train_time_s:g} s"
    return None, ""


def steps_within(budget_s: float, seconds_per_step: float, planned: int, granularity: int = 1,
                 extra_s: float = 0.0) -> int:
    """The most steps that fit ``budget_s`` seconds at ``seconds_per_step``, after ``extra_s`` seconds of work
    outside the steps (validation) are set aside: a multiple of ``granularity`` (steps per epoch when whole
    epochs are trained), at least ``granularity`` (or ``planned`` when fewer), at most ``planned``."""
    g = max(1, int(granularity))
    if seconds_per_step <= 0:
        return planned
    fit = int(max(0.0, budget_s - extra_s) / seconds_per_step) // g * g
    return min(planned, max(g, fit))


# ------------------------------------------------------------------------------------------ the engine


class Trainer:
    """Optimiser steps with the suite's schedule, mixed precision, divergence check, time budget and progress.

    Args:
        model: the network being trained (its parameters are the optimiser's); already on the device.
        optimizer: any ``torch.optim`` optimiser; each parameter group's ``lr`` at construction is its
            starting learning rate, which the schedule multiplies.
        ctx: the job's context (device, progress, budget, ``record``/``shortcut``).
        steps: optimiser steps planned (the work; only the opt-in time budget may lower it).
        schedule: the learning-rate multiplier per step (default: cosine from step 0, no warm-up).
        name: the pipeline's id, the first word of log lines and errors.
        precision: ``"auto"`` (:func:`amp_dtype` of ``ctx.device``), None (float32) or a dtype
            (``torch.float16`` forces float16 autocast with loss scaling, also on the CPU).
        clip_grad: the largest gradient L2 norm over all parameters (None or 0: no clipping).
        channels_last: :meth:`to_device` hands 4-D batches over in channels-last memory order.
        steps_per_epoch: steps of one pass over the data, for :meth:`epochs` and epoch-rounded budgets.
        whole_epochs: the time budget shortens to whole epochs (needs ``steps_per_epoch``).
        max_train_s: the pipeline's own opt-in time budget in seconds (None: ``--time-budget``, if given).
        extra_s: seconds of work the loop does besides the steps (validation passes), as a function of the
            measured seconds per step; the time budget sets them aside.
        timing_steps: steps timed (after :data:`TIMING_SKIP_STEPS`) before the time budget decides.
        max_skipped_steps: with loss scaling, that many skipped steps in a row (non-finite gradients at every
            scale tried) fail the job.
        log_every_s: seconds between progress log lines.
        erf: an ERF probe measured on ``model`` now (initialisation) and once the last step is done
            (:class:`benchsuite.erf.ErfProbe`); None: the one the pipeline's ``erf_layer`` asks for (``ctx.erf``),
            if any.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, ctx: Context, *, steps: int,
                 schedule: Schedule | None = None, name: str = "train", precision: str | torch.dtype | None = "auto",
                 clip_grad: float | None = None, channels_last: bool = False, steps_per_epoch: int | None = None,
                 whole_epochs: bool = False, max_train_s: float | None = None,
                 extra_s: Callable[[float], float] | None = None, timing_steps: int = 10,
                 max_skipped_steps: int = 25, log_every_s: float = 30.0, erf: ErfProbe | None = None):
        if int(steps) < 1:
            raise ValueError(f"{name}: steps={steps}; expected at least one optimiser step")
        if whole_epochs and not steps_per_epoch:
            raise ValueError(f"{name}: whole_epochs needs steps_per_epoch")
        self.model = model
        self.optimizer = optimizer
        self.ctx = ctx
        self.schedule = schedule if schedule is not None else Schedule()
        self.name = name
        self.device = torch.device(ctx.device)
        self.dtype: torch.dtype | None = amp_dtype(ctx.device) if precision == "auto" else precision  # type: ignore[assignment]
        self.scaler = torch.amp.GradScaler(device_type(ctx.device), enabled=self.dtype == torch.float16)
        self.clip_grad = float(clip_grad) if clip_grad else None
        self.channels_last = channels_last
        self.steps_per_epoch = int(steps_per_epoch) if steps_per_epoch else None
        self.granularity = self.steps_per_epoch if whole_epochs else 1
        self.budget_s, self.budget_reason = time_budget(max_train_s, ctx)
        self.extra_s = extra_s
        self.timing_steps = max(1, int(timing_steps))
        self.max_skipped_steps = int(max_skipped_steps)
        self.log_every_s = float(log_every_s)

        self.planned_steps = int(steps)
        self.total_steps = int(steps)
        self.steps_done = 0
        self.losses: list[float] = []
        self.seconds_per_step: float | None = None
        self.skipped_steps = 0
        self._skipped_in_a_row = 0
        self._pending: float | None = None
        self._base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.erf = erf if erf is not None else ErfProbe.from_request(getattr(ctx, "erf", None), network=name)
        if self.erf is not None:
            self.erf.network = self.erf.network or name
            if not self.erf.try_measure(model, "init"):
                self.erf.finish(ctx)
                self.erf = None
        self._start = time.perf_counter()
        self._timed_from: float | None = None
        self._last_log = self._start
        self._bar_object = ctx.progress(range(self.total_steps), desc=f"{name} train", total=self.total_steps)
        self._bar = iter(self._bar_object)

    # ---------------------------------------------------------------- loop structure
    @property
    def finished(self) -> bool:
        """True once the (possibly shortened) schedule's steps are done."""
        return self.steps_done >= self.total_steps

    @property
    def shortened(self) -> bool:
        return self.total_steps < self.planned_steps

    @property
    def lr(self) -> float:
        """The first parameter group's current learning rate."""
        return float(self.optimizer.param_groups[0]["lr"])

    def steps(self, until: int | None = None) -> Iterator[int]:
        """Optimiser step indices (0-based) until the schedule ends (or step ``until``, exclusive).

        Before each index is handed out the schedule's learning rate is set and the gradients are cleared;
        the loop body must end the step with :meth:`step`.
        """
        while self.steps_done < (self.total_steps if until is None else min(self.total_steps, until)):
            step = self.steps_done
            factor = self.schedule.factor(step, self.total_steps)
            for group, base in zip(self.optimizer.param_groups, self._base_lrs):
                group["lr"] = base * factor
            self.optimizer.zero_grad(set_to_none=True)
            self._pending = None
            yield step
            if self.steps_done == step:
                raise RuntimeError(f"{self.name}: step {step} ended without Trainer.step()")
        if self.finished:
            self._close_bar()

    def epochs(self) -> Iterator[int]:
        """Epoch indices (0-based) while steps remain; iterate :meth:`epoch_steps` inside each."""
        if not self.steps_per_epoch:
            raise ValueError(f"{self.name}: epochs() needs steps_per_epoch")
        while not self.finished:
            before = self.steps_done
            yield before // self.steps_per_epoch
            if self.steps_done == before:
                raise RuntimeError(f"{self.name}: an epoch ended without a step")

    def epoch_steps(self) -> Iterator[int]:
        """The steps of the current epoch (see :meth:`steps`)."""
        spe = int(self.steps_per_epoch or self.total_steps)
        return self.steps(until=(self.steps_done // spe + 1) * spe)

    @property
    def epochs_total(self) -> int:
        """Epochs of the (possibly shortened) schedule."""
        return -(-self.total_steps // int(self.steps_per_epoch or self.planned_steps))

    # ---------------------------------------------------------------- one step
    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """Autocast to the trainer's dtype (nothing for float32): wrap the forward pass and the loss."""
        with autocast(str(self.device), self.dtype):
            yield

    def to_device(self, x: torch.Tensor) -> torch.Tensor:
        """A batch tensor on the training device (4-D in channels-last order when the trainer says so)."""
        return to_device(x, self.device, self.channels_last)

    def backward(self, loss: torch.Tensor) -> float:
        """Back-propagate ``loss`` (a scalar; scaled first when training in float16) and add its value to the
        step's loss; returns that value. Call once per micro-batch for gradient accumulation."""
        value = float(loss.detach())
        self._pending = value if self._pending is None else self._pending + value
        self.scaler.scale(loss).backward()
        return value

    def step(self, loss: torch.Tensor | None = None) -> float:
        """End the optimiser step: back-propagate ``loss`` (unless :meth:`backward` already did), check that the
        loss is finite, unscale and clip the gradients, update the parameters (a float16 scaler skips a step
        whose gradients overflowed and lowers its scale), then the bookkeeping: loss history, progress, the time
        budget. Returns the step's loss (the sum over its micro-batches).

        Raises:
            TrainingDivergedError: the loss is not finite, or the gradient norm is not finite without loss
                scaling, or the scaler skipped ``max_skipped_steps`` steps in a row.
        """
        if loss is not None:
            self.backward(loss)
        if self._pending is None:
            raise RuntimeError(f"{self.name}: Trainer.step() without a loss (pass one, or call backward first)")
        value, self._pending = self._pending, None
        if not math.isfinite(value):
            self._diverged(f"the loss is {value}")
        if self.clip_grad is not None:
            self.scaler.unscale_(self.optimizer)
            norm = float(nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_grad))
            if not math.isfinite(norm) and not self.scaler.is_enabled():
                self._diverged(f"the loss is {value:.6g} but the gradient norm is {norm}")
        if self.scaler.is_enabled():
            scale = self.scaler.get_scale()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if self.scaler.get_scale() < scale:  # non-finite gradients: the scaler skipped this step
                self.skipped_steps += 1
                self._skipped_in_a_row += 1
                if self._skipped_in_a_row >= self.max_skipped_steps:
                    self._diverged(f"the loss is {value:.6g} but the gradients stayed non-finite for "
                                   f"{self._skipped_in_a_row} steps in a row (loss scale down to "
                                   f"{self.scaler.get_scale():g})")
            else:
                self._skipped_in_a_row = 0
        else:
            self.optimizer.step()
        self.losses.append(value)
        self.steps_done += 1
        next(self._bar, None)
        self._after_step()
        if self.finished and self.erf is not None and "trained" not in self.erf.maps:
            self.erf.try_measure(self.model, "trained")
            self.erf.finish(self.ctx)
        return value

    def fit(self, batches: Iterable[Any], loss_fn: Callable[[Any], torch.Tensor]) -> list[float]:
        """The plain loop: one batch of ``batches`` per step, ``loss_fn(batch)`` computed under autocast, until
        the schedule ends. Returns the loss of every step."""
        it = iter(batches)
        for step in self.steps():
            try:
                batch = next(it)
            except StopIteration:
                raise ValueError(f"{self.name}: the batches ran out at step {step + 1} of {self.total_steps}") \
                    from None
            with self.autocast():
                loss = loss_fn(batch)
            self.step(loss)
        return self.losses

    # ---------------------------------------------------------------- bookkeeping
    def _diverged(self, what: str) -> None:
        raise TrainingDivergedError(
            f"{self.name}: training diverged at step {self.steps_done + 1} of {self.total_steps}: {what} "
            f"(lr {self.lr:.3g}, {dtype_name(self.dtype) or 'float32'}); lower the learning rate or clip gradients")

    def _after_step(self) -> None:
        now = time.perf_counter()
        if now - self._last_log >= self.log_every_s:
            self._last_log = now
            log.info("%s: step %d/%d, loss %.4f, lr %.3g, %.2f s/step", self.name, self.steps_done,
                     self.total_steps, self.losses[-1], self.lr, (now - self._start) / self.steps_done)
        if self.budget_s is None:
            return
        if self.steps_done == TIMING_SKIP_STEPS:
            self._timed_from = now
        if self._timed_from is not None and self.steps_done == TIMING_SKIP_STEPS + self.timing_steps:
            self.seconds_per_step = (now - self._timed_from) / self.timing_steps
            self._fit_budget(self.seconds_per_step)

    def _fit_budget(self, per_step: float) -> None:
        """Lay the schedule over the steps that fit the time budget (never fewer than the steps begun)."""
        extra = float(self.extra_s(per_step)) if self.extra_s is not None else 0.0
        fit = steps_within(float(self.budget_s), per_step, self.total_steps, self.granularity, extra)
        g = self.granularity
        fit = max(fit, -(-self.steps_done // g) * g)  # the epoch under way is finished
        if fit >= self.total_steps:
            return
        log.warning("%s: %d steps would take %.0f s (%.0f s besides), over the %.0f s training budget: training %d",
                    self.name, self.total_steps, self.total_steps * per_step, extra, self.budget_s, fit)
        if g > 1:
            self.ctx.shortcut("epochs", self.total_steps // g, fit // g, self.budget_reason)
        else:
            self.ctx.shortcut("train_steps", self.total_steps, fit, self.budget_reason)
        self.total_steps = fit
        if hasattr(self._bar_object, "total"):
            with contextlib.suppress(Exception):
                self._bar_object.total = fit

    def _close_bar(self) -> None:
        close = getattr(self._bar_object, "close", None)
        if callable(close):
            close()

    @property
    def seconds(self) -> float:
        """Wall seconds since the trainer was made."""
        return time.perf_counter() - self._start

    def summary(self) -> dict[str, Any]:
        """Facts for the record: steps planned and done, whether the schedule was shortened, training seconds,
        the autocast dtype, and (float16 only) the loss scaler's skipped steps and final scale."""
        out: dict[str, Any] = {"train_steps": self.steps_done, "train_steps_planned": self.planned_steps,
                               "schedule_shortened": self.shortened, "train_s": round(self.seconds, 2),
                               "amp": dtype_name(self.dtype)}
        if self.scaler.is_enabled():
            out["loss_scaling"] = {"skipped_steps": self.skipped_steps, "final_scale": self.scaler.get_scale()}
        return out
