"""Planning a run: which tasks, pipelines and data sets, and the jobs in the order they run.

A job is one (task, data set, pipeline, seed). :func:`choose_work` picks the tasks, pipelines and data set specs
from the configuration and checks them; :func:`open_datasets` opens the data sets; :func:`make_jobs` builds one
:class:`benchsuite.runner.jobs.JobSpec` per job, with its parameters (the profile's, then ``--param``), budget,
threads and limits, and puts producers before their consumers (:mod:`benchsuite.runner.dependencies`). Nothing
here starts a job or writes the run folder; what an earlier session of a resumed run already recorded is
taken out later (:mod:`benchsuite.runner.resume`).
"""

from __future__ import annotations

import fnmatch
import inspect
import logging
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from benchsuite import registry
from benchsuite.data.datasets import Dataset, check_data_root, open_dataset
from benchsuite.device import device_for_pipeline
from benchsuite.errors import ConfigError
from benchsuite.registry import PipelineInfo, list_pipelines, resolve
from benchsuite.runner.config import RunConfig, check_choices, check_options
from benchsuite.runner.dependencies import check_consumed, order_jobs, producer_jobs
from benchsuite.runner.jobs import JobSpec, check_unique_job_ids, make_job_id, unique_dataset_names
from benchsuite.tasks.registry import get_task, task_names

if TYPE_CHECKING:
    from benchsuite.profiles import Profile

log = logging.getLogger(__name__)


@dataclass
class Plan:
    """A planned run: its folder and id, the data sets it opened (by spec), the jobs to run in order, and the
    ids of jobs an earlier session of a resumed run already recorded."""

    run_dir: Path
    run_id: str
    datasets: dict[str, Dataset]
    jobs: list[JobSpec]
    skipped: list[str]


@dataclass
class Work:
    """What a run covers: its tasks, each task's pipelines and data set specs, and the pipeline classes."""

    tasks: list[str]
    pipelines: dict[str, list[PipelineInfo]]
    specs: dict[str, list[str]]
    classes: dict[str, type]


def choose_work(cfg: RunConfig) -> Work:
    """The tasks, pipelines and data set specs ``cfg`` asks for, with every option checked; ``cfg.params``
    becomes the parsed ``--param`` values. Any problem is a ConfigError, before anything starts."""
    check_options(cfg)
    check_data_root(cfg.data_root, cfg.data_root_explicit)
    known = task_names()  # the registered tasks (benchsuite.tasks entry points)
    tasks = cfg.tasks or list(known)
    check_choices(tasks, known, "task")
    pipelines = _pipelines(cfg, tasks)
    from benchsuite.profiles import get_profile

    specs = _dataset_specs(cfg.datasets, tasks, cfg.data_root, get_profile(cfg.profile).synthetic_only)
    for spec in cfg.datasets or []:
        if not any(spec in v for v in specs.values()):
            raise ConfigError(f"data set {spec!r} serves none of the chosen tasks ({', '.join(tasks)})")
    tasks = [t for t in tasks if pipelines[t] and specs[t]]
    if not tasks:
        raise ConfigError("nothing to run: no pipeline matches the chosen tasks and pipelines")
    chosen = [p for t in tasks for p in pipelines[t]]
    cfg.params = checked_params(cfg.params, chosen)
    classes = {p.id: registry.load_ref(p.ref) for p in chosen}
    check_consumed({pid: tuple(getattr(cls, "consumes", ())) for pid, cls in classes.items()},
                   {p.id for p in list_pipelines()})
    return Work(tasks, {t: pipelines[t] for t in tasks}, {t: specs[t] for t in tasks}, classes)


def _pipelines(cfg: RunConfig, tasks: list[str]) -> dict[str, list[PipelineInfo]]:
    chosen = (resolve(cfg.pipelines, tasks) if cfg.pipelines else [p for p in list_pipelines() if p.task in tasks])
    if cfg.exclude:
        chosen = [p for p in chosen if not any(fnmatch.fnmatch(p.id, x) for x in cfg.exclude)]
    by_task: dict[str, list[PipelineInfo]] = {t: [] for t in tasks}
    for p in chosen:
        by_task[p.task].append(p)
    return by_task


def _dataset_specs(specs: list[str] | None, tasks: list[str], data_root: Path | None = None,
                   synthetic_only: bool = False) -> dict[str, list[str]]:
    """Which data set specs each task runs on: those that provide every annotation it needs
    (:meth:`benchsuite.tasks.base.Task.runs_on`), or its default when none is named."""
    out: dict[str, list[str]] = {}
    for task in tasks:
        t = get_task(task)
        out[task] = ([s for s in specs if t.runs_on(s, data_root, force_synthetic=synthetic_only)] if specs
                     else [t.default_dataset])
    return out


def open_datasets(cfg: RunConfig, work: Work, synthetic_only: bool) -> dict[str, Dataset]:
    """Each data set spec of the run, opened once (``synthetic_only``: the profile's stand-ins)."""
    datasets: dict[str, Dataset] = {}
    for task in work.tasks:
        for spec in work.specs[task]:
            if spec not in datasets:
                log.info("opening data set %s", spec)
                datasets[spec] = open_dataset(spec, cfg.data_root, cfg.cache_dir, force_synthetic=synthetic_only,
                                              download=cfg.download)
    return datasets


