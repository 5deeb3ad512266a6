"""The environment's OpenCV (issue 27): every installed distribution that provides ``cv2`` is found from its
metadata; two of them (a plugin that pulled ``opencv-python`` in beside the suite's contrib build) are a loud
warning, naming both and the fix, in ``benchsuite list`` (and ``list --strict`` fails). The second distribution is
faked: a dist-info folder on ``sys.path``, as ``pip install`` would leave it."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchsuite.environment import SUITE_OPENCV, Cv2Environment, _from_files, copy_note, cv2_environment, cv2_providers


def fake_distribution(site: Path, name: str, version: str, *, top_level: str | None = None, record: str = "",
                      requires: tuple[str, ...] = ()) -> None:
    dist = site / f"{name.replace('-', '_')}-{version}.dist-info"
    dist.mkdir(parents=True)
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}",
            *(f"Requires-Dist: {r}" for r in requires)]
    (dist / "METADATA").write_text("\n".join(meta) + "\n")
    if top_level is not None:
        (dist / "top_level.txt").write_text(top_level)
    (dist / "RECORD").write_text(record)


@pytest.fixture()
def second_opencv(tmp_path, monkeypatch):
    """``opencv-python`` 5.0.0 installed beside the suite's OpenCV, required by a plugin distribution."""
    site = tmp_path / "site"
    fake_distribution(site, "opencv-python", "5.0.0", top_level="cv2\n")
    fake_distribution(site, "benchsuite-colour-plugin", "0.1", top_level="colour_plugin\n",
                      requires=("benchsuite", "opencv-python>=4"))
    monkeypatch.syspath_prepend(str(site))
    return site


def test_every_distribution_that_provides_cv2_is_found(second_opencv):
    found = dict(cv2_providers())
    assert found["opencv-python"] == "5.0.0"
    assert SUITE_OPENCV in found  # the suite's own, installed in this environment
    assert "benchsuite-colour-plugin" not in found


def test_a_distribution_without_top_level_is_read_from_its_record(tmp_path, monkeypatch):
    fake_distribution(tmp_path, "opencv-python-headless", "4.9.0.80", record="cv2/__init__.py,sha256=x,1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert ("opencv-python-headless", "4.9.0.80") in cv2_providers()


def test_two_providers_are_a_loud_warning_naming_both_and_the_fix(second_opencv):
    env = cv2_environment()
    warning = env.warning()
    assert warning is not None
    assert "opencv-python 5.0.0" in warning and SUITE_OPENCV in warning
    assert "opencv-python is required by benchsuite-colour-plugin" in warning
    assert "pip uninstall -y" in warning and "opencv-python" in warning.split("pip uninstall -y", 1)[1]
    assert "pip install --force-reinstall" in warning
    block = env.as_dict()
    assert {"distribution": "opencv-python", "version": "5.0.0"} in block["providers"] and block["warning"] == warning


def test_benchsuite_list_names_the_two_distributions(second_opencv, capsys):
    from benchsuite.cli import main

    assert main(["list", "null-*"]) == 0
    err = capsys.readouterr().err
    assert "WARNING:" in err and "opencv-python 5.0.0" in err and SUITE_OPENCV in err
    assert main(["list", "null-*", "--strict"]) == 1


def test_one_suite_provider_with_contrib_is_quiet():
    env = Cv2Environment("/x/cv2/__init__.py", "4.10.0", True, True, ((SUITE_OPENCV, "4.10.0.84"),), {})
    assert env.warning() is None and "with contrib" in env.line()
    bare = Cv2Environment("/x/cv2/__init__.py", "4.10.0", False, True, (("opencv-python", "4.10.0.84"),), {})
    assert "lacks the contrib modules" in bare.warning() and "pip install --force-reinstall" in bare.warning()


def test_the_cv2_files_say_their_version_and_build_without_an_import(tmp_path):
    (tmp_path / "cv2").mkdir()
    (tmp_path / "cv2" / "version.py").write_text('opencv_version = "5.0.0.86"\ncontrib = False\nheadless = False\n')
    assert _from_files(str(tmp_path / "cv2" / "__init__.py")) == ("5.0.0.86", False)


def test_a_checkout_that_is_not_the_installed_copy_is_named(tmp_path):
    from benchsuite.environment import imported_copy

    assert copy_note(imported_copy(), "run_all.py") is None  # this tree is the installed (editable) copy
    other = tmp_path / "checkout" / "benchsuite"
    other.mkdir(parents=True)
    note = copy_note(other, "run_all.py")
    assert note is not None and str(other) in note and str(imported_copy()) in note and "pip install -e" in note
