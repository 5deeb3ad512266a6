"""Hostile data, plugins and run folders (issue 22), unit level: each rule as a general property over random hostile
names and values (hypothesis), beside the issue's own examples. ``pytest -m fault`` prints them in the fault table
(cases ``22.1`` to ``22.8``); the end-to-end cases are in tests/integration/test_hostile_runs.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import re
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchsuite import testing
from benchsuite.cli import main
from benchsuite.data import cifar10, voc
from benchsuite.errors import BenchsuiteError, DataError
from benchsuite.plugins import NAME_PATTERN, name_problem
from benchsuite.report import markup
from benchsuite.results import safe_paths
from benchsuite.results.evidence import load_ragged, save_ragged
from benchsuite.results.intervals import interval_cache_path, read_interval_cache
from benchsuite.results.safe_paths import UnsafePathError, inside, is_safe_name, relative_inside, safe_name
from benchsuite.results.schema import SCHEMA_VERSION
from benchsuite.results.store import RunStore
from benchsuite.runner import proctree
from benchsuite.runner.resume import config_differences
from tests.unit.test_faults_units import _cifar
from tests.unit.test_voc import _obj, make_voc, simple_images

PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                            HealthCheck.too_slow])
#: text a hostile user would choose: separators, dots, markup, control characters, very long runs
HOSTILE_TEXT = st.one_of(
    st.text(min_size=0, max_size=80),
    st.text(alphabet=st.sampled_from(list("/\\.~$`*_[]<>&|#!-+=\n\r\t\0 aZ9")), min_size=1, max_size=40),
    st.sampled_from(["..", ".", "/etc/passwd", "x/../../../../tmp/PWNED", "<script>alert(1)</script>", "a" * 3000,
                     "**bold**", "`code`", "| cell |", "\n# heading", "-", "1. item", "[link](http://x)", "&amp;"]),
)


# ============================================================================ 22.1 confinement


@pytest.mark.fault("22.1 confinement: names and paths from data, plugins and records")
@PROPERTY
@given(HOSTILE_TEXT)
def test_safe_name_is_a_plain_stable_name_for_any_text(text):
    name = safe_name(text)
    assert is_safe_name(name) and name == safe_name(text)
    assert "/" not in name and name not in (".", "..") and len(name) <= safe_paths.MAX_NAME
    if is_safe_name(text):
        assert name == text  # a name that is already plain stays as it is (job ids and files keep their names)
    else:
        assert re.fullmatch(r".*-[0-9a-f]{8}", name)  # the hash keeps two unsafe texts apart


@pytest.mark.fault("22.1 confinement: names and paths from data, plugins and records")
@PROPERTY
@given(st.lists(HOSTILE_TEXT, min_size=1, max_size=3))
def test_paths_built_from_hostile_parts_stay_inside_their_root(tmp_path_factory, parts):
    root = tmp_path_factory.mktemp("root")
    (root / "sub").mkdir()
    outside = tmp_path_factory.mktemp("outside")
    (root / "sub" / "escape").symlink_to(outside)
    real_root = os.path.realpath(root)
    for build in (lambda: inside(root, *parts), lambda: relative_inside(root, "/".join(parts)),
                  lambda: relative_inside(root, "sub/escape/" + "/".join(parts))):
        try:
            path = build()
        except UnsafePathError as exc:
            assert "\n" not in str(exc).strip()
            continue
        assert os.path.realpath(path).startswith(real_root + os.sep) or os.path.realpath(path) == real_root


@pytest.mark.fault("22.1 confinement: names and paths from data, plugins and records")
@PROPERTY
@given(HOSTILE_TEXT)
def test_plugin_names_are_restricted_to_the_documented_set(name):
    problem = name_problem(name, "pipeline")
    assert (problem is None) == bool(NAME_PATTERN.fullmatch(name))
    if problem is None:
        assert is_safe_name(name)  # an allowed id is already a plain file name
    else:
        assert "is not allowed" in problem


@pytest.mark.fault("22.1 confinement: names and paths from data, plugins and records")
def test_a_plugin_whose_id_holds_a_path_is_listed_broken(tmp_path, monkeypatch, capsys):
    from benchsuite.registry import PIPELINES, discover
    from tests.conftest import install_fixture_plugins

    install_fixture_plugins(tmp_path, monkeypatch, "hostile_plugins", "hostile-plugins",
                            {"x/../../evil": "hostile_plugins:BadId"})
    PIPELINES.discover(refresh=True)
    info = discover()["x/../../evil"]
    assert not info.ok and "is not allowed" in info.error
    assert main(["list", "--strict"]) == 1
    assert "x/../../evil" in capsys.readouterr().err


def _unescaped_markup(markdown: str) -> list[str]:
    """Raw HTML openers (``<``, ``&``) in Markdown text outside code spans that no backslash escapes."""
    found = []
    for line in markdown.splitlines():
        i = 0
        while i < len(line):
            if line[i] == "\\":
                i += 2
                continue
            if line[i] == "`":
                run = len(line[i:]) - len(line[i:].lstrip("`"))
                end = line.find("`" * run, i + run)
                while end >= 0 and line[end + run:end + run + 1] == "`":
                    end = line.find("`" * run, end + run + 1)
                if end >= 0:
                    i = end + run
                    continue
            if line[i] in "<&":
                found.append(line)
            i += 1
    return found


@pytest.mark.fault("22.1 confinement: untrusted text is text in report.md and report.html")
@PROPERTY
@given(HOSTILE_TEXT)
def test_untrusted_text_stays_text_in_markdown_and_html(text):
    for md in (markup.lit(text), markup.lit(text, line_start=True), markup.code(text)):
        assert "\n" not in md and "\r" not in md
        assert not _unescaped_markup(md), md
        html = markup.to_html(md)
        assert "<" not in html.replace("<code>", "").replace("</code>", "")  # no tag but the code span's
        # what the HTML shows is the text itself (control characters as spaces, long text cut)
        import html as html_module

        shown = html_module.unescape(html.replace("<code>", "").replace("</code>", ""))
        assert shown.strip() == markup.clean(text, 200 if md.startswith("`") else markup.MAX_TEXT).strip()


# ============================================================================ 22.2 resume never mixes


def _run_json(**over) -> dict:
    base = {"run_id": "r", "profile": "smoke",
            "config": {"eval_splits": ["test"], "device": "cpu", "weights": None, "params": {"p": {"k": 3}},
                       "threads_per_job": 2},
            "time_budget_s": None, "pipelines": {"p": {"module": "m", "qualname": "C", "distribution": "d",
                                                       "version": "1"}},
            "git": {"commit": "abc", "dirty": False, "diff_sha256": None},
            "versions": {"numpy": "2.0", "torch": "2.3"},
            "datasets": [{"name": "ds", "fingerprint": "f1", "split_fingerprints": {"test": "t1"}}]}
    base.update(over)
    return base


_MUTATIONS = [
    ("profile", lambda i, v: i.update(profile=v)),
    ("scored splits", lambda i, v: i["config"].update(eval_splits=[v])),
    ("device", lambda i, v: i["config"].update(device=v)),
    ("--weights", lambda i, v: i["config"].update(weights=v)),
    ("threads per job", lambda i, v: i["config"].update(threads_per_job=len(v) + 2)),
    ("--time-budget", lambda i, v: i.update(time_budget_s=len(v) + 0.5)),
    ("--param values of p", lambda i, v: i["config"]["params"]["p"].update(k=v)),
    ("the class registered as p", lambda i, v: i["pipelines"]["p"].update(module=v)),
    ("code commit", lambda i, v: i["git"].update(commit=v)),
    ("uncommitted changes", lambda i, v: i["git"].update(dirty=True, diff_sha256=v)),
    ("numpy version", lambda i, v: i["versions"].update(numpy=v)),
    ("data set ds content", lambda i, v: i["datasets"][0].update(fingerprint=v)),
    ("data set ds splits", lambda i, v: i["datasets"][0].update(split_fingerprints={"test": v})),
]


@pytest.mark.fault("22.2 resume never mixes configurations")
@PROPERTY
@given(st.sampled_from(_MUTATIONS), st.text(min_size=1, max_size=20).filter(lambda v: v not in ("smoke", "test",
                                                                                                 "cpu", "m", "abc",
                                                                                                 "2.0", "f1", "t1")))
def test_any_change_of_what_decides_a_result_is_a_listed_difference(mutation, value):
    what, mutate = mutation
    old, new = _run_json(), _run_json()
    assert config_differences(old, new, {"p"}) == []
    mutate(new, value)
    found = config_differences(old, new, {"p"})
    assert len(found) == 1 and found[0].startswith(what), found
    # a pipeline new to the run brings its own parameters: no difference for it
    new2 = _run_json()
    new2["config"]["params"]["q"] = {"k": value}
    assert config_differences(old, new2, {"p"}) == []


@pytest.mark.fault("22.2 resume never mixes configurations")
@PROPERTY
@given(st.binary(min_size=1, max_size=200).filter(lambda b: b"\n" not in b))
def test_a_complete_last_line_without_its_newline_is_kept_only_a_partial_one_is_cut(tmp_path_factory, junk):
    from benchsuite.results.atomic import append_line, repair_tail

    path = tmp_path_factory.mktemp("rec") / "records.jsonl"
    record = json.dumps({"n": 1, "text": junk.decode("latin1")})
    path.write_bytes(b'{"n": 0}\n' + record.encode())  # a whole record, its newline lost
    assert repair_tail(path) == b""
    assert path.read_bytes().endswith(b"\n") and len(path.read_bytes().splitlines()) == 2
    path.write_bytes(b'{"n": 0}\n' + record.encode()[:-1])  # cut inside the record: not JSON, so cut off
    assert repair_tail(path) == record.encode()[:-1]
    append_line(path, json.dumps({"n": 2}))
    assert [json.loads(x)["n"] for x in path.read_bytes().splitlines()] == [0, 2]


# ============================================================================ 22.3 process containment


@pytest.mark.fault("22.3 no process outlives its job (random fork trees)")
@settings(max_examples=6, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.booleans(), st.booleans()), min_size=1, max_size=5))
def test_kill_tree_ends_every_descendant_however_it_forked(shape):
    """A random tree: each entry starts a process under an earlier one (``parent`` index), in a session of its own
    or not, ignoring SIGTERM or not; the root's tree is frozen and killed and nothing of it is left."""
    script = (
        "import os, signal, subprocess, sys, json, time\n"
        "shape = json.loads(sys.argv[1]); me = int(sys.argv[2])\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "for i, (parent, setsid, _) in enumerate(shape):\n"
        "    if parent == me:\n"
        "        subprocess.Popen([sys.executable, __file__, sys.argv[1], str(i + 1), sys.argv[3]],\n"
        "                         start_new_session=setsid)\n"
        "open(os.path.join(sys.argv[3], str(os.getpid())), 'w').close()\n"
        "time.sleep(600)\n")
    import tempfile

    folder = Path(tempfile.mkdtemp())
    (folder / "node.py").write_text(script)
    tree = [(min(parent, i), setsid, ignore) for i, (parent, setsid, ignore) in enumerate(shape)]
    root = subprocess.Popen([sys.executable, str(folder / "node.py"), json.dumps(tree), "0", str(folder)])
    deadline = time.monotonic() + 60
    while len([p for p in folder.iterdir() if p.name.isdigit()]) < len(tree) + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    pids = [int(p.name) for p in folder.iterdir() if p.name.isdigit()]
    assert len(pids) == len(tree) + 1
    proctree.become_subreaper()  # this test process stands in for the worker: orphans stay in its tree
    try:
        proctree.kill_tree(root.pid)
        root.wait(timeout=10)
        # the orphans were re-parented to this process: end them as the worker does at the end of a job
        proctree.kill_tree(os.getpid(), include_root=False)
        assert proctree.wait_gone(pids, 10), [p for p in pids if proctree.alive(p)]
    finally:
        for pid in pids:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        proctree.become_subreaper(False)


