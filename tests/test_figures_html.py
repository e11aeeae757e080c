"""Tests of study.figures, study.markdown and study.html_report on a hand-made Analysis, and a real browser."""
from __future__ import annotations

import base64
import io
import json
import math
import re
import shutil
import subprocess
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from PIL import Image

from study import figures, html_report
from study.config import AnalysisConfig
from study.markdown import ReportContext, render_markdown
from study.report import build_report, save_figure
from study.statistics.analysis import Analysis
from study.statistics.classification import Chance
from study.statistics.verdict import ArmSlope, Statement, Verdict

CHROMIUM = Path("/usr/bin/chromium")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EVIL = "<script>alert('x')</script>"
DEPTHS = [1, 2, 4]


# ---------------------------------------------------------------- a hand-made analysis


def hand_made_trials() -> pd.DataFrame:
    """Two tuning trials per cell (gap at target 0.1 x depth + setting / 10, LSTM), one repeat per cell."""
    rows = []
    for architecture in ("lstm", "cnn"):
        for depth in DEPTHS:
            for setting in (0, 1):
                gap = (0.1 * depth if architecture == "lstm" else 0.2) + setting / 10
                rows.append({"trial_id": f"{architecture}{depth}-{setting}", "phase": "tune", "status": "completed",
                             "architecture": architecture, "depth": depth, "setting": setting,
                             "parent_trial_id": math.nan, "classification": "overfitting", "trained": True,
                             "gap_at_target": gap, "best_val_loss": 0.5 + setting})
            rows.append({"trial_id": f"r-{architecture}{depth}", "phase": "repeat", "status": "completed",
                         "architecture": architecture, "depth": depth, "setting": 0, "parent_trial_id": math.nan,
                         "classification": "fitting", "trained": True, "gap_at_target": 0.3,
                         "best_val_loss": 0.4})
    trials = pd.DataFrame(rows)
    trials.loc[trials["trial_id"] == "lstm4-1", ["status", "classification", "trained", "gap_at_target"]] = \
        ["diverged", "diverged", False, math.nan]
    return trials


