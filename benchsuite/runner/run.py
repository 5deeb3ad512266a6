"""A benchmark run: plan the jobs, run each in its own process, score and record them, report.

Each (task, data set, pipeline, seed) is one job. Jobs run in worker processes so that a pipeline that
raises, hangs or exhausts memory becomes a failed record while the rest of the run goes on. The parent
scores the predictions a worker saved, appends one record per evaluated split to ``records.jsonl`` and,
at the end, writes ``summary.csv`` and the report. ``--resume`` skips jobs that already have records.

:class:`Runner` puts the steps together; each step has its module:

- :mod:`benchsuite.runner.config`: the options (:class:`RunConfig`) and their checks;
- :mod:`benchsuite.runner.plan`: tasks, pipelines, data sets and the ordered jobs
  (:mod:`benchsuite.runner.dependencies`: producers before consumers);
- :mod:`benchsuite.runner.run_folder`: the run folder and ``run.json`` (provenance);
- :mod:`benchsuite.runner.resume`: what ``--resume`` skips and when it refuses;
- :mod:`benchsuite.runner.dispatch`: the jobs to an executor (:mod:`benchsuite.runner.execute` on this
  machine, :mod:`benchsuite.runner.ray_executor` on a cluster);
- :mod:`benchsuite.runner.records`: a finished job's records.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchsuite.data.datasets import dataset_key
from benchsuite.device import resolve_device
from benchsuite.errors import BenchsuiteError
from benchsuite.profiles import get_profile
from benchsuite.results.store import RunLock, RunStore, StorageError, storage_error
from benchsuite.runner import resume
from benchsuite.runner.config import RunConfig, default_cache_dir
from benchsuite.runner.data_checks import check_run_data
from benchsuite.runner.dispatch import execute_plan
from benchsuite.runner.execute import DeferredInterrupt, local_executor_info
from benchsuite.runner.jobs import JobSpec
from benchsuite.runner.plan import Plan, choose_work, make_jobs, name_datasets, open_datasets, plan_threads
from benchsuite.runner.records import record_job
from benchsuite.runner.run_folder import choose_run_folder, resumed_run_info, run_info
from benchsuite.tasks.registry import get_task

__all__ = ["Plan", "RunConfig", "RunResult", "Runner", "default_cache_dir", "run"]

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What a run left: its folder, its records (the latest of each job and split) and the report's files."""

    run_dir: Path
    records: list[dict[str, Any]]
    report_path: Path | None
    html_path: Path | None = None


