"""Pascal VOC layout semantic segmentation data: the mask reader, the split logic and the data set openers.

The layout (VOC2007, VOC2012 and any folder in the same format, e.g. Penn-Fudan converted to VOC; the same
folder also serves detection through ``Annotations/`` and ``ImageSets/Main/``)::

    <folder>/JPEGImages/<id>.jpg               (PNG and other formats Pillow reads are accepted too)
    <folder>/SegmentationClass/<id>.png        the class of every pixel
    <folder>/SegmentationObject/<id>.png       optional: the object (instance) of every pixel
    <folder>/ImageSets/Segmentation/{train,val,trainval,test}.txt   one image id per line
    <folder>/labelmap.txt                      optional: ``name:r,g,b:parts:actions`` lines (CVAT's export)

**Class masks.** Without ``labelmap.txt`` the folder is read as VOC proper: a mask's pixel value (the palette
index of a palette PNG, or the value of a grey-scale PNG) is the class index into :data:`VOC_SEGMENTATION_CLASSES`
(0 background, 1 aeroplane, ..., 15 person, ..., 20 tvmonitor), and an RGB mask's colour is looked up in the
VOC colour map (:func:`voc_palette`). With ``labelmap.txt`` the classes are its names in file order, and every
pixel is classified by its *colour*: a palette PNG's index through the PNG's own palette (a grey-scale PNG's value
through the VOC colour map), an RGB mask's colour as it is. Penn-Fudan's masks hold palette index 15 (VOC's
person) whose colour ``192,128,128`` is the ``person`` line of its labelmap, so they read as class 1 of
``("background", "person")``.

**Void.** Value 255 of a palette or grey-scale mask, and the colour ``224,224,192`` (VOC's void colour) of an
RGB mask, are void: :data:`VOID` in the decoded label map, never scored. Any other value or colour that names
no class is a :class:`~benchsuite.errors.DataError` naming the file, the value and the colour.

**Instance masks.** ``SegmentationObject/<id>.png``: 0 no object, 255 void, ``1..254`` the object number
within the image (palette index or grey value; an RGB instance mask's colours are looked up in the VOC colour
map, whose colour ``k`` is object ``k``). An object's class is the class its pixels have in the class mask.

**Checks.** At open time (headers only, cheap): every listed id has an image and a class mask, and each mask
(and instance mask) has the image's size; otherwise a DataError naming the file and both sizes. When a mask
is decoded (:meth:`SegmentationSet.load_mask`): its values are in range, as above. Decoding is lazy, one image
at a time; mask decoding counts as data loading, with image decoding
(:func:`benchsuite.data.detection.decode_seconds`).

**Splits** are the folder's ``ImageSets/Segmentation`` files, resolved by the VOC split rules
(:mod:`benchsuite.data.voc_splits`, those of detection's ``ImageSets/Main``): without ``val.txt`` val is a fixed
seeded 20% of trainval (or train); VOC2012, whose test masks are not public, scores its official val split as
``test``. The split manifest is ``<name>.segmentation.split.json``, apart from the detection one.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchsuite.data import detection, synthetic_voc
from benchsuite.data.datasets import MASKS, SUBSET_SEED, DatasetInfo, OpenRequest
from benchsuite.data.sample_sets import SampleSequence
from benchsuite.data.splits import SPLIT_SEED, stratified_choice
from benchsuite.data.voc import (
    IMAGE_SUFFIXES,
    VOC_CLASSES,
    _read_image_set,
    _split_fingerprint,
    find_voc,
    voc_folder_of_spec,
)
from benchsuite.data.voc_colours import LABELMAP, VOID, VOID_COLOUR, voc_palette
from benchsuite.data.voc_splits import (
    SPLITS,
    check_voc_layout,
    official_sizes,
    resolve_voc_splits,
    split_indices,
    split_manifest,
)
from benchsuite.errors import ConfigError, DataError
from benchsuite.results.atomic import atomic_write_json

log = logging.getLogger(__name__)

#: the 21 classes of VOC segmentation: background, then the 20 VOC classes in devkit order (index = mask value)
VOC_SEGMENTATION_CLASSES = ("background", *VOC_CLASSES)
__all__ = ["LABELMAP", "VOC_SEGMENTATION_CLASSES", "VOID", "VOID_COLOUR", "ClassEncoding", "SegmentationSet",
           "VocSegmentationDataset", "read_voc_segmentation", "voc_palette"]
LAYOUT = ("a Pascal VOC layout folder with JPEGImages/, SegmentationClass/ and ImageSets/Segmentation/ "
          "(SegmentationObject/ and labelmap.txt optional)")
#: image counts of ImageSets/Segmentation in the official releases (the basis of ``DatasetInfo.canonical``)
OFFICIAL_COUNTS = {
    "voc2007": {"train": 209, "val": 213, "trainval": 422, "test": 210},
    "voc2012": {"train": 1464, "val": 1449, "trainval": 2913},
}


# ---------------------------------------------------------------------- colours
def _colour_codes(colours: np.ndarray) -> np.ndarray:
    """``(..., 3)`` uint8 colours as ``(...)`` int64 codes ``r << 16 | g << 8 | b``."""
    c = np.asarray(colours).astype(np.int64)
    return (c[..., 0] << 16) | (c[..., 1] << 8) | c[..., 2]


def _format_colour(code: int) -> str:
    return f"{code >> 16},{(code >> 8) & 255},{code & 255}"


@dataclass(frozen=True)
class LabelMap:
    """The classes of a ``labelmap.txt``: names in file order and their mask colours ``(C, 3)`` uint8."""

    names: tuple[str, ...]
    colours: np.ndarray


def read_labelmap(path: Path) -> LabelMap:
    """Parse a CVAT-style ``labelmap.txt``: ``name:r,g,b:parts:actions`` per line, ``#`` comments.

    A malformed line, a colour component outside 0..255, or a repeated name or colour is a DataError
    naming ``path:line``.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise DataError(f"{path}: unreadable ({exc}); expected name:r,g,b:: lines") from None
    names: list[str] = []
    colours: list[tuple[int, int, int]] = []
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        name, sep, rest = text.partition(":")
        parts = rest.split(":")[0].split(",") if sep else []
        try:
            rgb = tuple(int(p) for p in parts)
        except ValueError:
            rgb = ()
        if not name.strip() or len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
            raise DataError(f"{path}:{number}: {text!r} is not a label line; expected name:r,g,b:: with r, g, b "
                            f"in 0..255 (e.g. person:192,128,128::)")
        name = name.strip()
        if name in names:
            raise DataError(f"{path}:{number}: class {name!r} is listed twice")
        if rgb in colours:
            raise DataError(f"{path}:{number}: colour {','.join(map(str, rgb))} of {name!r} is already the colour "
                            f"of {names[colours.index(rgb)]!r}; every class needs its own colour")
        names.append(name)
        colours.append(rgb)  # type: ignore[arg-type]
    if not names:
        raise DataError(f"{path}: no label line; expected name:r,g,b:: lines (e.g. background:0,0,0::)")
    return LabelMap(tuple(names), np.array(colours, np.uint8).reshape(-1, 3))


