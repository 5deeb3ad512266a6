"""A consumer job and its producer with two jobs at a time (issue 21, part 4): the local executor starts
``ss-hog-svm`` only once ``selective-search`` has finished on the same data set, so its proposals come from the
cache, and its record counts them. The producer computed the test images for itself and the train and val
images for its consumer once (issue 28, part 5: its ``produced`` block). (One job at a time:
``test_selective_search_run.py``.)"""

from __future__ import annotations

import pytest

from benchsuite.runner.run import RunConfig, run

#: smaller proposals than smoke's (100 px, the same for both, so that they share cache entries) and less
#: training: the test is about the order and the counts, not the detector
SMALL = {"selective-search": {"max_side": 100},
         "ss-hog-svm": {"proposer_params": {"preset": "fast", "ks": [100], "max_side": 100}, "train_proposals": 100,
                        "test_proposals": 100, "mining_rounds": 0}}


@pytest.mark.slow
def test_with_two_jobs_at_a_time_the_consumer_reads_what_its_producer_stored(tmp_path, cache_dir):
    cfg = RunConfig(profile="smoke", tasks=["detection", "proposals"], pipelines=["ss-hog-svm", "selective-search"],
                    jobs=2, out=tmp_path / "run", cache_dir=cache_dir, data_root=tmp_path / "no-data",
                    write_report=False, params=SMALL)
    cfg.cache_dir = tmp_path / "cache"  # a fresh proposal cache: nothing is there before the producer
    # the synthetic data set goes in the same fresh cache; share the session's copy to save its generation
    (cache_dir / "synthetic").mkdir(exist_ok=True)
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "synthetic").symlink_to(cache_dir / "synthetic", target_is_directory=True)
    recs = {r["pipeline"]: r for r in run(cfg).records}
    producer, consumer = recs["selective-search"], recs["ss-hog-svm"]
    assert producer["status"] == consumer["status"] == "ok", (producer["error"], consumer["error"])
    assert consumer["started_at"] >= producer["finished_at"]  # ISO times to the second: waited for it
    used = consumer["consumed"]["selective-search"]
    assert used["producer_job"] == producer["job_id"]
    # the 16 test images were the producer's own work, train (24) and val (8) it did for its consumer
    assert (used["cached_images"], used["computed_images"], used["compute_s"]) == (16 + 24 + 8, 0, 0.0)
    made = producer["produced"]
    assert made["consumer_jobs"] == [consumer["job_id"]] and made["images"] == {"train": 24, "val": 8}
    assert (made["computed_images"], made["cached_images"]) == (24 + 8, 0) and made["compute_s"] > 0
    assert producer["consumed"] is None  # what it made for others is not what it consumed
    assert consumer["timing"]["shared_machine"] is True
