"""The synthetic sets written in every format the suite reads, so tests and the data-shape matrix run offline on
all of them.

- :func:`ensure_synthetic_detection`: the synthetic VOC set (or one of its data-shape variants) as COCO JSON, YOLO
  labels or loose VOC XML, with its split kept (``split=True``: the same images in each split as the VOC set) or
  without any split (the reader draws one); returns the spec.
- :func:`ensure_synthetic_crops`: a classification set of non-square grey images (about 100 x 40, sizes varying by
  a few pixels), two imbalanced classes, in class folders without split folders; returns the spec.
- :func:`ensure_synthetic_cifar_folders`: synthetic CIFAR-10 images (60 train and 20 test per class) as PNG class
  folders under ``train/`` and ``test/`` (the layout of the real CIFAR-10 JPEG copy); returns the spec.

Each is generated once into the cache folder (``<cache>/synthetic/formats-v<VERSION>/...``), through a temporary
folder renamed into place, and holds the synthetic marker file, so its data sets are recorded ``origin:
synthetic``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from benchsuite.data import synthetic_cifar, synthetic_voc
from benchsuite.data.format_writers import write_coco, write_imagefolder, write_vocxml, write_yolo
from benchsuite.data.voc import VocDataset

VERSION = 1
FORMATS = ("coco", "yolo", "vocxml")
CROP_CLASSES = ("horizontal", "vertical")
CROP_COUNTS = (140, 60)  # images per class: imbalanced on purpose
CROP_SIZE = (100, 40)  # median width, height
CIFAR_SEED = 7  # synthetic_cifar.generate(60, 20, CIFAR_SEED) gives the CIFAR folders' images


def _folder(cache_dir: Path, name: str) -> Path:
    return Path(cache_dir) / "synthetic" / f"formats-v{VERSION}" / name


def _marker(folder: Path, what: dict) -> None:
    (folder / synthetic_voc.MARKER).write_text(json.dumps({"generator": __name__, "version": VERSION, **what}) + "\n")


def ensure_synthetic_detection(cache_dir: Path, fmt: str, variant: str = "", split: bool = True) -> str:
    """The spec of the synthetic VOC set (``variant``: a data-shape variant, ``""`` the default set) written as
    ``fmt`` (``coco``, ``yolo`` or ``vocxml``); ``split`` False writes no split (the reader draws one)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    if variant:
        source = synthetic_voc.ensure_variant(cache_dir, variant)
        classes = synthetic_voc.VARIANTS[variant].classes
    else:
        source = synthetic_voc.ensure_synthetic_voc(cache_dir)
        classes = synthetic_voc.CLASSES
    name = f"{variant or 'default'}-{fmt}-{'split' if split else 'nosplit'}"

    def write(tmp: Path) -> dict[str, int]:
        ds = VocDataset(source, "source", origin="synthetic", classes=classes)
        splits = {s: list(ds.load(s)) for s in ("train", "val", "test")}
        if not split:
            splits = {"all": [x for v in splits.values() for x in v]}
        if fmt == "coco":
            # category ids with gaps: readers must not assume 1..K
            write_coco(splits, classes, tmp, one_file=not split, category_ids=[3 + 4 * k for k in range(len(classes))])
        elif fmt == "yolo":
            write_yolo(splits if split else {"": splits["all"]}, classes, tmp, data_yaml=split)
        else:
            write_vocxml(splits, classes, tmp, split_folders=split, beside=not split)
        _marker(tmp, {"source": str(source), "format": fmt, "split": split})
        samples = [x for v in splits.values() for x in v]
        return {"images": len(samples), "objects": sum(len(x) for x in samples)}

    folder = synthetic_voc._generate_once(_folder(cache_dir, name), write, f"the synthetic {fmt} set")
    if fmt == "coco" and not split:
        return f"coco:{folder / 'annotations' / 'instances.json'}"
    return f"{fmt}:{folder}"


def crop_image(label: int, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """One grey ``(height, width)`` uint8 crop: class 0 horizontal stripes brightening to the left, class 1 vertical
    stripes brightening to the right, at a random phase and period, with noise."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    period = rng.uniform(6, 12)
    phase = rng.uniform(0, 2 * np.pi)
    coord = y if label == 0 else x
    stripes = np.sin(2 * np.pi * coord / period + phase)
    ramp = (1 - x / width) if label == 0 else x / width
    image = 120 + 5 * stripes + 10 * ramp + rng.normal(0, 45, (height, width))
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def ensure_synthetic_crops(cache_dir: Path) -> str:
    """The spec of the non-square grey crop set (class folders, no split folders)."""

    def write(tmp: Path) -> dict[str, int]:
        rng = np.random.default_rng(23)
        images, labels = [], []
        for label, count in enumerate(CROP_COUNTS):
            for _ in range(count):
                w = CROP_SIZE[0] + int(rng.integers(-8, 9))
                h = CROP_SIZE[1] + int(rng.integers(-4, 5))
                images.append(crop_image(label, w, h, rng))
                labels.append(label)
        write_imagefolder(tmp, images, labels, CROP_CLASSES)
        _marker(tmp, {"set": "crops", "counts": list(CROP_COUNTS)})
        return {"images": len(images), "objects": 0}

    folder = synthetic_voc._generate_once(_folder(cache_dir, "crops"), write, "the synthetic crop set")
    return f"imagefolder:{folder}"


def ensure_synthetic_cifar_folders(cache_dir: Path) -> str:
    """The spec of the synthetic CIFAR-10 stand-in as PNG class folders under ``train/`` and ``test/``."""

    def write(tmp: Path) -> dict[str, int]:
        a = synthetic_cifar.generate(n_train_per_class=60, n_test_per_class=20, seed=CIFAR_SEED)
        images = np.concatenate([a[0], a[2]])
        labels = np.concatenate([a[1], a[3]])
        splits = ["train"] * len(a[1]) + ["test"] * len(a[3])
        write_imagefolder(tmp, images, labels, synthetic_cifar.CLASSES, splits=splits)
        _marker(tmp, {"set": "cifar-folders"})
        return {"images": len(images), "objects": 0}

    folder = synthetic_voc._generate_once(_folder(cache_dir, "cifar-folders"), write, "the synthetic CIFAR folders")
    return f"imagefolder:{folder}"
