"""Fault injection, end to end (issue 17): the ways a run itself could lose or mix results.

Each test reproduces one case as a user would meet it (a real runner process, real signals, a real small
file system where the machine allows mounting one) and checks that nothing is lost. ``pytest -m fault``
runs these and the unit-level cases (tests/unit/test_faults_units.py) and prints the table of cases.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from benchsuite.cli import EXIT_JOBS_FAILED
from benchsuite.errors import ConfigError
from benchsuite.results.store import LOCK_FILE, RunStore, StorageError
from benchsuite.runner.execute import MEMORY_FLOOR_MB
from benchsuite.runner.run import RunConfig, run

pytestmark = pytest.mark.slow


def _config(tmp_path: Path, cache_dir: Path, pipelines: list[str], **kw) -> RunConfig:
    kw.setdefault("out", tmp_path / "run")
    kw.setdefault("tasks", ["classification"])
    return RunConfig(profile="smoke", pipelines=pipelines, cache_dir=cache_dir, data_root=tmp_path / "no-data",
                     write_report=False, **kw)


def _argv(out: Path, cache_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "benchsuite", "run", "--profile", "smoke", "--tasks", "classification",
            "--out", str(out), "--cache-dir", str(cache_dir), "--no-report", *extra]


def _start(argv: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class _Forked:
    """``benchsuite run`` in a child forked from this process (no interpreter start-up, no imports: a
    cheap runner for tests that start many), with its stderr in a file; ``send_signal``, ``wait``, ``err``."""

    def __init__(self, argv: list[str], err_path: Path):
        import multiprocessing

        self.err_path = err_path
        self.proc = multiprocessing.get_context("fork").Process(target=self._main, args=(argv[3:], err_path))
        self.proc.start()

    @staticmethod
    def _main(argv: list[str], err_path: Path) -> None:
        import logging

        from benchsuite.cli import main

        fd = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 2)
        sys.stderr = os.fdopen(2, "w", buffering=1)
        logging.getLogger().handlers.clear()  # the forked logging handlers point at pytest's captures
        code = main(argv)
        sys.stderr.flush()
        os._exit(code)

    def poll(self) -> int | None:
        return self.proc.exitcode

    def send_signal(self, sig: int) -> None:
        """Signal the run; a run that has already ended (and been reaped) is left alone."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, sig)

    def wait(self, timeout: float) -> tuple[int | None, str]:
        self.proc.join(timeout)
        return self.proc.exitcode, self.err_path.read_text()


def _record_lines(out: Path) -> list[dict]:
    path = out / "records.jsonl"
    if not path.exists():
        return []
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n"), "records.jsonl must hold whole lines only"
    return [json.loads(line) for line in data.decode().splitlines()]


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _mount_tmpfs(folder: Path, options: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip() or 'mount failed'})")


def _umount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


# ------------------------------------------------------------------------------------------------ case 1
@pytest.mark.fault("1 same-basename VOC folders")
def test_two_voc_folders_with_one_base_name_keep_their_own_results(tmp_path, cache_dir):
    from benchsuite.data.synthetic_voc import ensure_synthetic_voc

    source = ensure_synthetic_voc(cache_dir)
    a, b = tmp_path / "A" / "pf", tmp_path / "B" / "pf"
    shutil.copytree(source, a)
    shutil.copytree(source, b)
    result = run(_config(tmp_path, cache_dir, ["mean-box"], tasks=["detection"],
                         datasets=[f"voc:{a}", f"voc:{b}"]))
    names = sorted(r["dataset"] for r in result.records)
    assert len(names) == 2 and names[0] != names[1] and all(n.startswith("pf-") for n in names)
    jobs = sorted(p.name for p in (result.run_dir / "jobs").iterdir())
    assert len(jobs) == 2 and all((result.run_dir / "jobs" / j / "result.json").exists() for j in jobs)
    assert sorted(p.name for p in (result.run_dir / "splits").iterdir()) == [f"{n}.split.json" for n in names]
    assert len((result.run_dir / "summary.csv").read_text().splitlines()) == 3
    # two specs that open the very same data set would share job ids: refused before anything runs
    with pytest.raises(ConfigError, match="would be shared by"):
        run(_config(tmp_path / "again", cache_dir, ["mean-box"], tasks=["detection"],
                    datasets=[f"voc:{a}", f"voc:{a}/"]))


