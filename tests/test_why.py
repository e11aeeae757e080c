"""Why? The explanations of the depth question in the report: the why table from hand-made statements, the
gradient profile and model sizes from hand-made trial frames, gradients.csv read and checked, a planted study's
report with its Why? section, figures and tables, and the index's Why? table. No Keras training."""
from __future__ import annotations

import copy
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from study import index_report, tables
from study.config import EXPLANATIONS, Claim
from study.errors import BadInput
from study.figures import figure_caption, plot_gradient_profile
from study.report import load_run
from study.statistics.explanations import (EXPLANATION_DETAILS, GRADIENT_PROFILE_COLUMNS, MIXED, NOT_TESTED,
                                           WHY_COLUMNS, WHY_STATUSES, explanation_axes, gradient_profile, model_sizes,
                                           summarise_statuses, why_table)
from study.statistics.planted import PlantedStudy, planted_tables
from study.statistics.rules import CONTRADICTED, INCONCLUSIVE, OTHER_ARM, SUPPORTED
from study.statistics.verdict import ArmSlope, Statement
from tests.conftest import run_main, snapshot

NAN = math.nan


# ---------------------------------------------------------------- the why table (pure)


def statement(sentence: str, status: str, measure: str = "gradient_ratio", *, estimate: float = -0.5,
              interval: tuple[float, float] = (-0.8, -0.2), adjusted: float = 0.004, error: float = 0.048,
              one_arm: bool = False) -> Statement:
    """A verdict statement with the numbers the why table reads (the rest is filler)."""
    first = ArmSlope("lstm", estimate if one_arm else -1.0, *(interval if one_arm else (-1.2, -0.8)), 0.001, 12, 3)
    second = ArmSlope("cnn", -0.5, -0.7, -0.3, 0.01, 12, 3)
    return Statement("claim", sentence, status, measure, first, second, NAN if one_arm else estimate,
                     *((NAN, NAN) if one_arm else interval), 0.002, "reading", "rule", "", "",
                     false_positive_rate=error, adjusted_p_value=adjusted, one_arm=one_arm)


def claim(explanation: str | None, measure: str = "gradient_ratio") -> Claim:
    return Claim(factor="depth", measure=measure, direction="decreases", levels=(1.0, 2.0, 4.0), scale="log2",
                 compare_factor="architecture", compare_levels=("lstm", "cnn"), explanation=explanation)


def test_why_table_has_one_row_per_explanation_and_summarises_the_statuses_of_its_claims():
    pairs = [
        (statement("g1", SUPPORTED), claim("vanishing_gradients")),
        (statement("untagged", CONTRADICTED, "gap_at_target"), claim(None, "gap_at_target")),
        (statement("g2", SUPPORTED, "best_train_loss", estimate=0.25, interval=(0.1, 0.4), adjusted=0.0004,
                   error=NAN, one_arm=True), claim("vanishing_gradients", "best_train_loss")),
        (statement("o1", SUPPORTED, "gap_at_target"), claim("overfitting", "gap_at_target")),
        (statement("o2", CONTRADICTED, "gap_at_target"), claim("overfitting", "gap_at_target")),
        (statement("p1", INCONCLUSIVE, "best_train_loss"), claim("parameters", "best_train_loss")),
        (statement("p2", OTHER_ARM, "best_train_loss"), claim("parameters", "best_train_loss")),
        (statement("p3", SUPPORTED, "gap_at_best"), claim("parameters", "gap_at_best")),
        (statement("q1", CONTRADICTED, "best_train_loss"), claim("gating", "best_train_loss")),
        (statement("q2", INCONCLUSIVE, "best_train_loss"), claim("gating", "best_train_loss")),
    ]
    why = why_table([item for item, _ in pairs], [item for _, item in pairs], {"training": {"record_gradients": True}})
    assert list(why.columns) == WHY_COLUMNS
    assert why["explanation"].tolist() == list(EXPLANATIONS)
    assert why["status"].tolist() == [SUPPORTED, MIXED, NOT_TESTED, INCONCLUSIVE, CONTRADICTED]
    assert why["claims"].tolist() == [2, 2, 0, 3, 2]
    assert why["supported"].tolist() == [2, 1, 0, 1, 0]
    assert why["contradicted"].tolist() == [0, 1, 0, 0, 1]
    assert why["figure"].tolist() == ["why_vanishing_gradients", "why_overfitting", "", "why_parameters", "why_gating"]
    assert why["measure"].tolist() == ["gradient_ratio, best_train_loss", "gap_at_target",
                                       "best_val_accuracy (none claimed here)", "best_train_loss, gap_at_best",
                                       "best_train_loss"]
    row = why.set_index("explanation")
    assert row.loc["vanishing_gradients", "evidence"] == (
        "2 claims (2 supported): g1 (supported: gradient_ratio slope difference -0.5 [-0.8, -0.2] per doubling of "
        "depth, Holm-adjusted p = 0.004, measured error rate 4.8%); g2 (supported: best_train_loss slope 0.25 "
        "[0.1, 0.4] per doubling of depth, Holm-adjusted p < 0.001, measured error rate not measured)")
    assert row.loc["parameters", "evidence"].startswith("3 claims (1 inconclusive, 1 other arm, 1 supported): p1 (")
    assert row.loc["receptive_field", "evidence"] == "no claim of this study is tagged with it"
    assert row.loc["gating", "question"] == EXPLANATION_DETAILS["gating"].question
    assert "untagged" not in " ".join(why["evidence"])
    # Without a verdict every explanation is untested; gradients recorded are said where they belong.
    empty = why_table((), (), {"training": {"record_gradients": True}})
    assert set(empty["status"]) == {NOT_TESTED} and (empty["claims"] == 0).all()
    assert empty["evidence"].iloc[0].endswith("(gradient norms were recorded: see the gradient ratio per cell)")
    with pytest.raises(ValueError, match="one statement per claim"):
        why_table([pairs[0][0]], [], None)


