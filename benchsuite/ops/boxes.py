"""Boxes, IoU and non-maximum suppression: the one implementation every pipeline and metric uses.

Convention: boxes are float arrays of shape ``(N, 4)`` in pixel coordinates ``x1, y1, x2, y2``, where the
box covering only the pixel at column 0, row 0 is ``(0, 0, 1, 1)``. Width is ``x2 - x1`` and area is
``(x2 - x1) * (y2 - y1)``, with no "+1". (The VOC reader turns the XML's 1-based inclusive
``xmin..xmax`` into ``x1 = xmin - 1, x2 = xmax``, so IoU computed here on our boxes equals the VOC
devkit's IoU with "+1" on the XML coordinates.)

All functions take anything ``np.asarray`` accepts and compute in float64. A box with ``x2 <= x1`` or
``y2 <= y1`` has zero area; IoU with a zero-area union is 0 (never NaN).
"""

from __future__ import annotations

import numpy as np

#: boxes per block in :func:`nms`: the IoU of a block against the kept boxes is one ``(B, K)`` array.
NMS_BLOCK = 32


def as_boxes(boxes: object, what: str = "boxes") -> np.ndarray:
    """``boxes`` as a float64 ``(N, 4)`` array; an empty input of any shape gives ``(0, 4)``.

    Raises:
        ValueError: when a non-empty input is not ``(N, 4)``.
    """
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 4), np.float64)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"{what}: expected shape (N, 4), got {arr.shape}")
    return arr


def box_area(boxes: np.ndarray) -> np.ndarray:
    """``(N,)`` float64 areas in square pixels, ``(x2 - x1) * (y2 - y1)``, 0 for degenerate boxes."""
    b = as_boxes(boxes)
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


Columns = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _columns(boxes: np.ndarray) -> Columns:
    """``(x1, y1, x2, y2, area)`` of ``(N, 4)`` boxes as five contiguous ``(N,)`` arrays."""
    x1, y1, x2, y2 = (np.ascontiguousarray(boxes[:, k]) for k in range(4))
    return x1, y1, x2, y2, box_area(boxes)


def _iou(a: Columns, b: Columns) -> np.ndarray:
    """IoU of broadcastable column tuples from :func:`_columns`: the one formula every caller uses, so
    all IoU values in the suite agree bit for bit. Written in place to keep temporaries few."""
    w = np.minimum(a[2], b[2])
    w -= np.maximum(a[0], b[0])
    np.maximum(w, 0, out=w)
    h = np.minimum(a[3], b[3])
    h -= np.maximum(a[1], b[1])
    np.maximum(h, 0, out=h)
    w *= h  # intersection
    union = a[4] + b[4]
    union -= w
    # union >= intersection, so where the union is 0 the intersection (left in place) is 0 as well
    np.divide(w, union, out=w, where=union > 0)
    return w


def _column_slice(cols: Columns, index: object) -> Columns:
    return tuple(c[index] for c in cols)  # type: ignore[return-value]


