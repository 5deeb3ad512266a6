"""Three ways of feeding a detector's heads from a backbone's stages: the necks of the fusion study.

Every neck takes the backbone's stage outputs, an ordered mapping ``name -> (B, C_i, H_i, W_i)`` from
the shallowest (finest) stage to the deepest (coarsest), and returns an ordered mapping with the *same
names and spatial sizes*, every level with ``out_channels`` channels. So the detector, its anchors per
level and its RoI pooling are identical across the three; only the information a level carries differs.

(A) :class:`StagesNeck`: each level is its own stage, a 1x1 convolution only equalising the width
    (shallow levels are high-resolution but semantically weak; no top-down pathway).
(B) :class:`DeepestNeck`: every level is made from the deepest stage alone (1x1 convolution to the
    width, then bilinear resizing to each level's grid): strong semantics, no fine detail.
(C) :class:`PyramidNeck`: the feature pyramid of Lin et al. (CVPR 2017): 1x1 lateral convolutions to a
    fixed width, a top-down pathway (nearest-neighbour 2x upsampling) added to each lateral, and a 3x3
    output convolution per level (:class:`torchvision.ops.FeaturePyramidNetwork`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import FeaturePyramidNetwork

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
