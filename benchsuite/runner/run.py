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
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psutil

from benchsuite.data.datasets import (
    DEFAULT_DATASETS,
    TASKS_OF_KIND,
    Dataset,
    check_data_root,
    kind_of_spec,
    open_dataset,
)
from benchsuite.device import device_for_pipeline, resolve_device
from benchsuite.errors import BenchsuiteError, ConfigError
from benchsuite.profiles import get_profile
from benchsuite.registry import PipelineInfo, list_pipelines, resolve
from benchsuite.results.provenance import git_commit, library_versions, machine_info
from benchsuite.results.store import RunStore
from benchsuite.runner.execute import describe_exit, run_worker
from benchsuite.runner.jobs import JobSpec, make_job_id
from benchsuite.tasks.base import get_task

log = logging.getLogger(__name__)
ALL_TASKS = ("classification", "detection", "proposals")


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
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    weights: str | None = None
    write_report: bool = True
    argv: list[str] = field(default_factory=list)


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
        self.device = resolve_device(config.device)
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- planning
    def _tasks(self) -> list[str]:
        tasks = self.config.tasks or list(ALL_TASKS)
        _check_choices(tasks, ALL_TASKS, "task")
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
                out[task] = [DEFAULT_DATASETS[task]]
                continue
            out[task] = [s for s in specs if task in TASKS_OF_KIND[kind_of_spec(s)]]
        return out

    def plan(self) -> Plan:
        cfg = self.config
        if cfg.jobs < 1:
            raise ConfigError(f"--jobs must be at least 1, got {cfg.jobs}")
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
        for pid in cfg.params:
            if not any(p.id == pid for t in tasks for p in pipelines[t]):
                raise ConfigError(f"--param names pipeline {pid!r}, which is not in this run")

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
        done = store.recorded_jobs(include_failed=not cfg.retry_failed) if cfg.resume else set()
        cores = os.cpu_count() or 1
        threads = max(1, cores // cfg.jobs)
        memory_limit = cfg.memory_limit_mb or psutil.virtual_memory().total / 2**20 * 0.9 / cfg.jobs
        jobs, skipped = [], []
        for task in tasks:
            budget = self.profile.budget(task)
            for spec in task_specs[task]:
                info = datasets[spec].info
                for p in pipelines[task]:
                    for seed in cfg.seeds:
                        job_id = make_job_id(task, info.name, p.id, seed)
                        if job_id in done:
                            skipped.append(job_id)
                            continue
                        params = {**self.profile.params_for(p.id), **cfg.params.get(p.id, {})}
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
            "versions": library_versions(),
            "git": git_commit(),
            "datasets": [ds.info.as_dict() for ds in plan.datasets.values()],
        }

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
        plan = self.plan()
        store = RunStore(plan.run_dir)
        plan.run_dir.mkdir(parents=True, exist_ok=True)
        if self.config.resume:
            self._check_resume(store, plan)
            info = store.read_run_info()
            info.setdefault("resumed_at", []).append(datetime.now(timezone.utc).isoformat(timespec="seconds"))
            merged = {d["name"]: d for d in info.get("datasets", [])}  # keep the data sets of earlier jobs
            merged.update({ds.info.name: ds.info.as_dict() for ds in plan.datasets.values()})
            info["datasets"] = list(merged.values())
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
        total = len(plan.jobs)
        if total == 0:
            return
        if self.config.jobs == 1:
            for number, job in enumerate(plan.jobs, 1):
                log.info("[%d/%d] %s: %s on %s (seed %d, %s)", number, total, job.task, job.pipeline,
                         job.dataset, job.seed, job.device)
                self._finish(plan, store, job, self._run_one(job, echo=True))
            return
        from tqdm.auto import tqdm

        with ThreadPoolExecutor(max_workers=self.config.jobs) as pool, \
                tqdm(total=total, desc="jobs", unit="job", file=sys.stderr) as bar:
            futures = {pool.submit(self._run_one, job, False): job for job in plan.jobs}
            for fut in as_completed(futures):
                job = futures[fut]
                self._finish(plan, store, job, fut.result())
                bar.update(1)

    def _run_one(self, job: JobSpec, echo: bool) -> dict[str, Any]:
        job_dir = Path(job.job_dir)
        job_dir.mkdir(parents=True, exist_ok=True)
        for stale in job_dir.glob("result.json"):
            stale.unlink()
        job.write()
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        exit = run_worker(job.path, job_dir / "log.txt", job.num_threads, job.time_limit_s,
                          job.memory_limit_mb, echo=echo)
        result_path = job_dir / "result.json"
        if result_path.exists():
            import json

            result = json.loads(result_path.read_text())
        else:
            failure, error = describe_exit(exit, job.time_limit_s, job.memory_limit_mb)
            tail = _log_tail(job_dir / "log.txt")
            result = {"status": "failed", "failure": failure, "error": error, "log_tail": tail,
                      "started_at": started,
                      "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        result.setdefault("memory", {})["peak_tree_rss_mb"] = exit.peak_tree_rss_mb
        result["wall_s"] = round(exit.seconds, 3)
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
        (log.info if status == "ok" else log.error)(summary)

    def _record(self, plan: Plan, job: JobSpec, dataset: Dataset, split: str, status: str,
                failure: str | None, error: str | None, metrics: dict[str, Any], artifacts: dict[str, str],
                result: dict[str, Any], split_info: dict[str, Any]) -> dict[str, Any]:
        info = dataset.info
        timing = dict(result.get("timing", {}))
        timing.update({k: split_info[k] for k in ("predict_s", "images_per_s", "images", "seconds_per_image")
                       if k in split_info})
        timing["shared_machine"] = job.shared_machine
        timing["wall_s"] = result.get("wall_s")
        rel = Path("jobs") / job.job_id
        return {
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
            "status": status,
            "failure": failure if status != "ok" else None,
            "error": error if status != "ok" else None,
            "metrics": metrics,
            "timing": timing,
            "memory": result.get("memory", {}),
            "params": result.get("params", job.params),
            "fit_info": result.get("fit_info", {}),
            "output": split_info.get("output", {}),
            "seed": job.seed,
            "device": job.device,
            "profile": job.profile,
            "artifacts": {k: str(rel / v) for k, v in artifacts.items()},
            "log": str(rel / "log.txt"),
            "started_at": result.get("started_at"),
            "finished_at": result.get("finished_at"),
        }


def _budget(job: JobSpec) -> Any:
    from benchsuite.api import Budget

    return Budget(**job.budget)


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").replace("\r", "\n")
    except FileNotFoundError:
        return ""
    return "\n".join([ln for ln in text.splitlines() if ln.strip()][-lines:])


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
