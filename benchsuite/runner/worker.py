"""The worker process: runs one job and writes ``result.json`` into the job's folder.

Started by the runner as ``python -m benchsuite.runner.worker JOB_JSON``. Whatever the pipeline does
(raise, return garbage, allocate too much), the worker writes a result that says so; if the process
dies or is killed, the runner notices the missing result and records why.

The worker is the root of its job's processes: it makes itself a child subreaper, so that a process the pipeline
starts stays in the worker's tree however it forks (a double fork with ``setsid`` included), and it ends that whole
tree when the job is done, before it writes its result (:mod:`benchsuite.runner.proctree`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import sys
import time
import traceback
import warnings
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchsuite.api import Budget, Context, Proposer
from benchsuite.errors import OutputValidationError
from benchsuite.measure import cache_use
from benchsuite.measure.timing import gpu_peak_mb, peak_rss_mb
from benchsuite.params import passed_params
from benchsuite.results.atomic import atomic_write_json
from benchsuite.runner import proctree
from benchsuite.runner.execute import WORKER_IO_EXIT, WORKER_IO_MARKER
from benchsuite.runner.jobs import JobSpec
from benchsuite.runner.startup import die_with_parent, when_imported

log = logging.getLogger("benchsuite.worker")


def _limit_threads(n: int) -> None:
    """Cap torch, OpenCV and numba at ``n`` threads, each when it is first imported (importing torch only
    to configure it would cost a job that never uses it about 500 MB)."""
    when_imported("torch", lambda torch: torch.set_num_threads(n))
    when_imported("cv2", lambda cv2: cv2.setNumThreads(n))
    when_imported("numba", lambda numba: numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS)))


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    import numpy as np

    np.random.seed(seed % 2**32)
    when_imported("torch", lambda torch: torch.manual_seed(seed))


def _ask_determinism() -> None:
    """Deterministic torch algorithms from the moment torch is imported (not importing it to say so)."""
    when_imported("torch", lambda torch: torch.use_deterministic_algorithms(True, warn_only=True))


def _determinism(device: str, pipeline_class: Any = None) -> dict[str, Any]:
    """What was done for reproducible results, for the record; never a claim that was not checked.

    ``exact_reruns`` is ``"not checked"``: a job runs once, so nothing here knows whether a rerun gives the same
    numbers (``benchsuite check`` refits a pipeline twice with one seed; ``benchsuite compare`` of two runs of the
    same code on the same machine says whether their reruns were identical). ``expected`` says what to expect: on
    the CPU the same work, data, seed and thread count give identical results when the pipeline draws every
    random number from its seed (torch, when the job used it, ran with deterministic algorithms); on CUDA some
    kernels (atomic adds in backward passes, cuDNN's autotuned algorithms) are not bit-reproducible.
    """
    torch = sys.modules.get("torch")
    facts: dict[str, Any] = {"seeded": True, "uses_torch": torch is not None, "deterministic_algorithms": None,
                             "exact_reruns": "not checked",
                             "expected": "identical reruns on this machine with the same seed and threads"}
    if torch is not None:
        with contextlib.suppress(Exception):
            facts["deterministic_algorithms"] = bool(torch.are_deterministic_algorithms_enabled())
    facts["cpu_drift"] = getattr(pipeline_class, "cpu_drift", None)  # measured between CPU types (Pipeline)
    if device.startswith("cuda"):
        facts["expected"] = ("reruns may differ slightly: CUDA kernels with atomic adds and cuDNN autotuning are "
                             "not bit-reproducible")
    return facts


def make_progress(enabled: bool):
    from tqdm.auto import tqdm

    def progress(iterable, **kwargs):
        kwargs.setdefault("mininterval", 1.0)
        kwargs.setdefault("leave", False)
        return tqdm(iterable, disable=not enabled, file=sys.stderr, dynamic_ncols=True, **kwargs)

    return progress


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=repr))


class DataMismatch(RuntimeError):
    """The data set this worker opened is not the one the run planned with (its fingerprint differs)."""


def _mismatch_message(job: JobSpec, found: str) -> str:
    """Why a job's data set fingerprint differs: on a cluster node (``job.extra["node"]``, set by the Ray
    executor) the node sees other data than the driver; on the runner's own machine the data changed."""
    node = job.extra.get("node") if isinstance(job.extra, dict) else None
    if node:
        return (f"data set {job.dataset} ({job.dataset_spec}) on node {node} has fingerprint {found}, the "
                f"driver's has {job.dataset_fingerprint}: every node must see the same data at the same path "
                f"({job.data_root}; a shared file system or identical copies)")
    return (f"data set {job.dataset} changed since the run started "
            f"(fingerprint {found}, expected {job.dataset_fingerprint})")


