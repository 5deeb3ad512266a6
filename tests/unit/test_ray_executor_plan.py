"""The Ray executor's planning (no cluster needed): task resources, option checks, the clear failure of a job
whose node sees other data than the driver (issue 15) and the shipping of a producer's cache entries. The job
order both executors share is tested in ``test_job_dependencies.py``."""

from __future__ import annotations

from dataclasses import replace

import pytest

from benchsuite.cli import main
from benchsuite.runner.execute import run_job_dir
from benchsuite.runner.jobs import JobSpec
from benchsuite.runner.ray_executor import RAY_MAX_RETRIES, task_options
from benchsuite.runner.run import RunConfig, Runner

REFS = {
    "selective-search": "pipelines.classical.selective_search:SelectiveSearch",
    "null-proposer": "pipelines.reference.null:NullProposer",
    "ss-hog-svm": "pipelines.classical.ss_hog_svm:SelectiveSearchHogSVM",
    "rcnn": "pipelines.deep.rcnn:RCNN",
    "mean-box": "pipelines.reference.mean_box:MeanBoxDetector",
}


def _job(task: str, pipeline: str, dataset: str = "synthetic-voc", seed: int = 0, **kw) -> JobSpec:
    fields = dict(run_id="r", job_id=f"{task}--{dataset}--{pipeline}--s{seed}", task=task, dataset_spec=dataset,
                  dataset=dataset, dataset_fingerprint="f", origin="synthetic", pipeline=pipeline,
                  pipeline_ref=REFS[pipeline], family="classical", pretrained_reference=False, seed=seed,
                  device="cpu", profile="smoke", budget={}, params={}, eval_splits=["test"], data_root="data",
                  cache_dir="cache", job_dir="jobs", num_threads=1, latency_images=0, latency_warmup=0,
                  time_limit_s=60.0, memory_limit_mb=None, shared_machine=False)
    fields.update(kw)
    return JobSpec(**fields)


def test_a_job_asks_ray_for_its_threads_a_gpu_only_on_cuda_and_its_memory_limit():
    cpu = task_options(_job("detection", "mean-box", num_threads=3))
    assert cpu["num_cpus"] == 3 and "num_gpus" not in cpu and "memory" not in cpu
    assert cpu["max_retries"] == RAY_MAX_RETRIES == 2
    deep = task_options(_job("detection", "rcnn", family="deep", device="cuda", memory_limit_mb=2048.0))
    assert deep["num_gpus"] == 1 and deep["memory"] == 2048 * 2**20


@pytest.mark.parametrize(("argv", "message"), [
    (["run", "--executor", "dask"], "unknown executor 'dask'; expected one of: local, ray"),
    (["run", "--ray-address", "head:6379"], "--ray-address 'head:6379' needs --executor ray"),
])
def test_executor_options_are_checked_before_anything_runs(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([*argv, "--profile", "smoke", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


@pytest.mark.slow
def test_a_node_that_sees_other_data_fails_its_job_with_a_clear_message(tmp_path, cache_dir):
    """The driver sends its data fingerprint with the job; the job's worker compares it on the node."""
    config = RunConfig(profile="smoke", tasks=["classification"], pipelines=["null-classifier"], device="cpu",
                       out=tmp_path / "run", cache_dir=cache_dir, data_root=tmp_path / "no-data")
    [job] = Runner(config).plan().jobs
    elsewhere = replace(job, dataset_fingerprint="0123456789abcdef", job_dir=str(tmp_path / "node-job"),
                        extra={"node": "node-b (abcdef12)"})
    result = run_job_dir(elsewhere)
    assert (result["status"], result["failure"]) == ("failed", "data")
    assert "on node node-b (abcdef12) has fingerprint" in result["error"]
    assert "the driver's has 0123456789abcdef" in result["error"] and "same path" in result["error"]
    local = run_job_dir(replace(job, job_dir=str(tmp_path / "local-job")))  # the real fingerprint: runs
    assert local["status"] == "ok", local.get("error")


def test_the_proposals_a_producer_wrote_are_installed_in_another_nodes_cache(tmp_path):
    """A producer's node ships the proposal-cache entries its job wrote; the waiting job's node installs them
    (keeping its own, refusing paths outside the cache)."""
    import os
    import time

    import numpy as np

    from benchsuite.runner.ray_executor import install_proposals, new_proposals

    here, there = tmp_path / "node-a", tmp_path / "node-b"
    old = here / "proposals" / "selective-search-0123" / "old.npy"
    old.parent.mkdir(parents=True)
    np.save(old, np.zeros((1, 4), np.float32))
    os.utime(old, ns=(time.time_ns() - 10**10, time.time_ns() - 10**10))  # written before the job
    since = time.time_ns() - 10**9
    boxes = np.arange(8, dtype=np.float32).reshape(2, 4)
    np.save(here / "proposals" / "selective-search-0123" / "abc.npy", boxes)
    (here / "proposals" / "files").mkdir()
    (here / "proposals" / "files" / "k.txt").write_text("abc")  # path-keyed: means nothing on another node
    entries = new_proposals(here, since)
    assert [rel for rel, _ in entries] == ["selective-search-0123/abc.npy"]
    kept = there / "proposals" / "selective-search-0123" / "kept.npy"
    kept.parent.mkdir(parents=True)
    kept.write_bytes(b"mine")
    written = install_proposals(there, [*entries, ("selective-search-0123/kept.npy", b"theirs"),
                                        ("../escape.npy", b"x")])
    assert written == 1 and kept.read_bytes() == b"mine" and not (there / "escape.npy").exists()
    assert np.array_equal(np.load(there / "proposals" / "selective-search-0123" / "abc.npy"), boxes)
