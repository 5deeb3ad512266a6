"""A benchmark run: plan the jobs, run each in its own process, score and record them, report.

Each (task, data set, pipeline, seed) is one job. Jobs run in worker processes so that a pipeline that
raises, hangs or exhausts memory becomes a failed record while the rest of the run goes on. The parent
scores the predictions a worker saved, appends one record per evaluated split to ``records.jsonl`` and,
at the end, writes ``summary.csv`` and the report. ``--resume`` skips jobs that already have records.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psutil

from benchsuite.data.datasets import (
    Dataset,
    check_data_root,
    kind_of_spec,
    open_dataset,
)
from benchsuite.device import device_for_pipeline, resolve_device
from benchsuite.errors import BenchsuiteError, ConfigError
from benchsuite.measure.conditions import machine_state
from benchsuite.profiles import get_profile
from benchsuite.registry import PipelineInfo, list_pipelines, resolve
from benchsuite.results.provenance import git_commit, library_versions, machine_info
from benchsuite.results.schema import SCHEMA_VERSION, record_problems
from benchsuite.results.store import RunLock, RunStore, StorageError, storage_error
from benchsuite.runner.execute import (
    MEMORY_FLOOR_MB,
    DeferredInterrupt,
    RunInterrupted,
    Supervisor,
    local_executor_info,
    run_job_dir,
    run_jobs,
)
from benchsuite.runner.jobs import JobSpec, check_unique_job_ids, make_job_id, unique_dataset_names
from benchsuite.tasks.registry import get_task, task_names

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
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
    out: Path | None = None
    results_root: Path = Path("results")
    run_id: str | None = None
    resume: bool = False
    retry_failed: bool = False
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


@dataclass
class RunResult:
    run_dir: Path
    records: list[dict[str, Any]]
    report_path: Path | None
    html_path: Path | None = None


def new_run_id() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S") + f"-{os.getpid() % 10000:04d}"


def _check_choices(values: list[str], allowed: tuple[str, ...], what: str) -> None:
    for v in values:
        if v not in allowed:
            raise ConfigError(f"unknown {what} {v!r}; expected one of: {', '.join(allowed)}")


@dataclass
class Plan:
    run_dir: Path
    run_id: str
    datasets: dict[str, Dataset]  # by spec
    jobs: list[JobSpec]
    skipped: list[str]


class Runner:
    def __init__(self, config: RunConfig):
        self.config = config
        self.profile = get_profile(config.profile)
        # --executor ray: the device is resolved against the cluster's GPUs once it is connected (plan)
        self.device = resolve_device(config.device) if config.executor != "ray" else config.device
        self.cluster: Any = None  # the RayCluster of an --executor ray run, connected by plan()
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- planning
    def _tasks(self) -> list[str]:
        known = task_names()  # the registered tasks (benchsuite.tasks entry points)
        tasks = self.config.tasks or list(known)
        _check_choices(tasks, known, "task")
        return tasks

    def _pipelines(self, tasks: list[str]) -> dict[str, list[PipelineInfo]]:
        chosen = (resolve(self.config.pipelines, tasks) if self.config.pipelines
                  else [p for p in list_pipelines() if p.task in tasks])
        if self.config.exclude:
            import fnmatch

            chosen = [p for p in chosen if not any(fnmatch.fnmatch(p.id, x) for x in self.config.exclude)]
        by_task: dict[str, list[PipelineInfo]] = {t: [] for t in tasks}
        for p in chosen:
            by_task[p.task].append(p)
        return by_task

    def _dataset_specs(self, tasks: list[str]) -> dict[str, list[str]]:
        """Which data set specs each task runs on."""
        specs = self.config.datasets
        out: dict[str, list[str]] = {}
        for task in tasks:
            if not specs:
                out[task] = [get_task(task).default_dataset]
                continue
            out[task] = [s for s in specs if kind_of_spec(s) == get_task(task).dataset_kind]
        return out

    def plan(self) -> Plan:
        cfg = self.config
        _check_options(cfg)
        _check_choices(cfg.eval_splits, ("val", "test"), "evaluation split")
        check_data_root(cfg.data_root, cfg.data_root_explicit)
        tasks = self._tasks()
        pipelines = self._pipelines(tasks)
        task_specs = self._dataset_specs(tasks)
        if cfg.datasets:
            for spec in cfg.datasets:
                if not any(spec in v for v in task_specs.values()):
                    raise ConfigError(f"data set {spec!r} serves none of the chosen tasks ({', '.join(tasks)})")
        tasks = [t for t in tasks if pipelines[t] and task_specs[t]]
        if not tasks:
            raise ConfigError("nothing to run: no pipeline matches the chosen tasks and pipelines")
        cfg.params = _checked_params(cfg.params, [p for t in tasks for p in pipelines[t]])
        if cfg.executor == "ray" and self.cluster is None:  # before the jobs: their device is the cluster's
            from benchsuite.runner.ray_executor import RayCluster

            self.cluster = RayCluster.connect(cfg.ray_address)
            self.device = self.cluster.resolve_device(cfg.device)

        datasets: dict[str, Dataset] = {}
        for task in tasks:
            for spec in task_specs[task]:
                if spec not in datasets:
                    log.info("opening data set %s", spec)
                    datasets[spec] = open_dataset(spec, cfg.data_root, cfg.cache_dir,
                                                  force_synthetic=self.profile.synthetic_only,
                                                  download=cfg.download)

        run_dir, run_id = self._run_dir()
        store = RunStore(run_dir)
        earlier = store.read_run_info().get("datasets", []) if cfg.resume else []
        for spec, name in unique_dataset_names(datasets, earlier).items():
            if name != datasets[spec].info.name:
                log.info("data set %s goes by %s (another data set of this run has its folder's name)", spec, name)
                datasets[spec].info.name = name
                if hasattr(datasets[spec], "name"):
                    datasets[spec].name = name  # type: ignore[attr-defined]
        done = store.recorded_jobs(include_failed=not cfg.retry_failed) if cfg.resume else set()
        cores = os.cpu_count() or 1
        threads = max(1, cores // cfg.jobs)
        memory_limit = cfg.memory_limit_mb or psutil.virtual_memory().total / 2**20 * 0.9 / cfg.jobs
        jobs, skipped, ids = [], [], []
        for task in tasks:
            budget = self.profile.budget(task)
            if cfg.time_budget_s is not None:  # opt-in time-boxed training: shortened records say so
                budget = replace(budget, train_time_s=float(cfg.time_budget_s))
            for spec in task_specs[task]:
                info = datasets[spec].info
                for p in pipelines[task]:
                    for seed in cfg.seeds:
                        job_id = make_job_id(task, info.name, p.id, seed)
                        ids.append((job_id, f"{task} {p.id} seed {seed} on data set {spec!r} ({info.root})"))
                        if job_id in done:
                            skipped.append(job_id)
                            continue
                        params = {**_profile_params(p, self.profile.name), **cfg.params.get(p.id, {})}
                        jobs.append(JobSpec(
                            run_id=run_id, job_id=job_id, task=task, dataset_spec=spec, dataset=info.name,
                            dataset_fingerprint=info.fingerprint, origin=info.origin, pipeline=p.id,
                            pipeline_ref=p.ref, family=p.family, pretrained_reference=p.pretrained_reference,
                            seed=seed, device=device_for_pipeline(self.device, p.devices),
                            profile=self.profile.name,
                            budget={**budget.__dict__, "extra": dict(budget.extra)}, params=params,
                            eval_splits=list(cfg.eval_splits), data_root=str(cfg.data_root),
                            cache_dir=str(cfg.cache_dir), job_dir=str(store.job_dir(job_id)),
                            num_threads=threads, latency_images=self.profile.latency_images,
                            latency_warmup=self.profile.latency_warmup,
                            time_limit_s=cfg.time_limit_s or budget.time_limit_s,
                            memory_limit_mb=memory_limit, shared_machine=cfg.jobs > 1,
                            weights=cfg.weights, download=cfg.download, progress=cfg.jobs == 1 and sys.stderr.isatty(),
                        ))
        check_unique_job_ids(ids)
        return Plan(run_dir, run_id, datasets, jobs, skipped)

    def _run_dir(self) -> tuple[Path, str]:
        cfg = self.config
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

    # ---------------------------------------------------------------- provenance
    def _run_info(self, plan: Plan) -> dict[str, Any]:
        cfg = self.config
        return {
            "run_id": plan.run_id,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "argv": cfg.argv,
            "profile": self.profile.name,
            "config": {
                "tasks": cfg.tasks, "datasets": cfg.datasets, "pipelines": cfg.pipelines,
                "exclude": cfg.exclude, "seeds": cfg.seeds, "device_requested": cfg.device,
                "device": self.device, "jobs": cfg.jobs, "eval_splits": cfg.eval_splits,
                "data_root": str(cfg.data_root), "params": cfg.params, "weights": cfg.weights,
            },
            "machine": machine_info(),
            "machine_state": machine_state(),
            "time_budget_s": cfg.time_budget_s,
            "versions": library_versions(),
            "git": git_commit(),
            "datasets": [ds.info.as_dict() for ds in plan.datasets.values()],
            "executor": self._executor_info(),
        }

    def _executor_info(self) -> dict[str, Any]:
        """run.json's ``executor``: what ran the jobs and where (a Ray cluster: its nodes, CPU model, cores, GPUs)."""
        return self.cluster.info() if self.cluster is not None else local_executor_info()

    def _check_resume(self, store: RunStore, plan: Plan) -> None:
        old = store.read_run_info()
        old_fp = {d["name"]: d["fingerprint"] for d in old.get("datasets", [])}
        for ds in plan.datasets.values():
            fp = old_fp.get(ds.info.name)
            if fp is not None and fp != ds.info.fingerprint:
                raise ConfigError(f"cannot resume {store.run_dir}: data set {ds.info.name} changed "
                                  f"(fingerprint {ds.info.fingerprint}, the run used {fp})")
        if old.get("profile") != self.profile.name:
            raise ConfigError(f"cannot resume {store.run_dir}: it ran profile {old.get('profile')!r}, "
                              f"not {self.profile.name!r}")

    # ---------------------------------------------------------------- execution
    def run(self) -> RunResult:
        with DeferredInterrupt() as interrupt:  # a Ctrl-C while planning stops before any job starts
            try:
                plan = self.plan()
                interrupt.check("while planning, before any job started; nothing was run")
                self._deferred = interrupt
                return self._run_planned(plan)
            finally:
                if self.cluster is not None:  # --executor ray: disconnect (and stop a Ray started for the run)
                    self.cluster.close()
                    self.cluster = None

    def _run_planned(self, plan: Plan) -> RunResult:
        store = RunStore(plan.run_dir)
        lock = RunLock(plan.run_dir)
        try:
            plan.run_dir.mkdir(parents=True, exist_ok=True)
            lock.acquire()
        except OSError as exc:
            raise storage_error(exc, where=plan.run_dir) from None
        try:
            return self._run_locked(plan, store)
        except OSError as exc:
            raise _storage_failure(exc, store) from None
        finally:
            lock.release()

    def _run_locked(self, plan: Plan, store: RunStore) -> RunResult:
        """:meth:`run` once this process holds the run folder's lock."""
        store.repair()
        if self.config.resume:  # another session may have recorded jobs since the plan was made
            done = store.recorded_jobs(include_failed=not self.config.retry_failed)
            plan.skipped += [j.job_id for j in plan.jobs if j.job_id in done]
            plan.jobs = [j for j in plan.jobs if j.job_id not in done]
        if self.config.resume:
            self._check_resume(store, plan)
            info = store.read_run_info()
            info.setdefault("resumed_at", []).append(datetime.now(timezone.utc).isoformat(timespec="seconds"))
            merged = {d["name"]: d for d in info.get("datasets", [])}  # keep the data sets of earlier jobs
            merged.update({ds.info.name: ds.info.as_dict() for ds in plan.datasets.values()})
            info["datasets"] = list(merged.values())
            info.setdefault("resumed_executors", []).append(self._executor_info())  # one per resumed_at
            store.write_run_info(info)
        else:
            store.write_run_info(self._run_info(plan))
        for ds in plan.datasets.values():
            ds.write_manifest(plan.run_dir / "splits")
        for ds in plan.datasets.values():
            log.info("data: %s: %s", ds.info.name, ds.info.description)
        if plan.skipped:
            log.info("resume: %d job(s) already recorded, skipped", len(plan.skipped))
        log.info("run %s: %d job(s) -> %s", plan.run_id, len(plan.jobs), plan.run_dir)
        self._execute(plan, store)
        store.write_summary()
        report_path = html_path = None
        if self.config.write_report:
            from benchsuite.report.markdown import write_report

            try:
                paths = write_report(plan.run_dir)
                report_path, html_path = paths.markdown, paths.html
            except Exception:  # the records are safe; the report can be rewritten with `benchsuite report`
                log.exception("writing the report failed; rerun `benchsuite report %s`", plan.run_dir)
        return RunResult(plan.run_dir, store.records(), report_path, html_path)

    def _execute(self, plan: Plan, store: RunStore) -> None:
        """Run the plan's jobs (``--jobs`` at a time); on SIGINT/SIGTERM keep what finished, then raise
        :class:`RunInterrupted` naming the jobs ``--resume`` will run."""
        if not plan.jobs:
            return
        echo = self.config.jobs == 1
        with Supervisor() as supervisor:
            deferred = getattr(self, "_deferred", None)
            if deferred is not None and deferred.signal_name:  # a signal came while the run folder was set up
                supervisor.signal_name = deferred.signal_name
                supervisor.stop.set()
            self._supervisor = supervisor
            try:
                if self.cluster is not None:  # --executor ray: each job a Ray task (ray_executor)
                    from benchsuite.runner.ray_executor import run_jobs_on_ray

                    not_run = run_jobs_on_ray(self.cluster, plan.jobs, self.config,
                                              lambda job, result: self._finish(plan, store, job, result),
                                              supervisor)
                else:
                    not_run = run_jobs(plan.jobs, self.config.jobs, lambda job: self._run_one(job, echo),
                                       lambda job, result: self._finish(plan, store, job, result), supervisor)
            finally:
                self._supervisor = None
        if not supervisor.stop.is_set():
            return
        store.write_summary()
        done = store.recorded_jobs(include_failed=not self.config.retry_failed)
        again = [j.job_id for j in plan.jobs if j.job_id not in done]
        finished = len(plan.jobs) - len(not_run)
        shown = ", ".join(again[:12]) + (f" and {len(again) - 12} more" if len(again) > 12 else "")
        raise RunInterrupted(
            f"interrupted ({supervisor.signal_name}): {finished} job(s) of {len(plan.jobs)} finished and recorded "
            f"in {store.records_path}; --resume (the same command with --resume --out {plan.run_dir}) will run "
            f"{len(again)} job(s)" + (f": {shown}" if again else ""), again)

    def _run_one(self, job: JobSpec, echo: bool) -> dict[str, Any]:
        """The local executor: the job's worker process on this machine (the run folder is its job dir)."""
        result = run_job_dir(job, echo, getattr(self, "_supervisor", None))
        result.setdefault("executor", {"name": "local", "node": local_executor_info()["node"], "attempts": 1})
        return result

    def _finish(self, plan: Plan, store: RunStore, job: JobSpec, result: dict[str, Any]) -> None:
        dataset = plan.datasets[job.dataset_spec]
        task = get_task(job.task)
        status = result.get("status", "failed")
        for split in job.eval_splits:
            metrics: dict[str, Any] = {}
            artifacts: dict[str, str] = {}
            split_status, failure, error = status, result.get("failure"), result.get("error")
            split_info = result.get("splits", {}).get(split, {})
            if status == "ok" and not split_info:
                # the worker left this split out: the pipeline trained on it (fit_info.val_not_scored says why)
                log.info("%s: %s split not scored (%s)", job.job_id, split,
                         (result.get("fit_info") or {}).get("val_not_scored", "no predictions"))
                continue
            if status == "ok":
                try:
                    metrics, artifacts = task.evaluate(dataset, split, _budget(job), Path(job.job_dir) /
                                                       split_info["predictions"], Path(job.job_dir))
                except BenchsuiteError as exc:
                    split_status, failure, error = "failed", "invalid-output", f"invalid output: {exc}"
                except Exception as exc:
                    split_status, failure, error = "failed", "evaluation", f"{type(exc).__name__}: {exc}"
            record = self._record(plan, job, dataset, split, split_status, failure, error, metrics,
                                  artifacts, result, split_info)
            with self._lock:
                store.append(record)
        summary = _one_line(job, result, plan.datasets[job.dataset_spec])
        if status != "ok":
            summary += _failure_tail(result, Path("jobs") / job.job_id / "log.txt")
        (log.info if status == "ok" else log.error)(summary)

    def _record(self, plan: Plan, job: JobSpec, dataset: Dataset, split: str, status: str,
                failure: str | None, error: str | None, metrics: dict[str, Any], artifacts: dict[str, str],
                result: dict[str, Any], split_info: dict[str, Any]) -> dict[str, Any]:
        info = dataset.info
        timing = dict(result.get("timing", {}))
        timing.update({k: split_info[k] for k in ("predict_s", "images_per_s", "images", "seconds_per_image",
                                                  "predict") if k in split_info})
        timing["shared_machine"] = job.shared_machine
        timing["wall_s"] = result.get("wall_s")
        timing["contended"] = phases_contended(timing)
        fit_info = result.get("fit_info", {})
        shortcuts = list(fit_info.get("shortcuts") or []) if isinstance(fit_info, dict) else []
        rel = Path("jobs") / job.job_id
        return _checked_record({
            "schema_version": SCHEMA_VERSION,
            "run_id": plan.run_id,
            "job_id": job.job_id,
            "task": job.task,
            "dataset": info.name,
            "dataset_fingerprint": info.fingerprint,
            "data_origin": info.origin,
            "data_canonical": info.canonical,
            "split": split,
            "split_fingerprint": info.split_fingerprints.get(split),
            "pipeline": job.pipeline,
            "family": job.family,
            "pretrained_reference": job.pretrained_reference,
            "harness_floor": bool(result.get("harness_floor", False)),
            "status": status,
            "failure": failure if status != "ok" else None,
            "error": error if status != "ok" else None,
            "metrics": metrics,
            "timing": timing,
            "memory": result.get("memory", {}),
            "params": result.get("params", job.params),
            "fit_info": fit_info,
            "shortcuts": shortcuts,
            "shortened": bool(shortcuts),
            "output": split_info.get("output", {}),
            "seed": job.seed,
            "device": job.device,
            "determinism": result.get("determinism"),
            "profile": job.profile,
            "artifacts": {k: str(rel / v) for k, v in artifacts.items()},
            "log": str(rel / "log.txt"),
            "started_at": result.get("started_at"),
            "finished_at": result.get("finished_at"),
            "node": (result.get("executor") or {}).get("node"),  # the host the job ran on
            "executor": result.get("executor"),  # {"name": "local"|"ray", "node", "attempts", ...}
        })


