"""Report sections below a task's tables: the kinds the report knows, named by the tasks that show them.

A task lists its sections in :attr:`benchsuite.tasks.base.Task.sections`, as it lists its plots: a kind of
:data:`SECTIONS` (``"gallery"``) or a function of the report's group and the run folder that returns a
:class:`Section` or None. Like plots, sections read the records and the evidence the tasks saved, never the data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchsuite.report.gallery import COLOURS, detector_gallery
from benchsuite.report.mask_gallery import VOID_RGB, class_colours, mask_gallery
from benchsuite.report.model import Group, ReportModel
from benchsuite.report.plots import Plot, contributed, erf_maps_plot
from benchsuite.results.erf import ERF_FILE, erf_summaries, load_erf

log = logging.getLogger(__name__)


@dataclass
class Section:
    """A titled set of figures below a table, with an optional legend of colours, table and notes.

    Attributes:
        title: the section's heading.
        figures: its images.
        legend_title: what the legend's colours mark (``"Boxes"``).
        legend: ``(rgb, colour name, meaning)`` per colour.
        table: ``(header, rows)`` of text cells shown above the figures, or None.
        notes: paragraphs shown below the table.
    """

    title: str
    figures: list[Plot]
    legend_title: str = ""
    legend: list[tuple[tuple[int, int, int], str, str]] = field(default_factory=list)
    table: tuple[list[str], list[list[str]]] | None = None
    notes: list[str] = field(default_factory=list)


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


def _pair_text(a: float | None, b: float | None, digits: int = 1) -> str:
    fa = "–" if a is None else f"{a:.{digits}f}"
    fb = "–" if b is None else f"{b:.{digits}f}"
    return f"{fa} → {fb}"


def _rf_text(rf: object) -> str:
    if isinstance(rf, list) and len(rf) == 2:
        return f"{rf[0]:g} × {rf[1]:g}"
    return str(rf) if rf else "unknown"


def erf_section(group: Group, run_dir: Path) -> Section | None:
    """The effective receptive fields of the group's networks (:mod:`benchsuite.erf`): a table of their sizes at
    initialisation and after training beside the theoretical field, and one figure per network with both maps.
    Read from each record's ``fit_info["erf"]`` and its job's ``erf.npz``; shown under test-split tables only (a
    job's val record measured the same network). None when no record of the group measured one."""
    if group.split != "test":
        return None
    rows = [r for r in group.rows if r.ok]
    found = erf_summaries([r.record for r in rows])
    if not found:
        return None
    header = ["pipeline", "seed", "layer", "probe images", "theoretical RF (px)", "ERF radius (px)",
              "σ Gaussian (px)", "Gaussian fit R²", "ERF disc / RF area"]
    table, figures, shares = [], [], set()
    for rec, erf in found:
        init, trained = erf.get("init") or {}, erf.get("trained") or {}
        shares.add(erf.get("share"))
        shape = "×".join(str(v) for v in (erf.get("input") or [])[1:])
        table.append([f"`{rec.get('pipeline')}`", str(rec.get("seed")), f"`{erf.get('layer')}`",
                      f"{erf.get('images')} {erf.get('split')} ({shape})", _rf_text(erf.get("theoretical_rf")),
                      _pair_text(init.get("radius"), trained.get("radius")),
                      _pair_text(init.get("sigma"), trained.get("sigma")),
                      _pair_text(init.get("gaussian_r2"), trained.get("gaussian_r2"), 2),
                      _pair_text(init.get("rf_area_share"), trained.get("rf_area_share"), 2)])
        path = run_dir / "jobs" / str(rec.get("job_id")) / str(erf.get("file") or ERF_FILE)
        try:
            saved = load_erf(path)
        except (OSError, ValueError) as exc:
            log.warning("report: no ERF maps for %s (%s)", rec.get("job_id"), exc)
            continue
        plot = erf_maps_plot(f"erf-{group.slug}-{rec.get('pipeline')}-s{rec.get('seed')}",
                             f"{rec.get('pipeline')}: ERF of {erf.get('layer')}", saved.maps, saved.rf_box,
                             {s: (erf.get(s) or {}).get("radius") for s in ("init", "trained")},
                             f"Mean |input gradient| of the centre unit of `{erf.get('layer')}` over "
                             f"{erf.get('images')} {erf.get('split')} images, at initialisation and trained; dashed: "
                             f"the unit's theoretical receptive field; circle: the radius holding "
                             f"{float(erf.get('share') or 0):.0%} of the gradient mass.")
        if plot is not None:
            figures.append(plot)
    share = ", ".join(f"{float(s):.0%}" for s in sorted(x for x in shares if x is not None))
    notes = [f"Effective receptive field (Luo et al., 2016): initialisation → trained. Radius: the disc around the "
             f"gradient's centre of mass holding {share} of the mass; σ: a 2-D Gaussian fitted by least squares "
             f"(R² near 1: Gaussian-shaped); last column: the disc's area over the theoretical field's box. Probed "
             f"on val images (the fit never sees test), the same images at both stages."]
    return Section("Effective receptive fields", figures, table=(header, table), notes=notes)


#: the sections a task may name in its ``sections``, by kind
SECTIONS: dict[str, Callable[[Group, Path], Section | None]] = {"gallery": gallery_section,
                                                                 "mask_gallery": mask_gallery_section,
                                                                 "erf": erf_section}
#: sections every group gets, whatever its task (they show only where the records hold what they need)
EVERY_GROUP: tuple[str, ...] = ("erf",)


def group_sections(group: Group, run_dir: Path) -> list[Section]:
    """The sections ``group``'s task contributes, in its order (none for a task no longer installed), then those
    of :data:`EVERY_GROUP`."""
    task = group.spec
    kinds = [*(task.sections if task is not None else ()), *(k for k in EVERY_GROUP
                                                              if task is None or k not in task.sections)]
    return contributed(group, run_dir, kinds, SECTIONS, "section")


def all_sections(model: ReportModel) -> dict[tuple[str, str, str], list[Section]]:
    return {g.key: group_sections(g, model.run_dir) for g in model.groups}