def test_the_row_status_rule():
    assert summarise_statuses([]) == NOT_TESTED
    assert summarise_statuses([SUPPORTED]) == SUPPORTED
    assert summarise_statuses([SUPPORTED, INCONCLUSIVE]) == INCONCLUSIVE
    assert summarise_statuses([OTHER_ARM]) == INCONCLUSIVE
    assert summarise_statuses([CONTRADICTED, OTHER_ARM]) == CONTRADICTED
    assert summarise_statuses([CONTRADICTED, SUPPORTED, INCONCLUSIVE]) == MIXED
    assert set(WHY_STATUSES) == {SUPPORTED, CONTRADICTED, MIXED, INCONCLUSIVE, NOT_TESTED}


def test_explanation_axes_number_the_axes_as_the_factor_profile_does():
    a, b = claim("vanishing_gradients"), claim("parameters", "best_train_loss")
    other = Claim(factor="depth", measure="gradient_ratio", direction="decreases", levels=(1.0, 2.0, 4.0), scale="log2",
                  compare_factor="architecture", compare_levels=("lstm", "rnn"), explanation="gating")
    assert explanation_axes([claim(None), a, other, b, a]) == {
        "vanishing_gradients": [(0, "gradient_ratio")], "parameters": [(0, "best_train_loss")],
        "gating": [(1, "gradient_ratio")]}


# ---------------------------------------------------------------- gradient profile and model sizes (pure)


def gradient_frame() -> pd.DataFrame:
    rows = [
        # trial, phase, architecture, depth, parent, gradient_ratio, gradient_ratio_at_init
        ("1", "tune", "lstm", 1, NAN, 0.0, 0.0),
        ("2", "tune", "lstm", 1, NAN, 0.0, NAN),          # a continued Hyperband trial has no epoch 0
        ("3", "tune", "lstm", 4, NAN, -1.0, -0.5),
        ("4", "tune", "lstm", 4, NAN, -2.0, -1.5),
        ("5", "tune", "lstm", 4, NAN, NAN, -9.0),         # no finite ratio: not a unit
        ("6", "tune", "lstm", 4, NAN, 7.0, 7.0),          # continued by trial 7: a fragment, not a unit
        ("7", "tune", "lstm", 4, "6", -3.0, NAN),
        ("8", "tune", "cnn", 4, NAN, -0.25, -0.125),
        ("r1", "repeat", "cnn", 4, NAN, 5.0, 5.0),        # repeat seeds are not units
    ]
    frame = pd.DataFrame(rows, columns=["trial_id", "phase", "architecture", "depth", "parent_trial_id",
                                        "gradient_ratio", "gradient_ratio_at_init"])
    return frame.assign(setting=0)


