"""What a run is asked to do (:class:`RunConfig`, the command line's options) and the checks of its values
that need nothing but the values themselves."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchsuite.errors import ConfigError
from benchsuite.runner.execute import MEMORY_FLOOR_MB
from benchsuite.studies.axes import StudyPlan

#: the executors a run may use: worker processes on this machine, or tasks on a Ray cluster
EXECUTORS = ("local", "ray")
#: the splits a run may evaluate
EVAL_SPLITS = ("val", "test")


def default_cache_dir() -> Path:
    """``$BENCHSUITE_CACHE``, else ``$XDG_CACHE_HOME/benchsuite``, else ``~/.cache/benchsuite``."""
    env = os.environ.get("BENCHSUITE_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "benchsuite"


@dataclass
class RunConfig:
    """Everything a run is asked to do (the command line's options)."""

    profile: str = "quick"
    tasks: list[str] | None = None
    datasets: list[str] | None = None
    pipelines: list[str] | None = None
    exclude: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=lambda: [0])
    device: str = "auto"
    jobs: int = 1
    #: --threads-per-job: each job's threads (None: the machine's cores over --jobs). The float arithmetic of
    #: torch and of the SVM solver splits its sums by thread, so records are identical between runs with the same
    #: threads per job; fix it to compare runs made with different --jobs
    threads_per_job: int | None = None
    out: Path | None = None
    results_root: Path = Path("results")
    run_id: str | None = None
    resume: bool = False
    retry_failed: bool = False
    allow_changed: bool = False  # --allow-changed: resume although the configuration differs (recorded)
    data_root: Path = Path("data")
    data_root_explicit: bool = False
    cache_dir: Path = field(default_factory=default_cache_dir)
    download: bool = False
    eval_splits: list[str] = field(default_factory=lambda: ["test"])
    time_limit_s: float | None = None
    memory_limit_mb: float | None = None
    time_budget_s: float | None = None  # opt-in time-boxed training (--time-budget); None: the profile's fixed work
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    weights: str | None = None
    write_report: bool = True
    argv: list[str] = field(default_factory=list)
    executor: str = "local"  # "local" (worker processes on this machine) or "ray" (tasks on a Ray cluster)
    ray_address: str | None = None  # --ray-address; None: $RAY_ADDRESS, else a local Ray started for the run
    study: StudyPlan | None = None  # `benchsuite study AXIS`: the sweep (benchsuite.studies); None: an ordinary run


def check_choices(values: list[str], allowed: tuple[str, ...], what: str) -> None:
    """Refuse a value of ``values`` that is not one of ``allowed`` (``what`` names the option)."""
    for v in values:
        if v not in allowed:
            raise ConfigError(f"unknown {what} {v!r}; expected one of: {', '.join(allowed)}")


def check_options(cfg: RunConfig) -> None:
    """Zero, negative and non-finite option values, unknown executors and splits fail the run before anything
    starts."""
    if not isinstance(cfg.jobs, int) or cfg.jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {cfg.jobs}")
    if cfg.threads_per_job is not None and (not isinstance(cfg.threads_per_job, int) or cfg.threads_per_job < 1):
        raise ConfigError(f"--threads-per-job must be at least 1, got {cfg.threads_per_job}")
    check_choices([cfg.executor], EXECUTORS, "executor")
    if cfg.ray_address is not None and (cfg.executor != "ray" or not str(cfg.ray_address).strip()):
        raise ConfigError(f"--ray-address {cfg.ray_address!r} needs --executor ray and a non-empty address "
                          f"(host:port, or auto for the cluster this machine belongs to)")
    if not cfg.seeds:
        raise ConfigError("--seeds lists no seed; expected non-negative integers such as 0,1,2")
    if len(set(cfg.seeds)) != len(cfg.seeds) or any(not isinstance(s, int) or s < 0 for s in cfg.seeds):
        raise ConfigError(f"--seeds must be distinct non-negative integers, got {cfg.seeds}")
    for name, values in (("--tasks", cfg.tasks), ("--datasets", cfg.datasets), ("--pipelines", cfg.pipelines),
                         ("--splits", cfg.eval_splits)):
        if values is not None and (not values or not all(isinstance(v, str) and v.strip() for v in values)):
            raise ConfigError(f"{name} must list at least one non-empty name, got {values!r}")
    check_choices(cfg.eval_splits, EVAL_SPLITS, "evaluation split")
    if cfg.time_limit_s is not None and not (math.isfinite(cfg.time_limit_s) and cfg.time_limit_s > 0):
        raise ConfigError(f"--time-limit must be a finite number of seconds above 0, got {cfg.time_limit_s}")
    if cfg.memory_limit_mb is not None and not (math.isfinite(cfg.memory_limit_mb)
                                                and cfg.memory_limit_mb >= MEMORY_FLOOR_MB):
        raise ConfigError(f"--memory-limit-mb must be at least {MEMORY_FLOOR_MB:.0f} MB (a small classical "
                          f"job's worker peaks at about 180 MB), got {cfg.memory_limit_mb}")
    if cfg.allow_changed and not cfg.resume:
        raise ConfigError("--allow-changed continues a run whose configuration changed; it needs --resume")
    if cfg.memory_limit_mb is None and cfg.executor == "local":
        share = default_memory_limit_mb(cfg.jobs)
        if share < MEMORY_FLOOR_MB:
            most = max(1, int(default_memory_limit_mb(1) // MEMORY_FLOOR_MB))
            raise ConfigError(f"--jobs {cfg.jobs} leaves each job {share:.0f} MB (90% of this machine's memory over "
                              f"--jobs), under the {MEMORY_FLOOR_MB:.0f} MB a worker needs; use at most --jobs {most}, "
                              f"or give --memory-limit-mb")


def default_memory_limit_mb(jobs: int) -> float:
    """A job's memory limit without ``--memory-limit-mb``: 90% of this machine's memory over ``--jobs``, in MiB."""
    import psutil

    return psutil.virtual_memory().total / 2**20 * 0.9 / max(1, jobs)