# ------------------------------------------------------------------------------------------------ case 2
@pytest.mark.fault("2 Ctrl-C with --jobs 2")
def test_first_interrupt_keeps_finished_jobs_and_names_the_rest(tmp_path, cache_dir, plugin_dist, wait_for):
    out = tmp_path / "run"
    argv = _argv(out, cache_dir, "--pipelines", "test-slow", "--seeds", "0,1,2,3", "--jobs", "2",
                 "--param", "test-slow.delay=2.0")
    proc = _Forked(argv, tmp_path / "err.txt")
    wait_for(lambda: len(_record_lines(out)) >= 2, 90, "the first two records")
    time.sleep(0.5)  # the third and fourth jobs are running now
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    code, err = proc.wait(timeout=30)
    assert time.monotonic() - sent < 8, err
    assert code == 130, err
    recorded = {r["job_id"] for r in _record_lines(out)}
    planned = {f"classification--synthetic-cifar10--test-slow--s{s}" for s in range(4)}
    planned = {j.replace("synthetic-cifar10", _dataset_name(out)) for j in planned}
    rest = sorted(planned - recorded)
    assert rest, "the interrupt came too late to test anything"
    assert f"will run {len(rest)} job(s): {', '.join(rest)}" in err, err
    assert not [p for p in psutil.process_iter(["cmdline"]) if str(out) in " ".join(p.info["cmdline"] or [])]
    code, err = _Forked([*argv, "--resume"], tmp_path / "err-resume.txt").wait(timeout=120)
    assert code == 0, err
    assert sorted(r["job_id"] for r in _record_lines(out)) == sorted(planned)  # exactly one record per job


def _dataset_name(out: Path) -> str:
    return json.loads((out / "run.json").read_text())["datasets"][0]["name"]


@pytest.mark.fault("2 Ctrl-C with --jobs 2")
@pytest.mark.parametrize("presses", [1, 2])
def test_interrupt_ends_the_workers_whole_process_tree(tmp_path, cache_dir, plugin_dist, presses, wait_for):
    out, pids = tmp_path / "run", tmp_path / "pids"
    proc = _Forked(_argv(out, cache_dir, "--pipelines", "test-spawner,test-slow", "--jobs", "2",
                         "--param", f"test-spawner.pid_file={pids}", "--param", "test-slow.delay=60"),
                   tmp_path / "err.txt")
    wait_for(pids.exists, 90, "the worker's pid file")
    worker, child = map(int, pids.read_text().split())
    sent = time.monotonic()
    for _ in range(presses):
        proc.send_signal(signal.SIGINT)
        time.sleep(0.05)
    code, err = proc.wait(timeout=30)
    assert time.monotonic() - sent < 5, err
    assert code == 130, err
    wait_for(lambda: _gone(worker) and _gone(child), 5, "the worker and its child to end")
    if presses == 1:
        assert "will run 2 job(s)" in err, err
    else:
        assert "stopped at once" in err or "will run 2 job(s)" in err, err
    assert _record_lines(out) == []


