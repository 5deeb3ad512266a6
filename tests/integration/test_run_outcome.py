"""A run's outcome and what its records claim (issue 27), through the command line, the runner and real workers:
a pipeline named as ``module:Class`` (no entry point) runs; a run with a failed job exits with status 3
(``--allow-failures``: 0); the record lists the parameters a job ran with (not what fit changed them to) and says
its determinism was not checked; ``run.json`` records the cv2 that loaded and every distribution providing it."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parents[1] / "fixtures"


@pytest.mark.slow
def test_a_run_with_a_failed_job_exits_3_and_records_what_ran(tmp_path, cache_dir, monkeypatch, capsys):
    from benchsuite.cli import EXIT_JOBS_FAILED, main

    here = tmp_path / "plugin"
    here.mkdir()
    shutil.copy(FIXTURES / "kit_mistakes.py", here / "kit_run_module.py")  # importable from the current folder only
    monkeypatch.chdir(here)
    out = tmp_path / "run"
    argv = ["run", "--profile", "smoke", "--tasks", "classification", "--data-root", str(tmp_path),
            "--cache-dir", str(cache_dir), "--out", str(out), "--no-report",
            "--pipelines", "kit_run_module:FitReturnsNone,kit_run_module:MutableDefault,kit_run_module:ListParameter"]
    try:
        assert EXIT_JOBS_FAILED == 3
        assert main(argv) == 3
        assert "exit status 3" in capsys.readouterr().err
        records = {json.loads(line)["pipeline"]: json.loads(line) for line in (out / "records.jsonl").open()}
        assert records["kit-fit-none"]["status"] == "failed"
        mutable = records["kit-mutable-default"]
        assert mutable["status"] == "ok" and mutable["params"]["history"] == []  # as given, not as fit left it
        assert mutable["determinism"]["exact_reruns"] == "not checked"
        listed = records["kit-list-param"]
        assert listed["status"] == "ok" and listed["fit_info"]["ks_type"] == "list"  # as `check` passes it

        run_info = json.loads((out / "run.json").read_text())
        cv2 = run_info["environment"]["cv2"]
        assert cv2["imported"] is True and cv2["path"].endswith("__init__.py") and cv2["providers"]
        assert run_info["environment"]["benchsuite"]["imported"]

        # the same run folder, nothing left to run: the failed record stays, and --allow-failures exits 0
        assert main([*argv, "--resume"]) == 3
        assert main([*argv, "--resume", "--allow-failures"]) == 0
    finally:
        sys.modules.pop("kit_run_module", None)
