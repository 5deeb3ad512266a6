"""Shared fixtures: a synthetic-data cache for the session, test plugin distributions and a polling wait."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable
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


def _wait_until(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def wait_for() -> Callable[[Callable[[], object], float, str], None]:
    """``wait_for(condition, timeout_s, what)``: poll ``condition()`` every 0.1 s until it is true; after
    ``timeout_s`` seconds fail the test with "timed out waiting for <what>"."""
    return _wait_until


def records_schema_problems(run_dir: Path) -> list[str]:
    """What is wrong with a run folder's records as the runner wrote them: a line that does not carry the
    current ``schema_version`` or does not match the record schema, a ``summary.csv`` column that holds values
    of more than one type (number, text, bool), or a key that is a value in one record and an object in
    another (``fit_info.val_map50`` beside ``fit_info.val_map50.x``; null where the other records have an object
    is no clash: an optional object). Empty when all is well."""

    import pandas as pd

    from benchsuite.results.schema import SCHEMA_VERSION, record_problems
    from benchsuite.results.store import RunStore
    from benchsuite.results.tidy import records_table

    problems = []
    lines = (run_dir / "records.jsonl").read_text().splitlines()
    for number, line in enumerate(lines, 1):
        rec = json.loads(line)
        where = f"records.jsonl:{number} ({rec.get('pipeline')}, {rec.get('split')})"
        if rec.get("schema_version") != SCHEMA_VERSION:
            problems.append(f"{where}: schema_version {rec.get('schema_version')!r}, expected {SCHEMA_VERSION}")
        problems.extend(f"{where}: {p}" for p in record_problems(rec))
    table = records_table(RunStore(run_dir).records())

    def kind(v: object) -> str:
        return "bool" if isinstance(v, bool) else "number" if isinstance(v, (int, float)) else type(v).__name__

    for col in table.columns:
        kinds = {kind(v) for v in table[col] if v is not None and not (isinstance(v, float) and pd.isna(v))}
        if len(kinds) > 1:
            problems.append(f"summary column {col}: values of types {sorted(kinds)}")
    columns = set(table.columns)
    problems.extend(f"summary column {c}: a value in some records and an object in others"
                    for c in sorted(columns) if table[c].notna().any() and any(o.startswith(c + ".") for o in columns))
    header = list(pd.read_csv(run_dir / "summary.csv", nrows=0).columns)
    if header != list(table.columns):
        problems.append(f"summary.csv columns differ from the records' table: {sorted(set(header) ^ columns)}")
    return problems


@pytest.fixture()
def assert_records_match_schema():
    """``check(run_dir)``: fails naming every problem :func:`records_schema_problems` finds."""
    def check(run_dir: Path) -> None:
        problems = records_schema_problems(Path(run_dir))
        assert not problems, "\n".join(problems)
    return check


def install_fixture_plugins(tmp_path: Path, monkeypatch, module: str, distribution: str,
                            entry_points: dict[str, str], groups: dict[str, dict[str, str]] | None = None) -> Path:
    """Installs ``tests/fixtures/<module>.py`` as a distribution with entry points (``id -> "module:Class"``),
    on sys.path and PYTHONPATH, exactly as `pip install` of a third-party plugin would make it visible.

    ``entry_points`` go into ``benchsuite.pipelines``; ``groups`` adds other groups (``{"benchsuite.tasks":
    {name: "module:Class"}}``)."""
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(FIXTURES / f"{module}.py", site / f"{module}.py")
    dist = site / f"{distribution.replace('-', '_')}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.1\n")
    lines = []
    for group, entries in {"benchsuite.pipelines": entry_points, **(groups or {})}.items():
        lines += [f"[{group}]", *(f"{k} = {v}" for k, v in entries.items()), ""]
    (dist / "entry_points.txt").write_text("\n".join(lines))
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


#: the test-only task of tests/fixtures/toy_counting.py (issue 16): its pipelines, and the task registered in
#: ``benchsuite.tasks`` beside a class that is not a task (a broken task plugin)
TASK_PIPELINES = {"toy-count-mean": "toy_counting:MeanCounter", "toy-count-zero": "toy_counting:ZeroCounter"}
TASK_ENTRY_POINTS = {"counting": "toy_counting:CountingTask", "not-a-task": "toy_counting:NotATask"}


@pytest.fixture()
def task_dist(tmp_path, monkeypatch) -> Path:
    """tests/fixtures/toy_counting.py installed as a distribution that adds a task and its pipelines."""
    yield install_fixture_plugins(tmp_path, monkeypatch, "toy_counting", "benchsuite-toy-counting", TASK_PIPELINES,
                                  {"benchsuite.tasks": TASK_ENTRY_POINTS})
    sys.modules.pop("toy_counting", None)


#: the test-only data-set format of tests/fixtures/toy_format.py, beside an entry that is not a format
FORMAT_ENTRY_POINTS = {"toy-boxes": "toy_format:open_toy_boxes", "toy-broken": "toy_format:open_undecorated"}


@pytest.fixture()
def format_dist(tmp_path, monkeypatch) -> Path:
    """tests/fixtures/toy_format.py installed as a distribution that adds a data-set format."""
    yield install_fixture_plugins(tmp_path, monkeypatch, "toy_format", "benchsuite-toy-format", {},
                                  {"benchsuite.datasets": FORMAT_ENTRY_POINTS})
    sys.modules.pop("toy_format", None)


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
