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

import json
import logging
from pathlib import Path
from typing import Any

from benchsuite.results.atomic import append_line, atomic_write_json, atomic_write_text, to_json_line

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
RECORDS_FILE = "records.jsonl"
SUMMARY_FILE = "summary.csv"


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
        try:
            return json.loads(self.run_path.read_text())
        except FileNotFoundError:
            from benchsuite.errors import BenchsuiteError

            raise BenchsuiteError(f"{self.run_path}: missing; {self.run_dir} is not a benchsuite run folder") from None

    def append(self, record: dict[str, Any]) -> None:
        append_line(self.records_path, to_json_line(record))

    def records(self, latest_only: bool = True) -> list[dict[str, Any]]:
        """The records, in file order; with ``latest_only`` the last record of each (job, split)."""
        if not self.records_path.exists():
            return []
        out = []
        for number, line in enumerate(self.records_path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                log.warning("%s:%d: skipping a malformed record line", self.records_path, number)
        if not latest_only:
            return out
        latest: dict[tuple[str, str], dict[str, Any]] = {}
        for rec in out:
            latest[(rec.get("job_id", ""), rec.get("split", ""))] = rec
        return list(latest.values())

    def recorded_jobs(self, include_failed: bool = True) -> set[str]:
        """Job ids that have a record (only successful ones unless ``include_failed``)."""
        return {r["job_id"] for r in self.records() if include_failed or r.get("status") == "ok"}

    def write_summary(self) -> Path:
        from benchsuite.results.table import records_table

        table = records_table(self.records())
        path = self.run_dir / SUMMARY_FILE
        atomic_write_text(path, table.to_csv(index=False))
        return path
