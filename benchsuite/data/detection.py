"""In-memory detection data: annotated image records, with the pixels decoded on demand.

Conventions (the same everywhere in the suite):

- images are ``uint8`` arrays of shape ``(H, W, 3)``, RGB channel order, HWC layout;
- boxes are ``float32`` arrays of shape ``(M, 4)`` holding ``x1, y1, x2, y2`` in pixels, where pixel
  ``(col, row)`` covers ``[col, col + 1) x [row, row + 1)``: the box covering only pixel ``(0, 0)`` is
  ``(0, 0, 1, 1)`` and a box's width is ``x2 - x1`` (no "+1").

Images are decoded with Pillow. EXIF orientation is deliberately *not* applied: annotations (VOC and
others) refer to the pixels as stored in the file. Grey-scale, bilevel, palette, RGBA/LA (alpha dropped),
CMYK, YCbCr, 16-bit grey-scale (scaled to 8 bits) and 16-bit RGB PNGs all come back as 8-bit RGB.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from benchsuite.data.sample_sets import SampleSequence
from benchsuite.errors import DataError
from benchsuite.results.safe_paths import open_regular

log = logging.getLogger(__name__)

#: what Pillow raises on files it cannot identify or decode
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)
#: seconds this process has spent in :func:`read_rgb` (decoding is data loading, not a pipeline's work:
#: the tasks report the decoding done inside ``fit`` apart from the fit time)
_decode_seconds = [0.0]


def decode_seconds() -> float:
    """Seconds this process has spent decoding image files so far (monotonic)."""
    return _decode_seconds[0]


def _to_rgb_array(img: Image.Image) -> np.ndarray:
    """A decoded Pillow image as ``(H, W, 3)`` uint8 RGB."""
    mode = img.mode
    if mode == "RGB":
        return np.asarray(img, dtype=np.uint8)
    if mode.startswith("I;16") or mode in ("I", "F"):
        # 16-bit (or 32-bit integer / float) grey-scale: Pillow's own convert() clips instead of scaling
        grey = np.asarray(img).astype(np.float64)
        if mode.startswith("I;16") or grey.max(initial=0) > 255:
            grey = grey / 257.0  # 0..65535 -> 0..255
        grey = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode in ("P", "PA") and "transparency" in img.info:
        img = img.convert("RGBA")  # palette transparency is resolved before the alpha is dropped
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def read_rgb(path: Path) -> np.ndarray:
    """Decode an image file to ``(H, W, 3)`` uint8 RGB (no EXIF rotation).

    A file that is missing, truncated or not an image is a :class:`DataError` naming the file, and so is a special
    file (a FIFO, a device: refused before it is read, :func:`benchsuite.results.safe_paths.open_regular`).
    """
    path = Path(path)
    start = time.perf_counter()
    try:
        with open_regular(path, what="image file") as f, Image.open(f) as img:
            img.load()
            array = _to_rgb_array(img)
    except FileNotFoundError:
        raise DataError(f"{path}: missing; expected an image file") from None
    except _DECODE_ERRORS as exc:
        raise DataError(f"{path}: cannot decode image ({type(exc).__name__}: {exc}); "
                        f"expected a JPEG or PNG image") from None
    finally:
        _decode_seconds[0] += time.perf_counter() - start
    return np.ascontiguousarray(array)


def image_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` in pixels from the file header only (cheap: the pixels are not decoded).

    Raises :class:`DataError` naming the file when it is missing or not a recognisable image.
    """
    path = Path(path)
    try:
        with open_regular(path, what="image file") as f, Image.open(f) as img:
            return int(img.width), int(img.height)
    except FileNotFoundError:
        raise DataError(f"{path}: missing; expected an image file") from None
    except _DECODE_ERRORS as exc:
        raise DataError(f"{path}: not a readable image ({type(exc).__name__}: {exc})") from None


@dataclass
class DetectionSample:
    """The annotation of one image.

    Attributes:
        image_id: the data set's id of the image (VOC: the file stem, e.g. ``"000005"``).
        path: the image file.
        width, height: the image size in pixels (of the stored pixels).
        boxes: ``(M, 4)`` float32 ``x1, y1, x2, y2`` pixels, ``0 <= x1 < x2 <= width``, same for y.
        labels: ``(M,)`` int64 indices into the data set's ``classes``.
        difficult: ``(M,)`` bool, objects the VOC protocol ignores when scoring.
        truncated: ``(M,)`` bool, objects cut by the image border.
    """

    image_id: str
    path: Path
    width: int
    height: int
    boxes: np.ndarray
    labels: np.ndarray
    difficult: np.ndarray
    truncated: np.ndarray

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        m = len(self.boxes)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        self.difficult = np.asarray(self.difficult, dtype=bool).reshape(-1)
        self.truncated = np.asarray(self.truncated, dtype=bool).reshape(-1)
        for name in ("labels", "difficult", "truncated"):
            if len(getattr(self, name)) != m:
                raise ValueError(f"{self.image_id}: {len(getattr(self, name))} {name} for {m} boxes")

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def empty(cls, image_id: str, path: Path, width: int, height: int) -> DetectionSample:
        """An image without objects (a valid sample: a background image)."""
        return cls(image_id, Path(path), width, height, np.zeros((0, 4), np.float32), np.zeros(0, np.int64),
                   np.zeros(0, bool), np.zeros(0, bool))


