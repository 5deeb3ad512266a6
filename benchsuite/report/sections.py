"""Report sections below a task's tables: the kinds the report knows, named by the tasks that show them.

A task lists its sections in :attr:`benchsuite.tasks.base.Task.sections`, as it lists its plots: a kind of
:data:`SECTIONS` (``"gallery"``) or a function of the report's group and the run folder that returns a
:class:`Section` or None. Like plots, sections read the records and the evidence the tasks saved, never the data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchsuite.report.gallery import COLOURS, detector_gallery
from benchsuite.report.mask_gallery import VOID_RGB, class_colours, mask_gallery
from benchsuite.report.model import Group, ReportModel
from benchsuite.report.plots import Plot, contributed


@dataclass
class Section:
    """A titled set of figures below a table, with an optional legend of colours.

    Attributes:
        title: the section's heading.
        figures: its images.
        legend_title: what the legend's colours mark (``"Boxes"``).
        legend: ``(rgb, colour name, meaning)`` per colour.
    """

    title: str
    figures: list[Plot]
    legend_title: str = ""
    legend: list[tuple[tuple[int, int, int], str, str]] = field(default_factory=list)


def gallery_section(group: Group, run_dir: Path) -> Section | None:
    """A strip of test images per detector with its kept boxes coloured by their status against the ground
    truth (:func:`benchsuite.report.gallery.detector_gallery`); None without evidence files."""
    figures = detector_gallery(group, run_dir)
    if not figures:
        return None
    return Section("Gallery: true positives, false positives, misses", figures, "Boxes",
                   [(COLOURS["tp"], "green", "true positive"), (COLOURS["fp"], "red", "false positive"),
                    (COLOURS["miss"], "amber", "missed object")])


def mask_gallery_section(group: Group, run_dir: Path) -> Section | None:
    """The same test images for every segmentation pipeline, its predicted classes laid over them
    (:func:`benchsuite.report.mask_gallery.mask_gallery`); None without evidence files."""
    figures, classes = mask_gallery(group, run_dir)
    if not figures:
        return None
    legend = [(rgb, name, cls) for cls, (rgb, name) in zip(classes[1:], class_colours(len(classes)))]
    return Section("Mask gallery: image, truth, each pipeline's classes", figures, "Classes",
                   [*legend, (VOID_RGB, "light grey", "void (truth only)"), ((255, 255, 255), "white",
                                                                            "truth outlines")])


#: the sections a task may name in its ``sections``, by kind
SECTIONS: dict[str, Callable[[Group, Path], Section | None]] = {"gallery": gallery_section,
                                                                 "mask_gallery": mask_gallery_section}


def group_sections(group: Group, run_dir: Path) -> list[Section]:
    """The sections ``group``'s task contributes, in its order (none for a task no longer installed)."""
    task = group.spec
    return contributed(group, run_dir, task.sections if task is not None else (), SECTIONS, "section")


def all_sections(model: ReportModel) -> dict[tuple[str, str, str], list[Section]]:
    return {g.key: group_sections(g, model.run_dir) for g in model.groups}
