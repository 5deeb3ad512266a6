"""Exact L1 distances, k-nearest neighbours and the vote, against brute-force numpy oracles.

Every kernel this CPU can run is checked, not only the one ``l1_distances`` picks: the portable
(max - min) kernel always, the ``psadbw`` kernels where the CPU has AVX2 / AVX-512BW.
"""

from __future__ import annotations

import numpy as np
import pytest

from benchsuite.ops import distances as dist
from benchsuite.ops.distances import l1_distances, l1_knn, vote

LENGTHS = [1, 7, 15, 16, 17, 31, 32, 33, 48, 63, 64, 65, 100, 3072, 3073]


def oracle(q: np.ndarray, r: np.ndarray) -> np.ndarray:
    q = q.reshape(len(q), -1).astype(np.int64)
    r = r.reshape(len(r), -1).astype(np.int64)
    return np.array([np.abs(row - r).sum(-1) for row in q], np.int64).reshape(len(q), len(r))


KERNELS = ["portable"] + (["sad32"] if dist.SAD_WIDTH >= 32 else []) + (["sad64"] if dist.SAD_WIDTH >= 64 else [])


@pytest.fixture()
def blocks(monkeypatch):
    """Set the query and reference block sizes (rows)."""
    def set_blocks(queries: int, refs: int) -> None:
        monkeypatch.setattr(dist, "QUERY_BLOCK", queries)
        monkeypatch.setattr(dist, "REF_BLOCK", refs)
    return set_blocks


def run(kernel: str, q: np.ndarray, r: np.ndarray) -> np.ndarray:
    return l1_distances(q, r, threads=2, kernel=kernel)


