"""Run profiles: how much data and compute each job gets.

``smoke``
    synthetic data only, a few hundred images, tiny budgets: every pipeline end to end in minutes.
    What the integration tests run.
``quick``
    the default: real data when present, the full test sets, budgets sized so each task finishes in
    about a quarter of an hour on 2 CPU cores.
``full``
    full training schedules; a GPU is recommended for the deep pipelines.

A profile sets a :class:`TaskBudget` per task (image caps, an epochs hint, the job's time limit) and the
latency settings; pipelines read it from ``ctx.budget``. The constructor parameters that size a pipeline in
a profile belong to the pipeline class (``profile_params``, see :func:`pipeline_params`): the built-in
pipelines declare theirs the same way a plugin does, so this module names no pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from benchsuite.api import Budget
from benchsuite.errors import ConfigError


@dataclass(frozen=True)
class TaskBudget:
    max_train_images: int | None = None
    max_val_images: int | None = None
    max_test_images: int | None = None
    epochs: int | None = None
    time_limit_s: float = 3600.0


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    synthetic_only: bool
    budgets: dict[str, TaskBudget]
    latency_images: int = 50  # single-image calls timed for the latency percentiles
    latency_warmup: int = 3

    def budget(self, task: str) -> Budget:
        b = self.budgets.get(task, TaskBudget())
        return Budget(profile=self.name, epochs=b.epochs, max_train_images=b.max_train_images,
                      max_val_images=b.max_val_images, max_test_images=b.max_test_images,
                      time_limit_s=b.time_limit_s)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        description="synthetic data, a few hundred images, tiny budgets (minutes for everything)",
        synthetic_only=True,
        budgets={
            "classification": TaskBudget(600, 200, 300, epochs=2, time_limit_s=300),
            "detection": TaskBudget(24, 8, 16, epochs=1, time_limit_s=420),
            "proposals": TaskBudget(24, 8, 16, epochs=1, time_limit_s=300),
        },
        latency_images=10,
        latency_warmup=2,
    ),
    "quick": Profile(
        name="quick",
        description="real data when present, full test sets, about 15 minutes per task on 2 CPU cores",
        synthetic_only=False,
        budgets={
            # the time limit is a safety net against a runaway job, generous enough for a busy machine: the
            # work is fixed by the pipelines' parameters, never by the clock
            "classification": TaskBudget(epochs=None, time_limit_s=7200),
            "detection": TaskBudget(epochs=None, time_limit_s=7200),
            "proposals": TaskBudget(epochs=None, time_limit_s=7200),
        },
        # 25 single-image calls: selective search takes over a second an image, and the latency percentiles
        # of every detection and proposal job are part of the 30-minute task
        latency_images=25,
        latency_warmup=3,
    ),
    "full": Profile(
        name="full",
        description="full training schedules (GPU recommended for the deep pipelines)",
        synthetic_only=False,
        budgets={
            "classification": TaskBudget(time_limit_s=24 * 3600),
            "detection": TaskBudget(time_limit_s=24 * 3600),
            "proposals": TaskBudget(time_limit_s=24 * 3600),
        },
        latency_images=100,
        latency_warmup=5,
    ),
}


def split_cap(budget: Budget, split: str) -> int | None:
    """The profile's cap on the number of images of ``split`` (None: the whole split)."""
    return {
        "train": budget.max_train_images,
        "val": budget.max_val_images,
        "test": budget.max_test_images,
    }.get(split)


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError(f"unknown profile {name!r}; expected one of: {', '.join(PROFILES)}") from None


def pipeline_params(cls: type, profile: str) -> dict[str, Any]:
    """The constructor parameters that size pipeline class ``cls`` in ``profile`` (a copy): the class's own
    ``profile_params[profile]`` (see :class:`benchsuite.api.Pipeline`). A user's ``--param`` wins over them."""
    declared = getattr(cls, "profile_params", None) or {}
    own = declared.get(profile, {}) if isinstance(declared, dict) else {}
    return dict(own) if isinstance(own, dict) else {}