#: the record's blocks that a pipeline fills (through its fit_info and outputs), with their empty value
_PIPELINE_BLOCKS = {"fit_info": {}, "shortcuts": [], "params": {}, "metrics": {}, "output": {}}


def _checked_record(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` when it matches the record schema (:mod:`benchsuite.results.schema`). Otherwise a pipeline
    reported something of the wrong shape (``fit_info.selection`` not a selection, ``fit_info.val_map50`` not a
    number): the record becomes ``failed`` (``invalid-output``) with the offending keys and their expected types,
    and the offending blocks are emptied (they stay in the job's ``result.json``)."""
    problems = record_problems(record)
    if not problems:
        return record
    record.update(status="failed", failure="invalid-output", metrics={},
                  error="invalid output: the record does not match its schema: " + "; ".join(problems))
    for key, empty in _PIPELINE_BLOCKS.items():
        if any(p == key or p.startswith((f"{key}.", f"{key}[", f"{key}:")) for p in problems):
            record[key] = type(empty)()
    record["shortened"] = bool(record.get("shortcuts"))
    left = record_problems(record)
    if left:  # not the pipeline's doing: the runner built a record of the wrong shape
        log.error("%s/%s: record does not match its schema: %s", record.get("job_id"), record.get("split"),
                  "; ".join(left))
    return record


def phases_contended(timing: dict[str, Any]) -> bool | None:
    """Whether any timed phase of a record (fit, predict) was contended; None when none was measured."""
    flags = [(timing.get(phase) or {}).get("contended") for phase in ("fit", "predict")
             if isinstance(timing.get(phase), dict)]
    known = [f for f in flags if f is not None]
    return any(known) if known else None


def _check_options(cfg: RunConfig) -> None:
    """Zero, negative and non-finite option values fail the run before anything starts."""
    import math

    if not isinstance(cfg.jobs, int) or cfg.jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {cfg.jobs}")
    if cfg.executor not in ("local", "ray"):
        raise ConfigError(f"unknown executor {cfg.executor!r}; expected one of: local, ray")
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
    if cfg.time_limit_s is not None and not (math.isfinite(cfg.time_limit_s) and cfg.time_limit_s > 0):
        raise ConfigError(f"--time-limit must be a finite number of seconds above 0, got {cfg.time_limit_s}")
    if cfg.memory_limit_mb is not None and not (math.isfinite(cfg.memory_limit_mb)
                                                and cfg.memory_limit_mb >= MEMORY_FLOOR_MB):
        raise ConfigError(f"--memory-limit-mb must be at least {MEMORY_FLOOR_MB:.0f} MB (a small classical "
                          f"job's worker peaks at about 180 MB), got {cfg.memory_limit_mb}")


def _checked_params(requested: dict[str, dict[str, Any]], infos: list[PipelineInfo]) -> dict[str, dict[str, Any]]:
    """``--param`` values parsed to the types of each pipeline's constructor; unknown pipelines and names
    refused with the valid ones listed (before any job starts)."""
    from benchsuite.params import check_all
    from benchsuite.registry import load_ref

    if not requested:
        return requested
    classes = {p.id: load_ref(p.ref) for p in infos if p.id in requested}
    for pid in requested:
        if pid not in classes:
            known = ", ".join(sorted({p.id for p in infos}))
            raise ConfigError(f"--param names pipeline {pid!r}, which is not in this run (this run's "
                              f"pipelines: {known})")
    return check_all(requested, classes)


def _profile_params(info: PipelineInfo, profile: str) -> dict[str, Any]:
    """The constructor parameters a pipeline class declares for ``profile`` (``profile_params``); a name its
    constructor lacks is refused before any job starts."""
    from benchsuite.params import constructor_parameters
    from benchsuite.profiles import pipeline_params
    from benchsuite.registry import load_ref

    cls = load_ref(info.ref)
    params = pipeline_params(cls, profile)
    names = constructor_parameters(cls)
    accepts_any = any(p.kind == p.VAR_KEYWORD for p in _init_parameters(cls))
    unknown = sorted(set(params) - set(names))
    if unknown and not accepts_any:
        raise ConfigError(f"pipeline {info.id} ({info.ref}): profile_params[{profile!r}] names "
                          f"{', '.join(map(repr, unknown))}, which its constructor does not take (valid names: "
                          f"{', '.join(sorted(names)) or 'none'})")
    return params


def _init_parameters(cls: type) -> list[Any]:
    import inspect

    try:
        return list(inspect.signature(cls.__init__).parameters.values())
    except (TypeError, ValueError):
        return []


def _storage_failure(exc: OSError, store: RunStore) -> StorageError:
    """The one line for a run folder that could not be written, saying what was kept."""
    err = storage_error(exc, where=store.run_dir)
    try:
        kept = len(store.records(latest_only=False))
        what = f"kept: {kept} record(s) in {store.records_path}" if kept else "no record was written"
    except Exception:
        what = f"see {store.records_path}"
    return StorageError(f"{err}; {what}; free space or fix the folder, then add --resume")


def _budget(job: JobSpec) -> Any:
    from benchsuite.api import Budget

    return Budget(**job.budget)


def _failure_tail(result: dict[str, Any], log_file: Path, lines: int = 6) -> str:
    """The last lines of a failed job's traceback (else of its output), indented, and where the rest is."""
    text = str(result.get("traceback") or result.get("log_tail") or "")
    kept = [ln for ln in text.splitlines() if ln.strip()][-lines:]
    if not kept:
        return ""
    return "\n" + "\n".join("    " + ln for ln in kept) + f"\n    (the whole output: {log_file})"


def _one_line(job: JobSpec, result: dict[str, Any], dataset: Dataset) -> str:
    head = f"{job.task}: {job.pipeline} on {job.dataset}"
    if result.get("status") != "ok":
        return f"{head}: FAILED ({result.get('failure')}): {result.get('error')}"
    t = result.get("timing", {})
    return f"{head}: ok, fit {t.get('fit_s', float('nan')):.1f} s, wall {result.get('wall_s', 0):.1f} s"


def latest_run(results_root: Path) -> Path:
    runs = sorted((p for p in Path(results_root).glob("*/run.json")), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise ConfigError(f"cannot resume: no run under {results_root}; give --out DIR")
    return runs[-1].parent


def run(config: RunConfig) -> RunResult:
    return Runner(config).run()
