"""Atomic writes: whole files only, nothing left behind on failure, ordinary permissions."""

from __future__ import annotations

import json
import os
import stat

import pytest

from benchsuite.results.atomic import append_line, atomic_write_json, atomic_write_text


def test_atomic_write_replaces_whole_file_and_leaves_no_temporaries(tmp_path):
    target = tmp_path / "sub" / "report.md"
    atomic_write_text(target, "first")
    atomic_write_text(target, "second")
    assert target.read_text() == "second"
    assert [p.name for p in target.parent.iterdir()] == ["report.md"]


def test_atomic_write_gives_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644


def test_failed_serialisation_keeps_the_old_file(tmp_path):
    target = tmp_path / "run.json"
    atomic_write_json(target, {"a": 1})
    with pytest.raises(TypeError):
        atomic_write_json(target, {"a": object()})
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_append_line_rejects_embedded_newlines(tmp_path):
    append_line(tmp_path / "r.jsonl", '{"a": 1}')
    with pytest.raises(ValueError, match="newline"):
        append_line(tmp_path / "r.jsonl", '{"a":\n1}')
    assert (tmp_path / "r.jsonl").read_text() == '{"a": 1}\n'
