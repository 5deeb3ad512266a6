"""The deep segmenters: ``fcn-32s``, ``fcn-16s``, ``fcn-8s``, ``unet`` and ``dilated``, each a network of
:mod:`pipelines.deep.segmentation` trained from scratch by :class:`~pipelines.deep.segmentation.training.DeepSegmenter`
with the same data, resolution, augmentation, optimiser and number of steps per profile.

The three FCNs share one backbone and differ in the skip fusion only (FCN-32s: none; 16s: ``pool4``; 8s: ``pool4``
and ``pool3``), so the report's study table of the ``FCN skip fusion`` group answers what the skips buy, overall,
on the smallest objects and on boundaries. Unlike the paper, which trained 16s from a trained 32s and 8s from 16s,
each trains from scratch for the same steps here (the skip scores start at zero, so each starts as a 32s).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pipelines.deep.segmentation.training import DeepSegmenter

#: quick: the work of every deep segmenter (Penn-Fudan: 80 training images), sized so that the whole segmentation
#: task (the floor, superpixel-svm and the five networks) stays within 20 minutes on an idle 2-core machine
QUICK: dict[str, Any] = {"steps": 400, "batch_size": 8, "short_side": 224, "crop": 224}
#: smoke: seconds on the synthetic stand-in and on the conformance checks' tiny scenes
SMOKE: dict[str, Any] = {"steps": 40, "batch_size": 4, "short_side": 128, "crop": 128}
FULL: dict[str, Any] = {"steps": 2000, "batch_size": 16, "short_side": 320, "crop": 320}
PROFILE_PARAMS: dict[str, dict[str, Any]] = {"smoke": SMOKE, "quick": QUICK, "full": FULL}
#: on the CPU profiles, U-Net and the dilated network are narrowed so that a step costs about as much as an FCN's
#: (CPU seconds per step of 8 crops of 224 px on one core: FCN 0.43, U-Net 0.67 with these widths and 1.5 with its
#: default (16, 32, 64, 128), dilated 0.61 with these and 0.77 with its default)
UNET_WIDTHS = (8, 16, 32, 64, 128)
DILATED_WIDTHS = (16, 32, 48, 64, 96, 96)


def with_widths(widths: tuple[int, ...]) -> dict[str, dict[str, Any]]:
    """:data:`PROFILE_PARAMS` with ``widths`` on the CPU profiles (smoke, quick)."""
    return {name: {**params, "widths": widths} if name in ("smoke", "quick") else dict(params)
            for name, params in PROFILE_PARAMS.items()}
FCN_GROUP = "FCN skip fusion"
FCN_NOTE = ("One backbone, the skip fusion the only difference, the same steps from scratch. The paper's figures "
            "(Long et al. 2015, PASCAL VOC 2011 val, VGG-16 pretrained on ImageNet; pixel acc / mean acc / mean IU / "
            "fwIU): FCN-32s 89.1 / 73.3 / 59.4 / 81.4, FCN-16s 90.0 / 75.7 / 62.4 / 83.0, FCN-8s 90.3 / 75.9 / "
            "62.7 / 83.2.")


class FCN32s(DeepSegmenter):
    """FCN-32s: class scores on ``fc7`` (stride 32), upsampled 32x."""

    id: ClassVar[str] = "fcn-32s"
    network: ClassVar[str] = "fcn-32s"
    report_group: ClassVar[str] = FCN_GROUP
    report_note: ClassVar[str] = FCN_NOTE
    profile_params: ClassVar[dict[str, dict[str, Any]]] = PROFILE_PARAMS


class FCN16s(FCN32s):
    """FCN-16s: FCN-32s's scores upsampled 2x and fused with ``pool4``'s, then upsampled 16x."""

    id: ClassVar[str] = "fcn-16s"
    network: ClassVar[str] = "fcn-16s"


class FCN8s(FCN32s):
    """FCN-8s: FCN-16s's fused scores upsampled 2x and fused with ``pool3``'s, then upsampled 8x."""

    id: ClassVar[str] = "fcn-8s"
    network: ClassVar[str] = "fcn-8s"


class UNetSegmenter(DeepSegmenter):
    """U-Net: a contracting path and an expanding path of up-convolutions with concatenated skip features."""

    id: ClassVar[str] = "unet"
    network: ClassVar[str] = "unet"
    profile_params: ClassVar[dict[str, dict[str, Any]]] = with_widths(UNET_WIDTHS)


class DilatedSegmenter(DeepSegmenter):
    """A dilated residual network (DRN-C style): output stride 8 without skips, resolution kept by dilation."""

    id: ClassVar[str] = "dilated"
    network: ClassVar[str] = "dilated"
    profile_params: ClassVar[dict[str, dict[str, Any]]] = with_widths(DILATED_WIDTHS)
