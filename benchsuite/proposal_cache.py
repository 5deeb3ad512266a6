"""Region proposals computed once per image, kept on disk, and computed over images in parallel processes.

Every pipeline that classifies proposals (``ss-hog-svm``, ``rcnn``) asks this module instead of calling a
proposer itself, so that an image's proposals are computed once for all of them and for every later run.

Layout under ``cache_dir / "proposals"``::

    <proposer id>-<hash of its parameters>/<content key>.npy   (N, 4) float32 x1y1x2y2 pixels, best first
    files/<file key>.txt                                         content key of an image file

The *content key* hashes the decoded pixels (shape and bytes), so a lookup works both for a data set
sample (a file) and for a bare image array at detect time. The *file key* hashes an image file's resolved
path, size and modification time; it maps a file to its content key without decoding the file, so a data
set whose proposals are all cached is served by a ``stat`` per image. The proposer's key hashes its id
and its constructor parameters (except those named in its ``cache_ignored_params``, e.g. the number of
worker processes), so a changed parameter misses the cache.

Writes are atomic (:mod:`benchsuite.results.atomic`), so concurrent jobs may share a cache folder.

What a job took from the cache and what it computed is noted in :mod:`benchsuite.measure.cache_use` under the
proposer's id (the record's ``consumed`` block).

Counted once: when a run holds a proposer's job and jobs that consume it on the same data set, the producer's
job also fills the cache for the consumers' training and validation images after its own work
(:func:`produce_for_consumers`, the record's ``produced`` block), so the consumers, which start once it has
finished, read every split instead of each computing the same train and val proposals.

Parallelism: :func:`parallel_map` runs a picklable function over items in a pool of *spawned* worker
processes (not forked: the parent may hold OpenMP or OpenCV thread pools that do not survive a fork),
each limited to one thread. The pool is kept for the life of the process, so a proposer that calls it
once per batch pays the start-up (about a second) once. Its default size is the job's thread count
(:data:`THREADS_ENV`, set by the runner for each job's worker), never more than the CPUs this process may use.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from benchsuite.measure import cache_use
from benchsuite.results.atomic import atomic_write_bytes, atomic_write_text

if TYPE_CHECKING:
    from benchsuite.api import Proposer
    from benchsuite.data.detection import DetectionSet

log = logging.getLogger(__name__)

#: bump when the stored format or the meaning of a key changes: old entries are then ignored
CACHE_VERSION = 1
#: the environment variable that holds the job's thread count in a worker process (the runner sets it)
THREADS_ENV = "BENCHSUITE_NUM_THREADS"

T = TypeVar("T")
R = TypeVar("R")

_EXECUTORS: dict[int, ProcessPoolExecutor] = {}


# ------------------------------------------------------------------------------------------------- keys


def _digest(*parts: bytes | str) -> str:
    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\x00")
    return h.hexdigest()


def _canonical(value: Any) -> Any:
    """``value`` with equal settings written one way: sequences as lists, numbers (not booleans) as floats, so that
    ``(100.0,)`` from a typed job and ``[100]`` from a plugin's own dict give one key."""
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value


def proposer_key(proposer: Proposer) -> str:
    """``"<id>-<16 hex>"``: the proposer's id and a hash of its output-relevant constructor parameters (equal
    values give one key whatever their container or number type, :func:`_canonical`)."""
    ignored = set(getattr(proposer, "cache_ignored_params", ()))
    params = {k: _canonical(v) for k, v in proposer.get_params().items() if k not in ignored}
    payload = json.dumps({"id": proposer.id, "params": params, "class": type(proposer).__qualname__,
                          "version": CACHE_VERSION}, sort_keys=True, default=repr)
    return f"{proposer.id}-{_digest(payload)[:16]}"


def image_key(image: np.ndarray) -> str:
    """Content key of a decoded image: hash of its shape, dtype and pixel bytes."""
    a = np.ascontiguousarray(image)
    return _digest(str(a.shape), str(a.dtype), a.data.cast("B"))


def file_key(path: Path) -> str:
    """Key of an image file from its resolved path, size and modification time (no decoding)."""
    p = Path(path).resolve()
    st = p.stat()
    return _digest(str(p), str(st.st_size), str(st.st_mtime_ns))


