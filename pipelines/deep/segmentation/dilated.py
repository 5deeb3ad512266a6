"""A dilated residual network for segmentation (after Yu, Koltun & Funkhouser, "Dilated Residual Networks",
CVPR 2017, DRN-C): output stride 8 with no skip connections, resolution kept by dilation instead of pooling.

Layout (small widths, to train from scratch on a CPU): a 3x3 stem; three residual stages of stride 2 (strides
2, 4, 8); two residual stages at stride 8 whose convolutions are dilated 2 and 4 (where a ResNet would pool
further, the receptive field grows without losing resolution); then DRN-C's de-gridding: two plain
convolutions, dilated 2 then 1, without residual connections, that remove the gridding artefacts of the
dilated stages; a 1x1 convolution to class scores, upsampled 8x bilinearly (fixed). Inputs of any size are
zero-padded to a multiple of 8 and the scores cropped back.
"""

from __future__ import annotations

import torch
from torch import nn

from pipelines.deep.segmentation.layers import conv_bn_relu, crop_to, pad_to_multiple, upsample_to

OUTPUT_STRIDE = 8


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions (the first may stride, both dilated ``dilation``) with batch norm, and an identity
    shortcut (a strided 1x1 convolution where the shape changes)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class DilatedResNet(nn.Module):
    """``widths``: channels of the stem and the five residual stages (strides 2, 4, 8, then dilations 2 and 4):
    ``(N, 3, H, W)`` -> ``(N, num_classes, H, W)`` class scores."""

    output_stride = OUTPUT_STRIDE

    def __init__(self, num_classes: int, widths: tuple[int, ...] = (16, 32, 64, 96, 128, 128), in_channels: int = 3):
        super().__init__()
        if len(widths) != 6:
            raise ValueError(f"widths {widths}: expected 6 (the stem and five stages)")
        w = tuple(widths)
        self.stem = conv_bn_relu(in_channels, w[0])
        self.stages = nn.Sequential(
            ResidualBlock(w[0], w[1], stride=2),
            ResidualBlock(w[1], w[2], stride=2),
            ResidualBlock(w[2], w[3], stride=2),
            ResidualBlock(w[3], w[4], dilation=2),
            ResidualBlock(w[4], w[5], dilation=4),
        )
        self.degrid = nn.Sequential(conv_bn_relu(w[5], w[5], dilation=2), conv_bn_relu(w[5], w[5], dilation=1))
        self.classifier = nn.Conv2d(w[5], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, size = pad_to_multiple(x, OUTPUT_STRIDE)
        score = self.classifier(self.degrid(self.stages(self.stem(x))))
        return crop_to(upsample_to(score, OUTPUT_STRIDE), size)
