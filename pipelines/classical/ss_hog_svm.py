"""``ss-hog-svm``: selective-search proposals classified by HOG + a linear SVM, one model per class.

The region-based classical detector (the recipe of Uijlings et al. 2013 and of R-CNN, with HOG for the
features):

1. proposals from the suite's ``selective-search`` (through :mod:`benchsuite.proposal_cache`: computed
   once per image over processes, shared with ``rcnn`` and with later runs);
2. each proposal, grown by ``context`` on every side, warped to a fixed window per class (the window's
   aspect is the median aspect of the class's training boxes, :func:`benchsuite.ops.windows.choose_window`);
3. HOG of the window (:mod:`benchsuite.ops.hog`) and four box-shape values (log aspect, log size relative
   to the image, their squares: a learnt shape and size prior), scored by a linear SVM
   (:mod:`benchsuite.ops.linear_svm`);
4. training: positives are the ground-truth boxes (and their mirror images) plus the proposals with
   IoU >= ``positive_iou`` with a box of the class; negatives a random sample of the proposals with IoU <
   ``negative_iou`` (0.5 by default: boxes that cut an object in half are negatives, which sharpens
   the localisation) with every box of the class, then ``mining_rounds`` rounds of hard-negative mining
   among all those proposals (the highest-scoring ones are added);
5. per class, the SVM's C and the NMS IoU threshold are chosen by AP50 on val; the final model is refit
   on train + val with the chosen C;
6. detections: every scored proposal, NMS per class (:func:`benchsuite.ops.boxes.nms`), the best
   ``max_detections``.

Proposal time at detect time: proposals come from the cache when the proposals task (or an earlier job)
already computed them for the same images with the same parameters, and then are not part of the
detection seconds; ``fit_info`` says so.

Bounded, visible training (``fit_info.budgets``): per training image at most ``train_proposals`` proposals
(so at most that many negatives and near-box positives, plus each object and its mirror image),
``background_per_image`` background windows, ``negatives_per_image`` random negatives in the first round and
``hard_per_image`` hard negatives per round in each of ``mining_rounds`` rounds. Computing proposals and
features, every mining round and the selection on val log a progress line at least every 30 s
(:mod:`benchsuite.measure.progress`). Scale reach (``fit_info.reach``, per class and split, objects per size
band, :func:`benchsuite.ops.size_bands.reach_counts`): ``below_reach`` counts the objects that no proposal
with both sides at least ``min_proposal_side`` can overlap with IoU 0.5 (too small for any proposal the
detector looks at), ``no_proposal`` those that none of the proposals used overlaps with IoU 0.5.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from benchsuite.api import Choice, Context, Detections, Detector
from benchsuite.data.detection import DetectionSet
from benchsuite.errors import EmptyModelError
from benchsuite.measure.progress import ProgressLog, logged
from benchsuite.metrics.detection import score_detections
from benchsuite.ops.boxes import as_boxes, box_iou, nms
from benchsuite.ops.hog import hog_features
from benchsuite.ops.linear_svm import LinearSVM
from benchsuite.ops.negatives import NegativeSource
from benchsuite.ops.size_bands import reach_counts
from benchsuite.ops.windows import WindowSize, choose_window, crop_windows, max_iou, window_boxes
from benchsuite.proposal_cache import default_workers, proposals_for, proposals_for_images
from pipelines.classical.selective_search import SS_SMOKE, SelectiveSearch

log = logging.getLogger(__name__)


def context_boxes(boxes: np.ndarray, context: float) -> np.ndarray:
    """``(N, 4)`` float64 boxes grown by ``context`` of their width/height on every side (no aspect change:
    a proposal is warped to the window anisotropically, as in R-CNN)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    return b + context * np.stack([-w, -h, w, h], axis=1)


def usable_proposals(boxes: np.ndarray, limit: int, min_side: float) -> np.ndarray:
    """The first ``limit`` proposals whose sides are both at least ``min_side`` pixels (rank kept)."""
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    ok = ((b[:, 2] - b[:, 0]) >= min_side) & ((b[:, 3] - b[:, 1]) >= min_side)
    return b[ok][:limit]


GEOMETRY_DIM = 4