def hand_made_tables() -> dict[str, pd.DataFrame]:
    curves = []
    for architecture in ("lstm", "cnn"):
        for depth in DEPTHS:
            for epoch in range(1, 6):
                for split, mean in (("train", 1.0 / epoch), ("validation", 0.5 + abs(epoch - 3) * 0.1)):
                    curves.append({"architecture": architecture, "depth": depth, "trial_id": f"{architecture}{depth}-0",
                                   "epoch": epoch, "split": split, "mean": mean, "low": mean - 0.05,
                                   "high": mean + 0.05, "seeds": 3})
    summary = []
    for measure in ("gap_at_target", "best_epoch"):
        for architecture, slope in (("lstm", 0.2), ("cnn", 0.0)):
            for depth in DEPTHS:
                mean = 0.5 + slope * math.log2(depth)
                summary.append({"measure": measure, "architecture": architecture, "depth": depth, "mean": mean,
                                "ci_low": mean - 0.1, "ci_high": mean + 0.05, "units": 2})
    trainability = pd.DataFrame({
        "architecture": ["lstm"] * 3 + ["cnn"] * 3, "depth": DEPTHS * 2, "settings": 4,
        "trained": [4, 3, 1, 4, 4, 4], "trainable_fraction": [1.0, 0.75, 0.25, 1.0, 1.0, 1.0],
        "fraction_low": [0.5, 0.3, 0.05, 0.5, 0.5, 0.5], "fraction_high": [1.0, 0.95, 0.7, 1.0, 1.0, 1.0],
        "failed_to_train": [0, 1, 2, 0, 0, 0], "diverged": [0, 0, 1, 0, 0, 0], "crashed": 0,
        "best_train_loss": [0.1, 0.2, 0.9, 0.1, 0.1, 0.1],
    })
    classes = ("crashed", "diverged", "failed to train", "overfitting", "fitting")
    counts = []
    for row in trainability.itertuples(index=False):
        numbers = {"crashed": 0, "diverged": row.diverged, "failed to train": row.failed_to_train,
                   "overfitting": row.trained - 1, "fitting": 1}
        for name in classes:
            counts.append({"phase": "tune", "architecture": row.architecture, "depth": row.depth,
                           "classification": name, "trials": numbers[name], "share": numbers[name] / 4})
    heatmaps = []
    for hyperparameter, bins in (("dropout", ["0-0.25", "0.25-0.5"]), ("weight_decay", ["0", "1e-06-0.0001"])):
        for architecture in ("lstm", "cnn"):
            for depth in DEPTHS:
                for order, label in enumerate(bins):
                    heatmaps.append({"hyperparameter": hyperparameter, "measure": "gap_at_target",
                                     "architecture": architecture, "depth": depth, "bin": label,
                                     "bin_order": order - (label == "0"), "mean": 0.1 * depth + order, "trials": 2})
    values = pd.DataFrame({
        "hyperparameter": ["learning_rate"] * 4 + ["dropout"] * 4,
        "value": [1e-4, 1e-3, 9.5e-3, 1e-2, 0.0, 0.1, 0.3, 0.5],
        "best_val_loss": [0.9, 0.7, 0.5, 1.6, 0.8, 0.6, 0.7, 0.9],
        "architecture": ["lstm", "lstm", "cnn", "lstm", "cnn", "cnn", "lstm", "lstm"],
        "depth": [1, 1, 1, 4, 1, 1, 2, 2],
        "classification": ["fitting", "overfitting", "fitting", "failed to train"] + ["fitting"] * 4,
        "best_in_cell": [False, True, True, False, False, True, True, False],
        "trial_id": [f"n{index}" for index in range(8)],
    })
    edges = pd.DataFrame({"hyperparameter": ["learning_rate", "dropout"], "low": [1e-4, 0.0], "high": [1e-2, 0.5],
                          "log": [True, False], "low_edge": [1e-4 * 100 ** 0.05, 0.025],
                          "high_edge": [1e-2 / 100 ** 0.05, 0.475]})
    best_of_k = pd.DataFrame([{"architecture": architecture, "depth": depth, "k": k,
                               "expected_best": 0.6 + 0.05 * k - 0.01 * depth, "settings": 3}
                              for architecture in ("lstm", "cnn") for depth in DEPTHS for k in (1, 2, 3)])
    winners = pd.DataFrame([{"architecture": architecture, "depth": depth, "measure": measure,
                             "trial_id": f"{architecture}{depth}-0", "mean": 1.0 + depth / 10,
                             "ci_low": 0.9 + depth / 10, "ci_high": 1.2 + depth / 10, "seeds": 3,
                             "winner_share": 0.75}
                            for measure in ("gap_at_target", "best_epoch")
                            for architecture in ("lstm", "cnn") for depth in DEPTHS])
    isolation = pd.DataFrame({"architecture": ["lstm", "cnn"], "depth": [1, 1], "trial_id": [EVIL, "cnn1-0"],
                              "dropout": [0.1, 0.5], "best_val_loss": [1.23456, math.nan]})
    boundaries = pd.DataFrame({"architecture": ["cnn"], "depth": [1], "trial_id": ["cnn1-0"],
                               "hyperparameter": ["dropout"], "value": [0.5], "search_range": ["[0.1, 0.5]"],
                               "kind": ["values"], "position": [1.0], "on_boundary": [True], "edge": ["upper"]})
    profile = pd.DataFrame([{"axis_id": 0, "factor": "depth", "measure": measure, "arm": architecture, "stratum": "",
                             "level": str(depth), "x": math.log2(depth), "mean": 0.1 * depth, "ci_low": 0.05 * depth,
                             "ci_high": 0.2 * depth, "units": 2}
                            for measure in ("gap_at_target", "best_val_accuracy")
                            for architecture in ("lstm", "cnn") for depth in DEPTHS])
    return {"learning_curves": pd.DataFrame(curves), "cell_summary": pd.DataFrame(summary),
            "factor_profile": profile,
            "trainability": trainability, "classification": pd.DataFrame(counts),
            "gap_heatmaps": pd.DataFrame(heatmaps), "nuisance_values": values, "nuisance_edges": edges,
            "best_of_k": best_of_k, "winners": winners, "isolation": isolation, "boundaries": boundaries,
            "thresholds": pd.DataFrame({"threshold": ["alpha"], "value": ["0.05"], "meaning": ["test level"]}),
            "kendall_tau": pd.DataFrame({"architecture": ["all"], "kendall_tau": [0.5], "groups": [4],
                                         "trials": [12], "p_value": [0.03]})}


