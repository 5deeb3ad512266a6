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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from benchsuite import registry
from benchsuite.data.datasets import Dataset, check_data_root, dataset_key, open_dataset
from benchsuite.device import device_for_pipeline
from benchsuite.errors import ConfigError
from benchsuite.registry import PipelineInfo, list_pipelines, resolve
from benchsuite.runner.config import RunConfig, check_choices, check_options
from benchsuite.runner.dependencies import check_consumed, order_jobs, producer_jobs
from benchsuite.runner.jobs import JobSpec, check_unique_job_ids, make_job_id, unique_dataset_names
from benchsuite.studies.axes import Axis, Point, get_axis
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
class Study:
    """A study run's sweep: its axis and points, and for each derived data set spec the base data set spec it
    derives, its points and the one seed its jobs run (:mod:`benchsuite.studies.derived`)."""

    axis: Axis
    points: list[Point]
    work_floor: float
    derived: dict[str, tuple[str, list[Point], int]] = field(default_factory=dict)


@dataclass
class Work:
    """What a run covers: its tasks, each task's pipelines and data set specs, and the pipeline classes (a study
    run's specs are the derived data sets of :attr:`study`)."""

    tasks: list[str]
    pipelines: dict[str, list[PipelineInfo]]
    specs: dict[str, list[str]]
    classes: dict[str, type]
    study: Study | None = None


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
    work = Work(tasks, {t: pipelines[t] for t in tasks}, {t: specs[t] for t in tasks}, classes)
    if cfg.study is not None:
        plan_study(cfg, work)
    return work


def plan_study(cfg: RunConfig, work: Work) -> None:
    """Turn ``work`` into a study's: check that the axis can derive every task's data and that no pipeline reads
    files the axis does not change, then replace each data set spec by its derived specs (one per point and
    seed; one per seed for an axis that fits once), points in order, then seeds."""
    from benchsuite.studies.derived import make_spec

    study = cfg.study
    assert study is not None
    axis = get_axis(study.axis)
    points = axis.points(study.values if study.values is not None else axis.default_values(cfg.profile))
    if not 0 <= study.work_floor <= 1:
        raise ConfigError(f"--work-floor must be between 0 (epochs per point) and 1 (equal steps), got "
                          f"{study.work_floor}")
    for task in list(work.tasks):
        missing = sorted(get_task(task).needs - axis.supports)
        if not missing:
            continue
        if cfg.tasks is not None:
            raise ConfigError(f"the {axis.name} axis cannot derive data for task {task} (it needs "
                              f"{', '.join(missing)}; the axis derives {', '.join(sorted(axis.supports))}); leave "
                              f"the task out (--tasks)")
        log.info("study %s: leaving task %s out (it needs %s, which the axis does not derive)", axis.name, task,
                 ", ".join(missing))
        work.tasks.remove(task)
    if axis.changes_pixels:
        readers = sorted(pid for pid, cls in work.classes.items() if tuple(getattr(cls, "consumes", ())))
        if readers and cfg.pipelines:
            raise ConfigError(f"the {axis.name} axis changes the images in memory, but {', '.join(readers)} "
                              f"read{'s' if len(readers) == 1 else ''} another pipeline's output cached by image "
                              f"file (Pipeline.consumes), which would be of the unchanged images; leave "
                              f"{'it' if len(readers) == 1 else 'them'} out (--exclude)")
        if readers:
            log.info("study %s: leaving %s out (they read another pipeline's output cached by image file, which "
                     "would be of the unchanged images)", axis.name, ", ".join(readers))
            for task in work.tasks:
                work.pipelines[task] = [p for p in work.pipelines[task] if p.id not in readers]
    work.tasks = [t for t in work.tasks if work.pipelines.get(t)]
    if not work.tasks:
        raise ConfigError(f"study {axis.name}: nothing to run: no task and pipeline the axis can derive data for")
    plan = Study(axis, points, float(study.work_floor))
    groups = [points] if axis.one_fit else [[p] for p in points]
    for task in work.tasks:
        derived = []
        for base in work.specs[task]:
            for group in groups:
                for seed in cfg.seeds:
                    spec = make_spec(axis.name, group, seed, base)
                    plan.derived[spec] = (base, group, seed)
                    derived.append(spec)
        work.specs[task] = derived
    work.study = plan


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
    """Each data set spec of the run, opened once for the annotations its tasks need (``synthetic_only``: the
    profile's stand-ins), by :func:`benchsuite.data.datasets.dataset_key` (a VOC folder's boxes and masks are
    two data sets); a study's derived data sets share their base, opened once."""
    from benchsuite.studies.derived import derive

    datasets: dict[str, Dataset] = {}
    bases: dict[str, Dataset] = {}
    for task in work.tasks:
        needs = get_task(task).needs
        for spec in work.specs[task]:
            key = dataset_key(spec, needs)
            if key in datasets:
                continue
            derived = work.study.derived.get(spec) if work.study is not None else None
            base_spec = derived[0] if derived else spec
            base_key = dataset_key(base_spec, needs)
            if base_key not in bases:
                log.info("opening data set %s", base_key)
                bases[base_key] = open_dataset(base_spec, cfg.data_root, cfg.cache_dir, force_synthetic=synthetic_only,
                                               download=cfg.download, needs=needs)
            datasets[key] = (derive(bases[base_key], base_spec, work.study.axis, derived[1], derived[2])
                             if derived and work.study is not None else bases[base_key])
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