# ------------------------------------------------------------------------------------------------ store


def cache_root(cache_dir: Path) -> Path:
    """The proposal cache's folder under a cache folder (``--cache-dir``)."""
    return Path(cache_dir) / "proposals"


class ProposalStore:
    """The on-disk cache of one proposer's proposals (see the module docstring for the layout)."""

    def __init__(self, cache_dir: Path, proposer: Proposer):
        self.root = cache_root(cache_dir)
        self.key = proposer_key(proposer)
        self.folder = self.root / self.key
        self.files = self.root / "files"

    def _box_path(self, content_key: str) -> Path:
        return self.folder / f"{content_key}.npy"

    def get(self, content_key: str) -> np.ndarray | None:
        """The stored boxes for an image's content key, or None when absent (or unreadable)."""
        path = self._box_path(content_key)
        try:
            boxes = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("%s: unreadable cache entry (%s); recomputing", path, exc)
            return None
        return boxes.reshape(-1, 4).astype(np.float32, copy=False)

    def put(self, content_key: str, boxes: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(boxes, np.float32).reshape(-1, 4))
        atomic_write_bytes(self._box_path(content_key), buffer.getvalue())

    def content_key_of_file(self, path: Path) -> str | None:
        try:
            return (self.files / f"{file_key(path)}.txt").read_text().strip() or None
        except (FileNotFoundError, OSError):
            return None

    def remember_file(self, path: Path, content_key: str) -> None:
        atomic_write_text(self.files / f"{file_key(path)}.txt", content_key)


# --------------------------------------------------------------------------------------------- parallel


def _exit_with_parent(parent: int, every_s: float = 1.0) -> None:
    """Watchdog thread body: end this process once ``parent`` is gone. The suite's job process leaves with
    ``os._exit`` (no interpreter teardown, so no pool shutdown); without this its pool workers would wait
    on their task queue for ever."""
    import time

    while True:
        time.sleep(every_s)
        if os.getppid() != parent:
            os._exit(0)


def _init_worker(parent: int | None = None) -> None:
    """Pool worker set-up: one thread per process (the pool itself is the parallelism); leave with the
    parent process."""
    if parent is not None:
        import threading

        threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True, name="exit-with-parent").start()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = "1"
    try:
        import cv2

        cv2.setNumThreads(1)
    except Exception:  # pragma: no cover - OpenCV is a dependency, but the pool must not die without it
        pass


def _executor(workers: int) -> ProcessPoolExecutor:
    ex = _EXECUTORS.get(workers)
    if ex is None:
        ex = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_init_worker, initargs=(os.getpid(),))
        _EXECUTORS[workers] = ex
    return ex


def default_workers(requested: int | None = None) -> int:
    """``requested`` when given (at least 1), else the job's thread count (:data:`THREADS_ENV`) capped by
    the CPUs this process may use, else those CPUs."""
    if requested is not None:
        return max(1, int(requested))
    try:
        cpus = max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = max(1, os.cpu_count() or 1)
    try:
        return max(1, min(cpus, int(os.environ.get(THREADS_ENV, cpus))))
    except ValueError:
        return cpus


def _no_progress(iterable: Iterable[T], **_: Any) -> Iterable[T]:
    return iterable


def parallel_map(fn: Callable[[T], R], items: Sequence[T], workers: int,
                 progress: Callable[..., Iterable[Any]] | None = None, desc: str = "") -> list[R]:
    """``[fn(x) for x in items]`` in order, over ``workers`` spawned processes when that helps.

    ``fn`` and the items must be picklable (a module-level function, ``functools.partial`` of one, or a
    bound method of a picklable object). With one worker or one item it runs in this process.
    Inside a pool worker it never nests another pool.
    """
    progress = progress or _no_progress
    items = list(items)
    if workers <= 1 or len(items) <= 1 or multiprocessing.parent_process() is not None:
        return [fn(x) for x in progress(items, desc=desc, total=len(items))]
    ex = _executor(workers)
    try:
        results = ex.map(fn, items, chunksize=1)
        return list(progress(results, desc=desc, total=len(items)))
    except BrokenProcessPool:
        _EXECUTORS.pop(workers, None)
        raise


