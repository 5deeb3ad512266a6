"""The report's bootstrap intervals: kept importable here; the code lives in :mod:`benchsuite.metrics.bootstrap`.

Each task computes its per-image evidence when it scores a split (saved as ``jobs/<job>/evidence-<split>.npz``)
and its intervals from that evidence (:meth:`benchsuite.tasks.base.Task.intervals`); the report only reads.
"""

from __future__ import annotations

from benchsuite.metrics.bootstrap import (
    CHUNK,
    CLASSIFICATION_RESAMPLES,
    DETECTION_RESAMPLES,
    LEVEL,
    DetectionEvidence,
    ProposalEvidence,
    accuracy_resamples,
    detection_evidence,
    map50_for_weights,
    map50_resamples,
    percentile_interval,
    proposal_evidence,
    proposal_resamples,
    resample_weights,
)

__all__ = ["CHUNK", "CLASSIFICATION_RESAMPLES", "DETECTION_RESAMPLES", "LEVEL", "DetectionEvidence",
           "ProposalEvidence", "accuracy_resamples", "detection_evidence", "map50_for_weights", "map50_resamples",
           "percentile_interval", "proposal_evidence", "proposal_resamples", "resample_weights"]
