"""A run's folder and its provenance: where the run writes (``--out``, ``--run-id``, the latest run for
``--resume``, else a new id) and what ``run.json`` says about it (configuration, machine, versions, commit, data
sets, executor)."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchsuite.data.datasets import dataset_key
from benchsuite.environment import environment_block
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


def pipeline_classes(plan: Plan) -> dict[str, dict[str, Any]]:
    """``run.json``'s ``pipelines``: for each pipeline id of ``plan``, the class registered under it (module, class,
    distribution and version, :func:`benchsuite.registry.pipeline_provenance`)."""
    from benchsuite.registry import discover, pipeline_provenance

    known = discover()
    out = {}
    for job in plan.jobs:
        if job.pipeline in out:
            continue
        info = known.get(job.pipeline)
        if info is not None and info.ref == job.pipeline_ref:
            out[job.pipeline] = pipeline_provenance(info)
        else:
            module, _, qualname = job.pipeline_ref.partition(":")
            out[job.pipeline] = {"module": module, "qualname": qualname, "distribution": None, "version": None,
                                 "overrides": None}
    return out


def run_info(cfg: RunConfig, plan: Plan, profile: str, device: str, executor: dict[str, Any]) -> dict[str, Any]:
    """``run.json`` of a new run: the configuration, the machine and its state, library versions, the git
    commit, the pipelines' classes, the data sets (with fingerprints) and ``executor`` (what runs the jobs, and
    where)."""
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
            "study": cfg.study.as_dict() if cfg.study is not None else None,
            "download": cfg.download,
        },
        "pipelines": pipeline_classes(plan),
        "machine": machine_info(),
        "machine_state": machine_state(),
        "time_budget_s": cfg.time_budget_s,
        "versions": library_versions(),
        "environment": environment_block(),  # the cv2 that loads and who provides it; which benchsuite copy runs
        "git": git_commit(),
        "datasets": [ds.info.as_dict() for ds in plan.datasets.values()],
        "executor": executor,
    }


def resumed_run_info(info: dict[str, Any], plan: Plan, executor: dict[str, Any], session: dict[str, Any] | None = None,
                     differences: list[str] | None = None) -> dict[str, Any]:
    """``run.json`` (``info``) after one more session: its time in ``resumed_at``, its executor in
    ``resumed_executors`` (one per ``resumed_at``), the data sets of every session, the parameters and classes of
    the pipelines new to the run (from ``session``, this session's :func:`run_info`), and, when the session was
    allowed to differ (``--allow-changed``), what differed in ``changes``. The run's own settings stay as they
    were: the change is recorded beside them."""
    info = dict(info)
    now = now_iso()
    info["resumed_at"] = [*info.get("resumed_at", []), now]
    # keep the data sets of earlier jobs (one per name and annotations: a VOC folder's boxes and masks are two)
    merged = {dataset_key(d["name"], d.get("annotations") or ()): d for d in info.get("datasets", [])}
    for ds in plan.datasets.values():
        merged.setdefault(dataset_key(ds.info.name, ds.info.annotations), ds.info.as_dict())
    info["datasets"] = list(merged.values())
    info["resumed_executors"] = [*info.get("resumed_executors", []), executor]
    if session is not None:
        classes = dict(info.get("pipelines") or {})
        new = {pid: c for pid, c in (session.get("pipelines") or {}).items() if pid not in classes}
        info["pipelines"] = {**classes, **new}
        config = dict(info.get("config") or {})
        params = dict(config.get("params") or {})
        for pid, values in ((session.get("config") or {}).get("params") or {}).items():
            if pid in new:  # a pipeline new to the run brings its own parameters; the others keep the run's
                params.setdefault(pid, values)
        config["params"] = params
        info["config"] = config
        found = [*info.get("data_findings", []), *session.get("data_findings", [])]
        if found:
            info["data_findings"] = list(dict.fromkeys(found))
    if differences:
        info["changes"] = [*info.get("changes", []), {"at": now, "differences": list(differences)}]
    return info
