"""A deterministic synthetic detection set, written in the real Pascal VOC layout.

Three classes with distinct shapes *and* aspect ratios, so that window-shape logic is exercised:

``car``
    wide (width : height about 2 : 1): a body with a cabin, windows, lights and two dark wheels.
``pedestrian``
    tall (about 1 : 2.5): a stick-figure silhouette, head, torso, arms and striding legs.
``sign``
    square (1 : 1): a round sign face, a coloured rim around a light face with a bar across it.

Each object has a consistent shape per class and varies in colour, shading, size, stride and facing.
They are drawn with anti-aliased edges (3x supersampling) onto textured, cluttered backgrounds
(sky / ground gradients, low-frequency noise, random lines, poles, boxes and blobs, pixel noise),
0 to 6 per image (some images have none), longer sides from 12 to 190 pixels (COCO small, medium and
large all present). Objects may overlap: a box is the extent of the object's *visible* pixels, as
VOC annotates, and objects more than half hidden, or under 16 pixels on the longer side, are marked
``difficult``. Some objects cross the image border: they are clipped and marked ``truncated``.

The set is written as ``JPEGImages/*.jpg`` (quality 92), ``Annotations/*.xml`` and
``ImageSets/Main/{train,val,trainval,test}.txt`` (plus ``<class>_<split>.txt``), so the same reader
runs on it as on real VOC data; the ``SYNTHETIC.json`` marker makes every record say ``origin:
synthetic``. Image ``i`` depends only on ``(SEED, i)``, so a smaller set is a prefix of the full one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from benchsuite.data import synthetic_faces
from benchsuite.data.detection import DetectionSample, DetectionSet
from benchsuite.data.synthetic_scene import OCCLUDED as OCCLUDED  # re-exported: the annotation rule's constants
from benchsuite.data.synthetic_scene import TINY, SyntheticObject, visible_objects
from benchsuite.data.synthetic_scene import background as _background
from benchsuite.data.synthetic_scene import finish as _finish
from benchsuite.data.synthetic_scene import log_uniform as _log_uniform
from benchsuite.data.synthetic_scene import random_colour as _colour

log = logging.getLogger(__name__)

CLASSES = ("car", "pedestrian", "sign")  # sorted: the order read_voc derives from the annotations
VERSION = 1  # bump when the generator changes: the cache folder and the fingerprint follow it
SEED = 2007
COUNTS = {"train": 160, "val": 40, "test": 100}
FOLDER_NAME = "SyntheticVOC"
MARKER = "SYNTHETIC.json"  # written last: its presence means the folder is complete
SS = 3  # supersampling factor of the object renderer
JPEG_QUALITY = 92
MAX_OCCLUSION = 0.7  # a placement that would hide more of an earlier object is rejected
# width / height ranges per class
ASPECT = {"car": (1.7, 2.3), "pedestrian": (0.34, 0.46), "sign": (0.92, 1.08)}
# longer side in pixels: small (< 32), medium, large (> 96) buckets and their probabilities
SIZE_BUCKETS = ((12.0, 32.0), (32.0, 96.0), (96.0, 190.0))
SIZE_BUCKET_P = (0.3, 0.45, 0.25)
OBJECTS_PER_IMAGE_P = (0.08, 0.2, 0.22, 0.2, 0.14, 0.1, 0.06)  # 0..6


# ---------------------------------------------------------------------- colours
def _vivid(rng: np.random.Generator) -> tuple[int, int, int]:
    """A saturated colour: one channel high, one low, one anywhere."""
    c = np.array([rng.integers(170, 256), rng.integers(0, 70), rng.integers(0, 256)])
    c = c[rng.permutation(3)]
    return int(c[0]), int(c[1]), int(c[2])


def _scale(c: tuple[int, int, int], f: float) -> tuple[int, int, int]:
    return tuple(int(np.clip(v * f, 0, 255)) for v in c)  # type: ignore[return-value]


# ---------------------------------------------------------------------- object renderers
def _draw_pedestrian(d: ImageDraw.ImageDraw, W: int, H: int, rng: np.random.Generator) -> None:
    cx = W / 2 + rng.uniform(-0.04, 0.04) * W
    skin = _colour(rng, 90, 240)
    shirt = _colour(rng)
    trousers = _colour(rng, 0, 200)
    shoes = _colour(rng, 0, 60)
    limb = max(2, round(0.15 * W))
    arm = max(2, round(0.11 * W))
    hip_y, foot_y = 0.52 * H, 0.975 * H
    stride = rng.uniform(0.04, 0.36) * W
    lead = rng.choice([-1.0, 1.0])
    for side in (-1.0, 1.0):  # legs
        foot_x = cx + side * stride + lead * 0.03 * W
        d.line([(cx + side * 0.09 * W, hip_y), (foot_x, foot_y - 0.02 * H)], fill=trousers, width=limb)
        d.ellipse([foot_x - 0.1 * W, foot_y - 0.035 * H, foot_x + 0.1 * W + lead * 0.05 * W, H - 1], fill=shoes)
    swing = rng.uniform(-0.12, 0.12) * H
    for side in (-1.0, 1.0):  # arms, one forward and one back
        hand = (cx + side * rng.uniform(0.3, 0.44) * W, 0.49 * H + side * swing * 0.3)
        d.line([(cx + side * 0.2 * W, 0.22 * H), hand], fill=_scale(shirt, 0.85), width=arm)
        d.ellipse([hand[0] - arm * 0.6, hand[1] - arm * 0.6, hand[0] + arm * 0.6, hand[1] + arm * 0.6], fill=skin)
    d.polygon([(cx - 0.25 * W, 0.19 * H), (cx + 0.25 * W, 0.19 * H), (cx + 0.2 * W, 0.55 * H),
               (cx - 0.2 * W, 0.55 * H)], fill=shirt)
    r = 0.075 * H
    d.ellipse([cx - r * 0.85, 0.005 * H, cx + r * 0.85, 0.005 * H + 2 * r], fill=skin)
    if rng.random() < 0.6:  # hair or hat
        d.chord([cx - r * 0.9, 0.0, cx + r * 0.9, 0.005 * H + 1.4 * r], 180, 360, fill=_colour(rng, 0, 120))


def _draw_car(d: ImageDraw.ImageDraw, W: int, H: int, rng: np.random.Generator) -> None:
    body = _colour(rng)
    glass = _colour(rng, 120, 220)
    glass = (glass[0] // 2 + 60, glass[1] // 2 + 80, min(255, glass[2] // 2 + 120))
    flip = rng.random() < 0.5

    def x(u: float) -> float:
        return (1 - u) * W if flip else u * W

    roof = rng.uniform(0.02, 0.1) * H
    front, back = rng.uniform(0.12, 0.22), rng.uniform(0.72, 0.84)
    cabin = [(x(front), 0.42 * H), (x(front + 0.13), roof), (x(back - 0.1), roof), (x(back), 0.42 * H)]
    d.polygon(cabin, fill=body)
    inset = 0.05 * H
    win = [(x(front + 0.05), 0.42 * H - inset), (x(front + 0.15), roof + inset), (x(back - 0.12), roof + inset),
           (x(back - 0.04), 0.42 * H - inset)]
    d.polygon(win, fill=glass)
    pillar = x(0.5 * (front + back))
    d.line([(pillar, roof), (pillar, 0.42 * H)], fill=body, width=max(2, round(0.025 * W)))
    d.rounded_rectangle([0, 0.38 * H, W - 1, 0.84 * H], radius=0.1 * H, fill=body)
    d.line([(x(0.03), 0.6 * H), (x(0.97), 0.6 * H)], fill=_scale(body, 0.7), width=max(1, round(0.02 * H)))
    light = 0.06 * W
    d.rectangle(sorted_box(x(0.0), 0.46 * H, x(0.0) + (light if not flip else -light), 0.56 * H),
                fill=(255, 240, 170))
    d.rectangle(sorted_box(x(1.0), 0.46 * H, x(1.0) - (light if not flip else -light), 0.56 * H),
                fill=(200, 30, 30))
    r = rng.uniform(0.19, 0.23) * H
    tyre = _colour(rng, 15, 55)
    for u in (0.22, 0.78):
        cx, cy = u * W, H - 1 - r
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(tyre[0], tyre[0], tyre[0]))
        h = 0.5 * r
        d.ellipse([cx - h, cy - h, cx + h, cy + h], fill=(170, 170, 175))


def sorted_box(x1: float, y1: float, x2: float, y2: float) -> list[float]:
    """``[min x, min y, max x, max y]`` (ImageDraw wants ordered corners)."""
    return [min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)]


def _draw_sign(d: ImageDraw.ImageDraw, W: int, H: int, rng: np.random.Generator) -> None:
    rim = _vivid(rng)
    face = (int(rng.integers(215, 256)), int(rng.integers(215, 256)), int(rng.integers(140, 256)))
    d.ellipse([0, 0, W - 1, H - 1], fill=rim)
    f = rng.uniform(0.14, 0.2)
    d.ellipse([f * W, f * H, (1 - f) * W, (1 - f) * H], fill=face)
    bar = rim if rng.random() < 0.5 else _colour(rng, 0, 60)
    tilt = rng.uniform(-0.06, 0.06) * H
    t = rng.uniform(0.07, 0.1) * H
    d.polygon([(0.3 * W, 0.5 * H - t - tilt), (0.7 * W, 0.5 * H - t + tilt), (0.7 * W, 0.5 * H + t + tilt),
               (0.3 * W, 0.5 * H + t - tilt)], fill=bar)


_RENDERERS = {"car": _draw_car, "pedestrian": _draw_pedestrian, "sign": _draw_sign}


def render_object(name: str, w: int, h: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """An anti-aliased object patch: ``(premultiplied RGB (h, w, 3) float32 0..255, alpha (h, w) float32 0..1)``.

    The shape touches the patch's edges; colours are shaded by a random linear light gradient.
    """
    W, H = w * SS, h * SS
    colour = Image.new("RGB", (W, H), (0, 0, 0))
    alpha = Image.new("L", (W, H), 0)
    # the same drawing twice: in colour, and in white for the alpha; the rng state is replayed
    state = rng.bit_generator.state
    _RENDERERS[name](ImageDraw.Draw(colour), W, H, rng)
    rng.bit_generator.state = state
    _RENDERERS[name](_WhiteDraw(ImageDraw.Draw(alpha)), W, H, rng)
    rgb = np.asarray(colour.resize((w, h), Image.Resampling.BOX), dtype=np.float32)
    a = np.asarray(alpha.resize((w, h), Image.Resampling.BOX), dtype=np.float32) / 255.0
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    gx, gy = rng.uniform(-0.35, 0.35, 2)
    shade = 1 + gx * (xx / max(w - 1, 1) - 0.5) + gy * (yy / max(h - 1, 1) - 0.5)
    rgb = np.minimum(rgb * shade[..., None], 255 * a[..., None])
    return rgb, a


class _WhiteDraw:
    """An ImageDraw stand-in that paints every shape white (255): the alpha mask of a drawing."""

    def __init__(self, draw: ImageDraw.ImageDraw):
        self._draw = draw

    def __getattr__(self, name: str) -> Callable[..., object]:
        method = getattr(self._draw, name)

        def paint(*args: object, **kwargs: object) -> object:
            if "fill" in kwargs:
                kwargs["fill"] = 255
            return method(*args, **kwargs)

        return paint


# ---------------------------------------------------------------------- one image
def _object_size(name: str, rng: np.random.Generator, w: int, h: int) -> tuple[int, int]:
    aspect = rng.uniform(*ASPECT[name])
    cap = min(SIZE_BUCKETS[-1][1], 0.9 * (w if aspect >= 1 else h), 0.9 * min(w, h) * max(aspect, 1 / aspect))
    bucket = int(rng.choice(3, p=SIZE_BUCKET_P))
    lo, hi = min(SIZE_BUCKETS[bucket][0], cap), min(SIZE_BUCKETS[bucket][1], cap)
    longer = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    if aspect >= 1:
        ow, oh = longer, longer / aspect
    else:
        ow, oh = longer * aspect, longer
    return max(4, round(ow)), max(4, round(oh))


def generate_image(index: int, seed: int = SEED) -> tuple[np.ndarray, list[SyntheticObject]]:
    """Image ``index``: ``(uint8 (H, W, 3) RGB, objects)``; depends only on ``(seed, index)``."""
    rng = np.random.default_rng([seed, index])
    w, h = int(rng.integers(240, 401)), int(rng.integers(180, 321))
    img = _background(rng, w, h)
    n_wanted = int(rng.choice(len(OBJECTS_PER_IMAGE_P), p=OBJECTS_PER_IMAGE_P))
    top = np.full((h, w), -1, np.int16)  # index of the object seen at each pixel
    area_in_image: list[int] = []
    full_area: list[int] = []
    names: list[str] = []
    for _ in range(n_wanted):
        for _attempt in range(30):
            name = CLASSES[int(rng.integers(len(CLASSES)))]
            ow, oh = _object_size(name, rng, w, h)
            if rng.random() < 0.25:  # may cross the border
                x0 = int(rng.integers(-ow // 2, w - ow // 2))
                y0 = int(rng.integers(-oh // 3, h - oh // 2))
            else:
                x0, y0 = int(rng.integers(0, w - ow + 1)), int(rng.integers(0, h - oh + 1))
            rgb, alpha = render_object(name, ow, oh, rng)
            mask = alpha >= 0.5
            # the part of the patch inside the image
            ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x0 + ow, w), min(y0 + oh, h)
            if ix1 <= ix0 or iy1 <= iy0:
                continue
            sub = (slice(iy0 - y0, iy1 - y0), slice(ix0 - x0, ix1 - x0))
            inside = int(mask[sub].sum())
            total = int(mask.sum())
            if total == 0 or inside < 0.4 * total:
                continue
            region = (slice(iy0, iy1), slice(ix0, ix1))
            covered = top[region][mask[sub]]
            if len(covered):
                hidden = np.bincount(covered[covered >= 0], minlength=len(names))
                visible_now = np.bincount(top[top >= 0], minlength=len(names))
                if any(area_in_image[i] and (visible_now[i] - hidden[i]) < (1 - MAX_OCCLUSION) * area_in_image[i]
                       for i in range(len(names))):
                    continue
            # keep the object visible against its surroundings
            a = alpha[sub][..., None]
            bg_lum = float(img[region].mean())
            obj_lum = float(rgb[sub].sum() / max(a.sum() * 3, 1e-6))
            if name != "sign" and abs(obj_lum - bg_lum) < 40:  # a sign's rim and face contrast anyway
                if bg_lum > 128:
                    rgb = rgb * 0.45
                else:
                    rgb = rgb + (255 * alpha[..., None] - rgb) * 0.55
            img[region] = img[region] * (1 - a) + rgb[sub]
            top[region][mask[sub]] = len(names)
            names.append(name)
            area_in_image.append(inside)
            full_area.append(total)
            break
    noise = rng.standard_normal((h, w, 3), dtype=np.float32) * rng.uniform(2, 7)
    image = np.clip(np.rint(img + noise), 0, 255).astype(np.uint8)
    return image, visible_objects(top, area_in_image, full_area, names)


# ---------------------------------------------------------------------- VOC writing
def annotation_xml(image_id: str, filename: str, width: int, height: int, objects: list[SyntheticObject],
                   folder_name: str = FOLDER_NAME, database: str | None = None, depth: int = 3) -> bytes:
    """A VOC annotation; boxes are written 1-based inclusive (``xmin = x1 + 1``, ``xmax = x2``).

    ``folder_name``, ``database`` (default ``benchsuite synthetic VOC v<VERSION>``) and ``depth`` (channels)
    fill the header; the defaults are the default set's.
    """
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = folder_name
    ET.SubElement(root, "filename").text = filename
    source = ET.SubElement(root, "source")
    ET.SubElement(source, "database").text = database or f"benchsuite synthetic VOC v{VERSION}"
    size = ET.SubElement(root, "size")
    for tag, value in (("width", width), ("height", height), ("depth", depth)):
        ET.SubElement(size, tag).text = str(value)
    ET.SubElement(root, "segmented").text = "0"
    for o in objects:
        el = ET.SubElement(root, "object")
        ET.SubElement(el, "name").text = o.name
        ET.SubElement(el, "pose").text = "Unspecified"
        ET.SubElement(el, "truncated").text = str(int(o.truncated))
        ET.SubElement(el, "difficult").text = str(int(o.difficult))
        bb = ET.SubElement(el, "bndbox")
        x1, y1, x2, y2 = o.box
        for tag, value in (("xmin", x1 + 1), ("ymin", y1 + 1), ("xmax", x2), ("ymax", y2)):
            ET.SubElement(bb, tag).text = str(value)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8") + b"\n"


def write_synthetic_voc(folder: Path, counts: dict[str, int] | None = None, seed: int = SEED) -> dict[str, int]:
    """Generate the set into ``folder`` (VOC layout). Returns ``{"images": n, "objects": m, ...}``.

    ``counts``: images per ``train`` / ``val`` / ``test`` (default :data:`COUNTS`); trainval is
    train + val. Ids are ``000001``...: trainval first, then test; val is a seeded draw from trainval.
    """
    counts = dict(COUNTS if counts is None else counts)
    folder = Path(folder)
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    n_trainval, n_test = counts["train"] + counts["val"], counts["test"]
    ids = [f"{i + 1:06d}" for i in range(n_trainval + n_test)]
    stats = {"images": len(ids), "objects": 0, "difficult": 0, "truncated": 0, "empty_images": 0}
    present: dict[str, dict[str, int]] = {}  # id -> class -> 1 (non-difficult) / 0 (difficult only)
    for i, image_id in enumerate(ids):
        image, objects = generate_image(i, seed)
        Image.fromarray(image).save(folder / "JPEGImages" / f"{image_id}.jpg", quality=JPEG_QUALITY)
        (folder / "Annotations" / f"{image_id}.xml").write_bytes(
            annotation_xml(image_id, f"{image_id}.jpg", image.shape[1], image.shape[0], objects))
        stats["objects"] += len(objects)
        stats["difficult"] += sum(o.difficult for o in objects)
        stats["truncated"] += sum(o.truncated for o in objects)
        stats["empty_images"] += not objects
        flags: dict[str, int] = {}
        for o in objects:
            flags[o.name] = max(flags.get(o.name, 0), int(not o.difficult))
        present[image_id] = flags
    trainval = ids[:n_trainval]
    val_pos = set(np.random.default_rng([seed, 10**6]).permutation(n_trainval)[: counts["val"]].tolist())
    splits = {
        "train": [x for j, x in enumerate(trainval) if j not in val_pos],
        "val": [x for j, x in enumerate(trainval) if j in val_pos],
        "trainval": trainval,
        "test": ids[n_trainval:],
    }
    main = folder / "ImageSets" / "Main"
    for split, members in splits.items():
        (main / f"{split}.txt").write_text("".join(f"{x}\n" for x in members))
        for cls in CLASSES:
            lines = [f"{x} {present[x].get(cls, -1):2d}\n" for x in members]
            (main / f"{cls}_{split}.txt").write_text("".join(lines))
    (folder / MARKER).write_text(json.dumps({"generator": __name__, "version": VERSION, "seed": seed,
                                             "classes": list(CLASSES), "counts": counts, "stats": stats},
                                            indent=2) + "\n")
    return stats


def ensure_synthetic_voc(cache_dir: Path) -> Path:
    """The synthetic set's folder ``<cache_dir>/synthetic/voc-v<VERSION>/SyntheticVOC``, generated once.

    Generation goes to a temporary sibling folder renamed into place when complete, so concurrent
    processes and interrupted runs never see half a data set.
    """
    folder = Path(cache_dir) / "synthetic" / f"voc-v{VERSION}" / FOLDER_NAME
    return _generate_once(folder, lambda tmp: write_synthetic_voc(tmp), "the synthetic VOC set")


def _generate_once(folder: Path, write: Callable[[Path], dict[str, int]], what: str) -> Path:
    """Run ``write(tmp)`` into a temporary sibling of ``folder`` and rename it into place (once)."""
    if (folder / MARKER).is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        start = time.perf_counter()
        stats = write(tmp)
        log.info("generated %s (%d images, %d objects) in %.1f s: %s", what, stats["images"],
                 stats["objects"], time.perf_counter() - start, folder)
        if folder.exists() and not (folder / MARKER).is_file():
            shutil.rmtree(folder)  # an incomplete folder left by an older, interrupted generator
        try:
            os.rename(tmp, folder)
        except OSError:
            if not (folder / MARKER).is_file():  # not a concurrent process that finished first
                raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(tmp)
    return folder


# ---------------------------------------------------------------------- tiny splits for the checks
def tiny_splits(folder: Path) -> tuple[DetectionSet, DetectionSet, DetectionSet]:
    """Tiny splits for the conformance checks (:mod:`benchsuite.testing`): synthetic scenes written as PNG files
    into ``folder``, 8 train, 3 val and 3 test images; the train split holds at least two clear objects of every
    class and every train image holds an object. Deterministic, in well under a second."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    samples: list[DetectionSample] = []
    index = 0
    counts = np.zeros(len(CLASSES), int)
    while len(samples) < 14:
        if index > 500:  # the generator's seed is fixed: this never happens unless the generator changed
            raise RuntimeError("synthetic_voc.tiny_splits: cannot draw a tiny set with every class in train")
        image, objects = generate_image(index, seed=97)
        index += 1
        clear = [CLASSES.index(o.name) for o in objects if not o.difficult]
        if len(samples) < 8 and not clear:
            continue  # the training images all hold objects
        if len(samples) == 7 and (counts + np.bincount(clear, minlength=len(CLASSES)) < 2).any():
            continue
        if len(samples) < 8:
            counts += np.bincount(clear, minlength=len(CLASSES))
        image_id = f"tiny{index:03d}"
        path = folder / f"{image_id}.png"
        Image.fromarray(image).save(path)
        h, w = image.shape[:2]
        samples.append(DetectionSample(
            image_id, path, w, h, [o.box for o in objects] or np.zeros((0, 4)),
            [CLASSES.index(o.name) for o in objects], [o.difficult for o in objects],
            [o.truncated for o in objects]))
    return (DetectionSet(samples[:8], CLASSES, "tiny-voc/train"), DetectionSet(samples[8:11], CLASSES, "tiny-voc/val"),
            DetectionSet(samples[11:], CLASSES, "tiny-voc/test"))


