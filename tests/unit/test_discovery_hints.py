"""Finding pipelines (issue 27): ``run --pipelines module:Class``; an unknown id names the near-miss entry-point
group a distribution registered it in, and a class that declares the id without an entry point (found by reading
source files, not importing them); ``check ALIAS`` refuses an entry point named otherwise than its class's id."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from benchsuite.errors import ConfigError
from benchsuite.registry import NOT_INSTALLED, ref_info, resolve

FIXTURES = Path(__file__).parents[1] / "fixtures"

MAJORITY = '''
raise SystemExit("this module must not be imported by a hint")
from benchsuite import Classifier

class Majority(Classifier):
    id = "majority-hint"
    family = "classical"
'''


def write_distribution(site: Path, name: str, entry_points: str) -> None:
    dist = site / f"{name.replace('-', '_')}-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(entry_points)


def test_an_entry_point_in_a_misspelt_group_is_named(tmp_path, monkeypatch):
    write_distribution(tmp_path, "benchsuite-typo", "[benchsuite.pipeline]\nmajority-hint = mypkg.majority:Majority\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError) as err:
        resolve(["majority-hint"])
    text = str(err.value)
    assert text.startswith("unknown pipeline 'majority-hint'")
    assert "benchsuite-typo registers majority-hint = mypkg.majority:Majority in the entry-point group " \
           "'benchsuite.pipeline'" in text and "'benchsuite.pipelines'" in text


def test_a_class_without_an_entry_point_is_named_without_importing_it(tmp_path, monkeypatch):
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "majority.py").write_text(MAJORITY)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        resolve(["majority-hint"])
    text = str(err.value)
    assert "mypkg/majority.py (the current folder) declares id 'majority-hint' in mypkg.majority:Majority" in text
    assert "--pipelines mypkg.majority:Majority" in text and 'majority-hint = \\"mypkg.majority:Majority\\"' not in text
    assert "mypkg.majority" not in sys.modules


def test_run_pipelines_takes_module_class(tmp_path, monkeypatch):
    shutil.copy(FIXTURES / "kit_mistakes.py", tmp_path / "kit_mistakes_copy.py")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    try:
        [info] = resolve(["kit_mistakes_copy:GoodKnn"], ["classification"])
        assert (info.id, info.ref, info.task, info.distribution) == \
            ("kit-good", "kit_mistakes_copy:GoodKnn", "classification", NOT_INSTALLED)
        assert resolve(["kit_mistakes_copy:GoodKnn"], ["detection"]) == []

        (tmp_path / "clash.py").write_text(
            "from kit_mistakes_copy import GoodKnn\n\nclass Clash(GoodKnn):\n    id = 'nn-l1'\n")
        with pytest.raises(ConfigError, match="its id 'nn-l1' is the installed pipeline"):
            ref_info("clash:Clash")
        with pytest.raises(ConfigError, match="cannot import it"):
            ref_info("no_such_module:Thing")
    finally:
        for name in ("kit_mistakes_copy", "clash"):
            sys.modules.pop(name, None)


def test_check_refuses_an_alias(tmp_path, monkeypatch, capsys):
    from benchsuite.cli import main

    shutil.copy(FIXTURES / "kit_mistakes.py", tmp_path / "kit_alias_module.py")
    write_distribution(tmp_path, "kit-alias", "[benchsuite.pipelines]\nmy-alias = kit_alias_module:GoodKnn\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert main(["check", "my-alias"]) == 2
        err = capsys.readouterr().err
        assert "cannot be checked under that name" in err and "differs from" in err and "'kit-good'" in err
    finally:
        sys.modules.pop("kit_alias_module", None)