@pytest.mark.fault("22.3 no data read blocks on a special file")
@pytest.mark.parametrize("what", ["annotation", "image", "split list", "cifar batch", "run.json", "records"])
def test_special_files_are_refused_at_once_with_one_line(tmp_path, what):
    def fifo(path: Path) -> None:
        path.unlink(missing_ok=True)
        os.mkfifo(path)

    start = time.monotonic()
    if what == "cifar batch":
        folder = _cifar(tmp_path)
        fifo(folder / "data_batch_2")
        with pytest.raises(DataError, match=r"data_batch_2: is a FIFO \(named pipe\), not a regular file"):
            cifar10.read_cifar10(folder)
    elif what in ("run.json", "records"):
        run = tmp_path / "run"
        run.mkdir()
        (run / "run.json").write_text(json.dumps({"run_id": "r"}))
        fifo(run / ("run.json" if what == "run.json" else "records.jsonl"))
        with pytest.raises(BenchsuiteError, match="is a FIFO"):
            RunStore(run).read_run_info() if what == "run.json" else RunStore(run).records()
    else:
        folder = make_voc(tmp_path / "V", simple_images())
        target = {"annotation": folder / "Annotations" / "000001.xml", "image": folder / "JPEGImages" / "000001.jpg",
                  "split list": folder / "ImageSets" / "Main" / "train.txt"}[what]
        fifo(target)
        with pytest.raises(DataError, match=rf"{re.escape(target.name)}: is a FIFO \(named pipe\)") as info:
            voc.read_voc(folder)
        assert "\n" not in str(info.value)
    assert time.monotonic() - start < 10  # never blocked on the FIFO


