"""Atomic file writes: a reader never sees half a file, and a crash never loses what was there."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    The file gets the permissions an ordinary ``open(path, "w")`` would give (``0o666`` less the umask),
    not the owner-only mode of the temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not exc.filename:  # name the file the caller asked for
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def atomic_write_npz(path: Path, arrays: Mapping[str, Any]) -> None:
    """Write named arrays to ``path`` as a compressed ``npz`` (numpy's format, no pickles), atomically."""
    import io

    import numpy as np

    buf = io.BytesIO()
    np.savez_compressed(buf, **{name: np.asarray(value) for name, value in arrays.items()})
    atomic_write_bytes(path, buf.getvalue())


def repair_tail(path: Path) -> bytes:
    """Cut a partial last line (bytes after the last newline that are not one whole JSON object) off ``path``;
    return the bytes cut.

    A record line is written by one ``write`` call, but a full disk or a killed process can still leave a
    line without its newline. Appending after it would glue the next record onto it, so every append and
    every run start calls this first. A last line that is a whole JSON object (a record whose newline alone was
    lost) is kept: its newline is added instead, and nothing is cut.
    """
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return b""
    try:
        return _repair_fd(fd)
    finally:
        os.close(fd)


def _repair_fd(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return b""
    end = size
    keep = 0
    while end > 0:  # scan back for the last newline, 64 KiB at a time
        start = max(0, end - 65536)
        chunk = os.pread(fd, end - start, start)
        cut = chunk.rfind(b"\n")
        if cut >= 0:
            keep = start + cut + 1
            break
        end = start
    tail = os.pread(fd, size - keep, keep)
    if _whole_object(tail):
        os.pwrite(fd, b"\n", size)
        os.fsync(fd)
        log.warning("%s: completed a last record line that had lost its newline", _fd_name(fd))
        return b""
    os.ftruncate(fd, keep)
    os.fsync(fd)
    return tail


def _whole_object(data: bytes) -> bool:
    """Whether ``data`` is one whole JSON object (a record line without its newline)."""
    try:
        return isinstance(json.loads(data.decode("utf-8")), dict)
    except (ValueError, RecursionError):
        return False


def _fd_name(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return f"file descriptor {fd}"


def append_line(path: Path, line: str) -> None:
    """Append one whole line or nothing: one ``write`` on an ``O_APPEND`` descriptor, then fsync.

    One write of a whole line is atomic with respect to other appenders on a local file system, so
    concurrent jobs never interleave records. A partial tail left by an earlier failure is cut off first
    (:func:`repair_tail`), and when this write itself fails or is short (``ENOSPC``, ``EDQUOT``, ``EIO``),
    the file is truncated back to its previous length before the error is raised: the file holds whole
    lines only, whatever happens.
    """
    if "\n" in line:
        raise ValueError("a record line must not contain a newline")
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (line + "\n").encode("utf-8")
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        cut = _repair_fd(fd)
        if cut:
            log.warning("%s: cut a partial last line (%d bytes) left by an earlier failure", path, len(cut))
        before = os.fstat(fd).st_size
        try:
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(errno.ENOSPC, f"short write ({written} of {len(data)} bytes): "
                                            f"{os.strerror(errno.ENOSPC)}", str(path))
            os.fsync(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, before)
            raise
    finally:
        os.close(fd)


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def finite_or_none(obj: Any) -> Any:
    """``obj`` with every NaN or infinite float replaced by None, so the JSON stays standard."""
    import math

    import numpy as np

    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_none(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return finite_or_none(obj.tolist())
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def to_json_line(obj: Any) -> str:
    """One JSON line; NaN and infinities become null."""
    return json.dumps(finite_or_none(obj), sort_keys=True, default=_json_default, allow_nan=False)
