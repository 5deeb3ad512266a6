"""benchsuite.testing and the plugin author's kit (issue 14): each mistake a new plugin author made fails a
named check with a message saying what to change; the runner refuses the same mistakes in a job."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from benchsuite.api import Context
from benchsuite.errors import OutputValidationError
from benchsuite.testing import CHECKS, check_pipeline, tiny_data

FIXTURES = Path(__file__).parents[1] / "fixtures"
sys.path.insert(0, str(FIXTURES))
import kit_mistakes as km  # noqa: E402

CLASSIFIER_CHECKS = [c for c in CHECKS if c != "same_seed_same_output"]


def results_of(cls, checks=None):
    return {r.name: r for r in check_pipeline(cls, checks=checks)}


def test_a_well_behaved_plugin_passes_every_check():
    results = results_of(km.GoodKnn)
    assert list(results) == list(CHECKS)
    assert all(r.passed for r in results.values()), [r.line() for r in results.values() if not r.passed]


def test_a_well_behaved_detector_passes_every_check():
    results = results_of(km.GoodDetector)
    assert all(r.passed for r in results.values()), [r.line() for r in results.values() if not r.passed]


@pytest.mark.parametrize(("cls", "check", "words"), [
    (km.FitReturnsNone, "fit_returns_self", "return self"),
    (km.PredictReturnsList, "outputs_valid", "list"),
    (km.StoresUnderOtherName, "params_stored", "self.k = k"),
    (km.VarKwargs, "init_signature", "**options"),
    (km.UnseededRandom, "same_seed_same_output", "ctx.seed"),
    (km.ChangesStateInPredict, "predict_keeps_state", "labels_"),
    (km.NumpyFitInfo, "fit_info_json", "'counts'"),
    (km.FailsOnEmpty, "empty_input", "on no images"),
    (km.BadProfileParams, "profile_params", "n_neighbors"),
    (km.ColourOnly, "grey_images", "no colour"),
    (km.DetectorReturnsLists, "outputs_valid", "numpy array"),
])
def test_each_mistake_fails_its_named_check(cls, check, words):
    results = results_of(cls)
    assert results[check].failed, results[check].line()
    assert words in results[check].message
    assert "FAIL" in results[check].line() and check in results[check].line()


def test_params_stored_under_another_name_lose_the_override():
    # what the record showed: params {} although k was set
    assert "k" not in km.StoresUnderOtherName(k=5).get_params()
    message = results_of(km.StoresUnderOtherName, ["params_stored"])["params_stored"].message
    assert "get_params()" in message and "record" in message


def test_checks_that_need_a_fit_are_skipped_when_fit_fails():
    class Raises(km.GoodKnn):
        id = "kit-raises"

        def fit(self, train, val, ctx):
            raise RuntimeError("boom")

    results = results_of(Raises)
    assert results["fit_returns_self"].failed and "RuntimeError: boom" in results["fit_returns_self"].message
    assert results["outputs_valid"].status == "skipped"


def test_profile_params_size_the_checked_pipeline_and_params_win():
    seen = {}

    class Records(km.GoodKnn):
        id = "kit-records"

        def fit(self, train, val, ctx):
            seen["k"] = self.k
            return super().fit(train, val, ctx)

    check_pipeline(Records, checks=["fit_returns_self"])
    assert seen["k"] == 1  # profile_params["smoke"]
    check_pipeline(Records, {"k": 2}, checks=["fit_returns_self"])
    assert seen["k"] == 2


def test_tiny_data_is_small_and_of_the_task():
    c = tiny_data("classification")
    assert c.images.dtype == np.uint8 and c.images.ndim == 4 and len(c.train) <= 100
    d = tiny_data("detection")
    assert len(d.train) == 8 and all(im.dtype == np.uint8 and im.shape[2] == 3 for im in d.images)
    assert (d.train.class_counts() >= 2).all()


# ------------------------------------------------------------------ the runner refuses the same mistakes
def test_the_runner_fails_a_fit_that_does_not_return_self():
    from benchsuite.tasks.base import timed_fit

    data = tiny_data("classification")
    with pytest.raises(OutputValidationError, match=r"FitReturnsNone\.fit\(\) returned None.*return self"):
        timed_fit(km.FitReturnsNone(), data.train, data.val, Context())


def test_the_validators_refuse_lists():
    from benchsuite.tasks.classification import validate_output
    from benchsuite.tasks.detection import validate_detections
    from benchsuite.tasks.proposals import validate_proposals

    with pytest.raises(OutputValidationError, match=r"predict\(\) result: a list; expected a numpy array"):
        validate_output([0, 1], 2, 3)
    with pytest.raises(OutputValidationError, match=r"detect\(\) returned boxes as a list"):
        validate_detections(([[0, 0, 1, 1]], np.ones(1), np.zeros(1, int)), 10, 10, 1, "img")
    with pytest.raises(OutputValidationError, match=r"propose\(\) returned a list"):
        validate_proposals([[0, 0, 1, 1]], 10, 10, "img")
    assert validate_output(np.array([0, 2]), 2, 3).labels.tolist() == [0, 2]


# ------------------------------------------------------------------ the command line
def test_check_command_passes_and_fails_with_named_checks(capsys, monkeypatch):
    from benchsuite.cli import main

    monkeypatch.syspath_prepend(str(FIXTURES))
    assert main(["check", "kit_mistakes:GoodKnn"]) == 0
    out = capsys.readouterr().out
    assert "PASS  fit_returns_self" in out and "FAIL" not in out
    assert main(["check", "kit_mistakes:FitReturnsNone"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  fit_returns_self: fit() returned None" in out


def test_check_command_leaves_no_temporary_folders(tmp_path, monkeypatch):
    """The checks run in a child that leaves by ``os._exit`` (no ``atexit`` clean-up): the folders it made for its
    data, cache and grey images must still be gone afterwards."""
    import tempfile

    from benchsuite import testing
    from benchsuite.cli import main

    monkeypatch.syspath_prepend(str(FIXTURES))
    monkeypatch.setattr(testing, "_DATA", {})  # the child builds its data (and folders) itself
    monkeypatch.setattr(testing, "_FOLDERS", [])
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    assert main(["check", "kit_mistakes:GoodKnn"]) == 0
    assert sorted(p.name for p in scratch.iterdir()) == []


def test_check_command_parses_params_and_refuses_unknown_names(capsys, monkeypatch):
    from benchsuite.cli import main

    monkeypatch.syspath_prepend(str(FIXTURES))
    assert main(["check", "kit_mistakes:GoodKnn", "--param", "k=2"]) == 0
    assert main(["check", "kit_mistakes:GoodKnn", "--param", "n_neighbors=5"]) == 2
    assert "valid names: bins, k" in capsys.readouterr().err
    assert main(["check", "kit_mistakes:GoodKnn", "--param", "k=five"]) == 2
    assert "expected int" in capsys.readouterr().err


def test_list_strict_exits_non_zero_with_a_broken_plugin(plugin_dist, capsys):
    from benchsuite.cli import main

    assert main(["list"]) == 0
    assert main(["list", "--strict"]) == 1
    assert "broken plugin test-broken" in capsys.readouterr().err


def test_a_pattern_matching_broken_plugins_names_them(plugin_dist, caplog):
    from benchsuite.registry import resolve

    with caplog.at_level(logging.WARNING, logger="benchsuite.registry"):
        chosen = resolve(["test-b*"])
    assert [p.id for p in chosen] == []
    assert "test-broken" in caplog.text and "left out" in caplog.text


@pytest.mark.slow
def test_check_run_runs_the_pipeline_once_through_a_worker(capsys, cache_dir, monkeypatch):
    from benchsuite.cli import main

    assert main(["check", "null-classifier", "--run", "--cache-dir", str(cache_dir)]) == 0
    assert "run: classification on cifar10: ok" in capsys.readouterr().out
    monkeypatch.syspath_prepend(str(FIXTURES))
    assert main(["check", "kit_mistakes:GoodKnn", "--run"]) == 2  # not installed: a worker could not import it
    assert "entry-point group benchsuite.pipelines" in capsys.readouterr().err