def test_gradient_profile_means_per_cell_over_the_tuning_units():
    profile = gradient_profile(gradient_frame(), ["architecture", "depth"], resamples=500)
    assert list(profile.columns) == ["architecture", "depth", *GRADIENT_PROFILE_COLUMNS]
    assert profile[["architecture", "depth"]].values.tolist() == [["cnn", 4], ["lstm", 1], ["lstm", 4]]
    assert profile["n"].tolist() == [1, 2, 3]
    assert profile["gradient_ratio_mean"].tolist() == pytest.approx([-0.25, 0.0, -2.0])
    assert profile["n_at_init"].tolist() == [1, 1, 2]
    assert profile["gradient_ratio_at_init_mean"].tolist() == pytest.approx([-0.125, 0.0, -1.0])
    cnn, lstm1, lstm4 = (row for _, row in profile.iterrows())
    assert math.isnan(cnn["gradient_ratio_low"]) and math.isnan(cnn["gradient_ratio_high"])  # one unit
    assert lstm1["gradient_ratio_low"] == lstm1["gradient_ratio_high"] == 0.0
    assert -3.0 <= lstm4["gradient_ratio_low"] < -2.0 < lstm4["gradient_ratio_high"] <= -1.0
    assert -1.5 <= lstm4["gradient_ratio_at_init_low"] <= lstm4["gradient_ratio_at_init_high"] <= -0.5
    # Other scientific factors split the cells; no gradients: the columns and no rows.
    split = gradient_profile(gradient_frame().assign(clipnorm=[0, 1, 0, 1, 0, 0, 1, 0, 0]),
                             ["architecture", "depth", "clipnorm"], resamples=50)
    assert list(split.columns)[:3] == ["architecture", "depth", "clipnorm"] and split["n"].tolist() == [1, 1, 1, 1, 2]
    empty = gradient_profile(gradient_frame().drop(columns=["gradient_ratio"]), ["architecture", "depth"])
    assert empty.empty and list(empty.columns) == ["architecture", "depth", *GRADIENT_PROFILE_COLUMNS]


def test_model_sizes_show_the_value_a_cell_shares_or_its_range():
    frame = pd.DataFrame({
        "trial_id": ["1", "2", "3", "4", "5", "r1"], "phase": ["tune"] * 5 + ["repeat"],
        "architecture": ["lstm", "lstm", "cnn", "cnn", "cnn", "cnn"], "depth": [2, 2, 8, 8, 8, 8],
        "parameter_budget": [8000] * 6, "width": [29, 29, 30, 31, NAN, 99],
        "parameter_count": [7920, 7920, 8100, 8240, NAN, 1], "receptive_field": [140, 140, 57, 57, 57, 1],
        "setting": [0, 1, 0, 1, 2, 0], "parent_trial_id": NAN})
    sizes = model_sizes(frame, ["architecture", "depth"])
    assert list(sizes.columns) == ["architecture", "depth", "parameter_budget", "width", "parameter_count",
                                   "receptive_field"]
    assert sizes.values.tolist() == [["cnn", 8, 8000, "30-31", "8100-8240", 57], ["lstm", 2, 8000, 29, 7920, 140]]
    # parameter_budget as a scientific factor is a cell column; a column nobody filled is n/a.
    scientific = model_sizes(frame.assign(receptive_field=NAN), ["architecture", "depth", "parameter_budget"])
    assert list(scientific.columns) == ["architecture", "depth", "parameter_budget", "width", "parameter_count",
                                        "receptive_field"]
    assert scientific["receptive_field"].isna().all()
    old = model_sizes(frame.drop(columns=["parameter_budget", "receptive_field"]), ["architecture", "depth"])
    assert list(old.columns) == ["architecture", "depth", "width", "parameter_count"]


