"""Pipelines own their sizes (issue 14): profile_params on the classes; tasks own their budgets (issue 21):
profiles.py names neither a pipeline nor a task."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import ClassVar

import pytest

import benchsuite.profiles as profiles
from benchsuite.api import Classifier
from benchsuite.errors import ConfigError
from benchsuite.profiles import PROFILES, pipeline_params
from benchsuite.registry import discover, load_ref


def test_profiles_module_names_no_pipeline_and_no_task():
    from benchsuite.tasks.registry import task_names

    ids = set(discover())
    source = Path(profiles.__file__).read_text()
    strings = {n.value for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert not strings & ids
    assert not strings & set(task_names())
    assert not any(hasattr(p, "pipeline_params") or hasattr(p, "budgets") for p in PROFILES.values())


def test_built_in_pipelines_declare_their_sizes():
    declared = {pid: load_ref(info.ref).profile_params for pid, info in discover().items()
                if info.distribution == "benchsuite"}
    assert declared["nn-l1"]["smoke"] == {"k_values": (1, 3)}
    assert declared["cnn"]["quick"] == declared["cnn-fusion"]["quick"] == {"epochs": 9}
    assert declared["fusion-a-stages"] == declared["fusion-b-deepest"] == declared["fusion-c-fpn"]
    # ss-hog-svm's and rcnn's proposers share the proposal cache with selective-search's smoke parameters
    assert declared["ss-hog-svm"]["smoke"]["proposer_params"] == declared["selective-search"]["smoke"]
    assert declared["rcnn"]["smoke"]["proposer_params"] == declared["selective-search"]["smoke"]
    assert declared["null-classifier"] == {}


class Sized(Classifier):
    id = "sized"
    family = "classical"
    profile_params: ClassVar[dict] = {"smoke": {"k": 1}, "quick": {"k": 5}}

    def __init__(self, k: int = 3):
        self.k = k


def test_pipeline_params_are_a_copy_of_the_class_entry():
    params = pipeline_params(Sized, "smoke")
    assert params == {"k": 1} and pipeline_params(Sized, "full") == {}
    params["k"] = 99
    assert Sized.profile_params["smoke"] == {"k": 1}


def test_the_runner_refuses_profile_params_the_constructor_lacks(monkeypatch):
    from benchsuite.registry import PipelineInfo
    from benchsuite.runner import plan as plan_module

    class Misnamed(Sized):
        id = "misnamed"
        profile_params: ClassVar[dict] = {"smoke": {"n_neighbors": 1}}

    monkeypatch.setattr("benchsuite.registry.load_ref", lambda ref: Misnamed)
    info = PipelineInfo("misnamed", "x:Misnamed", "dist", task="classification", family="classical")
    with pytest.raises(ConfigError, match=r"profile_params\['smoke'\] names 'n_neighbors'.*valid names: k"):
        plan_module.profile_params(info, "smoke")
    assert plan_module.profile_params(PipelineInfo("sized", "x:Sized", "d"), "quick") == {}  # Misnamed: no quick