def best_possible_iou(boxes: np.ndarray, min_side: float) -> np.ndarray:
    """``(N,)``: the largest IoU any box with both sides at least ``min_side`` can have with each of ``boxes``
    ``(N, 4)``: that of the smallest such box containing it, ``w h / (max(w, s) max(h, s))``."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    w, h = np.maximum(b[:, 2] - b[:, 0], 0.0), np.maximum(b[:, 3] - b[:, 1], 0.0)
    return w * h / np.maximum(np.maximum(w, min_side) * np.maximum(h, min_side), 1e-12)


def box_geometry(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """``(N, 4)`` float32 box-shape features a linear model can turn into a size and aspect prior:
    ``log(w / h)``, its square, ``log(sqrt(w h) / sqrt(W H))`` (size relative to the image) and its square."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    w = np.maximum(b[:, 2] - b[:, 0], 1e-3)
    h = np.maximum(b[:, 3] - b[:, 1], 1e-3)
    aspect = np.log(w / h)
    size = 0.5 * np.log(w * h / float(width * height))
    return np.stack([aspect, aspect ** 2, size, size ** 2], axis=1).astype(np.float32)


class _ClassData:
    """Features of one class's training material, per image (float16 to halve the memory)."""

    def __init__(self) -> None:
        self.pos: list[np.ndarray] = []  # positives (ground truth, mirrors, near-ground-truth proposals)
        self.neg: list[np.ndarray] = []  # all proposals with IoU < negative_iou, per image
        self.neg_boxes: list[np.ndarray] = []
        self.props: list[np.ndarray] = []  # all proposals of an image (val: for scoring), features
        self.prop_boxes: list[np.ndarray] = []
        self.gt_boxes: list[np.ndarray] = []  # the non-difficult objects, per image (for the reach)
        self.gt_best_iou: list[np.ndarray] = []  # each one's best IoU with a proposal used

    def positives(self) -> np.ndarray:
        return np.concatenate(self.pos).astype(np.float32) if self.pos else np.zeros((0, 0), np.float32)


