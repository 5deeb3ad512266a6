"""`benchsuite data check` on Penn-Fudan in each format (run on demand: --run-benchmarks; needs
BENCHSUITE_REAL_DATA).

The goal (issue 23): the summary in under 5 s for Penn-Fudan (170 images), including the interpreter's start and
the imports, as a user types it. Measured as the wall time of the command in a fresh process; CPU seconds of that
process are in ``extra_info`` (the wall time depends on the machine's load).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.convert_formats import convert_voc

REAL = os.environ.get("BENCHSUITE_REAL_DATA")
pytestmark = pytest.mark.skipif(not REAL, reason="BENCHSUITE_REAL_DATA not set")


@pytest.fixture(scope="module")
def specs(tmp_path_factory) -> dict[str, str]:
    folder = Path(REAL or ".") / "pennfudan-voc" / "PennFudan"
    return {"voc": f"voc:{folder}", **convert_voc(folder, tmp_path_factory.mktemp("pf"))}


@pytest.mark.parametrize("fmt", ["voc", "coco", "yolo", "vocxml"])
def test_data_check_penn_fudan_under_5_s(benchmark, specs, fmt, tmp_path):
    def one() -> float:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "benchsuite", "data", "check", specs[fmt], "--cache-dir",
                              str(tmp_path)], capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "split sizes: train 80, val 20, test 70" in out.stdout
        benchmark.extra_info.setdefault("cpu_s", []).append(round(after.ru_utime + after.ru_stime
                                                                  - before.ru_utime - before.ru_stime, 3))
        return wall

    wall = benchmark.pedantic(one, rounds=3, warmup_rounds=1)
    assert wall < 5.0
