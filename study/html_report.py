"""A self-contained HTML page (and a Markdown block) for the verdict of :mod:`study.analysis`.

The page needs nothing but itself: figures are embedded as base64 PNG data
URIs, styles are inline, and there is no script. The verdict comes first.
Every string that comes from data or configuration (title, table cells,
column names, explanations, caveats, file names) goes through
``html.escape``, so a study name such as ``<script>`` is shown, not run.
"""
from __future__ import annotations

import base64
import html
import numbers
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from study.analysis import CONTRADICTED, INCONCLUSIVE, SUPPORTED, Verdict

_STATUS_CLASS = {SUPPORTED: "supported", CONTRADICTED: "contradicted", INCONCLUSIVE: "inconclusive"}

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1200px;
       padding: 0 1rem; color: #1b1b1b; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.5rem; }
h2 { font-size: 1.25rem; margin-top: 2rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1.2rem; font-size: 0.85rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
#verdict { background: #fafafa; border: 2px solid #444; border-radius: 6px; padding: 0.5rem 1.2rem 1rem; }
.status { font-weight: bold; padding: 0.1rem 0.45rem; border-radius: 4px; white-space: nowrap; }
.supported { background: #c8e6c9; color: #1b5e20; }
.contradicted { background: #ffcdd2; color: #b71c1c; }
.inconclusive { background: #fff3c4; color: #6d4c00; }
figure { margin: 1rem 0 2rem; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.85rem; color: #555; }
.scroll { overflow-x: auto; }
"""


def _text(value: Any) -> str:
    """Any value as escaped text, formatted as in report.md (4 significant digits, 'n/a')."""
    from study.report import format_cell

    if isinstance(value, str):
        return html.escape(value)
    return html.escape(format_cell(value).replace("\\|", "|"))


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def table_html(frame: pd.DataFrame) -> str:
    """An escaped HTML table of a frame (numbers right-aligned)."""
    if frame.empty:
        return "<p>(no rows)</p>"
    header = "".join(f"<th>{html.escape(str(column))}</th>" for column in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = "".join(
            f'<td class="number">{_text(value)}</td>' if _is_number(value) else f"<td>{_text(value)}</td>"
            for value in row)
        body.append(f"<tr>{cells}</tr>")
    return f'<div class="scroll"><table><thead><tr>{header}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _interval(low: float, high: float) -> str:
    return f"[{_text(low)}, {_text(high)}]"


def _verdict_html(verdict: Verdict) -> str:
    level = f"{verdict.confidence:.0%}"
    rows = []
    for statement in verdict.statements:
        status_class = _STATUS_CLASS.get(statement.status, "inconclusive")
        rows.append(
            "<tr>"
            f"<td>{html.escape(statement.claim)}</td>"
            f'<td><span class="status {status_class}">{html.escape(statement.status)}</span></td>'
            f"<td>{html.escape(statement.measure)}<br><small>{html.escape(statement.direction)}</small></td>"
            f'<td class="number">{_text(statement.estimate)}</td>'
            f'<td class="number">{_interval(statement.ci_low, statement.ci_high)}</td>'
            f'<td class="number">{_text(statement.p_value)}</td>'
            "</tr>")
    explanations = "".join(
        f"<li><strong>{html.escape(statement.claim)}</strong>: {html.escape(statement.explanation)}</li>"
        for statement in verdict.statements)
    caveats = "".join(f"<li>{html.escape(caveat)}</li>" for caveat in verdict.caveats) or "<li>none found</li>"
    fixed = "".join(f"<li>{html.escape(line)}</li>" for line in verdict.held_fixed)
    return (
        '<section id="verdict"><h2>Verdict</h2>'
        f"<table><thead><tr><th>statement</th><th>status</th><th>primary measure</th>"
        f"<th>slope difference ({html.escape(verdict.first)} - {html.escape(verdict.second)}) per depth doubling</th>"
        f"<th>{level} interval</th><th>permutation p</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f"<ul>{explanations}</ul>"
        f"<h3>Caveats</h3><ul>{caveats}</ul>"
        f"<h3>Held fixed</h3><ul>{fixed}</ul>"
        f"<h3>Thresholds</h3>{table_html(verdict.thresholds.table())}"
        f"<p><small>Intervals: percentile bootstrap, {verdict.resamples} resamples of seeds within each "
        f"architecture x depth cell, seed {verdict.seed}. A statement is supported when the interval of its "
        "primary slope difference lies entirely on the supporting side of 0, contradicted when entirely on the "
        "other side, inconclusive otherwise.</small></p>"
        "</section>"
    )


def _png_for(path: Path) -> Path | None:
    """The PNG of a figure path (an SVG's PNG sibling), or None when there is none."""
    path = Path(path)
    candidate = path if path.suffix.lower() == ".png" else path.with_suffix(".png")
    return candidate if candidate.is_file() else None


def _figures_html(figures: Sequence[Path]) -> str:
    seen: list[Path] = []
    for path in figures:
        png = _png_for(path)
        if png is not None and png not in seen:
            seen.append(png)
    parts = []
    for png in seen:
        encoded = base64.b64encode(png.read_bytes()).decode("ascii")
        caption = html.escape(png.stem.replace("_", " "))
        parts.append(f'<figure><img src="data:image/png;base64,{encoded}" alt="{caption}">'
                     f"<figcaption>{caption}</figcaption></figure>")
    return "".join(parts) or "<p>(no figures)</p>"


def render_html(verdict: Verdict, tables: Mapping[str, pd.DataFrame], figures: Sequence[Path], title: str) -> str:
    """The whole report page: verdict first, then the figures (embedded PNGs), then the tables."""
    sections = "".join(f"<h3>{html.escape(str(name))}</h3>{table_html(frame)}" for name, frame in tables.items())
    escaped_title = html.escape(title)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escaped_title}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{escaped_title}</h1>"
        f"{_verdict_html(verdict)}"
        f'<section id="figures"><h2>Figures</h2>{_figures_html(figures)}</section>'
        f'<section id="tables"><h2>Tables</h2>{sections or "<p>(no tables)</p>"}</section>'
        "</body></html>\n"
    )


def _markdown_text(value: Any) -> str:
    """A value for a Markdown table or list: angle brackets and ampersands as entities (so data cannot
    inject HTML into a rendered report.md), pipes escaped, one line."""
    if isinstance(value, str):
        return html.escape(value, quote=False).replace("|", "\\|").replace("\n", " ")
    return _text(value)


def verdict_markdown(verdict: Verdict) -> str:
    """The verdict as a Markdown block for report.md (statements, all measures, caveats, what was fixed)."""
    level = f"{verdict.confidence:.0%}"
    first, second = _markdown_text(verdict.first), _markdown_text(verdict.second)
    lines = [
        "## Verdict", "",
        f"| statement | status | primary measure | slope difference ({first} - {second}) "
        f"per depth doubling | {level} interval | permutation p |",
        "| --- | --- | --- | ---: | ---: | ---: |",
    ]
    for statement in verdict.statements:
        lines.append(
            f"| {_markdown_text(statement.claim)} | **{statement.status}** | {_markdown_text(statement.measure)} | "
            f"{_text(statement.estimate)} | [{_text(statement.ci_low)}, {_text(statement.ci_high)}] | "
            f"{_text(statement.p_value)} |")
    lines.append("")
    for statement in verdict.statements:
        lines += [f"- **{_markdown_text(statement.claim)}** ({_markdown_text(statement.direction)}): "
                  f"{_markdown_text(statement.explanation)}"]
    slopes = verdict.slopes
    if slopes is not None and not slopes.empty:
        lines += ["", "All measures (slope per doubling of depth; interval of the difference):", "",
                  "| question | measure | primary | supports if | "
                  f"{first} slope | {second} slope | difference | {level} interval | p | status |",
                  "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
        for _, row in slopes.iterrows():
            lines.append(
                f"| {row['question']} | {row['measure']} | {'yes' if row['primary'] else 'no'} | "
                f"{row['supports_if']} | "
                f"{_text(row['slope_first'])} | {_text(row['slope_second'])} | {_text(row['difference'])} | "
                f"[{_text(row['ci_low'])}, {_text(row['ci_high'])}] | {_text(row['p_value'])} | {row['status']} |")
    lines += ["", "Caveats:", ""]
    lines += [f"- {_markdown_text(caveat)}" for caveat in verdict.caveats] or ["- none found"]
    lines += ["", "Held fixed:", ""]
    lines += [f"- {_markdown_text(line)}" for line in verdict.held_fixed]
    lines += ["", "Thresholds: " + ", ".join(
        f"{row.threshold}={_text(row.value)}" for row in verdict.thresholds.table().itertuples(index=False)) + ".",
        f"Intervals: percentile bootstrap with {verdict.resamples} resamples of seeds within each "
        f"architecture x depth cell (seed {verdict.seed}); p-values from as many permutations of the "
        "architecture labels within each depth.", ""]
    return "\n".join(lines)
