"""Why? explanations 3 (receptive fields) and 2 (overfitting) measured from the data: the distance, receptive-field
and data profiles from hand-made trial frames with exact means and counts, which dataset factors are distance and
data factors, their panels, and a planted study with scientific dataset factors whose report shows them. No Keras
training."""
from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from study import tables
from study.figures import figure_caption, plot_data_profile, plot_distance_profile, plot_receptive_fields
from study.markdown import level_pivot
from study.statistics.explanations import (DATA_FACTORS, DISTANCE_FACTORS, NOT_TESTED, RECEPTIVE_FIELD_PROFILE_COLUMNS,
                                           data_factors, data_profile, distance_factor, distance_profile,
                                           profile_columns, receptive_field_profile, why_table)
from study.statistics.planted import PlantedStudy, planted_tables
from tests.conftest import run_main

NAN = math.nan
CELL = ["architecture", "depth"]


# ---------------------------------------------------------------- which factors


def test_the_distance_factor_is_event_distance_else_the_sequence_length():
    assert DISTANCE_FACTORS == ("event_distance", "length")
    assert distance_factor(["n_strips", "length", "event_distance"]) == "event_distance"
    assert distance_factor(("length", "label_noise")) == "length"
    assert distance_factor(["n_strips", "dataset_seed"]) is None
    assert distance_factor([]) is None


def test_the_data_factors_are_the_recognised_ones_in_their_order():
    assert DATA_FACTORS == ("n_strips", "n_sequences", "label_noise")
    assert data_factors(["label_noise", "event_distance", "n_strips"]) == ["n_strips", "label_noise"]
    assert data_factors(["n_sequences", "length"]) == ["n_sequences"]
    assert data_factors(["event_distance", "dataset_seed"]) == []


# ---------------------------------------------------------------- the profiles (pure)


def unit(trial: str, architecture: str, depth: int, **values) -> dict:
    """One trial-frame row: a completed tuning trial that trained unless ``values`` say otherwise."""
    return {"trial_id": trial, "phase": "tune", "architecture": architecture, "depth": depth, "setting": 0,
            "parent_trial_id": NAN, "trained": True, "classification": "fitting", **values}


def distance_frame() -> pd.DataFrame:
    rows = [
        unit("1", "cnn", 1, event_distance=10, best_val_accuracy=0.9, test_accuracy=0.8),
        unit("2", "cnn", 1, event_distance=10, best_val_accuracy=0.7, test_accuracy=NAN),   # no test accuracy
        unit("3", "cnn", 1, event_distance=40, best_val_accuracy=0.5, test_accuracy=0.5),
        unit("4", "cnn", 1, event_distance=40, best_val_accuracy=0.6, test_accuracy=0.4),
        unit("5", "cnn", 1, event_distance=40, best_val_accuracy=0.1, test_accuracy=0.1,
             classification="crashed", trained=False),                                     # crashed: no accuracy
        unit("6", "cnn", 4, event_distance=40, best_val_accuracy=0.95, test_accuracy=0.9),
        unit("7", "lstm", 1, event_distance=10, best_val_accuracy=1.0, test_accuracy=1.0,
             trained=False, classification="failed_to_train"),                               # counts: not crashed
        unit("8", "lstm", 1, event_distance=40, best_val_accuracy=0.2, test_accuracy=0.2),  # continued by 9
        unit("9", "lstm", 1, event_distance=40, best_val_accuracy=0.8, test_accuracy=0.7, parent_trial_id="8"),
        {**unit("r", "cnn", 1, event_distance=10, best_val_accuracy=0.0, test_accuracy=0.0), "phase": "repeat"},
    ]
    return pd.DataFrame(rows)


