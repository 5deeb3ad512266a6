"""A run's folder and its provenance: where the run writes (``--out``, ``--run-id``, the latest run for
``--resume``, else a new id) and what ``run.json`` says about it (configuration, machine, versions, commit, data
sets, executor)."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchsuite.errors import ConfigError
from benchsuite.measure.conditions import machine_state
from benchsuite.results.provenance import git_commit, library_versions, machine_info
from benchsuite.results.store import RunStore
from benchsuite.runner.config import RunConfig

if TYPE_CHECKING:
    from benchsuite.runner.plan import Plan


def now_iso() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_run_id() -> str:
    """``YYYYmmdd-HHMMSS-<4 digits of the pid>``."""
    return datetime.now().strftime("%Y%m%d-%H%M%S") + f"-{os.getpid() % 10000:04d}"


def latest_run(results_root: Path) -> Path:
    """The run folder under ``results_root`` whose ``run.json`` changed last (what a bare ``--resume`` continues)."""
    runs = sorted((p for p in Path(results_root).glob("*/run.json")), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise ConfigError(f"cannot resume: no run under {results_root}; give --out DIR")
    return runs[-1].parent


def choose_run_folder(cfg: RunConfig) -> tuple[Path, str]:
    """``(run folder, run id)``: ``--out``, else ``results_root / --run-id``, else (``--resume``) the latest run,
    else a new id. A resumed folder must hold a run (its id is kept); a new run refuses a folder with records."""
    if cfg.out is not None:
        run_dir = Path(cfg.out)
    elif cfg.run_id:
        run_dir = cfg.results_root / cfg.run_id
    elif cfg.resume:
        run_dir = latest_run(cfg.results_root)
    else:
        run_dir = cfg.results_root / new_run_id()
    store = RunStore(run_dir)
    if cfg.resume:
        if not store.exists():
            raise ConfigError(f"cannot resume: {run_dir} holds no run (no {store.run_path.name})")
        return run_dir, store.read_run_info()["run_id"]
    if store.records_path.exists() and store.records():
        raise ConfigError(f"{run_dir} already holds records; add --resume to continue that run, "
                          f"or choose another --out")
    return run_dir, cfg.run_id or run_dir.name


def run_info(cfg: RunConfig, plan: Plan, profile: str, device: str, executor: dict[str, Any]) -> dict[str, Any]:
    """``run.json`` of a new run: the configuration, the machine and its state, library versions, the git
    commit, the data sets (with fingerprints) and ``executor`` (what runs the jobs, and where)."""
    return {
        "run_id": plan.run_id,
        "created_at": now_iso(),
        "argv": cfg.argv,
        "profile": profile,
        "config": {
            "tasks": cfg.tasks, "datasets": cfg.datasets, "pipelines": cfg.pipelines,
            "exclude": cfg.exclude, "seeds": cfg.seeds, "device_requested": cfg.device,
            "device": device, "jobs": cfg.jobs, "eval_splits": cfg.eval_splits,
            "data_root": str(cfg.data_root), "params": cfg.params, "weights": cfg.weights,
        },
        "machine": machine_info(),
        "machine_state": machine_state(),
        "time_budget_s": cfg.time_budget_s,
        "versions": library_versions(),
        "git": git_commit(),
        "datasets": [ds.info.as_dict() for ds in plan.datasets.values()],
        "executor": executor,
    }


def resumed_run_info(info: dict[str, Any], plan: Plan, executor: dict[str, Any]) -> dict[str, Any]:
    """``run.json`` (``info``) after one more session: its time in ``resumed_at``, its executor in
    ``resumed_executors`` (one per ``resumed_at``), and the data sets of every session."""
    info = dict(info)
    info["resumed_at"] = [*info.get("resumed_at", []), now_iso()]
    merged = {d["name"]: d for d in info.get("datasets", [])}  # keep the data sets of earlier jobs
    merged.update({ds.info.name: ds.info.as_dict() for ds in plan.datasets.values()})
    info["datasets"] = list(merged.values())
    info["resumed_executors"] = [*info.get("resumed_executors", []), executor]
    return info