def plan_threads(cfg: RunConfig) -> int:
    """Threads per job on this machine: ``--threads-per-job``, else its cores over ``--jobs`` (at least 1)."""
    return cfg.threads_per_job or max(1, (os.cpu_count() or 1) // cfg.jobs)


def make_jobs(cfg: RunConfig, work: Work, datasets: dict[str, Dataset], profile: Profile, device: str,
              run_id: str, jobs_root: Path) -> list[JobSpec]:
    """Every job of the run, producers before their consumers (:func:`benchsuite.runner.dependencies.order_jobs`).

    Each job gets ``--threads-per-job`` threads (default ``cores // --jobs``), a memory limit
    (``--memory-limit-mb``, else 90% of the RAM over ``--jobs``), its folder ``jobs_root / job_id`` and, for a
    pipeline that consumes another one's output, the run's job of that pipeline on the same data set
    (``JobSpec.consumes``).
    """
    threads = plan_threads(cfg)
    memory_limit = cfg.memory_limit_mb or psutil.virtual_memory().total / 2**20 * 0.9 / cfg.jobs
    jobs: list[JobSpec] = []
    ids: list[tuple[str, str]] = []
    for task in work.tasks:
        budget = profile.budget(task)
        if cfg.time_budget_s is not None:  # opt-in time-boxed training: shortened records say so
            budget = replace(budget, train_time_s=float(cfg.time_budget_s))
        for spec in work.specs[task]:
            opened = datasets[dataset_key(spec, get_task(task).needs)]
            info = opened.info
            derived = work.study.derived.get(spec) if work.study is not None else None
            seeds = [derived[2]] if derived else cfg.seeds
            eval_splits = (opened.eval_splits(list(cfg.eval_splits))  # type: ignore[attr-defined]
                           if derived else list(cfg.eval_splits))
            for p in work.pipelines[task]:
                params = {**profile_params(p, profile.name), **cfg.params.get(p.id, {})}
                study: dict[str, Any] | None = None
                if derived and work.study is not None:
                    params, study = study_work(work, work.classes[p.id], params, derived[1], budget.max_train_images,
                                               opened)
                for seed in seeds:
                    job_id = make_job_id(task, info.name, p.id, seed)
                    ids.append((job_id, f"{task} {p.id} seed {seed} on data set {spec!r} ({info.root})"))
                    jobs.append(JobSpec(
                        run_id=run_id, job_id=job_id, task=task, dataset_spec=spec, dataset=info.name,
                        dataset_fingerprint=info.fingerprint, origin=info.origin, pipeline=p.id,
                        pipeline_ref=p.ref, family=p.family, pretrained_reference=p.pretrained_reference,
                        seed=seed, device=device_for_pipeline(device, p.devices), profile=profile.name,
                        budget={**budget.__dict__, "extra": dict(budget.extra)}, params=dict(params),
                        eval_splits=list(eval_splits), data_root=str(cfg.data_root),
                        cache_dir=str(cfg.cache_dir), job_dir=str(jobs_root / job_id), num_threads=threads,
                        latency_images=profile.latency_images, latency_warmup=profile.latency_warmup,
                        time_limit_s=cfg.time_limit_s or budget.time_limit_s, memory_limit_mb=memory_limit,
                        shared_machine=cfg.jobs > 1, weights=cfg.weights, download=cfg.download,
                        progress=cfg.jobs == 1 and sys.stderr.isatty(), study=study,
                    ))
    check_unique_job_ids(ids)
    by_id = {job.job_id: job for job in jobs}
    for job in jobs:
        consumes = tuple(getattr(work.classes[job.pipeline], "consumes", ()))
        if consumes:
            job.consumes = producer_jobs(job, consumes, jobs)
            for producer in job.consumes.values():
                if producer is not None and producer != job.job_id:
                    add_consumer(by_id[producer], job)
    return order_jobs(jobs)


def add_consumer(producer: JobSpec, consumer: JobSpec) -> None:
    """Note on ``producer`` that ``consumer`` reads its output, with the train and val loads of the consumer (its
    budget's ``max_train_images`` and ``max_val_images``), which the producer proposes for
    (:func:`benchsuite.proposal_cache.produce_for_consumers`)."""
    producer.consumers.append(consumer.job_id)
    for split, key in (("train", "max_train_images"), ("val", "max_val_images")):
        load = [split, consumer.budget.get(key)]
        if load not in producer.consumer_loads:
            producer.consumer_loads.append(load)


def study_work(work: Work, cls: type, params: dict[str, Any], points: list[Point], max_train_images: int | None,
               dataset: Dataset) -> tuple[dict[str, Any], dict[str, Any]]:
    """A study job's parameters (the axis's work rule at its point, :meth:`benchsuite.studies.axes.Axis.work`) and
    its ``study`` block: the axis, the point (none for an axis that fits once: each split is a point) and what
    the work rule changed."""
    from benchsuite.params import constructor_parameters

    assert work.study is not None
    axis = work.study.axis
    block: dict[str, Any] = {"axis": axis.name, "work_floor": work.study.work_floor}
    if axis.one_fit:
        return params, {**block, "points": [p.text for p in points]}
    full = dataset.base.info.split_counts.get("train")  # type: ignore[attr-defined]  (a DerivedDataset's base)
    if full is not None and max_train_images is not None:
        full = min(full, max_train_images)
    params, changed = axis.work(params, points[0], work.study.work_floor, full, constructor_parameters(cls))
    return params, {**block, "point": points[0].text, **({"work": changed} if changed else {})}


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
    """The constructor parameters a pipeline class declares for ``profile`` (``profile_params``), as a job passes
    them (:func:`benchsuite.params.passed_params`); a name its constructor lacks, or a value of another type, is
    refused before any job starts."""
    from benchsuite.params import constructor_parameters, passed_params
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
    return passed_params(info.id, cls, params)