# ---------------------------------------------------------------------- masks
_UNKNOWN = -1


class ClassEncoding:
    """How a folder's class masks encode classes (see the module docstring).

    ``classes``: the class names (decoded label maps index them); ``colours``: ``(C, 3)`` uint8 from a
    labelmap, or None when a mask's value is the class index itself (VOC proper).
    """

    def __init__(self, classes: Sequence[str], colours: np.ndarray | None = None):
        self.classes = tuple(classes)
        if not 1 <= len(self.classes) < VOID:
            raise ValueError(f"{len(self.classes)} classes; expected 1 to {VOID - 1}")
        self.colours = None if colours is None else np.asarray(colours, np.uint8).reshape(-1, 3)
        if self.colours is not None and len(self.colours) != len(self.classes):
            raise ValueError(f"{len(self.colours)} colours for {len(self.classes)} classes")
        codes = {} if self.colours is None else {int(c): k for k, c in enumerate(_colour_codes(self.colours))}
        codes.setdefault(int(_colour_codes(np.array(VOID_COLOUR))), VOID)
        self._by_colour = codes

    @classmethod
    def voc(cls) -> ClassEncoding:
        """VOC proper: 21 classes, the mask value is the class index."""
        return cls(VOC_SEGMENTATION_CLASSES)

    @classmethod
    def from_labelmap(cls, labelmap: LabelMap) -> ClassEncoding:
        return cls(labelmap.names, labelmap.colours)

    def colour_to_class(self, codes: np.ndarray) -> np.ndarray:
        """Class index (or VOID, or -1 for an unknown colour) of each colour code ``(r << 16 | g << 8 | b)``."""
        codes = np.asarray(codes, np.int64)
        if self.colours is None:  # VOC proper: the colours of the VOC colour map's first C entries
            table = {int(c): k for k, c in enumerate(_colour_codes(voc_palette(len(self.classes))))}
            table[int(_colour_codes(np.array(VOID_COLOUR)))] = VOID
        else:
            table = self._by_colour
        return np.array([table.get(int(c), _UNKNOWN) for c in codes.reshape(-1)], np.int64).reshape(codes.shape)

    def value_table(self, palette: np.ndarray | None) -> np.ndarray:
        """``(256,)`` int64: the class (VOID, or -1) of each value of a one-channel mask whose values index
        ``palette`` ``(256, 3)`` (None: the VOC colour map). Value 255 is void whatever its colour."""
        if self.colours is None:
            table = np.full(256, _UNKNOWN, np.int64)
            table[: len(self.classes)] = np.arange(len(self.classes))
        else:
            pal = voc_palette() if palette is None else palette
            table = self.colour_to_class(_colour_codes(pal))
        table[VOID] = VOID
        return table