@pytest.mark.fault("2 Ctrl-C with --jobs 2 (random moments, same metrics)")
def test_random_interrupts_then_resume_give_one_record_per_job_and_the_same_metrics(tmp_path, cache_dir,
                                                                                    plugin_dist, wait_for):
    extra = ("--pipelines", "test-majority,test-slow", "--seeds", "0,1", "--jobs", "2",
             "--param", "test-slow.delay=1.5")
    reference = run(_config(tmp_path, cache_dir, ["test-majority", "test-slow"], seeds=[0, 1], jobs=2,
                            out=tmp_path / "reference", params={"test-slow": {"delay": 1.5}}))
    out = tmp_path / "interrupted"
    rng = random.Random(17)
    for attempt in range(5):
        proc = _Forked(_argv(out, cache_dir, *extra, *(["--resume"] if (out / "run.json").exists() else [])),
                       tmp_path / f"err-{attempt}.txt")
        # a random moment once the jobs run (the run holds its folder's lock then), or while it starts up
        if attempt:
            wait_for(lambda p=proc: (out / LOCK_FILE).exists() or p.poll() is not None, 120, "the run to start")
        time.sleep(rng.uniform(0.0, 3.0))
        proc.send_signal(signal.SIGINT)
        code, err = proc.wait(timeout=30)
        # 130: interrupted; 0: it had finished; -SIGINT: the signal came as the finished process was exiting
        assert code in (0, 130, -signal.SIGINT), err
        assert "Traceback" not in err, err
    resume = ["--resume"] if (out / "run.json").exists() else []
    final = _Forked(_argv(out, cache_dir, *extra, *resume), tmp_path / "err-final.txt")
    code, err = final.wait(timeout=180)
    assert code == 0, err
    got, want = _record_lines(out), _record_lines(reference.run_dir)
    assert len(got) == len({r["job_id"] for r in got}) == 4  # exactly one record per job
    assert {r["job_id"]: r["metrics"] for r in got} == {r["job_id"]: r["metrics"] for r in want}


# ------------------------------------------------------------------------------------------------ case 4
@pytest.mark.fault("4 SIGKILL of the runner orphans the worker")
def test_workers_die_with_their_runner(tmp_path, cache_dir, plugin_dist, wait_for):
    out, pids = tmp_path / "run", tmp_path / "pids"
    argv = _argv(out, cache_dir, "--pipelines", "test-spawner", "--param", f"test-spawner.pid_file={pids}")
    proc = _start(argv)
    wait_for(pids.exists, 90, "the worker's pid file")
    worker, child = map(int, pids.read_text().split())
    proc.kill()
    proc.communicate(timeout=10)
    wait_for(lambda: _gone(worker) and _gone(child), 5, "the orphaned worker and its child to end")
    # the dead runner's lock is stale: the resumed run takes it over and runs the job again
    assert (out / LOCK_FILE).exists()
    pids.unlink()
    # the limit must outlast the worker's start-up on a busy machine, so that the plugin writes its pid file
    done = subprocess.run([*argv, "--resume", "--time-limit", "20"], capture_output=True, text=True, timeout=180)
    assert done.returncode == EXIT_JOBS_FAILED, done.stderr  # its job failed (the time limit), as it should
    assert "taking over a stale lock" in done.stderr
    [rec] = _record_lines(out)
    assert rec["failure"] == "timeout"
    worker, child = map(int, pids.read_text().split())
    wait_for(lambda: _gone(worker) and _gone(child), 5, "the timed-out worker's tree to end")


# ------------------------------------------------------------------------------------------------ case 5
@pytest.mark.fault("5 two runs into one --out")
def test_a_second_run_into_the_same_folder_is_refused(tmp_path, cache_dir, plugin_dist, wait_for):
    out = tmp_path / "run"
    argv = _argv(out, cache_dir, "--pipelines", "test-slow", "--param", "test-slow.delay=120")
    first = _Forked(argv, tmp_path / "err-first.txt")
    job_log = out / "jobs" / "classification--cifar10--test-slow--s0" / "log.txt"

    def fits_started() -> int:
        return job_log.read_text().count("fit on") if job_log.exists() else 0

    # the first run holds the lock and its job is fitting: a second run must neither start nor rerun it
    wait_for(lambda: (out / LOCK_FILE).exists() and fits_started() == 1, 90, "the first run's job to fit")
    code, err = _Forked([*argv, "--resume"], tmp_path / "err-second.txt").wait(timeout=120)
    assert first.poll() is None, "the first run should still be running"
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert f"benchsuite: error: {out} is in use by another run (pid {first.proc.pid} on host " in last, err
    assert fits_started() == 1
    first.send_signal(signal.SIGINT)
    assert first.wait(timeout=60)[0] == 130
    assert not (out / LOCK_FILE).exists()  # released by the first run on its way out


