"""What the detection and proposal tasks share: running a pipeline image by image with timing, and
saving per-image arrays of varying length."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from benchsuite.data.detection import DetectionSet
from benchsuite.device import synchronize
from benchsuite.measure.timing import measure_latency


def run_over_images(call: Callable[[list[np.ndarray]], list[Any]], data: DetectionSet, batch_size: int,
                    device: str, progress: Callable[..., Iterable[Any]], desc: str) -> tuple[list[Any], float]:
    """``call`` on batches of decoded images; returns the outputs and the seconds spent inside ``call``.

    Decoding the image files is not the pipeline's work and stays out of the timing.
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
        outputs.extend(result)
    return outputs, seconds


def single_image_latency(call: Callable[[np.ndarray], Any], data: DetectionSet, count: int, warmup: int,
                         device: str) -> dict[str, float]:
    """Per-image latency of ``call`` on the first images of ``data`` (decoded beforehand)."""
    if count <= 0 or not len(data):
        return {}
    images = [data.load_image(i) for i in range(min(len(data), count + warmup))]
    return measure_latency(lambda i: call(images[i % len(images)]), count, warmup, device)


def save_ragged(path: Path, image_ids: list[str], **per_image: list[np.ndarray]) -> None:
    """Per-image arrays of varying length, concatenated with an ``offsets`` index (``npz``)."""
    arrays: dict[str, np.ndarray] = {"image_ids": np.asarray(image_ids)}
    counts = None
    for name, parts in per_image.items():
        lengths = np.asarray([len(p) for p in parts], np.int64)
        if counts is None:
            counts = lengths
        elif not np.array_equal(counts, lengths):
            raise ValueError(f"{name}: per-image lengths differ from the other arrays")
        sample = next((p for p in parts if len(p)), None)
        tail = np.asarray(sample).shape[1:] if sample is not None else ()
        arrays[name] = np.concatenate(parts) if parts and sum(lengths) else np.zeros((0, *tail))
    arrays["offsets"] = np.concatenate([[0], np.cumsum(counts if counts is not None else [])]).astype(np.int64)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


def load_ragged(path: Path) -> tuple[list[str], dict[str, list[np.ndarray]]]:
    with np.load(path) as npz:
        offsets = npz["offsets"]
        ids = [str(s) for s in npz["image_ids"]]
        out = {name: [npz[name][offsets[i]:offsets[i + 1]] for i in range(len(ids))]
               for name in npz.files if name not in ("offsets", "image_ids")}
    return ids, out
