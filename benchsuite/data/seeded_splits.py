"""Train / val / trainval / test for data sets that come with split folders or files, or with none.

One rule for every format without split lists of the VOC kind (``imagefolder``, ``coco``, ``yolo``, ``vocxml``):

- each image may carry the split its folder or file gave it (``train``, ``val``, ``test``; ``""`` for none);
- with given splits: ``test`` is test; ``val`` is val, else a fixed stratified ``val_fraction`` of train (drawn with
  the suite's split seed); with train and val but no test, val is scored as test and val is drawn from train;
- with none: test is a stratified ``test_fraction`` of all images, val a stratified ``val_fraction`` of the rest,
  both drawn with the split seed (:data:`benchsuite.data.splits.SPLIT_SEED`); train is the rest.

Strata are one label per image (the class for classification, the rarest class present for detection), so the
draws keep class proportions. The notes say which rule was applied, with the counts and the seed.
"""

from __future__ import annotations

import numpy as np

from benchsuite.data.splits import SPLIT_SEED, stratified_choice
from benchsuite.errors import DataError

SPLITS = ("train", "val", "test")
#: folder (or data.yaml key) names of splits, and the split each is
SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
#: the default ``test_fraction`` of every format without split lists: the share of all images drawn as test
TEST_FRACTION = 0.2


def draw(strata: np.ndarray, pool: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """``(rest, drawn)``: a stratified ``fraction`` of the indices ``pool`` (at least one when the pool holds two or
    more), drawn with the split seed; both sorted."""
    count = max(1, round(len(pool) * fraction)) if len(pool) > 1 else 0
    chosen = np.zeros(len(pool), bool)
    chosen[stratified_choice(strata[pool], count, SPLIT_SEED)] = True
    return pool[~chosen], pool[chosen]


def resolve_splits(strata: np.ndarray, given: np.ndarray, val_fraction: float, test_fraction: float, where: str
                   ) -> tuple[dict[str, np.ndarray], list[str]]:
    """Indices per split (``train``, ``val``, ``trainval``, ``test``) and notes on how they were made.

    Args:
        strata: ``(N,)`` int64 one stratum per image.
        given: ``(N,)`` str, each image's given split (``train``/``val``/``test``) or ``""``; either every image has
            one or none has.
        val_fraction, test_fraction: the fractions drawn where a split is not given.
        where: the data set's folder or file, for messages.
    """
    strata = np.asarray(strata, np.int64)
    given = np.asarray(given, dtype=object)
    everything = np.arange(len(strata))
    notes: list[str] = []
    if len(given) and any(g for g in given):
        by = {s: everything[given == s] for s in SPLITS}
        if not len(by["test"]) and len(by["val"]):
            by["test"], by["val"] = by["val"], np.zeros(0, np.int64)
            notes.append("no test split given: the given val split is scored as test")
        if not len(by["test"]):
            raise DataError(f"{where}: the given splits hold no test image; expected a test split (or val, scored as "
                            f"test)")
        if not len(by["train"]):
            raise DataError(f"{where}: the given splits hold no training image; expected a train split")
        if len(by["val"]):
            train, val = by["train"], by["val"]
        else:
            train, val = draw(strata, by["train"], val_fraction)
            notes.append(f"no val split given: val is a fixed stratified {val_fraction:g} of train ({len(val)} of "
                         f"{len(by['train'])} images, seed {SPLIT_SEED}), train the rest")
        test = by["test"]
    else:
        if len(strata) < 3:
            raise DataError(f"{where}: {len(strata)} usable image(s); at least 3 are needed to draw train, val and "
                            f"test")
        rest, test = draw(strata, everything, test_fraction)
        train, val = draw(strata, rest, val_fraction)
        notes.append(f"no split given: test is a fixed stratified {test_fraction:g} of all images ({len(test)}), val "
                     f"a stratified {val_fraction:g} of the rest ({len(val)}), train the rest ({len(train)}); seed "
                     f"{SPLIT_SEED}")
    trainval = np.sort(np.concatenate([train, val]))
    return {"train": train, "val": val, "trainval": trainval, "test": test}, notes