# ============================================================================ 22.4 bounded outputs


@pytest.mark.fault("22.4 bounded outputs: predictions checked before they are loaded")
@PROPERTY
@given(st.lists(st.integers(0, 30), min_size=1, max_size=6), st.integers(1, 20))
def test_per_image_caps_and_sizes_are_checked_before_loading(tmp_path_factory, counts, cap):
    path = tmp_path_factory.mktemp("pred") / "predictions-test.npz"
    save_ragged(path, [f"img{i}" for i in range(len(counts))],
                boxes=[np.ones((n, 4)) for n in counts], scores=[np.ones(n) for n in counts])
    if max(counts) > cap:
        with pytest.raises(ValueError, match=rf"has {max(counts):,} entries, more than the {cap:,} per image"):
            load_ragged(path, max_per_image=cap)
    else:
        _ids, arrays = load_ragged(path, max_per_image=cap)
        assert [len(b) for b in arrays["boxes"]] == counts
    with pytest.raises(ValueError, match="refused before"):  # a file whose arrays would not fit in the limit
        load_ragged(path, max_bytes=8)


@pytest.mark.fault("22.4 bounded outputs: predictions checked before they are loaded")
def test_a_predictions_file_with_broken_offsets_or_ids_is_refused(tmp_path):
    import io
    import zipfile

    path = tmp_path / "p.npz"
    np.savez(path, offsets=np.array([0, 5, 2]), image_ids=np.array(["a", "b"]), boxes=np.zeros((5, 4)))
    with pytest.raises(ValueError, match="not a non-decreasing index"):
        load_ragged(path)
    np.savez(path, offsets=np.array([0, 2]), image_ids=np.array(["a", "b"]), boxes=np.zeros((2, 4)))
    with pytest.raises(ValueError, match="2 image ids for 1 images"):
        load_ragged(path)
    # a member that declares a huge array: refused from its header, nothing allocated
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (2**40, 4)})
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("boxes.npy", header.getvalue())
        z.writestr("offsets.npy", b"")
    with pytest.raises(ValueError, match="refused before loading"):
        load_ragged(path)