def test_distance_profile_means_accuracy_per_cell_and_distance_over_the_tuning_units():
    profile = distance_profile(distance_frame(), ["architecture", "depth", "event_distance"], "event_distance",
                               resamples=400)
    assert list(profile.columns) == [*CELL, "factor", "level", *profile_columns("best_val_accuracy"),
                                     *profile_columns("test_accuracy")]
    assert profile[[*CELL, "level"]].values.tolist() == [["cnn", 1, 10], ["cnn", 1, 40], ["cnn", 4, 40],
                                                          ["lstm", 1, 10], ["lstm", 1, 40]]
    assert set(profile["factor"]) == {"event_distance"}
    assert profile["best_val_accuracy_n"].tolist() == [2, 2, 1, 1, 1]
    assert profile["best_val_accuracy_mean"].tolist() == pytest.approx([0.8, 0.55, 0.95, 1.0, 0.8])
    assert profile["test_accuracy_n"].tolist() == [1, 3, 1, 1, 1]  # a crashed trial's test accuracy is kept
    assert profile["test_accuracy_mean"].tolist() == pytest.approx([0.8, 1.0 / 3, 0.9, 1.0, 0.7])
    # Two units: every bootstrap mean lies between them, and with 400 resamples both ends are drawn.
    assert profile[["best_val_accuracy_low", "best_val_accuracy_high"]].iloc[0].tolist() == pytest.approx([0.7, 0.9])
    assert profile[["best_val_accuracy_low", "best_val_accuracy_high"]].iloc[2].isna().all()  # one unit
    # Another scientific factor stays a grouping column; a frame without test accuracy has no test units.
    split = distance_profile(distance_frame().assign(label_noise=[0, 0.2, 0, 0, 0, 0, 0, 0, 0, 0]).drop(
        columns=["test_accuracy"]), ["architecture", "depth", "label_noise", "event_distance"], "event_distance")
    assert list(split.columns)[:5] == [*CELL, "label_noise", "factor", "level"]
    assert split[["architecture", "label_noise", "level", "best_val_accuracy_n"]].values.tolist()[:3] == [
        ["cnn", 0.0, 10, 1], ["cnn", 0.0, 40, 2], ["cnn", 0.2, 10, 1]]
    assert (split["test_accuracy_n"] == 0).all() and split["test_accuracy_mean"].isna().all()
    empty = distance_profile(distance_frame().drop(columns=["event_distance"]), CELL, "event_distance")
    assert empty.empty and "level" in empty.columns


def fields_frame() -> pd.DataFrame:
    rows = [
        unit("1", "cnn", 1, receptive_field=7, effective_receptive_field=4.0),
        unit("2", "cnn", 1, receptive_field=7, effective_receptive_field=6.0),
        unit("3", "cnn", 4, receptive_field=25, effective_receptive_field=NAN),
        unit("4", "cnn", 4, receptive_field=31, effective_receptive_field=NAN),   # widths differ: the median
        unit("5", "cnn", 4, receptive_field=27, effective_receptive_field=NAN),
        unit("6", "lstm", 1, receptive_field=200, effective_receptive_field=50.0),
        unit("7", "lstm", 1, receptive_field=200, effective_receptive_field=NAN),
        unit("8", "lstm", 2, receptive_field=NAN, effective_receptive_field=NAN),  # nothing recorded: left out
        {**unit("r", "lstm", 1, receptive_field=1, effective_receptive_field=1.0), "phase": "repeat"},
    ]
    return pd.DataFrame(rows)


def test_receptive_field_profile_gives_the_shared_or_median_field_and_the_mean_effective_field():
    profile = receptive_field_profile(fields_frame(), CELL, resamples=400)
    assert list(profile.columns) == [*CELL, *RECEPTIVE_FIELD_PROFILE_COLUMNS]
    assert profile[CELL].values.tolist() == [["cnn", 1], ["cnn", 4], ["lstm", 1]]
    assert profile["receptive_field"].tolist() == [7, 27, 200]
    assert profile["effective_receptive_field_n"].tolist() == [2, 0, 1]
    assert profile["effective_receptive_field_mean"].tolist()[0] == 5.0
    assert math.isnan(profile["effective_receptive_field_mean"].iloc[1])
    assert profile["effective_receptive_field_mean"].iloc[2] == 50.0
    assert profile[["effective_receptive_field_low", "effective_receptive_field_high"]].iloc[0].tolist() == [4.0, 6.0]
    # Never recorded: every count 0; other scientific factors split the cells; no column: no rows.
    unrecorded = receptive_field_profile(fields_frame().drop(columns=["effective_receptive_field"]), CELL)
    assert unrecorded["effective_receptive_field_n"].tolist() == [0, 0, 0]
    split = receptive_field_profile(fields_frame().assign(length=[100, 200, 100, 100, 100, 100, 200, 100, 100]),
                                    ["architecture", "depth", "length"])
    assert split[[*CELL, "length", "receptive_field", "effective_receptive_field_n"]].values.tolist() == [
        ["cnn", 1, 100, 7, 1], ["cnn", 1, 200, 7, 1], ["cnn", 4, 100, 27, 0], ["lstm", 1, 100, 200, 1],
        ["lstm", 1, 200, 200, 0]]
    missing = receptive_field_profile(fields_frame().drop(columns=["receptive_field"]), CELL)
    assert missing.empty and list(missing.columns) == [*CELL, *RECEPTIVE_FIELD_PROFILE_COLUMNS]