# ---------------------------------------------------------------------------------------------- compute


def _propose_file(proposer: Proposer, path: Path, width: int, height: int, store: ProposalStore | None = None
                  ) -> tuple[str, np.ndarray, bool]:
    """In a worker: decode ``path``, check its size, return ``(content key, proposals, whether they came from
    the store)``. An image the file index does not know (another path, copy or node: the Ray executor ships
    the content entries, not the index) is still served from ``store`` when its pixels are there."""
    from benchsuite.data.detection import read_rgb
    from benchsuite.errors import DataError

    image = read_rgb(path)
    if image.shape[:2] != (height, width):
        raise DataError(f"{path}: decoded {image.shape[1]}x{image.shape[0]} pixels, annotated as {width}x{height}")
    key = image_key(image)
    boxes = store.get(key) if store is not None else None
    if boxes is not None:
        return key, boxes, True
    return key, _as_boxes(proposer.propose(image)), False


def _propose_image(proposer: Proposer, image: np.ndarray) -> np.ndarray:
    return _as_boxes(proposer.propose(image))


class _Call:
    """Picklable ``fn(proposer, *args)`` for :func:`parallel_map` (a lambda would not pickle)."""

    def __init__(self, fn: Callable[..., Any], proposer: Proposer):
        self.fn = fn
        self.proposer = proposer

    def __call__(self, args: Any) -> Any:
        return self.fn(self.proposer, *args) if isinstance(args, tuple) else self.fn(self.proposer, args)


def _as_boxes(out: Any) -> np.ndarray:
    return np.asarray(out, np.float32).reshape(-1, 4)


def proposals_for(dataset: DetectionSet, proposer: Proposer, cache_dir: Path, workers: int | None = None,
                  progress: Callable[..., Iterable[Any]] | None = None, desc: str = "proposals"
                  ) -> list[np.ndarray]:
    """Proposals for every image of ``dataset``, in order: ``(N_i, 4)`` float32 x1y1x2y2 pixels, best first.

    Cached images are read from disk (no decoding); the others are computed over ``workers`` processes
    (default: the CPUs this process may use) and stored. The proposer must be ready to ``propose``
    (fitted, if it needs fitting) and picklable.
    """
    store = ProposalStore(cache_dir, proposer)
    out: list[np.ndarray | None] = [None] * len(dataset)
    missing: list[int] = []
    hits: list[str] = []
    start = time.perf_counter()
    for i, sample in enumerate(dataset):
        key = store.content_key_of_file(sample.path)
        boxes = store.get(key) if key else None
        if boxes is None:
            missing.append(i)
        else:
            out[i] = boxes
            hits.append(f"{store.key}/{key}")
    cache_use.note_read(proposer.id, hits, time.perf_counter() - start)
    log.info("%s on %s: %d of %d images cached", store.key, dataset.name, len(dataset) - len(missing), len(dataset))
    if missing:
        start = time.perf_counter()
        args = [(dataset[i].path, dataset[i].width, dataset[i].height, store) for i in missing]
        got = parallel_map(_Call(_propose_file, proposer), args, default_workers(workers), progress,
                           f"{desc} ({len(missing)} to compute)")
        for i, (key, boxes, cached) in zip(missing, got):
            if not cached:
                store.put(key, boxes)
            store.remember_file(dataset[i].path, key)
            out[i] = boxes
        cache_use.note_read(proposer.id, [f"{store.key}/{key}" for key, _, cached in got if cached], 0.0)
        cache_use.note_computed(proposer.id, [f"{store.key}/{key}" for key, _, cached in got if not cached],
                                time.perf_counter() - start)
    return [b for b in out if b is not None]


