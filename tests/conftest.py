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
    "test-slow": "plugin_pipelines:Slow",
    "test-spawner": "plugin_pipelines:Spawner",
    "test-self-kill": "plugin_pipelines:SelfKill",
    "test-fills-disk": "plugin_pipelines:FillsDisk",
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


# ---------------------------------------------------------------- the fault table (issue 17)
# Tests marked ``@pytest.mark.fault("case")`` reproduce one way a run could lose or mix results;
# ``pytest -m fault`` runs them all and prints a table of the cases with their outcome.
_FAULT_OUTCOMES: dict[str, tuple[str, str]] = {}


def pytest_configure(config):
    config.addinivalue_line("markers", "fault(case): a fault-injection case; `pytest -m fault` prints the table")


def pytest_runtest_logreport(report):
    case = getattr(report, "fault_case", None)
    if case is None:
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        outcome = "skipped" if report.skipped else report.outcome
        _FAULT_OUTCOMES[report.nodeid] = (case, outcome)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    marker = item.get_closest_marker("fault")
    if marker is not None:
        outcome.get_result().fault_case = marker.args[0] if marker.args else item.name


def pytest_terminal_summary(terminalreporter):
    if not _FAULT_OUTCOMES:
        return
    rows = sorted(_FAULT_OUTCOMES.items(), key=lambda kv: kv[1][0])
    width = max(len(case) for _, (case, _) in rows)
    terminalreporter.section("fault cases")
    for nodeid, (case, outcome) in rows:
        terminalreporter.write_line(f"{case.ljust(width)}  {outcome.upper():8}  {nodeid.split('::')[-1]}")
