"""``imagefolder:PATH``: images sorted into one folder per class (torchvision's ``ImageFolder`` convention).

Layouts::

    PATH/<class>/**/<image>                       one folder per class; a seeded stratified split is drawn
    PATH/{train,val,test}/<class>/**/<image>      the split folders as given (``valid``/``validation`` = val)

Any file Pillow opens counts as an image (by its suffix: ``.jpg``, ``.png``, ``.bmp``, ``.tif``, ``.webp``, ...),
at any size, grey or colour (grey is repeated over three channels). Classes are the class folders' names, sorted;
at least two. A class folder with no readable image is an error naming the folder; an unreadable image is skipped
and counted in the data set's notes.

**Splits.** With split folders: ``test/`` is the test split; ``val/`` is val; without ``val/``, val is a fixed
stratified ``val_fraction`` (default 0.1, as CIFAR-10's 5,000 of 50,000) of ``train/`` drawn with the suite's split
seed; with ``train/`` and ``val/`` but no ``test/``, ``val/`` is scored as test and val is drawn from train. Without
split folders, test is a stratified ``test_fraction`` (default 0.2) of all images and val a stratified
``val_fraction`` of the rest, drawn with the same seed. The fractions are recorded in the data set's ``options``;
the manifest (every image's path per split) is written into the run folder (``splits/<name>.split.json``), never
into ``PATH``.

**Image size.** A pipeline gets one array ``(N, H, W, 3)``: every image is resized to one size, the data set's
*size policy*, set in the spec and recorded in ``options`` (``image_size``, ``size_policy``):

- ``size=median`` (default): the median width and the median height of the data set's images, scaled down to at
  most :data:`MAX_SIDE` pixels on the longer side (aspect kept);
- ``size=WxH`` (``size=100x40``) or ``size=N`` (``N x N``): that size (at most :data:`MAX_EXPLICIT_SIDE` a side).

Images already at the size are used as they are (no resampling); the others are resized with Pillow's bilinear
filter (antialiased when shrinking), stretched to the size (the aspect ratio is not kept). Options:
``imagefolder:PATH?size=64x64&val_fraction=0.1&test_fraction=0.2``.

**Cache.** Image headers (sizes) and the decoded, resized pixels are cached under ``<cache-dir>/imagefolder/``,
keyed by the folder's path, every file's name, byte size and modification time, and the size: a job, the scoring
process and later runs read them memory-mapped instead of decoding again. A damaged cache file is rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchsuite.data.boxsets import origin_of
from benchsuite.data.confine import checked_name, confined, real_folder, walk_files
from benchsuite.data.datasets import IMAGE_LABELS, SUBSET_SEED, DatasetInfo, OpenRequest, dataset_format
from benchsuite.data.detection import read_rgb
from benchsuite.data.images import ImageSet
from benchsuite.data.problems import Problems
from benchsuite.data.seeded_splits import SPLIT_NAMES, TEST_FRACTION, resolve_splits
from benchsuite.data.spec_options import SpecParts, parse_spec
from benchsuite.data.splits import stratified_choice
from benchsuite.data.voc import _split_fingerprint, safe_name
from benchsuite.data.voc_splits import split_indices, split_manifest
from benchsuite.errors import ConfigError, DataError
from benchsuite.results.atomic import atomic_write_json

log = logging.getLogger(__name__)

USAGE = "imagefolder:PATH[?size=median|WxH&val_fraction=F&test_fraction=F]"
LAYOUT = "a folder of class folders (PATH/<class>/<image>) or of split folders (PATH/{train,val,test}/<class>/...)"
OPTIONS = ("size", "val_fraction", "test_fraction")
VAL_FRACTION = 0.1
MAX_SIDE = 128  # the median policy's cap on the longer side, pixels
MAX_EXPLICIT_SIDE = 4096
CACHE_VERSION = 1


def image_suffixes() -> frozenset[str]:
    """The lower-case file suffixes of the formats Pillow can open."""
    Image.init()
    return frozenset(ext.lower() for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


@dataclass(frozen=True)
class SizePolicy:
    """The image size a pipeline sees: ``kind`` ``"median"`` or ``"fixed"``, and the size for ``"fixed"``."""

    kind: str
    width: int = 0
    height: int = 0

    @staticmethod
    def parse(parts: SpecParts) -> SizePolicy:
        text = parts.options.get("size", "median").strip().lower()
        if text == "median":
            return SizePolicy("median")
        w, x, h = text.partition("x")
        try:
            width, height = (int(w), int(h)) if x else (int(w), int(w))
        except ValueError:
            width = height = -1
        if not (1 <= width <= MAX_EXPLICIT_SIDE and 1 <= height <= MAX_EXPLICIT_SIDE):
            raise ConfigError(f"data set spec {parts.spec!r}: size={parts.options['size']!r}; expected median, WxH "
                              f"or N (pixels, 1..{MAX_EXPLICIT_SIDE}), for example size=64x64")
        return SizePolicy("fixed", width, height)

    def resolve(self, widths: np.ndarray, heights: np.ndarray) -> tuple[int, int]:
        """``(width, height)`` for images of the given sizes."""
        if self.kind == "fixed":
            return self.width, self.height
        w, h = float(np.median(widths)), float(np.median(heights))
        scale = min(1.0, MAX_SIDE / max(w, h))
        return max(1, round(w * scale)), max(1, round(h * scale))

    def describe(self) -> str:
        if self.kind == "fixed":
            return f"size={self.width}x{self.height} (given)"
        return f"median width and height of the images, longer side at most {MAX_SIDE} px"


@dataclass
class FolderIndex:
    """What :func:`scan_image_folder` found.

    Attributes:
        root: the resolved folder.
        classes: class names, sorted (labels index them).
        files: every readable image, relative POSIX path from ``root``, in scan order (split, class, path).
        labels: ``(N,)`` int64 class of each file.
        given_split: ``(N,)`` split name of each file's split folder, or ``""`` without split folders.
        sizes: ``(N, 2)`` int64 ``(width, height)`` from the headers.
        grey: ``(N,)`` bool, single-channel files.
        stamp: per file ``(bytes, mtime_ns)``, for the cache key.
        fingerprint: 16 hex digits over the class list and every image's path and byte size.
        problems: what was met while reading.
    """

    root: Path
    classes: tuple[str, ...]
    files: list[str]
    labels: np.ndarray
    given_split: np.ndarray
    sizes: np.ndarray
    grey: np.ndarray
    fingerprint: str
    cache_key: str
    problems: Problems


def _class_folders(folder: Path, root: Path) -> list[Path]:
    """The visible sub-folders of ``folder``; one that links outside ``root`` is a DataError."""
    subs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    return [confined(p, root, "folder") for p in subs]


def _layout(root: Path) -> list[tuple[str, Path]]:
    """``(split, class folder)`` pairs; split ``""`` without split folders."""
    top = _class_folders(root, root)
    train = root / "train"
    if train in top and _class_folders(train, root):
        pairs = []
        seen: dict[str, str] = {}
        for sub in top:
            split = SPLIT_NAMES.get(sub.name)
            if split is None:
                raise DataError(f"{sub}: a folder beside the split folders; expected only train/, val/ (or valid/, "
                                f"validation/) and test/ in {root}, each holding class folders")
            if split in seen:
                raise DataError(f"{sub}: a second {split} folder beside {root / seen[split]}; expected one")
            seen[split] = sub.name
            pairs += [(split, c) for c in _class_folders(sub, root)]
        return pairs
    return [("", c) for c in top]


def _read_headers(paths: list[Path]) -> list[tuple[int, int, int] | str]:
    """Per file ``(width, height, bands)`` from its header, or the reason it cannot be read."""

    def one(path: Path) -> tuple[int, int, int] | str:
        try:
            with Image.open(path) as img:
                return int(img.width), int(img.height), len(img.getbands())
        except Exception as exc:  # Pillow raises many types for a file that is not an image
            return f"{type(exc).__name__}: {exc}"

    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        return list(pool.map(one, paths, chunksize=64))


def _load_cached_headers(path: Path, n: int) -> list[tuple[int, int, int] | str] | None:
    try:
        data = json.loads(path.read_text())
        headers = data["headers"]
        if data.get("version") != CACHE_VERSION or len(headers) != n:
            return None
        out: list[tuple[int, int, int] | str] = []
        for h in headers:
            if isinstance(h, str):
                out.append(h)
            elif (isinstance(h, list) and len(h) == 3 and all(isinstance(v, int) and 0 < v < 1 << 20 for v in h)):
                out.append((h[0], h[1], h[2]))
            else:
                return None
        return out
    except (OSError, ValueError, KeyError, TypeError):
        return None


def scan_image_folder(root: Path, cache_dir: Path | None, problems: Problems) -> FolderIndex:
    """Index a folder of class folders (see the module docstring); errors go to ``problems``."""
    suffixes = image_suffixes()
    pairs = _layout(root)
    found: list[tuple[str, str, Path]] = []  # (split, class, file)
    class_of_folder: dict[Path, str] = {}
    for split, folder in pairs:
        try:
            name = checked_name(folder.name, folder, "class folder name")
        except DataError as exc:
            problems.add_error(exc)
            continue
        class_of_folder[folder] = name
        files = list(walk_files(folder, suffixes))
        if not files:
            problems.error(folder, "a class folder with no image file (expected images Pillow reads: .jpg, .png, "
                                   "...)", "empty class folder")
        found += [(split, name, f) for f in files]
    stray = [p for p in root.iterdir() if p.is_file() and p.suffix.lower() in suffixes]
    for p in stray[:20]:
        problems.warn("image outside any class folder (ignored)", p, "an image outside any class folder: ignored")
    stamps = []
    for _, _, f in found:
        st = os.stat(f)
        stamps.append((st.st_size, st.st_mtime_ns))
    key = hashlib.sha256(f"v{CACHE_VERSION}\0{root}\0".encode())
    for (_, _, f), (size, mtime) in zip(found, stamps):
        key.update(f"{f.relative_to(root).as_posix()}\0{size}\0{mtime}\0".encode())
    cache_key = key.hexdigest()[:24]
    headers = None
    header_cache = Path(cache_dir) / "imagefolder" / f"{cache_key}.headers.json" if cache_dir else None
    if header_cache is not None and header_cache.is_file():
        headers = _load_cached_headers(header_cache, len(found))
    if headers is None:
        start = time.perf_counter()
        headers = _read_headers([f for _, _, f in found])
        if len(found) > 1000:
            log.info("%s: read %d image headers in %.1f s", root, len(found), time.perf_counter() - start)
        if header_cache is not None:
            try:
                atomic_write_json(header_cache, {"version": CACHE_VERSION, "root": str(root),
                                                 "headers": [list(h) if isinstance(h, tuple) else h for h in headers]})
            except OSError as exc:
                log.warning("cannot write the header cache %s (%s); reading the headers each time", header_cache, exc)
    readable_per_folder: dict[tuple[str, str], int] = {}
    keep = []
    for (split, name, f), h, (size, _) in zip(found, headers, stamps):
        if isinstance(h, str):
            problems.warn("unreadable image (skipped)", f.relative_to(root), f"not a readable image ({h}): skipped")
            continue
        readable_per_folder[(split, name)] = readable_per_folder.get((split, name), 0) + 1
        keep.append((split, name, f, h, size))
    for split, folder in pairs:
        name = class_of_folder.get(folder)
        n_files = sum(1 for s, c, _ in found if s == split and c == name)
        if name is not None and n_files and not readable_per_folder.get((split, name)):
            problems.error(folder, f"a class folder with no readable image ({n_files} file(s), none decodable)",
                           "empty class folder")
    classes = tuple(sorted({name for _, name, _, _, _ in keep}))
    index = {c: k for k, c in enumerate(classes)}
    files = [f.relative_to(root).as_posix() for _, _, f, _, _ in keep]
    fp = hashlib.sha256(("\0".join(classes) + "\0\0").encode())
    for rel, (*_, size) in zip(files, keep):
        fp.update(f"{rel}\0{size}\0".encode())
    return FolderIndex(
        root=root, classes=classes, files=files,
        labels=np.array([index[name] for _, name, _, _, _ in keep], np.int64),
        given_split=np.array([split for split, *_ in keep], dtype=object),
        sizes=np.array([(h[0], h[1]) for _, _, _, h, _ in keep], np.int64).reshape(-1, 2),
        grey=np.array([h[2] < 3 for _, _, _, h, _ in keep], bool),
        fingerprint=fp.hexdigest()[:16], cache_key=cache_key, problems=problems)


class ImageFolderDataset:
    """A folder of class folders as a benchmark data set (see the module docstring)."""

    def __init__(self, folder: Path, spec: str = "", cache_dir: Path | None = None, inspect: bool = False,
                 name: str | None = None, description: str | None = None):
        parts = parse_spec(spec or f"imagefolder:{folder}", USAGE, OPTIONS)
        self.policy = SizePolicy.parse(parts)
        self.val_fraction = parts.fraction("val_fraction", VAL_FRACTION)
        self.test_fraction = parts.fraction("test_fraction", TEST_FRACTION)
        self.folder = real_folder(Path(folder), LAYOUT)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.origin = origin_of(self.folder)
        self.problems = Problems(spec or f"imagefolder:{folder}")
        self.index = scan_image_folder(self.folder, self.cache_dir, self.problems)
        idx = self.index
        if len(idx.classes) < 2 and not self.problems.errors:
            self.problems.error(self.folder, f"{len(idx.classes)} class folder(s) with readable images; expected at "
                                             f"least 2 (one folder per class)", "too few classes")
        self.splits: dict[str, np.ndarray] = {}
        split_notes: list[str] = []
        if len(idx.files):
            try:
                self.splits, split_notes = resolve_splits(idx.labels, idx.given_split, self.val_fraction,
                                                          self.test_fraction, str(self.folder))
                self._check_training_classes()
            except DataError as exc:
                self.problems.add_error(exc)
        if not inspect:
            self.problems.raise_errors()
        if len(idx.files):
            self.width, self.height = self.policy.resolve(idx.sizes[:, 0], idx.sizes[:, 1])
        else:
            self.width = self.height = 0
        base = safe_name(self.folder.name) or "imagefolder"
        self.name = name or (f"{base}-{self.width}x{self.height}" if self.policy.kind == "fixed" else base)
        self.info = self._describe(split_notes, description)

    def _check_training_classes(self) -> None:
        present = np.bincount(self.index.labels[self.splits["train"]], minlength=len(self.index.classes))
        for k in np.flatnonzero(present == 0):
            raise DataError(f"{self.folder}: class {self.index.classes[k]!r} has no training image after the split "
                            f"({int((self.index.labels == k).sum())} image(s) in all); add images or split folders")

    # ------------------------------------------------------------------ provenance
    def split_ids(self, split: str) -> list[str]:
        return [self.index.files[i] for i in split_indices(self.splits, split, self.name)]

    def _describe(self, split_notes: list[str], description: str | None) -> DatasetInfo:
        idx = self.index
        sizes = idx.sizes
        at_size = int(((sizes[:, 0] == self.width) & (sizes[:, 1] == self.height)).sum()) if len(sizes) else 0
        notes = list(split_notes)
        notes.append(f"{len(idx.files)} images in {len(idx.classes)} classes; every image given to the pipelines at "
                     f"{self.width}x{self.height} ({self.policy.describe()}); {len(idx.files) - at_size} resized")
        if idx.grey.any():
            notes.append(f"{int(idx.grey.sum())} single-channel image(s): the grey level repeated over R, G and B")
        notes.extend(self.problems.notes())
        options = {"format": "imagefolder", "image_size": [self.width, self.height],
                   "size_policy": self.policy.describe(), "resize": "Pillow bilinear (antialiased), aspect not kept",
                   "val_fraction": self.val_fraction, "test_fraction": self.test_fraction,
                   "split_folders": bool(len(idx.given_split) and idx.given_split[0] != "")}
        n = len(idx.classes)
        return DatasetInfo(
            name=self.name, annotations=[IMAGE_LABELS], origin=self.origin, canonical=None,
            fingerprint=idx.fingerprint, root=str(self.folder), classes=list(idx.classes),
            split_counts={s: len(v) for s, v in self.splits.items()},
            split_fingerprints={s: _split_fingerprint(idx.fingerprint, s, self.split_ids(s)) for s in self.splits},
            description=description or f"image folder {self.folder.name} ({n} class{'es' if n != 1 else ''}, "
                                       f"{self.width}x{self.height} px)",
            notes=notes, options=options)

    # ------------------------------------------------------------------ access
    def split_summary(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """``(labels (n,) int64, sizes (n, 2) int64 width, height as stored)`` of ``split``, no pixel decoded."""
        positions = split_indices(self.splits, split, self.name)
        return self.index.labels[positions], self.index.sizes[positions]

    def _pixel_cache(self) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / "imagefolder" / f"{self.index.cache_key}-{self.width}x{self.height}.npy"

    def _decode(self, positions: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``(len(positions), H, W, 3)`` uint8 pixels of the files at ``positions``, at the policy's size, into
        ``out`` when given (a memory map: the cache is filled without holding every image in memory)."""
        if out is None:
            out = np.empty((len(positions), self.height, self.width, 3), np.uint8)

        def one(k: int) -> None:
            out[k] = self._read(int(positions[k]))

        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            list(pool.map(one, range(len(positions)), chunksize=256))
        return out

    def _read(self, i: int) -> np.ndarray:
        path = self.folder / self.index.files[i]
        rgb = read_rgb(path)
        if rgb.shape[:2] != (self.height, self.width):
            rgb = np.asarray(Image.fromarray(rgb).resize((self.width, self.height), Image.Resampling.BILINEAR))
        return rgb

    def _cached_pixels(self) -> np.ndarray | None:
        path = self._pixel_cache()
        if path is None or not path.is_file():
            return None
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError):
            return None
        if arr.shape != (len(self.index.files), self.height, self.width, 3) or arr.dtype != np.uint8:
            log.warning("%s: damaged image cache (shape %s %s); rebuilding it", path, arr.shape, arr.dtype)
            return None
        return arr

    def _build_cache(self) -> np.ndarray:
        """Decode every image once into the cache file (written to a temporary name, then renamed: concurrent
        jobs never read half a cache) and return it memory-mapped; without a cache folder, in memory."""
        path = self._pixel_cache()
        start = time.perf_counter()
        everything = np.arange(len(self.index.files))
        shape = (len(everything), self.height, self.width, 3)
        pixels = None
        if path is not None:
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                target = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
                self._decode(everything, target)
                target.flush()
                del target
                os.replace(tmp, path)
                pixels = self._cached_pixels()
            except OSError as exc:
                log.warning("cannot write the image cache %s (%s); decoding in memory", path, exc)
            finally:  # a failed or interrupted decode leaves no partial file
                with contextlib.suppress(OSError):
                    tmp.unlink()
        if pixels is None:
            pixels = self._decode(everything)
        log.info("%s: decoded %d images at %dx%d in %.1f s", self.folder, len(pixels), self.width, self.height,
                 time.perf_counter() - start)
        return pixels

    def load(self, split: str, max_images: int | None = None) -> ImageSet:
        """One split as an ImageSet at the policy's size; ``max_images`` takes a fixed stratified subset."""
        positions = split_indices(self.splits, split, self.name)
        labels = self.index.labels[positions]
        if max_images is not None and max_images < len(positions):
            keep = stratified_choice(labels, max_images, SUBSET_SEED)
            positions, labels = positions[keep], labels[keep]
        cached = self._cached_pixels()
        if cached is None and len(positions) * 2 >= len(self.index.files):
            cached = self._build_cache()
        images = np.ascontiguousarray(cached[positions]) if cached is not None else self._decode(positions)
        return ImageSet(images, labels, self.index.classes, f"{self.name}/{split}")

    def manifest(self) -> dict[str, Any]:
        return split_manifest(self.info, self.origin, {s: self.split_ids(s) for s in self.splits}, SUBSET_SEED,
                              format="imagefolder", options=self.info.options)

    def write_manifest(self, folder: Path) -> Path:
        """Write ``<folder>/<name>.split.json`` (every image's path per split, the fingerprints, the options)."""
        path = Path(folder) / f"{self.name}.split.json"
        atomic_write_json(path, self.manifest())
        return path


@dataset_format("imagefolder", provides=[IMAGE_LABELS], usage=USAGE)
def open_imagefolder(req: OpenRequest) -> ImageFolderDataset:
    """``imagefolder:PATH[?size=...&val_fraction=...&test_fraction=...]`` (see the module docstring)."""
    parts = parse_spec(req.spec, USAGE, OPTIONS)
    return ImageFolderDataset(Path(parts.path).expanduser(), req.spec, req.cache_dir, inspect=req.inspect)
