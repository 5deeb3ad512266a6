"""A run's folder on disk: ``run.json``, ``records.jsonl``, ``summary.csv`` and per-job files.

Layout::

    <run_dir>/
      run.json             machine, versions, commit, data sets with fingerprints, configuration
      records.jsonl        one JSON record per (job, evaluated split), appended atomically
      summary.csv          the tidy table of the latest record of each (job, split)
      report.md            the report
      splits/              the split manifests the run used
      jobs/<job_id>/       job.json, result.json, log.txt, predictions, confusion matrices

Record keys are an interface: scripts read ``metrics.accuracy``, ``timing.fit_s`` and so on.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

from benchsuite.errors import BenchsuiteError, ConfigError
from benchsuite.results.atomic import append_line, atomic_write_json, atomic_write_text, repair_tail, to_json_line
from benchsuite.results.safe_paths import open_regular, read_limited
from benchsuite.results.schema import present_field_problems, upgrade_record

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
RECORDS_FILE = "records.jsonl"
SUMMARY_FILE = "summary.csv"
LOCK_FILE = ".benchsuite.lock"
#: keys every record must have, as strings, for the report, compare and export to use it
REQUIRED_KEYS = ("job_id", "task", "dataset", "pipeline", "split", "status")
#: failure kinds that are not the pipeline's doing: plain ``--resume`` runs these jobs again
RERUN_FAILURES = frozenset({"killed", "interrupted"})


class StorageError(BenchsuiteError):
    """A run folder could not be written or read (read-only, full, permission): one line naming the path."""


def storage_error(exc: OSError, what: str = "cannot write", where: Path | str | None = None) -> StorageError:
    """A one-line :class:`StorageError` for ``exc``: the path (``where`` when the error names none), the
    cause and its errno name."""
    path = exc.filename or where or "?"
    cause = exc.strerror or str(exc)
    name = errno.errorcode.get(exc.errno or 0, "")
    return StorageError(f"{what} {path}: {cause}" + (f" ({name})" if name else ""))


class RunStore:
    """Reads and writes one run folder."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)

    @property
    def records_path(self) -> Path:
        return self.run_dir / RECORDS_FILE

    @property
    def run_path(self) -> Path:
        return self.run_dir / RUN_FILE

    def job_dir(self, job_id: str) -> Path:
        return self.run_dir / "jobs" / job_id

    def exists(self) -> bool:
        return self.run_path.is_file()

    def write_run_info(self, info: dict[str, Any]) -> None:
        atomic_write_json(self.run_path, info)

    def read_run_info(self) -> dict[str, Any]:
        """``run.json`` as a dict, checked field by field (:func:`benchsuite.results.run_schema.run_info_problems`); a
        missing, unreadable, corrupt or ill-typed file is a one-line BenchsuiteError naming the file and the key."""
        from benchsuite.results.run_schema import run_info_problems

        try:
            data = read_limited(self.run_path, MAX_RUN_FILE_BYTES, "run.json")
        except FileNotFoundError:
            raise BenchsuiteError(f"{self.run_path}: missing; {self.run_dir} is not a benchsuite run folder") from None
        except OSError as exc:
            raise storage_error(exc, "cannot read") from None
        except BenchsuiteError as exc:
            raise BenchsuiteError(str(exc)) from None
        try:
            info = json.loads(data.decode("utf-8", "replace"), parse_constant=_no_constant)
        except (json.JSONDecodeError, ValueError, RecursionError) as exc:
            raise BenchsuiteError(f"{self.run_path}: corrupt ({str(exc)[:200]}); expected the JSON object a run "
                                  f"writes") from None
        if not isinstance(info, dict):
            raise BenchsuiteError(f"{self.run_path}: holds a JSON {type(info).__name__}, expected an object")
        problems = run_info_problems(info)
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise BenchsuiteError(f"{self.run_path}: {problems[0]}{more}; the file is not as a run writes it (fix "
                                  f"or restore it)")
        return info

    def repair(self) -> None:
        """Cut a partial last line off ``records.jsonl`` (a full disk or a kill in an earlier session)."""
        cut = repair_tail(self.records_path)
        if cut:
            log.warning("%s: cut a partial last line (%d bytes) left by an earlier failure",
                        self.records_path, len(cut))

    def append(self, record: dict[str, Any]) -> None:
        append_line(self.records_path, to_json_line(record))

    def records(self, latest_only: bool = True) -> list[dict[str, Any]]:
        """The records, in file order, each read as the current schema version (an older record is upgraded,
        :func:`benchsuite.results.schema.upgrade_record`); with ``latest_only`` the last record of each (job,
        split).

        A line that is not a record (not JSON, not an object, no text ``job_id``/``task``/...: what a crash or a
        foreign tool leaves) is skipped with a warning naming it. A record whose fields do not have the schema's
        types (``seed`` ``"zero"``, ``fit_info`` a list: :func:`~benchsuite.results.schema.present_field_problems`)
        is refused: :class:`RecordError`, one line naming the file, the line and the key, since a changed record's
        numbers cannot be trusted and dropping it would change the tables silently.
        """
        if not self.records_path.exists():
            return []
        out = []
        try:
            lines = list(_lines(self.records_path, MAX_RECORD_LINE))
        except OSError as exc:
            raise storage_error(exc, "cannot read") from None
        except BenchsuiteError as exc:
            raise RecordError(str(exc)) from None
        for number, line in lines:
            if line is None:
                log.warning("%s:%d: skipping a record line over %d MiB", self.records_path, number,
                            MAX_RECORD_LINE // 2**20)
                continue
            if not line.strip():
                continue
            try:
                rec = json.loads(line, parse_constant=_no_constant)
            except (ValueError, RecursionError):
                log.warning("%s:%d: skipping a malformed record line (not JSON)", self.records_path, number)
                continue
            problem = record_problem(rec)
            if problem:
                log.warning("%s:%d: skipping a malformed record line (%s)", self.records_path, number, problem)
                continue
            rec = upgrade_record(rec)  # an older record in the current shape first: then its fields are checked
            fields = present_field_problems(rec)
            if fields:
                more = f" (and {len(fields) - 1} more)" if len(fields) > 1 else ""
                raise RecordError(f"{self.records_path}:{number}: {fields[0]}{more}; the record is not as the runner "
                                  f"writes it (was the file edited?): fix or remove that line")
            out.append(rec)
        if not latest_only:
            return out
        latest: dict[tuple[str, str], dict[str, Any]] = {}
        for rec in out:
            latest[(rec.get("job_id", ""), rec.get("split", ""))] = rec
        return list(latest.values())

    def recorded_jobs(self, include_failed: bool = True) -> set[str]:
        """Job ids that have a record (only successful ones unless ``include_failed``)."""
        return {r["job_id"] for r in self.records()
                if r.get("status") == "ok" or (include_failed and not rerun_on_resume(r))}

    def write_summary(self) -> Path:
        from benchsuite.results.tidy import records_table  # pandas only when a summary is written

        table = records_table(self.records())
        path = self.run_dir / SUMMARY_FILE
        atomic_write_text(path, table.to_csv(index=False))
        return path


def record_problem(rec: Any) -> str | None:
    """Why ``rec`` is not a record at all (not an object, no text identifying keys), or None."""
    if not isinstance(rec, dict):
        return f"a JSON {type(rec).__name__}, not an object"
    bad = [k for k in REQUIRED_KEYS if not isinstance(rec.get(k), str)]
    if bad:
        return f"no text {', '.join(bad)}"
    return None


class RecordError(BenchsuiteError):
    """A record line whose fields do not have the schema's types: one line naming the file, the line and the key."""


#: the largest record line read (a detection record with per-class curves is a few hundred kilobytes)
MAX_RECORD_LINE = 64 * 2**20
#: the largest run.json read
MAX_RUN_FILE_BYTES = 64 * 2**20


def _no_constant(name: str) -> Any:
    """``json.loads``'s ``parse_constant``: NaN and Infinity are not JSON, and a run never writes them."""
    raise ValueError(f"{name} is not a JSON number")


def _lines(path: Path, limit: int) -> Any:
    """``(line number, text)`` for each line of ``path``, reading at most ``limit`` bytes of a line into memory:
    a longer line comes as ``(number, None)``. The file must be a regular file (never a FIFO)."""
    with open_regular(path, what="records file") as f:
        number = 0
        while True:
            raw = f.readline(limit + 1)
            if not raw:
                return
            number += 1
            if len(raw) > limit and not raw.endswith(b"\n"):
                while raw and not raw.endswith(b"\n"):  # skip the rest of the long line
                    raw = f.readline(1 << 20)
                yield number, None
                continue
            yield number, raw.decode("utf-8", "replace")


def rerun_on_resume(rec: dict[str, Any]) -> bool:
    """True for a failed record that was not the pipeline's failure: a worker ended by the runner's own
    interrupt or by a signal the runner did not send (a user's kill, the system's out-of-memory killer)."""
    if rec.get("status") == "ok":
        return False
    if rec.get("failure") in RERUN_FAILURES:
        return True
    return rec.get("failure") == "crash" and str(rec.get("error", "")).startswith("worker killed by signal")


class RunLock:
    """One run per folder: ``<run_dir>/.benchsuite.lock`` holds the owner's pid and host.

    The lock is an ``flock`` on that file, so the kernel drops it when its owner dies however it dies; a
    file left behind by a dead owner is a stale lock, taken over with a warning. A live owner makes
    :meth:`acquire` fail with a ConfigError naming it.
    """

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise ConfigError naming the live owner."""
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(5):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                owner = _describe_owner(_read_owner(fd))
                os.close(fd)
                raise ConfigError(f"{self.path.parent} is in use by another run ({owner}); wait for it to "
                                  f"end or choose another --out") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the owner released (and removed) the file between our open and our lock
                os.close(fd)
                continue
            stale = _read_owner(fd)
            if stale:
                log.warning("%s: taking over a stale lock of %s (that process is gone)", self.path,
                            _describe_owner(stale))
            owner = {"pid": os.getpid(), "host": socket.gethostname(),
                     "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, (json.dumps(owner) + "\n").encode(), 0)
            except OSError as exc:
                os.close(fd)
                raise OSError(exc.errno, exc.strerror, str(self.path)) from None
            self._fd = fd
            return
        raise ConfigError(f"{self.path}: could not take the run lock (the file keeps changing)")

    def release(self) -> None:
        """Remove the lock file and drop the lock (a no-op when not held)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_owner(fd: int) -> dict[str, Any]:
    try:
        data = os.pread(fd, 4096, 0)
        owner = json.loads(data) if data.strip() else {}
    except (OSError, ValueError):
        return {"unreadable": True}
    return owner if isinstance(owner, dict) else {"unreadable": True}


def _describe_owner(owner: dict[str, Any]) -> str:
    if not owner or owner.get("unreadable"):
        return "owner unknown"
    return f"pid {owner.get('pid')} on host {owner.get('host')}, since {owner.get('since')}"