def data_frame() -> pd.DataFrame:
    rows = [
        unit("1", "lstm", 1, n_strips=100, gap_at_best=0.4, gap_at_target=0.3, best_val_accuracy=0.6),
        unit("2", "lstm", 1, n_strips=100, gap_at_best=0.6, gap_at_target=NAN, best_val_accuracy=0.8),
        unit("3", "lstm", 1, n_strips=100, gap_at_best=9.0, gap_at_target=9.0, best_val_accuracy=0.25,
             trained=False, classification="failed_to_train"),   # not trained: no gap, but its accuracy counts
        unit("4", "lstm", 1, n_strips=400, gap_at_best=0.1, gap_at_target=0.1, best_val_accuracy=0.9),
        unit("5", "cnn", 2, n_strips=400, gap_at_best=0.05, gap_at_target=0.02, best_val_accuracy=0.95),
    ]
    return pd.DataFrame(rows)


def test_data_profile_means_the_gaps_over_the_trained_units_and_accuracy_over_all():
    profile = data_profile(data_frame(), ["architecture", "depth", "n_strips"], "n_strips", resamples=200)
    assert list(profile.columns) == [*CELL, "factor", "level", *profile_columns("gap_at_target"),
                                     *profile_columns("gap_at_best"), *profile_columns("best_val_accuracy")]
    assert profile[[*CELL, "factor", "level"]].values.tolist() == [["cnn", 2, "n_strips", 400],
                                                                    ["lstm", 1, "n_strips", 100],
                                                                    ["lstm", 1, "n_strips", 400]]
    assert profile["gap_at_target_n"].tolist() == [1, 1, 1]
    assert profile["gap_at_target_mean"].tolist() == pytest.approx([0.02, 0.3, 0.1])
    assert profile["gap_at_best_n"].tolist() == [1, 2, 1]
    assert profile["gap_at_best_mean"].tolist() == pytest.approx([0.05, 0.5, 0.1])
    assert profile["best_val_accuracy_n"].tolist() == [1, 3, 1]
    assert profile["best_val_accuracy_mean"].tolist() == pytest.approx([0.95, 0.55, 0.9])
    # Without gap_at_target in the frame, its columns are left out; extra strata are grouping columns.
    older = data_profile(data_frame().drop(columns=["gap_at_target"]).assign(event_distance=[10, 40, 10, 10, 10]),
                         ["architecture", "depth", "event_distance", "n_strips"], "n_strips")
    assert list(older.columns)[:5] == [*CELL, "event_distance", "factor", "level"]
    assert "gap_at_target_mean" not in older.columns
    assert older[["architecture", "event_distance", "level", "gap_at_best_n", "best_val_accuracy_n"]].values.tolist() \
        == [["cnn", 10, 400, 1, 1], ["lstm", 10, 100, 1, 2], ["lstm", 10, 400, 1, 1], ["lstm", 40, 100, 1, 1]]


# ---------------------------------------------------------------- the why table names the figure of what was measured


def test_a_measured_explanation_gets_its_figure_without_a_claim_and_stays_untested():
    why = why_table((), (), None, {"receptive_field": "the study varies event_distance: see ...",
                                   "overfitting": "the study varies n_strips: see ..."}).set_index("explanation")
    assert why.loc["receptive_field", "figure"] == "why_receptive_field"
    assert why.loc["overfitting", "figure"] == "why_overfitting"
    assert why.loc["receptive_field", "status"] == why.loc["overfitting", "status"] == NOT_TESTED
    assert why.loc["receptive_field", "evidence"] == ("no claim of this study is tagged with it (the study varies "
                                                      "event_distance: see ...)")
    assert why.loc["gating", "figure"] == ""


