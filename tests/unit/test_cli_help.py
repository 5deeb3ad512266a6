"""Every command's ``--help`` prints (argparse formats help text with ``%``: a stray one breaks only that page)."""

from __future__ import annotations

import argparse

import pytest

from benchsuite.cli import build_parser


def _commands() -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(sub.choices)


@pytest.mark.parametrize("command", _commands())
def test_every_command_prints_its_help(command, capsys):
    with pytest.raises(SystemExit) as ended:
        build_parser().parse_args([command, "--help"])
    out = capsys.readouterr().out
    assert ended.value.code == 0 and out.startswith(f"usage: benchsuite {command}")
    if command in ("run", "study"):
        words = " ".join(out.split())
        assert "%(specs)s" not in out and "specs: cifar10," in words and "voc:PATH" in words  # the formats' specs