def run_job(job: JobSpec) -> dict[str, Any]:
    """Run ``job`` in this process and return its result (never raises for pipeline failures)."""
    from benchsuite.data.datasets import open_dataset
    from benchsuite.registry import load_ref
    from benchsuite.tasks.registry import get_task

    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    clock_start = time.monotonic()
    result: dict[str, Any] = {"status": "failed", "started_at": started}
    ctx = pipeline_class = None
    cache_use.reset()
    try:
        _limit_threads(job.num_threads)
        _seed_everything(job.seed)
        _ask_determinism()
        dataset = open_dataset(job.dataset_spec, Path(job.data_root), Path(job.cache_dir),
                               force_synthetic=job.origin == "synthetic", needs=get_task(job.task).needs)
        if dataset.info.fingerprint != job.dataset_fingerprint:
            raise DataMismatch(_mismatch_message(job, dataset.info.fingerprint))
        pipeline_class = load_ref(job.pipeline_ref)
        result["pipeline_class"] = {"module": str(getattr(pipeline_class, "__module__", "")),
                                    "qualname": str(getattr(pipeline_class, "__qualname__", ""))}
        result["harness_floor"] = bool(getattr(pipeline_class, "harness_floor", False))
        # typed as the constructor's annotations say (JSON made tuples lists), as `benchsuite check` passes them
        pipeline = pipeline_class(**passed_params(job.pipeline, pipeline_class, job.params))
        result["params"] = _jsonable(pipeline.get_params())  # as the job ran them, before fit can change them
        ctx = Context(
            device=job.device,
            seed=job.seed,
            budget=Budget(**job.budget),
            cache_dir=Path(job.cache_dir),
            num_threads=job.num_threads,
            progress=make_progress(job.progress),
            weights=job.weights,
            download=job.download,
        )
        log.info("%s: fit on %s (%s, seed %d, %s)", job.pipeline, job.dataset, job.device, job.seed, job.profile)
        with warnings_once(ctx.info):
            outcome = get_task(job.task).execute(pipeline, dataset, ctx, job.eval_splits, Path(job.job_dir),
                                                 job.latency_images, job.latency_warmup)
        drop_val_if_trained_on(outcome, ctx.info)
        result.update(outcome)
        if job.consumers and isinstance(pipeline, Proposer):
            result["produced"] = _produce_for_consumers(job, pipeline, dataset, ctx, clock_start)
        after = _jsonable(pipeline.get_params())
        changed = sorted(k for k in after if result["params"].get(k) != after[k])
        if changed:  # the record keeps the values the job ran with
            log.warning("%s: fit() changed the parameter(s) %s; the record lists them as given; `benchsuite check %s` "
                        "names such problems", job.pipeline, ", ".join(changed), job.pipeline)
        lost = sorted(set(job.params) - set(result["params"]))
        if lost:  # a constructor that stores an argument under another name: the record still lists what was passed
            log.warning("%s: get_params() does not return %s, which the job passed to the constructor; store each "
                        "argument under its own name (self.%s = %s); `benchsuite check %s` names such problems",
                        job.pipeline, ", ".join(lost), lost[0], lost[0], job.pipeline)
            result["params"].update(_jsonable({k: job.params[k] for k in lost}))
        result["status"] = "ok"
    except DataMismatch as exc:
        result.update(failure="data", error=str(exc))
    except OutputValidationError as exc:
        result.update(failure="invalid-output", error=f"invalid output: {exc}")
    except MemoryError as exc:
        result.update(failure="memory", error=f"MemoryError: {exc}")
    except Exception as exc:
        result.update(failure="exception", error=f"{type(exc).__name__}: {exc}",
                      traceback=traceback.format_exc(limit=20))
    result["fit_info"] = _jsonable(ctx.info) if ctx is not None else {}
    result["consumed"] = cache_use.consumed_block(job.consumes, cache_use.snapshot())
    result["determinism"] = _determinism(job.device, pipeline_class)
    result["memory"] = {**peak_rss_mb(), "gpu_peak_mb": gpu_peak_mb(job.device)}
    result["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return result


#: a producer's job proposes for its consumers only while less than this share of its time limit has passed
PRODUCE_SHARE_OF_LIMIT = 0.6


def _produce_for_consumers(job: JobSpec, proposer: Proposer, dataset: Any, ctx: Context, started: float
                           ) -> dict[str, Any]:
    """The record's ``produced`` block: ``proposer``'s train and val proposals put in the cache for the run's jobs
    that consume this job (:func:`benchsuite.proposal_cache.produce_for_consumers`), after the job's own timed
    work. A failure here leaves the job's own result as it is: the consumers then compute what they miss, and
    the block says why (``error``). No new batch starts once :data:`PRODUCE_SHARE_OF_LIMIT` of the job's time
    limit has passed since ``started`` (``time.monotonic()``), so the job is never killed for work done for others."""
    from benchsuite.proposal_cache import produce_for_consumers

    loads = [(str(split), cap) for split, cap in job.consumer_loads]
    deadline = started + PRODUCE_SHARE_OF_LIMIT * float(job.time_limit_s)
    try:
        return produce_for_consumers(proposer, dataset, loads, ctx.cache_dir, job.consumers, ctx.num_threads,
                                     ctx.progress, deadline=deadline)
    except Exception as exc:
        log.warning("%s: could not propose for the consumers %s (%s: %s); they compute what they need themselves",
                    job.pipeline, ", ".join(job.consumers), type(exc).__name__, exc)
        return {"consumer_jobs": list(job.consumers), "error": f"{type(exc).__name__}: {exc}"}


@contextlib.contextmanager
def warnings_once(info: dict[str, Any], limit: int = 20) -> Iterator[None]:
    """Python warnings raised meanwhile (scikit-learn's ``ConvergenceWarning`` from a k-means, numpy's
    ``RuntimeWarning``, ...) are not printed raw, once per occurrence, into the run's console: each distinct
    warning is logged once, with how often it came, and listed in ``info["warnings"]`` (the record's
    ``fit_info.warnings``: ``category``, ``message``, ``where``, ``count``; at most ``limit`` of them)."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}

    def count(message: Any, category: type, filename: str, lineno: int, *_: Any, **__: Any) -> None:
        key = (category.__name__, str(message)[:300])
        entry = seen.setdefault(key, {"category": key[0], "message": key[1],
                                      "where": f"{Path(filename).name}:{lineno}", "count": 0})
        entry["count"] += 1

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = count
        try:
            yield
        finally:
            for entry in list(seen.values())[:limit]:
                log.warning("%s (%d time(s), at %s): %s", entry["category"], entry["count"], entry["where"],
                            entry["message"])
            if seen:
                info["warnings"] = list(seen.values())[:limit]


def drop_val_if_trained_on(outcome: dict[str, Any], fit_info: dict[str, Any]) -> None:
    """A pipeline that refit on train + val after choosing its hyper-parameters (``fit_info["trained_on"] ==
    "train+val"``) has seen val: its val score is no held-out score, so the val split is not recorded (the
    reason goes into ``fit_info["val_not_scored"]``). Its choice on val is in its own fit_info."""
    if fit_info.get("trained_on") == "train+val" and "val" in outcome.get("splits", {}):
        del outcome["splits"]["val"]
        fit_info["val_not_scored"] = "refit on train+val after model selection: val is not held out"
        log.info("val split not scored: the pipeline refit on train+val")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S",
                        stream=sys.stderr)
    die_with_parent()
    proctree.become_subreaper()
    job = JobSpec.read(Path(argv[0]))
    start = time.perf_counter()
    result = run_job(job)
    result["worker_s"] = time.perf_counter() - start
    ended = proctree.kill_tree(os.getpid(), include_root=False)  # the job is done: so are all its processes
    if ended:
        log.info("%s: ended %d process(es) the job left running", job.pipeline, len(ended))
        result["ended_processes"] = len(ended)
    try:
        atomic_write_json(Path(job.job_dir) / "result.json", result)
    except OSError as exc:  # a full or read-only disk: say so on stderr, which the runner keeps in memory
        cause = f"cannot write {exc.filename or job.job_dir}: {exc.strerror or exc}"
        if result.get("status") != "ok":
            cause += f" (the job had failed with: {result.get('error')})"
        sys.stderr.write(f"\n{WORKER_IO_MARKER}{cause}\n")
        sys.stderr.flush()
        os._exit(WORKER_IO_EXIT)
    if result["status"] != "ok":  # the traceback goes into log.txt too, where people look first
        trace = str(result.get("traceback") or "").rstrip()
        log.error("%s failed: %s%s", job.pipeline, result.get("error"), f"\n{trace}" if trace else "")
    sys.stderr.flush()
    os._exit(0)  # skip interpreter teardown: some native libraries hang or crash in it


if __name__ == "__main__":
    sys.exit(main())
