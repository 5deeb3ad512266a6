"""FCN-32s, FCN-16s and FCN-8s (Long, Shelhamer & Darrell, "Fully Convolutional Networks for Semantic
Segmentation", CVPR 2015) on one small VGG-like backbone sized to train from scratch on a CPU.

The backbone is VGG's layout scaled down: five stages of 3x3 convolution -> batch norm -> ReLU (1, 1, 2, 2, 2
convolutions) each ending in 2x2 max pooling (``pool1`` .. ``pool5`` at strides 2 .. 32), then ``fc6`` (a 3x3
convolution, VGG's 7x7 fully connected layer made convolutional and smaller) and ``fc7`` (1x1), with dropout.
Batch norm is the one departure from the paper's VGG: it is what lets the network train from scratch.

The three variants differ in the skip fusion only (the same parameter names for everything they share, so a
16s can start from a trained 32s and an 8s from a 16s, as the paper's staged training does):

``32s``  ``score_fr`` (1x1 convolution to class scores) on ``fc7``, upsampled 32x;
``16s``  ``score_fr`` upsampled 2x by a learned up-convolution (``upscore2``, bilinear-initialised), plus
         ``score_pool4`` (1x1 on ``pool4``, zero-initialised so training starts from the 32s prediction),
         upsampled 16x;
``8s``   that sum upsampled 2x again (``upscore_pool4``), plus ``score_pool3`` (1x1 on ``pool3``, zero-initialised),
         upsampled 8x.

The final upsampling is fixed bilinear interpolation (the paper fixes the last up-convolution to bilinear).
Inputs of any size are zero-padded to a multiple of 32 and the scores cropped back, so the output is ``(N, C, H,
W)`` for an ``(N, 3, H, W)`` input.
"""

from __future__ import annotations

import torch
from torch import nn

from pipelines.deep.segmentation.layers import BilinearUpsample2x, conv_bn_relu, crop_to, pad_to_multiple, upsample_to

FCN_VARIANTS = ("32s", "16s", "8s")
#: convolutions per stage of the backbone (VGG-16 has 2, 2, 3, 3, 3)
STAGE_CONVS = (1, 1, 2, 2, 2)


class VGGBackbone(nn.Module):
    """Five conv stages with max pooling, then ``fc6`` / ``fc7``: ``forward`` returns ``{"pool3", "pool4", "fc7"}``
    (strides 8, 16, 32). ``widths``: channels of the five stages; ``fc_width``: of fc6 and fc7."""

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 96, 128), fc_width: int = 256, dropout: float = 0.1,
                 in_channels: int = 3):
        super().__init__()
        if len(widths) != len(STAGE_CONVS):
            raise ValueError(f"widths {widths}: expected {len(STAGE_CONVS)} stage widths")
        stages, c = [], in_channels
        for width, n in zip(widths, STAGE_CONVS):
            layers: list[nn.Module] = []
            for _ in range(n):
                layers.append(conv_bn_relu(c, width))
                c = width
            layers.append(nn.MaxPool2d(2))
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)
        self.fc6 = nn.Sequential(conv_bn_relu(c, fc_width), nn.Dropout2d(dropout))
        self.fc7 = nn.Sequential(conv_bn_relu(fc_width, fc_width, kernel=1), nn.Dropout2d(dropout))
        self.channels = {"pool3": widths[2], "pool4": widths[3], "fc7": fc_width}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {}
        for i, stage in enumerate(self.stages, 1):
            x = stage(x)
            out[f"pool{i}"] = x
        return {"pool3": out["pool3"], "pool4": out["pool4"], "fc7": self.fc7(self.fc6(x))}


def _zero_conv(c_in: int, c_out: int) -> nn.Conv2d:
    conv = nn.Conv2d(c_in, c_out, 1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


class FCN(nn.Module):
    """FCN-``variant`` (``"32s"``, ``"16s"`` or ``"8s"``) for ``num_classes`` classes: ``(N, 3, H, W)`` float input
    (normalised) -> ``(N, num_classes, H, W)`` class scores (logits)."""

    def __init__(self, num_classes: int, variant: str = "8s", widths: tuple[int, ...] = (16, 32, 64, 96, 128),
                 fc_width: int = 256, dropout: float = 0.1):
        super().__init__()
        if variant not in FCN_VARIANTS:
            raise ValueError(f"unknown FCN variant {variant!r}; expected one of {FCN_VARIANTS}")
        self.variant = variant
        self.output_stride = {"32s": 32, "16s": 16, "8s": 8}[variant]
        self.backbone = VGGBackbone(tuple(widths), fc_width, dropout)
        ch = self.backbone.channels
        self.score_fr = nn.Conv2d(ch["fc7"], num_classes, 1)
        if variant in ("16s", "8s"):
            self.upscore2 = BilinearUpsample2x(num_classes)
            self.score_pool4 = _zero_conv(ch["pool4"], num_classes)
        if variant == "8s":
            self.upscore_pool4 = BilinearUpsample2x(num_classes)
            self.score_pool3 = _zero_conv(ch["pool3"], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, size = pad_to_multiple(x, 32)
        f = self.backbone(x)
        score = self.score_fr(f["fc7"])
        if self.variant in ("16s", "8s"):
            score = self.upscore2(score) + self.score_pool4(f["pool4"])
        if self.variant == "8s":
            score = self.upscore_pool4(score) + self.score_pool3(f["pool3"])
        return crop_to(upsample_to(score, self.output_stride), size)
