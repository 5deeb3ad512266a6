"""CIFAR-10 in the official python layout (``cifar-10-batches-py/``).

The layout: ``data_batch_1`` .. ``data_batch_5`` (10,000 training images each), ``test_batch`` (the
official 10,000 test images) and ``batches.meta`` (the class names). Each batch is a pickled dict with
``data`` (N x 3072 uint8: the red plane, then green, then blue, each 32 x 32 row-major) and ``labels``.
Files pickled by Python 2 have byte-string keys, files pickled by Python 3 have str keys: both are read.

Pickles are loaded with an allow-list unpickler that only rebuilds numpy arrays, lists, dicts and
strings, so a hostile file cannot run code.
"""

from __future__ import annotations

import hashlib
import io
import logging
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchsuite.errors import DataError

log = logging.getLogger(__name__)

FOLDER = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
META_FILE = "batches.meta"
#: md5 sums of the canonical release (https://www.cs.toronto.edu/~kriz/cifar.html, as torchvision checks)
CANONICAL_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IMAGE_BYTES = 3 * 32 * 32

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
    ("copy_reg", "_reconstructor"),
    ("copyreg", "_reconstructor"),
    ("__builtin__", "object"),
    ("builtins", "object"),
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _load_pickle(path: Path) -> dict[str, object]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: missing; expected a CIFAR-10 batch file") from None
    try:
        obj = _ArrayUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError) as exc:
        kind = "truncated" if isinstance(exc, EOFError) or "truncated" in str(exc) else "unreadable"
        raise DataError(f"{path}: {kind} ({type(exc).__name__}: {exc}); expected a CIFAR-10 pickle "
                        f"in the official python layout") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: holds a {type(obj).__name__}, expected the dict of a CIFAR-10 batch")
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file as ``(images (N, 32, 32, 3) uint8 RGB, labels (N,) int64)``."""
    batch = _load_pickle(path)
    missing = [k for k in ("data", "labels") if k not in batch]
    if missing:
        raise DataError(f"{path}: no {' or '.join(repr(k) for k in missing)} entry; "
                        f"expected a CIFAR-10 batch with 'data' and 'labels'")
    data = np.asarray(batch["data"])
    labels = np.asarray(batch["labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != IMAGE_BYTES:
        raise DataError(f"{path}: 'data' is {data.dtype} {data.shape}, expected uint8 (N, {IMAGE_BYTES})")
    if labels.shape != (len(data),):
        raise DataError(f"{path}: {labels.size} labels for {len(data)} images")
    if labels.dtype.kind not in "iu":
        whole = labels.dtype.kind == "f" and bool(np.all(np.isfinite(labels))) and bool(
            np.all(labels == np.round(labels)))
        if not whole:
            bad = labels.reshape(-1)[:1].tolist() if labels.dtype.kind != "f" else \
                labels[~(np.isfinite(labels) & (labels == np.round(labels)))][:1].tolist()
            raise DataError(f"{path}: 'labels' are {labels.dtype} (for example {bad[0]!r}), expected whole "
                            f"numbers 0..9")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(CLASSES)):
        raise DataError(f"{path}: labels outside 0..9 (min {labels.min()}, max {labels.max()})")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()
    return images, labels.astype(np.int64)


def read_class_names(path: Path) -> tuple[str, ...]:
    meta = _load_pickle(path)
    names = meta.get("label_names")
    if not isinstance(names, list) or len(names) != len(CLASSES):
        raise DataError(f"{path}: 'label_names' should list 10 class names")
    out = tuple((n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n)).strip() for n in names)
    if not all(out):
        raise DataError(f"{path}: 'label_names' has an empty class name; expected 10 distinct names")
    repeated = sorted({n for n in out if out.count(n) > 1})
    if repeated:
        raise DataError(f"{path}: 'label_names' lists {', '.join(repr(n) for n in repeated)} more than once; "
                        f"expected 10 distinct class names")
    return out


def md5_of(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class CifarArrays:
    """The whole data set in memory, with what is known about where it came from."""

    train_images: np.ndarray  # (50000, 32, 32, 3) uint8 RGB
    train_labels: np.ndarray  # (50000,) int64
    test_images: np.ndarray  # (10000, 32, 32, 3) uint8 RGB
    test_labels: np.ndarray
    classes: tuple[str, ...]
    md5: dict[str, str]

    @property
    def canonical(self) -> bool:
        return all(self.md5.get(name) == digest for name, digest in CANONICAL_MD5.items())

    @property
    def fingerprint(self) -> str:
        """A content hash: the files' md5 sums in a fixed order."""
        joined = "".join(f"{name}:{self.md5[name]};" for name in sorted(self.md5))
        return hashlib.sha256(joined.encode()).hexdigest()[:16]


def has_cifar10(folder: Path) -> bool:
    """True when ``folder`` holds at least one file of the official layout."""
    return folder.is_dir() and any((folder / name).exists() for name in (*TRAIN_FILES, TEST_FILE))


def file_digests(folder: Path) -> dict[str, str]:
    """md5 of every file of the layout; a missing file is a DataError naming it."""
    digests = {}
    for name in (*TRAIN_FILES, TEST_FILE, META_FILE):
        path = folder / name
        if not path.is_file():
            raise DataError(f"{path}: missing; a CIFAR-10 folder needs {', '.join(CANONICAL_MD5)}")
        digests[name] = md5_of(path)
    return digests


def read_cifar10(folder: Path) -> CifarArrays:
    """Read every batch of ``folder`` (a ``cifar-10-batches-py`` directory)."""
    folder = Path(folder)
    digests = file_digests(folder)
    parts = [read_batch(folder / name) for name in TRAIN_FILES]
    train_images = np.concatenate([p[0] for p in parts])
    train_labels = np.concatenate([p[1] for p in parts])
    test_images, test_labels = read_batch(folder / TEST_FILE)
    classes = read_class_names(folder / META_FILE)
    return CifarArrays(train_images, train_labels, test_images, test_labels, classes, digests)


def download_cifar10(data_root: Path) -> Path:
    """Fetch the canonical release into ``data_root`` through torchvision (needs the network)."""
    try:
        from torchvision.datasets import CIFAR10

        CIFAR10(root=str(data_root), train=True, download=True)
    except Exception as exc:
        raise DataError(f"could not download CIFAR-10 into {data_root}: {type(exc).__name__}: {exc}") from None
    return Path(data_root) / FOLDER
