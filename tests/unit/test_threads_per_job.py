"""``--threads-per-job``: each job's thread count, by default the cores over ``--jobs``. The float arithmetic of
torch and of the SVM solver splits its sums by thread, so runs with different ``--jobs`` give identical records
only when their threads per job are the same."""

from __future__ import annotations

import os

import pytest

from benchsuite.errors import ConfigError
from benchsuite.runner.run import RunConfig, Runner, run


def _cfg(tmp_path, cache_dir, pipelines=("nn-l1",), **kw) -> RunConfig:
    return RunConfig(profile="smoke", tasks=["classification"], pipelines=list(pipelines), device="cpu",
                     out=tmp_path / "run", cache_dir=cache_dir, data_root=tmp_path / "none", write_report=False,
                     **kw)


@pytest.mark.parametrize(("jobs", "threads_per_job", "expected"), [
    (1, None, os.cpu_count() or 1), (2, None, max(1, (os.cpu_count() or 1) // 2)), (2, 3, 3), (1, 1, 1)])
def test_each_job_gets_the_threads_asked_else_the_cores_over_jobs(tmp_path, cache_dir, jobs, threads_per_job,
                                                                   expected):
    plan = Runner(_cfg(tmp_path, cache_dir, jobs=jobs, threads_per_job=threads_per_job)).plan()
    assert {j.num_threads for j in plan.jobs} == {expected}


def test_a_thread_count_under_one_is_refused(tmp_path, cache_dir):
    with pytest.raises(ConfigError, match="--threads-per-job must be at least 1, got 0"):
        Runner(_cfg(tmp_path, cache_dir, threads_per_job=0)).plan()


def test_two_jobs_at_a_time_with_one_thread_each_give_the_records_of_one_at_a_time(tmp_path, cache_dir):
    # hog-svm: its float32 SVM solve is the arithmetic that moves with the thread count (README, reproducible numbers)
    one = run(_cfg(tmp_path / "a", cache_dir, ("hog-svm",), jobs=1, threads_per_job=1)).records
    two = run(_cfg(tmp_path / "b", cache_dir, ("hog-svm",), jobs=2, threads_per_job=1)).records
    by_job = {r["job_id"]: r for r in two}
    assert len(one) == len(two) == 1
    for r in one:
        other = by_job[r["job_id"]]
        assert r["status"] == other["status"] == "ok", (r["error"], other["error"])
        assert r["metrics"] == other["metrics"] and r["fit_info"] == other["fit_info"]
        assert r["timing"]["fit"]["threads"] == other["timing"]["fit"]["threads"] == 1
