"""CIFAR-10 in the official python layout (``cifar-10-batches-py/``).

The layout: ``data_batch_1`` .. ``data_batch_5`` (10,000 training images each), ``test_batch`` (the
official 10,000 test images) and ``batches.meta`` (the class names). Each batch is a pickled dict with
``data`` (N x 3072 uint8: the red plane, then green, then blue, each 32 x 32 row-major) and ``labels``.
Files pickled by Python 2 have byte-string keys, files pickled by Python 3 have str keys: both are read.

Pickles are untrusted input. A batch file is read only when it is a regular file of at most
:data:`MAX_PICKLE_BYTES` (a FIFO or a device is refused before it is opened for reading); its opcodes are scanned
first (:func:`check_pickle`), so that an object that declares more bytes than the file holds (a "1 TiB" bytes
object) is refused before anything is allocated; then an allow-list unpickler rebuilds only numpy arrays, lists,
dicts and strings, so a hostile file cannot run code; and each entry is checked for its type and size (``data`` a
uint8 array of whole images, ``labels`` a flat list or array of whole numbers, one per image) before it is turned
into an array. Every refusal is one :class:`~benchsuite.errors.DataError` line naming the file and the entry.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
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


#: the largest batch file read (the official ones are about 31 MB; the meta file a few hundred bytes)
MAX_PICKLE_BYTES = 512 * 2**20
#: the most opcodes a batch pickle may hold (the official ones: about 40,000)
MAX_PICKLE_OPCODES = 2_000_000
#: the opcodes whose argument is a length-prefixed string or bytes object read from the file
_SIZED_OPCODES = frozenset({"BINBYTES", "BINBYTES8", "SHORT_BINBYTES", "BINUNICODE", "BINUNICODE8",
                            "SHORT_BINUNICODE", "BINSTRING", "SHORT_BINSTRING", "BYTEARRAY8"})


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def check_pickle(raw: bytes, path: Path) -> None:
    """Scan the opcodes of the pickle ``raw`` without building anything: every length-prefixed object must fit in
    the bytes that remain (``pickletools`` reads at most what is there, so a declared length of 1 TiB costs
    nothing), the opcode count must stay under :data:`MAX_PICKLE_OPCODES`, and out-of-band buffers are refused.
    A problem is a DataError naming the file and the byte offset."""
    import pickletools

    count = 0
    try:
        for opcode, _arg, pos in pickletools.genops(io.BytesIO(raw)):
            count += 1
            if count > MAX_PICKLE_OPCODES:
                raise DataError(f"{path}: more than {MAX_PICKLE_OPCODES:,} pickle opcodes; refused (a CIFAR-10 "
                                f"batch has about 40,000)")
            if opcode.name in ("NEXT_BUFFER", "READONLY_BUFFER", "EXT1", "EXT2", "EXT4", "PERSID", "BINPERSID"):
                raise DataError(f"{path}: pickle opcode {opcode.name} at byte {pos} is not used by CIFAR-10 "
                                f"batches; refused")
    except DataError:
        raise
    except (ValueError, EOFError, pickle.UnpicklingError, UnicodeDecodeError) as exc:
        # pickletools says "expected N bytes in a bytes8, but only M remain" for a declared length past the end
        raise DataError(f"{path}: truncated or not a pickle ({exc}); expected a CIFAR-10 batch file in the official "
                        f"python layout") from None


def _load_pickle(path: Path) -> dict[str, object]:
    from benchsuite.results.safe_paths import read_limited

    try:
        raw = read_limited(path, MAX_PICKLE_BYTES, "CIFAR-10 batch file")
    except FileNotFoundError:
        raise DataError(f"{path}: missing; expected a CIFAR-10 batch file") from None
    except OSError as exc:
        raise DataError(f"{path}: unreadable ({exc.strerror or exc}); expected a CIFAR-10 batch file") from None
    check_pickle(raw, path)
    try:
        obj = _ArrayUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            MemoryError, OverflowError, RecursionError, UnicodeDecodeError) as exc:
        kind = "truncated" if isinstance(exc, EOFError) or "truncated" in str(exc) else "unreadable"
        raise DataError(f"{path}: {kind} ({type(exc).__name__}: {str(exc)[:200]}); expected a CIFAR-10 pickle "
                        f"in the official python layout") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: holds a {type(obj).__name__}, expected the dict of a CIFAR-10 batch")
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


def _image_bytes(value: object, path: Path) -> np.ndarray:
    """The ``data`` entry as a ``(N, 3072)`` uint8 array, checked before any conversion."""
    if isinstance(value, (bytes, bytearray)):
        value = np.frombuffer(bytes(value), np.uint8)
        if value.size % IMAGE_BYTES:
            raise DataError(f"{path}: 'data' holds {value.size} bytes, not a whole number of {IMAGE_BYTES}-byte images")
        value = value.reshape(-1, IMAGE_BYTES)
    if not isinstance(value, np.ndarray):
        raise DataError(f"{path}: 'data' is a {type(value).__name__}, expected a uint8 array (N, {IMAGE_BYTES})")
    if value.dtype != np.uint8 or value.ndim != 2 or value.shape[1] != IMAGE_BYTES:
        raise DataError(f"{path}: 'data' is {value.dtype} {value.shape}, expected uint8 (N, {IMAGE_BYTES})")
    return value


def _label_values(value: object, count: int, path: Path) -> np.ndarray:
    """The ``labels`` entry as a ``(count,)`` array: a flat list (or tuple) of numbers, or a 1-D numeric array,
    checked before it is converted (a nested list could declare a huge array)."""
    if isinstance(value, np.ndarray):
        if value.ndim != 1 or value.dtype.kind not in "iuf":
            raise DataError(f"{path}: 'labels' is a {value.dtype} array of shape {value.shape}, expected {count} "
                            f"whole numbers 0..9")
        labels = value
    elif isinstance(value, (list, tuple)):
        from benchsuite.results.safe_paths import short_repr

        bad = next((v for v in value if isinstance(v, bool) or not isinstance(v, (int, float, np.integer,
                                                                                  np.floating))), None)
        if bad is not None:
            raise DataError(f"{path}: 'labels' holds a {type(bad).__name__} ({short_repr(bad, 40)}), expected whole "
                            f"numbers 0..9")
        if any(isinstance(v, int) and not -(2**62) < v < 2**62 for v in value):
            raise DataError(f"{path}: 'labels' holds a number out of range; expected whole numbers 0..9")
        labels = np.asarray(value)
    else:
        raise DataError(f"{path}: 'labels' is a {type(value).__name__}, expected a list of whole numbers 0..9")
    if labels.shape != (count,):
        raise DataError(f"{path}: {labels.size} labels for {count} images")
    return labels


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file as ``(images (N, 32, 32, 3) uint8 RGB, labels (N,) int64)``."""
    batch = _load_pickle(path)
    missing = [k for k in ("data", "labels") if k not in batch]
    if missing:
        raise DataError(f"{path}: no {' or '.join(repr(k) for k in missing)} entry; "
                        f"expected a CIFAR-10 batch with 'data' and 'labels'")
    data = _image_bytes(batch["data"], path)
    labels = _label_values(batch["labels"], len(data), path)
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
    if not all(isinstance(n, (bytes, str)) and len(n) <= MAX_CLASS_NAME for n in names):
        raise DataError(f"{path}: 'label_names' should hold 10 names of text, each at most {MAX_CLASS_NAME} "
                        f"characters")
    out = tuple((n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n)).strip() for n in names)
    if not all(out):
        raise DataError(f"{path}: 'label_names' has an empty class name; expected 10 distinct names")
    repeated = sorted({n for n in out if out.count(n) > 1})
    if repeated:
        raise DataError(f"{path}: 'label_names' lists {', '.join(repr(n) for n in repeated)} more than once; "
                        f"expected 10 distinct class names")
    return out


#: the longest class name accepted (file names and report cells are built from class names)
MAX_CLASS_NAME = 200


def md5_of(path: Path) -> str:
    from benchsuite.results.safe_paths import open_regular

    h = hashlib.md5()
    with open_regular(path, MAX_PICKLE_BYTES, "CIFAR-10 batch file") as f:
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
        if not os.path.lexists(path):
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
