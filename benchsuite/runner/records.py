"""From a finished job's result to its records: score each evaluated split, build one record per split
(:class:`benchsuite.results.schema.Record`), check it against the schema, append it to the run, and log the
job's one line."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from benchsuite.api import Budget
from benchsuite.data.datasets import Dataset
from benchsuite.errors import BenchsuiteError
from benchsuite.measure.timing import peak_rss_mb
from benchsuite.results.safe_paths import inside
from benchsuite.results.schema import SCHEMA_VERSION, record_problems
from benchsuite.results.store import RunStore
from benchsuite.runner.execute import RETRY_HINT
from benchsuite.runner.jobs import JobSpec
from benchsuite.studies.records import study_block
from benchsuite.tasks.registry import get_task

log = logging.getLogger(__name__)

#: the record's blocks that a pipeline fills (through its fit_info and outputs), with their empty value
_PIPELINE_BLOCKS = {"fit_info": {}, "shortcuts": [], "params": {}, "metrics": {}, "output": {}}


def record_job(run_id: str, dataset: Dataset, store: RunStore, job: JobSpec, result: dict[str, Any],
               config_changed: list[str] | None = None) -> None:
    """Score each of ``job``'s evaluated splits from the predictions its worker saved (``result``: the worker's
    result), append one record per split to ``store`` and log the job's line (with the traceback's last lines
    when it failed). A split the pipeline trained on (refit on train + val) gets no record. ``config_changed``:
    what this session changed in the run's configuration (``--resume --allow-changed``), marked on the records.

    The runner's own resident memory while it scores a split is measured (its peak, ``memory.runner_peak_rss_mb``):
    scoring reads the worker's predictions, whose size the task's output caps bound."""
    task = get_task(job.task)
    status = result.get("status", "failed")
    for split in job.eval_splits:
        metrics: dict[str, Any] = {}
        artifacts: dict[str, str] = {}
        split_status, failure, error = status, result.get("failure"), result.get("error")
        split_info = (result.get("splits") or {}).get(split) or {}
        if status == "ok" and not split_info:
            # the worker left this split out: the pipeline trained on it (fit_info.val_not_scored says why)
            log.info("%s: %s split not scored (%s)", job.job_id, split,
                     (result.get("fit_info") or {}).get("val_not_scored", "no predictions"))
            continue
        peak = None
        if status == "ok":
            watch = PeakRss()
            try:
                predictions = inside(job.job_dir, str(split_info.get("predictions")), what="predictions file")
                if not predictions.is_file():
                    raise FileNotFoundError(predictions)
                metrics, artifacts = task.evaluate(dataset, split, Budget(**job.budget), predictions,
                                                   Path(job.job_dir))
            except FileNotFoundError as exc:
                split_status, failure = "failed", "io"
                error = (f"the predictions file {exc.filename or exc} is gone: the job folder was changed while the "
                         f"job ran; {RETRY_HINT}")
            except BenchsuiteError as exc:
                split_status, failure, error = "failed", "invalid-output", f"invalid output: {exc}"
            except MemoryError as exc:
                split_status, failure, error = "failed", "memory", f"scoring ran out of memory: MemoryError: {exc}"
            except Exception as exc:
                split_status, failure, error = "failed", "evaluation", f"{type(exc).__name__}: {exc}"
            peak = watch.peak_mb()
        record = build_record(run_id, job, dataset, split, split_status, failure, error, metrics, artifacts, result)
        record["memory"] = {**record["memory"], "runner_peak_rss_mb": peak}
        record["config_changed"] = list(config_changed) if config_changed else None
        store.append(checked_record(record))
    summary = one_line(job, result)
    if status != "ok":
        summary += failure_tail(result, Path("jobs") / job.job_id / "log.txt")
    (log.info if status == "ok" else log.error)(summary)


def build_record(run_id: str, job: JobSpec, dataset: Dataset, split: str, status: str, failure: str | None,
                 error: str | None, metrics: dict[str, Any], artifacts: dict[str, str],
                 result: dict[str, Any]) -> dict[str, Any]:
    """The record of ``job`` on ``split`` (checked: :func:`checked_record`)."""
    info = dataset.info
    split_info = result.get("splits", {}).get(split, {})
    timing = dict(result.get("timing", {}))
    timing.update({k: split_info[k] for k in ("predict_s", "images_per_s", "images", "seconds_per_image",
                                              "predict") if k in split_info})
    timing["shared_machine"] = job.shared_machine
    timing["wall_s"] = result.get("wall_s")
    timing["contended"] = phases_contended(timing)
    fit_info = result.get("fit_info", {})
    shortcuts = list(fit_info.get("shortcuts") or []) if isinstance(fit_info, dict) else []
    rel = Path("jobs") / job.job_id
    ran = result.get("pipeline_class") if isinstance(result.get("pipeline_class"), dict) else {}
    registered = job_pipeline_class(job)
    return checked_record({
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "job_id": job.job_id,
        "task": job.task,
        "dataset": info.name,
        "dataset_fingerprint": info.fingerprint,
        "data_origin": info.origin,
        "data_canonical": info.canonical,
        "split": split,
        "split_fingerprint": info.split_fingerprints.get(split),
        "pipeline": job.pipeline,
        "family": job.family,
        "pretrained_reference": job.pretrained_reference,
        "harness_floor": bool(result.get("harness_floor", False)),
        "status": status,
        "failure": failure if status != "ok" else None,
        "error": error if status != "ok" else None,
        "metrics": metrics,
        "timing": timing,
        "memory": result.get("memory", {}),
        "params": result.get("params", job.params),
        "fit_info": fit_info,
        "shortcuts": shortcuts,
        "shortened": bool(shortcuts),
        "consumed": result.get("consumed") or None,
        "produced": result.get("produced"),
        "output": split_info.get("output", {}),
        "seed": job.seed,
        "device": job.device,
        "determinism": result.get("determinism"),
        "profile": job.profile,
        "artifacts": {k: str(rel / v) for k, v in artifacts.items()},
        "log": str(rel / "log.txt"),
        "started_at": result.get("started_at"),
        "finished_at": result.get("finished_at"),
        "node": (result.get("executor") or {}).get("node"),  # the host the job ran on
        "executor": result.get("executor"),  # {"name": "local"|"ray", "node", "attempts", ...}
        "study": study_block(job.study, dataset, split),  # a study's axis and point (benchsuite.studies)
        # the class that ran: as the worker imported it, with the distribution that registered it
        "pipeline_class": {**registered, **{k: v for k, v in ran.items() if k in ("module", "qualname")}},
        "leftover_processes": result.get("leftover_processes"),
    })


def job_pipeline_class(job: JobSpec) -> dict[str, Any]:
    """The record's ``pipeline_class`` as the plan knows it: the job's ``module:Class`` and the distribution (and
    version) that registers the job's pipeline id with that class (None where the registry says otherwise)."""
    from benchsuite.registry import discover, pipeline_provenance

    module, _, qualname = job.pipeline_ref.partition(":")
    info = discover().get(job.pipeline)
    if info is not None and info.ref == job.pipeline_ref:
        entry = pipeline_provenance(info)
        return {"module": module, "qualname": qualname, "distribution": entry["distribution"],
                "version": entry["version"]}
    return {"module": module, "qualname": qualname, "distribution": None, "version": None}


