"""Deterministic synthetic segmentation sets with pixel masks, written in the real Pascal VOC layout.

The objects and backgrounds are those of the synthetic detection set (:mod:`benchsuite.data.synthetic_voc`:
anti-aliased cars, pedestrians and signs on cluttered, textured backgrounds), plus thin ``wire`` polylines;
what is new is that every pixel's class and object are kept. Per image the generator writes::

    JPEGImages/<id>.jpg             the image (quality 92; single-channel for the grey variant)
    SegmentationClass/<id>.png      palette PNG, VOC colour map: the class's mask value (VOC's own index where
                                    one fits: car 7, pedestrian 15) per pixel, 255 void
    SegmentationObject/<id>.png     palette PNG: 0 background, 1..K the visible objects in drawing order, 255 void
    Annotations/<id>.xml            the objects' boxes, so the folder is a detection set too
    ImageSets/Segmentation/{train,val,trainval,test}.txt and the same lists under ImageSets/Main/
    labelmap.txt                    ``background:0,0,0::`` and one ``name:r,g,b::`` line per class (CVAT's layout)
    SYNTHETIC.json                  the marker (generator, variant, version, counts, stats); written last

A pixel belongs to the topmost object whose coverage (alpha) there is at least 0.5. Pixels on an object's
anti-aliased outline (coverage strictly between 0.15 and 0.85, not covered by a later object) are void, as VOC
marks a band of void along object outlines; the ``thin`` variant has no void (its objects are mostly outline).

Variants (:data:`VARIANTS`), each a few dozen images small enough for the smoke profile:

``default``  cars, pedestrians and signs, 1-5 per image, small, medium and large (COCO's area buckets);
``tiny``     10-25 signs 8-24 px across per image: small objects only;
``thin``     1-4 dark wires (polylines 1.5-4 px wide) per image: thin structures, boundary-dominated;
``grey``     pedestrians on single-channel (8-bit grey) JPEGs.

Image ``i`` of a variant depends only on ``(SEED, variant, i)``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from benchsuite.data import synthetic_voc
from benchsuite.data.synthetic_voc import JPEG_QUALITY, MARKER, SEED, SS, SyntheticObject, annotation_xml, render_object
from benchsuite.data.voc_colours import LABELMAP, VOID, voc_palette

VERSION = 1  # bump when the generator changes: the cache folder and the fingerprint follow it
FOLDER_NAME = "SyntheticVOCSeg"
#: mask value of each class (VOC's index where the class is a VOC class; the labelmap gives its colour)
MASK_VALUES = {"background": 0, "car": 7, "pedestrian": 15, "sign": 20, "wire": 10}
#: an outline pixel (void) has coverage strictly between these
EDGE_ALPHA = (0.15, 0.85)
MAX_OCCLUSION = 0.7  # a placement that would hide more of an earlier object's visible pixels is tried again
DIFFICULT_SIDE = synthetic_voc.TINY  # detection annotations: objects shorter than this on their longer side


@dataclass(frozen=True)
class Variant(synthetic_voc.Variant):
    """One shape of segmentation data (the detection variants' fields; ``classes`` exclude background, ``counts`` are
    images per train / val / test), and ``void_edges``: whether object outlines are void."""

    void_edges: bool = True


VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("default", 0, ("car", "pedestrian", "sign"), {"train": 24, "val": 8, "test": 16},
            "cars, pedestrians and signs, 1-5 per image, 12-150 px on the longer side; void along object outlines"),
    Variant("tiny", 1, ("sign",), {"train": 16, "val": 6, "test": 10},
            "tiny objects: 10-25 round signs 8-24 px across per image"),
    Variant("thin", 2, ("wire",), {"train": 16, "val": 6, "test": 10},
            "thin structures: 1-4 dark wires (polylines 1.5-4 px wide) per image, no void", void_edges=False),
    Variant("grey", 3, ("pedestrian",), {"train": 16, "val": 6, "test": 10},
            "grey images: single-channel (8-bit grey) JPEGs, 1-4 pedestrians 40-150 px high per image", channels=1),
)}


@dataclass
class SegmentationScene:
    """One generated image and its truth.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB, or ``(H, W)`` for single-channel variants.
        labels: ``(H, W)`` uint8 class index into ``("background", *variant.classes)``, ``VOID`` where void.
        instances: ``(H, W)`` uint8 0 background, ``1..K`` objects, ``VOID`` where void.
        objects: the K objects (name, box of visible pixels, difficult, truncated), in instance order.
    """

    image: np.ndarray
    labels: np.ndarray
    instances: np.ndarray
    objects: list[SyntheticObject]


class _Canvas:
    """A float image being drawn on, with the per-pixel topmost object and the outline (void) pixels."""

    def __init__(self, image: np.ndarray):
        self.image = image
        h, w = image.shape[:2]
        self.top = np.full((h, w), -1, np.int32)
        self.void = np.zeros((h, w), bool)
        self.names: list[str] = []
        self.area: list[int] = []  # visible pixels when drawn
        self.full: list[int] = []  # pixels of the whole shape (inside the image or not)

    def place(self, name: str, rgb: np.ndarray, alpha: np.ndarray, x0: int, y0: int, void_edges: bool) -> bool:
        """Draw a premultiplied patch with its coverage at ``(x0, y0)`` unless it would hide more than
        :data:`MAX_OCCLUSION` of an earlier object or less than 40% of it falls inside the image."""
        h, w = self.top.shape
        ph, pw = alpha.shape
        ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x0 + pw, w), min(y0 + ph, h)
        if ix1 <= ix0 or iy1 <= iy0:
            return False
        sub = (slice(iy0 - y0, iy1 - y0), slice(ix0 - x0, ix1 - x0))
        region = (slice(iy0, iy1), slice(ix0, ix1))
        mask = alpha >= 0.5
        inside, total = int(mask[sub].sum()), int(mask.sum())
        if total == 0 or inside < 0.4 * total:
            return False
        covered = self.top[region][mask[sub]]
        covered = covered[covered >= 0]
        if len(covered):
            hidden = np.bincount(covered, minlength=len(self.names))
            visible = np.bincount(self.top[self.top >= 0], minlength=len(self.names))
            if any(hidden[i] and visible[i] - hidden[i] < (1 - MAX_OCCLUSION) * self.area[i]
                   for i in range(len(self.names))):
                return False
        a = alpha[sub]
        self.image[region] = self.image[region] * (1 - a[..., None]) + rgb[sub]
        self.top[region][mask[sub]] = len(self.names)
        if void_edges:
            edge = (a > EDGE_ALPHA[0]) & (a < EDGE_ALPHA[1])
            self.void[region] = (self.void[region] & (a < EDGE_ALPHA[1])) | edge
        self.names.append(name)
        self.area.append(inside)
        self.full.append(total)
        return True

    def truth(self, classes: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, list[SyntheticObject]]:
        """``(labels, instances, objects)``: objects hidden entirely are dropped and the rest renumbered."""
        index = {c: k for k, c in enumerate(classes)}
        labels = np.zeros(self.top.shape, np.uint8)
        instances = np.zeros(self.top.shape, np.uint8)
        objects = []
        for i, name in enumerate(self.names):
            pixels = self.top == i
            if not pixels.any():
                continue
            ys, xs = np.nonzero(pixels)
            objects.append(SyntheticObject(
                name, (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1),
                difficult=bool(max(xs.max() - xs.min(), ys.max() - ys.min()) + 1 < DIFFICULT_SIDE
                               or len(xs) < 0.5 * self.area[i]),
                truncated=bool(self.area[i] < 0.98 * self.full[i])))
            labels[pixels] = index[name]
            instances[pixels] = len(objects)
        if len(objects) >= VOID:
            raise ValueError(f"{len(objects)} objects in one image; an instance mask holds at most {VOID - 1}")
        labels[self.void] = VOID
        instances[self.void] = VOID
        return labels, instances, objects


def _position(rng: np.random.Generator, w: int, h: int, ow: int, oh: int, border_p: float) -> tuple[int, int]:
    """Top-left corner of a ``ow x oh`` patch in a ``w x h`` image; with chance ``border_p`` it may cross the border."""
    if rng.random() < border_p:
        return int(rng.integers(-ow // 2, w - ow // 2)), int(rng.integers(-oh // 3, h - oh // 2))
    return int(rng.integers(0, max(w - ow, 0) + 1)), int(rng.integers(0, max(h - oh, 0) + 1))


def _add_objects(canvas: _Canvas, name: str, n: int, size: Callable[[], tuple[int, int]], rng: np.random.Generator,
                 border_p: float, void_edges: bool, attempts: int = 30) -> None:
    h, w = canvas.top.shape
    for _ in range(n):
        for _attempt in range(attempts):
            ow, oh = size()
            ow, oh = min(ow, w), min(oh, h)
            x0, y0 = _position(rng, w, h, ow, oh, border_p)
            rgb, alpha = render_object(name, ow, oh, rng)
            if canvas.place(name, rgb, alpha, x0, y0, void_edges):
                break


def _wire(rng: np.random.Generator, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """A full-image patch with one dark wire: a sagging polyline 1.5-4 px wide across part of the image.
    Returns ``(premultiplied RGB (h, w, 3), coverage (h, w))`` float32."""
    canvas = Image.new("L", (w * SS, h * SS), 0)
    x_start, x_end = sorted(rng.uniform(-0.1, 1.1, 2) * w)
    x_end = max(x_end, x_start + 0.3 * w)
    y_start, y_end = rng.uniform(0.05, 0.95, 2) * h
    sag = rng.uniform(0.02, 0.2) * h
    t = np.linspace(0.0, 1.0, 24)
    xs = x_start + (x_end - x_start) * t
    ys = y_start + (y_end - y_start) * t + sag * 4 * t * (1 - t)
    if rng.random() < 0.35:  # some wires are upright: swap the roles of x and y (a pole, a cable down a wall)
        xs, ys = ys / h * w, xs / w * h
    width = rng.uniform(1.5, 4.0)
    ImageDraw.Draw(canvas).line([(float(x) * SS, float(y) * SS) for x, y in zip(xs, ys)], fill=255,
                                width=max(1, round(width * SS)), joint="curve")
    alpha = np.asarray(canvas.resize((w, h), Image.Resampling.BOX), np.float32) / 255.0
    tone = rng.uniform(10, 70)
    colour = np.array([tone, tone, tone], np.float32) + rng.uniform(-8, 8, 3).astype(np.float32)
    return alpha[..., None] * np.clip(colour, 0, 255), alpha


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def generate_scene(variant: str, index: int, seed: int = SEED) -> SegmentationScene:
    """Image ``index`` of ``variant`` with its label and instance maps; depends only on ``(seed, variant, index)``."""
    v = VARIANTS[variant]
    rng = np.random.default_rng([seed, 3000 + v.code, index])
    w, h = int(rng.integers(200, 301)), int(rng.integers(160, 241))
    canvas = _Canvas(synthetic_voc._background(rng, w, h))
    if variant == "default":
        for _ in range(int(rng.integers(1, 6))):
            name = v.classes[int(rng.integers(len(v.classes)))]
            _add_objects(canvas, name, 1, lambda name=name: synthetic_voc._object_size(name, rng, w, h), rng, 0.2,
                         v.void_edges)
    elif variant == "tiny":
        def side() -> tuple[int, int]:
            d = round(_log_uniform(rng, 8.0, 24.0))
            return d, d

        _add_objects(canvas, "sign", int(rng.integers(10, 26)), side, rng, 0.0, v.void_edges)
    elif variant == "thin":
        for _ in range(int(rng.integers(1, 5))):
            for _attempt in range(10):
                rgb, alpha = _wire(rng, w, h)
                if canvas.place("wire", rgb, alpha, 0, 0, v.void_edges):
                    break
    elif variant == "grey":
        aspect = synthetic_voc.ASPECT["pedestrian"]

        def tall() -> tuple[int, int]:
            oh = _log_uniform(rng, 40.0, 150.0)
            return max(4, round(oh * rng.uniform(*aspect))), max(4, round(oh))

        _add_objects(canvas, "pedestrian", int(rng.integers(1, 5)), tall, rng, 0.15, v.void_edges)
    else:  # pragma: no cover - VARIANTS lists every variant handled above
        raise KeyError(variant)
    image = synthetic_voc._finish(canvas.image, rng)
    if v.channels == 1:
        image = np.asarray(Image.fromarray(image).convert("L"))
    labels, instances, objects = canvas.truth(("background", *v.classes))
    return SegmentationScene(image, labels, instances, objects)


def _palette_png(values: np.ndarray, path: Path) -> None:
    """Save ``(H, W)`` uint8 values as a palette PNG with the VOC colour map."""
    values = np.ascontiguousarray(values, np.uint8)
    img = Image.frombytes("P", (values.shape[1], values.shape[0]), values.tobytes())
    img.putpalette(voc_palette().reshape(-1).tolist())
    img.save(path, optimize=True)


def labelmap_text(classes: tuple[str, ...]) -> str:
    """``labelmap.txt`` for ``("background", *classes)``: each class in the VOC colour of its mask value."""
    palette = voc_palette()
    lines = ["# label:color_rgb:parts:actions"]
    for name in ("background", *classes):
        r, g, b = palette[MASK_VALUES[name]].tolist()
        lines.append(f"{name}:{r},{g},{b}::")
    return "\n".join(lines) + "\n"


def write_variant(folder: Path, variant: str = "default", counts: dict[str, int] | None = None,
                  seed: int = SEED) -> dict[str, int]:
    """Generate ``variant`` into ``folder`` (VOC layout, see the module docstring); returns its statistics.

    ``counts``: images per train / val / test (default the variant's). Ids ``000001``... are trainval first, then
    test; val is a seeded draw from trainval.
    """
    if variant not in VARIANTS:
        raise KeyError(f"unknown synthetic segmentation variant {variant!r}; expected one of: {', '.join(VARIANTS)}")
    v = VARIANTS[variant]
    counts = dict(v.counts if counts is None else counts)
    folder = Path(folder)
    for sub in ("JPEGImages", "SegmentationClass", "SegmentationObject", "Annotations", "ImageSets/Segmentation",
                "ImageSets/Main"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    classes = ("background", *v.classes)
    values = np.full(256, VOID, np.uint8)
    values[: len(classes)] = [MASK_VALUES[c] for c in classes]
    n_trainval = counts["train"] + counts["val"]
    ids = [f"{i + 1:06d}" for i in range(n_trainval + counts["test"])]
    stats = {"images": len(ids), "objects": 0, "void_pixels": 0, "pixels": 0, "max_objects_per_image": 0}
    for i, image_id in enumerate(ids):
        scene = generate_scene(variant, i, seed)
        Image.fromarray(scene.image).save(folder / "JPEGImages" / f"{image_id}.jpg", quality=JPEG_QUALITY)
        _palette_png(values[scene.labels], folder / "SegmentationClass" / f"{image_id}.png")
        _palette_png(scene.instances, folder / "SegmentationObject" / f"{image_id}.png")
        height, width = scene.labels.shape
        (folder / "Annotations" / f"{image_id}.xml").write_bytes(annotation_xml(
            image_id, f"{image_id}.jpg", width, height, scene.objects, f"{FOLDER_NAME}-{variant}",
            f"benchsuite synthetic VOC segmentation {variant} v{VERSION}", v.channels))
        stats["objects"] += len(scene.objects)
        stats["void_pixels"] += int((scene.labels == VOID).sum())
        stats["pixels"] += scene.labels.size
        stats["max_objects_per_image"] = max(stats["max_objects_per_image"], len(scene.objects))
    trainval = ids[:n_trainval]
    val_pos = set(np.random.default_rng([seed, 10**6, 3000 + v.code]).permutation(n_trainval)[: counts["val"]].tolist())
    splits = {
        "train": [x for j, x in enumerate(trainval) if j not in val_pos],
        "val": [x for j, x in enumerate(trainval) if j in val_pos],
        "trainval": trainval,
        "test": ids[n_trainval:],
    }
    for split, members in splits.items():
        for lists in ("Segmentation", "Main"):
            (folder / "ImageSets" / lists / f"{split}.txt").write_text("".join(f"{x}\n" for x in members))
    (folder / LABELMAP).write_text(labelmap_text(v.classes))
    (folder / MARKER).write_text(json.dumps({"generator": __name__, "variant": variant, "version": VERSION,
                                             "seed": seed, "classes": list(classes), "counts": counts,
                                             "description": v.description, "stats": stats}, indent=2) + "\n")
    return stats


def folder_name(variant: str) -> str:
    return FOLDER_NAME if variant == "default" else f"{FOLDER_NAME}-{variant}"


def ensure_synthetic_segmentation(cache_dir: Path, variant: str | None = None) -> Path:
    """The variant's folder ``<cache_dir>/synthetic/voc-seg-<variant>-v<VERSION>/<folder_name>``, generated once
    (into a temporary sibling renamed into place, as :func:`benchsuite.data.synthetic_voc.ensure_synthetic_voc`).
    ``variant`` None is ``"default"``."""
    variant = variant or "default"
    if variant not in VARIANTS:
        raise KeyError(f"unknown synthetic segmentation variant {variant!r}; expected one of: {', '.join(VARIANTS)}")
    folder = Path(cache_dir) / "synthetic" / f"voc-seg-{variant}-v{VERSION}" / folder_name(variant)
    return synthetic_voc._generate_once(folder, lambda tmp: write_variant(tmp, variant),
                                        f"the synthetic segmentation set {variant!r}")