# ---------------------------------------------------------------- panels and short tables (drawn from the tables only)


def test_the_distance_panel_draws_one_line_per_depth_and_chance():
    frame = distance_frame()
    profile = distance_profile(frame, ["architecture", "depth", "event_distance"], "event_distance", resamples=50)
    ax = Figure().subplots()
    plot_distance_profile(profile.loc[profile["architecture"] == "cnn"], ax, chance=0.5, title="CNN")
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["depth 1", "depth 4", "chance (0.5)"]
    assert any(line.get_linestyle() == "--" and list(line.get_ydata()) == [0.5, 0.5] for line in ax.lines)
    assert ax.get_xlabel() == "event_distance" and ax.get_xscale() == "log"
    empty = Figure().subplots()
    plot_distance_profile(profile.iloc[0:0], empty, chance=0.5)
    assert "not enough data" in empty.texts[0].get_text()


def test_the_receptive_field_panel_is_log_scaled_with_the_distances_as_reference_lines():
    profile = receptive_field_profile(fields_frame(), CELL, resamples=50)
    ax = Figure().subplots()
    plot_receptive_fields(profile, ax, distances=[10, 40], distance_name="event_distance")
    assert ax.get_yscale() == "log"
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels == ["CNN theoretical", "CNN effective", "LSTM theoretical", "LSTM effective"]
    assert sorted(line.get_ydata()[0] for line in ax.lines if line.get_linestyle() == ":") == [10, 40]
    assert [text.get_text() for text in ax.texts] == ["event_distance 10", "event_distance 40"]
    empty = Figure().subplots()
    plot_receptive_fields(profile.iloc[0:0], empty)
    assert "not enough data" in empty.texts[0].get_text()
    data = data_profile(data_frame(), ["architecture", "depth", "n_strips"], "n_strips", resamples=50)
    gap = Figure().subplots()
    plot_data_profile(data.loc[data["architecture"] == "lstm"], gap, measure="gap_at_best")
    assert [text.get_text() for text in gap.get_legend().get_texts()] == ["depth 1"]
    assert "event distance" in figure_caption("why_receptive_field").replace("_", " ")
    assert "n_strips" in figure_caption("why_overfitting")


def test_the_short_table_has_one_column_per_level():
    profile = distance_profile(distance_frame(), ["architecture", "depth", "event_distance"], "event_distance",
                               resamples=400)
    pivot = level_pivot(profile, "best_val_accuracy")
    assert list(pivot.columns) == [*CELL, "event_distance 10", "event_distance 40"]
    assert pivot.values.tolist() == [["cnn", 1, "0.8 [0.7, 0.9], n 2", "0.55 [0.5, 0.6], n 2"],
                                     ["cnn", 4, "n/a", "0.95, n 1"], ["lstm", 1, "1, n 1", "0.8, n 1"]]


# ---------------------------------------------------------------- a planted study with dataset factors

#: The planted third factor's two levels become two scientific dataset factors that move together (a short study:
#: each is a factor of its own in the tables, the manifest and the analysis).
DISTANCES = {0.0: 10, 1.0: 40}       # level -> event_distance
STRIPS = {0.0: 400, 1.0: 100}        # level -> n_strips
CLAIMS = [
    {"factor": "depth", "measure": "best_val_accuracy", "direction": "increases",
     "compare": {"architecture": ["cnn", "lstm"]}, "explanation": "receptive_field",
     "sentence": "CNN accuracy rises with depth more than LSTM accuracy"},
    {"factor": "depth", "measure": "gap_at_best", "direction": "increases",
     "compare": {"architecture": ["lstm", "cnn"]}, "explanation": "overfitting",
     "sentence": "the gap grows faster with depth for LSTMs"},
]


def kappa(architecture: str, depth: int, level: float) -> float:
    """The planted gap rate: large with 100 strips, small with 400, growing with depth for LSTMs."""
    return (0.9 if STRIPS[level] == 100 else 0.2) * (1.0 + 0.2 * depth * (architecture == "lstm"))


