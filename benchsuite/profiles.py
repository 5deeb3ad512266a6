"""Run profiles: how much data and compute each job gets.

``smoke``
    synthetic data only, a few hundred images, tiny budgets: every pipeline end to end in minutes.
    What the integration tests run.
``quick``
    the default: real data when present, the full test sets, the pipelines' quick sizes: each task in about
    half an hour on 2 CPU cores.
``full``
    full training schedules; a GPU is recommended for the deep pipelines.

A profile sets what holds for every job (synthetic data or not, the latency settings, the job's time limit, a
safety net); what a job of a task may use (image caps, an epochs hint) is the task's own
(:attr:`benchsuite.tasks.base.Task.budgets`), and the constructor parameters that size a pipeline are the pipeline
class's (``profile_params``, see :func:`pipeline_params`). The built-in tasks and pipelines declare theirs the same
way a plugin does, so this module names no task and no pipeline. Pipelines read the result from ``ctx.budget``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from benchsuite.api import Budget
from benchsuite.errors import ConfigError
from benchsuite.tasks.registry import get_task


@dataclass(frozen=True)
class Profile:
    """One profile. ``time_limit_s`` is a job's time limit unless its task's budget sets another; it is a safety
    net against a runaway job, generous enough for a busy machine: the work is fixed by the pipelines' parameters,
    never by the clock."""

    name: str
    description: str
    synthetic_only: bool
    time_limit_s: float
    latency_images: int = 50  # single-image calls timed for the latency percentiles
    latency_warmup: int = 3

    def budget(self, task: str) -> Budget:
        """The budget of a job of ``task`` (a registered task's name) in this profile."""
        return get_task(task).budget(self.name, self.time_limit_s)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        description="synthetic data, a few hundred images, tiny budgets (minutes for everything)",
        synthetic_only=True,
        time_limit_s=300,
        latency_images=10,
        latency_warmup=2,
    ),
    "quick": Profile(
        name="quick",
        description="real data when present, full test sets, about 30 minutes per task on 2 CPU cores",
        synthetic_only=False,
        time_limit_s=7200,
        # 25 single-image calls: selective search takes over a second an image, and the latency percentiles
        # of every detection and proposal job are part of the 30-minute task
        latency_images=25,
        latency_warmup=3,
    ),
    "full": Profile(
        name="full",
        description="full training schedules (GPU recommended for the deep pipelines)",
        synthetic_only=False,
        time_limit_s=24 * 3600,
        latency_images=100,
        latency_warmup=5,
    ),
}


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
