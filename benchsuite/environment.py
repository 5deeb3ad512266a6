"""The environment's OpenCV: which ``cv2`` module loads, and every installed distribution that provides one.

OpenCV is packaged four ways (``opencv-python``, ``opencv-python-headless``, ``opencv-contrib-python``,
``opencv-contrib-python-headless``), and all four install the same ``cv2/`` folder. The suite depends on
``opencv-contrib-python-headless`` (selective search and the other contrib modules live in ``cv2.ximgproc``); a
plugin that depends on another of them makes pip install it beside the suite's, over the same files: whichever was
installed last wins, file by file, and nothing fails until a built-in pipeline reaches for a contrib module
(``module 'cv2.ximgproc' has no attribute 'segmentation'``). :func:`cv2_environment` says what is there;
``benchsuite list``, ``benchsuite check`` and every run (``run.json``'s ``environment``) report it, and
:meth:`Cv2Environment.warning` says what is wrong and how to fix it.

Reading the distributions costs a few hundredths of a second (their ``top_level.txt``, else their ``RECORD``);
the module is imported only when asked (``load=True``) or already imported, and read from its files otherwise.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["SUITE_OPENCV", "Cv2Environment", "copy_note", "cv2_environment", "cv2_providers", "environment_block",
           "imported_copy", "installed_copy"]

#: the OpenCV distribution the suite depends on (pyproject.toml)
SUITE_OPENCV = "opencv-contrib-python-headless"
_REQUIREMENT = '"opencv-contrib-python-headless>=4.8,<5"'


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _provides_cv2(dist: metadata.Distribution) -> bool:
    top = dist.read_text("top_level.txt")
    if top is not None:
        return "cv2" in top.split()
    record = dist.read_text("RECORD") or ""
    return any(line.startswith(("cv2/", "cv2\\")) for line in record.splitlines())


def cv2_providers() -> list[tuple[str, str]]:
    """``(distribution, version)`` of every installed distribution that provides the ``cv2`` module, by name
    (each once, the first found on ``sys.path``)."""
    found: dict[str, tuple[str, str]] = {}
    for dist in metadata.distributions():
        if not _provides_cv2(dist):  # first: reading every distribution's METADATA costs ten times more
            continue
        name = dist.metadata["Name"] or ""
        if name and _canonical(name) not in found:
            found[_canonical(name)] = (name, dist.version)
    return sorted(found.values())


def _required_by(names: set[str]) -> dict[str, list[str]]:
    """``{provider: [distributions that require it]}`` for the canonical provider ``names``."""
    out: dict[str, list[str]] = {}
    for dist in metadata.distributions():
        for req in dist.requires or ():
            wanted = _canonical(re.split(r"[\s;<>=!~\[(]", req.strip(), maxsplit=1)[0])
            if wanted in names and "extra ==" not in req:
                out.setdefault(wanted, []).append(dist.metadata["Name"])
    return {k: sorted(set(v)) for k, v in out.items()}


@dataclass(frozen=True)
class Cv2Environment:
    """Which ``cv2`` loads and who provides it.

    Attributes:
        path: the ``cv2`` package that loads (its ``__init__.py``), or None when there is none.
        version: its OpenCV version (``cv2.__version__``, else its ``version.py``).
        contrib: whether it has the contrib modules (``cv2.ximgproc`` when imported, else its ``version.py``'s
            ``contrib`` flag); None when unknown.
        imported: whether these facts come from the imported module (else from its files).
        providers: ``(distribution, version)`` of every installed distribution that provides ``cv2``.
        required_by: for a provider other than the suite's, the installed distributions that require it.
        error: why importing ``cv2`` failed ("" when it did not, or was not tried).
    """

    path: str | None
    version: str | None
    contrib: bool | None
    imported: bool
    providers: tuple[tuple[str, str], ...]
    required_by: dict[str, list[str]]
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        """A JSON block (``run.json``'s ``environment.cv2``), with ``warning`` (None when all is well)."""
        out = asdict(self)
        out["providers"] = [{"distribution": n, "version": v} for n, v in self.providers]
        out["warning"] = self.warning()
        return out

    def line(self) -> str:
        """One line: ``cv2: OpenCV 4.10.0 with contrib from /.../cv2 (opencv-contrib-python-headless 4.10.0.84)``."""
        if self.path is None:
            return "cv2: not installed"
        kind = {True: "with contrib", False: "WITHOUT contrib", None: "contrib unknown"}[self.contrib]
        providers = ", ".join(f"{n} {v}" for n, v in self.providers) or "no distribution"
        failed = f"; importing it fails: {self.error}" if self.error else ""
        return f"cv2: OpenCV {self.version or '?'} {kind} from {Path(self.path).parent} ({providers}){failed}"

    def warning(self) -> str | None:
        """What is wrong with the environment's OpenCV, with the fix; None when all is well."""
        names = [n for n, _ in self.providers]
        others = [n for n in names if _canonical(n) != SUITE_OPENCV]
        fix = (f"pip uninstall -y {' '.join(names)}; pip install --force-reinstall {_REQUIREMENT}"
               if names else f"pip install {_REQUIREMENT}")
        if len(self.providers) > 1:
            why = ""
            needs = {n: self.required_by.get(_canonical(n), []) for n in others}
            if any(needs.values()):
                why = " (" + "; ".join(f"{n} is required by {', '.join(v)}" for n, v in needs.items() if v) + ")"
            return (f"{len(self.providers)} installed distributions provide the cv2 module: "
                    f"{', '.join(f'{n} {v}' for n, v in self.providers)}{why}. They overwrite each other's files, "
                    f"so the cv2 that loads (OpenCV {self.version or '?'}, "
                    f"{'with' if self.contrib else 'without' if self.contrib is False else 'unknown'} contrib "
                    f"modules) may be a mix and not the suite's {SUITE_OPENCV}; the built-in pipelines that use "
                    f"cv2.ximgproc then fail. Fix: {fix} (and make plugins depend on {SUITE_OPENCV}, not on "
                    f"{' or '.join(others) or 'another OpenCV package'})")
        if self.error or self.contrib is False or self.path is None:
            problem = (f"importing cv2 fails ({self.error})" if self.error else
                       "no cv2 module is installed" if self.path is None else
                       f"the cv2 that loads ({self.line()[5:]}) lacks the contrib modules (cv2.ximgproc)")
            return f"{problem}; the suite needs {SUITE_OPENCV}. Fix: {fix}"
        return None


def _from_files(origin: str) -> tuple[str | None, bool | None]:
    """``(version, contrib)`` from the ``version.py`` beside a cv2 package's ``__init__.py`` (opencv-python's
    wheels write ``opencv_version = "4.10.0.84"`` and ``contrib = True``), without importing it."""
    try:
        text = (Path(origin).parent / "version.py").read_text()
    except OSError:
        return None, None
    version = re.search(r"""^opencv_version\s*=\s*["']([^"']+)""", text, re.M)
    contrib = re.search(r"^contrib\s*=\s*(True|False)", text, re.M)
    return (version.group(1) if version else None, (contrib.group(1) == "True") if contrib else None)


def cv2_environment(load: bool = False) -> Cv2Environment:
    """The environment's OpenCV: the ``cv2`` that loads and every distribution that provides one.

    Args:
        load: import ``cv2`` (about half a second) to read its version and whether ``cv2.ximgproc`` exists; else
            the module is read from its files unless it is already imported.
    """
    providers = tuple(cv2_providers())
    others = {_canonical(n) for n, _ in providers} - {SUITE_OPENCV}
    required = _required_by(others) if others else {}
    if "cv2" in sys.modules or load:
        try:
            import cv2
        except Exception as exc:  # a half-overwritten install can fail to import
            spec = importlib.util.find_spec("cv2")
            origin = spec.origin if spec is not None else None
            version, contrib = _from_files(origin) if origin else (None, None)
            return Cv2Environment(origin, version, contrib, False, providers, required,
                                  f"{type(exc).__name__}: {exc}")
        return Cv2Environment(getattr(cv2, "__file__", None), getattr(cv2, "__version__", None),
                              hasattr(cv2, "ximgproc"), True, providers, required)
    spec = importlib.util.find_spec("cv2")
    if spec is None or spec.origin is None:
        return Cv2Environment(None, None, None, False, providers, required)
    version, contrib = _from_files(spec.origin)
    return Cv2Environment(spec.origin, version, contrib, False, providers, required)


# ------------------------------------------------------------------------------------------------ which benchsuite
def installed_copy() -> Path | None:
    """The ``benchsuite`` package folder that the installed distribution (what the ``benchsuite`` command runs)
    imports: its checkout for an editable install, else the copy in site-packages; None when not installed."""
    import json

    try:
        dist = metadata.distribution("benchsuite")
    except metadata.PackageNotFoundError:
        return None
    try:
        direct = json.loads(dist.read_text("direct_url.json") or "{}")
    except ValueError:
        direct = {}
    if direct.get("dir_info", {}).get("editable") and str(direct.get("url", "")).startswith("file://"):
        from urllib.parse import unquote, urlparse

        return Path(unquote(urlparse(direct["url"]).path)) / "benchsuite"
    located = Path(str(dist.locate_file("benchsuite")))
    return located if located.is_dir() else None


def imported_copy() -> Path:
    """The ``benchsuite`` package folder this process imported (the one that holds this module)."""
    return Path(__file__).resolve().parent


def copy_note(imported: Path, script: str) -> str | None:
    """One line when the ``benchsuite`` package this process imported (``imported``, its folder) is not the one
    the installed distribution runs: ``python run_all.py`` in a checkout imports that checkout, while the
    ``benchsuite`` command imports the installed copy (``script`` names what is running). None when they are
    the same folder (an editable install of this checkout) or nothing is installed."""
    installed = installed_copy()
    if installed is None:
        return None
    here, there = imported.resolve(), installed.resolve()
    if here == there:
        return None
    return (f"{script} imports benchsuite from {here}, while the installed `benchsuite` command imports {there}: two "
            f"copies that may differ (install this one with `pip install -e {here.parent}` to make them one)")


def environment_block() -> dict[str, Any]:
    """``run.json``'s ``environment``: the cv2 that loads (imported) and its providers (:func:`cv2_environment`),
    and the benchsuite copy this process imported beside the one the installed command imports."""
    installed = installed_copy()
    return {"cv2": cv2_environment(load=True).as_dict(),
            "benchsuite": {"imported": str(imported_copy()),
                           "installed": str(installed.resolve()) if installed else None}}
