"""Vectorised stump training against a brute-force search; stages and cascades on small synthetic problems."""

from __future__ import annotations

import numpy as np
import pytest

from benchsuite.ops.boosting import Cascade, Stage, fit_stumps, stump_predict, train_cascade, train_stage


def _brute_force(values: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Minimum weighted error per feature over every threshold (below, between distinct values, above)
    and both polarities, one candidate at a time."""
    best = []
    for v in values.astype(np.float64):
        u = np.unique(v)
        candidates = np.r_[u[0] - 1, (u[1:] + u[:-1]) / 2, u[-1] + 1]
        best.append(min(float(weights[stump_predict(v, t, p) != labels].sum())
                        for t in candidates for p in (1, -1)))
    return np.array(best)


@pytest.mark.parametrize("seed", range(6))
def test_fit_stumps_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    # few distinct values: many ties, which the vectorised search must not cut between
    values = rng.integers(0, 5 + seed, (9, n)).astype(np.float32)
    labels = rng.random(n) < 0.4
    weights = rng.random(n)
    fit = fit_stumps(values, labels, weights)
    brute = _brute_force(values, labels, weights)
    np.testing.assert_allclose(fit.error, brute, atol=1e-12)
    # the returned stump achieves the error it reports
    achieved = [weights[stump_predict(v, t, p) != labels].sum()
                for v, t, p in zip(values, fit.threshold, fit.polarity)]
    np.testing.assert_allclose(achieved, brute, atol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_real_adaboost_stumps_match_brute_force_z(seed):
    rng = np.random.default_rng(10 + seed)
    n = int(rng.integers(2, 30))
    values = rng.integers(0, 6, (5, n)).astype(np.float32)
    labels = rng.random(n) < 0.5
    weights = rng.random(n)
    fit = fit_stumps(values, labels, weights, criterion="z")
    for f, v in enumerate(values.astype(np.float64)):
        u = np.unique(v)
        zs = []
        for t in np.r_[u[0] - 1, (u[1:] + u[:-1]) / 2, u[-1] + 1]:
            a = v > t
            zs.append(2 * sum(np.sqrt(weights[side & labels].sum() * weights[side & ~labels].sum())
                              for side in (a, ~a)))
        assert fit.error[f] == pytest.approx(min(zs), abs=1e-12)
        side = v > fit.threshold[f]
        z = 2 * sum(np.sqrt(weights[s & labels].sum() * weights[s & ~labels].sum()) for s in (side, ~side))
        assert z == pytest.approx(min(zs), abs=1e-12)
        # the confidence-rated outputs: half the log ratio of (smoothed) positive to negative weight per side
        eps = 1 / (2 * n)
        expect = 0.5 * np.log((weights[side & labels].sum() + eps) / (weights[side & ~labels].sum() + eps))
        assert fit.above[f] == pytest.approx(expect)


def test_fit_stumps_separable_feature_has_zero_error():
    values = np.array([[0.0, 1.0, 2.0, 3.0], [3.0, 2.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    labels = np.array([False, False, True, True])
    fit = fit_stumps(values, labels, np.full(4, 0.25))
    assert fit.error[0] == 0 and fit.polarity[0] == 1 and 1 < fit.threshold[0] < 2
    assert fit.error[1] == 0 and fit.polarity[1] == -1
    assert fit.error[2] == pytest.approx(0.5)  # a constant feature cannot do better than chance


def _gaussian_problem(rng, n, positive, dims=12, informative=4, shift=2.0):
    x = rng.normal(size=(dims, n))
    if positive:
        x[:informative] += shift
    return x


def test_stage_meets_its_detection_rate_on_validation_positives():
    rng = np.random.default_rng(3)
    pos, neg = _gaussian_problem(rng, 300, True, shift=1.2), _gaussian_problem(rng, 300, False)
    val_pos, val_neg = _gaussian_problem(rng, 200, True, shift=1.2), _gaussian_problem(rng, 200, False)
    values = np.concatenate([pos, neg], axis=1)
    labels = np.r_[np.ones(300, bool), np.zeros(300, bool)]
    for boosting in ("discrete", "real"):
        stage, info = train_stage(values, labels, val_pos, val_neg, detection_rate=0.98, false_positive_rate=0.4,
                                  boosting=boosting)
        assert info["detection_rate"] >= 0.98 and info["false_positive_rate"] <= 0.4
        assert np.mean(stage.scores(val_pos[stage.features]) >= stage.threshold) == info["detection_rate"]
        assert set(stage.features[:4].tolist()) == set(range(4))  # the informative features come first


def test_cascade_separates_a_synthetic_problem_with_bootstrapped_negatives():
    rng = np.random.default_rng(4)
    asked = []

    def negatives(cascade: Cascade, count: int) -> np.ndarray:
        # the cascade's false positives: fresh negatives that pass every stage so far
        asked.append(len(cascade))
        kept = []
        for _ in range(200):
            x = _gaussian_problem(rng, 4000, False)
            kept.append(x[:, cascade.passes(x)] if len(cascade) else x)
            if sum(k.shape[1] for k in kept) >= count:
                break
        return np.concatenate(kept, axis=1)[:, :count]

    cascade, info = train_cascade(_gaussian_problem(rng, 400, True), _gaussian_problem(rng, 300, True), negatives,
                                  max_stages=4, detection_rate=0.99, false_positive_rate=0.5,
                                  negatives_per_stage=400, val_negatives_per_stage=300)
    assert len(cascade) == 4 and asked == [0, 1, 2, 3]
    assert all(s["false_positive_rate"] <= 0.5 and s["detection_rate"] >= 0.99 for s in info)
    test_pos, test_neg = _gaussian_problem(rng, 2000, True), _gaussian_problem(rng, 20000, False)
    detection = cascade.passes(test_pos).mean()
    false_pos = cascade.passes(test_neg).mean()
    assert detection >= 0.85 and false_pos <= 0.1
    # early rejection: far fewer feature evaluations than every stage on every negative
    _, _, evaluated, _ = cascade.evaluate(test_neg)
    assert evaluated < 0.7 * sum(cascade.stumps_per_stage) * test_neg.shape[1]


def test_stage_sizes_schedule_small_first_stages_and_short_negative_supply():
    rng = np.random.default_rng(5)
    asked = []

    def negatives(cascade: Cascade, count: int) -> np.ndarray:
        asked.append(count)
        x = _gaussian_problem(rng, 6000, False)
        x = x[:, cascade.passes(x)] if len(cascade) else x
        return x[:, :90]  # always fewer than asked: the stages use what there is

    # a false-positive target no stage can meet: every stage grows to its place in the schedule
    cascade, info = train_cascade(_gaussian_problem(rng, 300, True, shift=1.0), _gaussian_problem(rng, 200, True,
                                  shift=1.0), negatives, max_stages=4, detection_rate=0.99, false_positive_rate=0.0,
                                  target_false_positive_rate=0.0, max_stumps_per_stage=8, negatives_per_stage=400,
                                  val_negatives_per_stage=100, stage_sizes=(2, 5, 10), size_false_positive_rate=1.0)
    assert cascade.stumps_per_stage == [2, 5, 8, 8]  # 2, 5, then 10 capped by max_stumps_per_stage
    assert [s["stumps_planned"] for s in info] == [2, 5, 8, 8] and asked == [500] * 4
    for s in info:
        assert s["negatives_asked"] == 500 and s["negatives"] + s["val_negatives"] == 90
        assert s["detection_rate"] >= 0.99
    with pytest.raises(ValueError, match="stage_sizes"):
        train_cascade(np.zeros((3, 5)), np.zeros((3, 5)), negatives, stage_sizes=(2, 0))


def test_positive_weight_makes_a_one_stump_stage_keep_the_positives():
    # feature 0 separates the bulk of the classes but a tenth of the positives sit among the negatives
    rng = np.random.default_rng(6)
    pos = np.r_[rng.normal(3.0, 0.3, 270), rng.normal(-0.5, 0.3, 30)][None, :]
    neg = rng.normal(0.0, 0.5, 300)[None, :]
    values = np.concatenate([pos, neg], axis=1)
    labels = np.r_[np.ones(300, bool), np.zeros(300, bool)]
    kept = {}
    for weight in (1.0, 30.0):
        stage, _ = train_stage(values, labels, pos, neg, detection_rate=0.0, max_stumps=1, positive_weight=weight)
        kept[weight] = float(np.mean(stump_predict(pos[0], stage.thresholds[0], stage.polarities[0])))
    # symmetric weights cut between the bulks (losing the stray tenth); heavy positive weight keeps them all
    assert kept[1.0] == pytest.approx(0.9, abs=0.02) and kept[30.0] == 1.0
    with pytest.raises(ValueError, match="positive_weight"):
        train_stage(values, labels, pos, neg, positive_weight=0.0)


def test_a_stage_grows_past_its_planned_size_until_it_rejects_something():
    rng = np.random.default_rng(7)
    pos, neg = _gaussian_problem(rng, 300, True, shift=1.2), _gaussian_problem(rng, 300, False)
    val_pos, val_neg = _gaussian_problem(rng, 300, True, shift=1.2), _gaussian_problem(rng, 300, False)
    values = np.concatenate([pos, neg], axis=1)
    labels = np.r_[np.ones(300, bool), np.zeros(300, bool)]

    def passing(stage, n: int) -> float:
        """Share of val negatives the first ``n`` stumps pass, thresholded for 99% of val positives."""
        prefix = Stage(stage.features[:n], stage.thresholds[:n], stage.polarities[:n], stage.alphas[:n], 0.0)
        threshold = np.sort(prefix.scores(val_pos[prefix.features]))[int(0.01 * 300)] - 1e-9
        return float(np.mean(prefix.scores(val_neg[prefix.features]) >= threshold))

    stage, info = train_stage(values, labels, val_pos, val_neg, detection_rate=0.99, false_positive_rate=0.0,
                              max_stumps=30, size=1, size_false_positive_rate=0.6)
    n = len(stage)
    assert 1 < n < 30 and info["false_positive_rate"] <= 0.6 and info["detection_rate"] >= 0.99
    assert passing(stage, n) == pytest.approx(info["false_positive_rate"])
    assert all(passing(stage, k) > 0.6 for k in range(1, n))  # every shorter prefix rejected too little


def test_heartbeat_logs_at_its_interval(caplog):
    from benchsuite.ops.boosting import Heartbeat

    built = []

    def line() -> str:
        built.append(1)
        return "busy"

    with caplog.at_level("INFO", logger="benchsuite.ops.boosting"):
        slow = Heartbeat("x: ", every=1e9)
        for _ in range(5):
            slow(line)
        slow(line, force=True)
        eager = Heartbeat("y: ", every=0.0)
        for _ in range(3):
            eager(line)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["x: busy", "y: busy", "y: busy", "y: busy"] and len(built) == 4  # built only when logged
