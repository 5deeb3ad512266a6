"""U-Net (Ronneberger, Fischer & Brox, MICCAI 2015), small: a contracting path of double 3x3 convolutions and
2x2 max pooling, an expanding path of 2x2 up-convolutions whose output is concatenated with the contracting
path's feature map of the same resolution and refined by a double convolution, and a 1x1 convolution to class
scores.

Departures from the paper, for any input size and training from scratch: "same" padding instead of valid
convolutions (no cropping of the skip features; the input is zero-padded to a multiple of ``2^depth`` and the
scores cropped back) and batch norm after every convolution.
"""

from __future__ import annotations

import torch
from torch import nn

from pipelines.deep.segmentation.layers import conv_bn_relu, crop_to, pad_to_multiple


def double_conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(conv_bn_relu(c_in, c_out), conv_bn_relu(c_out, c_out))


class UNet(nn.Module):
    """``widths``: channels at each resolution, full resolution first (``len(widths) - 1`` poolings):
    ``(N, 3, H, W)`` -> ``(N, num_classes, H, W)`` class scores."""

    def __init__(self, num_classes: int, widths: tuple[int, ...] = (16, 32, 64, 128), in_channels: int = 3):
        super().__init__()
        if len(widths) < 2:
            raise ValueError(f"widths {widths}: expected at least two resolutions")
        self.depth = len(widths) - 1
        self.inc = double_conv(in_channels, widths[0])
        self.down = nn.ModuleList(nn.Sequential(nn.MaxPool2d(2), double_conv(widths[i], widths[i + 1]))
                                  for i in range(self.depth))
        self.up = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
                                for i in reversed(range(self.depth)))
        self.fuse = nn.ModuleList(double_conv(2 * widths[i], widths[i]) for i in reversed(range(self.depth)))
        self.out = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, size = pad_to_multiple(x, 2**self.depth)
        skips = [self.inc(x)]
        for down in self.down:
            skips.append(down(skips[-1]))
        y = skips.pop()
        for up, fuse in zip(self.up, self.fuse):
            y = fuse(torch.cat([skips.pop(), up(y)], dim=1))
        return crop_to(self.out(y), size)