class PeakRss:
    """The peak resident memory of this process from now on, in MiB: the kernel's high-water mark is reset at the
    start (``/proc/self/clear_refs``, Linux) and read at the end; elsewhere the process's lifetime peak."""

    def __init__(self) -> None:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass

    def peak_mb(self) -> float | None:
        try:
            return peak_rss_mb()["peak_rss_mb"]
        except Exception:
            return None


def checked_record(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` when it matches the record schema (:mod:`benchsuite.results.schema`). Otherwise a pipeline
    reported something of the wrong shape (``fit_info.selection`` not a selection, ``fit_info.val_map50`` not a
    number): the record becomes ``failed`` (``invalid-output``) with the offending keys and their expected types,
    and the offending blocks are emptied (they stay in the job's ``result.json``)."""
    problems = record_problems(record)
    if not problems:
        return record
    record.update(status="failed", failure="invalid-output", metrics={},
                  error="invalid output: the record does not match its schema: " + "; ".join(problems))
    for key, empty in _PIPELINE_BLOCKS.items():
        if any(p == key or p.startswith((f"{key}.", f"{key}[", f"{key}:")) for p in problems):
            record[key] = type(empty)()
    record["shortened"] = bool(record.get("shortcuts"))
    left = record_problems(record)
    if left:  # not the pipeline's doing: the runner built a record of the wrong shape
        log.error("%s/%s: record does not match its schema: %s", record.get("job_id"), record.get("split"),
                  "; ".join(left))
    return record


def phases_contended(timing: dict[str, Any]) -> bool | None:
    """Whether any timed phase of a record (fit, predict) was contended; None when none was measured."""
    flags = [(timing.get(phase) or {}).get("contended") for phase in ("fit", "predict")
             if isinstance(timing.get(phase), dict)]
    known = [f for f in flags if f is not None]
    return any(known) if known else None


def failure_tail(result: dict[str, Any], log_file: Path, lines: int = 6) -> str:
    """The last lines of a failed job's traceback (else of its output), indented, and where the rest is."""
    text = str(result.get("traceback") or result.get("log_tail") or "")
    kept = [ln for ln in text.splitlines() if ln.strip()][-lines:]
    if not kept:
        return ""
    return "\n" + "\n".join("    " + ln for ln in kept) + f"\n    (the whole output: {log_file})"


def one_line(job: JobSpec, result: dict[str, Any]) -> str:
    """``task: pipeline on data set: ok, fit F s, wall W s`` (or ``FAILED (kind): error``)."""
    head = f"{job.task}: {job.pipeline} on {job.dataset}"
    if result.get("status") != "ok":
        return f"{head}: FAILED ({result.get('failure')}): {result.get('error')}"
    t = result.get("timing", {})
    return f"{head}: ok, fit {t.get('fit_s', float('nan')):.1f} s, wall {result.get('wall_s', 0):.1f} s"
