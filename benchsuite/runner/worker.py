"""The worker process: runs one job and writes ``result.json`` into the job's folder.

Started by the runner as ``python -m benchsuite.runner.worker JOB_JSON``. Whatever the pipeline does
(raise, return garbage, allocate too much), the worker writes a result that says so; if the process
dies or is killed, the runner notices the missing result and records why.
"""

from __future__ import annotations

import json
import logging
import os
import random
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchsuite.api import Budget, Context
from benchsuite.errors import OutputValidationError
from benchsuite.results.atomic import atomic_write_json
from benchsuite.runner.jobs import JobSpec
from benchsuite.runner.timing import gpu_peak_mb, peak_rss_mb

log = logging.getLogger("benchsuite.worker")


def _limit_threads(n: int) -> None:
    try:
        import torch

        torch.set_num_threads(n)
    except Exception:
        pass
    try:
        import cv2

        cv2.setNumThreads(n)
    except Exception:
        pass
    try:
        import numba

        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    except Exception:
        pass


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    import numpy as np

    np.random.seed(seed % 2**32)
    try:
        import torch

        torch.manual_seed(seed)
    except Exception:
        pass


def make_progress(enabled: bool):
    from tqdm.auto import tqdm

    def progress(iterable, **kwargs):
        kwargs.setdefault("mininterval", 1.0)
        kwargs.setdefault("leave", False)
        return tqdm(iterable, disable=not enabled, file=sys.stderr, dynamic_ncols=True, **kwargs)

    return progress


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=repr))


def run_job(job: JobSpec) -> dict[str, Any]:
    """Run ``job`` in this process and return its result (never raises for pipeline failures)."""
    from benchsuite.data.datasets import open_dataset
    from benchsuite.registry import load_ref
    from benchsuite.tasks.base import get_task

    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    result: dict[str, Any] = {"status": "failed", "started_at": started}
    ctx = None
    try:
        _limit_threads(job.num_threads)
        _seed_everything(job.seed)
        dataset = open_dataset(job.dataset_spec, Path(job.data_root), Path(job.cache_dir),
                               force_synthetic=job.origin == "synthetic")
        if dataset.info.fingerprint != job.dataset_fingerprint:
            raise RuntimeError(f"data set {job.dataset} changed since the run started "
                               f"(fingerprint {dataset.info.fingerprint}, expected {job.dataset_fingerprint})")
        pipeline = load_ref(job.pipeline_ref)(**job.params)
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
        outcome = get_task(job.task).execute(pipeline, dataset, ctx, job.eval_splits, Path(job.job_dir),
                                             job.latency_images, job.latency_warmup)
        drop_val_if_trained_on(outcome, ctx.info)
        result.update(outcome)
        result["params"] = _jsonable(pipeline.get_params())
        result["status"] = "ok"
    except OutputValidationError as exc:
        result.update(failure="invalid-output", error=f"invalid output: {exc}")
    except MemoryError as exc:
        result.update(failure="memory", error=f"MemoryError: {exc}")
    except Exception as exc:
        result.update(failure="exception", error=f"{type(exc).__name__}: {exc}",
                      traceback=traceback.format_exc(limit=20))
    result["fit_info"] = _jsonable(ctx.info) if ctx is not None else {}
    result["memory"] = {**peak_rss_mb(), "gpu_peak_mb": gpu_peak_mb(job.device)}
    result["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return result


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
    job = JobSpec.read(Path(argv[0]))
    start = time.perf_counter()
    result = run_job(job)
    result["worker_s"] = time.perf_counter() - start
    atomic_write_json(Path(job.job_dir) / "result.json", result)
    if result["status"] != "ok":
        log.error("%s failed: %s", job.pipeline, result.get("error"))
    sys.stderr.flush()
    os._exit(0)  # skip interpreter teardown: some native libraries hang or crash in it


if __name__ == "__main__":
    sys.exit(main())