# ============================================================================ 22.5 every reader total


@pytest.mark.fault("22.5 every reader total: CIFAR pickles")
def test_a_pickle_declaring_a_huge_object_is_refused_before_allocation(tmp_path):
    folder = _cifar(tmp_path)
    (folder / "data_batch_1").write_bytes(b"\x80\x04\x8e" + struct.pack("<Q", 2**40) + b"abc.")  # 1 TiB of bytes
    with pytest.raises(DataError, match=r"data_batch_1: truncated or not a pickle \(expected 1099511627776 bytes"):
        cifar10.read_cifar10(folder)
    nested: list = [1]
    for _ in range(40):  # a list whose elements are the same list: 2**40 numbers once made an array
        nested = [nested, nested]
    (folder / "data_batch_1").write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": nested}))
    with pytest.raises(DataError, match=r"data_batch_1: 'labels' holds a list"):
        cifar10.read_cifar10(folder)


@pytest.mark.fault("22.5 every reader total: CIFAR pickles (random damage)")
@PROPERTY
@given(st.data())
def test_a_damaged_cifar_batch_is_read_or_refused_with_one_line(tmp_path_factory, data):
    folder = _cifar(tmp_path_factory.mktemp("c"))
    path = folder / "test_batch"
    raw = bytearray(path.read_bytes())
    for _ in range(data.draw(st.integers(1, 6))):
        where = data.draw(st.integers(0, len(raw) - 1))
        raw[where] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(raw)))
    path.write_bytes(bytes(raw[:cut]))
    try:
        cifar10.read_cifar10(folder)
    except DataError as exc:
        assert str(exc).startswith(str(path)) and "\n" not in str(exc)


