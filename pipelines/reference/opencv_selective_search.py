"""``opencv-selective-search``: OpenCV contrib's selective search (``cv2.ximgproc.segmentation``), the
reference row for the suite's own ``selective-search``.

Nothing is trained either way; this is a reference *implementation* of the same algorithm, not a
pretrained model, so ``pretrained_reference`` stays False and the description says what it is.
"""

from __future__ import annotations

import ctypes
from typing import Any, ClassVar

import cv2
import numpy as np

from benchsuite.api import Context, Proposer
from benchsuite.data.detection import DetectionSet
from benchsuite.proposal_cache import default_workers, parallel_map

MODES = ("fast", "quality", "single")


#: the seed of C's rand() before each image's selective search (1: the C library's own default)
RNG_SEED = 1


def _seed_c_rand(seed: int) -> None:
    """``srand(seed)`` of the C library OpenCV calls ``rand()`` from (a no-op where it cannot be reached)."""
    global _SRAND
    if _SRAND is None:
        try:
            _SRAND = ctypes.CDLL(None).srand
        except (OSError, AttributeError, TypeError):
            _SRAND = False
    if _SRAND:
        _SRAND(ctypes.c_uint(seed))


_SRAND: Any = None


def opencv_selective_search(image: np.ndarray, mode: str = "fast", base_k: int = 150, inc_k: int = 150,
                            sigma: float = 0.8) -> np.ndarray:
    """OpenCV's selective search on an ``(H, W, 3)`` uint8 RGB image: ``(N, 4)`` float32 x1y1x2y2 pixel boxes
    in OpenCV's order (``process()`` returns ``x, y, w, h``; OpenCV's own ranking is kept)."""
    if mode not in MODES:
        raise ValueError(f"opencv-selective-search: unknown mode {mode!r}; expected one of {MODES}")
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"opencv_selective_search: expected (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
    ss = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
    ss.setBaseImage(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if mode == "fast":
        ss.switchToSelectiveSearchFast(base_k, inc_k, sigma)
    elif mode == "quality":
        ss.switchToSelectiveSearchQuality(base_k, inc_k, sigma)
    else:
        ss.switchToSingleStrategy(base_k, sigma)
    # OpenCV ranks the regions with C's rand(): seeded per image (with C's own default seed, 1), the ranking
    # depends on the image alone, not on how many images this process handled before
    _seed_c_rand(RNG_SEED)
    rects = np.asarray(ss.process(), np.float32).reshape(-1, 4)
    rects[:, 2:] += rects[:, :2]
    return rects


class OpenCVSelectiveSearch(Proposer):
    """OpenCV contrib's ``SelectiveSearchSegmentation`` in its fast, quality or single-strategy mode.

    Parameters:
        mode: ``"fast"`` (the quick profile's choice), ``"quality"`` (several times slower, many more
            boxes) or ``"single"``.
        base_k, inc_k, sigma: OpenCV's arguments (its defaults: 150, 150, 0.8).
        n_jobs: processes for :meth:`propose_batch` (None: ``ctx.num_threads`` after ``fit``, else all
            CPUs); each process runs OpenCV with one thread, as the suite's own implementation does.
    """

    id: ClassVar[str] = "opencv-selective-search"
    family: ClassVar[str] = "classical"
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    description: ClassVar[str] = ("Reference implementation: OpenCV contrib's selective search "
                                  "(cv2.ximgproc.segmentation), untrained, fast mode unless mode='quality'")
    propose_batch_size: ClassVar[int] = 16
    cache_ignored_params: ClassVar[tuple[str, ...]] = ("n_jobs",)
    profile_params: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"mode": "single"},
    }

    def __init__(self, mode: str = "fast", base_k: int = 150, inc_k: int = 150, sigma: float = 0.8,
                 n_jobs: int | None = None):
        self.mode = mode
        self.base_k = base_k
        self.inc_k = inc_k
        self.sigma = sigma
        self.n_jobs = n_jobs

    def fit(self, train: DetectionSet, val: DetectionSet, ctx: Context) -> OpenCVSelectiveSearch:
        if self.mode not in MODES:
            raise ValueError(f"opencv-selective-search: unknown mode {self.mode!r}; expected one of {MODES}")
        self.workers_ = default_workers(self.n_jobs if self.n_jobs is not None else ctx.num_threads)
        ctx.record(mode=self.mode, opencv=cv2.__version__, workers=self.workers_)
        return self

    def propose(self, image: np.ndarray) -> np.ndarray:
        return opencv_selective_search(image, self.mode, self.base_k, self.inc_k, self.sigma)

    def propose_batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        workers = getattr(self, "workers_", None) or default_workers(self.n_jobs)
        return parallel_map(self.propose, images, workers)
