"""The index of all study answers: reports/index.md and reports/index.html."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from study.index_report import MISSING_ANSWERS, build_index, format_p_value, main

CHROMIUM = Path("/usr/bin/chromium")
EVIL = "<script>alert('x')</script>"
EVIL_SENTENCE = f"weight decay {EVIL} helps | or hurts"
DROPOUT_SENTENCES = ("dropout closes more of the gap in LSTMs than in CNNs",
                     "dropout delays the onset of overfitting")


def claim(sentence: str, status: str, **numbers: float | None) -> dict:
    """One claim as answers.json holds it; numbers default to null."""
    values = {key: None for key in ("estimate", "ci_low", "ci_high", "p_value", "adjusted_p_value",
                                     "false_positive_rate")}
    values.update(numbers)
    return {"sentence": sentence, "factor": "dropout", "measure": "gap_at_target", "status": status,
            **values, "reading": f"{status.capitalize()}: {sentence}."}


def answers(study: str, claims: list[dict], note: str | None = None, question: str = "") -> dict:
    """A whole answers.json document."""
    return {"study": study, "question": question, "dataset": "synthetic_ecg", "note": note, "alpha": 0.05,
            "family": f"Holm across {len(claims)} claims", "claims": claims, "no_verdict_reason": None}


def write_study(reports: Path, name: str, document: dict | str | None) -> Path:
    """A study directory with report.md, report.html and (unless None) answers.json."""
    directory = reports / name
    directory.mkdir(parents=True)
    (directory / "report.md").write_text("# report\n", encoding="utf-8")
    (directory / "report.html").write_text("<!DOCTYPE html><title>report</title>", encoding="utf-8")
    if document is not None:
        text = document if isinstance(document, str) else json.dumps(document)
        (directory / "answers.json").write_text(text, encoding="utf-8")
    return directory


@pytest.fixture()
def reports(tmp_path: Path) -> Path:
    """Five study directories (two good, one old, two broken) and a hidden one that must be skipped."""
    reports = tmp_path / "reports"
    write_study(reports, "dropout", answers("dropout", [
        claim(DROPOUT_SENTENCES[0], "supported", estimate=-0.1234, ci_low=-0.2, ci_high=-0.03, p_value=0.0004,
              adjusted_p_value=0.008, false_positive_rate=0.043),
        claim(DROPOUT_SENTENCES[1], "inconclusive", estimate=0.01, ci_low=-0.05, ci_high=0.07, p_value=0.41,
              adjusted_p_value=0.41, false_positive_rate=0.05)],
        question="How much of the generalisation gap does dropout close?"))
    write_study(reports, "weight_decay", answers(EVIL, [claim(EVIL_SENTENCE, "no verdict")],
                                                 note="partial: the study is still running"))
    write_study(reports, "legacy", None)
    write_study(reports, "malformed", {"study": 3})
    write_study(reports, "not_json", "{not json")
    write_study(reports, ".hidden", answers("hidden_study", []))
    (reports / "stray.txt").write_text("not a study", encoding="utf-8")
    return reports


class _TagCollector(HTMLParser):
    """Every start tag and its attributes, to check the page's structure without a browser."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_index_markdown_lists_every_study_claim_and_problem(reports: Path) -> None:
    markdown_path, html_path = build_index(reports)
    assert (markdown_path, html_path) == (reports / "index.md", reports / "index.html")
    markdown = markdown_path.read_text(encoding="utf-8")

    lines = markdown.splitlines()
    assert lines[0] == "# Index of study answers"
    assert lines[2] == ("5 studies (3 without readable answers); 3 claims: 1 supported, 0 contradicted, "
                        "0 other arm, 1 inconclusive, 1 no verdict.")
    for heading in ("## dropout", f"## {EVIL}", "## legacy", "## malformed", "## not_json"):
        assert heading in lines
    assert "hidden_study" not in markdown and "stray" not in markdown
    # Sections in directory order.
    order = [markdown.index(f"## {name}") for name in ("dropout", "legacy", "malformed", "not_json", EVIL)]
    assert order == sorted(order)

    for sentence in DROPOUT_SENTENCES:
        assert sentence in markdown
    assert ("| dropout closes more of the gap in LSTMs than in CNNs | supported | -0.123 [-0.2, -0.03] | < 0.001 "
            "| 0.008 | 0.043 |") in lines
    assert "| dropout delays the onset of overfitting | inconclusive | 0.01 [-0.05, 0.07] | 0.41 | 0.41 | 0.05 |" in lines
    # The pipe is escaped, the script is left as text (markdown is not HTML-escaped), missing numbers are n/a.
    assert f"| weight decay {EVIL} helps \\| or hurts | no verdict | n/a | n/a | n/a | n/a |" in lines
    assert "&lt;" not in markdown
    assert "- Question: How much of the generalisation gap does dropout close?" in lines
    assert "- Question: not recorded" in lines
    assert "- Dataset: synthetic_ecg" in lines
    assert "- Error control: Holm across 2 claims (alpha = 0.05)" in lines
    assert "- Note: partial: the study is still running" in lines
    assert "Directory: `weight_decay`" in lines

    for name in ("dropout", "weight_decay", "legacy", "malformed", "not_json"):
        assert f"Full report: [report.md]({name}/report.md)" in lines
    assert f"**Problem:** {MISSING_ANSWERS}" in lines
    problems = [line for line in lines if line.startswith("**Problem:**")]
    assert len(problems) == 3
    assert any("does not match the contract: 'study' is number, expected string" in line for line in problems)
    assert any("is not valid JSON" in line for line in problems)


