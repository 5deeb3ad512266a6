"""Semantic segmentation networks (torch modules only; the training loop is the suite's).

Every network maps an ``(N, 3, H, W)`` float tensor (a normalised RGB batch) to ``(N, C, H, W)`` class scores
(logits) at the input's resolution, for any ``H`` and ``W`` (inputs are zero-padded to the network's stride and
the scores cropped back):

``fcn-32s``, ``fcn-16s``, ``fcn-8s``  :class:`~pipelines.deep.segmentation.fcn.FCN`: one VGG-like backbone, the skip
                                       fusion the only difference;
``unet``                               :class:`~pipelines.deep.segmentation.unet.UNet`;
``dilated``                            :class:`~pipelines.deep.segmentation.dilated.DilatedResNet` (output stride 8,
                                       no skips).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from pipelines.deep.segmentation.dilated import DilatedResNet
from pipelines.deep.segmentation.fcn import FCN
from pipelines.deep.segmentation.unet import UNet

NETWORKS = ("fcn-32s", "fcn-16s", "fcn-8s", "unet", "dilated")


def build_network(name: str, num_classes: int, **options: Any) -> nn.Module:
    """The network ``name`` (:data:`NETWORKS`) for ``num_classes`` classes; ``options`` go to its constructor
    (``widths``, and ``fc_width`` / ``dropout`` for the FCNs)."""
    if name.startswith("fcn-") and name in NETWORKS:
        return FCN(num_classes, name.removeprefix("fcn-"), **options)
    if name == "unet":
        return UNet(num_classes, **options)
    if name == "dilated":
        return DilatedResNet(num_classes, **options)
    raise ValueError(f"unknown segmentation network {name!r}; expected one of {NETWORKS}")