def _palette_of(img: Image.Image) -> np.ndarray | None:
    """A palette PNG's palette as ``(256, 3)`` uint8 (missing entries black), or None."""
    if img.mode not in ("P", "PA"):
        return None
    raw = img.getpalette() or []
    pal = np.zeros(256 * 3, np.uint8)
    pal[: min(len(raw), 768)] = raw[:768]
    return pal.reshape(256, 3)


def _open_mask(path: Path) -> Image.Image:
    try:
        img = Image.open(path)
    except FileNotFoundError:
        raise DataError(f"{path}: missing; expected a PNG mask") from None
    except detection._DECODE_ERRORS as exc:
        raise DataError(f"{path}: cannot decode mask ({type(exc).__name__}: {exc}); expected a PNG mask") from None
    try:
        img.load()
        return img
    except detection._DECODE_ERRORS as exc:
        img.close()
        raise DataError(f"{path}: cannot decode mask ({type(exc).__name__}: {exc}); expected a PNG mask") from None


class _DecodeClock:
    """Adds the time spent inside the ``with`` block to the process's image decoding seconds."""

    def __enter__(self) -> _DecodeClock:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        detection._decode_seconds[0] += time.perf_counter() - self.start


def _values(img: Image.Image, path: Path, what: str) -> np.ndarray:
    """The values of a one-channel mask (palette index or grey level) as ``(H, W)`` int64."""
    if img.mode in ("P", "PA", "L", "LA"):
        band = img.getchannel(0) if img.mode in ("PA", "LA") else img
        return np.asarray(band, np.int64)
    if img.mode in ("I", "I;16", "I;16B", "I;16L"):
        values = np.asarray(img, np.int64)
        if values.size and (values.min() < 0 or values.max() > 255):
            raise DataError(f"{path}: {what} values {int(values.min())}..{int(values.max())}; expected 0..255")
        return values
    raise DataError(f"{path}: {what} in mode {img.mode}; expected a palette, grey-scale or RGB PNG")


