"""report.html: a self-contained page with the same content as report.md.

The sections come from :func:`study.markdown.report_sections` (the content is
decided once, for both reports); this module only renders them as HTML. The page
needs nothing but itself: figures are embedded as base64 PNG data URIs, styles
are inline, and there is no script. The verdict comes first. Every string from
data or configuration (title, table cells, column names, readings, caveats,
figure names) goes through ``html.escape``, so a study name such as
``<script>`` is shown, not run.
"""
from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import pandas as pd

from study.markdown import (Bullets, FigureRef, Paragraph, ReportContext, Section, Span, Subheading, Table,
                            format_value, report_sections)
from study.statistics.summaries import is_number

if TYPE_CHECKING:  # pragma: no cover
    from study.statistics.analysis import Analysis

#: CSS class of each statement status (the badge colour).
STATUS_CLASS = {"supported": "supported", "contradicted": "contradicted", "other arm": "other-arm",
                "inconclusive": "inconclusive"}

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1200px;
       padding: 0 1rem; color: #1b1b1b; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.5rem; }
h2 { font-size: 1.25rem; margin-top: 2rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
h3 { font-size: 1.05rem; margin-top: 1.2rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1.2rem; font-size: 0.85rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
#verdict { background: #fafafa; border: 2px solid #444; border-radius: 6px; padding: 0.5rem 1.2rem 1rem; }
.status { font-weight: bold; padding: 0.1rem 0.45rem; border-radius: 4px; white-space: nowrap; }
.supported { background: #c8e6c9; color: #1b5e20; }
.contradicted { background: #ffcdd2; color: #b71c1c; }
.other-arm { background: #e1d5f0; color: #4a148c; }
.inconclusive { background: #fff3c4; color: #6d4c00; }
.note { background: #fff3c4; padding: 0.3rem 0.6rem; border-radius: 4px; }
figure { margin: 1rem 0 2rem; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.85rem; color: #555; }
.scroll { overflow-x: auto; }
"""


def _text(value: Any) -> str:
    """Any value as escaped text, formatted as in report.md (4 significant digits, 'n/a')."""
    return html.escape(format_value(value))


def table_html(frame: pd.DataFrame) -> str:
    """An escaped HTML table of a frame (numbers right-aligned)."""
    if frame.empty:
        return "<p>(no rows)</p>"
    header = "".join(f"<th>{html.escape(str(column))}</th>" for column in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = "".join(
            f'<td class="number">{_text(value)}</td>' if is_number(value) else f"<td>{_text(value)}</td>"
            for value in row)
        body.append(f"<tr>{cells}</tr>")
    return f'<div class="scroll"><table><thead><tr>{header}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _png_bytes(source: Path | bytes | None) -> bytes | None:
    """The PNG bytes of a figure: given bytes, a PNG path, or an SVG path's PNG sibling."""
    if source is None:
        return None
    if isinstance(source, (bytes, bytearray)):
        return bytes(source)
    path = Path(source)
    candidate = path if path.suffix.lower() == ".png" else path.with_suffix(".png")
    return candidate.read_bytes() if candidate.is_file() else None


def _spans_html(parts: Sequence[Span]) -> str:
    out = []
    for part in parts:
        text = html.escape(part.text)
        if part.code:
            out.append(f"<code>{text}</code>")
        elif part.strong and part.text in STATUS_CLASS:
            out.append(f'<span class="status {STATUS_CLASS[part.text]}">{text}</span>')
        elif part.strong:
            out.append(f"<strong>{text}</strong>")
        else:
            out.append(text)
    return "".join(out)


def _block_html(block: Any, figures: Mapping[str, Path | bytes]) -> str:
    if isinstance(block, Paragraph):
        return f"<p>{_spans_html(block.spans)}</p>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{_spans_html(item)}</li>" for item in block.items) + "</ul>"
    if isinstance(block, Table):
        return table_html(block.frame)
    if isinstance(block, Subheading):
        return f"<h3>{html.escape(block.text)}</h3>"
    if isinstance(block, FigureRef):
        name, caption = html.escape(block.name), html.escape(block.caption)
        data = _png_bytes(figures.get(block.name))
        if data is None:
            return f"<p>Figure {name}: (not available)</p>"
        encoded = base64.b64encode(data).decode("ascii")
        return (f'<figure id="figure-{name}"><img src="data:image/png;base64,{encoded}" alt="{name}">'
                f"<figcaption><strong>{name}</strong>: {caption}</figcaption></figure>")
    raise TypeError(f"unknown block {block!r}")


def _section_html(section: Section, figures: Mapping[str, Path | bytes]) -> str:
    heading = "" if section.id == "status" else f"<h2>{html.escape(section.heading)}</h2>"
    body = "".join(_block_html(block, figures) for block in section.blocks)
    return f'<section id="{html.escape(section.id)}">{heading}{body}</section>'


def render_html(analysis: Analysis, figure_files: Mapping[str, Path | bytes], title: str,
                partial_note: str | None = None) -> str:
    """The whole report page: the sections of report.md, the figures embedded as PNG.

    ``figure_files`` maps a figure name to its PNG file (an SVG path finds its
    PNG sibling) or to PNG bytes; a figure without one says it is not available.
    """
    context = ReportContext.from_manifest(analysis.manifest, figures=tuple(figure_files))
    sections = report_sections(analysis, context, partial_note=partial_note)
    escaped_title = html.escape(title)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escaped_title}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{escaped_title}</h1>"
        + "".join(_section_html(section, figure_files) for section in sections)
        + "</body></html>\n"
    )
