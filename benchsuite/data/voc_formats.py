"""The Pascal VOC data-set formats: ``voc2007``, ``voc2012``, ``voc:PATH`` and ``synthetic-voc[:VARIANT]``.

One spec, two readers. A VOC layout folder holds boxes (``Annotations/`` and ``ImageSets/Main/``, read by
:mod:`benchsuite.data.voc`) and, where it has ``SegmentationClass/``, pixel masks (``ImageSets/Segmentation/``, read by
:mod:`benchsuite.data.voc_segmentation`). Each has its own splits, classes (``person`` against ``background`` and
``person``) and fingerprint, so each is a data set of its own: the opener reads the one the task needs
(:attr:`benchsuite.data.datasets.OpenRequest.needs`: boxes by default, masks for a task that needs masks), and the
runner keeps one opened data set per spec and needs (:func:`benchsuite.data.datasets.dataset_key`). Both go by the
folder's name; their split manifests are ``<name>.split.json`` and ``<name>.segmentation.split.json``.

What a spec provides, found without opening it:

==========================  ===========================================================================
spec                        annotations
==========================  ===========================================================================
``voc:PATH``                boxes; masks too when the folder has ``SegmentationClass/``
``voc2007``, ``voc2012``    the same for ``<root>/VOCdevkit/VOC<year>``; boxes and masks when the release
                            is absent (the synthetic stand-ins serve both) or the profile is synthetic
``synthetic-voc``           boxes and masks: the synthetic detection set and the synthetic segmentation
                            set (:mod:`benchsuite.data.synthetic_segmentation`), two different sets
``synthetic-voc:VARIANT``   boxes for a detection variant (``crop``, ``tiny``, ``crowd``, ``wide``, ``grey``),
                            masks for a segmentation variant (``tiny``, ``thin``, ``grey``)
==========================  ===========================================================================
"""

from __future__ import annotations

from pathlib import Path

from benchsuite.data import synthetic_segmentation, synthetic_voc, voc
from benchsuite.data.datasets import BOXES, MASKS, Dataset, OpenRequest, dataset_format
from benchsuite.data.voc_segmentation import (
    open_synthetic_segmentation,
    open_voc_segmentation_folder,
    open_voc_segmentation_year,
)
from benchsuite.errors import ConfigError, DataError

__all__ = ["open_synthetic_voc", "open_voc2007", "open_voc2012", "open_voc_folder", "voc_annotations",
           "wants_masks"]


def wants_masks(req: OpenRequest) -> bool:
    """Whether ``req`` asks for the masks reader (its task needs masks); a task needing boxes and masks at once is
    a ConfigError (no VOC reader serves both)."""
    if MASKS in req.needs and BOXES in req.needs:
        raise ConfigError(f"data set {req.spec!r}: no VOC reader serves boxes and masks together (the masks have their "
                          f"own splits, ImageSets/Segmentation/); a task needs one or the other")
    return MASKS in req.needs


def voc_annotations(folder: Path | None) -> frozenset[str]:
    """What a VOC layout folder provides: boxes, and pixel masks when it has ``SegmentationClass/``."""
    has_masks = folder is not None and (Path(folder) / "SegmentationClass").is_dir()
    return frozenset({BOXES, MASKS} if has_masks else {BOXES})


def _year_annotations(req: OpenRequest, year: int) -> frozenset[str]:
    folder = None if req.force_synthetic else voc.find_voc(req.data_root, year)
    return frozenset({BOXES, MASKS}) if folder is None else voc_annotations(folder)


def _synthetic_annotations(req: OpenRequest) -> frozenset[str]:
    variant = req.spec.partition(":")[2].strip()
    if not variant:
        return frozenset({BOXES, MASKS})
    found = ({BOXES} if variant in synthetic_voc.VARIANTS else set()) | (
        {MASKS} if variant in synthetic_segmentation.VARIANTS else set())
    return frozenset(found or {BOXES, MASKS})  # an unknown variant: the opener names the known ones


@dataset_format("voc2007", provides=[BOXES], probe=lambda req: _year_annotations(req, 2007))
def open_voc2007(req: OpenRequest) -> Dataset:
    """``voc2007``: ``<root>/VOCdevkit/VOC2007`` (boxes or masks), else the synthetic stand-in."""
    return open_voc_segmentation_year(req, 2007) if wants_masks(req) else voc.open_voc2007(req)


@dataset_format("voc2012", provides=[BOXES], probe=lambda req: _year_annotations(req, 2012))
def open_voc2012(req: OpenRequest) -> Dataset:
    """``voc2012``: ``<root>/VOCdevkit/VOC2012`` (boxes or masks; its official val scored as test), else the
    synthetic stand-in."""
    return open_voc_segmentation_year(req, 2012) if wants_masks(req) else voc.open_voc2012(req)


def _folder_annotations(req: OpenRequest) -> frozenset[str]:
    try:
        folder, _ = voc.voc_folder_of_spec(req.spec)
    except (ConfigError, DataError):
        return voc_annotations(None)  # the opener names what is wrong
    return voc_annotations(folder)


@dataset_format("voc", provides=[BOXES], usage="voc:PATH", probe=_folder_annotations)
def open_voc_folder(req: OpenRequest) -> Dataset:
    """``voc:PATH``: any VOC layout folder, or a folder holding exactly one (:func:`voc.voc_folder_of_spec`;
    ``force_synthetic`` does not apply)."""
    return open_voc_segmentation_folder(req) if wants_masks(req) else voc.open_voc_folder(req)


@dataset_format("synthetic-voc", provides=[], usage="synthetic-voc[:VARIANT]", probe=_synthetic_annotations)
def open_synthetic_voc(req: OpenRequest) -> Dataset:
    """``synthetic-voc[:VARIANT]``: the synthetic detection set or one of its data-shape variants, or for a task
    that needs masks the synthetic segmentation set or one of its variants (generated once into the cache)."""
    return open_synthetic_segmentation(req) if wants_masks(req) else voc.open_synthetic_voc(req)