def name_datasets(datasets: dict[str, Dataset], earlier: list[dict[str, Any]]) -> None:
    """Rename data sets whose name another data set of the run (or of ``earlier``, a resumed run's run.json
    ``datasets``) has for a different folder (:func:`benchsuite.runner.jobs.unique_dataset_names`)."""
    for spec, name in unique_dataset_names(datasets, earlier).items():
        if name != datasets[spec].info.name:
            log.info("data set %s goes by %s (another data set of this run has its folder's name)", spec, name)
            datasets[spec].info.name = name
            if hasattr(datasets[spec], "name"):
                datasets[spec].name = name  # type: ignore[attr-defined]


def make_jobs(cfg: RunConfig, work: Work, datasets: dict[str, Dataset], profile: Profile, device: str,
              run_id: str, jobs_root: Path) -> list[JobSpec]:
    """Every job of the run, producers before their consumers (:func:`benchsuite.runner.dependencies.order_jobs`).

    Each job gets ``cores // --jobs`` threads, a memory limit (``--memory-limit-mb``, else 90% of the RAM over
    ``--jobs``), its folder ``jobs_root / job_id`` and, for a pipeline that consumes another one's output, the
    run's job of that pipeline on the same data set (``JobSpec.consumes``).
    """
    threads = max(1, (os.cpu_count() or 1) // cfg.jobs)
    memory_limit = cfg.memory_limit_mb or psutil.virtual_memory().total / 2**20 * 0.9 / cfg.jobs
    jobs: list[JobSpec] = []
    ids: list[tuple[str, str]] = []
    for task in work.tasks:
        budget = profile.budget(task)
        if cfg.time_budget_s is not None:  # opt-in time-boxed training: shortened records say so
            budget = replace(budget, train_time_s=float(cfg.time_budget_s))
        for spec in work.specs[task]:
            info = datasets[spec].info
            for p in work.pipelines[task]:
                params = {**profile_params(p, profile.name), **cfg.params.get(p.id, {})}
                for seed in cfg.seeds:
                    job_id = make_job_id(task, info.name, p.id, seed)
                    ids.append((job_id, f"{task} {p.id} seed {seed} on data set {spec!r} ({info.root})"))
                    jobs.append(JobSpec(
                        run_id=run_id, job_id=job_id, task=task, dataset_spec=spec, dataset=info.name,
                        dataset_fingerprint=info.fingerprint, origin=info.origin, pipeline=p.id,
                        pipeline_ref=p.ref, family=p.family, pretrained_reference=p.pretrained_reference,
                        seed=seed, device=device_for_pipeline(device, p.devices), profile=profile.name,
                        budget={**budget.__dict__, "extra": dict(budget.extra)}, params=dict(params),
                        eval_splits=list(cfg.eval_splits), data_root=str(cfg.data_root),
                        cache_dir=str(cfg.cache_dir), job_dir=str(jobs_root / job_id), num_threads=threads,
                        latency_images=profile.latency_images, latency_warmup=profile.latency_warmup,
                        time_limit_s=cfg.time_limit_s or budget.time_limit_s, memory_limit_mb=memory_limit,
                        shared_machine=cfg.jobs > 1, weights=cfg.weights, download=cfg.download,
                        progress=cfg.jobs == 1 and sys.stderr.isatty(),
                    ))
    check_unique_job_ids(ids)
    for job in jobs:
        consumes = tuple(getattr(work.classes[job.pipeline], "consumes", ()))
        if consumes:
            job.consumes = producer_jobs(job, consumes, jobs)
    return order_jobs(jobs)


def checked_params(requested: dict[str, dict[str, Any]], infos: list[PipelineInfo]) -> dict[str, dict[str, Any]]:
    """``--param`` values parsed to the types of each pipeline's constructor; unknown pipelines and names
    refused with the valid ones listed (before any job starts)."""
    from benchsuite.params import check_all

    if not requested:
        return requested
    classes = {p.id: registry.load_ref(p.ref) for p in infos if p.id in requested}
    for pid in requested:
        if pid not in classes:
            known = ", ".join(sorted({p.id for p in infos}))
            raise ConfigError(f"--param names pipeline {pid!r}, which is not in this run (this run's "
                              f"pipelines: {known})")
    return check_all(requested, classes)


def profile_params(info: PipelineInfo, profile: str) -> dict[str, Any]:
    """The constructor parameters a pipeline class declares for ``profile`` (``profile_params``); a name its
    constructor lacks is refused before any job starts."""
    from benchsuite.params import constructor_parameters
    from benchsuite.profiles import pipeline_params

    cls = registry.load_ref(info.ref)
    params = pipeline_params(cls, profile)
    names = constructor_parameters(cls)
    try:
        accepts_any = any(p.kind == p.VAR_KEYWORD for p in inspect.signature(cls.__init__).parameters.values())
    except (TypeError, ValueError):
        accepts_any = False
    unknown = sorted(set(params) - set(names))
    if unknown and not accepts_any:
        raise ConfigError(f"pipeline {info.id} ({info.ref}): profile_params[{profile!r}] names "
                          f"{', '.join(map(repr, unknown))}, which its constructor does not take (valid names: "
                          f"{', '.join(sorted(names)) or 'none'})")
    return params
