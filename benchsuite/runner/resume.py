"""``--resume``: which planned jobs an earlier session already recorded, and whether this session may continue
that run at all (the same profile, the same data)."""

from __future__ import annotations

from benchsuite.errors import ConfigError
from benchsuite.results.store import RunStore
from benchsuite.runner.plan import Plan


def skip_recorded(plan: Plan, store: RunStore, retry_failed: bool) -> None:
    """Move the jobs of ``plan`` that have a record in ``store`` from ``plan.jobs`` to ``plan.skipped``.

    A job recorded ok is skipped; a failed one too, unless ``retry_failed`` or its failure was not the
    pipeline's doing (killed, interrupted: :func:`benchsuite.results.store.rerun_on_resume`). Call it again
    once the run folder is locked: another session may have recorded jobs since the plan was made.
    """
    done = store.recorded_jobs(include_failed=not retry_failed)
    plan.skipped += [j.job_id for j in plan.jobs if j.job_id in done]
    plan.jobs = [j for j in plan.jobs if j.job_id not in done]


def check_resume(store: RunStore, plan: Plan, profile: str) -> None:
    """Refuse to continue the run in ``store`` with a different profile or with a data set whose fingerprint
    changed (its records would mix two configurations)."""
    old = store.read_run_info()
    old_fp = {d["name"]: d["fingerprint"] for d in old.get("datasets", [])}
    for ds in plan.datasets.values():
        fp = old_fp.get(ds.info.name)
        if fp is not None and fp != ds.info.fingerprint:
            raise ConfigError(f"cannot resume {store.run_dir}: data set {ds.info.name} changed "
                              f"(fingerprint {ds.info.fingerprint}, the run used {fp})")
    if old.get("profile") != profile:
        raise ConfigError(f"cannot resume {store.run_dir}: it ran profile {old.get('profile')!r}, "
                          f"not {profile!r}")
