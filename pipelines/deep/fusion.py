"""The multi-layer fusion study: one detector, one backbone, three ways of feeding its heads.

Question: how much does combining high-resolution shallow stages with semantically strong deep stages
help, above all for small objects? The pipelines ``fusion-a-stages``, ``fusion-b-deepest`` and
``fusion-c-fpn`` are the same Faster R-CNN (torchvision's ``FasterRCNN``) on the same torchvision
ResNet-18 (stages C2..C5, strides 4..32; from scratch unless ImageNet weights are cached or
``--download`` is given), with the same four levels p2..p5, the same anchors per level, the same RoI
pooling, heads, schedule and seed, trained through the suite's
:class:`~pipelines.deep.detection_training.TorchvisionDetector`. Only the neck differs. Every neck takes the
backbone's stage outputs, an ordered mapping ``name -> (B, C_i, H_i, W_i)`` from the shallowest (finest)
stage to the deepest (coarsest), and returns an ordered mapping with the *same names and grids*, every
level with ``out_channels`` channels:

(A) :class:`StagesNeck`: each level is its own stage, a 1x1 convolution only equalising the width
    (shallow levels are high-resolution but semantically weak; no top-down pathway, as SSD-style
    "pyramidal feature hierarchies").
(B) :class:`DeepestNeck`: every level is made from the deepest stage alone (1x1 convolution to the
    width, then bilinear resizing to each level's grid): strong semantics, no fine detail.
(C) :class:`PyramidNeck`: the feature pyramid of Lin et al. (CVPR 2017): 1x1 lateral convolutions to a
    fixed width, a top-down pathway (nearest-neighbour 2x upsampling) added to each lateral, and a 3x3
    output convolution per level (:class:`torchvision.ops.FeaturePyramidNetwork`); the 3x3 convolutions
    are the one extra capacity C has over A (``neck_parameters`` in the record says how much).

The anchor to compare with: Lin et al., "Feature Pyramid Networks for Object Detection" (CVPR 2017),
COCO, ResNet-50 Faster R-CNN: AP_small 17.8 with the feature pyramid against 9.6 with the deepest stage
alone (figures as quoted in this suite's issue 6). The detection task records AP for small (< 32^2 px),
medium and large objects; each record's ``fit_info.fusion_variant`` names the variant, and the three declare
the report group ``Fusion study`` (the report's table of the study, with the anchor above as its note).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import ResNet18_Weights
from torchvision.ops import FeaturePyramidNetwork

from benchsuite.api import Context
from benchsuite.data.detection import DetectionSet
from pipelines.deep.detection_training import TorchvisionDetector
from pipelines.deep.detection_weights import WeightsChoice

# the fusion study's sizes: the three variants get the very same parameters, so that they differ in their neck
# only; a from-scratch ResNet-18 Faster R-CNN, sized for 2 CPU cores. quick: a fixed number of steps, sized with
# the other detectors into the 30-minute detection task on 2 CPU cores (a study at this size compares the necks
# early in training; the full profile trains them properly)
FUSION_CPU: dict[str, Any] = {"out_channels": 64, "representation_size": 256, "rpn_pre_nms_top_n_train": 1000,
                              "rpn_post_nms_top_n_train": 500, "rpn_pre_nms_top_n_test": 500,
                              "rpn_post_nms_top_n_test": 200, "box_batch_size_per_image": 128}
FUSION_SMOKE: dict[str, Any] = {"min_size": 160, "max_size": 256, "epochs": 2, "batch_size": 4, "lr": 0.02,
                                "warmup": 3, "model_options": FUSION_CPU}
FUSION_QUICK: dict[str, Any] = {"min_size": 256, "max_size": 416, "iterations": 150, "batch_size": 4, "lr": 0.02,
                                "warmup": 15, "model_options": FUSION_CPU}

NECKS = ("stages", "deepest", "fpn")


def _check(features: OrderedDict[str, torch.Tensor], expected: int, who: str) -> None:
    if len(features) != expected:
        raise ValueError(f"{who}: expected {expected} stage outputs, got {len(features)} ({list(features)})")


def _init_conv(conv: nn.Conv2d) -> nn.Conv2d:
    nn.init.kaiming_uniform_(conv.weight, a=1)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    return conv


class StagesNeck(nn.Module):
    """(A) Heads on each backbone stage as it is: level ``i`` = 1x1 conv of stage ``i`` (no top-down)."""

    def __init__(self, in_channels_list: Sequence[int], out_channels: int):
        super().__init__()
        self.lateral = nn.ModuleList(_init_conv(nn.Conv2d(c, out_channels, 1)) for c in in_channels_list)
        self.out_channels = out_channels

    def forward(self, features: OrderedDict[str, torch.Tensor]) -> OrderedDict[str, torch.Tensor]:
        _check(features, len(self.lateral), type(self).__name__)
        return OrderedDict((name, conv(x)) for (name, x), conv in zip(features.items(), self.lateral))


class DeepestNeck(nn.Module):
    """(B) Every level resized from the deepest stage only.

    The deepest stage goes through a 1x1 convolution to ``out_channels`` and is resized (bilinear,
    ``align_corners=False``) to each level's grid, the ``(H_i, W_i)`` of stage ``i``; the shallower
    stages contribute their grid size and nothing else (their values do not reach the output).
    """

    def __init__(self, in_channels_list: Sequence[int], out_channels: int):
        super().__init__()
        self.num_levels = len(in_channels_list)
        self.lateral = _init_conv(nn.Conv2d(in_channels_list[-1], out_channels, 1))
        self.out_channels = out_channels

    def forward(self, features: OrderedDict[str, torch.Tensor]) -> OrderedDict[str, torch.Tensor]:
        _check(features, self.num_levels, type(self).__name__)
        names = list(features)
        deepest = self.lateral(features[names[-1]])
        out = OrderedDict()
        for name, x in features.items():
            size = tuple(x.shape[-2:])
            out[name] = deepest if size == tuple(deepest.shape[-2:]) else F.interpolate(
                deepest, size=size, mode="bilinear", align_corners=False)
        return out


class PyramidNeck(FeaturePyramidNetwork):
    """(C) The feature pyramid (Lin et al.): 1x1 laterals, top-down 2x nearest upsampling and addition, 3x3 outputs."""

    def __init__(self, in_channels_list: Sequence[int], out_channels: int):
        super().__init__(list(in_channels_list), out_channels, extra_blocks=None)
        self.out_channels = out_channels


def make_neck(kind: str, in_channels_list: Sequence[int], out_channels: int) -> nn.Module:
    """The neck ``kind`` (one of :data:`NECKS`) for stages of ``in_channels_list`` channels."""
    classes = {"stages": StagesNeck, "deepest": DeepestNeck, "fpn": PyramidNeck}
    if kind not in classes:
        raise ValueError(f"unknown neck {kind!r}; expected one of {NECKS}")
    return classes[kind](in_channels_list, out_channels)


class NeckedBackbone(nn.Module):
    """A backbone body (image -> ordered stage outputs) followed by a neck; what torchvision detectors take.

    ``forward``: ``(B, 3, H, W)`` float -> ordered mapping of levels, each ``(B, out_channels, H_i, W_i)``.
    """

    def __init__(self, body: nn.Module, neck: nn.Module):
        super().__init__()
        self.body = body
        self.neck = neck
        self.out_channels = neck.out_channels

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        return self.neck(self.body(x))


# ---------------------------------------------------------------------- the study's detector
#: the ResNet-18 stages the heads read, their widths and strides (pixels per cell)
RESNET18_STAGES = OrderedDict((("layer1", "p2"), ("layer2", "p3"), ("layer3", "p4"), ("layer4", "p5")))
RESNET18_WIDTHS = (64, 128, 256, 512)
RESNET18_STRIDES = (4, 8, 16, 32)
#: anchor sizes (pixels) per level, two per level, and the aspect ratios (height / width) at every level:
#: covers the 12..190-pixel objects of the synthetic VOC set and pedestrians (tall) and cars (wide)
ANCHOR_SIZES = ((16, 24), (32, 48), (64, 96), (128, 192))
ASPECT_RATIOS = (0.5, 1.0, 2.0)


def resnet18_stages(backbone_weights: Any = None) -> nn.Module:
    """torchvision's ResNet-18 cut into its four stages: image -> ``{"p2": C2, ..., "p5": C5}``.

    With ``backbone_weights`` (a torchvision weights enum, already resolved as cached or allowed) the
    ImageNet weights are loaded and the batch norms frozen, as torchvision does for pretrained backbones;
    without, the network starts from random weights and its batch norms train.
    """
    from torchvision.models import resnet18
    from torchvision.models._utils import IntermediateLayerGetter
    from torchvision.ops.misc import FrozenBatchNorm2d

    norm = FrozenBatchNorm2d if backbone_weights is not None else nn.BatchNorm2d
    return IntermediateLayerGetter(resnet18(weights=backbone_weights, norm_layer=norm), dict(RESNET18_STAGES))


def build_fusion_faster_rcnn(neck: str, num_classes: int, backbone_weights: Any = None, out_channels: int = 64,
                             representation_size: int = 256, **faster_rcnn_options: Any) -> nn.Module:
    """Faster R-CNN on ResNet-18 stages with the neck ``neck`` (``"stages"``, ``"deepest"`` or ``"fpn"``).

    Everything but the neck is fixed: four levels p2..p5 at strides 4..32, :data:`ANCHOR_SIZES` x
    :data:`ASPECT_RATIOS` anchors per level (one RPN head shared by the levels), RoIs pooled from the level
    of their size (:class:`torchvision.ops.MultiScaleRoIAlign`, 7x7), a two-layer MLP box head of
    ``representation_size`` channels and a predictor for ``num_classes`` labels, background included
    (torchvision's convention). ``faster_rcnn_options`` go to :class:`torchvision.models.detection.FasterRCNN`
    (``min_size``, ``max_size``, ``box_score_thresh``, ``rpn_post_nms_top_n_train``, ...; None values are
    left at torchvision's defaults).
    """
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.models.detection.rpn import RPNHead
    from torchvision.ops import MultiScaleRoIAlign

    if num_classes < 2:
        raise ValueError(f"num_classes must count the background and at least one class (>= 2), got {num_classes}")
    backbone = NeckedBackbone(resnet18_stages(backbone_weights), make_neck(neck, RESNET18_WIDTHS, out_channels))
    anchors = AnchorGenerator(ANCHOR_SIZES, (ASPECT_RATIOS,) * len(ANCHOR_SIZES))
    options = {k: v for k, v in faster_rcnn_options.items() if v is not None}
    return FasterRCNN(
        backbone, num_classes=None, rpn_anchor_generator=anchors,
        rpn_head=RPNHead(out_channels, anchors.num_anchors_per_location()[0]),
        box_roi_pool=MultiScaleRoIAlign(list(RESNET18_STAGES.values()), output_size=7, sampling_ratio=2),
        box_head=TwoMLPHead(out_channels * 7 * 7, representation_size),
        box_predictor=FastRCNNPredictor(representation_size, num_classes),
        **options,
    )


# ---------------------------------------------------------------------- the pipelines
class _FusionDetector(TorchvisionDetector):
    """Base of ``fusion-a-stages``, ``fusion-b-deepest`` and ``fusion-c-fpn``: identical but for :attr:`neck`.

    The constructor parameters are :class:`~pipelines.deep.detection_training.TorchvisionDetector`'s
    (schedule, augmentation, weights); ``model_options`` may set ``out_channels`` (the levels' width, 64),
    ``representation_size`` (the box head's width, 256) and Faster R-CNN's own options
    (``rpn_post_nms_top_n_train``, ``box_batch_size_per_image``, ...). Give the three the same parameters
    (the profiles do) and the same seed, and the study compares necks only.
    """

    neck: ClassVar[str] = ""
    variant: ClassVar[str] = ""
    #: the report's table of the study, and the published figure to compare with
    report_group: ClassVar[str] = "Fusion study"
    report_note: ClassVar[str] = (
        "COCO anchor from the FPN paper (Lin et al., CVPR 2017): AP_small **17.8** with the feature pyramid versus "
        "**9.6** from the deepest stage only. Compare the direction and size of the gap, not the absolute numbers: "
        "the data, backbone and schedule here differ.")
    backbone_weights = ResNet18_Weights.IMAGENET1K_V1  # used only when cached or --download (else scratch)
    erf_layer: ClassVar[str] = "backbone.body.layer4"  # the deepest stage, on 256-px val object crops (0-1 floats)
    erf_input: ClassVar[dict[str, Any]] = {"size": 256, "scale": 1 / 255}
    profile_params: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": FUSION_SMOKE,
        "quick": FUSION_QUICK,
    }

    def build_model(self, num_classes: int, weights: WeightsChoice) -> nn.Module:
        options = {"min_size": self.min_size, "max_size": self.max_size, "box_score_thresh": self.score_thresh,
                   "box_detections_per_img": self.detections_per_img, **dict(self.model_options or {})}
        return build_fusion_faster_rcnn(self.neck, num_classes, weights.backbone, **options)

    def fit(self, train: DetectionSet, val: DetectionSet, ctx: Context) -> _FusionDetector:
        super().fit(train, val, ctx)
        neck = self.model_.backbone.neck
        ctx.record(fusion_variant=self.variant, fusion_neck=self.neck, backbone="resnet18",
                   levels={name: stride for name, stride in zip(RESNET18_STAGES.values(), RESNET18_STRIDES)},
                   level_channels=neck.out_channels, anchor_sizes=[list(a) for a in ANCHOR_SIZES],
                   aspect_ratios=list(ASPECT_RATIOS),
                   neck_parameters=sum(p.numel() for p in neck.parameters()))
        return self


class FusionStages(_FusionDetector):
    """Fusion study (A): Faster R-CNN ResNet-18 with heads on each stage as it is (1x1 width convs)."""

    id: ClassVar[str] = "fusion-a-stages"
    description: ClassVar[str] = "fusion study A: Faster R-CNN R-18, heads on each stage as it is"
    neck = "stages"
    variant = "A: each stage as it is"


class FusionDeepest(_FusionDetector):
    """Fusion study (B): Faster R-CNN ResNet-18 with every level resized from the deepest stage."""

    id: ClassVar[str] = "fusion-b-deepest"
    description: ClassVar[str] = "fusion study B: Faster R-CNN R-18, every level resized from the deepest stage"
    neck = "deepest"
    variant = "B: deepest stage resized to every level"


class FusionPyramid(_FusionDetector):
    """Fusion study (C): Faster R-CNN ResNet-18 with a feature pyramid (top-down + 1x1 laterals, Lin et al.)."""

    id: ClassVar[str] = "fusion-c-fpn"
    description: ClassVar[str] = "fusion study C: Faster R-CNN R-18 with a feature pyramid (FPN)"
    neck = "fpn"
    variant = "C: feature pyramid (top-down + lateral)"
