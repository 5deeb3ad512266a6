"""Hostile data, plugins and run folders (issue 22), end to end: real runs at smoke size with plugins that fork and
hang, run folders resumed with other settings, data that would mislead a run. ``pytest -m fault`` prints them in the
fault table beside the unit-level properties (tests/unit/test_hostile_units.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchsuite.cli import EXIT_JOBS_FAILED, main
from benchsuite.errors import ConfigError
from benchsuite.runner import proctree
from benchsuite.runner.run import RunConfig, run
from tests.conftest import install_fixture_plugins

pytestmark = pytest.mark.slow

HOSTILE = {"test-forker": "hostile_plugins:Forker", "test-removes-folder": "hostile_plugins:RemovesItsFolder",
           "test-many-boxes": "hostile_plugins:ManyBoxes", "test-hangs": "hostile_plugins:Hangs"}


@pytest.fixture()
def hostile_dist(tmp_path, monkeypatch):
    """tests/fixtures/hostile_plugins.py installed as a plugin distribution."""
    yield install_fixture_plugins(tmp_path, monkeypatch, "hostile_plugins", "hostile-plugins",
                                  HOSTILE)
    sys.modules.pop("hostile_plugins", None)


def _config(tmp_path: Path, cache_dir: Path, pipelines: list[str], **kw) -> RunConfig:
    kw.setdefault("out", tmp_path / "run")
    kw.setdefault("tasks", ["classification"])
    return RunConfig(profile="smoke", pipelines=pipelines, cache_dir=cache_dir, data_root=tmp_path / "no-data",
                     write_report=False, **kw)


def _pids(path: Path) -> list[int]:
    return [int(p) for p in path.read_text().split()]


def _ps(pids: list[int]) -> str:
    """What ``ps`` says about ``pids`` (the processes that are still there, zombies excepted)."""
    done = subprocess.run(["ps", "-o", "pid=,stat=,cmd=", "-p", ",".join(map(str, pids))], capture_output=True,
                          text=True)
    return "\n".join(line for line in done.stdout.splitlines() if not line.split()[1].startswith("Z"))


def _lines(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]


# ============================================================================ 22.3 process containment


@pytest.mark.fault("22.3 no process outlives its job (ps after the job)")
@pytest.mark.parametrize("how", ["ends", "worker killed", "time limit"])
def test_a_forking_plugin_leaves_no_process_after_its_job(tmp_path, cache_dir, hostile_dist, how):
    pids = tmp_path / "pids"
    params = {"pid_file": str(pids), "die": how == "worker killed", "hold": 600.0 if how == "time limit" else 0.0}
    result = run(_config(tmp_path, cache_dir, ["test-forker"], params={"test-forker": params},
                         time_limit_s=8 if how == "time limit" else None))
    [rec] = result.records
    worker, child, grandchild = _pids(pids)
    assert proctree.wait_gone([worker, child, grandchild], 5), _ps([worker, child, grandchild])
    assert _ps([worker, child, grandchild]) == ""  # checked with ps, as a user would
    if how == "ends":
        assert rec["status"] == "ok" and rec["leftover_processes"] == 0  # the worker ended them itself
    elif how == "worker killed":
        # the worker died before it could end them: the runner found them by the job's marker
        assert rec["failure"] == "killed" and rec["leftover_processes"] == 2
    else:
        assert rec["failure"] == "timeout"


@pytest.mark.fault("22.3 no process outlives its job (SIGKILLed runner)")
def test_a_killed_runner_leaves_no_process_of_a_forking_plugin(tmp_path, cache_dir, hostile_dist, wait_for):
    out, pids = tmp_path / "run", tmp_path / "pids"
    argv = [sys.executable, "-m", "benchsuite", "run", "--profile", "smoke", "--tasks", "classification", "--out",
            str(out), "--cache-dir", str(cache_dir), "--no-report", "--pipelines", "test-forker",
            "--param", f"test-forker.pid_file={pids}", "--param", "test-forker.hold=600"]
    runner = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(pids.exists, 120, "the plugin's pid file")
    runner.kill()
    runner.wait(timeout=10)
    left = _pids(pids)
    assert proctree.wait_gone(left, 10), _ps(left)  # the reaper ended the tree and the double-forked orphan


# ============================================================================ 22.2 resume never mixes


@pytest.mark.fault("22.2 resume never mixes configurations")
def test_resume_refuses_changed_settings_unless_allowed_and_then_records_the_change(tmp_path, cache_dir,
                                                                                   hostile_dist):
    cfg = _config(tmp_path, cache_dir, ["test-forker"], seeds=[0])
    run(cfg)
    changed = _config(tmp_path, cache_dir, ["test-forker"], seeds=[0, 1], resume=True,
                      params={"test-forker": {"hold": 0.1}}, eval_splits=["val", "test"])
    with pytest.raises(ConfigError) as info:
        run(changed)
    message = str(info.value)
    assert "this session's configuration differs from the run's" in message
    assert "scored splits (--splits): ['test'] -> ['val', 'test']" in message
    assert "--param values of test-forker: {} -> {'hold': 0.1}" in message and "--allow-changed" in message
    assert len(_lines(tmp_path / "run")) == 1  # nothing ran
    changed.allow_changed = True
    run(changed)
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["config"]["params"] == {} and info["config"]["eval_splits"] == ["test"]  # the run's own settings
    assert len(info["changes"]) == 1 and any("--param values" in d for d in info["changes"][0]["differences"])
    records = _lines(tmp_path / "run")
    assert records[0].get("config_changed") in (None, [])
    assert all(r["config_changed"] for r in records[1:]) and len(records) == 3  # seed 1: val and test


@pytest.mark.fault("22.2 resume keeps a complete record that lost its newline")
def test_resume_after_a_newline_less_last_record_keeps_every_record(tmp_path, cache_dir, hostile_dist):
    cfg = _config(tmp_path, cache_dir, ["test-forker"], seeds=[0, 1])
    run(cfg)
    path = tmp_path / "run" / "records.jsonl"
    path.write_bytes(path.read_bytes().rstrip(b"\n"))  # the last record is whole, its newline lost
    before = _lines_loose(path)
    cfg.resume = True
    result = run(cfg)
    assert _lines(tmp_path / "run") == before  # kept, and its job not run again
    assert len(result.records) == 2


def _lines_loose(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


# ============================================================================ 22.6 data sanity


@pytest.mark.fault("22.6 data sanity before any job starts")
@pytest.mark.parametrize("problem", ["id in train and test", "test split without objects", "truncated image"])
def test_misleading_data_stops_the_run_before_any_job(tmp_path, cache_dir, problem, capsys):
    from benchsuite.data.synthetic_voc import ensure_synthetic_voc

    folder = tmp_path / "data" / "shapes"
    shutil.copytree(ensure_synthetic_voc(cache_dir), folder)
    main_lists = folder / "ImageSets" / "Main"
    test_ids = (main_lists / "test.txt").read_text().split()
    if problem == "id in train and test":
        (main_lists / "train.txt").write_text((main_lists / "train.txt").read_text() + test_ids[0] + "\n")
        words = "image id(s) are in the test split and in train or val"
    elif problem == "test split without objects":
        for image_id in test_ids:
            xml = folder / "Annotations" / f"{image_id}.xml"
            text = xml.read_text()
            xml.write_text(text[:text.find("<object>")] + "</annotation>" if "<object>" in text else text)
        words = "the test split (16 image(s), capped at 16) holds no object"
    else:  # every test image (the smoke profile's cap takes some of them), cut in half
        for image_id in test_ids:
            jpeg = next((folder / "JPEGImages").glob(f"{image_id}.*"))
            jpeg.write_bytes(jpeg.read_bytes()[: len(jpeg.read_bytes()) // 2])
        words = "16 image(s) do not decode"
    out = tmp_path / "run"
    code = main(["run", "--profile", "smoke", "--tasks", "detection", "--pipelines", "null-detector", "--datasets",
                 f"voc:{folder}", "--out", str(out), "--cache-dir", str(cache_dir), "--no-report"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("benchsuite: error: ") and words in err[-1], err[-3:]
    assert not (out / "jobs").exists() and not (out / "records.jsonl").exists()


# ============================================================================ 22.7 provenance


@pytest.mark.fault("22.7 records and run.json name the class that ran")
def test_records_and_run_json_name_the_class_and_distribution_that_ran(tmp_path, cache_dir, hostile_dist,
                                                                       monkeypatch):
    result = run(_config(tmp_path, cache_dir, ["test-forker", "null-classifier"]))
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["pipelines"]["test-forker"] == {"module": "hostile_plugins", "qualname": "Forker",
                                                "distribution": "hostile-plugins", "version": "0.1",
                                                "overrides": None}
    assert info["pipelines"]["null-classifier"]["distribution"] == "benchsuite"
    by = {r["pipeline"]: r for r in result.records}
    assert by["test-forker"]["pipeline_class"] == {"module": "hostile_plugins", "qualname": "Forker",
                                                   "distribution": "hostile-plugins", "version": "0.1"}
    assert by["null-classifier"]["pipeline_class"]["module"] == "pipelines.reference.null"


# ============================================================================ 22.8 the other cases


@pytest.mark.fault("22.8 a job whose folder was removed mid-run gets a cause")
def test_a_job_whose_folder_is_replaced_while_it_runs_names_the_cause(tmp_path, cache_dir, hostile_dist):
    """The folder removed and a file put in its place (the worker cannot write its result there)."""
    result = run(_config(tmp_path, cache_dir, ["test-removes-folder"],
                         params={"test-removes-folder": {"folder": str(tmp_path / "run" / "jobs"),
                                                         "then_file": True}}))
    [rec] = result.records
    assert rec["failure"] == "io", rec
    assert "was removed while the job ran" in rec["error"] or "cannot write" in rec["error"], rec["error"]
    assert "--resume --retry-failed" in rec["error"]


@pytest.mark.fault("22.5 the report's own I/O errors: exit 2, one line")
def test_a_disk_that_fills_while_the_report_is_written_is_one_line(tmp_path, cache_dir, capsys):
    src = run(_config(tmp_path, cache_dir, ["null-classifier"])).run_dir
    mnt = tmp_path / "small"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        folder = mnt / "run"
        shutil.copytree(src, folder, ignore=shutil.ignore_patterns("report*", "*.npz"))
        with open(mnt / "filler", "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError:
                pass
        code = main(["report", str(folder)])
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len([ln for ln in err if ln.startswith("benchsuite: error: ")]) == 1, err
    assert "Traceback" not in "\n".join(err) and "(ENOSPC)" in err[-1], err


@pytest.mark.fault("22.3 no data read blocks on a special file")
def test_a_fifo_annotation_stops_the_run_at_once_with_one_line(tmp_path, cache_dir, capsys):
    from benchsuite.data.synthetic_voc import ensure_synthetic_voc

    folder = tmp_path / "data" / "shapes"
    shutil.copytree(ensure_synthetic_voc(cache_dir), folder)
    xml = next((folder / "Annotations").iterdir())
    xml.unlink()
    os.mkfifo(xml)
    start = time.monotonic()
    code = main(["run", "--profile", "smoke", "--tasks", "detection", "--pipelines", "null-detector", "--datasets",
                 f"voc:{folder}", "--out", str(tmp_path / "run"), "--cache-dir", str(cache_dir), "--no-report"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and f"{xml}: is a FIFO (named pipe), not a regular file" in err[-1], err[-2:]
    assert time.monotonic() - start < 120



# ============================================================================ 22.1 confinement, 22.4 bounded outputs


@pytest.mark.fault("22.1 confinement: a class name with a path writes nothing outside the run folder")
def test_a_class_name_that_is_a_path_writes_nothing_outside_the_run_folder(tmp_path, cache_dir):
    import uuid

    from benchsuite.data.synthetic_voc import ensure_synthetic_voc

    folder = tmp_path / "data" / "shapes"
    shutil.copytree(ensure_synthetic_voc(cache_dir), folder)
    target = Path("/tmp") / f"PWNED_voc_{uuid.uuid4().hex[:8]}"
    hostile = f"x/../../../../../../../../..{target}"
    for xml in (folder / "Annotations").iterdir():
        xml.write_text(xml.read_text().replace("<name>car</name>", f"<name>{hostile}</name>"))
    out = tmp_path / "run"
    code = main(["run", "--profile", "smoke", "--tasks", "detection", "--pipelines", "mean-box", "--datasets",
                 f"voc:{folder}", "--out", str(out), "--cache-dir", str(cache_dir)])
    assert code == 0
    assert not list(Path("/tmp").glob(target.name + "*")), "a file was written outside the run folder"
    [export] = list(out.glob("jobs/*/export-test/voc"))
    files = json.loads((export / "classes.json").read_text())
    assert (export / files[hostile]).is_file() and "/" not in files[hostile]
    assert all(os.path.realpath(p).startswith(os.path.realpath(out)) for p in out.rglob("*"))


@pytest.mark.fault("22.4 bounded outputs: 200,000 boxes per image fail the job, the runner stays small")
def test_two_hundred_thousand_boxes_per_image_fail_the_job_and_the_runner_stays_under_1_gb(tmp_path, cache_dir,
                                                                                           hostile_dist):
    import psutil

    out = tmp_path / "run"
    argv = [sys.executable, "-m", "benchsuite", "run", "--profile", "smoke", "--tasks", "detection", "--pipelines",
            "test-many-boxes", "--out", str(out), "--cache-dir", str(cache_dir), "--no-report",
            "--memory-limit-mb", "1500"]
    runner = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0.0
    proc = psutil.Process(runner.pid)
    while runner.poll() is None:
        try:
            peak = max(peak, proc.memory_info().rss / 2**20)  # the runner itself, not its worker
        except psutil.Error:
            break
        time.sleep(0.1)
    assert runner.wait(timeout=600) == EXIT_JOBS_FAILED, runner.stderr.read()  # the job failed, as it should
    [rec] = _lines(out)
    assert rec["failure"] == "invalid-output"
    assert "returned 200,000 detections, more than the 5,000 per image the detection task scores" in rec["error"]
    assert peak < 1024, f"the runner reached {peak:.0f} MB"
    assert sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) < 50 * 2**20  # no huge predictions file
