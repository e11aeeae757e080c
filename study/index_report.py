"""One index of every study's answers: ``reports/index.md`` and ``reports/index.html``.

Each study report in ``reports/<study>/`` carries a machine-readable
``answers.json`` (its question, dataset, how the error rate is controlled across
its claims, and one verdict per claim). A reviewer should not have to open every
report to learn what the studies concluded, so this module gathers those files
into one page: per study its question, dataset, note, family line and a table of
claims (status, estimate with confidence interval, p-value, adjusted p-value and
the measured false-positive rate), with a link to the full report. A "Why?" table
first lists, for each explanation of the depth question, every study that tests
it with its status there (answers.json's optional ``why`` list; studies built
before it existed test nothing).

The index is built from the files alone and never raises on a bad one: a study
directory without ``answers.json`` or with one that does not match the contract
is listed with a one-line problem. The output has no timestamps, so rebuilding
an unchanged directory gives byte-identical files, and each file is written
atomically. The HTML page is self-contained (inline CSS, no script, no external
resources) and every string from the data goes through ``html.escape``.

This module imports nothing from ``study`` (``study.report`` may call it).

Usage: ``python -m study.index_report [REPORTS_DIR]`` (default ``reports``).
"""
from __future__ import annotations

import argparse
import html
import json
import math
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import quote

#: Claim statuses in the order they are counted and shown.
STATUSES = ("supported", "contradicted", "other arm", "inconclusive", "no verdict")

#: CSS class of each claim status (the badge colour), as in report.html.
STATUS_CLASS = {"supported": "supported", "contradicted": "contradicted", "other arm": "other-arm",
                "inconclusive": "inconclusive", "no verdict": "no-verdict"}

ANSWERS_FILE = "answers.json"
MISSING_ANSWERS = "no answers.json (report built by an older version; rebuild it)"
INDEX_MARKDOWN = "index.md"
INDEX_HTML = "index.html"
TITLE = "Index of study answers"

#: Top-level keys of answers.json and the types they may hold (None means JSON null).
_STUDY_FIELDS: dict[str, tuple[type, ...]] = {
    "study": (str,), "question": (str,), "dataset": (str,), "note": (str, type(None)), "alpha": (int, float),
    "family": (str,), "claims": (list,), "no_verdict_reason": (str, type(None))}
_CLAIM_TEXT_FIELDS = ("sentence", "factor", "measure", "status", "reading")
_CLAIM_NUMBER_FIELDS = ("estimate", "ci_low", "ci_high", "p_value", "adjusted_p_value", "false_positive_rate")

#: The explanations of why ECG papers stack LSTMs 2-4 deep and CNNs 10-15 deep, in the order of
#: study.config.EXPLANATIONS (this module imports nothing from study; a test keeps the two equal).
EXPLANATIONS = ("vanishing_gradients", "overfitting", "receptive_field", "parameters", "gating")
#: An explanation's statuses in a study (study.statistics.explanations.WHY_STATUSES); the last means untested.
WHY_STATUSES = ("supported", "contradicted", "mixed", "inconclusive", "not tested in this study")
NOT_TESTED = "not tested in this study"
_WHY_CLASS = {"supported": "supported", "contradicted": "contradicted", "mixed": "other-arm",
              "inconclusive": "inconclusive"}

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1200px;
       padding: 0 1rem; color: #1b1b1b; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.5rem; }