@pytest.mark.fault("22.5 every reader total: VOC XML numbers")
@PROPERTY
@given(st.sampled_from(["difficult", "truncated", "xmin", "ymax", "width"]),
       st.one_of(st.sampled_from(["inf", "-inf", "1e999", "nan", "NaN", "-1e308", "1e308", "0x10", "", " ", "١",
                                  "9" * 400, "1_000", "true", "maybe"]), st.text(max_size=12)))
def test_any_number_in_an_annotation_is_read_or_the_image_skipped_with_the_field_named(tmp_path_factory, tag, text):
    folder = make_voc(tmp_path_factory.mktemp("v") / "V", simple_images(8))
    xml = folder / "Annotations" / "000002.xml"
    body = xml.read_text()
    body = re.sub(rf"<{tag}>[^<]*</{tag}>", f"<{tag}>{text.replace('<', '').replace('&', '')}</{tag}>", body, count=1)
    xml.write_text(body)
    data = voc.read_voc(folder)  # never raises for one bad image
    kept = {s.image_id for s in data.samples}
    if "000002" not in kept:
        notes = "\n".join(data.problems.lines())
        assert "000002.xml" in notes and (f"<{tag}>" in notes or "malformed" in notes)
    else:
        sample = next(s for s in data.samples if s.image_id == "000002")
        assert np.all(np.isfinite(sample.boxes))


@pytest.mark.fault("22.5 every reader total: the interval cache")
@pytest.mark.parametrize("content", ["42", "[1, 2]", '{"k": 5}', '{"k": {"map50": [1, "x"]}}', '{"k": {"m": [2, 1]}}',
                                     '{"k": {"m": [NaN, 1]}}', "{", '{"k": {"m": [0.1, 0.2]}, "j": 7}'])
def test_a_damaged_interval_cache_is_ignored_entry_by_entry(tmp_path, content):
    interval_cache_path(tmp_path).parent.mkdir(parents=True)
    interval_cache_path(tmp_path).write_text(content)
    cache = read_interval_cache(tmp_path)
    assert cache == ({"k": {"m": [0.1, 0.2]}} if content.startswith('{"k": {"m": [0.1') else {})


def _record(**over) -> dict:
    rec = {"schema_version": SCHEMA_VERSION, "run_id": "r", "job_id": "classification--d--p--s0",
           "task": "classification", "dataset": "d", "split": "test", "pipeline": "p", "family": "classical",
           "status": "ok", "metrics": {"accuracy": 0.5}, "timing": {"fit_s": 1.0}, "memory": {}, "params": {},
           "fit_info": {}, "seed": 0, "device": "cpu", "failure": None, "error": None,
           "finished_at": "2026-01-01T00:00:00+00:00"}
    rec.update(over)
    return rec


def _folder(path: Path, records: list[dict], run: dict | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "run.json").write_text(json.dumps(run if run is not None else {"run_id": "r", "profile": "smoke"}))
    (path / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _json_values():
    return st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=False),
                                  st.text(max_size=30)),
                        lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                        max_leaves=8)


_RECORD_KEYS = ["seed", "fit_info", "metrics", "timing", "memory", "params", "shortcuts", "status", "family",
                "consumed", "artifacts", "output", "executor", "determinism", "config_changed", "pipeline_class",
                "error", "failure", "harness_floor", "pretrained_reference", "node", "log"]
_RUN_KEYS = ["machine", "config", "versions", "git", "datasets", "argv", "profile", "machine_state", "changes",
             "time_budget_s", "pipelines", "data_findings", "created_at"]


@pytest.mark.fault("22.5 every reader total: records and run.json (random fields)")
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["record", "run"]), st.data(), _json_values())
def test_report_and_compare_on_any_field_value_give_a_report_or_one_line(tmp_path_factory, capsys, where, data,
                                                                         value):
    folder = tmp_path_factory.mktemp("run") / "run"
    if where == "record":
        key = data.draw(st.sampled_from(_RECORD_KEYS))
        hostile = _record(job_id="classification--d--q--s0", pipeline="q", **{key: value})
        if data.draw(st.booleans()):  # written before the schema (version 1): upgraded, then checked
            del hostile["schema_version"]
        _folder(folder, [_record(), hostile])
    else:
        key = data.draw(st.sampled_from(_RUN_KEYS))
        _folder(folder, [_record()], {"run_id": "r", key: value})
    for argv in (["report", str(folder), "--no-html"], ["compare", str(folder), str(folder)]):
        code = main(argv)
        err = capsys.readouterr().err
        assert "Traceback" not in err, err
        assert code in (0, 2), (code, err)
        if code == 2:
            lines = [ln for ln in err.strip().splitlines() if ln.startswith("benchsuite: error: ")]
            named = "records.jsonl" if where == "record" else "run.json"  # e.g. a number JSON does not have
            assert len(lines) == 1 and (key in lines[0] or named in lines[0]), err