def box_iou(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """``(N, M)`` float64 intersection over union of every box in ``boxes1 (N, 4)`` with every box in
    ``boxes2 (M, 4)``, values in ``[0, 1]``."""
    a = _columns(as_boxes(boxes1, "boxes1"))
    b = _columns(as_boxes(boxes2, "boxes2"))
    return _iou(_column_slice(a, (slice(None), None)), _column_slice(b, (None, slice(None))))


def paired_box_iou(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """``(N,)`` IoU of row i of ``boxes1 (N, 4)`` with row i of ``boxes2 (N, 4)``.

    Bit-for-bit the same values as the corresponding entries of :func:`box_iou`.
    """
    a = as_boxes(boxes1, "boxes1")
    b = as_boxes(boxes2, "boxes2")
    if len(a) != len(b):
        raise ValueError(f"paired_box_iou: {len(a)} boxes against {len(b)}")
    return _iou(_columns(a), _columns(b))


def clip_boxes(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """``(N, 4)`` float64 copy of ``boxes`` with x clipped to ``[0, width]`` and y to ``[0, height]``.

    A box lying wholly outside the image becomes degenerate (zero width or height); drop those with
    :func:`remove_small_boxes` if needed.
    """
    b = as_boxes(boxes).copy()
    b[:, 0::2] = np.clip(b[:, 0::2], 0, width)
    b[:, 1::2] = np.clip(b[:, 1::2], 0, height)
    return b


def remove_small_boxes(boxes: np.ndarray, min_size: float) -> np.ndarray:
    """Indices (int64, ascending) of the boxes whose width and height are both ``>= min_size`` pixels."""
    b = as_boxes(boxes)
    keep = ((b[:, 2] - b[:, 0]) >= min_size) & ((b[:, 3] - b[:, 1]) >= min_size)
    return np.flatnonzero(keep).astype(np.int64)


def _score_order(scores: np.ndarray) -> np.ndarray:
    """Indices sorting ``scores`` in descending order, ties kept in index order (stable)."""
    return np.argsort(-scores, kind="stable")


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression, with the semantics of ``torchvision.ops.nms``.

    Boxes are visited by descending score (equal scores in index order); a box is kept unless its IoU
    with an already kept box is strictly greater than ``iou_threshold``.

    Args:
        boxes: ``(N, 4)`` boxes ``x1, y1, x2, y2``.
        scores: ``(N,)`` scores, higher is better; must be finite (NaN would have no place in the order).
        iou_threshold: suppress boxes with IoU ``> iou_threshold`` with a kept box.

    Returns:
        ``(K,)`` int64 indices into ``boxes`` of the kept boxes, by descending score.

    Complexity: O(N log N) for the sort plus O(N * K) IoU evaluations for K kept boxes, done as
    vectorised ``(B, K)`` blocks (``B = NMS_BLOCK``, small enough for the cache); the greedy pass inside a
    block is a Python loop of O(B) numpy steps each. 10,000 boxes take well under a second even when
    nearly all are kept (about 10 ns per box pair on one core), a few milliseconds when most overlap.
    """
    b = as_boxes(boxes)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(s) != len(b):
        raise ValueError(f"nms: {len(s)} scores for {len(b)} boxes")
    if len(b) == 0:
        return np.zeros(0, np.int64)
    if not np.isfinite(s).all():
        raise ValueError("nms: scores must be finite")
    order = _score_order(s)
    cols = _columns(b[order])
    # kept boxes so far, as columns filled in place: kept[:, :n_kept]
    kept = np.empty((5, len(order)))
    n_kept = 0
    kept_pos: list[np.ndarray] = []  # positions in `order`, per block
    for start in range(0, len(order), NMS_BLOCK):
        blk = _column_slice(cols, slice(start, start + NMS_BLOCK))
        alive = np.ones(len(blk[0]), bool)
        if n_kept:
            iou = _iou(_column_slice(blk, (slice(None), None)), tuple(kept[:, None, :n_kept]))
            alive &= ~(iou > iou_threshold).any(axis=1)
        # greedy inside the block on its (B, B) IoU matrix; only earlier (higher-scoring) boxes suppress
        over = _iou(_column_slice(blk, (slice(None), None)), _column_slice(blk, (None, slice(None))))
        over = np.triu(over > iou_threshold, k=1)
        for i in range(len(alive)):
            if alive[i]:
                alive &= ~over[i]
        idx = np.flatnonzero(alive)
        kept[:, n_kept:n_kept + len(idx)] = np.stack(_column_slice(blk, idx))
        n_kept += len(idx)
        kept_pos.append(start + idx)
    return order[np.concatenate(kept_pos)].astype(np.int64)


def merge_suppressed(boxes: np.ndarray, keep: np.ndarray, iou_threshold: float, return_counts: bool = False
                     ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Each box kept by :func:`nms` replaced by the mean of its group: itself and the boxes it suppressed.

    Viola & Jones (2004, section 5.6) merge overlapping detections into one whose corners are the average of
    the group's corners; here the groups are greedy NMS's: a box belongs to the first kept box (by ``keep``'s
    order, descending score) whose IoU with it is strictly greater than ``iou_threshold``, which is the box
    that suppressed it. Averaging many slightly shifted and scaled windows of a dense scan locates an object
    better than any single window does.

    Args:
        boxes: ``(N, 4)`` boxes ``x1, y1, x2, y2``, the ones given to :func:`nms`.
        keep: ``(K,)`` indices returned by ``nms(boxes, scores, iou_threshold)`` with the same threshold.
        iou_threshold: the NMS threshold.
        return_counts: also return each group's size.

    Returns:
        ``(K, 4)`` float64 merged boxes, in ``keep``'s order (a kept box that suppressed nothing is unchanged);
        with ``return_counts``, ``(merged, counts)`` where ``counts`` is ``(K,)`` int64, at least 1 (the
        neighbour count that OpenCV's cascade grouping thresholds).
    """
    b = as_boxes(boxes)
    k = np.asarray(keep, dtype=np.int64).reshape(-1)
    if len(k) == 0:
        return (np.zeros((0, 4)), np.zeros(0, np.int64)) if return_counts else np.zeros((0, 4))
    over = box_iou(b, b[k]) > iou_threshold  # (N, K)
    over[k, np.arange(len(k))] = True  # a kept box is in its own group (even a zero-area one)
    member = over.any(axis=1)
    group = np.argmax(over, axis=1)  # the first kept box, in score order, that overlaps enough
    sums = np.zeros((len(k), 4))
    np.add.at(sums, group[member], b[member])
    counts = np.bincount(group[member], minlength=len(k))
    merged = sums / counts[:, None]
    return (merged, counts.astype(np.int64)) if return_counts else merged


def batched_nms(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou_threshold: float) -> np.ndarray:
    """:func:`nms` done independently for each label (boxes of different labels never suppress each other).

    Args:
        boxes: ``(N, 4)``; scores: ``(N,)``; labels: ``(N,)`` integer category of each box.

    Returns:
        ``(K,)`` int64 indices of the kept boxes, by descending score (equal scores in index order),
        as ``torchvision.ops.batched_nms``.
    """
    b = as_boxes(boxes)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    lab = np.asarray(labels).reshape(-1)
    if not len(s) == len(lab) == len(b):
        raise ValueError(f"batched_nms: {len(b)} boxes, {len(s)} scores, {len(lab)} labels")
    if len(b) == 0:
        return np.zeros(0, np.int64)
    _, inverse = np.unique(lab, return_inverse=True)
    by_label = np.argsort(inverse, kind="stable")
    bounds = np.flatnonzero(np.diff(inverse[by_label])) + 1
    kept = [group[nms(b[group], s[group], iou_threshold)] for group in np.split(by_label, bounds)]
    keep = np.sort(np.concatenate(kept))
    return keep[_score_order(s[keep])].astype(np.int64)


def check_boxes(boxes: object, width: float | None = None, height: float | None = None,
                what: str = "boxes") -> list[str]:
    """Problems with a pipeline's boxes, as readable sentences; an empty list means they are fine.

    Checks: a numeric array of shape ``(N, 4)`` (``(0, 4)`` or any empty array is fine), all values
    finite, ``x2 > x1`` and ``y2 > y1``; when ``width`` and ``height`` are given, also that every box
    lies inside ``[0, width] x [0, height]`` (pipelines should :func:`clip_boxes` their output).
    """
    try:
        arr = np.asarray(boxes)
    except Exception as exc:  # ragged lists and the like
        return [f"{what}: not an array ({exc})"]
    if arr.size == 0:
        return []
    if arr.dtype.kind not in "biuf":
        return [f"{what}: dtype {arr.dtype} is not numeric"]
    if arr.ndim != 2 or arr.shape[1] != 4:
        return [f"{what}: expected shape (N, 4), got {arr.shape}"]
    arr = arr.astype(np.float64)
    problems: list[str] = []

    def report(bad: np.ndarray, sentence: str) -> None:
        rows = np.flatnonzero(bad)
        if len(rows):
            first = rows[0]
            problems.append(f"{what}: {len(rows)} of {len(arr)} boxes {sentence} "
                            f"(first: row {first} = {arr[first].tolist()})")

    finite = np.isfinite(arr).all(axis=1)
    report(~finite, "have non-finite coordinates")
    with np.errstate(invalid="ignore"):
        report(finite & ~(arr[:, 2] > arr[:, 0]), "have x2 <= x1")
        report(finite & ~(arr[:, 3] > arr[:, 1]), "have y2 <= y1")
        if width is not None and height is not None:
            outside = (arr[:, 0] < 0) | (arr[:, 1] < 0) | (arr[:, 2] > width) | (arr[:, 3] > height)
            report(finite & outside, f"reach outside the {width:g} x {height:g} image")
    return problems


def check_detections(boxes: object, scores: object, labels: object, num_classes: int,
                     width: float | None = None, height: float | None = None) -> list[str]:
    """Problems with one image's detections (``boxes (N, 4)``, ``scores (N,)``, ``labels (N,)``).

    On top of :func:`check_boxes`: scores finite numbers, labels integers in ``[0, num_classes)``, and
    the three arrays of the same length.
    """
    problems = check_boxes(boxes, width, height, "boxes")
    if problems and not any("boxes have" in p or "reach outside" in p for p in problems):
        return problems  # not even an (N, 4) array: lengths cannot be compared
    n_boxes = int(np.asarray(boxes).shape[0]) if np.asarray(boxes).size else 0
    for name, values in (("scores", scores), ("labels", labels)):
        try:
            arr = np.asarray(values)
        except Exception as exc:
            problems.append(f"{name}: not an array ({exc})")
            continue
        n = arr.size if arr.ndim <= 1 else -1
        if n != n_boxes or (arr.ndim != 1 and arr.size):
            problems.append(f"{name}: expected shape ({n_boxes},), got {arr.shape}")
            continue
        if not arr.size:
            continue
        if arr.dtype.kind not in "biuf":
            problems.append(f"{name}: dtype {arr.dtype} is not numeric")
        elif name == "scores" and not np.isfinite(arr).all():
            problems.append(f"scores: {int((~np.isfinite(arr)).sum())} of {arr.size} are not finite")
        elif name == "labels":
            if arr.dtype.kind == "f" and not (np.isfinite(arr).all() and (arr == np.round(arr)).all()):
                problems.append("labels: not integers")
            elif arr.min() < 0 or arr.max() >= num_classes:
                problems.append(f"labels: values outside [0, {num_classes}) (min {arr.min()}, max {arr.max()})")
    return problems
