"""A task is one registration (issue 21.5): its default budgets, its check data and check adapter, its data-set
needs and its report sections are the task's own, and the framework asks the task for them."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from benchsuite.api import Budget, ClassifierOutput, Context, Detections
from benchsuite.data.datasets import BOXES
from benchsuite.errors import ConfigError, OutputValidationError
from benchsuite.plugins import PluginProblem
from benchsuite.profiles import PROFILES, get_profile
from benchsuite.tasks.checks import ArrayBatchChecks, PerImageChecks, output_difference
from benchsuite.tasks.registry import _check, get_task, list_tasks
from benchsuite.testing import tiny_data

BUDGET_FIELDS = {f.name for f in dataclasses.fields(Budget)}


def test_every_task_declares_budgets_of_budget_fields_and_check_data():
    for info in list_tasks():
        task = info.obj
        for profile, sizes in task.budgets.items():
            assert profile in PROFILES and set(sizes) <= BUDGET_FIELDS - {"profile"}, (task.name, profile)
        assert task.check_splits is not None and task.checks is not None, task.name


def test_a_profile_asks_the_task_for_its_budget():
    smoke = get_profile("smoke")
    detection = smoke.budget("detection")
    assert (detection.max_train_images, detection.max_val_images, detection.max_test_images) == (24, 8, 16)
    assert detection.time_limit_s == 420 and detection.profile == "smoke"  # the task's, over the profile's 300 s
    assert smoke.budget("proposals").time_limit_s == smoke.time_limit_s  # no time limit of its own
    quick = get_profile("quick").budget("classification")
    assert quick.max_train_images is None and quick.time_limit_s == get_profile("quick").time_limit_s


def test_the_registry_refuses_a_task_of_the_wrong_shape():
    detection = type(get_task("detection"))

    class Misbudgeted(detection):
        budgets: ClassVar[dict] = {"smoke": {"max_images": 3}}

    with pytest.raises(PluginProblem, match=r"budgets\['smoke'\].*max_images.*benchsuite.api.Budget"):
        _check("detection", Misbudgeted)

    class NeedsNothing(detection):
        needs = frozenset()

    with pytest.raises(PluginProblem, match=r"needs must name the annotations"):
        _check("detection", NeedsNothing)


@pytest.mark.parametrize("task", ["classification", "detection", "proposals", "segmentation"])
def test_check_data_is_tiny_and_as_the_pipelines_take_it(task):
    data = tiny_data(task)
    assert 0 < len(data.train) <= 100 and len(data.val) and len(data.test)
    assert data.budget.max_test_images == len(data.test) and data.budget.profile == "smoke"
    images = list(data.images)  # an (N, H, W, 3) array, or a list of (H, W, 3) images of their own sizes
    assert len(images) == len(data.test) and all(im.dtype == np.uint8 and im.shape[2] == 3 for im in images)


def test_the_adapters_validate_through_the_task_and_compare_field_by_field():
    classify = get_task("classification").checks
    assert isinstance(classify, ArrayBatchChecks)
    with pytest.raises(OutputValidationError, match=r"predict\(\) result: a list"):
        classify.validate([0, 1], 2, 3)
    a = ClassifierOutput(np.array([0, 1, 2]), np.array([[0.5, 0.5, 0.0]] * 3))
    b = ClassifierOutput(np.array([0, 2, 2]), a.scores)
    assert classify.compare(a, a) == "" and classify.compare(a, b) == "labels: 1 of 3 differ"
    detect = get_task("detection").checks
    assert isinstance(detect, PerImageChecks) and detect.method == "detect"
    one = Detections(np.array([[0.0, 0, 5, 5]]), np.array([0.9]), np.array([0]))
    two = Detections(np.array([[0.0, 0, 5, 5], [1.0, 1, 4, 4]]), np.array([0.9, 0.5]), np.array([0, 1]))
    assert detect.compare(one, two) == "1 vs 2 detections"
    moved = Detections(one.boxes + 0.5, one.scores, one.labels)
    assert detect.compare(one, moved).startswith("boxes: values differ")
    assert output_difference(np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-9]), 1e-5, 1e-6) == ""


class _Split:
    """A split of the tiny detection data as a data set's ``load`` returns it."""

    def __init__(self, data):
        self.data = data
        self.info = None

    def load(self, split: str, max_images: int | None = None):
        return {"train": self.data.train, "val": self.data.val, "test": self.data.test}[split]


def test_execute_records_the_report_group_a_pipeline_declares(tmp_path: Path):
    from pipelines.reference.null import NullDetector

    class InAStudy(NullDetector):
        report_group = "A study"
        report_note = "compare with the paper's 0.42"

    data = tiny_data("detection")
    for cls, expected in ((InAStudy, {"report_group": "A study", "report_note": "compare with the paper's 0.42"}),
                          (NullDetector, {})):
        ctx = Context(budget=data.budget, cache_dir=tmp_path)
        get_task("detection").execute(cls(), _Split(data), ctx, ["test"], tmp_path, 0, 0)
        assert {k: v for k, v in ctx.info.items() if k.startswith("report_")} == expected


def test_needs_match_what_data_sets_provide():
    detection, classification = get_task("detection"), get_task("classification")
    assert detection.needs == {BOXES} and detection.runs_on("synthetic-voc") and not detection.runs_on("cifar10")
    assert classification.runs_on("cifar10") and not classification.runs_on("voc2007")


def test_a_group_with_no_entry_says_where_it_looked():
    from benchsuite.plugins import PluginGroup

    group = PluginGroup("benchsuite.no-such-group", "widget", lambda name, obj: obj)
    assert group.names() == () and group.find("x") is None
    with pytest.raises(ConfigError, match=r"unknown widget 'x': no widget is registered in the entry-point group "
                                          r"benchsuite.no-such-group .*pip install -e"):
        group.get("x")