def test_index_html_escapes_data_and_links_each_report(reports: Path) -> None:
    _, html_path = build_index(reports)
    page = html_path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert '<meta charset="utf-8">' in page and "<title>Index of study answers</title>" in page

    collector = _TagCollector()
    collector.feed(page)
    collector.close()
    tags = [tag for tag, _ in collector.tags]
    assert "script" not in tags and "<script" not in page.lower()
    assert not {"img", "link", "iframe", "object", "embed"} & set(tags)  # nothing external
    assert all(not any(name.startswith("on") for name in attributes) for _, attributes in collector.tags)
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page

    links = [attributes["href"] for tag, attributes in collector.tags if tag == "a"]
    assert links == [f"{name}/report.html" for name in ("dropout", "legacy", "malformed", "not_json",
                                                         "weight_decay")]
    text = "".join(collector.text)
    for sentence in (*DROPOUT_SENTENCES, EVIL_SENTENCE, EVIL, MISSING_ANSWERS):
        assert sentence in text
    assert ("5 studies (3 without readable answers); 3 claims: 1 supported, 0 contradicted, 0 other arm, "
            "1 inconclusive, 1 no verdict.") in text
    badges = [attributes["class"] for tag, attributes in collector.tags
              if tag == "span" and "status" in (attributes.get("class") or "")]
    assert badges == ["status supported", "status inconclusive", "status no-verdict"]
    assert "partial: the study is still running" in text
    assert "&lt; 0.001" in page


def test_rebuilding_gives_byte_identical_files_and_leaves_no_temporary_files(reports: Path) -> None:
    first = [path.read_bytes() for path in build_index(reports)]
    second = [path.read_bytes() for path in build_index(reports)]
    assert first == second
    assert sorted(path.name for path in reports.iterdir() if path.is_file()) == ["index.html", "index.md",
                                                                                   "stray.txt"]


def test_an_empty_reports_directory_gives_an_empty_index(tmp_path: Path) -> None:
    markdown_path, html_path = build_index(tmp_path)
    assert "0 studies; 0 claims: 0 supported, 0 contradicted, 0 other arm, 0 inconclusive, 0 no verdict." \
        in markdown_path.read_text(encoding="utf-8")
    assert html_path.read_text(encoding="utf-8").rstrip().endswith("</html>")