def decode_class_mask(path: Path, encoding: ClassEncoding) -> np.ndarray:
    """``(H, W)`` uint8 class indices (``VOID`` for void) of the class mask at ``path``.

    A value or colour that names no class is a DataError naming the file, the value and its colour.
    """
    path = Path(path)
    with _DecodeClock():
        with _open_mask(path) as img:
            if img.mode in ("RGB", "RGBA"):
                codes = _colour_codes(np.asarray(img.convert("RGB")))
                unique, inverse = np.unique(codes, return_inverse=True)
                classes = encoding.colour_to_class(unique)
                bad = classes == _UNKNOWN
                if bad.any():
                    raise DataError(f"{path}: colour {_format_colour(int(unique[bad][0]))} names no class; expected "
                                    f"the colours of {_colour_source(encoding)}, or {_format_colour(0xE0E0C0)} "
                                    f"(void)")
                return classes[inverse.reshape(codes.shape)].astype(np.uint8)
            values = _values(img, path, "class mask")
            palette = _palette_of(img)
        table = encoding.value_table(palette)
        out = table[values]
        if (out == _UNKNOWN).any():
            v = int(values[out == _UNKNOWN][0])
            colour = palette[v] if palette is not None else voc_palette()[v]
            valid = (f"0..{len(encoding.classes) - 1}" if encoding.colours is None
                     else f"the values whose colour is one of {_colour_source(encoding)}")
            raise DataError(f"{path}: value {v} (colour {','.join(map(str, colour.tolist()))}) names no class; "
                            f"expected {valid}, or {VOID} (void)")
        return out.astype(np.uint8)


def _colour_source(encoding: ClassEncoding) -> str:
    if encoding.colours is None:
        return f"the VOC colour map's first {len(encoding.classes)} entries"
    return f"the {len(encoding.classes)} classes of {LABELMAP}"


def decode_instance_mask(path: Path) -> np.ndarray:
    """``(H, W)`` uint8 object numbers of the instance mask at ``path``: 0 none, ``1..254`` objects, 255 void."""
    path = Path(path)
    with _DecodeClock(), _open_mask(path) as img:
        if img.mode in ("RGB", "RGBA"):
            codes = _colour_codes(np.asarray(img.convert("RGB")))
            unique, inverse = np.unique(codes, return_inverse=True)
            lookup = {int(c): i for i, c in enumerate(_colour_codes(voc_palette()))}
            numbers = np.array([lookup.get(int(c), _UNKNOWN) for c in unique], np.int64)
            if (numbers == _UNKNOWN).any():
                raise DataError(f"{path}: colour {_format_colour(int(unique[numbers == _UNKNOWN][0]))} is not a "
                                f"colour of the VOC colour map; expected object k drawn in the map's colour k")
            return numbers[inverse.reshape(codes.shape)].astype(np.uint8)
        return _values(img, path, "instance mask").astype(np.uint8)


# ---------------------------------------------------------------------- samples and sets
@dataclass(frozen=True)
class SegmentationSample:
    """One image of a segmentation split.

    Attributes:
        image_id: the file stem (e.g. ``"FudanPed00001"``).
        path: the image file.
        mask_path: its ``SegmentationClass`` PNG.
        instance_path: its ``SegmentationObject`` PNG, or None.
        width, height: the image size in pixels (masks have the same).
    """

    image_id: str
    path: Path
    mask_path: Path
    instance_path: Path | None
    width: int
    height: int


