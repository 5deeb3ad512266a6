"""The report's inline text: two marks (``**bold**`` and ```code```), and untrusted text kept literal in both outputs.

Everything a report shows about a run comes from its folder: pipeline ids, data set and class names, errors, what a
plugin put into ``fit_info`` or its shortcuts, the command line. A run folder may come from anywhere, so that text
must reach ``report.md`` and ``report.html`` as text, never as markup: no raw HTML, no link, no heading, no table
cell of its own. The document builds its lines with two helpers:

- :func:`lit`: untrusted text as literal Markdown: CommonMark's backslash escapes before every character that could
  start markup (``\\ ` * _ [ ] < > & ~ | # !``, and a leading ``-``, ``+``, ``=`` or ``1.`` where the text starts a
  line), line breaks and other control characters as spaces;
- :func:`code`: untrusted text as a code span, fenced with more backticks than it holds (raw HTML is never parsed
  inside a code span).

:func:`to_html` reads the same text back: backslash escapes, code spans and ``**bold**``, everything else escaped
for HTML, so the two outputs say the same thing.
"""

from __future__ import annotations

import html
import re
from typing import Any

#: characters escaped wherever they are (each could open an inline construct, an autolink or raw HTML)
_ALWAYS = frozenset("\\`*_[]<>&~|#!")
#: the longest piece of untrusted text shown (a plugin's error or note can be long; the record keeps all of it)
MAX_TEXT = 2000
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def clean(text: Any, limit: int = MAX_TEXT) -> str:
    """``text`` as one line: ``str()`` of it, control characters and line breaks as single spaces, at most
    ``limit`` characters (an ellipsis marks the cut)."""
    out = _CONTROL.sub(" ", str(text))
    return out if len(out) <= limit else out[: limit - 1] + "…"


def lit(text: Any, limit: int = MAX_TEXT, line_start: bool = False) -> str:
    """Untrusted ``text`` as Markdown that renders exactly as the text (one line, see :func:`clean`);
    ``line_start``: the text begins a line, where a leading ``-``, ``+``, ``=`` or ``1.`` would start a list or
    underline a heading (escaped too)."""
    out = "".join("\\" + c if c in _ALWAYS else c for c in clean(text, limit))
    if line_start and out[:1] in ("-", "+", "="):
        out = "\\" + out
    elif line_start:
        out = re.sub(r"^(\d+)([.)])", r"\1\\\2", out)
    return out


def code(text: Any, limit: int = 200) -> str:
    """Untrusted ``text`` as an inline code span (one line, see :func:`clean`)."""
    body = clean(text, limit)
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if body.startswith("`") or body.endswith("`") or not body.strip() else ""
    return f"{fence}{pad}{body}{pad}{fence}"


_PUNCT = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


def to_html(text: str) -> str:
    """The HTML of a line of the report's inline Markdown (the marks above, backslash escapes, code spans)."""
    out: list[str] = []
    i, n = 0, len(text)
    bold = False
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n and text[i + 1] in _PUNCT:
            out.append(html.escape(text[i + 1]))
            i += 2
        elif c == "`":
            run = len(text[i:]) - len(text[i:].lstrip("`"))
            close = _closing_fence(text, i + run, run)
            if close is None:  # no closing fence: the backticks are text
                out.append(html.escape(text[i:i + run]))
                i += run
                continue
            body = text[i + run:close]
            if len(body) >= 2 and body[0] == " " and body[-1] == " " and body.strip():
                body = body[1:-1]
            out.append(f"<code>{html.escape(body)}</code>")
            i = close + run
        elif text.startswith("**", i) and (bold or text.find("**", i + 2) >= 0):
            out.append("</strong>" if bold else "<strong>")
            bold = not bold
            i += 2
        else:
            out.append(html.escape(c))
            i += 1
    if bold:
        out.append("</strong>")
    return "".join(out)


def _closing_fence(text: str, start: int, run: int) -> int | None:
    """Where the backtick run of exactly ``run`` that closes a code span opened before ``start`` begins, or None."""
    for m in re.finditer(r"`+", text[start:]):
        if len(m.group()) == run:
            return start + m.start()
    return None