# ------------------------------------------------------------------------------------------------ case 6
@pytest.mark.fault("6 full or read-only --out")
def test_a_read_only_or_full_out_is_one_line(tmp_path, cache_dir, capsys):
    from benchsuite.cli import main

    def run_into(out: Path) -> tuple[int, list[str]]:
        code = main(_argv(out, cache_dir, "--pipelines", "nn-l1")[3:], hard_exit_on_interrupt=False)
        return code, capsys.readouterr().err.strip().splitlines()

    mnt = tmp_path / "ro"
    _mount_tmpfs(mnt, "size=64k,ro")
    try:
        code, err = run_into(mnt / "run")
    finally:
        _umount(mnt)
    assert code == 2
    assert err[-1] == f"benchsuite: error: cannot write {mnt / 'run'}: Read-only file system (EROFS)", err
    full = tmp_path / "full"
    _mount_tmpfs(full, "size=64k")
    try:
        with pytest.raises(OSError), open(full / "filler", "wb", buffering=0) as f:
            while True:
                f.write(b"\0" * 4096)
        code, err = run_into(full / "run")
    finally:
        _umount(full)
    assert code == 2
    assert err[-1].startswith(f"benchsuite: error: cannot write {full / 'run'}") and "(ENOSPC)" in err[-1], err


@pytest.mark.fault("6 full or read-only --out")
def test_a_full_disk_mid_run_says_what_was_kept(tmp_path, cache_dir, plugin_dist, monkeypatch):
    real_append = RunStore.append
    calls = []

    def append(self, record):
        calls.append(record["job_id"])
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.records_path))
        real_append(self, record)

    monkeypatch.setattr(RunStore, "append", append)
    with pytest.raises(StorageError) as info:
        run(_config(tmp_path, cache_dir, ["test-majority"], seeds=[0, 1, 2]))
    message = str(info.value)
    assert message.startswith(f"cannot write {tmp_path / 'run' / 'records.jsonl'}: No space left on device "
                              f"(ENOSPC); kept: 1 record(s)"), message
    assert len(_record_lines(tmp_path / "run")) == 1
    assert not (tmp_path / "run" / LOCK_FILE).exists()  # released


@pytest.mark.fault("6 worker's own full disk")
def test_a_worker_that_fills_its_disk_gets_the_cause_in_its_record(tmp_path, cache_dir, plugin_dist):
    jobs = tmp_path / "run" / "jobs"
    _mount_tmpfs(jobs, "size=256k")
    try:
        result = run(_config(tmp_path, cache_dir, ["test-fills-disk"],
                             params={"test-fills-disk": {"folder": str(jobs)}}))
    finally:
        _umount(jobs)
    [rec] = result.records
    assert rec["failure"] == "io", rec
    assert "worker could not write its files: cannot write" in rec["error"]
    assert "No space left on device" in rec["error"]


# ------------------------------------------------------------------------------------------------ case 10
@pytest.mark.fault("10 worker start-up footprint and memory floor")
def test_a_small_job_runs_under_a_tight_memory_limit(tmp_path, cache_dir, plugin_dist):
    result = run(_config(tmp_path, cache_dir, ["test-majority"], memory_limit_mb=300))
    [rec] = result.records
    assert rec["status"] == "ok", rec["error"]
    assert rec["memory"]["peak_rss_mb"] < MEMORY_FLOOR_MB  # torch and friends are not loaded to be configured


# ------------------------------------------------------------------------------------------------ case 11
@pytest.mark.fault("11 killed jobs rerun by plain --resume")
def test_a_job_killed_by_a_foreign_signal_is_rerun_by_plain_resume(tmp_path, cache_dir, plugin_dist):
    marker = tmp_path / "killed-once"
    cfg = _config(tmp_path, cache_dir, ["test-self-kill", "test-raises"],
                  params={"test-self-kill": {"marker": str(marker)}})
    first = {r["pipeline"]: r for r in run(cfg).records}
    assert first["test-self-kill"]["failure"] == "killed"
    assert "SIGKILL" in first["test-self-kill"]["error"]
    cfg.resume = True
    run(cfg)
    lines = _record_lines(tmp_path / "run")
    assert [r["pipeline"] for r in lines] == ["test-self-kill", "test-raises", "test-self-kill"] or \
        [r["pipeline"] for r in lines] == ["test-raises", "test-self-kill", "test-self-kill"]
    assert lines[-1]["status"] == "ok"  # rerun; the pipeline's own failure (test-raises) was not