class SegmentationSet(SampleSequence[SegmentationSample]):
    """The images of one split with their masks, decoded on demand.

    Attributes:
        samples: one :class:`SegmentationSample` per image, in split order.
        classes: class names; label maps index them (``VOID`` marks void pixels).
        encoding: how the masks encode classes.
        name: ``"<dataset>/<split>"``, for messages.
    """

    def __init__(self, samples: Sequence[SegmentationSample], encoding: ClassEncoding, name: str = ""):
        super().__init__(samples, encoding.classes, name)
        self.encoding = encoding

    def __repr__(self) -> str:
        return f"SegmentationSet({self.name!r}, images={len(self)}, classes={self.classes})"

    @property
    def has_instances(self) -> bool:
        """True when every image has an instance mask."""
        return bool(self.samples) and all(s.instance_path is not None for s in self.samples)

    def _check_shape(self, s: SegmentationSample, array: np.ndarray, path: Path) -> np.ndarray:
        if array.shape[:2] != (s.height, s.width):
            raise DataError(f"{path}: decoded {array.shape[1]}x{array.shape[0]} pixels, expected {s.width}x{s.height} "
                            f"(the image's size); the file changed after the data set was opened")
        return array

    def load_image(self, i: int) -> np.ndarray:
        """Image ``i`` as ``(H, W, 3)`` uint8 RGB."""
        s = self.samples[i]
        return self._check_shape(s, detection.read_rgb(s.path), s.path)

    def load_mask(self, i: int) -> np.ndarray:
        """The label map of image ``i``: ``(H, W)`` uint8 class indices, ``VOID`` (255) where void."""
        s = self.samples[i]
        return self._check_shape(s, decode_class_mask(s.mask_path, self.encoding), s.mask_path)

    def load_instances(self, i: int) -> np.ndarray | None:
        """The instance map of image ``i`` (``(H, W)`` uint8: 0 none, 1..254 objects, 255 void), or None."""
        s = self.samples[i]
        if s.instance_path is None:
            return None
        return self._check_shape(s, decode_instance_mask(s.instance_path), s.instance_path)

    def iter_samples(self, instances: bool = False
                     ) -> Iterator[tuple[SegmentationSample, np.ndarray, np.ndarray, np.ndarray | None]]:
        """``(sample, image, label map, instance map or None)`` in order, one image decoded at a time
        (instance maps only when ``instances``)."""
        for i, s in enumerate(self.samples):
            yield s, self.load_image(i), self.load_mask(i), self.load_instances(i) if instances else None

    def subset(self, indices: Sequence[int] | np.ndarray) -> SegmentationSet:
        """The images at ``indices`` (in that order), same classes and name."""
        picked = [self.samples[int(i)] for i in np.asarray(indices, dtype=np.int64).reshape(-1)]
        return SegmentationSet(picked, self.encoding, self.name)

    def class_pixel_counts(self) -> np.ndarray:
        """``(C,)`` int64 non-void pixels per class over the set (decodes every mask)."""
        counts = np.zeros(self.num_classes, np.int64)
        for i in range(len(self)):
            m = self.load_mask(i)
            counts += np.bincount(m[m != VOID].ravel(), minlength=self.num_classes)[: self.num_classes]
        return counts


# ---------------------------------------------------------------------- the folder
@dataclass
class SegmentationFolder:
    """What :func:`read_voc_segmentation` found in a folder.

    Attributes:
        folder: the VOC folder.
        encoding: the classes and how masks encode them.
        samples: every image listed in any ImageSets/Segmentation split file, sorted by id.
        image_sets: split name -> ``(n,)`` int64 indices into ``samples`` in file order.
        fingerprint: 16 hex digits of sha256 over the classes (and colours), the mask files' bytes and the image
            file names and byte sizes.
        synthetic: True when the folder holds the synthetic generator's marker file.
        has_labelmap: True when the classes came from ``labelmap.txt``.
    """

    folder: Path
    encoding: ClassEncoding
    samples: list[SegmentationSample]
    image_sets: dict[str, np.ndarray]
    fingerprint: str
    synthetic: bool = False
    has_labelmap: bool = False

    @property
    def classes(self) -> tuple[str, ...]:
        return self.encoding.classes


def _find_image(images: Path, image_id: str) -> Path:
    for suffix in IMAGE_SUFFIXES:
        path = images / f"{image_id}{suffix}"
        if path.is_file():
            return path
    raise DataError(f"{images / (image_id + '.jpg')}: missing; ImageSets/Segmentation lists {image_id} but "
                    f"JPEGImages/ has no image of that name")


def has_segmentation(folder: Path) -> bool:
    """True when ``folder`` has the segmentation part of the VOC layout (masks and their split lists)."""
    folder = Path(folder)
    return (folder / "SegmentationClass").is_dir() and (folder / "ImageSets" / "Segmentation").is_dir()