@pytest.mark.parametrize("document, problem", [
    ("[]", "expected a JSON object at the top level, got array"),
    (json.dumps({**answers("s", []), "alpha": "0.05"}), "'alpha' is string, expected number"),
    (json.dumps({**answers("s", []), "note": 1}), "'note' is number, expected string or null"),
    (json.dumps(answers("s", [{**claim("c", "maybe")}])), "claims[0].status is 'maybe'"),
    (json.dumps(answers("s", [{**claim("c", "supported"), "p_value": "0.01"}])),
     "claims[0].p_value is string, expected number or null"),
    (json.dumps(answers("s", [{**claim("c", "supported"), "estimate": True}])),
     "claims[0].estimate is boolean, expected number or null"),
    (json.dumps(answers("s", ["c"])), "claims[0] is string, expected object"),
    ("\n\n{\"study\": ", "is not valid JSON"),
])
def test_a_bad_answers_file_is_listed_with_a_one_line_problem(tmp_path: Path, document: str, problem: str) -> None:
    write_study(tmp_path, "bad", document)
    markdown_path, html_path = build_index(tmp_path)
    markdown = markdown_path.read_text(encoding="utf-8")
    line = next(line for line in markdown.splitlines() if line.startswith("**Problem:**"))
    assert problem in line
    assert "1 studies" not in markdown and "1 study (1 without readable answers); 0 claims" in markdown


def test_p_values_are_shown_with_three_digits_or_as_a_bound() -> None:
    assert [format_p_value(value) for value in (0.0009999, 0.001, 0.012345, 1.0, None, float("nan"))] == [
        "< 0.001", "0.001", "0.0123", "1", "n/a", "n/a"]


def test_main_rebuilds_the_index_and_rejects_a_missing_directory(reports: Path, capsys) -> None:
    missing = reports.parent / "nowhere"
    assert main([str(missing)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [f"study: error: {missing}: no such directory"]

    assert main([str(reports)]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [str(reports / "index.md"), str(reports / "index.html")]
    assert (reports / "index.md").is_file() and (reports / "index.html").is_file()


def chromium(arguments: list[str], profile: Path) -> subprocess.CompletedProcess:
    """Run headless chromium with a throw-away profile."""
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--hide-scrollbars", f"--user-data-dir={profile}", "--window-size=1280,1600", *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(not CHROMIUM.is_file(), reason="headless browser check needs /usr/bin/chromium: "
                    "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium")
def test_index_opens_in_headless_chromium_with_the_script_shown_not_run(reports: Path, tmp_path: Path) -> None:
    _, html_path = build_index(reports)
    dump = chromium(["--virtual-time-budget=5000", "--dump-dom", html_path.as_uri()], tmp_path / "profile")
    dom = dump.stdout
    assert "</body>" in dom, f"no DOM dumped; chromium said: {dump.stderr[-2000:]}"
    for text in ("dropout", "legacy", "malformed", "not_json", *DROPOUT_SENTENCES, MISSING_ANSWERS):
        assert text in dom
    # The evil study name and sentence are text nodes: serialised escaped, never as an element.
    assert "&lt;script&gt;alert('x')&lt;/script&gt;" in dom
    assert "weight decay &lt;script&gt;alert('x')&lt;/script&gt; helps | or hurts" in dom
    assert re.search(r"<script", dom, flags=re.IGNORECASE) is None
    assert 'href="dropout/report.html"' in dom
    shutil.rmtree(tmp_path / "profile", ignore_errors=True)


def test_the_index_files_get_the_usual_permissions_not_private_ones(tmp_path):
    import os
    import stat

    from study.index_report import build_index

    previous = os.umask(0o022)
    try:
        markdown, page = build_index(tmp_path)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(markdown.stat().st_mode) == 0o644
    assert stat.S_IMODE(page.stat().st_mode) == 0o644
