"""Building blocks shared by the segmentation networks: convolution blocks, bilinear up-convolutions and the
padding that lets a network with output stride ``s`` take any input size."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn_relu(c_in: int, c_out: int, kernel: int = 3, dilation: int = 1, stride: int = 1) -> nn.Sequential:
    """``kernel x kernel`` convolution (same padding for odd kernels) -> batch norm -> ReLU."""
    pad = dilation * (kernel - 1) // 2
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=pad, dilation=dilation, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


def bilinear_kernel(channels: int, kernel: int) -> torch.Tensor:
    """``(channels, channels, kernel, kernel)`` weights of a transposed convolution that upsamples each channel
    bilinearly by ``kernel // 2`` (channel ``i`` to channel ``i`` only; Long et al.'s initialisation)."""
    factor = (kernel + 1) // 2
    centre = factor - 1 if kernel % 2 == 1 else factor - 0.5
    og = torch.arange(kernel, dtype=torch.float64)
    filt = 1 - torch.abs(og - centre) / factor
    weight = torch.zeros(channels, channels, kernel, kernel, dtype=torch.float64)
    weight[range(channels), range(channels)] = filt[:, None] * filt[None, :]
    return weight.float()


class BilinearUpsample2x(nn.ConvTranspose2d):
    """A learned 2x up-convolution (kernel 4, stride 2, padding 1: exactly doubles H and W), initialised to
    bilinear interpolation and trained with the rest of the network (FCN's ``upscore2``)."""

    def __init__(self, channels: int):
        super().__init__(channels, channels, 4, stride=2, padding=1, bias=False)
        with torch.no_grad():
            self.weight.copy_(bilinear_kernel(channels, 4))


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """``(x zero-padded at the bottom and right to a multiple of multiple, (H, W) before padding)``.

    Zeros are the mean colour of a normalised input; the padded rows and columns are cropped away again by
    :func:`crop_to`, so a network whose strides divide ``multiple`` aligns every feature map exactly.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    return (F.pad(x, (0, pw, 0, ph)) if ph or pw else x), (h, w)


def crop_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The top-left ``size`` ``(H, W)`` of ``x``."""
    return x[..., : size[0], : size[1]]


def upsample_to(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Fixed bilinear upsampling by an integer ``factor`` (half-pixel centres, as a bilinear up-convolution)."""
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