def read_voc_segmentation(folder: Path, encoding: ClassEncoding | None = None) -> SegmentationFolder:
    """Read the segmentation part of a Pascal VOC layout folder (headers only; masks decode lazily).

    ``encoding``: the classes and how masks encode them; None: from ``labelmap.txt`` where the folder has
    one, else VOC proper (:meth:`ClassEncoding.voc`). Every id of every ``ImageSets/Segmentation`` file must
    have an image and a class mask of the image's size (and, where ``SegmentationObject/<id>.png`` exists, an
    instance mask of that size); anything else is a DataError naming the file.
    """
    folder = Path(folder)
    lists = check_voc_layout(folder, ("JPEGImages", "SegmentationClass"), "Segmentation", LAYOUT)
    labelmap_path = folder / LABELMAP
    has_labelmap = labelmap_path.is_file()
    if encoding is None:
        encoding = ClassEncoding.from_labelmap(read_labelmap(labelmap_path)) if has_labelmap else ClassEncoding.voc()
    ids_per_split = {s: _read_image_set(lists / f"{s}.txt") for s in SPLITS if (lists / f"{s}.txt").is_file()}
    all_ids = sorted(set().union(*ids_per_split.values()))
    h = hashlib.sha256()
    h.update(("classes:" + "\0".join(encoding.classes)).encode())
    if encoding.colours is not None:
        h.update(encoding.colours.tobytes())
    samples = []
    objects = folder / "SegmentationObject"
    for image_id in all_ids:
        path = _find_image(folder / "JPEGImages", image_id)
        width, height = detection.image_size(path)
        mask_path = folder / "SegmentationClass" / f"{image_id}.png"
        instance_path: Path | None = objects / f"{image_id}.png"
        assert instance_path is not None
        if not instance_path.is_file():
            instance_path = None
        for p in (mask_path, instance_path):
            if p is None:
                continue
            size = detection.image_size(p)
            if size != (width, height):
                raise DataError(f"{p}: mask of {size[0]}x{size[1]} pixels for the {width}x{height} image "
                                f"{path.name}; expected a mask of the image's size")
            h.update(f"\0{p.parent.name}/{p.name}:".encode())
            h.update(hashlib.sha256(p.read_bytes()).digest())
        h.update(f"\0{path.name}:{path.stat().st_size}".encode())
        samples.append(SegmentationSample(image_id, path, mask_path, instance_path, width, height))
    position = {s.image_id: i for i, s in enumerate(samples)}
    image_sets = {s: np.array([position[i] for i in ids], np.int64) for s, ids in ids_per_split.items()}
    return SegmentationFolder(folder, encoding, samples, image_sets, h.hexdigest()[:16],
                              (folder / synthetic_voc.MARKER).is_file(), has_labelmap)


# ---------------------------------------------------------------------- the data set
def _seeded_val(pool: np.ndarray, count: int) -> np.ndarray:
    """``count`` positions of ``pool`` drawn with ``SPLIT_SEED`` (masks are not decoded to stratify by class)."""
    return stratified_choice(np.zeros(len(pool), np.int64), count, SPLIT_SEED)


