"""Running a plan's jobs: hand them to the run's executor (worker processes on this machine, ``--jobs`` at a
time, or tasks on a Ray cluster) in the planned order, with producers finished before their consumers start
(:mod:`benchsuite.runner.dependencies`), and turn a SIGINT/SIGTERM into :class:`RunInterrupted` naming the jobs
``--resume`` will run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from benchsuite.results.store import RunStore
from benchsuite.runner.config import RunConfig
from benchsuite.runner.dependencies import prerequisites
from benchsuite.runner.execute import RunInterrupted, Supervisor, local_executor_info, run_job_dir, run_jobs
from benchsuite.runner.jobs import JobSpec
from benchsuite.runner.plan import Plan

#: ``finish(job, result)``: record a finished job (called in the main thread, one job at a time)
Finish = Callable[[JobSpec, dict[str, Any]], None]


def execute_plan(plan: Plan, store: RunStore, config: RunConfig, cluster: Any, finish: Finish,
                 signal_name: str | None = None) -> None:
    """Run ``plan.jobs`` on ``cluster`` (a :class:`benchsuite.runner.ray_executor.RayCluster`) or, when it is
    None, in local worker processes; ``finish`` records each finished job. ``signal_name``: a SIGINT/SIGTERM
    that came while the run folder was set up (no job starts then). On a signal the jobs that finished are
    kept and :class:`RunInterrupted` is raised."""
    if not plan.jobs:
        return
    with Supervisor() as supervisor:
        if signal_name:
            supervisor.signal_name = signal_name
            supervisor.stop.set()
        if cluster is not None:  # --executor ray: each job a Ray task (ray_executor)
            from benchsuite.runner.ray_executor import run_jobs_on_ray

            not_run = run_jobs_on_ray(cluster, plan.jobs, config, finish, supervisor)
        else:
            echo = config.jobs == 1
            not_run = run_jobs(plan.jobs, config.jobs, lambda job: run_locally(job, echo, supervisor), finish,
                               supervisor, after=prerequisites(plan.jobs))
    if supervisor.stop.is_set():
        raise _interrupted(plan, store, config, supervisor.signal_name, len(plan.jobs) - len(not_run))


def run_locally(job: JobSpec, echo: bool, supervisor: Supervisor | None) -> dict[str, Any]:
    """The local executor: the job's worker process on this machine (its folder in the run folder)."""
    result = run_job_dir(job, echo, supervisor)
    result.setdefault("executor", {"name": "local", "node": local_executor_info()["node"], "attempts": 1})
    return result


def _interrupted(plan: Plan, store: RunStore, config: RunConfig, signal_name: str | None, finished: int
                 ) -> RunInterrupted:
    """The interrupt's message: what was kept, and the jobs the same command with ``--resume`` runs."""
    store.write_summary()
    done = store.recorded_jobs(include_failed=not config.retry_failed)
    again = [j.job_id for j in plan.jobs if j.job_id not in done]
    shown = ", ".join(again[:12]) + (f" and {len(again) - 12} more" if len(again) > 12 else "")
    return RunInterrupted(
        f"interrupted ({signal_name}): {finished} job(s) of {len(plan.jobs)} finished and recorded "
        f"in {store.records_path}; --resume (the same command with --resume --out {plan.run_dir}) will run "
        f"{len(again)} job(s)" + (f": {shown}" if again else ""), again)