def statement(question: str, claim: str, status: str) -> Statement:
    return Statement(
        question=question, claim=claim, status=status, measure="gap_at_target",
        first=ArmSlope("lstm", 0.2, 0.1, 0.3, 0.002, 12, 3), second=ArmSlope("cnn", 0.0, -0.05, 0.05, 0.9, 12, 3),
        difference=0.2, ci_low=0.08, ci_high=0.31, p_value=0.004, reading=f"read from both arms {EVIL} | a pipe",
        rule="the rule in words", calibration_text="4.5% false positives, power 80%",
        units_needed_text="about 12 settings per cell would decide it" if status == "inconclusive" else "")


def slopes_table() -> pd.DataFrame:
    rows = []
    for measure, question, primary, status in (("trainable_fraction", "trainability", True, "inconclusive"),
                                               ("gap_at_target", "overfitting", True, "supported"),
                                               ("best_epoch", "overfitting", False, "other arm")):
        rows.append({"measure": measure, "question": question, "primary": primary, "supports_if": "positive",
                     "first": "lstm", "second": "cnn", "slope_first": 0.2, "slope_first_low": 0.1,
                     "slope_first_high": 0.3, "p_first": 0.002, "slope_second": -0.1, "slope_second_low": -0.25,
                     "slope_second_high": 0.05, "p_second": 0.4, "difference": 0.3, "ci_low": 0.1, "ci_high": 0.5,
                     "p_difference": 0.01, "units_first": 12, "units_second": 12, "depths_first": 3,
                     "depths_second": 3, "status": status})
    return pd.DataFrame(rows)


def hand_made_analysis(*, verdict: bool = True, tables: dict | None = None) -> Analysis:
    slopes = slopes_table()
    result = Verdict(
        statements=(statement("trainability", "deeper LSTMs are harder to train than deeper CNNs", "inconclusive"),
                    statement("overfitting", "deeper LSTMs overfit faster than deeper CNNs", "supported")),
        caveats=(f"cell {EVIL}: best dropout on the lower edge",), held_fixed=("Fixed: width=32.",),
        first="lstm", second="cnn", alpha=0.05, slopes=slopes) if verdict else None
    tables = dict(hand_made_tables() if tables is None else tables)
    tables["slopes"] = slopes if verdict else slopes.iloc[0:0]
    return Analysis(
        verdict=result, no_verdict_reason=None if verdict else f"only one architecture {EVIL}",
        trials=hand_made_trials(), tables=tables, data_problems=("1 trial(s) diverged: tune lstm4-1",),
        space={"hyperparameters": {"architecture": {"role": "scientific", "values": ["lstm", "cnn"]},
                                   "depth": {"role": "scientific", "values": DEPTHS},
                                   "width": {"role": "fixed", "value": 32}}},
        manifest={"study": f"hand {EVIL}", "dataset": {"name": "toy", "content_hash": "abc"}},
        target_train_loss=0.35, chance=Chance(num_classes=5, loss=math.log(5)),
        settings=AnalysisConfig(), paired=True)


def new_axes():
    figure = Figure()
    FigureCanvasAgg(figure)
    return figure.subplots()


def errorbars(ax) -> dict:
    """The data line of every labelled error-bar container of an axes, by label."""
    return {container.get_label(): container.lines[0] for container in ax.containers
            if hasattr(container, "has_yerr") or hasattr(container, "has_xerr")}


def texts(figure: Figure) -> list[str]:
    return [text.get_text() for ax in figure.axes for text in ax.texts]


# ---------------------------------------------------------------- figures


