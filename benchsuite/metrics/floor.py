"""The verdict "has this model learned?": its score against a floor pipeline that ignores the pixels, on the same
images, with the gain bootstrapped over images (the same draws for both: paired). One rule for every task that
has a floor (detection: ``mean-box``; segmentation: ``majority-class``): the model is a **non-result** when the
gain's 95% percentile interval reaches zero or below, unless its predictions are the floor's own (``is_floor``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from benchsuite.metrics.bootstrap import percentile_interval


def gain_verdict(floor_pipeline: str, metric: str, label: str, ours: float, floor: float,
                 gains: np.ndarray | None, is_floor: bool, split: str = "") -> dict[str, Any]:
    """``metrics.floor`` of one comparison.

    Args:
        floor_pipeline: the floor's pipeline id. metric: the key its score is stored under (``"map50"``).
        label: the metric's name in the reason (``"mAP50"``). ours, floor: the two scores on the full split.
        gains: ``(resamples,)`` bootstrap values of ``ours - floor`` from the same image draws (None or empty
            when there were no images). is_floor: the predictions are the floor's own. split: named in the reason.

    Returns ``{"pipeline", metric, "gain", "gain_ci95", "is_floor", "non_result", "reason"}`` (values rounded to 4
    places; ``reason`` None unless ``non_result``).
    """
    iv = percentile_interval(gains) if gains is not None and len(gains) else None
    non_result = not is_floor and (iv is None or iv[0] <= 0.0)
    reason = None
    if non_result:
        where = "below" if ours < floor else "not distinguishable from"
        named = f"{split} {label}" if split else label
        reason = (f"{named} {ours:.3f} is {where} the {floor_pipeline} floor's {floor:.3f} (gain's 95% "
                  f"interval {iv[0]:+.3f} to {iv[1]:+.3f})" if iv else f"no images to compare with {floor_pipeline}")
    return {"pipeline": floor_pipeline, metric: round(floor, 4), "gain": round(ours - floor, 4),
            "gain_ci95": [round(v, 4) for v in iv] if iv else None, "is_floor": bool(is_floor),
            "non_result": bool(non_result), "reason": reason}
