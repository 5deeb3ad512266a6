"""What the tasks whose pipelines take one image per call share: running a pipeline image by image with timing.

Their predictions files hold per-image arrays of varying length: :func:`benchsuite.results.evidence.save_ragged`
and :func:`~benchsuite.results.evidence.load_ragged` (imported here for the tasks that use both).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from benchsuite.data.detection import DetectionSet
from benchsuite.device import synchronize
from benchsuite.measure.timing import measure_latency
from benchsuite.results.evidence import load_ragged, save_ragged

__all__ = ["load_ragged", "run_over_images", "save_ragged", "single_image_latency"]


def run_over_images(call: Callable[[list[np.ndarray]], list[Any]], data: DetectionSet, batch_size: int,
                    device: str, progress: Callable[..., Iterable[Any]], desc: str,
                    each: Callable[[int, Any], Any] | None = None) -> tuple[list[Any], float]:
    """``call`` on batches of decoded images; returns the outputs and the seconds spent inside ``call``.

    Decoding the image files is not the pipeline's work and stays out of the timing. ``each(i, output)``, when
    given, replaces each output of image ``i`` as soon as its batch returns, off the clock (a task that validates
    large outputs, such as per-pixel scores, keeps only the validated result).
    """
    outputs: list[Any] = []
    seconds = 0.0
    starts = range(0, len(data), batch_size)
    for start in progress(starts, desc=desc, total=len(starts)):
        images = [data.load_image(i) for i in range(start, min(len(data), start + batch_size))]
        synchronize(device)
        t0 = time.perf_counter()
        result = call(images)
        synchronize(device)
        seconds += time.perf_counter() - t0
        if len(result) != len(images):
            from benchsuite.errors import OutputValidationError

            raise OutputValidationError(f"{desc}: {len(result)} results for {len(images)} images")
        outputs.extend(result if each is None else [each(start + k, out) for k, out in enumerate(result)])
    return outputs, seconds


def single_image_latency(call: Callable[[np.ndarray], Any], data: DetectionSet, count: int, warmup: int,
                         device: str) -> dict[str, float]:
    """Per-image latency of ``call`` on the first images of ``data`` (decoded beforehand)."""
    if count <= 0 or not len(data):
        return {}
    images = [data.load_image(i) for i in range(min(len(data), count + warmup))]
    return measure_latency(lambda i: call(images[i % len(images)]), count, warmup, device)
