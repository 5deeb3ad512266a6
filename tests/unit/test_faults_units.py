"""Unit-level fault cases of issue 17: records that stay whole lines, the run lock, option and parameter
checks, malformed records and run files, data errors, and which failed jobs a plain --resume reruns.

The end-to-end cases are in tests/integration/test_faults.py; ``pytest -m fault`` prints the table of all.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from benchsuite import params
from benchsuite.cli import main
from benchsuite.data import cifar10
from benchsuite.data.synthetic_cifar import write_cifar_layout
from benchsuite.errors import BenchsuiteError, ConfigError, DataError
from benchsuite.results import atomic
from benchsuite.results.atomic import append_line, repair_tail
from benchsuite.results.schema import SCHEMA_VERSION
from benchsuite.results.store import LOCK_FILE, RunLock, RunStore, rerun_on_resume
from benchsuite.runner.execute import WORKER_IO_EXIT, WORKER_IO_MARKER, WorkerExit, describe_exit
from benchsuite.runner.jobs import check_unique_job_ids, unique_dataset_names

# ---------------------------------------------------------------------------------------------- case 1


@dataclass
class _Info:
    name: str
    root: str


@dataclass
class _Ds:
    info: _Info


@pytest.mark.fault("1 same-basename VOC folders")
def test_same_basename_folders_get_distinct_stable_names(tmp_path):
    a, b = tmp_path / "A" / "pf", tmp_path / "B" / "pf"
    datasets = {"voc:A/pf": _Ds(_Info("pf", str(a))), "voc:B/pf": _Ds(_Info("pf", str(b))),
                "cifar10": _Ds(_Info("cifar10", str(tmp_path / "c")))}
    names = unique_dataset_names(datasets)
    assert names["cifar10"] == "cifar10"
    assert names["voc:A/pf"] != names["voc:B/pf"]
    assert names["voc:A/pf"].startswith("pf-") and names == unique_dataset_names(datasets)  # stable
    # resuming a run in which A alone was "pf": A keeps its name, the new B does not take it
    alone = unique_dataset_names({"voc:B/pf": datasets["voc:B/pf"]}, [{"name": "pf", "root": str(a)}])
    assert alone["voc:B/pf"] != "pf"
    kept = unique_dataset_names(datasets, [{"name": "pf", "root": str(a)}])
    assert kept["voc:A/pf"] == "pf" and kept["voc:B/pf"] != "pf"


@pytest.mark.fault("1 same-basename VOC folders")
def test_colliding_job_ids_are_refused():
    check_unique_job_ids([("a", "x"), ("b", "y")])
    with pytest.raises(ConfigError, match="job id 'a' would be shared by x and y"):
        check_unique_job_ids([("a", "x"), ("a", "y")])


# ---------------------------------------------------------------------------------------------- case 3


def _lines(path: Path) -> list[dict]:
    text = path.read_bytes()
    assert text == b"" or text.endswith(b"\n"), "records.jsonl must end with a whole line"
    return [json.loads(x) for x in text.decode().splitlines()]


@pytest.mark.fault("3 full disk during a record append")
def test_a_short_write_leaves_whole_lines_only(tmp_path, monkeypatch):
    path = tmp_path / "records.jsonl"
    append_line(path, json.dumps({"n": 1}))
    real_write = os.write

    def short_write(fd, data):  # what a file system that just filled up does: part of the bytes
        return real_write(fd, data[: len(data) - 14])

    monkeypatch.setattr(atomic.os, "write", short_write)
    with pytest.raises(OSError, match="short write") as info:
        append_line(path, json.dumps({"n": 2, "pad": "x" * 40}))
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(path)
    monkeypatch.setattr(atomic.os, "write", real_write)
    assert _lines(path) == [{"n": 1}]
    append_line(path, json.dumps({"n": 3}))
    assert _lines(path) == [{"n": 1}, {"n": 3}]


@pytest.mark.fault("3 full disk during a record append")
def test_a_partial_tail_is_cut_before_the_next_append(tmp_path):
    path = tmp_path / "records.jsonl"
    path.write_bytes(b'{"n": 1}\n{"n": 2, "trunc')  # what an older version left after ENOSPC
    append_line(path, json.dumps({"n": 3}))
    assert _lines(path) == [{"n": 1}, {"n": 3}]
    path.write_bytes(b'{"n": 1}\n{"n": 2')
    assert repair_tail(path) == b'{"n": 2'
    assert repair_tail(path) == b""


@pytest.mark.fault("3 full disk during a record append")
def test_enospc_on_a_real_full_file_system(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.system(f"mount -t tmpfs -o size=64k tmpfs {mnt} 2>/dev/null") != 0:
        pytest.skip("cannot mount a tmpfs here (needs root and mount permission)")
    try:
        path = mnt / "records.jsonl"
        line = json.dumps({"pad": "x" * 900})
        appended = 0
        with pytest.raises(OSError) as info:
            for _ in range(1000):
                append_line(path, line)
                appended += 1
        assert info.value.errno == errno.ENOSPC
        assert len(_lines(path)) == appended  # every line whole, the failed one absent
        os.truncate(path, 0)  # space freed: appends work again
        append_line(path, line)
        assert len(_lines(path)) == 1
    finally:
        os.system(f"umount {mnt}")


# ---------------------------------------------------------------------------------------------- case 5


@pytest.mark.fault("5 two runs into one --out")
def test_the_run_lock_names_its_owner_and_takes_over_a_stale_one(tmp_path, caplog):
    first = RunLock(tmp_path)
    first.acquire()
    owner = json.loads((tmp_path / LOCK_FILE).read_text())
    assert owner["pid"] == os.getpid() and owner["host"] == socket.gethostname()
    with pytest.raises(ConfigError, match=rf"in use by another run \(pid {os.getpid()} on host "):
        RunLock(tmp_path).acquire()
    first.release()
    assert not (tmp_path / LOCK_FILE).exists()
    # a lock file left by a process that died: no flock holds it
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": 999999, "host": "gone", "since": "then"}))
    with RunLock(tmp_path):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert "taking over a stale lock of pid 999999 on host gone" in caplog.text


# ---------------------------------------------------------------------------------------------- case 7


def _run_folder(path: Path, lines: list[str], run_json: str | None = None) -> Path:
    path.mkdir(parents=True)
    (path / "run.json").write_text(run_json if run_json is not None else json.dumps({"run_id": "r"}))
    (path / "records.jsonl").write_text("".join(line + "\n" for line in lines))
    return path


@pytest.mark.fault("7 report on malformed lines and files")
def test_malformed_record_lines_are_skipped_with_a_line(tmp_path, caplog):
    good = {"job_id": "j", "task": "classification", "dataset": "d", "pipeline": "p", "split": "test",
            "status": "failed", "metrics": {}, "timing": {}, "memory": {}}
    run = _run_folder(tmp_path / "run", ["[1,2,3]", '"text"', "{not json", json.dumps({"job_id": 3}),
                                         '{"job_id": NaN}', json.dumps(good)])
    assert RunStore(run).records() == [{**good, "schema_version": SCHEMA_VERSION}]  # read as the current version
    for number in (1, 2, 3, 4, 5):
        assert f"records.jsonl:{number}: skipping a malformed record line" in caplog.text
    # a record whose fields have other types was changed after the runner wrote it: refused, naming the field
    (run / "records.jsonl").write_text(json.dumps(good) + "\n" + json.dumps({**good, "metrics": [1]}) + "\n")
    with pytest.raises(BenchsuiteError, match=r"records\.jsonl:2: metrics: expected an object"):
        RunStore(run).records()


@pytest.mark.fault("7 report on malformed lines and files")
@pytest.mark.parametrize("command", ["report", "export", "compare"])
def test_report_export_compare_never_show_a_traceback(tmp_path, capsys, command):
    good = {"job_id": "j", "task": "classification", "dataset": "d", "pipeline": "p", "split": "test",
            "status": "failed", "failure": "exception", "error": "boom", "metrics": {}, "timing": {},
            "memory": {}, "family": "classical", "seed": 0}
    run = _run_folder(tmp_path / "run", ["[1,2,3]", json.dumps(good)])
    argv = {"report": ["report", str(run), "--no-html"], "export": ["export", str(run)],
            "compare": ["compare", str(run), str(run)]}[command]
    assert main(argv) == 0
    assert "Traceback" not in capsys.readouterr().err
    corrupt = _run_folder(tmp_path / "corrupt", [json.dumps(good)], run_json='{"run_id": ')
    argv = {"report": ["report", str(corrupt)], "export": ["export", str(corrupt)],
            "compare": ["compare", str(run), str(corrupt)]}[command]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [line for line in err if line.startswith("benchsuite: error: ")] and len(err) == 1
    assert "run.json: corrupt" in err[0]
    (corrupt / "run.json").write_text("[1, 2]")
    assert main(argv) == 2
    assert "holds a JSON list, expected an object" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- case 8


@pytest.mark.fault("8 option values silently misread")
@pytest.mark.parametrize(("argv", "message"), [
    (["--memory-limit-mb", "0"], "--memory-limit-mb must be a finite number above 0 MB"),
    (["--memory-limit-mb", "100"], "--memory-limit-mb must be at least 256 MB"),
    (["--pipelines", ""], "--pipelines must be a comma-separated list of non-empty names, got ''"),
    (["--seeds", ","], "--seeds must be non-negative integers"),
    (["--seeds", "1,1"], "--seeds lists a seed twice"),
    (["--time-limit", "-5"], "--time-limit must be a finite number above 0 s, got '-5'"),
    (["--time-limit", "nan"], "--time-limit must be a finite number above 0 s"),
    (["--jobs", "0"], "--jobs must be at least 1, got 0"),
    (["--tasks", "classification,"], "--tasks must be a comma-separated list of non-empty names"),
    (["--pipelines", "nn-l1", "--param", "nn-l1.k_values=abc"], "--param nn-l1.k_values='abc': expected"),
    (["--pipelines", "nn-l1", "--param", "nn-l1.nope=1"], "nn-l1 has no parameter 'nope'; valid names: "),
    (["--pipelines", "nn-l1", "--param", "cnn.epochs=3"], "--param names pipeline 'cnn', which is not in this run"),
])
def test_bad_option_values_fail_before_any_job(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    assert main(["run", "--profile", "smoke", "--tasks", "classification", "--out", str(out),
                 "--cache-dir", str(tmp_path / "cache"), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("benchsuite: error: ") and message in err[0], err
    assert not (out / "records.jsonl").exists() and not (out / "jobs").exists()


@pytest.mark.fault("8 option values silently misread")
def test_param_values_take_the_constructor_types():
    class P:
        def __init__(self, epochs: int = 3, lr: float = 0.1, flip: bool = True, sizes: tuple[int, ...] = (4, 8),
                     cap: float | None = None, name: str = "a", cs=(0.1, 1.0), loose=None):
            pass

    got = params.check_params("p", P, {"epochs": "30", "lr": "1e-3", "flip": "false", "sizes": "(2,4)",
                                       "cap": "none", "name": "b", "cs": "[0.5, 2]", "loose": "[1, 2]"})
    assert got == {"epochs": 30, "lr": 0.001, "flip": False, "sizes": (2, 4), "cap": None, "name": "b",
                   "cs": (0.5, 2.0), "loose": [1, 2]}
    assert params.check_params("p", P, {"cap": "2.5", "epochs": 7, "lr": 1})["cap"] == 2.5
    for bad, text in [({"epochs": "abc"}, "p.epochs='abc': expected int (default 3)"),
                      ({"epochs": "2.5"}, "expected int"), ({"flip": "maybe"}, "expected bool"),
                      ({"sizes": "a,b"}, "expected tuple"), ({"epochs": True}, "expected int"),
                      ({"typo": 1}, "valid names: cap, cs, epochs, flip, loose, lr, name, sizes")]:
        with pytest.raises(ConfigError, match=__import__("re").escape(text)):
            params.check_params("p", P, bad)


# ---------------------------------------------------------------------------------------------- case 9


def _cifar(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    folder = tmp_path / cifar10.FOLDER
    write_cifar_layout(folder, rng.integers(0, 256, (50, 32, 32, 3), dtype=np.uint8), np.arange(50) % 10,
                       rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8), np.arange(20) % 10, cifar10.CLASSES)
    return folder


def _rewrite(path: Path, **changes) -> None:
    batch = pickle.loads(path.read_bytes(), encoding="bytes")
    batch.update({k.encode(): v for k, v in changes.items()})
    path.write_bytes(pickle.dumps(batch))


@pytest.mark.fault("9 inputs that should be refused")
def test_float_and_out_of_range_cifar_labels_name_the_file(tmp_path):
    folder = _cifar(tmp_path)
    _rewrite(folder / "test_batch", labels=[2.5] + [0.0] * 19)
    with pytest.raises(DataError, match=r"test_batch: 'labels' are float64 \(for example 2.5\), expected whole"):
        cifar10.read_cifar10(folder)
    _rewrite(folder / "test_batch", labels=[3.0] * 20)  # whole numbers stored as floats are fine
    assert cifar10.read_cifar10(folder).test_labels.tolist() == [3] * 20
    _rewrite(folder / "test_batch", labels=[10] * 20)
    with pytest.raises(DataError, match=r"test_batch: labels outside 0\.\.9"):
        cifar10.read_cifar10(folder)


@pytest.mark.fault("9 inputs that should be refused")
def test_duplicate_class_names_name_the_file(tmp_path):
    folder = _cifar(tmp_path)
    names = list(cifar10.CLASSES)
    names[1] = "airplane"
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [n.encode() for n in names]}))
    with pytest.raises(DataError, match=r"batches\.meta: 'label_names' lists 'airplane' more than once"):
        cifar10.read_cifar10(folder)


@pytest.mark.fault("9 inputs that should be refused")
@pytest.mark.parametrize("bad_id", ["../../other/img", "/etc/img", "sub/img", "..", "a\\b"])
def test_image_ids_that_escape_the_folder_are_refused(tmp_path, bad_id):
    from benchsuite.data.voc import read_voc
    from tests.unit.test_voc import make_voc, simple_images

    folder = make_voc(tmp_path / "V", simple_images())
    test_file = folder / "ImageSets" / "Main" / "test.txt"
    test_file.write_text(test_file.read_text() + bad_id + "\n")
    with pytest.raises(DataError, match=r"ImageSets/Main/test.txt:\d+: image id .* is a path"):
        read_voc(folder)


# ---------------------------------------------------------------------------------------------- case 11


@pytest.mark.fault("11 killed jobs rerun by plain --resume")
def test_signals_the_runner_did_not_send_are_rerun_by_plain_resume(tmp_path):
    kind, message = describe_exit(WorkerExit(-9, None, 1.0, 10.0), 60, None)
    assert kind == "killed" and "SIGKILL" in message and "not sent by the runner" in message
    assert describe_exit(WorkerExit(-9, "interrupted", 1.0, 10.0), 60, None)[0] == "interrupted"
    assert describe_exit(WorkerExit(-9, "timeout", 1.0, 10.0), 60, None)[0] == "timeout"
    assert describe_exit(WorkerExit(3, None, 1.0, 10.0), 60, None)[0] == "crash"
    base = {"task": "t", "dataset": "d", "pipeline": "p", "split": "test"}
    recs = [{**base, "job_id": "ok", "status": "ok"},
            {**base, "job_id": "raised", "status": "failed", "failure": "exception"},
            {**base, "job_id": "killed", "status": "failed", "failure": "killed"},
            {**base, "job_id": "old-killed", "status": "failed", "failure": "crash",
             "error": "worker killed by signal SIGKILL (the system's out-of-memory killer?)"}]
    run = _run_folder(tmp_path / "run", [json.dumps(r) for r in recs])
    assert RunStore(run).recorded_jobs() == {"ok", "raised"}
    assert RunStore(run).recorded_jobs(include_failed=False) == {"ok"}
    assert rerun_on_resume(recs[2]) and not rerun_on_resume(recs[1])


# ---------------------------------------------------------------------------------------------- case 6


@pytest.mark.fault("6 full or read-only --out")
def test_a_worker_io_failure_names_its_cause():
    tail = f"some log\n{WORKER_IO_MARKER}cannot write /x/result.json: No space left on device\n"
    kind, message = describe_exit(WorkerExit(WORKER_IO_EXIT, None, 1.0, 10.0, tail), 60, None)
    assert kind == "io" and message == ("worker could not write its files: cannot write /x/result.json: "
                                        "No space left on device; fix the cause, then run the same command with "
                                        "--resume --retry-failed to run it again")


def test_data_sets_of_other_annotations_share_a_name_without_a_clash(tmp_path):
    """A VOC folder's boxes and its masks (one root), and the synthetic detection and segmentation stand-ins (two
    roots), are data sets of their own that keep their name: they serve other tasks, whose job ids differ."""

    @dataclass
    class _Annotated:
        name: str
        root: str
        annotations: list

    folder = str(tmp_path / "pf")
    datasets = {"voc:pf [boxes]": _Ds(_Annotated("pf", folder, ["boxes"])),
                "voc:pf [masks]": _Ds(_Annotated("pf", folder, ["masks"])),
                "synthetic-voc [boxes]": _Ds(_Annotated("synthetic-voc", str(tmp_path / "det"), ["boxes"])),
                "synthetic-voc [masks]": _Ds(_Annotated("synthetic-voc", str(tmp_path / "seg"), ["masks"]))}
    assert set(unique_dataset_names(datasets).values()) == {"pf", "synthetic-voc"}
    earlier = [{"name": "synthetic-voc", "root": str(tmp_path / "det"), "annotations": ["boxes"]}]
    assert unique_dataset_names(datasets, earlier)["synthetic-voc [masks]"] == "synthetic-voc"
