"""Evidence files: what a task saves when it scores a split, read back exactly by the report."""

from __future__ import annotations

import io

import numpy as np
import pytest

from benchsuite.metrics import bootstrap as bs
from benchsuite.metrics.detection import match
from benchsuite.results.evidence import (
    EVIDENCE_VERSION,
    evidence_name,
    load_evidence,
    pack_ragged,
    save_evidence,
    unpack_ragged,
)


def test_round_trip_keeps_arrays_and_names_the_task(tmp_path):
    path = tmp_path / evidence_name("test")
    arrays = {"correct": np.array([True, False, True]), "ids": np.array(["a", "b", "c"]),
              "image": np.arange(24, dtype=np.uint8).reshape(2, 4, 3)}
    save_evidence(path, "classification", arrays)
    ev = load_evidence(path)
    assert (ev.task, ev.version, path.name) == ("classification", EVIDENCE_VERSION, "evidence-test.npz")
    assert set(ev.arrays) == set(arrays)
    for name, value in arrays.items():
        assert ev[name].dtype == value.dtype and np.array_equal(ev[name], value)


def test_bad_evidence_is_refused_with_a_reason(tmp_path):
    with pytest.raises(ValueError, match="reserved"):
        save_evidence(tmp_path / "e.npz", "t", {"__task__": np.zeros(1)})
    with pytest.raises(ValueError, match="hold Python objects"):
        save_evidence(tmp_path / "e.npz", "t", {"mixed": np.array([1, "a", None], dtype=object)})
    plain = tmp_path / "plain.npz"
    np.savez(plain, labels=np.zeros(3))
    with pytest.raises(ValueError, match="not an evidence file"):
        load_evidence(plain)
    newer = tmp_path / "newer.npz"
    buf = io.BytesIO()
    np.savez(buf, __task__=np.asarray("t"), __version__=np.asarray(EVIDENCE_VERSION + 1))
    newer.write_bytes(buf.getvalue())
    with pytest.raises(ValueError, match="newer than this benchsuite reads"):
        load_evidence(newer)
    with pytest.raises(OSError):
        load_evidence(tmp_path / "missing.npz")


def test_ragged_packing_round_trips_empty_images():
    parts = [np.zeros((0, 4)), np.ones((2, 4)), np.zeros((0, 4)), np.full((1, 4), 3.0)]
    values, offsets = pack_ragged(parts, (4,))
    assert values.shape == (3, 4) and offsets.tolist() == [0, 0, 2, 2, 3]
    back = unpack_ragged(values, offsets)
    assert [p.shape for p in back] == [p.shape for p in parts]
    assert all(np.array_equal(a, b) for a, b in zip(back, parts))
    none, off = pack_ragged([np.zeros((0, 4))] * 2, (4,))
    assert none.shape == (0, 4) and off.tolist() == [0, 0, 0]


def test_saved_detection_and_proposal_evidence_give_the_same_resamples(tmp_path):
    rng = np.random.default_rng(5)
    gt_b, gt_l, gt_d, det_b, det_s, det_l = [], [], [], [], [], []
    for _ in range(12):
        m = int(rng.integers(0, 4))
        xy = rng.uniform(0, 100, (m, 2))
        boxes = np.hstack([xy, xy + rng.uniform(10, 60, (m, 2))])
        gt_b.append(boxes)
        gt_l.append(rng.integers(0, 2, m))
        gt_d.append(rng.uniform(size=m) < 0.2)
        jitter = boxes + rng.normal(0, 5, boxes.shape)
        jitter[:, 2:] = np.maximum(jitter[:, 2:], jitter[:, :2] + 1)
        det_b.append(jitter)
        det_s.append(rng.uniform(size=m))
        det_l.append(gt_l[-1].copy())
    det = bs.detection_evidence(match(gt_b, gt_l, gt_d, det_b, det_s, det_l, 2))
    prop = bs.proposal_evidence(gt_b, gt_l, gt_d, det_b, 2)
    save_evidence(tmp_path / "d.npz", "detection", det.to_arrays())
    save_evidence(tmp_path / "p.npz", "proposals", prop.to_arrays())
    det_back = bs.DetectionEvidence.from_arrays(dict(load_evidence(tmp_path / "d.npz").arrays))
    prop_back = bs.ProposalEvidence.from_arrays(dict(load_evidence(tmp_path / "p.npz").arrays))
    assert np.array_equal(bs.map50_resamples(det_back), bs.map50_resamples(det), equal_nan=True)
    for a, b in zip(bs.proposal_resamples(prop_back), bs.proposal_resamples(prop)):
        assert np.array_equal(a, b, equal_nan=True)
