"""``--resume``: which planned jobs an earlier session already recorded, and whether this session may continue
that run at all: a resumed run never mixes configurations silently.

:func:`config_differences` compares what decides a job's result in this session with what ``run.json`` says the
run used: the profile, the scored splits, the device, the weights, the time budget, each pipeline's ``--param``
values, the threads per job (they decide torch's and the SVM's float sums) and the class registered under its
id (module, class, distribution and version), the code (git commit,
whether the checkout had changes and their digest), the library versions, and each data set's content and split
fingerprints. Adding pipelines, data sets or seeds is no difference (new jobs, same settings). A difference is
refused with the list of what differs (:func:`check_resume`), unless ``--allow-changed``: then the change is
recorded in ``run.json`` (``changes``) and on every record of the session (``config_changed``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from benchsuite.data.datasets import dataset_key
from benchsuite.errors import ConfigError
from benchsuite.results.store import RunStore
from benchsuite.runner.plan import Plan

#: the option that continues a run whose configuration changed, recording the change
ALLOW_CHANGED = "--allow-changed"


def skip_recorded(plan: Plan, store: RunStore, retry_failed: bool) -> None:
    """Move the jobs of ``plan`` that have a record in ``store`` from ``plan.jobs`` to ``plan.skipped``.

    A job recorded ok is skipped; a failed one too, unless ``retry_failed`` or its failure was not the
    pipeline's doing (killed, interrupted: :func:`benchsuite.results.store.rerun_on_resume`). Call it once the
    run folder is locked and repaired (:meth:`RunStore.repair`): the records it reads are then the ones that stay.
    """
    done = store.recorded_jobs(include_failed=not retry_failed)
    plan.skipped += [j.job_id for j in plan.jobs if j.job_id in done]
    plan.jobs = [j for j in plan.jobs if j.job_id not in done]


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _changed(what: str, old: Any, new: Any) -> str | None:
    return None if old == new else f"{what}: {_show(old)} -> {_show(new)}"


def config_differences(old: Mapping[str, Any], new: Mapping[str, Any], old_pipelines: set[str]) -> list[str]:
    """What differs between ``old`` (the run's ``run.json``) and ``new`` (this session's, as
    :func:`benchsuite.runner.run_folder.run_info` would write it), one line each. ``old_pipelines``: the pipeline
    ids the run already has (their parameters and classes must match; a pipeline new to the run brings its own).
    A key an older ``run.json`` lacks is not compared."""
    out: list[str] = []

    def add(line: str | None) -> None:
        if line:
            out.append(line)

    if "profile" in old:
        add(_changed("profile", old.get("profile"), new.get("profile")))
    old_cfg, new_cfg = old.get("config") or {}, new.get("config") or {}
    for key, what in (("eval_splits", "scored splits (--splits)"), ("device", "device"), ("weights", "--weights"),
                      ("threads_per_job", "threads per job (--jobs, --threads-per-job)")):
        if key in old_cfg:
            add(_changed(what, old_cfg.get(key), new_cfg.get(key)))
    if "time_budget_s" in old:
        add(_changed("--time-budget", old.get("time_budget_s"), new.get("time_budget_s")))
    old_params, new_params = old_cfg.get("params") or {}, new_cfg.get("params") or {}
    old_classes, new_classes = old.get("pipelines") or {}, new.get("pipelines") or {}
    for pid in sorted(set(new_classes) | set(new_params)):
        if pid not in old_pipelines:
            continue
        add(_changed(f"--param values of {pid}", old_params.get(pid, {}), new_params.get(pid, {})))
        if pid in old_classes and pid in new_classes:
            add(_changed(f"the class registered as {pid}", _class_text(old_classes[pid]),
                         _class_text(new_classes[pid])))
    old_git, new_git = old.get("git") or {}, new.get("git") or {}
    if old_git.get("commit") is not None or new_git.get("commit") is not None:
        add(_changed("code commit", old_git.get("commit"), new_git.get("commit")))
        if old_git.get("commit") == new_git.get("commit"):
            add(_changed("uncommitted changes in the checkout", _dirt(old_git), _dirt(new_git)))
    old_versions, new_versions = old.get("versions") or {}, new.get("versions") or {}
    for lib in sorted(set(old_versions) & set(new_versions)):
        add(_changed(f"{lib} version", old_versions.get(lib), new_versions.get(lib)))
    def key(d: Mapping[str, Any]) -> str:  # a VOC folder's boxes and masks are two data sets of one name
        return dataset_key(str(d.get("name")), d.get("annotations") or ())

    new_sets = {key(d): d for d in new.get("datasets") or []}
    for entry in old.get("datasets") or []:
        now = new_sets.get(key(entry))
        if now is None:
            continue
        add(_changed(f"data set {entry.get('name')} content (fingerprint)", entry.get("fingerprint"),
                     now.get("fingerprint")))
        if "split_fingerprints" in entry:
            add(_changed(f"data set {entry.get('name')} splits (split fingerprints)", entry.get("split_fingerprints"),
                         now.get("split_fingerprints")))
    return out


def _class_text(entry: Any) -> str:
    if not isinstance(entry, Mapping):
        return str(entry)
    dist = entry.get("distribution")
    return f"{entry.get('module')}:{entry.get('qualname')}" + (f" ({dist} {entry.get('version')})" if dist else "")


def _dirt(git: Mapping[str, Any]) -> str:
    if not git.get("dirty"):
        return "none"
    return f"changes with digest {str(git.get('diff_sha256') or '?')[:12]}"


def check_resume(store: RunStore, old: Mapping[str, Any], new: Mapping[str, Any], allow_changed: bool) -> list[str]:
    """The differences between the run in ``store`` (its ``run.json``, ``old``) and this session (``new``): refused
    with a ConfigError listing them unless ``allow_changed``; returned (empty when none) so that the session
    records them."""
    old_pipelines = set(old.get("pipelines") or {}) | {r["pipeline"] for r in store.records()}
    differences = config_differences(old, new, old_pipelines)
    if differences and not allow_changed:
        listed = "; ".join(differences[:12]) + (f"; and {len(differences) - 12} more" if len(differences) > 12 else "")
        raise ConfigError(f"cannot resume {store.run_dir}: this session's configuration differs from the run's "
                          f"({listed}). Its records would mix two configurations: rerun with the run's settings, "
                          f"start a new run (another --out), or add {ALLOW_CHANGED} to continue and mark the change "
                          f"in run.json and on this session's records")
    return differences
