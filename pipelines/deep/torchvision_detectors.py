"""torchvision's detectors as suite pipelines, each a few lines on :class:`TorchvisionDetector`.

Every builder is called with ``weights=None, weights_backbone=None`` unless the resolved
:class:`WeightsChoice` names a torchvision enum (whose file is cached, or ``--download`` was given). A
COCO-trained model keeps its box regressors and feature layers; its class scoring layer is replaced by a
freshly initialised one for the data set's class count.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from torch import nn
from torchvision.models import MobileNet_V3_Large_Weights, ResNet50_Weights
from torchvision.models import detection as tvd
from torchvision.models.detection.anchor_utils import AnchorGenerator

from pipelines.deep.detection_training import TorchvisionDetector
from pipelines.deep.detection_weights import WeightsChoice

# on 2 CPU cores: small images, fewer Faster R-CNN proposals and sampled regions (the box head and RoIAlign
# dominate its CPU cost). quick: every torchvision detector trains a fixed number of optimiser steps (the same
# work on every machine and under any load), sized so that the whole Penn-Fudan detection + proposals task
# (every built-in pipeline) stays within 30 minutes on an idle 2-core machine; the MobileNet Faster R-CNN gets
# the largest share, the ResNet-50 ones a token schedule (about 2 s a step on 2 cores)
RCNN_CPU: dict[str, Any] = {"rpn_pre_nms_top_n_train": 600, "rpn_post_nms_top_n_train": 300,
                            "rpn_pre_nms_top_n_test": 300, "rpn_post_nms_top_n_test": 100,
                            "box_batch_size_per_image": 64, "representation_size": 256}


def replace_rcnn_predictor(model: nn.Module, num_classes: int) -> None:
    """Faster R-CNN: a new box predictor (class scores and per-class box deltas) for ``num_classes``."""
    old = model.roi_heads.box_predictor
    model.roi_heads.box_predictor = tvd.faster_rcnn.FastRCNNPredictor(old.cls_score.in_features, num_classes)


def replace_anchor_sizes(model: nn.Module, sizes: Sequence[Sequence[float]]) -> None:
    """A two-stage model's RPN anchors with ``sizes`` (pixels, one tuple per level), the aspect ratios kept.

    The RPN head predicts a fixed number of anchors per location, so every level must keep its count."""
    old = model.rpn.anchor_generator
    sizes = tuple(tuple(float(v) for v in level) for level in sizes)
    if len(sizes) != len(old.sizes) or any(len(a) != len(b) for a, b in zip(sizes, old.sizes)):
        raise ValueError(f"anchor_sizes must have {len(old.sizes)} levels of "
                         f"{[len(b) for b in old.sizes]} sizes (the model's anchors per location), got {sizes}")
    model.rpn.anchor_generator = AnchorGenerator(sizes, old.aspect_ratios)


def _new_conv(old: nn.Conv2d, out_channels: int, prior: float | None) -> nn.Conv2d:
    conv = nn.Conv2d(old.in_channels, out_channels, old.kernel_size, old.stride, old.padding,
                     groups=1 if old.groups == 1 else old.groups, bias=old.bias is not None)
    nn.init.normal_(conv.weight, std=0.01)
    if conv.bias is not None:
        nn.init.constant_(conv.bias, -math.log((1 - prior) / prior) if prior else 0.0)
    return conv


def replace_dense_classifier(model: nn.Module, num_classes: int) -> None:
    """RetinaNet: a new ``cls_logits`` layer (focal-loss prior 0.01) for ``num_classes``."""
    head = model.head.classification_head
    head.cls_logits = _new_conv(head.cls_logits, head.num_anchors * num_classes, prior=0.01)
    head.num_classes = num_classes


def replace_ssd_classifier(model: nn.Module, num_classes: int) -> None:
    """SSD / SSDlite: new last convolutions of every level's class scorer for ``num_classes``."""
    head = model.head.classification_head
    old_classes = head.num_columns
    for i, module in enumerate(head.module_list):
        if isinstance(module, nn.Conv2d):
            anchors = module.out_channels // old_classes
            head.module_list[i] = _new_conv(module, anchors * num_classes, prior=None)
        else:
            idx = max(j for j, m in enumerate(module) if isinstance(m, nn.Conv2d))
            anchors = module[idx].out_channels // old_classes
            module[idx] = _new_conv(module[idx], anchors * num_classes, prior=None)
    head.num_columns = num_classes


