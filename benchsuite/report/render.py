"""Render report blocks as Markdown (PNG files beside it) and as one self-contained HTML page.

Block text is the report's inline Markdown (:mod:`benchsuite.report.markup`: untrusted text already made literal);
a figure's title is plain text and its file name is made safe here (:func:`benchsuite.results.safe_paths.safe_name`:
a name built from a pipeline id or a data set name in a record never leaves ``report_files/``).
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from benchsuite.report import markup
from benchsuite.report.document import Block, Bullets, Figures, Heading, Legend, Para, Table
from benchsuite.report.tables import markdown_table
from benchsuite.results.atomic import atomic_write_bytes
from benchsuite.results.safe_paths import inside, safe_name


def inline_html(text: str) -> str:
    """A line of the report's inline Markdown as HTML (:func:`benchsuite.report.markup.to_html`)."""
    return markup.to_html(text)


def figure_file(name: str) -> str:
    """The PNG file name of a figure named ``name`` inside the report's assets folder (safe, unique per name)."""
    return safe_name(name) + ".png"


# --------------------------------------------------------------------------------------------- Markdown


def to_markdown(blocks: list[Block], assets: Path | None, assets_rel: str = "report_files") -> str:
    """Markdown text; figures are written as PNG files into ``assets`` (skipped when None)."""
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out += ["#" * b.level + " " + b.text, ""]
        elif isinstance(b, Para):
            prefix = "> " if b.kind in ("banner", "note") else ""
            out += [prefix + b.text, ""]
        elif isinstance(b, Bullets):
            out += [f"- {item}" for item in b.items] + [""]
        elif isinstance(b, Legend):
            out += [f"{markup.lit(b.title)}: " + "; ".join(f"{markup.lit(name)}: {markup.lit(meaning)}"
                                                           for _, name, meaning in b.entries) + ".", ""]
        elif isinstance(b, Table):
            out += [markdown_table(b.header, b.rows), ""]
        elif isinstance(b, Figures):
            for p in b.plots:
                if assets is not None:
                    atomic_write_bytes(inside(assets, figure_file(p.name), what="figure file"), p.png)
                    out.append(f"![{markup.lit(p.title)}]({assets_rel}/{figure_file(p.name)})")
                out += [f"*{markup.lit(p.title)}.* {p.caption}", ""]
    return "\n".join(out).rstrip() + "\n"


# ------------------------------------------------------------------------------------------------- HTML

CSS = """
:root { --classical: #D55E00; --deep: #0072B2; --ink: #1d2327; --muted: #5f6b73; --line: #d9dee2; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       margin: 0; background: #f6f7f8; }
main { max-width: 1280px; margin: 0 auto; padding: 24px 28px 60px; background: #fff; }
h1 { font-size: 26px; margin: 4px 0 12px; }
h2 { font-size: 20px; margin: 36px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 16px; margin: 22px 0 8px; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, monospace; background: #eef1f3; padding: 1px 4px;
       border-radius: 3px; }
.banner { background: #b3261e; color: #fff; padding: 12px 16px; border-radius: 6px; font-size: 16px; }
.banner code { background: rgba(255,255,255,.2); color: #fff; }
.note { color: var(--muted); font-size: 13px; }
#headline + ul li { margin: 8px 0; padding: 8px 12px; background: #f1f6fa; border-left: 4px solid var(--deep);
                    list-style: none; }
#headline + ul { padding-left: 0; }
nav { font-size: 13px; margin: 8px 0 16px; }
nav a { margin-right: 14px; color: var(--deep); }
.scroll { overflow-x: auto; margin: 8px 0 14px; }
table { border-collapse: collapse; font-size: 13px; white-space: nowrap; }
th, td { padding: 5px 9px; border-bottom: 1px solid var(--line); text-align: right; }
th { background: #eef1f3; position: sticky; top: 0; }
td:first-child, th:first-child, td:nth-child(2), th:nth-child(2) { text-align: left; }
tr.classical td:first-child { border-left: 4px solid var(--classical); }
tr.deep td:first-child { border-left: 4px solid var(--deep); }
tr.failed td { color: #b3261e; }
tr:nth-child(even) td { background: #fafbfc; }
.figs { display: flex; flex-wrap: wrap; gap: 18px; }
figure { margin: 6px 0; max-width: 100%; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; }
figcaption { font-size: 12.5px; color: var(--muted); max-width: 760px; }
.legend span { display: inline-block; width: 14px; height: 10px; margin: 0 4px 0 10px; border: 2px solid; }
"""

def _legend_html(legend: Legend) -> str:
    swatches = "".join(f'<span style="border-color:rgb{tuple(int(c) for c in rgb)}"></span>{html.escape(meaning)}'
                       for rgb, _, meaning in legend.entries)
    return f'<p class="legend note">{html.escape(legend.title)}:{swatches}</p>'


def _figure_html(plot, kind: str) -> str:
    data = base64.b64encode(plot.png).decode("ascii")
    title = html.escape(plot.title)
    return (f'<figure class="{kind}"><img alt="{title}" src="data:image/png;base64,{data}">'
            f"<figcaption><strong>{title}.</strong> {inline_html(plot.caption)}</figcaption></figure>")


def to_html(blocks: list[Block], title: str) -> str:
    """One HTML page with inline CSS and base64 images: no script, no network."""
    body: list[str] = []
    nav = [b for b in blocks if isinstance(b, Heading) and b.level == 2 and b.anchor]
    for b in blocks:
        if isinstance(b, Heading):
            anchor = f' id="{html.escape(b.anchor)}"' if b.anchor else ""
            body.append(f"<h{b.level}{anchor}>{inline_html(b.text)}</h{b.level}>")
            if b.level == 1 and nav:
                links = "".join(f'<a href="#{html.escape(h.anchor)}">{inline_html(h.text)}</a>' for h in nav)
                body.append(f"<nav>{links}</nav>")
        elif isinstance(b, Para):
            cls = f' class="{b.kind}"' if b.kind else ""
            body.append(f"<p{cls}>{inline_html(b.text)}</p>")
        elif isinstance(b, Legend):
            body.append(_legend_html(b))
        elif isinstance(b, Bullets):
            body.append("<ul>" + "".join(f"<li>{inline_html(i)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, Table):
            head = "".join(f"<th>{inline_html(h)}</th>" for h in b.header)
            rows = []
            for k, row in enumerate(b.rows):
                cls = f' class="{html.escape(b.row_kinds[k])}"' if k < len(b.row_kinds) else ""
                rows.append(f"<tr{cls}>" + "".join(f"<td>{inline_html(c)}</td>" for c in row) + "</tr>")
            body.append(f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}'
                        f"</tbody></table></div>")
        elif isinstance(b, Figures):
            body.append('<div class="figs">' + "".join(_figure_html(p, b.kind) for p in b.plots) + "</div>")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n<body><main>\n"
            + "\n".join(body) + "\n</main></body></html>\n")