h2 { font-size: 1.25rem; margin-top: 2rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1.2rem; font-size: 0.85rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.number { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
#summary { background: #fafafa; border: 2px solid #444; border-radius: 6px; padding: 0.5rem 1.2rem; }
.status { font-weight: bold; padding: 0.1rem 0.45rem; border-radius: 4px; white-space: nowrap; }
.supported { background: #c8e6c9; color: #1b5e20; }
.contradicted { background: #ffcdd2; color: #b71c1c; }
.other-arm { background: #e1d5f0; color: #4a148c; }
.inconclusive { background: #fff3c4; color: #6d4c00; }
.no-verdict { background: #e0e0e0; color: #424242; }
.note { background: #fff3c4; padding: 0.3rem 0.6rem; border-radius: 4px; }
.problem { background: #ffcdd2; color: #b71c1c; padding: 0.3rem 0.6rem; border-radius: 4px; }
.scroll { overflow-x: auto; }
"""


class ContractError(ValueError):
    """answers.json was read and parsed but does not match the contract."""


@dataclass(frozen=True)
class StudyEntry:
    """One study directory: its answers when they could be read, otherwise the problem (one line)."""

    directory_name: str
    answers: dict[str, Any] | None
    problem: str | None
    has_report_markdown: bool
    has_report_html: bool


# ---------------------------------------------------------------- reading


def _json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for problem messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _is_number_or_null(value: Any) -> bool:
    """True for a JSON number (not a boolean) or null."""
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def validate_answers(answers: Any) -> dict[str, Any]:
    """Return ``answers`` when it matches the answers.json contract; raise :class:`ContractError` otherwise."""
    if not isinstance(answers, dict):
        raise ContractError(f"expected a JSON object at the top level, got {_json_type(answers)}")
    for key, types in _STUDY_FIELDS.items():
        if key not in answers:
            raise ContractError(f"missing key {key!r}")
        value = answers[key]
        if isinstance(value, bool) or not isinstance(value, types):
            expected = " or ".join(dict.fromkeys(_json_type(None if kind is type(None) else kind())
                                                 for kind in types))
            raise ContractError(f"{key!r} is {_json_type(value)}, expected {expected}")
    for position, claim in enumerate(answers["claims"]):
        where = f"claims[{position}]"
        if not isinstance(claim, dict):
            raise ContractError(f"{where} is {_json_type(claim)}, expected object")
        for key in _CLAIM_TEXT_FIELDS:
            if key not in claim:
                raise ContractError(f"{where} is missing key {key!r}")
            if not isinstance(claim[key], str):
                raise ContractError(f"{where}.{key} is {_json_type(claim[key])}, expected string")
        if claim["status"] not in STATUSES:
            raise ContractError(f"{where}.status is {claim['status']!r}, expected one of " + ", ".join(STATUSES))
        for key in _CLAIM_NUMBER_FIELDS:
            if key not in claim:
                raise ContractError(f"{where} is missing key {key!r}")
            if not _is_number_or_null(claim[key]):
                raise ContractError(f"{where}.{key} is {_json_type(claim[key])}, expected number or null")
    why = answers.get("why", [])
    if not isinstance(why, list):
        raise ContractError(f"'why' is {_json_type(why)}, expected array")
    for position, row in enumerate(why):
        where = f"why[{position}]"
        if not isinstance(row, dict):
            raise ContractError(f"{where} is {_json_type(row)}, expected object")
        for key in ("explanation", "status"):
            if not isinstance(row.get(key), str):
                raise ContractError(f"{where}.{key} is {_json_type(row.get(key))}, expected string")
        if row["status"] not in WHY_STATUSES:
            raise ContractError(f"{where}.status is {row['status']!r}, expected one of " + ", ".join(WHY_STATUSES))
        claims = row.get("claims")
        if isinstance(claims, bool) or not isinstance(claims, int) or claims < 0:
            raise ContractError(f"{where}.claims is {_json_type(claims)}, expected a count")
    return answers


def _one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) collapsed to one space."""
    return " ".join(str(text).split())


def read_study(directory: Path) -> StudyEntry:
    """Read one study directory's answers.json; a missing or bad file becomes a one-line problem, never an error."""
    path = directory / ANSWERS_FILE
    answers: dict[str, Any] | None = None
    problem: str | None = None
    if not path.exists():
        problem = MISSING_ANSWERS
    else:
        try:
            text = path.read_text(encoding="utf-8")
            answers = validate_answers(json.loads(text))
        except json.JSONDecodeError as error:
            problem = f"answers.json is not valid JSON: {error}"
        except UnicodeDecodeError as error:
            problem = f"answers.json is not UTF-8 text: {error}"
        except ContractError as error:
            problem = f"answers.json does not match the contract: {error}"
        except (OSError, RecursionError, ValueError) as error:
            problem = f"answers.json could not be read: {error}"
    return StudyEntry(directory_name=directory.name, answers=answers,
                      problem=None if problem is None else _one_line(problem),
                      has_report_markdown=(directory / "report.md").is_file(),
                      has_report_html=(directory / "report.html").is_file())


def read_studies(reports_dir: Path) -> list[StudyEntry]:
    """Every immediate, non-hidden sub-directory of ``reports_dir`` that holds a report (answers.json, report.md
    or report.html), sorted by name; other folders (a runs directory beside the reports) are not studies."""
    directories = sorted((child for child in reports_dir.iterdir()
                          if child.is_dir() and not child.name.startswith(".")
                          and any((child / name).is_file() for name in ("answers.json", "report.md", "report.html"))),
                         key=lambda child: child.name)
    return [read_study(directory) for directory in directories]


# ---------------------------------------------------------------- formatting


def format_number(value: Any) -> str:
    """A number with 3 significant digits; 'n/a' when missing or not finite."""
    if not _is_number_or_null(value) or value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.3g}"


def format_p_value(value: Any) -> str:
    """A p-value with 3 significant digits, '< 0.001' below 0.001, 'n/a' when missing."""
    if _is_number_or_null(value) and value is not None and math.isfinite(value) and value < 0.001:
        return "< 0.001"
    return format_number(value)


def format_estimate(claim: dict[str, Any]) -> str:
    """'estimate [ci_low, ci_high]', or the estimate alone when the interval is missing."""
    estimate = format_number(claim.get("estimate"))
    if claim.get("ci_low") is None and claim.get("ci_high") is None:
        return estimate
    return f"{estimate} [{format_number(claim.get('ci_low'))}, {format_number(claim.get('ci_high'))}]"


def summary_line(entries: Sequence[StudyEntry]) -> str:
    """How many studies (and how many could not be read), and how many claims have each status."""
    counts = dict.fromkeys(STATUSES, 0)
    for entry in entries:
        for claim in (entry.answers or {}).get("claims", []):
            counts[claim["status"]] += 1
    unreadable = sum(entry.answers is None for entry in entries)
    claims = sum(counts.values())
    studies = f"{len(entries)} {'study' if len(entries) == 1 else 'studies'}"
    if unreadable:
        studies += f" ({unreadable} without readable answers)"
    by_status = ", ".join(f"{count} {status}" for status, count in counts.items())
    return f"{studies}; {claims} {'claim' if claims == 1 else 'claims'}: {by_status}."


def _claim_cells(claim: dict[str, Any]) -> list[str]:
    """The plain-text cells of one claim row, after the sentence and status."""
    return [format_estimate(claim), format_p_value(claim["p_value"]), format_p_value(claim["adjusted_p_value"]),
            format_number(claim["false_positive_rate"])]


_COLUMNS = ("Claim", "Status", "Estimate [CI low, CI high]", "p", "Adjusted p", "Measured false-positive rate")
_WHY_COLUMNS = ("Explanation", "Studies that test it: status (claims)")
_WHY_INTRO = ("For each explanation of why ECG papers stack LSTMs 2-4 deep and CNNs 10-15 deep, every study "
              "whose claims test it, with the explanation's status there (from the claims tagged with it, Holm "
              "across each study's claims).")


def why_rows(entries: Sequence[StudyEntry]) -> list[tuple[str, list[tuple[str, str, int]]]]:
    """Per explanation (the known ones in order, then any other a study names, sorted): the (study, status,
    claims) of every study that tests it, in directory order."""
    tested: dict[str, list[tuple[str, str, int]]] = {name: [] for name in EXPLANATIONS}
    extra: dict[str, list[tuple[str, str, int]]] = {}
    for entry in entries:
        if entry.answers is None:
            continue
        name = _one_line(entry.answers["study"]) or entry.directory_name
        for row in entry.answers.get("why", []):
            if row["status"] == NOT_TESTED:
                continue
            target = tested if row["explanation"] in tested else extra
            target.setdefault(row["explanation"], []).append((name, row["status"], row["claims"]))
    return [*tested.items(), *sorted(extra.items())]


def _why_text(study: str, status: str, claims: int) -> str:
    return f"{study}: {status} ({claims} {'claim' if claims == 1 else 'claims'})"


# ---------------------------------------------------------------- markdown


def _markdown_cell(text: str) -> str:
    """A markdown table cell: on one line, with '|' escaped."""
    return _one_line(text).replace("|", "\\|")


def _markdown_link_target(directory_name: str, file_name: str) -> str:
    """The relative link ``<study>/<file>``, percent-encoded so any directory name stays one link."""
    return f"{quote(directory_name)}/{file_name}"


def render_markdown(entries: Sequence[StudyEntry]) -> str:
    """index.md: the summary line, then one section per study."""
    lines = [f"# {TITLE}", "", summary_line(entries), "", "## Why?", "", _WHY_INTRO, "",
             "| " + " | ".join(_WHY_COLUMNS) + " |", "|" + "---|" * len(_WHY_COLUMNS)]
    for explanation, studies in why_rows(entries):
        cells = [explanation, "; ".join(_why_text(*study) for study in studies) or "no study tests it"]
        lines.append("| " + " | ".join(_markdown_cell(cell) for cell in cells) + " |")
    lines.append("")
    for entry in entries:
        answers = entry.answers
        name = entry.directory_name if answers is None else answers["study"]
        lines += [f"## {_one_line(name) or entry.directory_name}", ""]
        if answers is not None and answers["study"] != entry.directory_name:
            lines += [f"Directory: `{_one_line(entry.directory_name)}`", ""]
        if entry.has_report_markdown:
            lines += [f"Full report: [report.md]({_markdown_link_target(entry.directory_name, 'report.md')})", ""]
        else:
            lines += ["Full report: no report.md", ""]
        if answers is None:
            lines += [f"**Problem:** {entry.problem}", ""]
            continue
        lines += [f"- Question: {_one_line(answers['question']) or 'not recorded'}",
                  f"- Dataset: {_one_line(answers['dataset'])}",
                  f"- Error control: {_one_line(answers['family'])} (alpha = {format_number(answers['alpha'])})"]
        if answers["note"] is not None:
            lines.append(f"- Note: {_one_line(answers['note'])}")
        if answers["no_verdict_reason"] is not None:
            lines.append(f"- No verdict: {_one_line(answers['no_verdict_reason'])}")
        lines.append("")
        if answers["claims"]:
            lines += ["| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
            for claim in answers["claims"]:
                cells = [claim["sentence"], claim["status"], *_claim_cells(claim)]
                lines.append("| " + " | ".join(_markdown_cell(cell) for cell in cells) + " |")
        else:
            lines.append("No claims.")
        lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------- HTML


def _escape(text: Any) -> str:
    """Any value as HTML-escaped text (quotes included)."""
    return html.escape(str(text), quote=True)


def _html_link(entry: StudyEntry) -> str:
    """A paragraph linking to the study's report.html, or saying there is none."""
    if not entry.has_report_html:
        return "<p>Full report: no report.html</p>"
    target = _escape(_markdown_link_target(entry.directory_name, "report.html"))
    return f'<p>Full report: <a href="{target}">{_escape(entry.directory_name)}/report.html</a></p>'


def _html_claims(claims: Sequence[dict[str, Any]]) -> str:
    """The table of claims, with the status as a coloured badge."""
    header = "".join(f"<th>{_escape(column)}</th>" for column in _COLUMNS)
    rows = []
    for claim in claims:
        status = claim["status"]
        badge = f'<span class="status {STATUS_CLASS[status]}">{_escape(status)}</span>'
        numbers = "".join(f'<td class="number">{_escape(cell)}</td>' for cell in _claim_cells(claim))
        rows.append(f"<tr><td>{_escape(claim['sentence'])}</td><td>{badge}</td>{numbers}</tr>")
    return (f'<div class="scroll"><table><thead><tr>{header}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def _html_why(entries: Sequence[StudyEntry]) -> str:
    """The Why? table: per explanation, every study that tests it with its status as a badge."""
    header = "".join(f"<th>{_escape(column)}</th>" for column in _WHY_COLUMNS)
    rows = []
    for explanation, studies in why_rows(entries):
        items = []
        for study, status, claims in studies:
            badge = (f'<span class="status {_WHY_CLASS[status]}">{_escape(status)}</span>' if status in _WHY_CLASS
                     else _escape(status))
            items.append(f"{_escape(study)}: {badge} ({claims} {'claim' if claims == 1 else 'claims'})")
        rows.append(f"<tr><td>{_escape(explanation)}</td><td>{'; '.join(items) or 'no study tests it'}</td></tr>")
    return (f'<section id="why"><h2>Why?</h2><p>{_escape(_WHY_INTRO)}</p><div class="scroll"><table><thead><tr>'
            f'{header}</tr></thead><tbody>{"".join(rows)}</tbody></table></div></section>')


def render_html(entries: Sequence[StudyEntry]) -> str:
    """index.html: a self-contained page (inline CSS, no script) with the same content as index.md."""
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{_escape(TITLE)}</title><style>{_STYLE}</style></head><body>",
             f"<h1>{_escape(TITLE)}</h1>", f'<p id="summary">{_escape(summary_line(entries))}</p>', _html_why(entries)]
    for entry in entries:
        answers = entry.answers
        name = entry.directory_name if answers is None else answers["study"]
        parts.append(f"<section><h2>{_escape(name or entry.directory_name)}</h2>")
        if answers is not None and answers["study"] != entry.directory_name:
            parts.append(f"<p>Directory: <code>{_escape(entry.directory_name)}</code></p>")
        parts.append(_html_link(entry))
        if answers is None:
            parts.append(f'<p class="problem"><strong>Problem:</strong> {_escape(entry.problem)}</p></section>')
            continue
        items = [f"<li>Question: {_escape(answers['question'] or 'not recorded')}</li>",
                 f"<li>Dataset: {_escape(answers['dataset'])}</li>",
                 f"<li>Error control: {_escape(answers['family'])} (alpha = {_escape(format_number(answers['alpha']))})</li>"]
        parts.append(f"<ul>{''.join(items)}</ul>")
        if answers["note"] is not None:
            parts.append(f'<p class="note"><strong>Note:</strong> {_escape(answers["note"])}</p>')
        if answers["no_verdict_reason"] is not None:
            parts.append(f'<p class="note"><strong>No verdict:</strong> {_escape(answers["no_verdict_reason"])}</p>')
        parts.append(_html_claims(answers["claims"]) if answers["claims"] else "<p>No claims.</p>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# ---------------------------------------------------------------- writing


def current_umask() -> int:
    """The process' file-creation mask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same directory and ``os.replace``; the file gets
    the permissions any new file gets (mkstemp's are private)."""
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o666 & ~current_umask())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def build_index(reports_dir: Path) -> tuple[Path, Path]:
    """Write ``reports_dir/index.md`` and ``reports_dir/index.html``; return their paths (markdown, HTML)."""
    reports_dir = Path(reports_dir)
    entries = read_studies(reports_dir)
    markdown_path = reports_dir / INDEX_MARKDOWN
    html_path = reports_dir / INDEX_HTML
    write_atomically(markdown_path, render_markdown(entries))
    write_atomically(html_path, render_html(entries))
    return markdown_path, html_path


def main(argv: Sequence[str] | None = None) -> int:
    """Rebuild the index of ``REPORTS_DIR`` (default ``reports``) and print the two paths; 2 when it is missing."""
    parser = argparse.ArgumentParser(prog="python -m study.index_report",
                                     description="Rebuild reports/index.md and reports/index.html.")
    parser.add_argument("reports_dir", nargs="?", default="reports", help="directory of study reports")
    arguments = parser.parse_args(argv)
    reports_dir = Path(arguments.reports_dir)
    if not reports_dir.is_dir():
        print(f"study: error: {reports_dir}: no such directory", file=sys.stderr)
        return 2
    for path in build_index(reports_dir):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