def knn_oracle(q: np.ndarray, r: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    full = oracle(q, r)
    order = np.array([np.lexsort((np.arange(len(r)), row))[:k] for row in full]).reshape(len(q), k)
    return np.take_along_axis(full, order, 1), order


@pytest.mark.parametrize("kernel", KERNELS)
def test_kernels_match_the_oracle_for_odd_lengths_and_row_counts(kernel, blocks):
    rng = np.random.default_rng(0)
    for d in LENGTHS:
        # 11 queries and 13 refs: no multiple of any register block (4 x 4, 4 x 2) nor of the blocks below
        q = rng.integers(0, 256, (11, d), dtype=np.uint8)
        r = rng.integers(0, 256, (13, d), dtype=np.uint8)
        want = oracle(q, r)
        for query_block, ref_block in [(256, 64), (5, 3), (1, 1)]:
            blocks(query_block, ref_block)
            np.testing.assert_array_equal(run(kernel, q, r), want, err_msg=f"d={d}, blocks {query_block, ref_block}")
            got_d, got_i = l1_knn(q, r, 4, threads=2, kernel=kernel)
            want_d, want_i = knn_oracle(q, r, 4)
            np.testing.assert_array_equal(got_d, want_d, err_msg=f"d={d}, blocks {query_block, ref_block}")
            np.testing.assert_array_equal(got_i, want_i, err_msg=f"d={d}, blocks {query_block, ref_block}")


@pytest.mark.parametrize("kernel", KERNELS)
def test_kernels_are_exact_at_the_extremes(kernel):
    rng = np.random.default_rng(1)
    for d in (1, 33, 3073):
        q = rng.choice(np.array([0, 255], np.uint8), (9, d))
        r = rng.choice(np.array([0, 255], np.uint8), (6, d))
        q[0], r[0] = 255, 0  # the largest distance, d * 255
        q[1], r[1] = 0, 255
        r[2] = q[2]  # distance 0
        got = run(kernel, q, r)
        np.testing.assert_array_equal(got, oracle(q, r))
        assert got[0, 0] == got[1, 1] == d * 255 and got[2, 2] == 0


@pytest.mark.parametrize("kernel", KERNELS)
def test_kernels_agree_on_a_cifar_sized_block(kernel, blocks):
    rng = np.random.default_rng(2)
    q = rng.integers(0, 256, (37, 3072), dtype=np.uint8)
    r = rng.integers(0, 256, (300, 3072), dtype=np.uint8)
    blocks(16, 64)
    np.testing.assert_array_equal(run(kernel, q, r), oracle(q, r))
    got_d, got_i = l1_knn(q, r, 10, threads=2, kernel=kernel)
    want_d, want_i = knn_oracle(q, r, 10)
    np.testing.assert_array_equal(got_d, want_d)
    np.testing.assert_array_equal(got_i, want_i)


@pytest.mark.skipif(dist.SAD_WIDTH == 0, reason="no AVX2 here")
def test_sad_kernel_with_other_register_blocks():
    rng = np.random.default_rng(3)
    q = rng.integers(0, 256, (10, 161), dtype=np.uint8)
    r = rng.integers(0, 256, (17, 161), dtype=np.uint8)
    for width, rows, cols in [(32, 3, 3), (dist.SAD_WIDTH, 1, 5)]:
        out = np.zeros((10, 17), np.uint32)
        dist._l1_rows(q, r, out, 0, 10, 8, width, rows, cols)
        np.testing.assert_array_equal(out, oracle(q, r), err_msg=f"{width} bytes, {rows} x {cols}")


def test_psadbw_width_follows_the_target_features(monkeypatch):
    base = "+64bit,+sse2,+avx"
    monkeypatch.setattr(dist.platform, "machine", lambda: "x86_64")
    for features, width in [(base, 0), (base + ",-avx2", 0), (base + ",+avx2", 32),
                            (base + ",+avx2,+avx512f,-avx512bw", 32), (base + ",+avx2,+avx512f,+avx512bw", 64)]:
        monkeypatch.setattr(dist.numba_config, "CPU_FEATURES", features)
        assert dist._psadbw_width() == width, features
    monkeypatch.setattr(dist.numba_config, "DISABLE_JIT", True)
    assert dist._psadbw_width() == 0
    monkeypatch.setattr(dist.numba_config, "DISABLE_JIT", False)
    monkeypatch.setattr(dist.platform, "machine", lambda: "aarch64")
    assert dist._psadbw_width() == 0


def test_l1_distances_public_api():
    rng = np.random.default_rng(4)
    q = rng.integers(0, 256, (5, 4, 4, 3), dtype=np.uint8)  # trailing shape is flattened
    r = rng.integers(0, 256, (7, 48), dtype=np.uint8)
    got = l1_distances(q, r)
    assert got.dtype == np.uint32 and got.shape == (5, 7)
    np.testing.assert_array_equal(got, oracle(q, r))
    np.testing.assert_array_equal(l1_distances(q[:, ::-1], r), oracle(q[:, ::-1], r))  # non-contiguous
    assert l1_distances(q[:0], r).shape == (0, 7) and l1_distances(q, r[:0]).shape == (5, 0)
    q.flags.writeable = r.flags.writeable = False  # e.g. memory-mapped data
    np.testing.assert_array_equal(l1_distances(q, r), oracle(q, r))
    with pytest.raises(TypeError):
        l1_distances(q.astype(np.int16), r)
    with pytest.raises(ValueError):
        l1_distances(q, r[:, :47])


def test_l1_knn_orders_by_distance_then_reference_index():
    rng = np.random.default_rng(5)
    r = rng.integers(0, 3, (60, 5), dtype=np.uint8)  # tiny range: many equal distances
    r[10] = r[3]
    q = np.concatenate([rng.integers(0, 3, (20, 5), dtype=np.uint8), r[[3]]])
    d, i = l1_knn(q, r, 8)
    full = oracle(q, r)
    for row in range(len(q)):
        order = np.lexsort((np.arange(len(r)), full[row]))[:8]
        np.testing.assert_array_equal(i[row], order)
        np.testing.assert_array_equal(d[row], full[row, order])
    assert list(i[-1, :2]) == [3, 10] and list(d[-1, :2]) == [0, 0]
    d, i = l1_knn(q[:2], r[:4], 10)  # k is capped at the number of references
    assert d.shape == i.shape == (2, 4)


@pytest.mark.parametrize("kernel", KERNELS)
def test_l1_knn_over_reference_parts_is_the_knn_over_their_concatenation(kernel, blocks):
    rng = np.random.default_rng(6)
    r = rng.integers(0, 4, (70, 2, 3, 3), dtype=np.uint8)  # a few values: ties across the parts
    r[40] = r[5]
    r[66] = r[5]
    q = np.concatenate([rng.integers(0, 4, (20, 2, 3, 3), dtype=np.uint8), r[[5]]])
    want_d, want_i = knn_oracle(q, r, 6)
    blocks(7, 8)
    for cuts in [(), (40,), (0, 33, 33, 69)]:  # empty parts too
        parts = np.split(r, cuts)
        got_d, got_i = l1_knn(q, parts, 6, threads=3, kernel=kernel)
        np.testing.assert_array_equal(got_d, want_d, err_msg=f"cut at {cuts}")
        np.testing.assert_array_equal(got_i, want_i, err_msg=f"cut at {cuts}")
    assert list(got_i[-1, :3]) == [5, 40, 66]
    with pytest.raises(ValueError, match="values per row"):
        l1_knn(q, [r, r[:, :1]], 3)


def test_l1_knn_reports_progress_per_query_block(blocks):
    rng = np.random.default_rng(7)
    q, r = rng.integers(0, 256, (10, 16), dtype=np.uint8), rng.integers(0, 256, (9, 16), dtype=np.uint8)
    blocks(3, 4)
    seen = []

    def progress(items, desc, total):
        seen.append(total)
        yield from items

    l1_knn(q, r, 2, progress=progress, threads=2)
    assert seen == [4]


def test_vote_breaks_ties_by_the_nearest_member():
    labels = np.array([[2, 1, 1, 2, 0], [0, 1, 2, 3, 4], [3, 3, 1, 1, 1]])
    np.testing.assert_array_equal(vote(labels, 4, 5), [2, 0, 3])
    np.testing.assert_array_equal(vote(labels, 5, 5), [2, 0, 1])
    np.testing.assert_array_equal(vote(labels, 1, 5), [2, 0, 3])


@pytest.mark.parametrize("count", [0, 1, 37, 1000, 5000])
def test_query_blocks_cover_the_queries_in_shrinking_blocks(count):
    blocks = dist._query_blocks(count, threads=2)
    bounds = [0] + [q1 for _, q1 in blocks]
    assert [q0 for q0, _ in blocks] == bounds[:-1] and bounds[-1] == count  # consecutive, no gap
    sizes = [q1 - q0 for q0, q1 in blocks]
    assert all(0 < s <= dist.QUERY_BLOCK for s in sizes)
    assert sizes == sorted(sizes, reverse=True)
    assert all(s % 4 == 0 for s in sizes[:-1])  # whole register blocks but the last


def test_the_torch_path_orders_neighbours_the_same_way():
    # the CUDA path's code (torch.cdist + topk on (distance, index) keys), run on the CPU device
    rng = np.random.default_rng(8)
    r = rng.integers(0, 3, (50, 6), dtype=np.uint8)
    q = np.concatenate([rng.integers(0, 3, (9, 6), dtype=np.uint8), r[[7]]])
    got_d, got_i = dist._knn_torch(q, r, 5, "cpu", lambda it, **_: it)
    want_d, want_i = knn_oracle(q, r, 5)
    np.testing.assert_array_equal(got_d, want_d)
    np.testing.assert_array_equal(got_i, want_i)