@pytest.mark.fault("22.5 every reader total: records and run.json (the issue's examples)")
@pytest.mark.parametrize(("where", "change", "words"), [
    ("record", {"fit_info": []}, "records.jsonl:1: fit_info: expected an object"),
    ("record", {"seed": "zero"}, "records.jsonl:1: seed: expected int, got str 'zero'"),
    ("run", {"machine": "a string"}, "run.json: machine: expected an object"),
])
@pytest.mark.parametrize("command", ["report", "compare", "export"])
def test_the_issues_damaged_run_folders_give_one_line_and_exit_2(tmp_path, capsys, where, change, words, command):
    run = _folder(tmp_path / "run", [_record(**change)] if where == "record" else [_record()],
                  {"run_id": "r", **change} if where == "run" else None)
    argv = {"report": ["report", str(run)], "compare": ["compare", str(run), str(run)],
            "export": ["export", str(run)]}[command]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("benchsuite: error: ") and words in err[0], err


@pytest.mark.fault("22.5 every reader total: a damaged interval cache is recomputed")
def test_the_report_recomputes_a_cache_that_holds_a_number(tmp_path, capsys):
    run = _folder(tmp_path / "run", [_record()])
    interval_cache_path(run).parent.mkdir(parents=True)
    interval_cache_path(run).write_text("42")
    assert main(["report", str(run), "--no-html"]) == 0
    assert json.loads(interval_cache_path(run).read_text()) != 42


# ============================================================================ 22.6 data sanity


