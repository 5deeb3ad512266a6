"""Scene pieces shared by the synthetic detection generators (:mod:`benchsuite.data.synthetic_voc`,
:mod:`benchsuite.data.synthetic_faces`): textured backgrounds, pixel noise, and the rule that turns pasted
objects into VOC annotations.

The annotation rule (as VOC annotates, and the same for every synthetic set): a box is the extent of the
object's *visible* pixels; an object is ``difficult`` when that box is shorter than :data:`TINY` pixels on its
longer side or more than :data:`OCCLUDED` of its pixels inside the image are hidden by later drawings, and
``truncated`` when part of it lies outside the image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

TINY = 16  # objects whose visible box is shorter than this on its longer side are difficult
OCCLUDED = 0.5  # ... and so are objects with more than this fraction of their pixels hidden


@dataclass
class SyntheticObject:
    """One drawn object: ``box`` is ``(x1, y1, x2, y2)`` integer pixel edges of its visible pixels."""

    name: str
    box: tuple[int, int, int, int]
    difficult: bool
    truncated: bool


def random_colour(rng: np.random.Generator, lo: int = 0, hi: int = 256) -> tuple[int, int, int]:
    """An RGB colour, each channel uniform in ``[lo, hi)``."""
    c = rng.integers(lo, hi, 3)
    return int(c[0]), int(c[1]), int(c[2])


def log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A draw from ``[lo, hi]`` uniform on a log scale."""
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """``(h, w, 3)`` float32 textured, cluttered background, 0..255."""
    horizon = rng.uniform(0.3, 0.7) * h
    yy = np.arange(h, dtype=np.float32)[:, None, None]
    top0, top1 = rng.uniform(60, 230, (2, 3)).astype(np.float32)
    bot0, bot1 = rng.uniform(30, 200, (2, 3)).astype(np.float32)
    t_top = np.clip(yy / max(horizon, 1), 0, 1)
    t_bot = np.clip((yy - horizon) / max(h - horizon, 1), 0, 1)
    img = np.where(yy < horizon, top0 + (top1 - top0) * t_top, bot0 + (bot1 - bot0) * t_bot)
    img = np.broadcast_to(img, (h, w, 3)).astype(np.float32)
    gx = rng.uniform(-30, 30, 3).astype(np.float32)
    img = img + gx * (np.arange(w, dtype=np.float32)[None, :, None] / w - 0.5)
    coarse = rng.normal(0, rng.uniform(8, 22), (h // 24 + 2, w // 24 + 2, 3)).astype(np.float32)
    low = np.stack([np.asarray(Image.fromarray(coarse[..., c]).resize((w, h), Image.Resampling.BICUBIC))
                    for c in range(3)], axis=-1)
    img = np.clip(img + low, 0, 255).astype(np.uint8)
    pil = Image.fromarray(img)
    d = ImageDraw.Draw(pil)
    for _ in range(int(rng.integers(5, 16))):
        kind = rng.random()
        c = random_colour(rng)
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        if kind < 0.35:  # line
            d.line([(x, y), (x + rng.uniform(-0.5, 0.5) * w, y + rng.uniform(-0.5, 0.5) * h)], fill=c,
                   width=int(rng.integers(1, 5)))
        elif kind < 0.55:  # box, filled or outlined (windows, crates)
            bw, bh = rng.uniform(8, 0.35 * w), rng.uniform(8, 0.35 * h)
            if rng.random() < 0.5:
                d.rectangle([x, y, x + bw, y + bh], fill=c)
            else:
                d.rectangle([x, y, x + bw, y + bh], outline=c, width=int(rng.integers(1, 4)))
        elif kind < 0.75:  # blob
            r = rng.uniform(3, 22)
            d.ellipse([x - r, y - r * rng.uniform(0.5, 1.5), x + r, y + r], fill=c)
        elif kind < 0.88:  # pole: a thin vertical bar (a hard negative for tall objects)
            pw = rng.uniform(2, 7)
            d.rectangle([x, y, x + pw, y + rng.uniform(30, 0.8 * h)], fill=c)
        else:  # irregular polygon
            pts = [(x + rng.uniform(-25, 25), y + rng.uniform(-25, 25)) for _ in range(int(rng.integers(3, 6)))]
            d.polygon(pts, fill=c)
    return np.asarray(pil, dtype=np.float32)


def finish(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Pixel noise and rounding: float ``(H, W, 3)`` -> uint8."""
    noise = rng.standard_normal(img.shape, dtype=np.float32) * rng.uniform(2, 7)
    return np.clip(np.rint(img + noise), 0, 255).astype(np.uint8)


def visible_objects(top: np.ndarray, area_in_image: list[int], full_area: list[int], name: str | Sequence[str],
                    tiny: int = TINY) -> list[SyntheticObject]:
    """The annotations of drawn objects, by the rule in the module docstring.

    Args:
        top: ``(H, W)`` int, the index of the object seen at each pixel (negative: no annotated object).
        area_in_image: per object, its pixels inside the image when it was drawn.
        full_area: per object, all its pixels (inside the image or not).
        name: the class name of every object, or one name per object.
        tiny: the difficult size (longer side of the visible box, pixels; 0: none is difficult for its size).

    Objects with no visible pixel left are dropped; the others keep their order.
    """
    n = len(area_in_image)
    labels = np.where((top >= 0) & (top < n), top + 1, 0)
    visible = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    objects = []
    for i, where in enumerate(ndimage.find_objects(labels, max_label=n)):
        if where is None:
            continue
        ys, xs = where
        box = (int(xs.start), int(ys.start), int(xs.stop), int(ys.stop))
        occlusion = 1 - int(visible[i]) / area_in_image[i]
        small = max(box[2] - box[0], box[3] - box[1]) < tiny
        objects.append(SyntheticObject(name if isinstance(name, str) else name[i], box,
                                       bool(small or occlusion > OCCLUDED),
                                       bool(area_in_image[i] < 0.98 * full_area[i])))
    return objects
