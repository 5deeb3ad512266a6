"""Where a run happened: machine, library versions, git commit."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from benchsuite.device import gpu_info

LIBRARIES = ("benchsuite", "numpy", "numba", "torch", "torchvision", "opencv-contrib-python-headless",
             "scikit-learn", "scikit-image", "pandas", "matplotlib")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit(start: Path | None = None) -> dict[str, Any]:
    """The commit of the checkout the suite runs from, whether its tracked files differ from that commit, and
    (``diff_sha256``) the sha256 of that difference (``git diff HEAD``), so that two sessions of a resumed run can
    tell whether they ran the same code (None outside a git checkout)."""
    import hashlib

    cwd = start or Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10).stdout.strip() != ""
        diff = None
        if dirty:
            done = subprocess.run(["git", "diff", "HEAD", "--no-color", "--no-ext-diff"], cwd=cwd,
                                  capture_output=True, timeout=30)
            diff = hashlib.sha256(done.stdout).hexdigest() if done.returncode == 0 else None
        return {"commit": sha, "dirty": dirty, "diff_sha256": diff}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None, "diff_sha256": None}


def machine_info() -> dict[str, Any]:
    import psutil

    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "gpu": gpu_info(),
    }
