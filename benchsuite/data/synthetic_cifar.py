"""A deterministic synthetic stand-in for CIFAR-10, written in the official on-disk layout.

Ten classes of 32 x 32 RGB images, each a shape or pattern family (disc, square, triangle, ring, plus,
horizontal bars, vertical bars, diagonal stripes, checkerboard, diagonal cross) drawn at a random
position, size and angle, in colours that carry no class information, over textured backgrounds with
clutter and noise. Shape and orientation decide the class, so the set rewards gradient features and
learned filters over raw pixel matching, as the real data does, yet it generates in about a second.

Because it is written as ``data_batch_1..5``, ``test_batch`` and ``batches.meta``, the same reader,
splitter and pipelines run on it as on the real data; every record marks it ``origin: synthetic``.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from benchsuite.data.cifar10 import FOLDER, META_FILE, TEST_FILE, TRAIN_FILES, has_cifar10
from benchsuite.data.images import ImageSet
from benchsuite.results.atomic import atomic_write_bytes

CLASSES = ("disc", "square", "triangle", "ring", "plus", "hbars", "vbars", "diagonal", "checker", "cross")
VERSION = 1  # bump when the generator changes: the cache folder and the fingerprint follow it
SUPER = 2  # supersampling factor for anti-aliased edges
SIZE = 32


def _rotate(u: np.ndarray, v: np.ndarray, angle: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c, s = np.cos(angle), np.sin(angle)
    return c * u + s * v, -s * u + c * v


def _masks(cls: int, u: np.ndarray, v: np.ndarray, r: np.ndarray, period: np.ndarray) -> np.ndarray:
    """Float masks (n, S, S) in [0, 1] of class ``cls`` in rotated, centred coordinates u, v."""
    rho = np.hypot(u, v)
    box = np.maximum(np.abs(u), np.abs(v))
    waves = 2 * np.pi / period
    if cls == 0:  # disc
        m = rho < r
    elif cls == 1:  # square
        m = box < 0.8 * r
    elif cls == 2:  # triangle, apex up before rotation
        m = (v < 0.6 * r) & (np.abs(u) < (0.6 * r - v) / 1.8) & (v > -r)
    elif cls == 3:  # ring
        m = (rho < r) & (rho > 0.55 * r)
    elif cls in (4, 9):  # plus / diagonal cross (the cross is a plus turned by 45 degrees upstream)
        w = np.maximum(r / 3.8, 1.2)
        m = ((np.abs(u) < w) & (np.abs(v) < r)) | ((np.abs(v) < w) & (np.abs(u) < r))
    elif cls == 5:  # horizontal bars
        m = (box < r) & (np.sin(v * waves) > 0)
    elif cls == 6:  # vertical bars
        m = (box < r) & (np.sin(u * waves) > 0)
    elif cls == 7:  # diagonal stripes
        m = (rho < 1.1 * r) & (np.sin((u + v) * waves / np.sqrt(2)) > 0)
    elif cls == 8:  # checkerboard
        m = (box < r) & (np.sin(u * waves) * np.sin(v * waves) > 0)
    else:
        raise ValueError(cls)
    return m.astype(np.float32)


# angle ranges (radians) per class: patterns whose orientation is their identity get small jitter
_ANGLE_CENTRE = {4: 0.0, 5: 0.0, 6: 0.0, 7: 0.0, 9: np.pi / 4}
_ANGLE_JITTER = {4: 0.3, 5: 0.3, 6: 0.3, 7: 0.3, 9: 0.3}


def _background(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 32, 32, 3) float textured backgrounds: a colour, a gradient, low-frequency waves."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / SIZE
    base = rng.uniform(20, 235, (n, 1, 1, 3))
    gx, gy = rng.uniform(-60, 60, (2, n, 1, 1, 1))
    img = base + gx * (xx[None, :, :, None] - 0.5) + gy * (yy[None, :, :, None] - 0.5)
    for _ in range(2):
        fx, fy = rng.uniform(-3, 3, (2, n, 1, 1))
        phase = rng.uniform(0, 2 * np.pi, (n, 1, 1))
        amp = rng.uniform(0, 30, (n, 1, 1, 3))
        img = img + amp * np.sin(2 * np.pi * (fx * xx + fy * yy) + phase)[..., None]
    return img


def _clutter(rng: np.random.Generator, img: np.ndarray) -> None:
    """Draw a few random line segments and blobs in place: the background is not empty."""
    n = len(img)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    for _ in range(2):
        cx, cy = rng.uniform(0, SIZE, (2, n, 1, 1))
        angle = rng.uniform(0, np.pi, (n, 1, 1))
        length = rng.uniform(4, 12, (n, 1, 1))
        u, v = _rotate(xx - cx, yy - cy, angle)
        seg = (np.abs(v) < 0.8) & (np.abs(u) < length)
        blob = np.hypot(xx - cx, yy - cy) < rng.uniform(1, 3, (n, 1, 1))
        use_seg = rng.random((n, 1, 1)) < 0.5
        m = np.where(use_seg, seg, blob)
        colour = rng.uniform(0, 255, (n, 1, 1, 3))
        img[:] = np.where(m[..., None], colour, img)


def generate(n_train_per_class: int = 500, n_test_per_class: int = 100, seed: int = 7
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(train_images, train_labels, test_images, test_labels)``; images (N, 32, 32, 3) uint8 RGB."""
    rng = np.random.default_rng(seed)
    per_class = n_train_per_class + n_test_per_class
    labels = np.repeat(np.arange(len(CLASSES)), per_class)
    n = len(labels)
    img = _background(rng, n)
    _clutter(rng, img)
    grid = (np.arange(SIZE * SUPER, dtype=np.float32) + 0.5) / SUPER
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    fg = rng.uniform(0, 255, (n, 3))
    # keep the figure visible: push its colour away from the background's mean brightness
    bg_lum = img.mean(axis=(1, 2, 3))
    fg_lum = fg.mean(axis=1)
    too_close = np.abs(fg_lum - bg_lum) < 60
    fg[too_close] = np.clip(255 - fg[too_close], 0, 255)
    for c in range(len(CLASSES)):
        idx = np.flatnonzero(labels == c)
        k = len(idx)
        cx, cy = rng.uniform(11, 21, (2, k, 1, 1))
        r = rng.uniform(7, 13, (k, 1, 1))
        period = rng.uniform(3.5, 6.0, (k, 1, 1))
        centre = _ANGLE_CENTRE.get(c)
        if centre is None:
            angle = rng.uniform(-np.pi, np.pi, (k, 1, 1))
        else:
            angle = centre + rng.uniform(-_ANGLE_JITTER[c], _ANGLE_JITTER[c], (k, 1, 1))
        u, v = _rotate(xx[None] - cx, yy[None] - cy, angle)
        mask = _masks(c, u, v, r, period)
        mask = mask.reshape(k, SIZE, SUPER, SIZE, SUPER).mean(axis=(2, 4))  # anti-aliased coverage
        shade = 1 + rng.uniform(-0.25, 0.25, (k, 1, 1)) * (u[:, ::SUPER, ::SUPER] / 12)
        figure = np.clip(fg[idx][:, None, None, :] * shade[..., None], 0, 255)
        img[idx] = img[idx] * (1 - mask[..., None]) + figure * mask[..., None]
    img += rng.normal(0, 10, img.shape)
    images = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    order = rng.permutation(n)
    images, labels = images[order], labels[order]
    is_test = np.zeros(n, bool)
    for c in range(len(CLASSES)):
        is_test[np.flatnonzero(labels == c)[:n_test_per_class]] = True
    return images[~is_test], labels[~is_test], images[is_test], labels[is_test]