def test_the_gradient_panel_draws_one_line_per_architecture_and_a_dashed_zero_line():
    from matplotlib.figure import Figure

    profile = gradient_profile(gradient_frame(), ["architecture", "depth"], resamples=50)
    ax = Figure().subplots()
    plot_gradient_profile(profile, ax)
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["CNN", "LSTM"]
    assert any(line.get_linestyle() == "--" and list(line.get_ydata()) == [0, 0] for line in ax.lines)
    empty = Figure().subplots()
    plot_gradient_profile(profile.iloc[0:0], empty)
    assert "not enough data" in empty.texts[0].get_text()
    assert "gradient ratio" in figure_caption("why_vanishing_gradients").lower()
    assert "parameters" in figure_caption("why_parameters")


# ---------------------------------------------------------------- a planted study with gradients.csv

#: Every gradient_ratio claim of the planted study: LSTMs' first-layer gradient shrinks with depth, CNNs' does not.
WHY_CLAIMS = [
    {"factor": "depth", "measure": "gradient_ratio", "direction": "decreases", "compare": {"architecture": ["lstm", "cnn"]},
     "explanation": "vanishing_gradients", "sentence": "the first-layer gradient shrinks faster with depth in LSTMs"},
    {"factor": "depth", "measure": "gap_at_target", "direction": "increases", "compare": {"architecture": ["lstm", "cnn"]},
     "explanation": "overfitting", "sentence": "deeper LSTMs overfit faster"},
    {"factor": "depth", "measure": "trainable_fraction", "direction": "decreases",
     "compare": {"architecture": ["lstm", "cnn"]}, "sentence": "an untagged claim"},
]
PLAN = PlantedStudy(depths=(1, 2, 4), settings_per_cell=4, repeat_seeds=1, epochs=6, seed=5, claims=WHY_CLAIMS)


def planted_gradients(trials: pd.DataFrame, epochs: int) -> pd.DataFrame:
    """gradients.csv of the planted trials: layer i of d hidden layers has kernel norm 10^(-(d - i) / 2) in an
    LSTM (gradient_ratio -(d - 1) / 2) and 1 in a CNN (ratio 0); the classifier and biases have norm 1."""
    rows = []
    for trial in trials.itertuples(index=False):
        depth = int(trial.depth)
        kinds = ("input_kernel", "recurrent_kernel") if trial.architecture == "lstm" else ("convolution_kernel",)
        for epoch in range(epochs + 1):
            for index in range(1, depth + 2):
                hidden = index <= depth
                norm = 10 ** (-(depth - index) / 2) if hidden and trial.architecture == "lstm" else 1.0
                layer = f"{trial.architecture}_{index}" if hidden else "classifier"
                for kind in (kinds if hidden else ("input_kernel",)):
                    rows.append((trial.trial_id, trial.phase, epoch, layer, index, kind, norm))
                rows.append((trial.trial_id, trial.phase, epoch, layer, index, "bias", 0.5))
    return pd.DataFrame(rows, columns=tables.GRADIENT_COLUMNS)


def write_planted_run(run_dir: Path, *, gradients: bool = True) -> Path:
    epochs, trials, manifest = planted_tables(copy.deepcopy(PLAN))
    manifest["space"]["analysis"] = {"calibration_studies": 0, "permutations": 199}
    manifest["space"]["training"] = {"record_gradients": gradients}
    trials["receptive_field"] = np.where(trials["architecture"] == "lstm", 140, 1 + 6 * trials["depth"])
    run_dir.mkdir(parents=True)
    epochs.to_csv(run_dir / tables.EPOCHS_FILE, index=False)
    trials.to_csv(run_dir / tables.TRIALS_FILE, index=False)
    (run_dir / tables.MANIFEST_FILE).write_text(json.dumps(manifest), encoding="utf-8")
    if gradients:
        planted_gradients(trials, PLAN.epochs).to_csv(run_dir / tables.GRADIENTS_FILE, index=False)
    return run_dir


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("why")
    run = write_planted_run(root / "runs" / "planted")
    status, _out, err = run_main(["report", "planted", "--runs-dir", str(root / "runs"), "--reports-dir",
                                  str(root / "reports")])
    assert status == 0, err
    return run, root / "reports" / "planted"