class SelectiveSearchHogSVM(Detector):
    """Selective-search proposals + warped-window HOG + linear SVM per class, hard negatives, NMS.

    Parameters:
        proposer_params: constructor parameters of the ``selective-search`` proposer (default: its
            ``fast`` preset). Use the same as the proposals task's to share its cached proposals.
        train_proposals, test_proposals: proposals per image used for training (mining) and for
            detection (val and test), best-ranked first.
        min_proposal_side: proposals with a side shorter than this (pixels) are ignored.
        base_size: the window's area is ``base_size ** 2`` pixels (sides multiples of ``cell``).
        context: fraction of a box's width/height added on every side before warping.
        cell, bins: HOG cell size (pixels) and orientation bins (2 x 2-cell blocks, L2-Hys).
        positive_iou: proposals at least this IoU with a box of the class are positives too.
        negative_iou: proposals below this IoU with every box of the class are negatives.
        negatives_per_image: random negatives per image in the first training round.
        mining_rounds: rounds of hard-negative mining; each adds up to ``hard_per_image`` of the
            highest-scoring negatives per image (those scoring above -1).
        c_values: candidate SVM C, chosen per class by val AP50.
        nms_values: candidate NMS IoU thresholds, chosen per class by val AP50.
        max_detections: detections kept per image and class.
        refit_on_trainval: refit the chosen model on train + val.
        geometry: append the box's log aspect and log relative size (and their squares) to the HOG
            descriptor, so the SVM learns a shape and size prior (small or oddly shaped proposals warped
            to the window otherwise score like objects).
        n_jobs: processes for computing proposals (None: ``ctx.num_threads``).
        background_per_image: background windows per training image (on average) from
            :class:`benchsuite.ops.negatives.NegativeSource` added to the proposal negatives: every image
            contributes negatives even where selective search proposes little (window-sized background
            images give themselves as one window). A training set with no background at all raises
            :class:`benchsuite.errors.EmptyModelError`, as does an SVM with all-zero weights.
        crop_style_fill: when at least this fraction of the training objects fill >= 90% of their image
            (tight crops), the size part of the geometry features is switched off (``fit_info.size_prior``):
            every positive would have the same size relative to its image, unlike any object in a scene.
    """

    id: ClassVar[str] = "ss-hog-svm"
    family: ClassVar[str] = "classical"
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    description: ClassVar[str] = "Selective-search proposals, warped-window HOG + linear SVM per class, hard negatives"
    detect_batch_size: ClassVar[int] = 8
    consumes: ClassVar[tuple[str, ...]] = ("selective-search",)  # its proposals, through the proposal cache
    profile_params: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"proposer_params": SS_SMOKE, "train_proposals": 300, "test_proposals": 300,
                  "negatives_per_image": 20, "hard_per_image": 20, "c_values": (0.03,), "nms_values": (0.3,)},
    }

    def __init__(self, proposer_params: dict[str, Any] | None = None, train_proposals: int = 1000,
                 test_proposals: int = 2000, min_proposal_side: float = 10, base_size: int = 56,
                 context: float = 0.1, cell: int = 8, bins: int = 9, positive_iou: float = 0.7,
                 negative_iou: float = 0.5, negatives_per_image: int = 40, mining_rounds: int = 2,
                 hard_per_image: int = 40, c_values: tuple[float, ...] = (0.003, 0.03, 0.3),
                 nms_values: tuple[float, ...] = (0.3, 0.45), max_detections: int = 100,
                 refit_on_trainval: bool = True, geometry: bool = True, n_jobs: int | None = None,
                 background_per_image: int = 10, crop_style_fill: float = 0.5):
        self.proposer_params = proposer_params
        self.train_proposals = train_proposals
        self.test_proposals = test_proposals
        self.min_proposal_side = min_proposal_side
        self.base_size = base_size
        self.context = context
        self.cell = cell
        self.bins = bins
        self.positive_iou = positive_iou
        self.negative_iou = negative_iou
        self.negatives_per_image = negatives_per_image
        self.mining_rounds = mining_rounds
        self.hard_per_image = hard_per_image
        self.c_values = c_values
        self.nms_values = nms_values
        self.max_detections = max_detections
        self.refit_on_trainval = refit_on_trainval
        self.geometry = geometry
        self.n_jobs = n_jobs
        self.background_per_image = background_per_image
        self.crop_style_fill = crop_style_fill

    # ----------------------------------------------------------------------------------------- features

    def _features(self, image: np.ndarray, boxes: np.ndarray, window: WindowSize, mirror: bool = False
                  ) -> np.ndarray:
        """``(N, D)`` float32 HOG of ``boxes`` (grown by ``context``) warped to ``window`` (of the mirrored
        image when ``mirror``; ``boxes`` are then in the mirrored image), plus the box geometry."""
        if not len(boxes):
            return np.zeros((0, self._dim(window)), np.float32)
        source = np.ascontiguousarray(image[:, ::-1]) if mirror else image
        crops = crop_windows(source, context_boxes(boxes, self.context), window)
        hog = hog_features(crops, cell=self.cell, bins=self.bins, chunk=512)
        if not self.geometry:
            return hog
        geo = box_geometry(boxes, image.shape[1], image.shape[0])
        if not getattr(self, "size_prior_", True):
            geo[:, 2:] = 0.0  # crop-style training: a box's size relative to its image says nothing
        return np.concatenate([hog, geo], axis=1)

    def _dim(self, window: WindowSize) -> int:
        hc, wc = window[0] // self.cell, window[1] // self.cell
        return max(0, hc - 1) * max(0, wc - 1) * 4 * self.bins + (GEOMETRY_DIM if self.geometry else 0)

    def _collect(self, data: DetectionSet, proposals: list[np.ndarray], limit: int, ctx: Context,
                 desc: str, with_all: bool, background: list[Any] | None = None) -> list[_ClassData]:
        """Per class: positive features and the features of all negative proposals (and, ``with_all``,
        of all proposals, for scoring val), image by image. ``background`` (per class, a
        :class:`benchsuite.ops.negatives.Negatives` or None) adds its windows of each image to the
        negatives of that image."""
        out = [_ClassData() for _ in self.windows_]

        def facts() -> dict[str, int]:
            return {"positives": sum(len(p) for cd in out for p in cd.pos),
                    "negatives": sum(len(n) for cd in out for n in cd.neg)}

        for i in logged(ctx.progress(range(len(data)), desc=desc, total=len(data)), log, f"ss-hog-svm {desc}",
                        len(data), facts=facts):
            sample = data[i]
            image = data.load_image(i)
            props = usable_proposals(proposals[i], limit, self.min_proposal_side)
            for k, window in enumerate(self.windows_):
                cd = out[k]
                if window is None:
                    continue
                of_class = sample.labels == k
                gt = sample.boxes[of_class & ~sample.difficult]
                overlap = max_iou(props, sample.boxes[of_class])  # difficult boxes are not negatives either
                feats = self._features(image, props, window)
                # proposals x objects, once: the near-box positives and each object's best proposal (the reach)
                gt_iou = (box_iou(as_boxes(props), as_boxes(gt)) if len(props) and len(gt)
                          else np.zeros((len(props), len(gt))))
                cd.gt_boxes.append(gt)
                cd.gt_best_iou.append(gt_iou.max(axis=0) if len(props) else np.zeros(len(gt)))
                if len(gt):
                    gt_feats = self._features(image, gt, window)
                    flipped = self._features(image, self._mirror(gt, sample.width), window, mirror=True)
                    near = feats[gt_iou.max(axis=1) >= self.positive_iou]
                    cd.pos.append(np.concatenate([gt_feats, flipped, near]).astype(np.float16))
                neg = overlap < self.negative_iou
                extra = background[k].of_image(i) if background is not None and background[k] is not None else None
                if extra is not None and len(extra):
                    cd.neg.append(np.concatenate([feats[neg], self._features(image, extra, window)]).astype(np.float16))
                    cd.neg_boxes.append(np.concatenate([props[neg], extra.astype(np.float32)]))
                else:
                    cd.neg.append(feats[neg].astype(np.float16))
                    cd.neg_boxes.append(props[neg])
                if with_all:
                    cd.props.append(feats.astype(np.float16))
                    cd.prop_boxes.append(props)
        return out

    @staticmethod
    def _mirror(boxes: np.ndarray, width: int) -> np.ndarray:
        b = np.asarray(boxes, np.float64).reshape(-1, 4)
        return np.stack([width - b[:, 2], b[:, 1], width - b[:, 0], b[:, 3]], axis=1)

    # ----------------------------------------------------------------------------------------- training

    def _train(self, pos: np.ndarray, negs: list[np.ndarray], c: float, rng: np.random.Generator, name: str = ""
               ) -> tuple[LinearSVM, int]:
        """Initial random negatives, then hard-negative mining rounds; returns the SVM and its negatives (a
        progress line at least every 30 s, and one at the end)."""
        progress = ProgressLog(log, f"ss-hog-svm {name} C={c}: hard-negative mining rounds", self.mining_rounds)
        chosen = []
        for n in negs:
            take = min(len(n), self.negatives_per_image)
            chosen.append(n[rng.choice(len(n), take, replace=False)] if take else n[:0])
        neg = np.concatenate(chosen).astype(np.float32) if chosen else np.zeros((0, pos.shape[1]), np.float32)
        svm = self._fit_svm(pos, neg, c)
        for r in range(self.mining_rounds):
            hard = []
            for j, n in enumerate(negs):
                progress.update(r, image=f"{j + 1} of {len(negs)}", negatives=len(neg), positives=len(pos))
                if not len(n):
                    continue
                s = svm.decision_function(n.astype(np.float32))
                top = np.argsort(-s, kind="stable")[: self.hard_per_image]
                top = top[s[top] > -1.0]
                hard.append(n[top].astype(np.float32))
            if hard:
                neg = np.unique(np.concatenate([neg, *hard]), axis=0)
            svm = self._fit_svm(pos, neg, c)
        progress.finish(self.mining_rounds, negatives=len(neg), positives=len(pos))
        return svm, len(neg)

    @staticmethod
    def _fit_svm(pos: np.ndarray, neg: np.ndarray, c: float) -> LinearSVM:
        x = np.concatenate([pos, neg])
        y = np.concatenate([np.ones(len(pos), np.int64), np.zeros(len(neg), np.int64)])
        return LinearSVM(C=c, max_iter=200).fit(x, y)

    def _choose_on_val(self, k: int, pos: np.ndarray, neg: list[np.ndarray], cd: _ClassData, val: DetectionSet,
                       rng: np.random.Generator, ctx: Context) -> Choice:
        """Class ``k``'s C and NMS threshold by its val AP50 (recorded per class); the payload is the SVM. One SVM
        per C (C ascending: on a tie the smaller C wins) serves every NMS threshold."""
        trained: dict[float, tuple[LinearSVM, list[np.ndarray]]] = {}  # the latest C -> SVM, val proposal scores

        def val_ap50(s: dict[str, Any]) -> tuple[float, LinearSVM]:
            if s["C"] not in trained:
                trained.clear()
                svm, _ = self._train(pos, neg, s["C"], rng, val.classes[k])
                trained[s["C"]] = svm, [svm.decision_function(f.astype(np.float32)) if len(f) else np.zeros(0)
                                        for f in cd.props]
            svm, scores = trained[s["C"]]
            dets = []
            for b, sc in zip(cd.prop_boxes, scores):
                keep = nms(b, sc, s["nms_iou"])[: self.max_detections] if len(b) else np.zeros(0, np.int64)
                dets.append(Detections(b[keep], sc[keep], np.full(len(keep), k, np.int64)))
            return score_detections(val, dets, val.classes, ("voc",))["per_class"][val.classes[k]]["ap50"], svm

        grid = [{"C": float(c), "nms_iou": t} for c in sorted(self.c_values)
                for t in dict.fromkeys(float(t) for t in self.nms_values)]
        return ctx.select(grid, val_ap50, metric="val_ap50", for_class=val.classes[k])

    @staticmethod
    def _fill_fraction(data: DetectionSet) -> float:
        """The fraction of the training objects whose box covers at least 90% of its image (1 for a
        crop-style set of tight crops, near 0 for scenes)."""
        fills = [(s.boxes[:, 2] - s.boxes[:, 0]) * (s.boxes[:, 3] - s.boxes[:, 1]) / float(s.width * s.height)
                 for s in data if len(s.boxes)]
        if not fills:
            return 0.0
        return float(np.mean(np.concatenate(fills) >= 0.9))

    def _background(self, train: DetectionSet, rng: np.random.Generator
                    ) -> tuple[list[Any], dict[str, dict[str, int]]]:
        """Per class, background windows of the training images from
        :class:`benchsuite.ops.negatives.NegativeSource` (``background_per_image`` per image on average, at
        the scales of the class's objects; None for a class without boxes), and their counts."""
        out: list[Any] = []
        stats: dict[str, dict[str, int]] = {}
        for k, window in enumerate(self.windows_):
            if window is None:
                out.append(None)
                continue
            boxes, _ = train.boxes_of_class(k)
            heights = np.diff(window_boxes(boxes, window, self.context)[:, 1::2], axis=1)[:, 0]
            start = float(np.clip(window[0] / max(1.0, float(np.percentile(heights, 10))), 1.0, 4.0))
            source = NegativeSource.from_dataset(train, k, window, max_overlap=min(0.3, self.negative_iou),
                                                 start_scale=start, step=1.3, stride=self.cell * 2)
            neg = source.sample_boxes(self.background_per_image * max(1, len(train)), rng)
            out.append(neg)
            stats[train.classes[k]] = neg.stats.as_dict()
        return out, stats

    def fit(self, train: DetectionSet, val: DetectionSet, ctx: Context) -> SelectiveSearchHogSVM:
        self.proposer_ = SelectiveSearch(**(self.proposer_params or {}))
        self.proposer_.strategies()  # validates the parameters
        self.cache_dir_ = Path(ctx.cache_dir)
        self.workers_ = default_workers(self.n_jobs if self.n_jobs is not None else ctx.num_threads)
        rng = ctx.rng(5)
        self.windows_: list[WindowSize | None] = []
        for k in range(train.num_classes):
            boxes, _ = train.boxes_of_class(k)
            self.windows_.append(choose_window(boxes, self.base_size, self.cell) if len(boxes) else None)
        self.size_prior_ = True
        fill = self._fill_fraction(train)
        if self.geometry and fill >= self.crop_style_fill:
            self.size_prior_ = False  # crop-style training set: sizes relative to the image carry no prior
        if all(w is None for w in self.windows_):
            raise EmptyModelError(f"ss-hog-svm: no training boxes for any class in {len(train)} training images")
        background, neg_stats = self._background(train, ctx.rng(6))
        if not any(st["available"] for st in neg_stats.values()):
            raise EmptyModelError(f"ss-hog-svm: no background in the {len(train)} training images (every "
                                  f"window overlaps an object of its class): nothing to train against")
        def progress(items: Any, desc: str = "", total: int | None = None) -> Any:  # bar and log lines
            return logged(ctx.progress(items, desc=desc, total=total), log, f"ss-hog-svm {desc}", total)

        p_train = proposals_for(train, self.proposer_, self.cache_dir_, self.workers_, progress, "proposals train")
        p_val = proposals_for(val, self.proposer_, self.cache_dir_, self.workers_, progress, "proposals val")
        d_train = self._collect(train, p_train, self.train_proposals, ctx, "features train", with_all=False,
                                background=background)
        d_val = self._collect(val, p_val, self.test_proposals, ctx, "features val", with_all=True)
        self.svms_: list[LinearSVM | None] = []
        self.nms_: list[float] = []
        chosen: dict[str, Any] = {}
        for k, name in enumerate(train.classes):
            pos = d_train[k].positives()
            if self.windows_[k] is None or not len(pos) or not sum(len(n) for n in d_train[k].neg):
                self.svms_.append(None)
                self.nms_.append(0.3)
                chosen[name] = {"skipped": "no positives or negatives in train"}
                continue
            best = self._choose_on_val(k, pos, d_train[k].neg, d_val[k], val, rng, ctx)
            c, t, svm = best.settings["C"], best.settings["nms_iou"], best.payload
            ap = 0.0 if best.score is None else best.score
            if not np.any(svm.coef_[0]):
                raise EmptyModelError(f"ss-hog-svm: the SVM of class {name!r} learned all-zero weights")
            n_neg = None
            if self.refit_on_trainval:
                pos_all = np.concatenate([pos, d_val[k].positives()]) if d_val[k].pos else pos
                svm, n_neg = self._train(pos_all, d_train[k].neg + d_val[k].neg, c, rng, f"{name} train+val")
            self.svms_.append(svm)
            self.nms_.append(t)
            chosen[name] = {"C": c, "nms_iou": t, "val_ap50": ap, "window_hw": list(self.windows_[k]),
                            "positives": len(pos), "negatives_final": n_neg}
        if all(svm is None for svm in self.svms_):
            reasons = "; ".join(f"{n}: {v['skipped']}" for n, v in chosen.items())
            raise EmptyModelError(f"ss-hog-svm: no class could be trained ({reasons})")
        ctx.record(budgets={"train_proposals_per_image": self.train_proposals,
                            "test_proposals_per_image": self.test_proposals,
                            "background_windows_per_image": self.background_per_image,
                            "random_negatives_per_image": self.negatives_per_image,
                            "hard_negatives_per_image_and_round": self.hard_per_image,
                            "mining_rounds": self.mining_rounds},
                   reach={"train": self._reach(train, d_train), "val": self._reach(val, d_val)})
        ctx.record(per_class=chosen, proposer=self.proposer_.get_params(), train_proposals=self.train_proposals,
                   negative_source=neg_stats, positives_fill_image=round(fill, 3), size_prior=self.size_prior_,
                   test_proposals=self.test_proposals, feature_dim=int(self._dim(next(
                       (w for w in self.windows_ if w is not None), (16, 16)))),
                   trained_on="train+val" if self.refit_on_trainval else "train",
                   proposals_cached_in=str(self.cache_dir_ / "proposals"),
                   note="detect-time proposals are read from the cache when already computed (then not timed)")
        return self

    def _reach(self, data: DetectionSet, collected: list[_ClassData]) -> dict[str, Any]:
        """Per class with a window: its non-difficult objects in ``data`` per size band, those below reach and
        those without a proposal at IoU 0.5 (the module docstring)."""
        out: dict[str, Any] = {}
        for k, cd in enumerate(collected):
            if self.windows_[k] is None or not cd.gt_boxes:
                continue
            gt = np.concatenate(cd.gt_boxes).reshape(-1, 4)
            best = np.concatenate(cd.gt_best_iou)
            out[data.classes[k]] = reach_counts(gt[:, 3] - gt[:, 1],
                                                below_reach=best_possible_iou(gt, self.min_proposal_side) < 0.5,
                                                no_proposal=best < 0.5)
        return out

    # ---------------------------------------------------------------------------------------- detection

    def _detect_with(self, image: np.ndarray, proposals: np.ndarray) -> Detections:
        props = usable_proposals(proposals, self.test_proposals, self.min_proposal_side)
        boxes, scores, labels = [], [], []
        for k, (window, svm) in enumerate(zip(self.windows_, self.svms_)):
            if window is None or svm is None or not len(props):
                continue
            s = svm.decision_function(self._features(image, props, window))
            keep = nms(props, s, self.nms_[k])[: self.max_detections]
            boxes.append(props[keep])
            scores.append(s[keep])
            labels.append(np.full(len(keep), k, np.int64))
        if not boxes:
            return Detections.empty()
        return Detections(np.concatenate(boxes).astype(np.float32), np.concatenate(scores).astype(np.float32),
                          np.concatenate(labels))

    def detect(self, image: np.ndarray) -> Detections:
        props = proposals_for_images([image], self.proposer_, self.cache_dir_, workers=1)[0]
        return self._detect_with(image, props)

    def detect_batch(self, images: list[np.ndarray]) -> list[Detections]:
        """Proposals of the batch over processes (or from the cache), then classification here."""
        props = proposals_for_images(images, self.proposer_, self.cache_dir_, workers=self.workers_)
        return [self._detect_with(im, p) for im, p in zip(images, props)]