@pytest.mark.fault("22.6 data sanity before any job starts")
def test_split_overlaps_objectless_test_splits_and_undecodable_images_are_found(tmp_path):
    from benchsuite.data.sanity import ERROR, WARNING, check_dataset, decode_error

    images = simple_images(8)
    folder = make_voc(tmp_path / "V", images, {"train": ["000000", "000001", "000002", "000003"],
                                               "val": ["000003", "000004"], "test": ["000001", "000006", "000007"]})
    ds = voc.VocDataset(folder, "V")
    found = check_dataset(ds, "V", {"train": None, "val": None, "test": None}, {"test": None}, True, tmp_path / "c")
    assert [f.level for f in found] == [ERROR, WARNING], found
    assert "V: 1 image id(s) are in the test split and in train or val (e.g. 000001)" in found[0].message
    assert "V: 1 image id(s) are in both train and val (e.g. 000003)" in found[1].message
    # a test split whose objects are all difficult (or none)
    images = {k: (w, h, [_obj("person", (5, 6, 30, 40), difficult=1)]) if k in ("000006", "000007") else (w, h, o)
              for k, (w, h, o) in simple_images(8).items()}
    folder = make_voc(tmp_path / "W", images, {"train": ["000000", "000001"], "val": ["000002"],
                                               "test": ["000006", "000007"]})
    found = check_dataset(voc.VocDataset(folder, "W"), "W", {"test": None}, {"test": None}, True, None)
    assert [f.level for f in found] == [ERROR] and "the test split (2 image(s)) holds no object" in found[0].message
    # a truncated JPEG passes the header check of the reader, and fails here
    jpeg = folder / "JPEGImages" / "000006.jpg"
    jpeg.write_bytes(jpeg.read_bytes()[: len(jpeg.read_bytes()) // 2])
    assert "truncated" in decode_error(jpeg)


@pytest.mark.fault("22.6 data sanity: images decoded once per data set content")
def test_decoding_verdicts_are_cached_by_the_data_sets_fingerprint(tmp_path, monkeypatch):
    from benchsuite.data import sanity

    folder = make_voc(tmp_path / "V", simple_images(8))
    ds = voc.VocDataset(folder, "V")
    calls = []
    real = sanity.decode_error
    monkeypatch.setattr(sanity, "decode_error", lambda p: calls.append(p) or real(p))
    used = {"train": None, "val": None, "test": None}
    assert sanity.undecodable_images(ds, "V", used, tmp_path / "cache", ds.info.fingerprint) == []
    first = len(calls)
    assert first == 8
    assert sanity.undecodable_images(ds, "V", used, tmp_path / "cache", ds.info.fingerprint) == []
    assert len(calls) == first  # the second run decodes nothing
    cache = next((tmp_path / "cache" / "data_checks").iterdir())
    cache.write_text('{"fingerprint": 3}')  # damaged: recomputed
    sanity.undecodable_images(ds, "V", used, tmp_path / "cache", ds.info.fingerprint)
    assert len(calls) == 2 * first


# ============================================================================ 22.7 provenance


@pytest.mark.fault("22.7 a plugin claiming a built-in id is refused unless asked for")
def test_a_plugin_claiming_a_built_in_id_is_refused_unless_asked_for(tmp_path, monkeypatch, capsys):
    from benchsuite.plugins import OVERRIDE_ENV
    from benchsuite.registry import PIPELINES, discover, pipeline_provenance
    from tests.conftest import install_fixture_plugins

    install_fixture_plugins(tmp_path, monkeypatch, "hostile_plugins", "hostile-plugins",
                            {"nn-l1": "hostile_plugins:ClaimsNnL1"})
    monkeypatch.delenv(OVERRIDE_ENV, raising=False)
    info = discover()["nn-l1"]
    assert info.ok and info.distribution == "benchsuite" and info.ref.startswith("pipelines.")
    refused = PIPELINES.refused()
    assert [p.ref for p in refused] == ["hostile_plugins:ClaimsNnL1"]
    assert "claims the built-in pipeline 'nn-l1'" in refused[0].error and f"{OVERRIDE_ENV}=nn-l1" in refused[0].error
    assert main(["list", "--strict"]) == 1
    assert "refused plugin nn-l1 (hostile_plugins:ClaimsNnL1, from hostile-plugins)" in capsys.readouterr().err
    monkeypatch.setenv(OVERRIDE_ENV, "nn-l1")
    info = discover()["nn-l1"]
    assert info.ok and info.ref == "hostile_plugins:ClaimsNnL1" and info.overrides.startswith("pipelines.")
    prov = pipeline_provenance(info)
    assert prov == {"module": "hostile_plugins", "qualname": "ClaimsNnL1", "distribution": "hostile-plugins",
                    "version": "0.1", "overrides": info.overrides}


# ============================================================================ 22.8 the issue's other cases


@pytest.mark.fault("22.8 --jobs whose memory share is under the floor")
def test_jobs_that_would_split_memory_under_the_floor_are_refused(tmp_path, capsys):
    import psutil

    too_many = int(psutil.virtual_memory().total / 2**20 * 0.9 / 256) + 1
    assert main(["run", "--profile", "smoke", "--tasks", "classification", "--jobs", str(too_many),
                 "--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--jobs {too_many} leaves each job" in err[0] and "use at most --jobs" in err[0]
    assert not (tmp_path / "run" / "jobs").exists()


@pytest.mark.fault("22.8 a very long class name fails early")
def test_a_three_thousand_character_class_name_is_named_at_reading(tmp_path):
    images = {k: (w, h, [_obj("c" * 3000, (5, 6, 30, 40))]) for k, (w, h, _) in simple_images(4).items()}
    folder = make_voc(tmp_path / "V", images)
    with pytest.raises(DataError, match="no <object> in any readable annotation"):
        voc.read_voc(folder)
    data_notes = voc.read_voc(make_voc(tmp_path / "W", {**simple_images(4), **{"000009": images["000000"]}},
                                       {"train": ["000000", "000001", "000009"], "test": ["000002", "000003"]}))
    assert any("<name> of 3000 characters" in line for line in data_notes.problems.lines())


@pytest.mark.fault("22.8 hostile plugin: a hung `benchsuite check` is ended")
def test_check_ends_a_pipeline_that_hangs_and_ignores_sigterm(tmp_path, monkeypatch, capsys):
    from tests.conftest import install_fixture_plugins

    install_fixture_plugins(tmp_path, monkeypatch, "hostile_plugins", "hostile-plugins",
                            {"test-hangs": "hostile_plugins:Hangs"})
    pids = tmp_path / "pids"
    scratch = tmp_path / "tmp"  # where the checks' temporary folders go; ended checks must leave none
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setattr(testing, "_DATA", {})
    monkeypatch.setattr(testing, "_FOLDERS", [])
    start = time.monotonic()
    assert main(["check", "test-hangs", "--time-limit", "3", "--param", f"pid_file={pids}"]) == 1
    assert time.monotonic() - start < 60
    out = capsys.readouterr().out
    assert "FAIL  time limit: the checks of test-hangs were still running after 3 s" in out
    left = [int(p) for line in pids.read_text().splitlines() for p in line.split()]
    assert left and proctree.wait_gone(left, 5), _ps(left)
    assert sorted(p.name for p in scratch.iterdir()) == []


def _ps(pids: list[int]) -> str:
    return subprocess.run(["ps", "-o", "pid,ppid,stat,cmd", "-p", ",".join(map(str, pids))], capture_output=True,
                          text=True).stdout


@pytest.mark.fault("22.8 a job whose folder was removed mid-run gets a cause")
def test_a_job_folder_removed_before_its_result_was_read_is_the_named_cause(tmp_path, monkeypatch):
    import shutil
    from types import SimpleNamespace

    from benchsuite.runner import execute

    job_dir = tmp_path / "jobs" / "j"

    def write() -> None:
        job_dir.mkdir(parents=True, exist_ok=True)
        (job_dir / "job.json").write_text("{}")

    job = SimpleNamespace(job_dir=str(job_dir), job_id="j", num_threads=1, time_limit_s=10.0, memory_limit_mb=None,
                          path=job_dir / "job.json", write=write)

    def worker_whose_folder_goes(*args, **kwargs):
        shutil.rmtree(job_dir)  # a clean-up script, while the job ran
        return execute.WorkerExit(1, None, 0.1, 10.0, "FileNotFoundError: job.json")

    monkeypatch.setattr(execute, "run_worker", worker_whose_folder_goes)
    result = execute.run_job_dir(job)
    assert result["failure"] == "io"
    assert result["error"] == (f"the job folder {job_dir} was removed while the job ran, so its result was lost; "
                               f"fix the cause, then run the same command with --resume --retry-failed to run it "
                               f"again")


@pytest.mark.fault("22.1 confinement: names and paths from data, plugins and records")
@PROPERTY
@given(st.lists(HOSTILE_TEXT, min_size=1, max_size=4, unique=True))
def test_figure_files_named_from_records_stay_in_the_assets_folder(tmp_path_factory, names):
    from benchsuite.report.document import Figures
    from benchsuite.report.plots import Plot
    from benchsuite.report.render import figure_file, to_markdown

    root = tmp_path_factory.mktemp("report")
    assets = root / "report_files"
    md = to_markdown([Figures([Plot(n, n, "caption", b"png") for n in names])], assets)
    written = sorted(p.name for p in assets.iterdir())
    assert written == sorted({figure_file(n) for n in names}) and len(written) == len(names)
    assert [p for p in root.rglob("*") if p.is_file()] == [assets / w for w in written] or \
        sorted(p for p in root.rglob("*") if p.is_file()) == sorted(assets / w for w in written)
    assert not _unescaped_markup(md)


@pytest.mark.fault("22.1 confinement: untrusted text is text in report.md and report.html")
def test_text_from_plugins_and_records_is_escaped_in_both_reports(tmp_path):
    from benchsuite.report.markdown import write_report

    evil = "<img src=x onerror=alert(1)>\n# head | cell **b** `c` [l](http://x)"
    records = [_record(fit_info={"weights": evil, "report_group": evil, "report_note": evil},
                       shortcuts=[{"what": evil, "asked": 2, "done": 1, "reason": evil}], shortened=True),
               _record(job_id="classification--d--q--s0", pipeline="q", status="failed", failure=evil, error=evil,
                       metrics={})]
    run = _folder(tmp_path / "run", records, {"run_id": evil, "profile": evil, "argv": [evil],
                                              "machine": {"cpu": evil}, "datasets": [{"name": evil, "notes": [evil]}]})
    paths = write_report(run)
    md, page = paths.markdown.read_text(), paths.html.read_text()
    assert "\n# head" not in md and "\n#" not in md.split("## Headline")[0].split("\n", 1)[1]
    assert not _unescaped_markup(md)  # every < and & escaped, or inside a code span (never parsed as HTML)
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "href=\"http" not in page  # no link made of the text (the page links only to its own sections)