PLAN = PlantedStudy(depths=(1, 4), settings_per_cell=2, repeat_seeds=0, epochs=5, seed=3, factor="dropout",
                    levels=(0.0, 1.0), train_probability=lambda *cell: 1.0, kappa=kappa, kappa_sd=0.05,
                    claims=CLAIMS)


def planted_run(run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A planted study whose third factor becomes two scientific dataset factors (event_distance, n_strips) of
    ecg_events, with theoretical and effective receptive fields; returns its (epochs, trials)."""
    epochs, trials, manifest = planted_tables(copy.deepcopy(PLAN))
    for table in (epochs, trials):
        level = table["dropout"]
        table["event_distance"] = level.map(DISTANCES)
        table["n_strips"] = level.map(STRIPS)
        table["dropout"] = 0.1
    space = manifest["space"]
    space["hyperparameters"]["dropout"] = {"role": "fixed", "value": 0.1}
    space["dataset"] = {"name": "ecg_events", "parameters": {
        "event_distance": {"role": "scientific", "values": [10, 40]},
        "n_strips": {"role": "scientific", "values": [100, 400]}}}
    space["analysis"] = {"calibration_studies": 0, "permutations": 99}
    lstm = trials["architecture"] == "lstm"
    trials["receptive_field"] = np.where(lstm, 200, 1 + 6 * trials["depth"])
    trials["effective_receptive_field"] = np.where(lstm, 30 + 10 * trials["depth"], 0.5 * trials["receptive_field"])
    trials.loc[~lstm & (trials["depth"] == 4), "effective_receptive_field"] = NAN  # not recorded there
    run_dir.mkdir(parents=True)
    epochs.to_csv(run_dir / tables.EPOCHS_FILE, index=False)
    trials.to_csv(run_dir / tables.TRIALS_FILE, index=False)
    (run_dir / tables.MANIFEST_FILE).write_text(json.dumps(manifest), encoding="utf-8")
    return epochs, trials


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[pd.DataFrame, pd.DataFrame, Path]:
    root = tmp_path_factory.mktemp("why_data")
    epochs, trials = planted_run(root / "runs" / "events")
    status, _out, err = run_main(["report", "events", "--runs-dir", str(root / "runs"), "--reports-dir",
                                  str(root / "reports")])
    assert status == 0, err
    return epochs, trials, root / "reports" / "events"


def test_the_report_tabulates_the_distance_receptive_field_and_data_profiles(built):
    epochs, trials, report = built
    tune = trials.loc[trials["phase"] == "tune"]
    keys = ["architecture", "depth", "n_strips", "event_distance"]

    distance = pd.read_csv(report / "distance_profile.csv")
    assert list(distance.columns) == ["architecture", "depth", "n_strips", "factor", "level",
                                      *profile_columns("best_val_accuracy"), *profile_columns("test_accuracy")]
    assert set(distance["factor"]) == {"event_distance"}
    # the planted trials' best validation accuracy (the report recomputes it from epochs.csv)
    expected = tune.groupby(keys)["best_val_accuracy"].agg(["mean", "min", "max", "size"]).reset_index()
    assert distance[["architecture", "depth", "n_strips", "level"]].values.tolist() == expected[keys].values.tolist() \
        == [["cnn", 1, 100, 40], ["cnn", 1, 400, 10], ["cnn", 4, 100, 40], ["cnn", 4, 400, 10],
            ["lstm", 1, 100, 40], ["lstm", 1, 400, 10], ["lstm", 4, 100, 40], ["lstm", 4, 400, 10]]
    assert distance["best_val_accuracy_mean"].tolist() == pytest.approx(expected["mean"].tolist(), abs=1e-9)
    assert distance["best_val_accuracy_low"].tolist() == pytest.approx(expected["min"].tolist(), abs=1e-9)
    assert distance["best_val_accuracy_high"].tolist() == pytest.approx(expected["max"].tolist(), abs=1e-9)
    assert distance["best_val_accuracy_n"].tolist() == distance["test_accuracy_n"].tolist() == [2] * 8
    assert distance["test_accuracy_mean"].tolist() == pytest.approx([0.5] * 8)

    fields = pd.read_csv(report / "receptive_field_profile.csv")
    assert list(fields.columns) == ["architecture", "depth", "event_distance", "n_strips",
                                    *RECEPTIVE_FIELD_PROFILE_COLUMNS]
    assert fields[["architecture", "depth", "event_distance", "receptive_field", "effective_receptive_field_n"]
                  ].values.tolist() == [["cnn", 1, 10, 7, 2], ["cnn", 1, 40, 7, 2], ["cnn", 4, 10, 25, 0],
                                        ["cnn", 4, 40, 25, 0], ["lstm", 1, 10, 200, 2], ["lstm", 1, 40, 200, 2],
                                        ["lstm", 4, 10, 200, 2], ["lstm", 4, 40, 200, 2]]
    assert fields["effective_receptive_field_mean"].tolist() == pytest.approx(
        [3.5, 3.5, NAN, NAN, 40, 40, 70, 70], nan_ok=True)

    data = pd.read_csv(report / "data_profile.csv")
    assert list(data.columns[:5]) == ["architecture", "depth", "event_distance", "factor", "level"]
    assert set(data["factor"]) == {"n_strips"}
    assert {*profile_columns("gap_at_target"), *profile_columns("best_val_accuracy")} <= set(data.columns)
    # the gap at the best epoch, from the planted curves (every planted trial trained)
    curves = epochs.loc[epochs["phase"] == "tune"]
    best = curves.loc[curves.groupby("trial_id")["val_loss"].idxmin()]
    gaps = best.assign(gap=best["val_loss"] - best["train_loss"]).groupby(
        ["architecture", "depth", "event_distance", "n_strips"])["gap"].mean().reset_index()
    assert data[["architecture", "depth", "event_distance", "level"]].values.tolist() == \
        gaps[["architecture", "depth", "event_distance", "n_strips"]].values.tolist()
    assert data["gap_at_best_mean"].tolist() == pytest.approx(gaps["gap"].tolist(), abs=1e-9)
    assert data["gap_at_best_n"].tolist() == [2] * 8
    # the planted gap rate is larger with 100 strips than with 400
    small, large = (data.loc[data["level"] == level, "gap_at_best_mean"].mean() for level in (100, 400))
    assert small > large


def test_the_why_section_shows_both_figures_and_their_short_tables(built):
    _epochs, _trials, report = built
    why = pd.read_csv(report / "why.csv", keep_default_na=False).set_index("explanation")
    assert why.loc["receptive_field", "figure"] == "why_receptive_field"
    assert why.loc["overfitting", "figure"] == "why_overfitting"
    assert why.loc["receptive_field", "claims"] == why.loc["overfitting", "claims"] == 1
    assert NOT_TESTED not in (why.loc["receptive_field", "status"], why.loc["overfitting", "status"])
    for name in ("why_receptive_field", "why_overfitting"):
        assert (report / "figures" / f"{name}.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        assert (report / "figures" / f"{name}.svg").is_file()
    text = (report / "report.md").read_text(encoding="utf-8")
    section = text.split("## Why?")[1].split("\n## ")[0]
    assert section.index("![why_overfitting]") < section.index("### Gap per cell at every n_strips") \
        < section.index("![why_receptive_field]") < section.index("### Accuracy per cell at every event_distance") \
        < section.index("### Theoretical and effective receptive field per cell") \
        < section.index("### Width, parameters and receptive field per cell")
    assert "| architecture | depth | n_strips | event_distance 10 | event_distance 40 |" in section
    assert "| cnn | 1 | 100 | n/a | " in section  # 100 strips only at distance 40
    assert "| architecture | depth | event_distance | factor " not in section  # the short tables, not the CSVs
    assert "| architecture | depth | event_distance | n_strips 100 | n_strips 400 |" in section
    assert "| cnn | 4 | 10 | 400 | 25 | n/a | 0 |" in section
    assert "| lstm | 1 | 40 | 100 | 200 | 40 [40, 40] | 2 |" in section
    assert "accuracy falls to chance once the distance exceeds the receptive field" in section
    figures = text.split("## Figures")[1].split("\n## ")[0]
    assert "why_" not in figures
    page = (report / "report.html").read_text(encoding="utf-8")
    assert page.index('id="why"') < page.index('id="figure-why_overfitting"') \
        < page.index('id="figure-why_receptive_field"')