def test_build_figures_returns_every_figure_and_saves_valid_png_and_svg(tmp_path):
    built = figures.build_figures(hand_made_analysis())
    assert list(built) == list(figures.FIGURE_NAMES)
    assert figures.FIGURE_NAMES[0] == "gap_vs_depth"  # the headline figure
    assert not list(tmp_path.iterdir())  # building writes nothing
    for name, figure in built.items():
        assert isinstance(figure, Figure)
        assert not any(text.startswith("not enough data") for text in texts(figure)), name
        png = save_figure(figure, tmp_path, name)
        assert png.read_bytes().startswith(PNG_SIGNATURE)
        with Image.open(png) as image:
            image.verify()
        with Image.open(png) as image:
            assert image.width > 300 and image.height > 200
        assert ElementTree.parse(tmp_path / f"{name}.svg").getroot().tag.endswith("svg")


def test_an_analysis_without_data_gets_every_figure_with_a_reason():
    empty = {name: frame.iloc[0:0] for name, frame in hand_made_tables().items()}
    analysis = hand_made_analysis(verdict=False, tables=empty)
    analysis = Analysis(**{**analysis.__dict__, "trials": analysis.trials.iloc[0:0]})
    built = figures.build_figures(analysis)
    assert list(built) == list(figures.FIGURE_NAMES)
    for name, figure in built.items():
        assert any(text.startswith("not enough data: ") for text in texts(figure)), name
    assert any(EVIL in text for text in texts(built["slopes"]))  # the no-verdict reason


def test_gap_vs_depth_draws_every_unit_and_the_given_cell_means():
    ax = new_axes()
    analysis = hand_made_analysis()
    units = analysis.trials.loc[analysis.trials["trained"] & (analysis.trials["phase"] == "tune"),
                                ["architecture", "depth", "gap_at_target"]].rename(columns={"gap_at_target": "value"})
    figures.plot_gap_vs_depth(units, analysis.tables["cell_summary"], ax, measure="gap_at_target")
    points = [collection for collection in ax.collections if isinstance(collection, PathCollection)]
    assert sum(len(collection.get_offsets()) for collection in points) == 11  # 12 tuning trials, one diverged
    lines = errorbars(ax)
    assert set(lines) == {"LSTM cell mean and interval", "CNN cell mean and interval"}
    assert np.allclose(lines["LSTM cell mean and interval"].get_ydata(), [0.5, 0.7, 0.9])
    assert np.allclose(lines["CNN cell mean and interval"].get_ydata(), [0.5, 0.5, 0.5])
    assert ax.get_xscale() == "log"
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["1", "2", "4"]


def test_trainability_panels_stack_the_class_shares_and_draw_wilson_bars():
    figure = figures.build_figures(hand_made_analysis())["trainability_vs_depth"]
    shares, fraction = figure.axes[0], figure.axes[1]
    heights = pd.Series([patch.get_height() for patch in shares.patches])
    assert heights.sum() == pytest.approx(6.0)  # six cells, each stacked to 1
    assert [label.get_text() for label in shares.get_xticklabels()] == ["CNN\n1", "CNN\n2", "CNN\n4", "LSTM\n1",
                                                                       "LSTM\n2", "LSTM\n4"]
    lines = errorbars(fraction)
    assert set(lines) == {"LSTM", "CNN"}
    assert np.allclose(lines["LSTM"].get_ydata(), [1.0, 0.75, 0.25])


def test_slope_panel_draws_both_arms_with_their_intervals():
    ax = new_axes()
    figures.plot_slope(slopes_table().iloc[1], ax)
    assert [label.get_text() for label in ax.get_yticklabels()] == ["LSTM\np = 0.002", "CNN\np = 0.4"]
    points = [container.lines[0] for container in ax.containers]
    assert [float(line.get_xdata()[0]) for line in points] == [0.2, -0.1]
    assert ax.get_title() == "gap_at_target (primary): supported"


def test_nuisance_axis_shades_both_range_edges_and_marks_winners():
    ax = new_axes()
    tables = hand_made_tables()
    values = tables["nuisance_values"]
    edges = tables["nuisance_edges"].set_index("hyperparameter").loc["learning_rate"]
    figures.plot_nuisance_axis(values.loc[values["hyperparameter"] == "learning_rate"], ax, edges=edges)
    spans = sorted((patch.get_x(), patch.get_x() + patch.get_width()) for patch in ax.patches)
    assert spans[0] == pytest.approx((1e-4, 1e-4 * 100 ** 0.05))
    assert spans[1] == pytest.approx((1e-2 / 100 ** 0.05, 1e-2))
    assert ax.get_xscale() == "log"
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert "LSTM did not train" in labels and "CNN best per cell" in labels


