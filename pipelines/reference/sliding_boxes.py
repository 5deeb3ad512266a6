"""``sliding-boxes``: proposals from a fixed grid of boxes, the floor for region-proposal tables."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from benchsuite.api import Context, Proposer
from benchsuite.data.detection import DetectionSet
from benchsuite.ops.boxes import box_iou


def box_grid(scales: tuple[float, ...], aspects: tuple[float, ...], overlap: float) -> np.ndarray:
    """Boxes in normalised image coordinates (fractions of width and height), ``(N, 4)`` x1y1x2y2.

    For each scale s (box area as a fraction of the image) and aspect a (width / height in normalised
    units) a grid of boxes whose neighbours overlap by ``overlap`` of their size.
    """
    out = []
    for s in scales:
        for a in aspects:
            bw, bh = min(1.0, np.sqrt(s * a)), min(1.0, np.sqrt(s / a))
            step_x, step_y = bw * (1 - overlap), bh * (1 - overlap)
            xs = np.arange(0, 1 - bw + 1e-9, step_x) if bw < 1 else np.zeros(1)
            ys = np.arange(0, 1 - bh + 1e-9, step_y) if bh < 1 else np.zeros(1)
            gx, gy = np.meshgrid(xs, ys)
            out.append(np.stack([gx.ravel(), gy.ravel(), gx.ravel() + bw, gy.ravel() + bh], axis=1))
    return np.concatenate(out).astype(np.float32)


class SlidingBoxesProposer(Proposer):
    """A fixed multi-scale, multi-aspect grid of boxes, ranked by how well each matches the training boxes.

    ``fit`` scores every grid box by its best IoU with a training box (in normalised coordinates) and
    orders the grid by that prior; without training boxes the grid is ordered largest first. The pixels
    of the test image are never looked at.
    """

    id: ClassVar[str] = "sliding-boxes"
    family: ClassVar[str] = "classical"
    devices: ClassVar[tuple[str, ...]] = ("cpu",)

    def __init__(self, scales: tuple[float, ...] = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64),
                 aspects: tuple[float, ...] = (0.33, 0.5, 1.0, 2.0), overlap: float = 0.5):
        self.scales = scales
        self.aspects = aspects
        self.overlap = overlap

    def fit(self, train: DetectionSet, val: DetectionSet, ctx: Context) -> SlidingBoxesProposer:
        grid = box_grid(tuple(self.scales), tuple(self.aspects), float(self.overlap))
        truth = [s.boxes[~s.difficult] / np.array([s.width, s.height, s.width, s.height], np.float32)
                 for s in train]
        truth = np.concatenate(truth) if truth else np.zeros((0, 4), np.float32)
        if len(truth):
            prior = box_iou(grid, truth).max(axis=1)
        else:
            prior = (grid[:, 2] - grid[:, 0]) * (grid[:, 3] - grid[:, 1])
        self.grid_ = grid[np.argsort(-prior, kind="stable")]
        ctx.record(grid_boxes=len(self.grid_))
        return self

    def propose(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        return self.grid_ * np.array([w, h, w, h], np.float32)
