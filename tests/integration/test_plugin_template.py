"""examples/plugin-template, installed as a user would install a plugin: into a fresh virtual environment
beside the suite (offline), listed, checked, and run through the smoke profile with its rows in the report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "examples" / "plugin-template"
IDS = ("colour-hist-knn", "template-matcher")


def _run(cmd: list[str], env: dict[str, str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_template_installs_passes_check_and_runs_in_the_smoke_profile(tmp_path, cache_dir):
    env = dict(os.environ, BENCHSUITE_CACHE=str(cache_dir), PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("BENCHSUITE_DATA", None)
    env.pop("PYTHONPATH", None)
    venv = tmp_path / "venv"
    start = time.perf_counter()
    # the suite's own interpreter and packages are visible in the new environment; pip and setuptools come
    # from there too (no download: --no-index, --no-build-isolation)
    made = _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv], env, tmp_path)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    installed = _run([python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-e",
                      TEMPLATE], env, tmp_path)
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-3000:]
    installed_s = time.perf_counter() - start

    listed = _run([python, "-m", "benchsuite", "list", "--strict"], env, tmp_path)
    assert listed.returncode == 0, listed.stderr
    lines = {ln.split()[0]: ln for ln in listed.stdout.splitlines() if ln.strip()}
    for pid in IDS:
        assert pid in lines and "benchsuite-plugin-template" in lines[pid]

    for pid in IDS:
        checked = _run([python, "-m", "benchsuite", "check", pid], env, tmp_path)
        assert checked.returncode == 0, checked.stdout + checked.stderr[-3000:]
        assert "FAIL" not in checked.stdout and "PASS  fit_returns_self" in checked.stdout
    own_tests = _run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], env, TEMPLATE)
    assert own_tests.returncode == 0, own_tests.stdout[-3000:] + own_tests.stderr[-2000:]
    checked_s = time.perf_counter() - start

    out = tmp_path / "run"
    ran = _run([python, ROOT / "run_all.py", "--profile", "smoke", "--pipelines", ",".join(IDS), "--tasks",
                "classification,detection", "--out", out, "--data-root", tmp_path], env, tmp_path)
    assert ran.returncode == 0, ran.stderr[-3000:]
    elapsed = time.perf_counter() - start
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert {r["pipeline"]: r["status"] for r in records} == dict.fromkeys(IDS, "ok"), \
        [(r["pipeline"], r.get("error")) for r in records]
    by_id = {r["pipeline"]: r for r in records}
    assert by_id["colour-hist-knn"]["params"] == {"k_values": [1, 5], "bins": 4}  # its own smoke sizes
    assert by_id["template-matcher"]["params"]["window_height"] == 24
    report = (out / "report.md").read_text()
    for pid in IDS:
        assert pid in report
    timing = {"install_s": round(installed_s, 1), "checks_and_own_tests_s": round(checked_s - installed_s, 1),
              "smoke_run_s": round(elapsed - checked_s, 1), "install_to_report_s": round(elapsed, 1)}
    print(f"plugin template: {json.dumps(timing)}")
