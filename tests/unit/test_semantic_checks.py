"""The semantic conformance checks (issue 27): each mistake a plugin author made that the earlier checks let
through (normalised or x, y, w, h boxes, a mutable default, a parameter changed by fit, equal or NaN scores, an
output that ignores its image) fails a named check with a message that names the likely cause; and the checks
pass the profile's parameters exactly as a run passes them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from benchsuite.params import passed_params
from benchsuite.testing import check_pipeline

FIXTURES = Path(__file__).parents[1] / "fixtures"
sys.path.insert(0, str(FIXTURES))
import kit_mistakes as km  # noqa: E402


def results_of(cls, checks=None):
    return {r.name: r for r in check_pipeline(cls, checks=checks)}


@pytest.mark.parametrize(("cls", "check", "cause"), [
    (km.NormalisedBoxes, "boxes_in_pixels", "look normalised"),
    (km.XywhBoxes, "boxes_x1y1x2y2", "look like x, y, w, h"),
    (km.ConstantScores, "scores_informative", "equal 0.5"),
    (km.NanScores, "scores_informative", "division by zero"),
    (km.IgnoresInput, "uses_input", "seems to ignore its input"),
    (km.MutableDefault, "defaults_unchanged", "mutable default"),
    (km.ChangesParamInFit, "params_unchanged_by_fit", "k: 1 -> 5"),
])
def test_each_semantic_mistake_fails_its_named_check_with_the_likely_cause(cls, check, cause):
    results = results_of(cls)
    assert results[check].failed, results[check].line()
    assert cause in results[check].message
    # one mistake, one named check (and the runner's validation, where the output is invalid too)
    validation = ("outputs_valid", "single_image", "grey_images")
    others = [r.name for r in results.values() if r.failed and r.name not in (check, *validation)]
    assert not others, [results[n].line() for n in others]


def test_the_validation_message_names_the_likely_cause():
    message = results_of(km.XywhBoxes)["outputs_valid"].message
    assert "x2 <= x1" in message and "likely cause" in message and "x2 = x + w" in message
    message = results_of(km.NanScores)["outputs_valid"].message
    assert "finite" in message and "likely cause" in message and "division by zero" in message


def test_a_mutated_default_is_named_once_not_also_as_a_changed_parameter():
    results = results_of(km.MutableDefault)
    assert results["params_unchanged_by_fit"].passed
    assert "history" in results["defaults_unchanged"].message


def test_well_behaved_pipelines_pass_the_semantic_checks_or_are_not_judged():
    semantic = ["boxes_in_pixels", "boxes_x1y1x2y2", "scores_informative", "uses_input", "params_unchanged_by_fit",
                "defaults_unchanged"]
    for cls in (km.GoodKnn, km.GoodDetector):
        results = results_of(cls, semantic)
        assert all(r.passed for r in results.values()), [r.line() for r in results.values()]
    knn = results_of(km.GoodKnn, semantic)
    assert "not judged" in knn["uses_input"].message and "no boxes" in knn["boxes_in_pixels"].message


def test_profile_params_reach_the_checks_as_they_reach_a_job():
    # a tuple in profile_params, a parameter annotated list[int]: the job's worker gets a list (JSON, then the
    # annotation); before issue 27 the checks passed the tuple and failed a class that ran "ok"
    results = results_of(km.ListParameter)
    assert all(not r.failed for r in results.values()), [r.line() for r in results.values() if r.failed]
    assert passed_params("kit-list-param", km.ListParameter, {"ks": (1, 3)}) == {"ks": [1, 3]}

    class TupleParameter(km.GoodKnn):
        def __init__(self, k: int = 3, bins: int = 4, ks: tuple[int, ...] = (1,)):
            super().__init__(k, bins)
            self.ks = ks

    assert passed_params("x", TupleParameter, {"ks": [1, 3], "k": 2.0}) == {"ks": (1, 3), "k": 2}


def test_a_profile_value_json_cannot_carry_fails_profile_params():
    class Unjsonable(km.GoodKnn):
        id = "kit-unjsonable"
        profile_params: ClassVar[dict] = {"smoke": {"k": object()}}

    message = results_of(Unjsonable, ["profile_params"])["profile_params"].message
    assert "not a JSON value" in message and "k=" in message


def test_grey_images_are_single_channel_images_read_back_as_the_suite_reads_them(tmp_path):
    from PIL import Image

    from benchsuite.testing import _grey

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (40, 50, 3), dtype=np.uint8), rng.integers(0, 256, (30, 20, 3), dtype=np.uint8)]
    greys = _grey(images, tmp_path)
    for im, g in zip(images, greys):
        assert g.shape == im.shape and g.dtype == np.uint8
        assert (g[..., 0] == g[..., 1]).all() and (g[..., 1] == g[..., 2]).all()
        luma = np.asarray(Image.fromarray(im).convert("L"), np.float64)  # Pillow's ITU-R 601 luma
        assert np.abs(g[..., 0] - luma).mean() < 12  # the JPEG's loss, not another image
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grey-0.jpg", "grey-1.jpg"]
    with Image.open(tmp_path / "grey-0.jpg") as f:
        assert f.mode == "L"
