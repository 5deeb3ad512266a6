"""The shape of ``run.json``: what each key a run writes holds, checked field by field before anything reads it.

``run.json`` is written by :mod:`benchsuite.runner.run_folder` and read by ``--resume``, the report, ``compare`` and
``export``; a run folder may come from anywhere, so a reader checks it first (:func:`run_info_problems`: one line
per key of the wrong type, naming it). Keys the shapes below do not name are allowed; every key is optional except
``run_id`` (a file of an older version lacks some).
"""

from __future__ import annotations

from typing import Any, TypedDict

from benchsuite.results.schema import shape_problems


class MachineInfo(TypedDict, total=False):
    """``machine``: where the run started (:func:`benchsuite.results.provenance.machine_info`)."""

    hostname: str | None
    platform: str | None
    cpu: str | None
    cores: int | None
    memory_gb: float | None
    gpu: dict[str, Any] | None


class GitInfo(TypedDict, total=False):
    """``git``: the suite's checkout: its commit, whether tracked files differ from it and the digest of that
    difference (``diff_sha256``: two dirty checkouts of one commit hold the same code only when it is equal)."""

    commit: str | None
    dirty: bool | None
    diff_sha256: str | None


def _dataset_entry() -> Any:
    """One of ``datasets``: an opened data set's provenance, the fields of
    :class:`benchsuite.data.datasets.DatasetInfo` (each optional in a file)."""
    from typing import get_type_hints

    from benchsuite.data.datasets import DatasetInfo

    return TypedDict("DatasetEntry", get_type_hints(DatasetInfo), total=False)  # type: ignore[operator]


DatasetEntry = _dataset_entry()


class ConfigInfo(TypedDict, total=False):
    """``config``: the options of the session that created the run."""

    tasks: list[str] | None
    datasets: list[str] | None
    pipelines: list[str] | None
    exclude: list[str]
    seeds: list[int]
    device_requested: str
    device: str
    jobs: int
    eval_splits: list[str]
    data_root: str
    params: dict[str, dict[str, Any]]
    weights: str | None
    download: bool


class PipelineEntry(TypedDict, total=False):
    """One of ``pipelines``: the class registered under a pipeline id of the run (module, class, distribution and
    its version; ``overrides`` the built-in it replaced, when one was replaced on purpose)."""

    module: str
    qualname: str
    distribution: str | None
    version: str | None
    overrides: str | None


class ChangeEntry(TypedDict, total=False):
    """One of ``changes``: a session resumed with ``--allow-changed``: when, and what differed (one line each)."""

    at: str
    differences: list[str]


class _Required(TypedDict):
    run_id: str


class RunInfo(_Required, total=False):
    """``run.json``."""

    created_at: str
    argv: list[str]
    profile: str
    config: ConfigInfo
    machine: MachineInfo
    machine_state: dict[str, Any] | None
    time_budget_s: float | None
    versions: dict[str, str | None]
    git: GitInfo
    datasets: list[DatasetEntry]
    executor: dict[str, Any]
    resumed_at: list[str]
    resumed_executors: list[dict[str, Any]]
    pipelines: dict[str, PipelineEntry]
    changes: list[ChangeEntry]
    data_findings: list[str]


def run_info_problems(info: Any) -> list[str]:
    """Every way ``info`` (a parsed ``run.json``) differs from :class:`RunInfo`, one line each naming the key."""
    return shape_problems(info, RunInfo, "")
