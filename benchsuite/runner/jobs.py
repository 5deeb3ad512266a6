"""One job: a (task, data set, pipeline, seed) combination, as handed to a worker process."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchsuite.data.datasets import dataset_key
from benchsuite.errors import ConfigError
from benchsuite.results.atomic import atomic_write_json


def make_job_id(task: str, dataset: str, pipeline: str, seed: int) -> str:
    """A file-system-safe id, stable across runs: ``classification--cifar10--nn-l1--s0``."""
    raw = f"{task}--{dataset}--{pipeline}--s{seed}"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", raw)


def dataset_identity(root: str) -> str:
    """A data set's identity: its folder's resolved path (two folders with one base name differ)."""
    return os.path.realpath(str(root))


def unique_dataset_names(datasets: Mapping[str, Any], earlier: Iterable[Mapping[str, Any]] = ()) -> \
        dict[str, str]:
    """The name each opened data set (by spec) goes by in job ids, records and split manifests.

    A data set keeps its own name (``cifar10``, ``voc2007``, the base name of a ``voc:PATH`` folder) unless
    another data set of this run with the same annotations, or of an earlier session of a resumed run
    (``earlier``: the ``datasets`` of its ``run.json``), has that name for a different folder: then both get
    ``NAME-<6 hex of the folder's path>``, the same in every session. A name that an earlier session gave this very
    folder is kept. Data sets of other annotations may share a name (a VOC folder's boxes and masks, or the synthetic
    detection and segmentation stand-ins): they serve other tasks, so their job ids differ.
    """
    earlier_roots: dict[str, set[str]] = {}
    for entry in earlier:
        if entry.get("name") and entry.get("root"):
            key = dataset_key(str(entry["name"]), entry.get("annotations") or ())
            earlier_roots.setdefault(key, set()).add(dataset_identity(entry["root"]))
    def key_of(info: Any) -> str:
        return dataset_key(info.name, getattr(info, "annotations", ()))

    roots_by_key: dict[str, set[str]] = {}
    for ds in datasets.values():
        roots_by_key.setdefault(key_of(ds.info), set()).add(dataset_identity(ds.info.root))
    names = {}
    for spec, ds in datasets.items():
        name, root, key = ds.info.name, dataset_identity(ds.info.root), key_of(ds.info)
        if root in earlier_roots.get(key, set()):
            names[spec] = name
            continue
        clash = len(roots_by_key[key]) > 1 or bool(earlier_roots.get(key, set()) - {root})
        names[spec] = f"{name}-{hashlib.sha256(root.encode()).hexdigest()[:6]}" if clash else name
    return names


def check_unique_job_ids(jobs: Iterable[tuple[str, str]]) -> None:
    """Refuse a plan in which two jobs share an id (``jobs``: ``(job_id, description)`` pairs)."""
    seen: dict[str, str] = {}
    for job_id, what in jobs:
        if job_id in seen and seen[job_id] != what:
            raise ConfigError(f"job id {job_id!r} would be shared by {seen[job_id]} and {what}: their results "
                              f"would overwrite each other; give each data set once (two specs name the same "
                              f"data set) or rename one of the folders")
        seen[job_id] = what


@dataclass
class JobSpec:
    run_id: str
    job_id: str
    task: str
    dataset_spec: str
    dataset: str
    dataset_fingerprint: str
    origin: str
    pipeline: str
    pipeline_ref: str
    family: str
    pretrained_reference: bool
    seed: int
    device: str
    profile: str
    budget: dict[str, Any]
    params: dict[str, Any]
    eval_splits: list[str]
    data_root: str
    cache_dir: str
    job_dir: str
    num_threads: int
    latency_images: int
    latency_warmup: int
    time_limit_s: float
    memory_limit_mb: float | None
    shared_machine: bool
    weights: str | None = None
    download: bool = False
    progress: bool = False
    #: for each pipeline whose output this job's pipeline consumes (``Pipeline.consumes``): the run's job of it
    #: on the same data set, which finishes before this one starts, or None when the run has none
    consumes: dict[str, str | None] = field(default_factory=dict)
    #: the run's jobs that consume this job's output (the reverse of their ``consumes``): a proposer's job fills
    #: the cache with their train and val proposals once (:func:`benchsuite.proposal_cache.produce_for_consumers`)
    consumers: list[str] = field(default_factory=list)
    #: the ``[split, image cap]`` pairs those consumers load train and val with (their task's budget; None: every
    #: image), each once: the images the producer proposes for
    consumer_loads: list[list[Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    #: a study's job (``benchsuite study``): its axis, its point (its data set's name carries it too) and what the
    #: axis's work rule changed in its parameters; None for an ordinary job
    study: dict[str, Any] | None = None

    @property
    def path(self) -> Path:
        return Path(self.job_dir) / "job.json"

    def write(self) -> Path:
        atomic_write_json(self.path, asdict(self))
        return self.path

    @classmethod
    def read(cls, path: Path) -> JobSpec:
        return cls(**json.loads(Path(path).read_text()))
