"""Write a run's report: ``report.md`` (plots as PNG files in ``report_files/``) and a self-contained
``report.html``, both rendered from one :class:`~benchsuite.report.model.ReportModel`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from benchsuite.report.document import build_document
from benchsuite.report.model import build_model
from benchsuite.report.render import to_html, to_markdown
from benchsuite.results.atomic import atomic_write_text
from benchsuite.results.intervals import ASSETS

log = logging.getLogger(__name__)


@dataclass
class ReportPaths:
    markdown: Path
    html: Path | None


def write_report(run_dir: Path | str, html: bool = True, plots: bool = True) -> ReportPaths:
    """Build the model once and write ``report.md`` and (with ``html``) ``report.html`` into ``run_dir``."""
    from benchsuite.report.plots import all_plots
    from benchsuite.report.sections import all_sections
    from benchsuite.report.study_axes import axis_study_blocks

    run_dir = Path(run_dir)
    model = build_model(run_dir)
    figs = all_plots(model) if plots else {}
    sections = all_sections(model) if plots else {}
    blocks = build_document(model, figs, sections, axis_study_blocks(model, plots))
    md = run_dir / "report.md"
    atomic_write_text(md, to_markdown(blocks, run_dir / ASSETS, ASSETS))
    page = None
    if html:
        page = run_dir / "report.html"
        atomic_write_text(page, to_html(blocks, f"benchsuite report {model.run_id}"))
    return ReportPaths(md, page)
