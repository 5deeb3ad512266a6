"""Timing conditions: the job's CPU time, the other processes' cores and the contention rule."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time

import psutil
import pytest

from benchsuite.measure.conditions import (
    CONTENTION_MARGIN_CORES,
    CONTENTION_WAIT_SHARE,
    Snapshot,
    is_contended,
    machine_busy_s,
    omp_wait_policy,
    phase_conditions,
    tree_cpu_s,
    tree_run_delay_s,
)
from benchsuite.measure.timing import ImportWatch, Stopwatch


def test_phase_conditions_subtract_the_jobs_own_cpu_time():
    start = Snapshot(wall=100.0, busy_s=1000.0, own_cpu_s=10.0, load=0.5, run_delay_s=1.0)
    # 30 busy core-s, 15 of them the job's; its threads waited 5 s for a CPU
    end = Snapshot(wall=110.0, busy_s=1030.0, own_cpu_s=25.0, load=2.5, run_delay_s=6.0)
    block = phase_conditions(start, end, threads=2, cores=2)
    assert block["wall_s"] == pytest.approx(10.0) and block["cpu_s"] == pytest.approx(15.0)
    assert block["others_cpu_cores"] == pytest.approx(1.5)
    assert block["run_delay_s"] == pytest.approx(5.0) and block["wait_share"] == pytest.approx(0.25)
    assert block["load_start"] == 0.5 and block["load_end"] == 2.5
    assert block["contended"] is True


@pytest.mark.parametrize(("others", "threads", "cores", "share", "expected"), [
    (0.0, 2, 2, 0.0, False),
    (1.5, 2, 2, 0.01, False),  # others used the cores the job left idle: no contention
    (1.0, 2, 2, CONTENTION_WAIT_SHARE + 0.01, True),  # the job waited for a CPU that others held
    (0.0, 2, 2, 0.3, False),  # more threads than cores: the job waits on itself, no one else is there
    # fallback without scheduler statistics: the other processes' cores
    (CONTENTION_MARGIN_CORES - 0.01, 2, 2, None, False),
    (CONTENTION_MARGIN_CORES + 0.01, 2, 2, None, True),
    (1.0, 1, 2, None, False),  # --jobs 2: the other job's core is expected
    (1.0 + CONTENTION_MARGIN_CORES + 0.01, 1, 2, None, True),
    (None, 2, 2, None, None),  # nothing readable: unknown
])
def test_contention_rule(others, threads, cores, share, expected):
    assert is_contended(others, threads, cores, wall_s=5.0, wait_share=share) is expected


def _start_outside_the_tree(code: str, count: int) -> list[int]:
    """Start ``count`` processes running ``code`` through a parent that exits at once, so that they are not
    descendants of this process (the job's tree would count their CPU time as its own). Returns their pids."""
    spawn = (f"import subprocess, sys\n"
             f"for _ in range({count}):\n"
             f"    print(subprocess.Popen([sys.executable, '-c', {code!r}], stdout=subprocess.DEVNULL,\n"
             f"                           stderr=subprocess.DEVNULL).pid)")
    out = subprocess.run([sys.executable, "-c", spawn], capture_output=True, text=True, check=True).stdout
    return [int(line) for line in out.split()]


def _kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            psutil.Process(pid).kill()


@pytest.mark.skipif(tree_run_delay_s() is None or machine_busy_s() is None,
                    reason="no scheduler statistics or /proc/stat on this system")
def test_a_thread_that_competes_with_busy_processes_waits_for_a_cpu():
    burners = _start_outside_the_tree("while True: pass", (os.cpu_count() or 1) * 2)
    try:
        time.sleep(0.3)
        start = Snapshot.take()
        t0 = time.process_time()
        while time.process_time() - t0 < 0.5:
            pass
        block = phase_conditions(start, Snapshot.take(), threads=1)
    finally:
        _kill(burners)
    # two busy processes per core: this thread got about a third of a core and waited the rest
    assert block["others_cpu_cores"] > CONTENTION_MARGIN_CORES, block
    assert block["wait_share"] > CONTENTION_WAIT_SHARE and block["contended"] is True, block


def test_short_phases_are_never_called_contended():
    assert is_contended(5.0, 2, 2, wall_s=0.01) is False


BURN_1S = "import time\nwhile time.process_time() < 1.0: pass\n"  # one second of CPU, whatever the load


@pytest.mark.skipif(machine_busy_s() is None, reason="no /proc/stat on this system")
def test_own_children_count_as_the_jobs_cpu_and_an_unrelated_process_as_others():
    start = Snapshot.take()
    child = subprocess.Popen([sys.executable, "-c", BURN_1S])
    # a process outside the job's tree: started by a parent that exits at once (re-parented, never waited for)
    spawn = (f"import subprocess, sys\np = subprocess.Popen([sys.executable, '-c', {BURN_1S!r}])\n"
             f"print(p.pid)")
    orphan_pid = int(subprocess.run([sys.executable, "-c", spawn], capture_output=True, text=True,
                                    check=True).stdout)
    child.wait()
    while psutil.pid_exists(orphan_pid) and psutil.Process(orphan_pid).status() != psutil.STATUS_ZOMBIE:
        time.sleep(0.05)
    end = Snapshot.take()
    block = phase_conditions(start, end, threads=1)
    assert block["cpu_s"] >= 1.0  # the waited-for child's second (plus the spawner's start-up)
    others_core_s = block["others_cpu_cores"] * block["wall_s"]
    assert others_core_s >= 0.9  # the orphan's second is someone else's work


def test_tree_cpu_counts_live_children():
    child = subprocess.Popen([sys.executable, "-c", BURN_1S + "time.sleep(30)\n"])
    try:
        before = tree_cpu_s()
        while sum(psutil.Process(child.pid).cpu_times()[:2]) < 0.99:
            time.sleep(0.05)
        assert tree_cpu_s() - before >= 0.5  # the child's burning second, while it is still alive
    finally:
        child.kill()
        child.wait()


def test_stopwatch_reports_its_conditions():
    with Stopwatch("cpu", threads=3) as sw:
        sum(i * i for i in range(200_000))
    assert sw.seconds > 0 and sw.conditions["threads"] == 3
    assert sw.conditions["cpu_s"] >= 0 and sw.conditions["wall_s"] == pytest.approx(sw.seconds, abs=0.05)


def test_import_watch_names_third_party_packages_first_imported(tmp_path, monkeypatch):
    (tmp_path / "freshpkg_for_watch").mkdir()
    (tmp_path / "freshpkg_for_watch" / "__init__.py").write_text("import json\nVALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with ImportWatch() as watch:
        import freshpkg_for_watch
    assert watch.packages == ["freshpkg_for_watch"]  # json is the standard library: not reported
    with ImportWatch() as again:
        import freshpkg_for_watch  # noqa: F401
    assert again.packages == []
    sys.modules.pop("freshpkg_for_watch", None)


@pytest.mark.parametrize(("others", "threads", "expected"), [
    (0.05, 2, None),  # idle: the library's default (spin, then sleep)
    (1.0, 2, "PASSIVE"),  # busy processes beside the job: waiting threads sleep
    (1.0, 1, None),  # --jobs 2: the other job keeps to its own core
    (1.5, 1, "PASSIVE"),
])
def test_wait_policy_follows_the_load_at_job_start(others, threads, expected):
    assert omp_wait_policy(threads, cores=2, others=others) == expected
