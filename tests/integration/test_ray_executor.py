"""``--executor ray`` on a real local Ray cluster (issue 15): a head and a second node started by this module
on this machine (``ray.cluster_utils.Cluster``, one CPU and a small object store each), no mocks.

- a smoke run through the cluster gives the local executor's metrics, with each record naming its node;
- a node removed while a job runs on it loses no record: the job is retried elsewhere (``attempts`` 2);
- a driver killed mid-run is continued by ``--resume`` without redoing the finished jobs.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

from benchsuite.runner.run import RunConfig, run  # noqa: E402

pytestmark = pytest.mark.slow

OBJECT_STORE_BYTES = 80 * 2**20  # the smallest Ray allows is 75 MB
#: a lost node is noticed in about 1.5 s (health checks every 0.5 s, dead after 3 misses) instead of 15 s
SYSTEM_CONFIG = {"health_check_period_ms": 500, "health_check_failure_threshold": 3,
                 "health_check_timeout_ms": 500}
#: cheap deterministic pipelines of both tasks (the issue's list)
SMOKE = ["nn-l1", "null-classifier", "mean-box", "hog-svm-det"]


def _node_id(node) -> str:
    """The Ray node id (hex) of a ``cluster.add_node`` node."""
    return str(node.node_id)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A head and a second node, one CPU each; the test plugins (``test-slow``) are visible to their workers
    (installed before the nodes start, so their processes inherit PYTHONPATH)."""
    from conftest import PLUGIN_ENTRY_POINTS, install_fixture_plugins

    patch = pytest.MonkeyPatch()
    install_fixture_plugins(tmp_path_factory.mktemp("ray-plugins"), patch, "plugin_pipelines",
                            "benchsuite-test-plugins", PLUGIN_ENTRY_POINTS)
    patch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    c = Cluster(initialize_head=True, connect=False,
                head_node_args={"num_cpus": 1, "object_store_memory": OBJECT_STORE_BYTES,
                                "include_dashboard": False, "_system_config": SYSTEM_CONFIG})
    try:
        c.add_node(num_cpus=1, object_store_memory=OBJECT_STORE_BYTES)
        c.wait_for_nodes()
        yield c
    finally:
        c.shutdown()
        patch.undo()
        sys.modules.pop("plugin_pipelines", None)


@pytest.fixture()
def two_nodes(cluster):
    """The cluster with its second node (a test that removed it gets a new one)."""
    if not cluster.worker_nodes:
        cluster.add_node(num_cpus=1, object_store_memory=OBJECT_STORE_BYTES)
        cluster.wait_for_nodes()
    return cluster


def _records(out: Path) -> list[dict]:
    path = out / "records.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _driver_argv(cluster, out: Path, cache_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "benchsuite", "run", "--executor", "ray", "--ray-address", cluster.address,
            "--profile", "smoke", "--tasks", "classification", "--device", "cpu", "--out", str(out),
            "--cache-dir", str(cache_dir), "--no-report", *extra]


