"""The proposal cache: computed once, served from disk after, missed when a parameter or the image changes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from PIL import Image

from benchsuite.api import Proposer
from benchsuite.data.detection import DetectionSample, DetectionSet
from benchsuite.proposal_cache import (
    ProposalStore,
    cached_proposals,
    image_key,
    parallel_map,
    produce_for_consumers,
    proposals_for,
    proposals_for_images,
    proposer_key,
)


class CountingProposer(Proposer):
    """Boxes derived from the pixels and a parameter; counts its calls (in this process)."""

    id: ClassVar[str] = "test-counting"
    family: ClassVar[str] = "classical"
    calls: ClassVar[list[tuple[int, int]]] = []
    cache_ignored_params: ClassVar[tuple[str, ...]] = ("n_jobs",)

    def __init__(self, size: int = 4, n_jobs: int = 1):
        self.size = size
        self.n_jobs = n_jobs

    def propose(self, image: np.ndarray) -> np.ndarray:
        CountingProposer.calls.append(image.shape[:2])
        v = float(image[0, 0, 0] % 10)
        return np.array([[v, 0, v + self.size, self.size], [0, 0, 1, 1]], np.float32)


def _dataset(folder: Path, n: int = 3, seed: int = 0) -> DetectionSet:
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(n):
        path = folder / f"im{i}.png"
        Image.fromarray(rng.integers(0, 256, (12 + i, 16, 3), dtype=np.uint8)).save(path)
        samples.append(DetectionSample.empty(f"im{i}", path, 16, 12 + i))
    return DetectionSet(samples, ("thing",), "tiny/test")


def test_second_call_hits_cache_and_changed_param_misses(tmp_path):
    data = _dataset(tmp_path)
    cache = tmp_path / "cache"
    CountingProposer.calls.clear()
    first = proposals_for(data, CountingProposer(size=4), cache, workers=1)
    assert len(CountingProposer.calls) == 3
    second = proposals_for(data, CountingProposer(size=4, n_jobs=8), cache, workers=1)  # n_jobs is ignored
    assert len(CountingProposer.calls) == 3, "cached proposals were recomputed"
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == np.float32 and a.shape == (2, 4)
    proposals_for(data, CountingProposer(size=5), cache, workers=1)
    assert len(CountingProposer.calls) == 6, "a changed parameter must miss the cache"


def test_detect_time_lookup_shares_entries_with_the_dataset_path(tmp_path):
    data = _dataset(tmp_path, n=2)
    cache = tmp_path / "cache"
    CountingProposer.calls.clear()
    stored = proposals_for(data, CountingProposer(), cache, workers=1)
    image = data.load_image(1)
    np.testing.assert_array_equal(cached_proposals(image, CountingProposer(), cache), stored[1])
    assert len(CountingProposer.calls) == 2
    other = image.copy()
    other[0, 0, 0] ^= 1  # different pixels: a different entry
    proposals_for_images([image, other], CountingProposer(), cache)
    assert len(CountingProposer.calls) == 3


def test_changed_file_misses_the_file_index(tmp_path):
    data = _dataset(tmp_path, n=1)
    cache = tmp_path / "cache"
    CountingProposer.calls.clear()
    proposals_for(data, CountingProposer(), cache, workers=1)
    path = data[0].path
    Image.fromarray(np.full((12, 16, 3), 7, np.uint8)).save(path)
    os.utime(path, ns=(1, 1))  # a new modification time, whatever the clock's resolution
    out = proposals_for(data, CountingProposer(), cache, workers=1)
    assert len(CountingProposer.calls) == 2
    assert out[0][0, 0] == 7.0


def test_the_same_pixels_under_another_path_are_served_by_content_not_recomputed(tmp_path):
    """A copy of the data elsewhere (another node, where the Ray executor installs the producer's content
    entries but not its file index) misses the file index and is decoded, found and read, not proposed again."""
    import shutil

    from benchsuite.measure import cache_use

    data = _dataset(tmp_path, n=3)
    cache = tmp_path / "cache"
    CountingProposer.calls.clear()
    first = proposals_for(data, CountingProposer(), cache, workers=1)
    (tmp_path / "copy").mkdir()
    for sample in data:
        shutil.copy(sample.path, tmp_path / "copy" / sample.path.name)
    copy = DetectionSet([DetectionSample.empty(s.image_id, tmp_path / "copy" / s.path.name, s.width, s.height)
                         for s in data], data.classes, "tiny/copy")
    cache_use.reset()
    again = proposals_for(copy, CountingProposer(), cache, workers=1)
    assert len(CountingProposer.calls) == 3, "the copy's proposals were computed again"
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    used = cache_use.snapshot()["test-counting"]
    assert (used["cached_images"], used["computed_images"]) == (3, 0)
    assert ProposalStore(cache, CountingProposer()).content_key_of_file(copy[0].path) is not None  # indexed now
    cache_use.reset()


def test_keys_and_store_layout(tmp_path):
    a = np.zeros((4, 5, 3), np.uint8)
    assert image_key(a) == image_key(a.copy())
    assert image_key(a) != image_key(np.zeros((5, 4, 3), np.uint8))  # same bytes, other shape
    assert proposer_key(CountingProposer(size=4)) == proposer_key(CountingProposer(size=4, n_jobs=3))
    assert proposer_key(CountingProposer(size=4)) != proposer_key(CountingProposer(size=3))
    store = ProposalStore(tmp_path, CountingProposer())
    assert store.get("nothing") is None
    store.put("k", np.ones((3, 4)))
    got = store.get("k")
    assert got is not None and got.dtype == np.float32 and got.shape == (3, 4)
    assert not [p for p in store.folder.iterdir() if "tmp" in p.name]


def _square(x: int) -> int:
    return x * x


@pytest.mark.slow
def test_parallel_map_over_processes_keeps_order():
    assert parallel_map(_square, list(range(7)), workers=2) == [x * x for x in range(7)]


def test_the_ledger_counts_each_image_once_as_read_or_computed(tmp_path):
    """What the record's ``consumed`` block reports: distinct images computed by this process, distinct images
    served from the cache that it did not compute (the ones another job stored), and the seconds of each."""
    from benchsuite.measure import cache_use
    from benchsuite.proposal_cache import store_proposals

    data = _dataset(tmp_path, n=3)
    cache = tmp_path / "cache"
    images = [data.load_image(i) for i in range(3)]
    store_proposals(images[2:], [np.zeros((1, 4), np.float32)], CountingProposer(), cache)  # "the producer"
    cache_use.reset()
    proposals_for_images(images, CountingProposer(), cache)  # image 2 from the cache, 0 and 1 computed
    proposals_for_images(images[:2], CountingProposer(), cache)  # its own entries read again: no new count
    proposals_for(data, CountingProposer(size=5), cache, workers=1)  # other parameters: three more computed
    used = cache_use.snapshot()["test-counting"]
    assert (used["cached_images"], used["computed_images"]) == (1, 2 + 3)
    assert used["read_s"] >= 0 and used["compute_s"] > 0
    cache_use.reset()
    assert cache_use.snapshot() == {}


class _Splits:
    """A data set of named splits, loaded with a cap as the worker's ``dataset.load(split, cap)``."""

    def __init__(self, splits: dict[str, DetectionSet]):
        self.splits = splits

    def load(self, split: str, cap: int | None) -> DetectionSet:
        data = self.splits[split]
        return data if cap is None else DetectionSet(data.samples[:cap], data.classes, data.name)