def _dump(obj: dict[bytes, object], path: Path) -> None:
    atomic_write_bytes(path, pickle.dumps(obj, protocol=2))


def write_cifar_layout(folder: Path, train_images: np.ndarray, train_labels: np.ndarray,
                       test_images: np.ndarray, test_labels: np.ndarray, classes: tuple[str, ...]) -> Path:
    """Write arrays as ``data_batch_1..5``, ``test_batch`` and ``batches.meta`` (bytes keys, protocol 2)."""
    folder.mkdir(parents=True, exist_ok=True)

    def rows(images: np.ndarray) -> np.ndarray:
        return images.transpose(0, 3, 1, 2).reshape(len(images), -1)  # planes R, G, B

    for i, chunk in enumerate(np.array_split(np.arange(len(train_labels)), len(TRAIN_FILES))):
        _dump({b"batch_label": f"training batch {i + 1} of 5".encode(), b"data": rows(train_images[chunk]),
               b"labels": train_labels[chunk].tolist()}, folder / TRAIN_FILES[i])
    _dump({b"batch_label": b"testing batch 1 of 1", b"data": rows(test_images),
           b"labels": test_labels.tolist()}, folder / TEST_FILE)
    _dump({b"label_names": [c.encode() for c in classes], b"num_cases_per_batch": len(test_labels),
           b"num_vis": 3072}, folder / META_FILE)
    return folder


def ensure_synthetic_cifar10(cache_dir: Path) -> Path:
    """The synthetic set's ``cifar-10-batches-py`` folder under ``cache_dir``, written once."""
    folder = Path(cache_dir) / "synthetic" / f"cifar10-v{VERSION}" / FOLDER
    if not has_cifar10(folder) or not (folder / META_FILE).exists():
        train_x, train_y, test_x, test_y = generate()
        write_cifar_layout(folder, train_x, train_y, test_x, test_y, CLASSES)
    return folder


def tiny_splits(folder: Path | None = None) -> tuple[ImageSet, ImageSet, ImageSet]:
    """Tiny splits for the conformance checks (:mod:`benchsuite.testing`), in memory, in well under a second:
    50 train images (5 per class), 10 val (one per class, drawn from the generated training images) and 20 test.
    ``folder`` is not used (nothing is written)."""
    train_images, train_labels, test_images, test_labels = generate(n_train_per_class=6, n_test_per_class=2, seed=11)
    first = np.array([np.flatnonzero(train_labels == c)[0] for c in range(len(CLASSES))])
    rest = np.setdiff1d(np.arange(len(train_labels)), first)
    return (ImageSet(train_images[rest], train_labels[rest], CLASSES, "tiny-cifar/train"),
            ImageSet(train_images[first], train_labels[first], CLASSES, "tiny-cifar/val"),
            ImageSet(test_images, test_labels, CLASSES, "tiny-cifar/test"))
