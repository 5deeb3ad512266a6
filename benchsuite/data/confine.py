"""Reading untrusted data-set folders safely: paths stay inside the folder, only regular files are opened, and
sizes are checked before anything is allocated.

Every path a reader takes from a data file (a COCO ``file_name``, a ``data.yaml`` split folder, an XML
``<filename>``) goes through :func:`resolve_inside`: an absolute path, a ``..`` that climbs out, or a symbolic link
whose target lies outside the data set's folder is refused with one line naming the file that holds the path.
:func:`regular_file` refuses FIFOs, devices and sockets before anything opens them (opening a FIFO blocks), and
:func:`read_limited` refuses a file over a size limit before reading it.

Limits (documented in the README's Data section):

=====================================  =========================================================
:data:`MAX_JSON_BYTES` (1 GiB)          a COCO annotation file (COCO 2017's train file is 448 MB)
:data:`MAX_TEXT_BYTES` (16 MiB)         one YOLO label file, ``classes.txt``, ``data.yaml``, an XML annotation
:data:`MAX_LABEL_LINES` (100,000)       lines (objects) in one YOLO label file
:data:`MAX_FILES` (10,000,000)          files walked under a data set folder
:data:`MAX_NAME_CHARS` (200)            characters in a class name
=====================================  =========================================================
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from benchsuite.errors import DataError
from benchsuite.results import safe_paths
from benchsuite.results.safe_paths import special_kind

MAX_JSON_BYTES = 1 << 30
MAX_TEXT_BYTES = 16 << 20
MAX_LABEL_LINES = 100_000
MAX_FILES = 10_000_000
MAX_NAME_CHARS = 200


def real_folder(folder: Path, expected: str) -> Path:
    """``folder`` resolved (symbolic links followed) after checking that it is a folder; else a DataError."""
    folder = Path(os.path.abspath(Path(folder).expanduser()))
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder; expected {expected}")
    return Path(os.path.realpath(folder))


def is_inside(path: Path, root: Path) -> bool:
    """Whether ``path`` (already resolved) is ``root`` (already resolved) or lies under it."""
    return path == root or root in path.parents


def resolve_inside(root: Path, relative: str, source: Path | str, what: str) -> Path:
    """``relative`` (a path read from the data file ``source``) resolved against ``root``; refused unless it stays
    inside ``root`` once symbolic links are followed.

    ``root`` must be resolved (:func:`real_folder`). Raises a one-line DataError naming ``source`` and ``what``
    (``"file_name"``, ``"<filename>"``) for an absolute path, a NUL character, or a path that leaves the folder.
    """
    text = str(relative)
    if not text or "\0" in text:
        raise DataError(f"{source}: {what} {text!r} is not a file name")
    if os.path.isabs(text) or text.startswith(("\\", "~")) or (len(text) > 2 and text[1] == ":" and text[2] in "/\\"):
        raise DataError(f"{source}: {what} {text!r} is an absolute path; expected a path relative to {root}")
    candidate = Path(os.path.realpath(root / text))
    if not is_inside(candidate, root):
        raise DataError(f"{source}: {what} {text!r} leads outside the data set folder {root} (to {candidate}); "
                        f"refused")
    return candidate


def confined(path: Path, root: Path, what: str) -> Path:
    """``path`` (found in the resolved folder ``root``, possibly a symbolic link) resolved; a DataError when its
    target lies outside ``root``."""
    real = Path(os.path.realpath(path))
    if not is_inside(real, root):
        raise DataError(f"{path}: a {what} that links outside the data set folder {root} (to {real}); refused")
    return real


def regular_file(path: Path, what: str = "file") -> os.stat_result:
    """``os.stat`` of ``path`` (links followed) after checking it is a regular file: a FIFO, device or socket is
    refused before anything opens it (opening a FIFO would block). A missing file is a DataError too."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise DataError(f"{path}: missing; expected a {what}") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror}); expected a {what}") from None
    kind = special_kind(st.st_mode)
    if kind is not None:
        raise DataError(f"{path}: {kind}; expected a {what} (special files are never opened)")
    return st


def read_limited(path: Path, limit: int, what: str) -> bytes:
    """The bytes of the regular file ``path``, read by :func:`benchsuite.results.safe_paths.read_limited` (never
    blocking on a special file, refusing one over ``limit`` bytes before it is read); a missing or unreadable
    file is a DataError naming it too."""
    try:
        return safe_paths.read_limited(path, limit, what)
    except OSError as exc:
        reason = "missing" if isinstance(exc, FileNotFoundError) else f"cannot be read ({exc.strerror})"
        raise DataError(f"{path}: {reason}; expected a {what}") from None


def walk_files(root: Path, suffixes: frozenset[str] | None = None,
               skipped: Callable[[Path, str], None] | None = None) -> Iterator[Path]:
    """Every regular file under the resolved folder ``root`` (sorted, hidden entries skipped), whose lower-case
    suffix is in ``suffixes`` (None: all). Symbolic links to folders are not followed; a linked file is yielded
    only when its target lies inside ``root`` and is a regular file. ``skipped(path, why)``, when given, hears of
    each linked folder and each linked file left out. More than :data:`MAX_FILES` is refused."""
    count = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if skipped is not None:
            for d in dirnames:
                if os.path.islink(os.path.join(dirpath, d)):
                    skipped(Path(dirpath) / d, "a linked folder: links to folders are not followed")
        for name in sorted(filenames):
            if name.startswith(".") or (suffixes is not None and Path(name).suffix.lower() not in suffixes):
                continue
            count += 1
            if count > MAX_FILES:
                raise DataError(f"{root}: more than {MAX_FILES:,} files; refused")
            path = Path(dirpath) / name
            if path.is_symlink():
                target = Path(os.path.realpath(path))
                if not is_inside(target, root) or not target.is_file():
                    if skipped is not None:
                        skipped(path, f"links to {target}, which is not a file inside {root}")
                    continue
            elif not stat.S_ISREG(os.lstat(path).st_mode):
                continue
            yield path


def checked_name(name: str, source: Path | str, what: str = "class name") -> str:
    """A class name read from data, stripped; empty, over-long or control-character names are refused (names are
    data: they are never used to build a path)."""
    text = str(name).strip()
    if not text:
        raise DataError(f"{source}: empty {what}")
    if len(text) > MAX_NAME_CHARS:
        raise DataError(f"{source}: {what} of {len(text)} characters (over {MAX_NAME_CHARS}): {text[:40]!r}...")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise DataError(f"{source}: {what} {text!r} holds control characters")
    return text
