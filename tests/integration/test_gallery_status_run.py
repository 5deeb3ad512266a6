"""The report's gallery colours every detection as the devkit scores it (issue 21): on every image of a smoke
detection run, each detection's status in the gallery equals the brute-force port of ``VOCevaldet.m``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from voc_devkit import devkit_status

from benchsuite.report.gallery import _read_split, detection_status, detector_gallery
from benchsuite.report.model import build_model, evidence_path
from benchsuite.runner.run import RunConfig, run
from benchsuite.tasks.per_image import load_ragged

#: a constant box per class and a trained sliding-window detector: many detections, duplicates among them
PIPELINES = ["mean-box", "hog-svm-det"]


@pytest.mark.slow
def test_gallery_status_is_the_devkits_on_every_image_of_a_smoke_run(tmp_path, cache_dir):
    result = run(RunConfig(profile="smoke", tasks=["detection"], pipelines=PIPELINES, out=tmp_path / "run",
                           cache_dir=cache_dir, data_root=tmp_path / "no-data"))
    records = [r for r in result.records if r["task"] == "detection"]
    assert sorted(r["pipeline"] for r in records) == sorted(PIPELINES)
    assert all(r["status"] == "ok" for r in records), [r.get("error") for r in records]
    compared = 0
    for r in records:
        split = _read_split(evidence_path(result.run_dir, r))
        _, pred = load_ragged(result.run_dir / "jobs" / r["job_id"] / "predictions-test.npz")
        boxes, scores, labels = pred["boxes"], pred["scores"], [lab.astype(np.int64) for lab in pred["labels"]]
        gallery = detection_status(split, boxes, scores, labels)
        devkit = devkit_status([t.boxes for t in split.truth], [t.labels for t in split.truth],
                               [t.difficult for t in split.truth], boxes, scores, labels, split.num_classes)
        assert len(gallery) == len(devkit) == r["metrics"]["num_images"]
        for (status, matched), (want_status, want_matched) in zip(gallery, devkit):
            np.testing.assert_array_equal(status, want_status)
            np.testing.assert_array_equal(matched, want_matched)
            compared += len(status)
    assert compared == sum(r["metrics"]["num_detections"] for r in records) > 100
    # and the report draws them
    model = build_model(result.run_dir)
    group = next(g for g in model.groups if g.task == "detection")
    plots = detector_gallery(group, Path(result.run_dir))
    assert {p.name.rsplit("-gallery-", 1)[1] for p in plots} == set(PIPELINES)