class Runner:
    """One run of ``config``: :meth:`plan` (nothing started, nothing written), then :meth:`run`."""

    def __init__(self, config: RunConfig):
        self.config = config
        self.profile = get_profile(config.profile)
        # --executor ray: the device is resolved against the cluster's GPUs once it is connected (plan)
        self.device = resolve_device(config.device) if config.executor != "ray" else config.device
        self.cluster: Any = None  # the RayCluster of an --executor ray run, connected by plan()
        self._signal_name: str | None = None  # a signal that came while the run folder was set up
        self.data_findings: list[str] = []  # the data warnings found at planning (benchsuite.data.sanity)

    def plan(self) -> Plan:
        """Check the options, choose the work, open the data sets and plan the jobs in order (an
        ``--executor ray`` run connects to its cluster here: the jobs' device is the cluster's)."""
        cfg = self.config
        work = choose_work(cfg)
        if cfg.executor == "ray" and self.cluster is None:
            from benchsuite.runner.ray_executor import RayCluster

            self.cluster = RayCluster.connect(cfg.ray_address)
            self.device = self.cluster.resolve_device(cfg.device)
        datasets = open_datasets(cfg, work, self.profile.synthetic_only)
        run_dir, run_id = choose_run_folder(cfg)
        store = RunStore(run_dir)
        name_datasets(datasets, store.read_run_info().get("datasets", []) if cfg.resume else [])
        jobs = make_jobs(cfg, work, datasets, self.profile, self.device, run_id, run_dir / "jobs")
        # before any job starts: data that would fail every job or mislead the report (benchsuite.data.sanity)
        self.data_findings = check_run_data(jobs, datasets, self.profile, cfg.eval_splits, cfg.cache_dir)
        return Plan(run_dir, run_id, datasets, jobs, [])  # what --resume skips: once the folder is locked

    def run(self) -> RunResult:
        """Plan, then run every job and record it, then write the summary and the report."""
        with DeferredInterrupt() as interrupt:  # a Ctrl-C while planning stops before any job starts
            try:
                plan = self.plan()
                interrupt.check("while planning, before any job started; nothing was run")
                return self._run_planned(plan, interrupt)
            finally:
                if self.cluster is not None:  # --executor ray: disconnect (and stop a Ray started for the run)
                    self.cluster.close()
                    self.cluster = None

    def _run_planned(self, plan: Plan, interrupt: DeferredInterrupt) -> RunResult:
        store = RunStore(plan.run_dir)
        lock = RunLock(plan.run_dir)
        try:
            plan.run_dir.mkdir(parents=True, exist_ok=True)
            lock.acquire()
        except OSError as exc:
            raise storage_error(exc, where=plan.run_dir) from None
        try:
            return self._run_locked(plan, store, interrupt)
        except OSError as exc:
            raise _storage_failure(exc, store) from None
        finally:
            lock.release()

    def _run_locked(self, plan: Plan, store: RunStore, interrupt: DeferredInterrupt) -> RunResult:
        """:meth:`run` once this process holds the run folder's lock."""
        store.repair()  # before the records are read: what --resume skips is what stays
        executor = self.cluster.info() if self.cluster is not None else local_executor_info()
        session = run_info(self.config, plan, self.profile.name, self.device, executor)
        session["data_findings"] = list(self.data_findings)
        # each job's threads decide its float sums (torch's, the SVM's), so a resumed run must keep them
        session["config"]["threads_per_job"] = (
            self.config.threads_per_job or (self.cluster.threads_per_job(self.config.jobs) if self.cluster is not None
                                            else plan_threads(self.config)))
        changed: list[str] | None = None
        if self.config.resume:
            old = store.read_run_info()
            changed = resume.check_resume(store, old, session, self.config.allow_changed) or None
            if changed:
                log.warning("resume with %s: this session differs from the run (%s); recorded in run.json and on "
                            "this session's records", resume.ALLOW_CHANGED, "; ".join(changed))
            resume.skip_recorded(plan, store, self.config.retry_failed)
            store.write_run_info(resumed_run_info(old, plan, executor, session, changed))
        else:
            store.write_run_info(session)
        for ds in plan.datasets.values():
            ds.write_manifest(plan.run_dir / "splits")
        for ds in plan.datasets.values():
            log.info("data: %s: %s", ds.info.name, ds.info.description)
        if plan.skipped:
            log.info("resume: %d job(s) already recorded, skipped", len(plan.skipped))
        log.info("run %s: %d job(s) -> %s", plan.run_id, len(plan.jobs), plan.run_dir)

        def finish(job: JobSpec, result: dict[str, Any]) -> None:
            key = dataset_key(job.dataset_spec, get_task(job.task).needs)
            record_job(plan.run_id, plan.datasets[key], store, job, result, config_changed=changed)

        execute_plan(plan, store, self.config, self.cluster, finish, interrupt.signal_name)
        store.write_summary()
        return RunResult(plan.run_dir, store.records(), *self._report(plan.run_dir))

    def _report(self, run_dir: Path) -> tuple[Path | None, Path | None]:
        """Write the report (unless the run was asked not to): ``(report.md, report.html)``, None when not
        written. A failed report leaves the records as they are."""
        if not self.config.write_report:
            return None, None
        from benchsuite.report.markdown import write_report

        try:
            paths = write_report(run_dir)
            return paths.markdown, paths.html
        except OSError as exc:  # a full or read-only disk: the run's rule, one line and exit status 2
            err = storage_error(exc, where=run_dir)
            raise StorageError(f"{err}; the records are kept in {run_dir / 'records.jsonl'}; free space, then write "
                               f"the report with `benchsuite report {run_dir}`") from None
        except BenchsuiteError:  # a run folder changed under the run (one line, exit status 2)
            raise
        except Exception:  # the records are safe; the report can be rewritten with `benchsuite report`
            log.exception("writing the report failed; rerun `benchsuite report %s`", run_dir)
            return None, None


def _storage_failure(exc: OSError, store: RunStore) -> StorageError:
    """The one line for a run folder that could not be written, saying what was kept."""
    err = storage_error(exc, where=store.run_dir)
    try:
        kept = len(store.records(latest_only=False))
        what = f"kept: {kept} record(s) in {store.records_path}" if kept else "no record was written"
    except Exception:
        what = f"see {store.records_path}"
    return StorageError(f"{err}; {what}; free space or fix the folder, then add --resume")


def run(config: RunConfig) -> RunResult:
    """``Runner(config).run()``."""
    return Runner(config).run()
