"""Names and paths built from untrusted text: data (class names, image ids), plugin ids and run folders' records.

Everything the suite writes or reads for a run stays inside its folder (the run folder, or the data set's folder
for data). Three tools keep it there:

- :func:`safe_name`: a file name from any text: the text itself when it is already a plain, short name
  (``[A-Za-z0-9._-]``, at most :data:`MAX_NAME` characters, not starting with a dot), else a slug of it plus
  ``-`` and 8 hex digits of its sha256, so that two texts never share a name and the name is stable. Where a name
  is derived, the caller keeps the mapping (a record's artifacts, an index file beside the files).
- :func:`inside`: a path below a root from parts that must each be one plain component (no separator, no ``..``,
  not absolute), resolved through symlinks and refused when it leaves the root.
- :func:`open_regular` / :func:`read_limited`: open a data file without ever blocking on a special file: a FIFO, a
  device or a socket is refused before it is read (opened non-blocking, checked with ``fstat``), and a file larger
  than a limit is refused before it is allocated.

A refusal is an :class:`UnsafePathError` (a :class:`~benchsuite.errors.BenchsuiteError`, one line naming the path).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import stat
from pathlib import Path
from typing import IO

from benchsuite.errors import BenchsuiteError, DataError

#: the longest name :func:`safe_name` returns (well under the 255 bytes of common file systems, leaving room for
#: prefixes and suffixes such as ``comp4_det_test_`` and ``.txt``)
MAX_NAME = 96
_PLAIN = re.compile(r"[A-Za-z0-9._-]+")
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9._-]+")


class UnsafePathError(BenchsuiteError):
    """A path built from untrusted text would leave its folder, or names a file that must not be opened."""


def is_safe_name(text: object, max_len: int = MAX_NAME) -> bool:
    """Whether ``text`` is already a plain file name: ``[A-Za-z0-9._-]``, 1 to ``max_len`` characters, not
    starting with a dot (so never ``.`` or ``..``, never hidden)."""
    return (isinstance(text, str) and 0 < len(text) <= max_len and not text.startswith(".")
            and _PLAIN.fullmatch(text) is not None)


def safe_name(text: str, max_len: int = MAX_NAME) -> str:
    """A plain file name for ``text`` (see the module docstring): ``text`` itself when :func:`is_safe_name`,
    else ``<slug>-<8 hex of sha256(text)>`` of at most ``max_len`` characters."""
    text = str(text)
    if is_safe_name(text, max_len):
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    slug = _UNSAFE_RUN.sub("_", text).strip("._-")
    slug = slug[: max(0, max_len - len(digest) - 1)].rstrip("._-")
    return f"{slug}-{digest}" if slug else f"x-{digest}"


def short_repr(value: object, limit: int = 60) -> str:
    """A short ``repr`` of an untrusted value for a message, computed in bounded time: a string, bytes or number
    (cut to ``limit`` characters), else its type and length (a nested container is never walked)."""
    if isinstance(value, (str, bytes, bytearray)):
        text = repr(value[: limit + 1])
    elif value is None or isinstance(value, (bool, int, float)):
        big = isinstance(value, int) and abs(value) >= 10**limit
        text = f"<int of {value.bit_length()} bits>" if big else repr(value)
    else:
        size = len(value) if hasattr(value, "__len__") else None  # type: ignore[arg-type]
        text = f"<{type(value).__name__}" + (f" of {size}>" if size is not None else ">")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def show_path(path: object) -> str:
    """A path for a one-line message: as it is when it is printable, else its ``repr`` (a file name may hold a line
    break or a control character)."""
    text = str(path)
    return text if text.isprintable() else repr(text)


def check_component(part: object, what: str = "name") -> str:
    """``part`` when it is one plain path component (a non-empty string without ``/``, ``\\`` or NUL, not ``.``
    or ``..``); otherwise :class:`UnsafePathError` naming it."""
    if not isinstance(part, str) or not part or part in (".", "..") or any(c in part for c in "/\\\0"):
        raise UnsafePathError(f"{what} {short_repr(part, 120)} is not a plain file name (it could reach outside its "
                              f"folder); expected a name without '/', '\\' or '..'")
    return part


def inside(root: Path | str, *parts: str, what: str = "path") -> Path:
    """``root / parts[0] / parts[1] ...`` when every part is one plain component and the result, with symlinks
    resolved, is still below ``root`` (resolved too); otherwise :class:`UnsafePathError` naming the path."""
    root = Path(root)
    for part in parts:
        check_component(part, what)
    path = root.joinpath(*parts)
    _check_below(root, path, what)
    return path


def relative_inside(root: Path | str, relative: object, what: str = "path") -> Path:
    """``root / relative`` for a relative path read from a file (a record's ``artifacts``, ``log``): refused when
    it is not a string, is absolute, has a ``..`` component, or resolves (through symlinks) outside ``root``."""
    if not isinstance(relative, str) or not relative or "\0" in relative:
        raise UnsafePathError(f"{what} {short_repr(relative, 120)} is not a relative path inside {show_path(root)}")
    rel = Path(relative)
    if rel.is_absolute() or relative.startswith(("/", "\\")) or ".." in rel.parts or "\\" in relative:
        raise UnsafePathError(f"{what} {short_repr(relative, 120)} reaches outside {show_path(root)} (absolute or with "
                              f"'..'); "
                              f"expected a path relative to it")
    path = Path(root) / rel
    _check_below(root, path, what)
    return path


def _check_below(root: Path | str, path: Path, what: str) -> None:
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
        raise UnsafePathError(f"{what} {show_path(path)} resolves to {show_path(real)}, outside "
                              f"{show_path(real_root)}; refused")


# ------------------------------------------------------------------------------------------------ data files

_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


def special_kind(mode: int) -> str | None:
    """What a file of ``st_mode`` ``mode`` is when it is not a regular file (``"a FIFO (named pipe)"``), else None."""
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def open_regular(path: Path | str, max_bytes: int | None = None, what: str = "data file") -> IO[bytes]:
    """Open ``path`` for reading in binary mode, never blocking: the file is opened non-blocking and checked with
    ``fstat`` before any read, so a FIFO, a device or a socket is refused at once (:class:`DataError`, one line
    naming the file and what it is), as is a file over ``max_bytes`` bytes. ``FileNotFoundError`` passes through."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except IsADirectoryError:
        raise DataError(f"{show_path(path)}: is a folder, expected a regular {what}") from None
    except OSError as exc:
        if exc.errno in (errno.ENXIO, errno.EWOULDBLOCK):  # a socket or a device that will not open
            raise DataError(f"{show_path(path)}: not a regular file ({exc.strerror}); expected a {what}") from None
        raise
    try:
        info = os.fstat(fd)
        kind = special_kind(info.st_mode)
        if kind is not None:
            raise DataError(f"{show_path(path)}: is {kind}, not a regular file; refused (reading it could block the "
                            f"run); "
                            f"expected a {what}")
        if max_bytes is not None and info.st_size > max_bytes:
            raise DataError(f"{show_path(path)}: {info.st_size:,} bytes, over the {max_bytes:,}-byte limit for a "
                            f"{what}; refused before reading it")
        import fcntl

        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
        return os.fdopen(fd, "rb")
    except BaseException:
        with contextlib.suppress(OSError):
            os.close(fd)
        raise


def read_limited(path: Path | str, max_bytes: int, what: str = "data file") -> bytes:
    """The bytes of the regular file ``path`` (:func:`open_regular`), refusing one over ``max_bytes`` bytes
    before it is read (and one that grows past it while it is read)."""
    with open_regular(path, max_bytes, what) as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise DataError(f"{show_path(path)}: over the {max_bytes:,}-byte limit for a {what}; refused")
    return data
