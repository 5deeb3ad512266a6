"""One wrapper through which any torchvision-style detection model becomes a suite ``Detector``.

A subclass names its network by implementing ``build_model(num_classes, weights) -> nn.Module``, following
torchvision's detection API: in train mode ``model(images, targets)`` returns a dict of losses, in eval mode
``model(images)`` returns one ``{"boxes", "scores", "labels"}`` dict per image, boxes in the input image's
pixels; ``images`` are float ``(3, H, W)`` tensors in ``[0, 1]``, the model normalises and resizes itself.
The class count handed to ``build_model`` includes a background class at index 0 (torchvision's convention
for every detector): the data set's class ``k`` is the model's label ``k + 1`` and the wrapper maps back.

Training (:class:`TorchvisionDetector.fit`):

- data: images decoded on demand (kept in memory when they fit), targets of the non-difficult objects
  (VOC's difficult objects are left out of training: they are neither clean positives nor background);
  images without objects are kept as background-only samples;
- augmentation: horizontal flips and scale jitter done as a random zoom (a crop that enlarges the objects,
  or a canvas that shrinks them), objects cut by a crop kept when half of their area survives;
- crop-style sets: a training image is a *tight crop* when it holds exactly one non-difficult object whose box
  covers more than ``CROP_FRACTION`` of the image (the rule is per image, never by data set name). Fed as it is,
  the model would resize it to its input size and learn objects that fill the frame, which no test scene shows.
  Each time a tight crop is drawn, it and up to two other crops are pasted instead onto a canvas: one of the
  set's object-free images (stretched to scene size when smaller), else a mean-colour canvas, with the crop's
  height a log-uniform ``CROP_SCALE`` share of the canvas height. The object-free images are also trained on as
  they are (negatives);
- schedule: ``epochs`` (else ``ctx.budget.epochs``) or ``iterations``; SGD with momentum or AdamW; linear
  warm-up then cosine or step decay (:meth:`TorchvisionDetector.schedule`); gradient accumulation when
  ``micro_batch < batch_size``; the optimiser steps run through the suite's training engine
  (:class:`benchsuite.training.Trainer`: gradient clipping, float16 loss scaling, the divergence check); the
  planned steps are the work, on every machine; only in the opt-in time-boxed mode (``max_train_s`` or
  ``--time-budget``) is the schedule shortened (and still annealed) when the measured speed says it would
  overrun, and the record is then marked shortened;
- device: the same code on CPU and CUDA (``ctx.device``), mixed precision through ``torch.autocast`` and
  cuDNN autotuning on CUDA, ``ctx.num_threads`` CPU threads.
"""

from __future__ import annotations

import logging
import math
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from benchsuite.api import Context, Detections, Detector
from benchsuite.data.detection import DetectionSet
from benchsuite.metrics.detection import score_detections
from benchsuite.training import Schedule, Trainer, amp_dtype, autocast, dtype_name, param_groups, prepare_device
from pipelines.deep.detection_weights import WeightsChoice, apply_user_state, downloads_forbidden, resolve_weights

log = logging.getLogger(__name__)

#: ImageNet mean colour (uint8), the fill of zoom-out canvases
FILL = (124, 116, 104)
#: an object cut by a crop stays a target when at least this share of its area is left
MIN_VISIBLE = 0.5
#: images kept decoded in memory up to this many bytes
IMAGE_CACHE_BYTES = 2 * 2**30
#: a training image whose only (non-difficult) box covers more than this share of its area is a tight crop
CROP_FRACTION = 0.8
#: a pasted crop's height as a share of its canvas's height (log-uniform range)
CROP_SCALE = (0.15, 0.65)
#: the most crops pasted onto one canvas
CROPS_PER_CANVAS = 3


# ------------------------------------------------------------------------------------------ labels and data


def to_model_labels(labels: np.ndarray) -> np.ndarray:
    """Data-set class indices ``0..K-1`` -> model labels ``1..K`` (0 is the background)."""
    return np.asarray(labels, np.int64) + 1