def test_a_smoke_run_on_the_cluster_gives_the_local_metrics(tmp_path, cache_dir, two_nodes):
    import os

    common = dict(profile="smoke", tasks=["classification", "detection"], pipelines=SMOKE, device="cpu",
                  cache_dir=cache_dir, data_root=tmp_path / "no-data")
    # one thread per job on both sides: the cluster's nodes have one CPU each
    local = run(RunConfig(out=tmp_path / "local", jobs=os.cpu_count() or 1, write_report=False, **common))
    on_ray = run(RunConfig(out=tmp_path / "ray", executor="ray", ray_address=two_nodes.address, **common))

    def by_key(records):
        return {(r["job_id"], r["split"]): r for r in records}

    want, got = by_key(local.records), by_key(on_ray.records)
    assert len(want) == len(SMOKE) and set(got) == set(want)
    for key, rec in got.items():
        assert rec["status"] == "ok", rec.get("error")
        assert json.dumps(rec["metrics"], sort_keys=True) == json.dumps(want[key]["metrics"], sort_keys=True), key
        assert rec["params"] == want[key]["params"]
        assert rec["timing"]["fit"]["threads"] == want[key]["timing"]["fit"]["threads"] == 1
    host = socket.gethostname()
    ids = {_node_id(n) for n in two_nodes.list_all_nodes()}
    for rec in local.records:
        assert rec["node"] == host and rec["executor"]["name"] == "local"
    for rec in on_ray.records:
        ex = rec["executor"]
        assert rec["node"] == host and ex["name"] == "ray" and ex["node_id"] in ids and ex["attempts"] == 1
    assert len({r["executor"]["node_id"] for r in on_ray.records}) == 2, "both nodes ran jobs"

    # the run folder is written as the local executor writes it
    for rec in on_ray.records:
        job_dir = on_ray.run_dir / "jobs" / rec["job_id"]
        assert sorted(p.name for p in job_dir.iterdir()) == \
            sorted(p.name for p in (local.run_dir / "jobs" / rec["job_id"]).iterdir())
        assert "fit on" in (job_dir / "log.txt").read_text()
        job = json.loads((job_dir / "job.json").read_text())
        assert job["job_dir"] == str(job_dir) and job["num_threads"] == 1 and job["memory_limit_mb"] > 0
    info = json.loads((on_ray.run_dir / "run.json").read_text())
    assert info["executor"]["name"] == "ray" and len(info["executor"]["nodes"]) == 2
    for node in info["executor"]["nodes"]:
        assert node["node_id"] in ids and node["ray_cpus"] == 1 and node["cores"] >= 1 and node["cpu"]
    report = (on_ray.run_dir / "report.md").read_text()
    assert all(p in report for p in SMOKE)


def test_a_node_lost_while_its_job_runs_loses_no_record(tmp_path, cache_dir, two_nodes, wait_for):
    [victim] = two_nodes.worker_nodes
    short = _node_id(victim)[:8]
    out, err = tmp_path / "lost-node-run", tmp_path / "driver.err"
    argv = _driver_argv(two_nodes, out, cache_dir, "--pipelines", "test-slow", "--seeds", "0,1,2,3",
                        "--param", "test-slow.delay=4")
    with open(err, "w") as stderr:
        driver = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        running_there = re.compile(rf"running classification: .* on node .*\({short}\)")
        wait_for(lambda: running_there.search(err.read_text()), 120, "a job running on the second node")
        two_nodes.remove_node(victim, allow_graceful=False)
        code = driver.wait(timeout=240)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert code == 0, err.read_text()
    records = _records(out)
    assert sorted(r["job_id"] for r in records) == [f"classification--cifar10--test-slow--s{s}"
                                                   for s in range(4)]
    for rec in records:  # every job ends ok, or failed with its cause
        assert rec["status"] == "ok" or (rec["failure"] and rec["error"]), rec
    retried = [r for r in records if r["executor"]["attempts"] > 1]
    assert retried, "the job that ran on the lost node was retried: " + err.read_text()[-3000:]
    for rec in retried:
        assert rec["status"] == "ok" and not rec["executor"]["node_id"].startswith(short), rec
    assert "attempt 2" in err.read_text()
    leftover = [p.info["cmdline"] for p in psutil.process_iter(["cmdline"])
                if "benchsuite-lost-node-run-" in " ".join(p.info["cmdline"] or [])]
    assert not leftover, f"job processes outlived their node: {leftover}"


def test_a_killed_driver_is_continued_by_resume_without_redoing_finished_jobs(tmp_path, cache_dir, two_nodes,
                                                                              wait_for):
    out = tmp_path / "run"
    argv = _driver_argv(two_nodes, out, cache_dir, "--pipelines", "test-slow", "--seeds", "0,1,2,3",
                        "--param", "test-slow.delay=2")
    driver = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: _records(out) or driver.poll() is not None, 120, "the first record")
    finally:
        driver.kill()
        _, stderr = driver.communicate(timeout=30)
    before = _records(out)
    assert 1 <= len(before) < 4, stderr
    done = subprocess.run([*argv, "--resume"], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    after = _records(out)
    assert len(after) == len({r["job_id"] for r in after}) == 4  # one record per job
    assert after[:len(before)] == before  # the finished jobs were not run again
    assert all(r["status"] == "ok" and r["executor"]["name"] == "ray" for r in after)
    info = json.loads((out / "run.json").read_text())
    assert info["executor"]["name"] == "ray" and [e["name"] for e in info["resumed_executors"]] == ["ray"]