class VocSegmentationDataset:
    """A VOC layout folder's segmentation part as a benchmark data set with fixed train / val / trainval / test.

    The same interface as :class:`benchsuite.data.voc.VocDataset` (``name``, ``info``, ``load``,
    ``manifest``, ``write_manifest``), with ``info.annotations == ["masks"]``; ``load`` returns a
    :class:`SegmentationSet`. ``official``: ``"voc2007"`` / ``"voc2012"`` for the releases (their split sizes
    decide ``canonical``); ``test_from_val``: score the official val split as test (VOC2012).
    """

    def __init__(self, folder: Path, name: str, origin: str | None = None, encoding: ClassEncoding | None = None,
                 test_from_val: bool = False, official: str | None = None, description: str | None = None):
        self.folder = Path(folder)
        self.name = name
        self.data = read_voc_segmentation(self.folder, encoding)
        self.origin = origin or ("synthetic" if self.data.synthetic else "real")
        self.official = official
        resolved = resolve_voc_splits(self.data.image_sets, self.folder / "ImageSets" / "Segmentation",
                                      [s.image_id for s in self.data.samples], _seeded_val, "seeded", test_from_val,
                                      labels="masks")
        self.splits = resolved.splits
        self._split_notes = resolved.notes
        self.info = self._describe(description)

    # ------------------------------------------------------------------ provenance
    def split_ids(self, split: str) -> list[str]:
        return [self.data.samples[i].image_id for i in self._indices(split)]

    def _describe(self, description: str | None) -> DatasetInfo:
        d = self.data
        canonical = official_sizes(self.origin, OFFICIAL_COUNTS.get(self.official or ""), d.image_sets)
        n = len(d.classes)
        if description is None:
            if self.origin == "synthetic":
                description = ("synthetic VOC-layout segmentation stand-in (generated shapes, not real images): "
                               "numbers are not comparable with published VOC results")
            elif self.official is not None:
                title = {"voc2007": "Pascal VOC 2007", "voc2012": "Pascal VOC 2012"}[self.official]
                description = (f"{title} segmentation, official split sizes" if canonical else
                               f"{title} segmentation layout, split sizes differ from the official release")
            else:
                description = f"Pascal VOC layout folder {d.folder.name}, segmentation masks ({n} classes)"
        notes = list(self._split_notes)
        with_instances = sum(s.instance_path is not None for s in d.samples)
        notes.append(f"{len(d.samples)} segmented images ({with_instances} with instance masks); classes "
                     f"{'from ' + LABELMAP if d.has_labelmap else 'of VOC (mask value = class index)'}")
        if canonical is False and self.official and self.origin == "real":
            have = {s: len(d.image_sets.get(s, ())) for s in OFFICIAL_COUNTS[self.official]}
            notes.append(f"images per split {have}, the official release has {OFFICIAL_COUNTS[self.official]}")
        return DatasetInfo(
            name=self.name,
            annotations=[MASKS],
            origin=self.origin,
            canonical=canonical,
            fingerprint=d.fingerprint,
            root=str(d.folder),
            classes=list(d.classes),
            split_counts={s: len(v) for s, v in self.splits.items()},
            split_fingerprints={s: _split_fingerprint(d.fingerprint, s, self.split_ids(s)) for s in self.splits},
            description=description,
            notes=notes,
        )

    # ------------------------------------------------------------------ access
    def _indices(self, split: str) -> np.ndarray:
        return split_indices(self.splits, split, self.name)

    def load(self, split: str, max_images: int | None = None) -> SegmentationSet:
        """One split as a :class:`SegmentationSet` (file names in memory, pixels decoded on demand).

        ``max_images`` takes a fixed seeded subset (``SUBSET_SEED``, in split order), the same for every pipeline.
        """
        ds = SegmentationSet([self.data.samples[i] for i in self._indices(split)], self.data.encoding,
                             f"{self.name}/{split}")
        if max_images is not None and max_images < len(ds):
            ds = ds.subset(stratified_choice(np.zeros(len(ds), np.int64), max(0, max_images), SUBSET_SEED))
        return ds

    def manifest(self) -> dict[str, Any]:
        return split_manifest(self.info, self.origin, {s: self.split_ids(s) for s in self.splits}, SUBSET_SEED,
                              annotations=MASKS)

    def write_manifest(self, folder: Path) -> Path:
        """Write ``<folder>/<name>.segmentation.split.json`` (atomically): apart from the detection manifest of
        the same folder, whose splits are ``ImageSets/Main``'s."""
        path = Path(folder) / f"{self.name}.segmentation.split.json"
        atomic_write_json(path, self.manifest())
        return path