def proposals_for_images(images: Sequence[np.ndarray], proposer: Proposer, cache_dir: Path,
                         workers: int | None = 1, progress: Callable[..., Iterable[Any]] | None = None,
                         desc: str = "proposals") -> list[np.ndarray]:
    """Proposals for decoded ``(H, W, 3)`` uint8 RGB images (detect time), cached by content."""
    store = ProposalStore(cache_dir, proposer)
    start = time.perf_counter()
    keys = [image_key(im) for im in images]
    out = [store.get(k) for k in keys]
    missing = [i for i, b in enumerate(out) if b is None]
    cache_use.note_read(proposer.id, [f"{store.key}/{k}" for k, b in zip(keys, out) if b is not None],
                        time.perf_counter() - start)
    if missing:
        start = time.perf_counter()
        computed = parallel_map(_Call(_propose_image, proposer), [images[i] for i in missing],
                                default_workers(workers), progress, desc)
        for i, boxes in zip(missing, computed):
            store.put(keys[i], boxes)
            out[i] = boxes
        cache_use.note_computed(proposer.id, [f"{store.key}/{keys[i]}" for i in missing], time.perf_counter() - start)
    return [b for b in out if b is not None]


def store_proposals(images: Sequence[np.ndarray], boxes: Sequence[np.ndarray], proposer: Proposer,
                    cache_dir: Path) -> None:
    """Keep proposals computed elsewhere (e.g. by the proposals task) for later users, by image content."""
    store = ProposalStore(cache_dir, proposer)
    for image, b in zip(images, boxes):
        store.put(image_key(image), _as_boxes(b))


def cached_proposals(image: np.ndarray, proposer: Proposer, cache_dir: Path) -> np.ndarray:
    """Proposals for one decoded image, from the cache or computed here (and stored)."""
    return proposals_for_images([image], proposer, cache_dir, workers=1)[0]


def produce_for_consumers(proposer: Proposer, dataset: Any, loads: Sequence[tuple[str, int | None]],
                          cache_dir: Path, consumer_jobs: Sequence[str], workers: int | None = None,
                          progress: Callable[..., Iterable[Any]] | None = None, deadline: float | None = None,
                          chunk: int = 32, clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """Fill the cache with ``proposer``'s proposals for the images its consumers (``consumer_jobs``, the run's
    jobs that read them) load, and return the record's ``produced`` block.

    ``loads`` are the ``(split, image cap)`` pairs the consumers load (``dataset.load(split, cap)``; their
    budget's ``max_train_images`` and ``max_val_images``, None for every image). Images already cached are not
    computed again. The work is noted apart from the job's own ledger (:func:`benchsuite.measure.cache_use.apart`):
    it is not something the producer consumed.

    ``deadline`` (seconds of ``clock``, ``time.monotonic``): no new ``chunk`` of images is started after it, so
    that this job, which has done its own work, is not killed by its time limit for work done for others; what
    is left the consumers compute themselves (``left_images``). Where the work happens changes no proposal.

    The block: ``consumer_jobs``, ``proposer_key`` (a consumer whose proposer has other parameters misses these
    entries, and its ``consumed`` block shows them as computed images), ``images`` (distinct images per split),
    ``left_images`` (not proposed for lack of time), and ``cached_images``, ``computed_images``, ``read_s``,
    ``compute_s`` as in the ``consumed`` block.
    """
    paths: dict[str, set[str]] = {}
    done: set[str] = set()
    left: set[str] = set()
    with cache_use.apart() as used:
        for split, cap in loads:
            data = dataset.load(split, cap)
            paths.setdefault(split, set()).update(str(sample.path) for sample in data)
            for start in range(0, len(data), max(1, chunk)):
                part = data.subset(np.arange(start, min(start + chunk, len(data))))
                if deadline is not None and clock() > deadline:
                    left.update(str(sample.path) for sample in part)
                    continue
                proposals_for(part, proposer, cache_dir, workers, progress, desc=f"{split} proposals for consumers")
                done.update(str(sample.path) for sample in part)
    left -= done  # an image another load already proposed is not left
    images = {split: len(p) for split, p in paths.items()}
    counts = used.get(proposer.id, {"cached_images": 0, "computed_images": 0, "read_s": 0.0, "compute_s": 0.0})
    log.info("%s: %d %s images proposed for %s (%d were cached, %d left to them) in %.1f s", proposer.id,
             counts["computed_images"], "/".join(images), ", ".join(consumer_jobs), counts["cached_images"],
             len(left), counts["compute_s"])
    return {"consumer_jobs": list(consumer_jobs), "proposer_key": proposer_key(proposer), "images": images,
            "left_images": len(left), **counts}
