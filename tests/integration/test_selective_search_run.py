"""selective-search, opencv-selective-search and ss-hog-svm end to end on the synthetic VOC set (smoke)."""

from __future__ import annotations

import numpy as np
import pytest

from benchsuite.proposal_cache import ProposalStore
from benchsuite.runner.run import RunConfig, run
from pipelines.classical.selective_search import SelectiveSearch
from pipelines.classical.ss_hog_svm import context_boxes, usable_proposals


@pytest.mark.slow
def test_selective_search_rows_and_ss_hog_svm_on_synthetic_voc(tmp_path, cache_dir, assert_records_match_schema):
    cache = tmp_path / "cache"  # a fresh proposal cache: the run must fill it
    cfg = RunConfig(profile="smoke", tasks=["proposals", "detection"], out=tmp_path / "run", cache_dir=cache,
                    data_root=tmp_path / "no-data",
                    pipelines=["selective-search", "opencv-selective-search", "ss-hog-svm"])
    result = run(cfg)
    recs = {r["pipeline"]: r for r in result.records}
    assert_records_match_schema(result.run_dir)
    for r in recs.values():
        assert r["status"] == "ok", r["error"]
    ours, ref = recs["selective-search"]["metrics"], recs["opencv-selective-search"]["metrics"]
    for m in (ours, ref):
        assert 0 < m["recall_at_100_iou50"] <= m["recall_at_2000_iou50"] <= 1 and 0 < m["mabo"] <= 1
    assert ours["recall_at_2000_iou50"] >= 0.6  # at 200 pixels and one scale (smoke), still most objects
    assert recs["selective-search"]["fit_info"]["strategies"] == 4  # 2 colour spaces x 1 k x 2 similarities

    det = recs["ss-hog-svm"]
    assert det["metrics"]["map50"] > 0.3
    info = det["fit_info"]
    assert set(info["per_class"]) == {"car", "pedestrian", "sign"}
    assert all(0.0 <= c["val_ap50"] <= 1.0 for c in info["per_class"].values())

    # selective-search ran first: its test proposals and the train and val ones it computed for its consumer
    # came from the cache, none were computed twice
    used = det["consumed"]["selective-search"]
    assert used["producer_job"] == recs["selective-search"]["job_id"] and used["declared"] is True
    assert (used["cached_images"], used["computed_images"]) == (16 + 24 + 8, 0)
    assert used["compute_s"] == 0 and used["read_s"] >= 0
    assert recs["selective-search"]["consumed"] is None  # it computes its own proposals
    made = recs["selective-search"]["produced"]
    assert made["consumer_jobs"] == [det["job_id"]] and (made["computed_images"], made["cached_images"]) == (32, 0)
    assert recs["opencv-selective-search"]["produced"] is None  # nothing consumes it

    # the proposals task stored its test proposals under the same key ss-hog-svm reads: shared
    proposer = SelectiveSearch(**SelectiveSearch.profile_params["smoke"])
    store = ProposalStore(cache, proposer)
    assert store.folder.is_dir() and len(list(store.folder.glob("*.npy"))) == 24 + 8 + 16


def test_context_boxes_and_usable_proposals():
    b = np.array([[10, 20, 30, 60]], np.float32)
    np.testing.assert_allclose(context_boxes(b, 0.1), [[8, 16, 32, 64]])
    props = np.array([[0, 0, 4, 50], [0, 0, 10, 10], [5, 5, 40, 40], [0, 0, 9, 9]], np.float32)
    np.testing.assert_array_equal(usable_proposals(props, 1, 8), props[1:2])
    np.testing.assert_array_equal(usable_proposals(props, 5, 8), props[1:])
