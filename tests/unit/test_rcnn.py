"""R-CNN pieces: proposal labelling against a direct computation, box coding against torchvision's
BoxCoder, balanced minibatches, region warping, and an end-to-end smoke run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchsuite.ops.box_coding import decode_boxes, encode_boxes
from benchsuite.runner.run import RunConfig, run
from pipelines.deep.rcnn import balanced_batches, context_boxes, label_proposals, resolve_backbone, warp_regions


def _random_boxes(rng: np.random.Generator, n: int, size: float = 100.0) -> np.ndarray:
    xy = rng.uniform(0, size, (n, 2))
    wh = rng.uniform(2, size / 2, (n, 2))
    return np.concatenate([xy, xy + wh], 1)


def _iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def test_labelling_matches_a_direct_computation():
    rng = np.random.default_rng(0)
    gt = _random_boxes(rng, 5)
    gt_labels = np.array([0, 2, 1, 1, 0])
    difficult = np.array([False, False, True, False, False])
    # proposals: jittered copies of the boxes (many positives and ignored ones) and random boxes
    jitter = np.repeat(gt, 30, axis=0) + rng.normal(0, 6, (150, 4))
    jitter[:, 2:] = np.maximum(jitter[:, 2:], jitter[:, :2] + 1)
    props = np.concatenate([jitter, _random_boxes(rng, 200)])
    labels, matched, best = label_proposals(props, gt, gt_labels, difficult, fg_iou=0.5, bg_iou=0.3)
    counts = {-1: 0, 0: 0, 1: 0}
    for i, p in enumerate(props):
        ious = [_iou(p, g) for g in gt]
        regular = [j for j in range(5) if not difficult[j]]
        j_best = max(regular, key=lambda j: ious[j])  # first on ties, as argmax
        if ious[j_best] >= 0.5:
            want = gt_labels[j_best] + 1
            assert matched[i] == j_best
        elif max(ious) < 0.3:
            want = 0
        else:
            want = -1
        assert labels[i] == want, (i, ious)
        assert best[i] == pytest.approx(ious[j_best])
        counts[min(int(want), 1)] += 1
    assert min(counts.values()) > 10  # every case was exercised


def test_labelling_without_ground_truth_is_all_background():
    labels, matched, best = label_proposals(_random_boxes(np.random.default_rng(1), 7), np.zeros((0, 4)),
                                            np.zeros(0, np.int64))
    assert (labels == 0).all() and (matched == -1).all() and (best == 0).all()


def test_box_coding_round_trip_and_torchvision_agreement():
    from torchvision.models.detection._utils import BoxCoder

    rng = np.random.default_rng(2)
    ref, tgt = _random_boxes(rng, 50), _random_boxes(rng, 50)
    deltas = encode_boxes(ref, tgt)
    assert np.allclose(decode_boxes(ref, deltas), tgt, atol=1e-9)
    coder = BoxCoder(weights=(10.0, 10.0, 5.0, 5.0))  # = stds (0.1, 0.1, 0.2, 0.2)
    want = coder.encode_single(torch.tensor(tgt), torch.tensor(ref)).numpy()
    assert np.allclose(deltas, want, atol=1e-9)
    decoded = coder.decode_single(torch.tensor(deltas), torch.tensor(ref)).numpy()
    assert np.allclose(decode_boxes(ref, deltas), decoded, atol=1e-9)
    with pytest.raises(ValueError, match="x2 > x1"):
        encode_boxes([[0, 0, 0, 5]], [[0, 0, 4, 4]])


def test_balanced_batches_have_the_asked_positive_fraction():
    labels = np.array([0] * 90 + [1] * 7 + [2] * 3)
    batches = balanced_batches(labels, 32, 0.25, steps=20, rng=np.random.default_rng(0))
    assert batches.shape == (20, 32)
    assert ((labels[batches] > 0).sum(1) == 8).all()
    # positives cycle through the whole pool before repeating
    assert set(batches[:2, :8].ravel()) == set(np.flatnonzero(labels > 0))


def test_warped_region_reads_the_box_and_fills_outside_with_the_mean():
    image = np.zeros((60, 80, 3), np.uint8)
    image[10:30, 20:60] = (200, 100, 50)
    mean = np.array([7.0, 8.0, 9.0])
    crops = warp_regions(image, np.array([[24, 14, 56, 26], [-200, -200, -100, -100]], np.float32), 16, 0, mean)
    assert crops.shape == (2, 3, 16, 16)
    assert torch.allclose(crops[0], torch.tensor([200.0, 100.0, 50.0]).view(3, 1, 1), atol=1e-3)
    assert torch.allclose(crops[1], torch.tensor(mean, dtype=torch.float32).view(3, 1, 1), atol=1e-3)
    # context: the box sits `context` pixels in from each side of the warped square
    big = context_boxes(np.array([[20, 10, 60, 30]]), 16, 4)
    assert np.allclose(big, [[0, 0, 80, 40]])


def test_scratch_backbone_when_no_weights_are_at_hand(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    assert resolve_backbone("auto", None)[::2] == ("compact", "scratch")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_backbone("auto", str(tmp_path / "missing.pth"))


@pytest.mark.slow
def test_rcnn_smoke_run_on_synthetic_voc(tmp_path, cache_dir, assert_records_match_schema):
    cfg = RunConfig(profile="smoke", tasks=["detection"], out=tmp_path / "run", cache_dir=cache_dir,
                    data_root=tmp_path / "no-data", pipelines=["rcnn"])
    rec = run(cfg).records[0]
    assert rec["status"] == "ok", rec["error"]
    assert rec["metrics"]["num_images"] == 16 and rec["fit_info"]["weights"] == "scratch"
    assert rec["fit_info"]["positive_regions"] > 0
    used = rec["consumed"]["selective-search"]  # no selective-search job in the run: rcnn computes what it lacks
    assert used["producer_job"] is None and used["cached_images"] + used["computed_images"] == 24 + 8 + 16
    assert_records_match_schema(tmp_path / "run")
