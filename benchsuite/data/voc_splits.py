"""The split rules of a VOC-layout data set, for any of its split-list folders (``ImageSets/Segmentation`` here;
``ImageSets/Main``'s are the same rules, :class:`benchsuite.data.voc.VocDataset`).

- The folder's own ``test.txt`` is the test split; with ``val.txt`` and ``train.txt`` (or ``trainval.txt``) the
  three are used as they are (train = trainval less val where only trainval is listed).
- Without ``val.txt``, val is a fixed ``VAL_FRACTION`` of trainval (or train) chosen by the caller's
  ``choose_val`` (stratified for detection, seeded for segmentation) and train is the rest.
- ``test_from_val`` (VOC2012, whose test labels are not public): the official val split is scored as test, and
  train / val are drawn from the official train split.
- A missing test split, no training split, or an empty split is a DataError naming the list folder.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchsuite.data.splits import SPLIT_SEED
from benchsuite.errors import ConfigError, DataError

VAL_FRACTION = 0.2  # of the training pool, when a data set has no val split of its own
#: ``choose_val(pool, count)``: positions in ``pool`` (image indices) of the ``count`` images to hold out as val
ChooseVal = Callable[[np.ndarray, int], np.ndarray]


@dataclass
class ResolvedSplits:
    """``splits``: name -> ``(n,)`` int64 image indices for train, val, trainval, test; ``notes``: how they were
    made, for the data set's provenance."""

    splits: dict[str, np.ndarray]
    notes: list[str]


SPLITS = ("train", "val", "trainval", "test")


def check_voc_layout(folder: Path, subfolders: Sequence[str], lists_name: str, layout: str) -> Path:
    """The list folder ``<folder>/ImageSets/<lists_name>`` after checking that ``folder``, its ``subfolders`` and the
    list folder exist and that it holds a split file; otherwise a DataError naming the path and ``layout`` (what a
    folder should look like)."""
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder; expected {layout}")
    lists = folder / "ImageSets" / lists_name
    for path in (*(folder / sub for sub in subfolders), lists):
        if not path.is_dir():
            raise DataError(f"{path}: missing; expected {layout}")
    if not any((lists / f"{s}.txt").is_file() for s in SPLITS):
        raise DataError(f"{lists}: no split file; expected test.txt and train.txt, val.txt or trainval.txt (one image "
                        f"id per line)")
    return lists


def resolve_voc_splits(image_sets: dict[str, np.ndarray], lists: Path, image_ids: Sequence[str],
                       choose_val: ChooseVal, how: str, test_from_val: bool = False,
                       labels: str = "annotations") -> ResolvedSplits:
    """Train / val / trainval / test from the split files found (``image_sets``: file name -> indices) in the list
    folder ``lists``; ``image_ids``: the id of every index (for notes); ``how``: the word for ``choose_val``'s draw
    in notes (``"stratified"``); ``labels``: what VOC2012 keeps private (``"annotations"``, ``"masks"``)."""
    notes: list[str] = []
    where = f"{lists.parent.name}/{lists.name}"

    def derive(pool: np.ndarray, pool_name: str) -> tuple[np.ndarray, np.ndarray]:
        if len(pool) < 2:
            raise DataError(f"{lists.parent.parent}: the {pool_name} split has {len(pool)} readable image(s); at "
                            f"least 2 are needed to draw a val split from it")
        chosen = np.zeros(len(pool), bool)
        chosen[choose_val(pool, max(1, round(len(pool) * VAL_FRACTION)))] = True
        return pool[~chosen], pool[chosen]

    sets = image_sets
    if test_from_val:
        for s in ("train", "val"):
            if s not in sets:
                raise DataError(f"{lists / (s + '.txt')}: missing; VOC2012 needs train.txt and val.txt")
        test, trainval = sets["val"], sets["train"]
        train, val = derive(trainval, "official train")
        notes.append(f"VOC2012 test {labels} are not public: the official val split ({len(test)} images) is scored "
                     f"as 'test'; val is a fixed {how} {VAL_FRACTION:.0%} of the official train split ({len(val)} of "
                     f"{len(trainval)} images, seed {SPLIT_SEED}), train the rest")
    else:
        if "test" not in sets:
            raise DataError(f"{lists / 'test.txt'}: missing; expected a test split (one image id per line) to "
                            f"score on")
        test = sets["test"]
        if "val" in sets and ("train" in sets or "trainval" in sets):
            val = sets["val"]
            train = sets["train"] if "train" in sets else np.setdiff1d(sets["trainval"], val)
            trainval = sets.get("trainval", np.array(list(dict.fromkeys([*train.tolist(), *val.tolist()])),
                                                     np.int64))
        elif "trainval" in sets or "train" in sets:
            pool_name = "trainval" if "trainval" in sets else "train"
            trainval = sets[pool_name]
            train, val = derive(trainval, pool_name)
            notes.append(f"no {where}/val.txt: val is a fixed {how} {VAL_FRACTION:.0%} of {pool_name} ({len(val)} "
                         f"of {len(trainval)} images, seed {SPLIT_SEED}), train the rest")
        else:
            raise DataError(f"{lists}: no train.txt or trainval.txt; expected a training split")
    splits = {"train": train, "val": val, "trainval": trainval, "test": test}
    for s, idx in splits.items():
        if len(idx) == 0:
            raise DataError(f"{lists.parent.parent}: split {s!r} of {where} has no readable image (all listed images "
                            f"were skipped or the list is empty)")
    overlap = np.intersect1d(trainval, test)
    if len(overlap):
        notes.append(f"{len(overlap)} image(s) are in both trainval and test (e.g. {image_ids[int(overlap[0])]})")
    return ResolvedSplits(splits, notes)


def official_sizes(origin: str, want: dict[str, int] | None, image_sets: dict[str, np.ndarray]) -> bool | None:
    """``DatasetInfo.canonical`` of a VOC release: False for synthetic data, None where there is no official count
    (``want`` None: any other folder), else whether every official split file lists exactly ``want`` images (a
    count check, not a checksum)."""
    if origin == "synthetic":
        return False
    if want is None:
        return None
    return all(len(image_sets.get(s, ())) == n for s, n in want.items())


def split_indices(splits: dict[str, np.ndarray], split: str, dataset: str) -> np.ndarray:
    """The indices of ``split``; an unknown split name is a ConfigError naming the data set."""
    if split not in splits:
        raise ConfigError(f"unknown split {split!r} for {dataset}; expected train, val, test or trainval")
    return splits[split]


def split_manifest(info: Any, origin: str, split_ids: dict[str, list[str]], subset_seed: int,
                   **extra: Any) -> dict[str, Any]:
    """The manifest of a VOC-layout data set (``info``: its :class:`~benchsuite.data.datasets.DatasetInfo`): image
    ids per split and the fingerprints, with ``extra`` keys."""
    return {
        "dataset": info.name,
        **extra,
        "dataset_fingerprint": info.fingerprint,
        "fingerprint": hashlib.sha256(info.split_fingerprint.encode()).hexdigest()[:16],
        "origin": origin,
        "root": info.root,
        "classes": info.classes,
        "seed": SPLIT_SEED,
        "subset_seed": subset_seed,
        "counts": info.split_counts,
        "split_fingerprints": info.split_fingerprints,
        "notes": info.notes,
        "splits": split_ids,
    }