def test_gap_heatmap_keeps_bin_order_and_annotates_cells():
    ax = new_axes()
    heatmaps = hand_made_tables()["gap_heatmaps"]
    rows = heatmaps.loc[(heatmaps["hyperparameter"] == "weight_decay") & (heatmaps["architecture"] == "lstm")]
    figures.plot_gap_heatmap(rows, ax, title="t")
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["0", "1e-06-0.0001"]
    assert [tick.get_text() for tick in ax.get_yticklabels()] == ["1", "2", "4"]
    assert "1.40" in [text.get_text() for text in ax.texts]  # depth 4, second bin: 0.4 + 1


def test_best_of_k_and_winner_panels_draw_the_given_numbers():
    ax = new_axes()
    best = hand_made_tables()["best_of_k"]
    figures.plot_best_of_k(best.loc[best["architecture"] == "cnn"], ax)
    depth_one = [line for line in ax.lines if len(line.get_xdata()) == 3][0]
    assert np.allclose(depth_one.get_ydata(), [0.64, 0.69, 0.74])
    ax = new_axes()
    figures.plot_winners(hand_made_tables()["winners"], ax, measure="best_epoch")
    lines = errorbars(ax)
    assert np.allclose(lines["LSTM"].get_ydata(), [1.1, 1.2, 1.4])


# ---------------------------------------------------------------- Markdown and HTML


def test_markdown_has_the_verdict_and_every_section_in_order():
    analysis = hand_made_analysis()
    context = ReportContext.from_manifest(analysis.manifest)
    text = render_markdown(analysis, context, partial_note="Partial: 3 of 12 trials done")
    lines = text.splitlines()
    assert lines[0] == "# Study report: hand &lt;script&gt;alert('x')&lt;/script&gt;"
    assert lines[2] == "**Partial: 3 of 12 trials done**"  # its own paragraph, before any number
    assert lines[4].startswith("Dataset **toy** (content hash `abc`)")
    assert [line for line in lines if line.startswith("## ")] == [
        "## Verdict", "## Why?", "## What was held fixed", "## Caveats", "## Data problems",
        "## What each claim's factor did", "## Each claim's measure at every level of its factor", "## Thresholds",
        "## Slopes along each claim's axis", "## Trainability per cell", "## What happened to the trials",
        "## Isolation: each cell's tuned winner", "## Tuned winners with selection-aware intervals",
        "## Expected best of k settings", "## Medians over the completed tuning trials per cell",
        "## Boundary warnings", "## Problem trials (crashed or diverged)", "## Kendall tau", "## Figures",
        "## How to read this"]
    verdict = text.split("## Verdict")[1].split("\n## ")[0]
    assert "### Overfitting: deeper LSTMs overfit faster than deeper CNNs" in verdict
    assert "Status: **supported** (measure gap_at_target). read from both arms " \
           "&lt;script&gt;alert('x')&lt;/script&gt; \\| a pipe" in verdict
    assert "- **Rule:** the rule in words" in verdict
    assert "- LSTM slope of gap_at_target per doubling of depth: **0.2** [0.1, 0.3], p = 0.002 " \
           "(12 units over 3 levels of depth)" in verdict
    assert "- CNN slope of gap_at_target per doubling of depth: **0** [-0.05, 0.05], p = 0.9" in verdict
    assert "- Difference (LSTM minus CNN): **0.2** [0.08, 0.31], p = 0.004" in verdict
    assert verdict.count("- **Calibration:** 4.5% false positives, power 80%") == 2
    assert verdict.count("about 12 settings per cell would decide it") == 1  # the inconclusive one only
    assert "<script>" not in text
    assert "| gap_at_target | overfitting | yes | positive | lstm | 0.2 | [0.1, 0.3] | 0.002 | cnn | -0.1 | " \
           "[-0.25, 0.05] | 0.4 | 0.3 | [0.1, 0.5] | 0.01 | supported |" in text
    assert "| tune | lstm | 4 | 0 | 1 | 2 | 0 | 1 |" in text  # class counts, one column per class
    assert "| lstm | 1 | 3 | 0.64 | 0.74 |" in text  # best of k: k=1 and k=n
    assert "- architecture=cnn, depth=1: best dropout = 0.5 is on the upper edge of [0.1, 0.5]" in text
    assert "- 1 trial(s) diverged: tune lstm4-1" in text.split("## Data problems")[1]
    assert "![gap_vs_depth](figures/gap_vs_depth.png)" in text
    assert "`gap_at_target` (overfitting, primary" in text.split("## How to read this")[1]