# ---------------------------------------------------------------------- the data-shape matrix
#: bump when a variant's generator changes (the default set's VERSION is independent of it)
VARIANT_VERSION = 1


@dataclass(frozen=True)
class Variant:
    """One shape of detection data (see :data:`VARIANTS`).

    ``counts``: images per ``train`` / ``val`` / ``test`` (trainval = train + val, val a seeded draw from it);
    ``code``: a stable integer mixed into the random seed so that variants never share images.
    """

    name: str
    code: int
    classes: tuple[str, ...]
    counts: dict[str, int]
    description: str
    channels: int = 3


VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("crop", 1, ("pedestrian",), {"train": 64, "val": 16, "test": 30},
            "crop-style training: trainval positives are tight crops (the box is the whole image) and separate "
            "object-free background images (window-sized, smaller than the window, or scene-sized); test is full "
            "scenes with 1-3 pedestrians 56-150 px high"),
    Variant("tiny", 2, ("sign",), {"train": 24, "val": 8, "test": 16},
            "tiny objects: 20-40 round signs 10-30 px high per image, none marked difficult for its size"),
    Variant("crowd", 3, ("pedestrian",), {"train": 18, "val": 6, "test": 12},
            "crowds: 50-70 pedestrians 28-56 px high per image, partly occluding one another"),
    Variant("wide", 4, ("car",), {"train": 48, "val": 12, "test": 24},
            "wide objects: 1-4 cars of aspect (width : height) 2.5 to 3.5 per image"),
    Variant("grey", 5, ("pedestrian",), {"train": 48, "val": 12, "test": 24},
            "grey images: single-channel (8-bit greyscale) JPEGs, 1-4 pedestrians 40-150 px high per image",
            channels=1),
    Variant("faces", 6, ("face",), {"train": 160, "val": 40, "test": 100},
            "faces in crowds: LFW face patches 8-200 px high, 1 to about 140 per image (crowds, groups, portraits, "
            "scattered people), lit, blurred, rotated, tinted and partly occluded, LFW non-face patches as "
            "distractors; train, val and test faces are different patches (benchsuite.data.synthetic_faces)"),
)}
#: crop variant: crop heights (pixels, log-uniform) and the window-sized background's fixed size (w, h)
CROP_HEIGHT = (72.0, 128.0)
CROP_WINDOW = (40, 100)