# ---------------------------------------------------------------------- check data
def tiny_splits(folder: Path) -> tuple[SegmentationSet, SegmentationSet, SegmentationSet]:
    """Tiny splits for the conformance checks (:mod:`benchsuite.testing`): scenes of the default synthetic
    segmentation variant written into ``folder`` (PNG images; grey-scale class and instance masks whose value is the
    class index and object number), 8 train, 3 val and 3 test images; every class covers pixels in train and every
    train image holds an object. Deterministic, in well under a second."""
    from benchsuite.data import synthetic_segmentation as synth

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    classes = ("background", *synth.VARIANTS["default"].classes)
    samples: list[SegmentationSample] = []
    seen = np.zeros(len(classes), bool)
    index = 0
    while len(samples) < 14:
        if index > 500:  # the generator's seed is fixed: this never happens unless the generator changed
            raise RuntimeError("voc_segmentation.tiny_splits: cannot draw a tiny set with every class in train")
        scene = synth.generate_scene("default", index, seed=97)
        index += 1
        present = np.bincount(scene.labels[scene.labels != VOID].ravel(), minlength=len(classes)) > 0
        if len(samples) < 8 and not present[1:].any():
            continue  # the training images all hold objects
        if len(samples) == 7 and not (seen | present).all():
            continue
        if len(samples) < 8:
            seen |= present
        image_id = f"tiny{index:03d}"
        paths = [folder / f"{image_id}{suffix}.png" for suffix in ("", "-class", "-object")]
        for array, path in zip((scene.image, scene.labels, scene.instances), paths):
            Image.fromarray(np.ascontiguousarray(array)).save(path, compress_level=1)
        h, w = scene.labels.shape
        samples.append(SegmentationSample(image_id, paths[0], paths[1], paths[2], w, h))
    encoding = ClassEncoding(classes)
    return (SegmentationSet(samples[:8], encoding, "tiny-seg/train"), SegmentationSet(samples[8:11], encoding,
            "tiny-seg/val"), SegmentationSet(samples[11:], encoding, "tiny-seg/test"))


# ---------------------------------------------------------------------- openers (benchsuite.data.voc_formats's)
def open_synthetic_segmentation(req: OpenRequest) -> VocSegmentationDataset:
    """``synthetic-voc`` (default stand-in) or ``synthetic-voc:VARIANT`` for a segmentation variant
    (:data:`benchsuite.data.synthetic_segmentation.VARIANTS`), generated once into the cache folder."""
    from benchsuite.data import synthetic_segmentation as synth

    _, _, variant = req.spec.partition(":")
    variant = variant.strip() or None
    if variant is not None and variant not in synth.VARIANTS:
        raise ConfigError(f"unknown synthetic segmentation variant {variant!r} in {req.spec!r}; expected "
                          f"synthetic-voc or synthetic-voc:{{{','.join(synth.VARIANTS)}}}")
    folder = synth.ensure_synthetic_segmentation(req.cache_dir, variant)
    if variant is None:
        return VocSegmentationDataset(folder, "synthetic-voc", origin="synthetic")
    return VocSegmentationDataset(folder, f"synthetic-voc-{variant}", origin="synthetic",
                                  description=f"synthetic VOC-layout segmentation variant {variant!r} (generated "
                                              f"shapes, not real images): {synth.VARIANTS[variant].description}")


def open_voc_segmentation_year(req: OpenRequest, year: int) -> VocSegmentationDataset:
    """``voc2007`` / ``voc2012``: the release under the data root, else the synthetic stand-in (with a warning)."""
    if req.force_synthetic:
        return open_synthetic_segmentation(OpenRequest("synthetic-voc", req.data_root, req.cache_dir, True))
    folder = find_voc(req.data_root, year)
    if folder is None or not has_segmentation(folder):
        log.warning("no VOC%d segmentation under %s (expected VOCdevkit/VOC%d/SegmentationClass/); running on the "
                    "synthetic stand-in", year, req.data_root, year)
        return open_synthetic_segmentation(OpenRequest("synthetic-voc", req.data_root, req.cache_dir, True))
    return VocSegmentationDataset(folder, f"voc{year}", encoding=ClassEncoding.voc(), test_from_val=year == 2012,
                                  official=f"voc{year}")


def open_voc_segmentation_folder(req: OpenRequest) -> VocSegmentationDataset:
    """``voc:PATH``: any VOC layout folder with segmentation masks, named after the folder as for detection."""
    folder, name = voc_folder_of_spec(req.spec)
    return VocSegmentationDataset(folder, name)