def test_a_producer_proposes_its_consumers_train_and_val_once_apart_from_its_own_ledger(tmp_path):
    """Issue 28, part 5: the producer fills the cache for the consumers' train and val images, once, and says so
    in its ``produced`` block; a consumer then reads them all and computes none; the producer's own ledger (its
    ``consumed`` block) is left as it was."""
    from benchsuite.measure import cache_use

    (tmp_path / "train").mkdir()
    (tmp_path / "val").mkdir()
    dataset = _Splits({"train": _dataset(tmp_path / "train", n=4), "val": _dataset(tmp_path / "val", n=2, seed=1)})
    cache = tmp_path / "cache"
    proposals_for(dataset.load("val", None), CountingProposer(), cache, workers=1)  # a val image already cached
    cache_use.reset()
    CountingProposer.calls.clear()
    # two consumers: one loads 3 train images, the other 2 (a prefix here) and every val image
    loads = [("train", 3), ("val", None), ("train", 2)]
    made = produce_for_consumers(CountingProposer(), dataset, loads, cache, ["job-a", "job-b"], workers=1)
    assert made["consumer_jobs"] == ["job-a", "job-b"] and made["images"] == {"train": 3, "val": 2}
    assert (made["computed_images"], made["cached_images"]) == (3, 2) and len(CountingProposer.calls) == 3
    assert made["proposer_key"] == proposer_key(CountingProposer()) and made["compute_s"] > 0
    assert cache_use.snapshot() == {}  # made for others, not consumed
    # a consumer with the same proposer parameters (another n_jobs) computes nothing
    for split, cap in (("train", 3), ("val", None)):
        proposals_for(dataset.load(split, cap), CountingProposer(n_jobs=4), cache, workers=1)
    assert len(CountingProposer.calls) == 3
    assert cache_use.snapshot()["test-counting"]["computed_images"] == 0
    assert made["left_images"] == 0
    # past its deadline (most of the job's time limit gone), the producer starts no chunk: the consumers compute
    late = produce_for_consumers(CountingProposer(size=6), dataset, loads, cache, ["job-a"], workers=1, deadline=0.0)
    assert (late["left_images"], late["computed_images"]) == (4 + 2 - 1, 0) and len(CountingProposer.calls) == 3
    # the deadline passes between two loads: the second load's images that the first proposed are not left
    ticks = iter([0.0] * 3 + [10.0] * 4)  # one tick per chunk of one image
    mid = produce_for_consumers(CountingProposer(size=7), dataset, [("train", 3), ("train", 2), ("val", None)], cache,
                                ["job-a"], workers=1, deadline=5.0, chunk=1, clock=lambda: next(ticks))
    assert (mid["computed_images"], mid["left_images"]) == (3, 2)  # train's three made; val's two left
    cache_use.reset()


def test_the_pool_defaults_to_the_jobs_threads(monkeypatch):
    from benchsuite.proposal_cache import THREADS_ENV, default_workers

    cpus = len(os.sched_getaffinity(0))
    monkeypatch.setenv(THREADS_ENV, "1")
    assert default_workers() == 1 and default_workers(3) == 3  # an explicit request wins
    monkeypatch.setenv(THREADS_ENV, str(cpus + 5))
    assert default_workers() == cpus  # never more than this process may use
    monkeypatch.delenv(THREADS_ENV)
    assert default_workers() == cpus