def test_markdown_without_a_verdict_gives_the_reason():
    analysis = hand_made_analysis(verdict=False)
    text = render_markdown(analysis, ReportContext.from_manifest(analysis.manifest))
    verdict = text.split("## Verdict")[1].split("\n## ")[0]
    assert "**No verdict:** only one architecture &lt;script&gt;" in verdict
    assert "- Fixed: width=32." in text.split("## What was held fixed")[1]


def png_bytes(colour: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def test_render_html_puts_the_verdict_first_embeds_pngs_and_escapes(tmp_path):
    analysis = hand_made_analysis()
    pictures = {name: png_bytes(colour) for name, colour in zip(figures.FIGURE_NAMES, ["red", "blue"] * 5)}
    (tmp_path / "slopes.png").write_bytes(pictures["slopes"])
    files = {**pictures, "slopes": tmp_path / "slopes.svg"}  # an SVG path finds its PNG sibling
    page = html_report.render_html(analysis, files, title=f"Study {EVIL}", partial_note="Partial <b>")
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert page.index("<strong>Partial &lt;b&gt;</strong>") < page.index('id="verdict"') < page.index("<img") \
        < page.index('id="how-to-read"')
    assert page.count("<title>Study &lt;script&gt;") == 1
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert [base64.b64decode(data) for data in embedded] == [pictures[name] for name in figures.FIGURE_NAMES]
    assert "1.235" in page and "n/a" in page
    assert 'class="status supported"' in page and 'class="status inconclusive"' in page
    assert "src=\"http" not in page and "href=" not in page  # nothing outside the page
    # The same sections as report.md.
    markdown = render_markdown(analysis, ReportContext.from_manifest(analysis.manifest))
    headings = [line[3:] for line in markdown.splitlines() if line.startswith("## ")]
    assert re.findall(r"<h2>(.*?)</h2>", page) == [heading.replace("'", "&#x27;") for heading in headings]


def test_render_html_says_when_a_figure_is_missing(tmp_path):
    page = html_report.render_html(hand_made_analysis(), {"winners": tmp_path / "winners.png"}, title="t")
    assert "Figure winners: (not available)" in page


# ---------------------------------------------------------------- the whole page in a real browser


def small_study(directory: Path) -> Path:
    """A run directory: LSTMs whose validation minimum comes earlier with depth, CNNs flat; one LSTM fails."""
    epochs, trials = [], []
    for architecture in ("lstm", "cnn"):
        for depth in (1, 2, 4):
            for setting in range(3):
                trial_id = f"{architecture}{depth}-{setting}"
                best = int((12 - 2 * math.log2(depth) if architecture == "lstm" else 10) + setting)
                fails = architecture == "lstm" and depth == 4 and setting == 2
                for epoch in range(1, 16):
                    train = math.log(5) if fails else 1.5 * math.exp(-0.3 * epoch) + 0.02
                    val = math.log(5) if fails else 0.6 + 0.08 * abs(epoch - best)
                    epochs.append({"trial_id": trial_id, "phase": "tune", "architecture": architecture,
                                   "depth": depth, "dropout": 0.1 * (setting + 1), "weight_decay": 1e-4,
                                   "learning_rate": 1e-3, "seed": setting, "epoch": epoch, "train_loss": train,
                                   "val_loss": val, "val_accuracy": 0.5,
                                   "train_balanced_accuracy": 0.2 if fails else 0.9})
                trials.append({"trial_id": trial_id, "phase": "tune", "status": "completed",
                               "architecture": architecture, "depth": depth, "dropout": 0.1 * (setting + 1),
                               "weight_decay": 1e-4, "learning_rate": 1e-3, "seed": setting, "setting": setting,
                               "parameter_count": 100, "test_accuracy": 0.7})
    space = {"hyperparameters": {
        "architecture": {"role": "scientific", "values": ["lstm", "cnn"]},
        "depth": {"role": "scientific", "values": [1, 2, 4]},
        "dropout": {"role": "nuisance", "values": [0.1, 0.2, 0.3]},
        "weight_decay": {"role": "fixed", "value": 1e-4}, "learning_rate": {"role": "fixed", "value": 1e-3}},
        "tuner": {"name": "random", "trials_per_cell": 3, "seed": 1},
        "analysis": {"permutations": 199, "calibration_studies": 20}}
    manifest = {"study": f"small {EVIL}", "space": space, "dataset": {"name": "toy", "class_names": list("NSVFQ")}}
    directory.mkdir(parents=True)
    pd.DataFrame(epochs).to_csv(directory / "epochs.csv", index=False)
    pd.DataFrame(trials).to_csv(directory / "trials.csv", index=False)
    (directory / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return directory


CHECK_SCRIPT = """<script>
window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.images);
  var decoded = images.filter(function (image) { return image.complete && image.naturalWidth > 0; }).length;
  var verdict = document.getElementById('verdict');
  var box = verdict ? verdict.getBoundingClientRect() : null;
  var style = verdict ? window.getComputedStyle(verdict) : null;
  var visible = !!verdict && box.height > 0 && box.width > 0 && box.top >= 0 && box.top < window.innerHeight
    && style.visibility !== 'hidden' && style.display !== 'none'
    && /overfit faster/.test(verdict.innerText);
  var first = !!verdict && images.length > 0
    && !!(verdict.compareDocumentPosition(images[0]) & Node.DOCUMENT_POSITION_FOLLOWING);
  document.body.setAttribute('data-check',
    'images=' + decoded + '/' + images.length + ';verdict=' + (visible ? 'visible' : 'hidden')
    + ';first=' + (first ? 'verdict' : 'not-verdict'));
});
</script>"""


def chromium(arguments: list[str], profile: Path) -> subprocess.CompletedProcess:
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--hide-scrollbars", f"--user-data-dir={profile}", "--window-size=1280,1600", *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(not CHROMIUM.is_file(), reason="headless browser check needs /usr/bin/chromium: "
                    "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium")
def test_report_opens_in_headless_chromium_with_every_image_decoded(tmp_path):
    report_path = build_report(small_study(tmp_path / "run"), tmp_path / "report")
    report = report_path.parent / "report.html"
    page = report.read_text(encoding="utf-8")
    # The report itself has no script; a copy gets the check, which writes its answer into the DOM.
    checked = tmp_path / "checked.html"
    checked.write_text(page.replace("</body>", CHECK_SCRIPT + "</body>"), encoding="utf-8")

    dump = chromium(["--virtual-time-budget=10000", "--dump-dom", checked.as_uri()], tmp_path / "profile-dom")
    match = re.search(r'data-check="([^"]*)"', dump.stdout)
    assert match, f"no check result in the DOM; chromium said: {dump.stderr[-2000:]}"
    images = len(figures.FIGURE_NAMES) + 1  # and why_overfitting: the default overfitting statement tests it
    assert match.group(1) == f"images={images}/{images};verdict=visible;first=verdict"
    assert "&lt;script&gt;alert" in dump.stdout  # the escaped title is text, not a script

    screenshot = tmp_path / "report.png"
    shot = chromium([f"--screenshot={screenshot}", report.as_uri()], tmp_path / "profile-shot")
    assert screenshot.is_file(), f"no screenshot; chromium said: {shot.stderr[-2000:]}"
    with Image.open(screenshot) as image:
        assert image.size == (1280, 1600)
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
        assert colours is None or len(colours) > 50  # a rendered page, not a blank one
    shutil.rmtree(tmp_path / "profile-dom", ignore_errors=True)
    shutil.rmtree(tmp_path / "profile-shot", ignore_errors=True)
