"""Shared fixtures: a synthetic-data cache for the session and a test plugin distribution."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
PLUGIN_ENTRY_POINTS = {
    "test-majority": "plugin_pipelines:MajorityClass",
    "test-raises": "plugin_pipelines:Raises",
    "test-sleeps": "plugin_pipelines:Sleeps",
    "test-garbage": "plugin_pipelines:Garbage",
    "test-out-of-range": "plugin_pipelines:OutOfRange",
    "test-memory-hog": "plugin_pipelines:Hog",
    "test-crashes": "plugin_pipelines:Crashes",
    "test-broken": "plugin_pipelines:NotAPipeline",
    "test-det-inverted": "plugin_pipelines:InvertedBoxes",
    "test-det-spilling": "plugin_pipelines:SpillingBoxes",
}


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One cache (synthetic data sets) shared by the whole session."""
    return tmp_path_factory.mktemp("benchsuite-cache")


@pytest.fixture()
def plugin_dist(tmp_path, monkeypatch) -> Path:
    """Installs tests/fixtures/plugin_pipelines.py as a distribution with entry points, on sys.path and
    PYTHONPATH, exactly as `pip install` of a third-party plugin would make it visible."""
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(FIXTURES / "plugin_pipelines.py", site / "plugin_pipelines.py")
    dist = site / "benchsuite_test_plugins-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: benchsuite-test-plugins\nVersion: 0.1\n")
    lines = ["[benchsuite.pipelines]", *(f"{k} = {v}" for k, v in PLUGIN_ENTRY_POINTS.items())]
    (dist / "entry_points.txt").write_text("\n".join(lines) + "\n")
    monkeypatch.syspath_prepend(str(site))
    old = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", str(site) + (os.pathsep + old if old else ""))
    yield site
    sys.modules.pop("plugin_pipelines", None)


def pytest_addoption(parser):
    parser.addoption("--run-benchmarks", action="store_true", help="run tests/benchmarks (pytest-benchmark)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-benchmarks"):
        return
    skip = pytest.mark.skip(reason="benchmarks run on demand: pytest tests/benchmarks --run-benchmarks")
    for item in items:
        if "tests/benchmarks" in item.nodeid.replace(os.sep, "/"):
            item.add_marker(skip)