class DetectionSet(SampleSequence[DetectionSample]):
    """The annotated images of one split; pixels are decoded on demand by :meth:`load_image`.

    Attributes:
        samples: one :class:`DetectionSample` per image, in split order.
        classes: the class names; ``labels`` index this tuple.
        name: ``"<dataset>/<split>"``, for messages (e.g. ``"PennFudan/test"``).
    """

    def __init__(self, samples: Sequence[DetectionSample], classes: Sequence[str], name: str = ""):
        super().__init__(samples, classes, name)
        k = len(self.classes)
        for s in self.samples:
            if len(s.labels) and (s.labels.min() < 0 or s.labels.max() >= k):
                raise ValueError(f"{name}: {s.image_id} has labels outside 0..{k - 1}")

    def __repr__(self) -> str:
        return (f"DetectionSet({self.name!r}, images={len(self)}, objects={self.num_objects()}, "
                f"classes={self.classes})")

    def load_image(self, i: int) -> np.ndarray:
        """Image ``i`` decoded to ``(H, W, 3)`` uint8 RGB; an undecodable file is a DataError naming it."""
        s = self.samples[i]
        image = read_rgb(s.path)
        if image.shape[:2] != (s.height, s.width):
            raise DataError(f"{s.path}: decoded {image.shape[1]}x{image.shape[0]} pixels, annotated as "
                            f"{s.width}x{s.height}; the file changed after the data set was opened")
        return image

    def iter_images(self) -> Iterator[tuple[DetectionSample, np.ndarray]]:
        """``(sample, image)`` pairs in order, decoding one image at a time."""
        for i, s in enumerate(self.samples):
            yield s, self.load_image(i)

    def subset(self, indices: Sequence[int] | np.ndarray) -> DetectionSet:
        """The images at ``indices`` (in that order), same classes and name."""
        return DetectionSet([self.samples[int(i)] for i in np.asarray(indices, dtype=np.int64).reshape(-1)],
                            self.classes, self.name)

    def num_objects(self, include_difficult: bool = True) -> int:
        return int(sum(len(s) if include_difficult else int((~s.difficult).sum()) for s in self.samples))

    def class_counts(self, include_difficult: bool = False) -> np.ndarray:
        """``(C,)`` int64 number of objects per class (difficult ones excluded by default, as VOC scores)."""
        counts = np.zeros(self.num_classes, np.int64)
        for s in self.samples:
            labels = s.labels if include_difficult else s.labels[~s.difficult]
            counts += np.bincount(labels, minlength=self.num_classes)
        return counts

    def all_objects(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every object of the set, flattened.

        Returns ``(boxes (K, 4) float32, labels (K,) int64, difficult (K,) bool, truncated (K,) bool,
        image_index (K,) int64)`` where ``image_index`` is the object's position in this set.
        """
        if not self.samples:
            return (np.zeros((0, 4), np.float32), np.zeros(0, np.int64), np.zeros(0, bool), np.zeros(0, bool),
                    np.zeros(0, np.int64))
        boxes = np.concatenate([s.boxes for s in self.samples]).astype(np.float32, copy=False).reshape(-1, 4)
        labels = np.concatenate([s.labels for s in self.samples]).astype(np.int64, copy=False)
        difficult = np.concatenate([s.difficult for s in self.samples]).astype(bool, copy=False)
        truncated = np.concatenate([s.truncated for s in self.samples]).astype(bool, copy=False)
        image_index = np.repeat(np.arange(len(self.samples), dtype=np.int64), [len(s) for s in self.samples])
        return boxes, labels, difficult, truncated, image_index

    def boxes_of_class(self, k: int, include_difficult: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """All boxes of class ``k``: ``(boxes (K, 4) float32, image_index (K,) int64)``.

        Difficult objects are left out unless ``include_difficult``; pipelines that mine training
        windows usually want them out (they are neither positives nor clean negatives).
        """
        boxes, labels, difficult, _, image_index = self.all_objects()
        keep = labels == k
        if not include_difficult:
            keep &= ~difficult
        return boxes[keep], image_index[keep]

    def stratification_labels(self) -> np.ndarray:
        """``(N,)`` int64 one label per image for stratified sampling: the set's rarest class present in
        the image (non-difficult objects first), or ``num_classes`` for an image without objects."""
        counts = self.class_counts(include_difficult=True)
        out = np.full(len(self.samples), self.num_classes, np.int64)
        for i, s in enumerate(self.samples):
            labels = s.labels[~s.difficult] if (~s.difficult).any() else s.labels
            if len(labels):
                present = np.unique(labels)
                out[i] = present[np.argmin(counts[present])]
        return out