def build_torchvision(builder: Callable[..., nn.Module], replace_head: Callable[[nn.Module, int], None],
                      num_classes: int, weights: WeightsChoice, **kwargs: Any) -> nn.Module:
    """Call a torchvision detection builder for ``num_classes`` from ``weights`` (never a default download)."""
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    if weights.detector is not None:
        model = builder(weights=weights.detector, weights_backbone=None, **kwargs)
        replace_head(model, num_classes)
        return model
    return builder(weights=None, weights_backbone=weights.backbone, num_classes=num_classes, **kwargs)


class _RCNNFamily(TorchvisionDetector):
    """Shared keyword arguments of the resizing (non-SSD) torchvision detectors."""

    builder: ClassVar[Callable[..., nn.Module]]
    replace_head: ClassVar[Callable[[nn.Module, int], None]] = staticmethod(replace_dense_classifier)

    def model_kwargs(self) -> dict[str, Any]:
        return {"min_size": self.min_size, "max_size": self.max_size, "score_thresh": self.score_thresh,
                "detections_per_img": self.detections_per_img,
                "trainable_backbone_layers": self.trainable_backbone_layers}

    def build_model(self, num_classes: int, weights: WeightsChoice) -> nn.Module:
        return build_torchvision(type(self).builder, type(self).replace_head, num_classes, weights,
                                 **{**self.model_kwargs(), **dict(self.model_options or {})})


class FasterRCNNResNet50FPN(_RCNNFamily):
    """Faster R-CNN, ResNet-50 with a feature pyramid (torchvision ``fasterrcnn_resnet50_fpn``)."""

    id: ClassVar[str] = "faster-rcnn-r50-fpn"
    description: ClassVar[str] = "Faster R-CNN ResNet-50-FPN (torchvision)"
    builder = staticmethod(tvd.fasterrcnn_resnet50_fpn)
    replace_head = staticmethod(replace_rcnn_predictor)
    coco_weights = tvd.FasterRCNN_ResNet50_FPN_Weights.COCO_V1
    backbone_weights = ResNet50_Weights.IMAGENET1K_V1
    profile_params: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"min_size": 128, "max_size": 192, "epochs": 1, "batch_size": 4, "warmup": 2,
                  "model_options": RCNN_CPU},
        "quick": {"min_size": 256, "max_size": 416, "iterations": 60, "batch_size": 4, "lr": 0.01, "warmup": 10,
                  "model_options": RCNN_CPU},
    }

    def model_kwargs(self) -> dict[str, Any]:
        return {"min_size": self.min_size, "max_size": self.max_size, "box_score_thresh": self.score_thresh,
                "box_detections_per_img": self.detections_per_img,
                "trainable_backbone_layers": self.trainable_backbone_layers}

    def build_model(self, num_classes: int, weights: WeightsChoice) -> nn.Module:
        """As torchvision builds it, with two options that are not torchvision arguments:
        ``model_options["representation_size"]`` narrows the two-layer box head from 1024 channels, the
        largest CPU cost of training on small images; ``model_options["anchor_sizes"]`` (pixels, one tuple per
        pyramid level) replaces the anchor sizes, keeping the aspect ratios and the anchors per location (the
        defaults are sized for 800-pixel COCO images)."""
        options = dict(self.model_options or {})
        width = options.pop("representation_size", None)
        anchor_sizes = options.pop("anchor_sizes", None)
        model = build_torchvision(type(self).builder, replace_rcnn_predictor, num_classes, weights,
                                  **{**self.model_kwargs(), **options})
        if anchor_sizes is not None:
            replace_anchor_sizes(model, anchor_sizes)
        if width is not None:
            pool = model.roi_heads.box_roi_pool
            in_features = model.backbone.out_channels * pool.output_size[0] * pool.output_size[1]
            model.roi_heads.box_head = tvd.faster_rcnn.TwoMLPHead(in_features, int(width))
            model.roi_heads.box_predictor = tvd.faster_rcnn.FastRCNNPredictor(int(width), num_classes)
        return model