def test_a_report_with_gradients_and_tagged_claims_answers_why(built):
    _run, report = built
    why = pd.read_csv(report / "why.csv", keep_default_na=False)
    assert why["explanation"].tolist() == list(EXPLANATIONS)
    assert why["claims"].tolist() == [1, 1, 0, 0, 0]
    assert why["status"].iloc[0] == SUPPORTED  # a planted ratio of -(depth - 1) / 2 in LSTMs, 0 in CNNs
    assert why["status"].iloc[1] in WHY_STATUSES and why["status"].iloc[1] != NOT_TESTED
    assert why["status"].tolist()[2:] == [NOT_TESTED] * 3
    assert why["figure"].tolist() == ["why_vanishing_gradients", "why_overfitting", "", "", ""]
    assert "Holm-adjusted p = " in why["evidence"].iloc[0] and "the first-layer gradient shrinks" in why["evidence"].iloc[0]

    profile = pd.read_csv(report / "gradient_profile.csv")
    assert profile[["architecture", "depth"]].values.tolist() == [["cnn", 1], ["cnn", 2], ["cnn", 4], ["lstm", 1],
                                                                  ["lstm", 2], ["lstm", 4]]
    assert profile["gradient_ratio_mean"].tolist() == pytest.approx([0, 0, 0, 0, -0.5, -1.5], abs=1e-9)
    assert profile["gradient_ratio_at_init_mean"].tolist() == pytest.approx([0, 0, 0, 0, -0.5, -1.5], abs=1e-9)
    assert profile["n"].tolist() == [4] * 6
    sizes = pd.read_csv(report / "model_sizes.csv")
    assert sizes.values.tolist() == [["cnn", 1, 0, 16, 1000, 7], ["cnn", 2, 0, 16, 2000, 13],
                                     ["cnn", 4, 0, 16, 4000, 25], ["lstm", 1, 0, 16, 1000, 140],
                                     ["lstm", 2, 0, 16, 2000, 140], ["lstm", 4, 0, 16, 4000, 140]]
    for name in ("why_vanishing_gradients", "why_overfitting"):
        assert (report / "figures" / f"{name}.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        assert (report / "figures" / f"{name}.svg").is_file()
    assert not list((report / "figures").glob("why_parameters.*"))

    text = (report / "report.md").read_text(encoding="utf-8")
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings[:3] == ["## Verdict", "## Why?", "## What was held fixed"]
    section = text.split("## Why?")[1].split("\n## ")[0]
    assert "A row is decided from the claims tagged with that explanation" in section
    assert "| explanation | prediction | measure | status | claims |" in section
    assert "| vanishing_gradients | the loss gradient reaching the first layer shrinks" in section
    assert "| receptive_field |" in section and NOT_TESTED in section
    assert section.index("![why_vanishing_gradients]") < section.index("![why_overfitting]")
    assert "### Gradient ratio per cell" in section
    assert "### Width, parameters and receptive field per cell" in section
    assert "| lstm | 4 | 0 | 16 | 4000 | 140 |" in section
    figures = text.split("## Figures")[1].split("\n## ")[0]
    assert "why_" not in figures  # shown once, in the Why? section
    page = (report / "report.html").read_text(encoding="utf-8")
    assert page.index('id="verdict"') < page.index('id="why"') < page.index('id="figure-why_vanishing_gradients"')
    assert page.count('id="figure-why_') == 2

    answers = json.loads((report / "answers.json").read_text(encoding="utf-8"))
    assert [row["explanation"] for row in answers["why"]] == list(EXPLANATIONS)
    assert answers["why"][0]["status"] == SUPPORTED and answers["why"][0]["claims"] == 1
    index = (report.parent / "index.md").read_text(encoding="utf-8")
    why_index = index.split("## Why?")[1].split("\n## ")[0]
    assert "| vanishing_gradients | planted: supported (1 claim) |" in why_index
    assert "| gating | no study tests it |" in why_index


def test_a_report_without_gradients_has_no_gradient_profile_and_the_default_overfitting_statement_tests_overfitting(
        tmp_path):
    epochs, trials, manifest = planted_tables(PlantedStudy(depths=(1, 2), settings_per_cell=3, repeat_seeds=0,
                                                           epochs=5, seed=2))
    manifest["space"]["analysis"] = {"calibration_studies": 0, "permutations": 99}
    from study.statistics.analysis import analyse

    analysis = analyse(epochs, trials, manifest)
    assert "gradient_profile" not in analysis.tables
    why = analysis.tables["why"].set_index("explanation")
    assert why.loc["overfitting", "claims"] == 1 and why.loc["vanishing_gradients", "claims"] == 0
    assert "deeper LSTMs overfit faster than deeper CNNs" in why.loc["overfitting", "evidence"]
    assert analysis.tables["model_sizes"]["width"].tolist() == [16] * 4


# ---------------------------------------------------------------- gradients.csv checked


def edit_gradients(run: Path, change) -> str:
    """Rewrite gradients.csv's lines with ``change(lines)``; returns the expected message pattern."""
    path = run / tables.GRADIENTS_FILE
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    expected = change(lines)
    path.write_text("".join(lines), encoding="utf-8")
    return expected


def bad_kind(lines: list[str]) -> str:
    lines[3] = lines[3].replace(",bias,", ",weights,")
    return r"gradients\.csv: line 4, column 'kind': 'weights' is not allowed; allowed: 'input_kernel', .*'other'"


def negative_norm(lines: list[str]) -> str:
    cells = lines[5].rstrip("\n").split(",")
    lines[5] = ",".join([*cells[:-1], "-0.5"]) + "\n"
    return r"gradients\.csv: line 6, column 'norm': '-0\.5' is not a finite number >= 0"


def infinite_norm(lines: list[str]) -> str:
    cells = lines[2].rstrip("\n").split(",")
    lines[2] = ",".join([*cells[:-1], "inf"]) + "\n"
    return r"gradients\.csv: line 3, column 'norm': 'inf' is not a finite number"


def duplicate_row(lines: list[str]) -> str:
    lines.insert(9, lines[2])
    return (r"gradients\.csv: line 10, columns 'trial_id', 'phase', 'epoch', 'layer', 'kind': tune trial '\d+' has "
            r"layer '\w+' kind '\w+' at epoch 0 twice \(first on line 3\)")


def negative_epoch(lines: list[str]) -> str:
    cells = lines[4].split(",")
    cells[2] = "-1"
    lines[4] = ",".join(cells)
    return r"gradients\.csv: line 5, column 'epoch': '-1' is not a whole number >= 0"


BAD_GRADIENTS = [bad_kind, negative_norm, infinite_norm, duplicate_row, negative_epoch]


@pytest.mark.parametrize("change", BAD_GRADIENTS, ids=[change.__name__ for change in BAD_GRADIENTS])
def test_a_bad_gradients_table_is_one_line_naming_file_line_and_column_and_nothing_is_written(tmp_path, change):
    run = write_planted_run(tmp_path / "runs" / "planted")
    expected = edit_gradients(run, change)
    reports = tmp_path / "reports"
    (reports / "planted").mkdir(parents=True)
    (reports / "planted" / "report.md").write_text("the previous report", encoding="utf-8")
    before = snapshot(tmp_path)
    status, stdout, stderr = run_main(["report", "planted", "--runs-dir", str(run.parent), "--reports-dir",
                                       str(reports)])
    assert status == 2 and stdout == "", stderr
    assert len(stderr.splitlines()) == 1 and "Traceback" not in stderr
    message = stderr.strip().removeprefix("study: error: ")
    assert message.startswith(str(run / tables.GRADIENTS_FILE)), message
    assert re.search(expected, message), message
    assert snapshot(tmp_path) == before


def test_a_torn_last_gradient_row_is_left_out_and_listed_and_a_header_alone_is_no_gradients(tmp_path):
    run = write_planted_run(tmp_path / "run")
    path = run / tables.GRADIENTS_FILE
    text = path.read_text(encoding="utf-8")
    rows = len(text.splitlines()) - 1
    path.write_text(text[:-4], encoding="utf-8")  # the last row cut mid-number, no line end
    loaded = load_run(run)
    assert len(loaded.gradients) == rows - 1
    assert loaded.problems == (f"gradients.csv: line {rows + 1} is torn (it has no line end: the study was stopped "
                               "while writing it, or is still running); left out",)
    assert loaded.gradients["epoch"].dtype == np.int64 and loaded.gradients["norm"].min() >= 0
    path.write_text(",".join(tables.GRADIENT_COLUMNS) + "\n", encoding="utf-8")
    assert load_run(run).gradients.empty
    path.write_text("trial_id,epoch,layer\n0,0,x\n", encoding="utf-8")
    with pytest.raises(BadInput, match=r"gradients\.csv: lacks column\(s\): layer_index, kind, norm"):
        load_run(run)
    path.unlink()
    assert load_run(run).gradients is None


# ---------------------------------------------------------------- the index


def answers(study: str, why: list[dict] | None) -> dict:
    document = {"study": study, "question": "", "dataset": "synthetic_ecg", "note": None, "alpha": 0.05,
                "family": "one claim", "claims": [], "no_verdict_reason": None}
    if why is not None:
        document["why"] = why
    return document


def why_row(explanation: str, status: str, claims: int) -> dict:
    return {"explanation": explanation, "status": status, "claims": claims, "measure": "m", "evidence": "e"}


def write_answers(reports: Path, name: str, document: dict) -> None:
    (reports / name).mkdir(parents=True)
    (reports / name / "answers.json").write_text(json.dumps(document), encoding="utf-8")


def test_the_index_lists_every_study_that_tests_each_explanation(tmp_path):
    evil = "<b>gating</b> & co"
    write_answers(tmp_path, "gating", answers(evil, [
        why_row("vanishing_gradients", "inconclusive", 1), why_row("overfitting", NOT_TESTED, 0),
        why_row("gating", "contradicted", 2)]))
    write_answers(tmp_path, "gradients", answers("gradients", [
        why_row("vanishing_gradients", "supported", 3), why_row("gating", MIXED, 2)]))
    write_answers(tmp_path, "legacy", answers("legacy", None))  # built before the why list: tests nothing
    markdown_path, html_path = index_report.build_index(tmp_path)
    markdown = markdown_path.read_text(encoding="utf-8")
    assert markdown.index("## Why?") < markdown.index("## gradients")
    assert ("| vanishing_gradients | <b>gating</b> & co: inconclusive (1 claim); gradients: supported (3 claims) |"
            in markdown)
    assert "| overfitting | no study tests it |" in markdown
    assert "| gating | <b>gating</b> & co: contradicted (2 claims); gradients: mixed (2 claims) |" in markdown
    page = html_path.read_text(encoding="utf-8")
    assert "<b>gating" not in page and "&lt;b&gt;gating&lt;/b&gt; &amp; co: " in page
    assert '<span class="status supported">supported</span> (3 claims)' in page
    assert page.index('<section id="why">') < page.index("<h2>gradients</h2>")
    again = [path.read_bytes() for path in index_report.build_index(tmp_path)]
    assert again == [markdown_path.read_bytes(), html_path.read_bytes()]  # byte-identical rebuild
    assert index_report.EXPLANATIONS == EXPLANATIONS
    assert set(index_report.WHY_STATUSES) == set(WHY_STATUSES)


@pytest.mark.parametrize("why, problem", [
    ({"a": 1}, "'why' is object, expected array"),
    (["x"], "why[0] is string, expected object"),
    ([{"explanation": "gating", "status": "maybe", "claims": 1}], "why[0].status is 'maybe'"),
    ([{"explanation": 3, "status": "supported", "claims": 1}], "why[0].explanation is number, expected string"),
    ([{"explanation": "gating", "status": "supported", "claims": True}], "why[0].claims is boolean, expected a count"),
])
def test_a_bad_why_list_is_a_one_line_problem_of_that_study(tmp_path, why, problem):
    write_answers(tmp_path, "bad", answers("bad", why))
    markdown = index_report.build_index(tmp_path)[0].read_text(encoding="utf-8")
    line = next(line for line in markdown.splitlines() if line.startswith("**Problem:**"))
    assert problem in line


def test_a_gradient_claim_without_gradient_rows_is_reported_as_not_measured(tmp_path):
    run = write_planted_run(tmp_path / "runs" / "planted")
    (run / tables.GRADIENTS_FILE).write_text(",".join(tables.GRADIENT_COLUMNS) + "\n", encoding="utf-8")
    status, _out, err = run_main(["report", "planted", "--runs-dir", str(tmp_path / "runs"), "--reports-dir",
                                  str(tmp_path / "reports")])
    assert status == 0, err
    text = (tmp_path / "reports" / "planted" / "report.md").read_text(encoding="utf-8")
    assert "gradient_ratio was not measured" in text
