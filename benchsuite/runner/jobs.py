"""One job: a (task, data set, pipeline, seed) combination, as handed to a worker process."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchsuite.results.atomic import atomic_write_json


def make_job_id(task: str, dataset: str, pipeline: str, seed: int) -> str:
    """A file-system-safe id, stable across runs: ``classification--cifar10--nn-l1--s0``."""
    raw = f"{task}--{dataset}--{pipeline}--s{seed}"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", raw)


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
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return Path(self.job_dir) / "job.json"

    def write(self) -> Path:
        atomic_write_json(self.path, asdict(self))
        return self.path

    @classmethod
    def read(cls, path: Path) -> JobSpec:
        return cls(**json.loads(Path(path).read_text()))
