"""``cnn-fusion``: the compact CNN of ``cnn`` with a convolutional fusion head over all its stages.

After Liu, Guo & Lew, "On the exploration of convolutional fusion networks for visual recognition"
(MMM 2017): every pooling stage of the trunk gets a side branch (1x1 convolution to a common width,
batch norm, activation, global average pooling), so each stage yields one ``D``-vector; the ``S`` side
vectors are stacked into an ``(S, D)`` map (``S`` channels at ``D`` positions) and fused by a
*locally-connected* 1x1 layer: each of the ``D`` positions has its own weight vector over the ``S``
stages (a 1x1 convolution would share one vector across positions). One fully connected layer maps the
fused ``D``-vector to the class logits. The trunk, data pipeline and training loop are those of ``cnn``
(:mod:`pipelines.deep.classifier_training`), so the two differ only in how the stages reach the classifier.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import nn

from benchsuite.api import Context
from benchsuite.data.images import ImageSet
from pipelines.deep.cnn import CNN_QUICK, ResidualCNN, Stage, conv_bn


class LocallyConnected1x1(nn.Module):
    """A 1x1 layer whose weights are not shared across positions.

    Input ``(B, C_in, P)`` (``C_in`` channels at ``P`` positions), output ``(B, C_out, P)``::

        out[b, o, p] = sum_c weight[p, c, o] * x[b, c, p] + bias[p, o]

    ``weight`` is ``(P, C_in, C_out)``, ``bias`` ``(P, C_out)``. Initialised to the average of the input
    channels (``1 / C_in``) and zero bias, so an untrained layer is mean fusion.
    """

    def __init__(self, positions: int, in_channels: int, out_channels: int = 1):
        super().__init__()
        if min(positions, in_channels, out_channels) < 1:
            raise ValueError(f"positions, in_channels and out_channels must be >= 1, got "
                             f"{positions}, {in_channels}, {out_channels}")
        self.positions = positions
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.weight = nn.Parameter(torch.full((positions, in_channels, out_channels), 1.0 / in_channels))
        self.bias = nn.Parameter(torch.zeros(positions, out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3 or x.shape[1] != self.in_channels or x.shape[2] != self.positions:
            raise ValueError(f"expected input (B, {self.in_channels}, {self.positions}), got {tuple(x.shape)}")
        return torch.einsum("bcp,pco->bop", x, self.weight.to(x.dtype)) + self.bias.t().to(x.dtype)

    def extra_repr(self) -> str:
        return f"positions={self.positions}, in_channels={self.in_channels}, out_channels={self.out_channels}"


class _DenseGradient(torch.autograd.Function):
    """Identity forward; the backward hands on the incoming gradient as a dense channels-last tensor.

    The gradient of a global average is the same value broadcast over every position (a tensor with zero
    strides); fed as it is to the GELU and batch-norm backward of a channels-last branch, it sends them down
    slow generic kernels (on a 2-core CPU the branch's backward took six times as long)."""

    @staticmethod
    def forward(ctx: object, x: torch.Tensor) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> torch.Tensor:
        return grad.contiguous(memory_format=torch.channels_last)


class GlobalAveragePool(nn.Module):
    """``(B, C, H, W) -> (B, C)``: the mean over positions (with a dense gradient, see ``_DenseGradient``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _DenseGradient.apply(x).mean(dim=(2, 3))


class SideBranch(nn.Sequential):
    """1x1 convolution to ``width`` channels, batch norm, GELU, global average pooling.

    ``(B, C, H, W) -> (B, width)``.
    """

    def __init__(self, c_in: int, width: int):
        super().__init__(nn.Conv2d(c_in, width, 1, bias=False), nn.BatchNorm2d(width), nn.GELU(),
                         GlobalAveragePool())


class ConvFusionNet(nn.Module):
    """The trunk of :class:`~pipelines.deep.cnn.CompactResNet` with side branches fused locally-connected.

    Shapes (CIFAR-10, default widths): stages give ``(B, 32, 16, 16)``, ``(B, 64, 8, 8)``,
    ``(B, 128, 4, 4)``; side vectors ``(B, 3, D)`` with ``D = side_width`` (default: the deepest width);
    fused ``(B, D)``; logits ``(B, num_classes)``.
    """

    def __init__(self, num_classes: int, widths: tuple[int, int, int] = (32, 64, 128), side_width: int | None = None):
        super().__init__()
        w1, w2, w3 = widths
        stem = max(8, w1 // 2)
        self.side_width = int(side_width or w3)
        self.stem = conv_bn(3, stem)
        self.stages = nn.ModuleList([Stage(stem, w1), Stage(w1, w2), Stage(w2, w3)])
        self.sides = nn.ModuleList([SideBranch(w, self.side_width) for w in widths])
        self.fuse = LocallyConnected1x1(self.side_width, len(widths), 1)
        self.head = nn.Linear(self.side_width, num_classes)
        nn.init.normal_(self.head.weight, std=1.0 / math.sqrt(self.side_width))
        nn.init.zeros_(self.head.bias)

    def side_outputs(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, S, D)``: one side vector per pooling stage, shallowest first."""
        x = self.stem(x)
        outs = []
        for stage, side in zip(self.stages, self.sides):
            x = stage(x)
            outs.append(side(x))
        return torch.stack(outs, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fused = self.fuse(self.side_outputs(x)).flatten(1)  # (B, 1, D) -> (B, D)
        return self.head(fused)


class ConvFusionCNN(ResidualCNN):
    """``cnn`` with a convolutional fusion head (side branches after each pooling stage, locally-connected fusion).

    Same parameters and training schedule as ``cnn`` (crops + flips, label smoothing, one-cycle SGD,
    bf16/AMP, flip TTA); ``widths`` sets the trunk and the side width is the deepest stage's width.
    """

    id: ClassVar[str] = "cnn-fusion"
    #: the very same budget as cnn
    profile_params: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"epochs": 8, "widths": (16, 32, 64), "batch_size": 64},
        "quick": CNN_QUICK,
        "full": {"epochs": 40, "widths": (64, 128, 256)},
    }

    def build_network(self, num_classes: int) -> nn.Module:
        return ConvFusionNet(num_classes, tuple(self.widths))

    def fit(self, train: ImageSet, val: ImageSet, ctx: Context) -> ConvFusionCNN:
        super().fit(train, val, ctx)
        net = self.model_.net
        ctx.record(fusion="side branches after each pooling stage (1x1 conv, BN, GELU, GAP), "
                          "locally-connected 1x1 fusion, one FC layer",
                   side_width=net.side_width, stages_fused=len(net.sides),
                   fusion_weight_mean_per_stage=[round(float(v), 4)
                                                 for v in net.fuse.weight.detach().float().mean(dim=(0, 2))])
        return self
