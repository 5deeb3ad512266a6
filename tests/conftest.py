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


def install_fixture_plugins(tmp_path: Path, monkeypatch, module: str, distribution: str,
                            entry_points: dict[str, str]) -> Path:
    """Installs ``tests/fixtures/<module>.py`` as a distribution with entry points (``id -> "module:Class"``),
    on sys.path and PYTHONPATH, exactly as `pip install` of a third-party plugin would make it visible."""
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(FIXTURES / f"{module}.py", site / f"{module}.py")
    dist = site / f"{distribution.replace('-', '_')}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.1\n")
    lines = ["[benchsuite.pipelines]", *(f"{k} = {v}" for k, v in entry_points.items())]
    (dist / "entry_points.txt").write_text("\n".join(lines) + "\n")
    monkeypatch.syspath_prepend(str(site))
    old = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", str(site) + (os.pathsep + old if old else ""))
    return site


@pytest.fixture()
def plugin_dist(tmp_path, monkeypatch) -> Path:
    """tests/fixtures/plugin_pipelines.py installed as a plugin distribution."""
    yield install_fixture_plugins(tmp_path, monkeypatch, "plugin_pipelines", "benchsuite-test-plugins",
                                  PLUGIN_ENTRY_POINTS)
    sys.modules.pop("plugin_pipelines", None)


#: the plugin author's mistakes of tests/fixtures/kit_mistakes.py (issue 14), by pipeline id
KIT_ENTRY_POINTS = {
    "kit-good": "kit_mistakes:GoodKnn",
    "kit-fit-none": "kit_mistakes:FitReturnsNone",
    "kit-predict-list": "kit_mistakes:PredictReturnsList",
    "kit-other-name": "kit_mistakes:StoresUnderOtherName",
    "kit-raises": "kit_mistakes:RaisesDeepInside",
}


@pytest.fixture()
def kit_dist(tmp_path, monkeypatch) -> Path:
    """tests/fixtures/kit_mistakes.py installed as a plugin distribution."""
    yield install_fixture_plugins(tmp_path, monkeypatch, "kit_mistakes", "kit-mistakes", KIT_ENTRY_POINTS)
    sys.modules.pop("kit_mistakes", None)


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