def from_model_labels(labels: np.ndarray, scores: np.ndarray, boxes: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model labels back to data-set classes; detections of the background label 0 are dropped, and so are
    boxes without area (RetinaNet and FCOS can return boxes squashed onto the image border by clipping)."""
    keep = (labels >= 1) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return boxes[keep], scores[keep], (labels[keep] - 1).astype(np.int64)


def training_targets(sample: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(boxes (M, 4) float32, labels (M,) int64)`` of a sample's non-difficult objects, data-set labels."""
    keep = ~sample.difficult
    return sample.boxes[keep].astype(np.float32), sample.labels[keep].astype(np.int64)


def hflip(image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror an ``(H, W, 3)`` image and its x1y1x2y2 pixel boxes left to right."""
    w = image.shape[1]
    out = boxes.copy()
    out[:, 0] = w - boxes[:, 2]
    out[:, 2] = w - boxes[:, 0]
    return np.ascontiguousarray(image[:, ::-1]), out


def zoom(image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, factor: float, rng: np.random.Generator
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scale jitter that survives the model's own resizing: objects end up ``factor`` times their size.

    ``factor > 1``: a random crop of ``1/factor`` of each side (the model enlarges it back); boxes are
    clipped to the crop and kept when at least ``MIN_VISIBLE`` of their area is inside. ``factor < 1``: the
    image is placed at a random spot of a canvas ``1/factor`` times larger, filled with the mean colour.
    """
    h, w = image.shape[:2]
    if factor >= 1.0:
        cw, ch = max(1, round(w / factor)), max(1, round(h / factor))
        x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        crop = image[y0:y0 + ch, x0:x0 + cw]
        moved = boxes - np.array([x0, y0, x0, y0], np.float32)
        clipped = np.clip(moved, 0, [cw, ch, cw, ch]).astype(np.float32)
        area = (moved[:, 2] - moved[:, 0]) * (moved[:, 3] - moved[:, 1])
        visible = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
        keep = (visible >= MIN_VISIBLE * np.maximum(area, 1e-6)) & (clipped[:, 2] - clipped[:, 0] >= 1) & (
            clipped[:, 3] - clipped[:, 1] >= 1)
        return np.ascontiguousarray(crop), clipped[keep], labels[keep]
    cw, ch = round(w / factor), round(h / factor)
    x0, y0 = int(rng.integers(0, cw - w + 1)), int(rng.integers(0, ch - h + 1))
    canvas = np.empty((ch, cw, 3), np.uint8)
    canvas[:] = FILL
    canvas[y0:y0 + h, x0:x0 + w] = image
    return canvas, boxes + np.array([x0, y0, x0, y0], np.float32), labels


def image_tensor(image: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 ``(H, W, 3)`` RGB -> float ``(3, H, W)`` in ``[0, 1]`` on ``device``."""
    t = torch.from_numpy(np.require(image, np.uint8, ["C", "W"])).to(device, non_blocking=True)
    return t.permute(2, 0, 1).float().div_(255.0)


def is_tight_crop(width: int, height: int, boxes: np.ndarray) -> bool:
    """True for an image of ``width`` x ``height`` pixels holding exactly one box (x1y1x2y2 pixels, the
    non-difficult ones) that covers more than :data:`CROP_FRACTION` of its area."""
    if len(boxes) != 1:
        return False
    x1, y1, x2, y2 = np.clip(boxes[0], 0, [width, height, width, height])
    return float((x2 - x1) * (y2 - y1)) > CROP_FRACTION * width * height


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear resize of a uint8 ``(H, W, 3)`` image to ``(height, width, 3)``."""
    from PIL import Image

    return np.array(Image.fromarray(image).resize((max(1, width), max(1, height)), Image.Resampling.BILINEAR))


class TrainingImages:
    """The train split's images and targets, decoded on demand and kept when they fit in memory.

    Tight crops (:func:`is_tight_crop`) are never returned as they are: :meth:`sample` pastes them onto
    canvases (see the module docstring); ``crops``, ``backgrounds`` and ``canvas_side`` describe that.
    """

    def __init__(self, data: DetectionSet, paste_crops: bool = True):
        self.data = data
        nbytes = int(sum(s.width * s.height * 3 for s in data))
        self.keep = nbytes <= IMAGE_CACHE_BYTES
        self._cache: dict[int, np.ndarray] = {}
        self.targets = [training_targets(s) for s in data]
        self.crops = np.array([i for i, s in enumerate(data) if paste_crops
                               and is_tight_crop(s.width, s.height, self.targets[i][0])], np.int64)
        self._crop_set = set(self.crops.tolist())
        self.backgrounds = np.array([i for i, s in enumerate(data) if len(s) == 0], np.int64)
        # the canvas's height (pixels) and aspect (width / height): the medians over the images that are not crops
        # and whose shorter side is at least twice a typical crop's longer side (scenes), else three times that
        # longer side and 4:3
        self.canvas_side, self.canvas_aspect = 0, 4 / 3
        if len(self.crops):
            crop_side = float(np.median([max(data[i].width, data[i].height) for i in self.crops]))
            is_crop = np.zeros(len(data), bool)
            is_crop[self.crops] = True
            scenes = [(s.width, s.height) for i, s in enumerate(data)
                      if not is_crop[i] and min(s.width, s.height) >= 2 * crop_side]
            if scenes:
                self.canvas_side = int(np.median([h for _, h in scenes]))
                self.canvas_aspect = float(np.median([w / h for w, h in scenes]))
            else:
                self.canvas_side = round(3 * crop_side)
            log.info("%d of %d training images are tight crops: they are pasted onto canvases (shorter side "
                     "%d px) from %d object-free images", len(self.crops), len(data), self.canvas_side,
                     len(self.backgrounds))

    def describe(self) -> dict[str, Any]:
        """What ``fit_info`` records about crop pasting (empty when the set has no tight crops)."""
        if not len(self.crops):
            return {}
        return {"tight_crops": len(self.crops), "crop_canvases_from_backgrounds": len(self.backgrounds),
                "crop_canvas_side": self.canvas_side, "crop_rule": f"one box over {CROP_FRACTION:.0%} of the image"}

    def _canvas(self, rng: np.random.Generator) -> np.ndarray:
        """A uint8 ``(H, W, 3)`` object-free canvas, at least ``canvas_side`` x ``canvas_aspect * canvas_side``:
        a random object-free image of the set at least that large, else any one stretched to that size, else a
        mean-colour canvas."""
        ch, cw = self.canvas_side, round(self.canvas_side * self.canvas_aspect)
        if len(self.backgrounds):
            large = [int(i) for i in self.backgrounds
                     if self.data[int(i)].height >= ch and self.data[int(i)].width >= cw]
            image = self.image(int(rng.choice(large or self.backgrounds)))
            h, w = image.shape[:2]
            if h >= ch and w >= cw:
                return image.copy()
            return _resize(image, max(w, cw), max(h, ch))
        canvas = np.empty((ch, cw, 3), np.uint8)
        canvas[:] = FILL
        return canvas

    def _pasted(self, i: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Tight crop ``i`` and up to ``CROPS_PER_CANVAS - 1`` other crops on a canvas, at sampled scales;
        ``(image, boxes (M, 4) float32, data-set labels (M,))``, the boxes the pasted rectangles."""
        canvas = self._canvas(rng)
        ch, cw = canvas.shape[:2]
        chosen = [i] + [int(j) for j in rng.choice(self.crops, int(rng.integers(0, CROPS_PER_CANVAS)))]
        boxes: list[list[float]] = []
        labels: list[int] = []
        for j in chosen:
            crop = self.image(j)
            h, w = crop.shape[:2]
            f = float(np.exp(rng.uniform(*np.log(CROP_SCALE)))) * ch / h
            f = min(f, 0.95 * cw / w, 0.95 * ch / h)
            pw, ph = max(2, round(w * f)), max(2, round(h * f))
            for _attempt in range(10):  # a spot that overlaps no pasted crop
                x0, y0 = int(rng.integers(0, cw - pw + 1)), int(rng.integers(0, ch - ph + 1))
                if all(x0 >= b[2] or x0 + pw <= b[0] or y0 >= b[3] or y0 + ph <= b[1] for b in boxes):
                    break
            else:
                continue
            patch = _resize(crop, pw, ph)
            # the crop's own box, scaled into the patch (and mirrored with it)
            bx = np.clip(self.targets[j][0][0] * np.array([pw / w, ph / h, pw / w, ph / h], np.float32), 0,
                         [pw, ph, pw, ph])
            if rng.random() < 0.5:
                patch = patch[:, ::-1]
                bx = np.array([pw - bx[2], bx[1], pw - bx[0], bx[3]], np.float32)
            canvas[y0:y0 + ph, x0:x0 + pw] = patch
            bx = bx + np.array([x0, y0, x0, y0], np.float32)
            boxes.append(bx.tolist())
            labels.append(int(self.targets[j][1][0]))
        return canvas, np.array(boxes, np.float32).reshape(-1, 4), np.array(labels, np.int64)

    def __len__(self) -> int:
        return len(self.data)

    def image(self, i: int) -> np.ndarray:
        if i in self._cache:
            return self._cache[i]
        image = self.data.load_image(i)
        if self.keep:
            self._cache[i] = image
        return image

    def sample(self, i: int, rng: np.random.Generator, flip: bool, scale_jitter: tuple[float, float]
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Image ``i`` augmented: ``(image uint8 HWC, boxes (M, 4) float32, model labels (M,) int64)``."""
        if len(self.crops) and i in self._crop_set:
            image, boxes, labels = self._pasted(i, rng)  # the scale is sampled there: no zoom on top
            if flip and rng.random() < 0.5:
                image, boxes = hflip(image, boxes)
            return image, boxes, to_model_labels(labels)
        image = self.image(i)
        boxes, labels = self.targets[i]
        lo, hi = scale_jitter
        if hi > lo or lo != 1.0:
            factor = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
            if abs(factor - 1.0) > 1e-3:
                image, boxes, labels = zoom(image, boxes, labels, factor, rng)
        if flip and rng.random() < 0.5:
            image, boxes = hflip(image, boxes)
        return image, boxes, to_model_labels(labels)


# ------------------------------------------------------------------------------------------ the wrapper


class TorchvisionDetector(Detector):
    """Base of the deep detectors: subclasses implement :meth:`build_model` (and may set the weights enums).

    Parameters:
        min_size, max_size: the image size the model resizes to (shorter / longer side, pixels); None keeps
            the model's own default. Used in training (before jitter) and at inference.
        epochs: passes over the train split (None: ``ctx.budget.epochs``, else 12); ``iterations`` (optimiser
            steps) overrides it.
        batch_size: images per optimiser step; ``micro_batch`` images per forward pass (gradient accumulation
            when smaller; None: the whole batch).
        optimizer: ``"sgd"`` (momentum 0.9) or ``"adamw"``; ``lr`` (None: 0.02 x batch/16 for SGD, 1e-4 x
            batch/16 for AdamW), ``weight_decay`` (None: 1e-4 SGD, 0.05 AdamW), ``warmup`` (steps, capped at a
            fifth of the schedule), ``decay`` (``"cosine"`` or ``"step"``), ``clip_grad`` (max gradient norm).
        hflip, scale_jitter: augmentation; objects end up ``scale_jitter[0]..[1]`` times their size.
        pretrained: ``"auto"``, ``"coco"``, ``"imagenet-backbone"`` or ``"none"`` (see detection_weights).
        trainable_backbone_layers: passed to torchvision builders (None: their default).
        score_thresh, detections_per_img: inference settings.
        max_train_s: opt-in wall-clock cap on training, seconds (None: the planned steps, or ``--time-budget``
            when the user asked for time-boxed training); the schedule is then shortened to fit, never cut without
            its learning-rate decay, and the record is marked shortened.
        model_options: extra keyword arguments for the model's builder (e.g. Faster R-CNN's
            ``rpn_post_nms_top_n_train`` or ``box_batch_size_per_image``, which set its CPU cost).
        paste_crops: paste tight crops onto canvases (module docstring); False trains on them as they are.
    """

    family: ClassVar[str] = "deep"
    devices: ClassVar[tuple[str, ...]] = ("cpu", "cuda")
    detect_batch_size: ClassVar[int] = 4
    #: torchvision weights enums this model can start from (None: not offered)
    coco_weights: ClassVar[Any] = None
    backbone_weights: ClassVar[Any] = None

    def __init__(self, min_size: int | None = None, max_size: int | None = None, epochs: int | None = None,
                 iterations: int | None = None, batch_size: int = 4, micro_batch: int | None = None,
                 optimizer: str = "sgd", lr: float | None = None, weight_decay: float | None = None,
                 warmup: int = 100, decay: str = "cosine", clip_grad: float = 10.0, hflip: bool = True,
                 scale_jitter: tuple[float, float] = (0.75, 1.33), pretrained: str = "auto",
                 trainable_backbone_layers: int | None = None, score_thresh: float = 0.01,
                 detections_per_img: int = 100, max_train_s: float | None = None,
                 model_options: dict[str, Any] | None = None, paste_crops: bool = True):
        self.min_size = min_size
        self.max_size = max_size
        self.epochs = epochs
        self.iterations = iterations
        self.batch_size = batch_size
        self.micro_batch = micro_batch
        self.optimizer = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.warmup = warmup
        self.decay = decay
        self.clip_grad = clip_grad
        self.hflip = hflip
        self.scale_jitter = scale_jitter
        self.pretrained = pretrained
        self.trainable_backbone_layers = trainable_backbone_layers
        self.score_thresh = score_thresh
        self.detections_per_img = detections_per_img
        self.max_train_s = max_train_s
        self.model_options = model_options
        self.paste_crops = paste_crops

    # ---------------------------------------------------------------- to implement
    def build_model(self, num_classes: int, weights: WeightsChoice) -> nn.Module:
        """The network for ``num_classes`` labels (background included), starting from ``weights``.

        ``weights.detector`` / ``weights.backbone`` are torchvision enums to build with (their files are in the
        hub cache or downloads are allowed); a user's state dict is loaded by the wrapper afterwards, into the
        model built here with ``weights.source`` telling which kind it is.
        """
        raise NotImplementedError

    # ---------------------------------------------------------------- fit
    def _schedule(self, n_images: int, ctx: Context) -> tuple[int, int]:
        """``(optimiser steps, steps per epoch)``."""
        per_epoch = max(1, math.ceil(n_images / int(self.batch_size)))
        if self.iterations is not None:
            return int(self.iterations), per_epoch
        epochs = self.epochs if self.epochs is not None else ctx.budget.epochs if ctx.budget.epochs else 12
        return max(1, int(epochs) * per_epoch), per_epoch

    def _optimizer(self, model: nn.Module) -> tuple[torch.optim.Optimizer, float]:
        scale = int(self.batch_size) / 16
        if self.optimizer == "sgd":
            lr = self.lr if self.lr is not None else 0.02 * scale
            wd = self.weight_decay if self.weight_decay is not None else 1e-4
            return torch.optim.SGD(param_groups(model, wd), lr=lr, momentum=0.9), lr
        if self.optimizer == "adamw":
            lr = self.lr if self.lr is not None else 1e-4 * scale
            wd = self.weight_decay if self.weight_decay is not None else 0.05
            return torch.optim.AdamW(param_groups(model, wd), lr=lr), lr
        raise ValueError(f"{self.id}: optimizer={self.optimizer!r}; expected 'sgd' or 'adamw'")

    def fit(self, train: DetectionSet, val: DetectionSet, ctx: Context) -> TorchvisionDetector:
        if len(train) == 0:
            raise ValueError(f"{self.id}: the train split {train.name!r} is empty")
        torch.manual_seed(ctx.seed)
        torch.set_num_threads(max(1, int(ctx.num_threads)))
        device = prepare_device(ctx.device)
        self.device_ = ctx.device
        self.amp_dtype_ = amp_dtype(ctx.device)
        self.classes_ = tuple(train.classes)

        download = bool(getattr(ctx, "download", False))
        choice = resolve_weights(ctx.weights, self.pretrained, self.coco_weights, self.backbone_weights, download)
        with downloads_forbidden(download):
            model = self.build_model(len(train.classes) + 1, choice)
        facts = apply_user_state(model, choice)
        self.weights_ = choice.source
        ctx.record(weights=choice.source, weights_file=choice.file, **facts)
        model.to(device)

        images = TrainingImages(train, paste_crops=bool(self.paste_crops))
        ctx.record(**images.describe())
        history = self._train(model, images, ctx, device)
        model.eval()
        self.model_ = model
        ctx.record(parameters=sum(p.numel() for p in model.parameters()),
                   trainable_parameters=sum(p.numel() for p in model.parameters() if p.requires_grad),
                   amp=dtype_name(self.amp_dtype_), **history)
        if len(val):
            ctx.record(**self._score_val(val))
        return self

    def schedule(self) -> Schedule:
        """The learning-rate schedule: linear warm-up from 0.001 over ``warmup`` steps (at most a fifth of the
        schedule), then ``decay`` (cosine to 0, or x0.1 at 2/3 and x0.01 at 8/9 of the steps)."""
        return Schedule(str(self.decay), warmup_fraction=0.2, max_warmup_steps=int(self.warmup), warmup_start=0.001)

    def _train(self, model: nn.Module, data: TrainingImages, ctx: Context, device: torch.device) -> dict[str, Any]:
        total, per_epoch = self._schedule(len(data), ctx)
        batch = int(self.batch_size)
        micro = max(1, min(batch, int(self.micro_batch or batch)))
        opt, base_lr = self._optimizer(model)
        # the planned steps are the work; only the opt-in time-boxed mode may shorten them, and says so
        trainer = Trainer(model, opt, ctx, steps=total, schedule=self.schedule(), name=self.id,
                          precision=self.amp_dtype_, clip_grad=self.clip_grad, max_train_s=self.max_train_s)
        rng = ctx.rng(17)
        order = np.zeros(0, np.int64)
        cursor = 0
        model.train()
        for _ in trainer.steps():
            for m0 in range(0, batch, micro):  # gradient accumulation over micro-batches
                images, targets = [], []
                for _ in range(min(micro, batch - m0)):
                    if cursor >= len(order):
                        order, cursor = rng.permutation(len(data)), 0
                    image, boxes, labels = data.sample(int(order[cursor]), rng, bool(self.hflip),
                                                       tuple(self.scale_jitter))
                    cursor += 1
                    images.append(image_tensor(image, device))
                    targets.append({"boxes": torch.from_numpy(boxes).to(device).reshape(-1, 4),
                                    "labels": torch.from_numpy(labels).to(device)})
                with trainer.autocast():
                    loss_dict = model(images, targets)
                    loss = sum(loss_dict.values()) * (len(images) / batch)
                trainer.backward(loss)
            trainer.step()
        losses, step = trainer.losses, trainer.steps_done
        epoch_means = [round(float(np.mean(losses[i:i + per_epoch])), 4) for i in range(0, len(losses), per_epoch)]
        facts = {"train_steps": step, "train_steps_planned": total, "schedule_shortened": trainer.shortened,
                 "epochs_run": round(step / per_epoch, 2), "batch_size": batch, "micro_batch": micro,
                 "optimizer": self.optimizer, "base_lr": base_lr, "train_loss_first": round(losses[0], 4),
                 "train_loss_last": round(float(np.mean(losses[-max(1, per_epoch):])), 4),
                 "train_loss_per_epoch": epoch_means[:50], "train_s": round(trainer.seconds, 2)}
        if trainer.scaler.is_enabled():
            facts["loss_scaling"] = trainer.summary()["loss_scaling"]
        return facts

    def _score_val(self, val: DetectionSet) -> dict[str, Any]:
        dets = []
        for s0 in range(0, len(val), self.detect_batch_size):
            images = [val.load_image(i) for i in range(s0, min(len(val), s0 + self.detect_batch_size))]
            dets.extend(self.detect_batch(images))
        m = score_detections(val, dets, val.classes, ("voc", "coco"))
        return {"val_map50": round(float(m["map50"]), 4), "val_coco_ap": round(float(m["coco_ap"]), 4)}

    # ---------------------------------------------------------------- inference
    @torch.inference_mode()
    def detect_batch(self, images: list[np.ndarray]) -> list[Detections]:
        """Detections for several ``(H, W, 3)`` uint8 RGB images in one forward pass."""
        if not images:
            return []
        device = torch.device(self.device_)
        self.model_.eval()
        with autocast(self.device_, self.amp_dtype_):
            outputs = self.model_([image_tensor(im, device) for im in images])
        result = []
        for out in outputs:
            boxes = out["boxes"].float().cpu().numpy().astype(np.float32).reshape(-1, 4)
            scores = out["scores"].float().cpu().numpy().astype(np.float32).reshape(-1)
            labels = out["labels"].cpu().numpy().astype(np.int64).reshape(-1)
            b, s, lab = from_model_labels(labels, scores, boxes)
            result.append(Detections(b, s, lab))
        return result

    def detect(self, image: np.ndarray) -> Detections:
        return self.detect_batch([image])[0]