def _place_objects(img: np.ndarray, name: str, n_wanted: int, size: Callable[[], tuple[int, int]],
                   rng: np.random.Generator, max_occlusion: float, border_p: float = 0.0,
                   tiny: int = TINY, attempts: int = 30) -> list[SyntheticObject]:
    """Draw up to ``n_wanted`` objects of class ``name`` into ``img`` (float32 ``(H, W, 3)`` 0..255, in place).

    ``size()`` gives an object's ``(width, height)`` in pixels; a placement whose box would cover more than
    ``max_occlusion`` of an earlier object's visible pixels is tried again (``attempts`` times per object; judged
    on the box, before rendering, so stricter than the default set's pixel test). Boxes are
    the extent of the visible pixels; objects more than :data:`OCCLUDED` hidden or shorter than ``tiny`` px on
    their longer side are difficult. ``border_p``: chance that an object may cross the image border.
    """
    h, w = img.shape[:2]
    top = np.full((h, w), -1, np.int32)
    area_in_image: list[int] = []
    full_area: list[int] = []
    for _ in range(n_wanted):
        for _attempt in range(attempts):
            ow, oh = size()
            ow, oh = min(ow, w), min(oh, h)
            if rng.random() < border_p:
                x0 = int(rng.integers(-ow // 2, w - ow // 2))
                y0 = int(rng.integers(-oh // 3, h - oh // 2))
            else:
                x0, y0 = int(rng.integers(0, w - ow + 1)), int(rng.integers(0, h - oh + 1))
            ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x0 + ow, w), min(y0 + oh, h)
            sub = (slice(iy0 - y0, iy1 - y0), slice(ix0 - x0, ix1 - x0))
            region = (slice(iy0, iy1), slice(ix0, ix1))
            covered = top[region]
            if len(area_in_image) and (covered >= 0).any():  # a cheap pre-check on the box before rendering
                hidden = np.bincount(covered[covered >= 0], minlength=len(area_in_image))
                visible_now = np.bincount(top[top >= 0], minlength=len(area_in_image))
                if any(hidden[i] and visible_now[i] - hidden[i] < (1 - max_occlusion) * area_in_image[i]
                       for i in range(len(area_in_image))):
                    continue
            rgb, alpha = render_object(name, ow, oh, rng)
            mask = alpha >= 0.5
            inside, total = int(mask[sub].sum()), int(mask.sum())
            if total == 0 or inside < 0.4 * total:
                continue
            a = alpha[sub][..., None]
            bg_lum = float(img[region].mean())
            obj_lum = float(rgb[sub].sum() / max(a.sum() * 3, 1e-6))
            if name != "sign" and abs(obj_lum - bg_lum) < 40:  # keep the object visible against its surroundings
                rgb = rgb * 0.45 if bg_lum > 128 else rgb + (255 * alpha[..., None] - rgb) * 0.55
            img[region] = img[region] * (1 - a) + rgb[sub]
            top[region][mask[sub]] = len(area_in_image)
            area_in_image.append(inside)
            full_area.append(total)
            break
    return visible_objects(top, area_in_image, full_area, name, tiny)


def _sizer(rng: np.random.Generator, height: tuple[float, float], aspect: tuple[float, float]
           ) -> Callable[[], tuple[int, int]]:
    """A sampler of ``(width, height)`` pixels: height log-uniform in ``height``, width = height x aspect."""

    def size() -> tuple[int, int]:
        oh = _log_uniform(rng, *height)
        return max(4, round(oh * rng.uniform(*aspect))), max(4, round(oh))

    return size


def _scene(rng: np.random.Generator, w: tuple[int, int], h: tuple[int, int]) -> np.ndarray:
    return _background(rng, int(rng.integers(w[0], w[1] + 1)), int(rng.integers(h[0], h[1] + 1)))


def generate_variant_image(variant: str, index: int, role: str, seed: int = SEED
                           ) -> tuple[np.ndarray, list[SyntheticObject]]:
    """Image ``index`` of a variant's ``role`` (``"train"``, ``"val"`` or ``"test"``; ``"trainval"`` counts as
    ``"train"``; only ``faces`` draws train and val images differently): ``(uint8 image, objects)``.

    The image is ``(H, W, 3)`` RGB, or ``(H, W)`` for single-channel variants; it depends only on
    ``(seed, variant, role, index)``.
    """
    v = VARIANTS[variant]
    rng = np.random.default_rng([seed, 1000 + v.code, int(role == "test"), index])
    if variant == "faces":
        return synthetic_faces.generate_face_image(rng, role)
    name = v.classes[0]
    if variant == "crop":
        if role == "test":
            img = _scene(rng, (320, 400), (240, 300))
            n = int(rng.integers(1, 4))
            objects = _place_objects(img, name, n, _sizer(rng, (56.0, 150.0), ASPECT[name]), rng, 0.3)
            return _finish(img, rng), objects
        if index % 5 in (1, 3):  # 2 of every 5: object-free background images, four kinds in turn
            kind = (index // 5 * 2 + (index % 5 == 3)) % 4
            if kind == 0:  # the size of a crop
                cw, ch = _sizer(rng, CROP_HEIGHT, ASPECT[name])()
            elif kind == 1:  # exactly the window
                cw, ch = CROP_WINDOW
            elif kind == 2:  # smaller than the window
                cw, ch = CROP_WINDOW[0] * 3 // 4, CROP_WINDOW[1] * 3 // 4
            else:  # a scene
                cw, ch = int(rng.integers(240, 401)), int(rng.integers(180, 301))
            return _finish(_background(rng, cw, ch), rng), []
        cw, ch = _sizer(rng, CROP_HEIGHT, ASPECT[name])()  # a tight crop: the object fills the image
        img = _background(rng, cw, ch)
        drawn = _place_objects(img, name, 1, lambda: (cw, ch), rng, 0.0)
        objects = [SyntheticObject(name, (0, 0, cw, ch), False, False) for _ in drawn]  # the box is the image
        return _finish(img, rng), objects
    if variant == "tiny":
        img = _scene(rng, (320, 400), (240, 300))
        objects = _place_objects(img, name, int(rng.integers(20, 41)), _sizer(rng, (10.0, 30.0), ASPECT[name]),
                                 rng, 0.2, tiny=0)
    elif variant == "crowd":
        img = _scene(rng, (400, 480), (300, 360))
        objects = _place_objects(img, name, int(rng.integers(55, 71)), _sizer(rng, (28.0, 56.0), ASPECT[name]),
                                 rng, 0.45, border_p=0.1, tiny=0, attempts=60)
    elif variant == "wide":
        img = _scene(rng, (320, 400), (200, 300))
        objects = _place_objects(img, name, int(rng.integers(1, 5)), _sizer(rng, (20.0, 64.0), (2.5, 3.5)), rng,
                                 0.3, border_p=0.15)
    elif variant == "grey":
        img = _scene(rng, (240, 400), (180, 320))
        objects = _place_objects(img, name, int(rng.integers(1, 5)), _sizer(rng, (40.0, 150.0), ASPECT[name]), rng,
                                 0.3, border_p=0.15)
    else:  # pragma: no cover - VARIANTS lists every variant handled above
        raise KeyError(variant)
    image = _finish(img, rng)
    if v.channels == 1:
        image = np.asarray(Image.fromarray(image).convert("L"))
    return image, objects


def variant_folder_name(variant: str) -> str:
    return f"{FOLDER_NAME}-{variant}"


def write_variant(folder: Path, variant: str, counts: dict[str, int] | None = None, seed: int = SEED
                  ) -> dict[str, int]:
    """Generate a variant of the set (see :data:`VARIANTS`) into ``folder``, VOC layout; returns its stats.

    ``counts`` (default the variant's) as in :func:`write_synthetic_voc`: ids ``000001``... are trainval first,
    then test; val is a seeded draw from trainval.
    """
    if variant not in VARIANTS:
        raise KeyError(f"unknown synthetic VOC variant {variant!r}; expected one of: {', '.join(VARIANTS)}")
    v = VARIANTS[variant]
    counts = dict(v.counts if counts is None else counts)
    folder = Path(folder)
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    n_trainval, n_test = counts["train"] + counts["val"], counts["test"]
    ids = [f"{i + 1:06d}" for i in range(n_trainval + n_test)]
    stats = {"images": len(ids), "objects": 0, "difficult": 0, "truncated": 0, "empty_images": 0,
             "max_objects_per_image": 0}
    present: dict[str, dict[str, int]] = {}
    database = f"benchsuite synthetic VOC variant {variant} v{VARIANT_VERSION}"
    val_pos = set(np.random.default_rng([seed, 10**6, v.code]).permutation(n_trainval)[: counts["val"]].tolist())
    for i, image_id in enumerate(ids):
        role, index = ("val" if i in val_pos else "train", i) if i < n_trainval else ("test", i - n_trainval)
        image, objects = generate_variant_image(variant, index, role, seed)
        Image.fromarray(image).save(folder / "JPEGImages" / f"{image_id}.jpg", quality=JPEG_QUALITY)
        (folder / "Annotations" / f"{image_id}.xml").write_bytes(
            annotation_xml(image_id, f"{image_id}.jpg", image.shape[1], image.shape[0], objects,
                           variant_folder_name(variant), database, v.channels))
        stats["objects"] += len(objects)
        stats["difficult"] += sum(o.difficult for o in objects)
        stats["truncated"] += sum(o.truncated for o in objects)
        stats["empty_images"] += not objects
        stats["max_objects_per_image"] = max(stats["max_objects_per_image"], len(objects))
        flags: dict[str, int] = {}
        for o in objects:
            flags[o.name] = max(flags.get(o.name, 0), int(not o.difficult))
        present[image_id] = flags
    trainval = ids[:n_trainval]
    splits = {
        "train": [x for j, x in enumerate(trainval) if j not in val_pos],
        "val": [x for j, x in enumerate(trainval) if j in val_pos],
        "trainval": trainval,
        "test": ids[n_trainval:],
    }
    main = folder / "ImageSets" / "Main"
    for split, members in splits.items():
        (main / f"{split}.txt").write_text("".join(f"{x}\n" for x in members))
        for cls in v.classes:
            (main / f"{cls}_{split}.txt").write_text("".join(f"{x} {present[x].get(cls, -1):2d}\n" for x in members))
    (folder / MARKER).write_text(json.dumps({"generator": __name__, "variant": variant, "version": VARIANT_VERSION,
                                             "seed": seed, "classes": list(v.classes), "counts": counts,
                                             "description": v.description, "stats": stats}, indent=2) + "\n")
    return stats


def ensure_variant(cache_dir: Path, variant: str) -> Path:
    """A variant's folder ``<cache_dir>/synthetic/voc-<variant>-v<VARIANT_VERSION>/SyntheticVOC-<variant>``,
    generated once (atomically, as :func:`ensure_synthetic_voc`)."""
    if variant not in VARIANTS:
        raise KeyError(f"unknown synthetic VOC variant {variant!r}; expected one of: {', '.join(VARIANTS)}")
    folder = Path(cache_dir) / "synthetic" / f"voc-{variant}-v{VARIANT_VERSION}" / variant_folder_name(variant)
    return _generate_once(folder, lambda tmp: write_variant(tmp, variant), f"the synthetic VOC variant {variant!r}")