class FasterRCNNMobileNetV3FPN(FasterRCNNResNet50FPN):
    """Faster R-CNN, MobileNetV3-Large with a feature pyramid (``fasterrcnn_mobilenet_v3_large_fpn``)."""

    id: ClassVar[str] = "faster-rcnn-mbv3-fpn"
    description: ClassVar[str] = "Faster R-CNN MobileNetV3-Large-FPN (torchvision)"
    builder = staticmethod(tvd.fasterrcnn_mobilenet_v3_large_fpn)
    coco_weights = tvd.FasterRCNN_MobileNet_V3_Large_FPN_Weights.COCO_V1
    backbone_weights = MobileNet_V3_Large_Weights.IMAGENET1K_V1
    profile_params: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"min_size": 160, "max_size": 256, "epochs": 3, "batch_size": 4, "warmup": 5,
                  "model_options": RCNN_CPU},
        "quick": {"min_size": 256, "max_size": 416, "iterations": 400, "batch_size": 4, "lr": 0.01, "warmup": 40,
                  "model_options": RCNN_CPU},
    }


class RetinaNetResNet50FPN(_RCNNFamily):
    """RetinaNet, ResNet-50-FPN, focal loss (torchvision ``retinanet_resnet50_fpn``)."""

    id: ClassVar[str] = "retinanet-r50-fpn"
    description: ClassVar[str] = "RetinaNet ResNet-50-FPN (torchvision)"
    builder = staticmethod(tvd.retinanet_resnet50_fpn)
    coco_weights = tvd.RetinaNet_ResNet50_FPN_Weights.COCO_V1
    backbone_weights = ResNet50_Weights.IMAGENET1K_V1
    profile_params: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"min_size": 128, "max_size": 192, "epochs": 1, "batch_size": 4, "warmup": 2},
        "quick": {"min_size": 256, "max_size": 416, "iterations": 60, "batch_size": 4, "lr": 0.01, "warmup": 10},
    }


class _SSDFamily(TorchvisionDetector):
    """SSD models resize to a fixed square: ``min_size`` sets its side (None: the model's own)."""

    builder: ClassVar[Callable[..., nn.Module]]

    def build_model(self, num_classes: int, weights: WeightsChoice) -> nn.Module:
        kwargs = {"score_thresh": self.score_thresh, "detections_per_img": self.detections_per_img,
                  "trainable_backbone_layers": self.trainable_backbone_layers, **dict(self.model_options or {})}
        model = build_torchvision(type(self).builder, replace_ssd_classifier, num_classes, weights, **kwargs)
        if self.min_size is not None:  # default boxes are relative to the input: any square size works
            side = int(self.min_size)
            model.transform.fixed_size = (side, side)
            model.transform.min_size = (side,)
            model.transform.max_size = side
        return model


class SSDLiteMobileNetV3(_SSDFamily):
    """SSDlite, MobileNetV3-Large, 320x320 by default (torchvision ``ssdlite320_mobilenet_v3_large``)."""

    id: ClassVar[str] = "ssdlite-mbv3"
    description: ClassVar[str] = "SSDlite MobileNetV3-Large (torchvision)"
    builder = staticmethod(tvd.ssdlite320_mobilenet_v3_large)
    coco_weights = tvd.SSDLite320_MobileNet_V3_Large_Weights.COCO_V1
    backbone_weights = MobileNet_V3_Large_Weights.IMAGENET1K_V1
    profile_params: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"min_size": 192, "epochs": 3, "batch_size": 4, "warmup": 5},
        "quick": {"min_size": 256, "iterations": 300, "batch_size": 8, "lr": 0.05, "warmup": 20},
    }
