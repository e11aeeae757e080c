"""The report of a hand-made run directory, with every expected number worked out by hand."""
from __future__ import annotations

import ast
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import study.report
from study import tables
from study.errors import BadInput
from study.figures import FIGURE_NAMES
from study.markdown import format_cell, markdown_table
from study.report import build_report
from study.statistics.classification import Chance
from study.statistics.selection import best_per_cell
from study.statistics.summaries import (
    boundary_position,
    boundary_table,
    classification_counts,
    isolation_table,
    learning_curve_table,
    median_table,
    nuisance_value_table,
    per_class_table,
    problem_trials_table,
    trainability_table,
)
from study.statistics.trials import trial_frame

PROJECT = Path(__file__).resolve().parents[1]

#: Fast, exact settings: a fixed train-loss target, few permutations, no calibration simulation.
ANALYSIS = {"target_train_loss": 0.35, "permutations": 199, "calibration_studies": 0}

SPACE = {
    "hyperparameters": {
        "architecture": {"role": "scientific", "values": ["lstm", "cnn"]},
        "depth": {"role": "scientific", "values": [1, 2]},
        "dropout": {"role": "nuisance", "values": [0.0, 0.25, 0.5]},
        "weight_decay": {"role": "nuisance", "min": 1e-5, "max": 1e-2, "log": True},
        "weight_decay_type": {"role": "nuisance", "values": ["l2", "decoupled"]},
        "width": {"role": "fixed", "value": 16},
        "kernel_size": {"role": "fixed", "value": 5},
        "recurrent_dropout": {"role": "fixed", "value": 0.0},
        "learning_rate": {"role": "fixed", "value": 0.001},
        "epochs": {"role": "fixed", "value": 4},
        "batch_size": {"role": "fixed", "value": 32},
    },
    "tuner": {"name": "random", "max_trials": 5, "seed": 7},
    "dataset": {"name": "toy"},
    "analysis": ANALYSIS,
}

MANIFEST = {
    "study": "toy-study",
    "space": SPACE,
    "dataset": {"name": "toy", "content_hash": "abc123def456", "class_names": ["N", "~"],
                "class_counts": {"train": {"N": 40, "~": 40}}},
    "seeds": {"base": 7},
    "versions": {"keras": "3"},
    "backend": "tensorflow",
    "started": "2025-01-01T00:00:00",
    "finished": "2025-01-01T01:00:00",
}

NAN = math.nan

# trial id: (phase, status, architecture, depth, dropout, weight_decay, weight_decay_type,
#            parameter_count, test_accuracy, val_loss per epoch, train_loss per epoch)
# Two classes, so a trial trained when its train balanced accuracy exceeds 1/2 + 0.1 (all 0.8 but t7).
# The common train-loss target is 0.35.
TRIALS = {
    # Cell (lstm, 2). gaps .1 .1 .1 .3: best 3 (0.4), final .3, growth (.3-.1)/1 = .2,
    # onset: threshold .45, epoch 4 (.5) above -> 4. Overfitting (.5 > .45 and .2 < .95 x .3).
    # Target reached at epoch 3 (.3): gap at target .1.
    "t1": ("tune", "completed", "lstm", 2, 0.5, 1e-3, "l2", 1000, 0.81,
           [1.0, 0.6, 0.4, 0.5], [0.9, 0.5, 0.3, 0.2]),
    # gaps .05 .1 .1 .1: best 4 (0.55), gap .1, final .1, growth NaN (one epoch), no onset; fitting;
    # never reaches the target (lowest train loss .45).
    "t2": ("tune", "completed", "lstm", 2, 0.25, 1e-4, "decoupled", 1200, 0.78,
           [1.0, 0.7, 0.6, 0.55], [0.95, 0.6, 0.5, 0.45]),
    # A loss became NaN at epoch 3: diverged. Its best validation loss (.2) is the lowest of the cell,
    # but a diverged trial never wins.
    "t6": ("tune", "diverged", "lstm", 2, 0.0, 1e-5, "l2", 1000, NAN,
           [0.9, 0.2, NAN], [0.8, 0.1, NAN]),
    # Cell (cnn, 1). Tie at .3 on epochs 3 and 4 -> best 3; gaps .1 .1 .1 .2: gap .1, final .2,
    # growth .1, threshold .35, epoch 4 within -> no onset; fitting; target at epoch 3: gap .1.
    "t3": ("tune", "completed", "cnn", 1, 0.25, 1e-4, "decoupled", 500, 0.70,
           [0.8, 0.5, 0.3, 0.3], [0.7, 0.4, 0.2, 0.1]),
    # best 2 (.6); gaps .05 .1 .3 .6: gap .1, final .6, growth over (2,.1)(3,.3)(4,.6) = .25,
    # threshold .65, epochs 3 (.7) and 4 (.9) above -> onset 3; overfitting; target at epoch 4: gap .6.
    "t4": ("tune", "completed", "cnn", 1, 0.0, 1e-2, "l2", 600, 0.74,
           [0.9, 0.6, 0.7, 0.9], [0.85, 0.5, 0.4, 0.3]),
    # Crashed after one epoch with a (misleadingly) low loss: must never win.
    "t5": ("tune", "failed", "cnn", 1, 0.5, 1e-5, "l2", 550, NAN, [0.1], [0.1]),
    # Completed but failed to train (train balanced accuracy 0.55): best 2 (.9), gaps .25 .21 .23 .24:
    # gap at best .21, final .24, growth over (2,.21)(3,.23)(4,.24) = .015, threshold .95: no onset.
    "t7": ("tune", "completed", "cnn", 1, 0.5, 1e-2, "l2", 600, 0.50,
           [0.95, 0.9, 0.92, 0.93], [0.7, 0.69, 0.69, 0.69]),
    # A repeat of t1's setting with a lower loss: not part of tuning, never a winner, but part of t1's curves.
    "r1": ("repeat", "completed", "lstm", 2, 0.5, 1e-3, "l2", 1000, 0.99,
           [0.3, 0.05, 0.1, 0.2], [0.3, 0.01, 0.01, 0.01]),
}
TRAIN_BALANCED_ACCURACY = {"t7": 0.55}

FIXED = {"width": 16, "kernel_size": 5, "recurrent_dropout": 0.0, "learning_rate": 0.001, "clipnorm": 0.0, "epochs": 4,
         "batch_size": 32, "parameter_budget": 0}

TABLE_FILES = ["answers.json", "best_of_k.csv", "boundaries.csv", "calibration.csv", "cell_summary.csv", "claims.csv",
               "classification.csv", "factor_effects.csv", "factor_profile.csv",
               "gap_heatmaps.csv", "isolation.csv", "kendall_tau.csv", "learning_curves.csv", "medians.csv",
               "model_sizes.csv", "nuisance_edges.csv", "nuisance_values.csv", "problem_trials.csv", "slopes.csv",
               "thresholds.csv", "trainability.csv", "why.csv", "winners.csv"]
#: The default overfitting statement tests the overfitting explanation, so a depth study has its Why? figure too.
WHY_FIGURES = ("why_overfitting",)


def epoch_rows() -> pd.DataFrame:
    rows = []
    for trial_id, (phase, _status, architecture, depth, dropout, weight_decay, decay_type, _count, _test,
                   val_losses, train_losses) in TRIALS.items():
        for index, (val_loss, train_loss) in enumerate(zip(val_losses, train_losses)):
            rows.append({
                "trial_id": trial_id, "phase": phase, "architecture": architecture, "depth": depth,
                "dropout": dropout, "weight_decay": weight_decay, "weight_decay_type": decay_type, **FIXED,
                "seed": 7, "epoch": index + 1,
                "train_loss": train_loss, "train_accuracy": 0.5, "train_macro_f1": 0.5,
                "train_balanced_accuracy": TRAIN_BALANCED_ACCURACY.get(trial_id, 0.8), "val_loss": val_loss,
                "val_accuracy": round(0.6 + 0.01 * (index + 1), 2), "val_macro_f1": 0.5,
                "val_balanced_accuracy": 0.5,
                # Keras' running loss with dropout on: deliberately unrelated, it must not matter.
                "fit_loss": 5.0 - index, "seconds": 1.0, "eval_seconds": 0.1,
            })
    return pd.DataFrame(rows)[tables.EPOCH_COLUMNS]


def trial_rows() -> pd.DataFrame:
    rows = []
    for trial_id, (phase, status, architecture, depth, dropout, weight_decay, decay_type, count, test,
                   _val, _train) in TRIALS.items():
        message = {"failed": "ResourceExhaustedError: out of memory", "diverged": "loss became NaN"}.get(status, "")
        rows.append({
            "trial_id": trial_id, "phase": phase, "status": status, "architecture": architecture,
            "depth": depth, "dropout": dropout, "weight_decay": weight_decay, "weight_decay_type": decay_type,
            **FIXED, "seed": 7, "setting": NAN, "parent_trial_id": NAN, "parameter_count": count, "epochs_run": 99,
            # Wrong on purpose: the report must recompute measures from epochs.csv.
            "best_epoch": 1, "best_val_loss": 0.01 if trial_id == "t2" else 9.9, "best_val_accuracy": 0.0,
            "gap_at_best": 9.9, "final_gap": 9.9, "gap_growth": 9.9, "overfit_onset": 1,
            "test_loss": 1.0, "test_accuracy": test, "test_macro_f1": 0.5, "test_balanced_accuracy": 0.5,
            "seconds": 4.0, "message": message,
        })
    return pd.DataFrame(rows).reindex(columns=tables.TRIAL_COLUMNS)  # columns added later stay empty


def write_run(run_dir: Path, epochs: pd.DataFrame | None = None, trials: pd.DataFrame | None = None,
              manifest: dict | None = None) -> Path:
    run_dir.mkdir(parents=True)
    (epoch_rows() if epochs is None else epochs).to_csv(run_dir / tables.EPOCHS_FILE, index=False)
    (trial_rows() if trials is None else trials).to_csv(run_dir / tables.TRIALS_FILE, index=False)
    (run_dir / tables.MANIFEST_FILE).write_text(json.dumps(MANIFEST if manifest is None else manifest, indent=2),
                                                encoding="utf-8")
    return run_dir


def the_trial_frame(trials: pd.DataFrame | None = None) -> pd.DataFrame:
    from study.config import AnalysisConfig

    frame, target = trial_frame(epoch_rows(), trial_rows() if trials is None else trials,
                                chance=Chance(num_classes=2, loss=math.log(2)),
                                settings=AnalysisConfig.from_mapping(ANALYSIS))
    assert target == 0.35
    return frame


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return the_trial_frame()


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    return write_run(tmp_path / "runs" / "toy-study")


def wilson(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


# ---------------------------------------------------------------- summaries (pure)


def test_isolation_picks_each_cells_best_completed_tuning_trial(frame):
    isolation = isolation_table(frame, SPACE)
    # Cells in the order the space lists them (lstm before cnn). t6 (diverged, val .2) and t5 (crashed, .1)
    # have lower losses but cannot win; r1 (repeat, .05) is not tuning.
    assert isolation[["architecture", "depth", "trial_id"]].values.tolist() == [["lstm", 2, "t1"], ["cnn", 1, "t3"]]
    assert isolation.columns.tolist() == [
        "architecture", "depth", "trial_id", "dropout", "weight_decay", "weight_decay_type", "parameter_count",
        "classification", "epochs_run", "best_epoch", "best_val_loss", "best_val_accuracy", "gap_at_best",
        "final_gap", "gap_growth", "overfit_onset", "gap_at_target", "test_accuracy", "test_macro_f1",
        "test_balanced_accuracy"]
    lstm, cnn = isolation.iloc[0], isolation.iloc[1]
    assert (lstm["dropout"], lstm["weight_decay"], lstm["weight_decay_type"]) == (0.5, 1e-3, "l2")
    assert (cnn["dropout"], cnn["weight_decay"], cnn["weight_decay_type"]) == (0.25, 1e-4, "decoupled")
    assert isolation["parameter_count"].tolist() == [1000, 500]
    assert isolation["classification"].tolist() == ["overfitting", "fitting"]
    assert isolation["best_epoch"].tolist() == [3, 3]
    assert isolation["best_val_loss"].tolist() == [0.4, 0.3]
    assert isolation["best_val_accuracy"].tolist() == [0.63, 0.63]
    assert isolation["gap_at_best"].tolist() == pytest.approx([0.1, 0.1])
    assert isolation["final_gap"].tolist() == pytest.approx([0.3, 0.2])
    assert isolation["gap_growth"].tolist() == pytest.approx([0.2, 0.1])
    assert isolation["gap_at_target"].tolist() == pytest.approx([0.1, 0.1])
    assert lstm["overfit_onset"] == 4 and pd.isna(cnn["overfit_onset"])  # observed onset: t3 never overfitted
    assert isolation["epochs_run"].tolist() == [4, 4]
    assert isolation["test_accuracy"].tolist() == [0.81, 0.70]
    assert isolation["trial_id"].tolist() == best_per_cell(frame, ["architecture", "depth"]).sort_values(
        "architecture", ascending=False)["trial_id"].tolist()


def test_medians_per_cell(frame):
    medians = median_table(frame, SPACE)
    assert medians.columns.tolist() == [
        "architecture", "depth", "trials", "completed_trials", "diverged_trials", "crashed_trials", "trained_trials",
        "median_best_epoch", "median_best_val_loss", "median_gap_at_best", "median_final_gap", "median_gap_growth",
        "median_gap_at_target", "median_overfit_onset", "onset_fraction", "median_test_accuracy"]
    assert list(medians["architecture"]) == ["lstm", "cnn"]
    lstm, cnn = medians.set_index("architecture").loc["lstm"], medians.set_index("architecture").loc["cnn"]
    # lstm 2: t1, t2 completed, t6 diverged; cnn 1: t3, t4, t7 completed (t7 failed to train), t5 crashed.
    assert [lstm[name] for name in ("trials", "completed_trials", "diverged_trials", "crashed_trials",
                                    "trained_trials")] == [3, 2, 1, 0, 2]
    assert [cnn[name] for name in ("trials", "completed_trials", "diverged_trials", "crashed_trials",
                                   "trained_trials")] == [4, 3, 0, 1, 2]
    assert lstm["median_best_epoch"] == 3.5 and cnn["median_best_epoch"] == 2  # [3, 2, 2]
    assert lstm["median_best_val_loss"] == pytest.approx(0.475) and cnn["median_best_val_loss"] == pytest.approx(0.6)
    assert lstm["median_gap_at_best"] == pytest.approx(0.1) and cnn["median_gap_at_best"] == pytest.approx(0.1)
    assert lstm["median_final_gap"] == pytest.approx(0.2) and cnn["median_final_gap"] == pytest.approx(0.24)
    # lstm: growth [0.2, NaN] -> 0.2; cnn: [0.1, 0.25, 0.015] -> 0.1.
    assert lstm["median_gap_growth"] == pytest.approx(0.2) and cnn["median_gap_growth"] == pytest.approx(0.1)
    # lstm: [0.1, never reached] -> 0.1; cnn: [0.1, 0.6, never] -> 0.35.
    assert lstm["median_gap_at_target"] == pytest.approx(0.1) and cnn["median_gap_at_target"] == pytest.approx(0.35)
    assert lstm["median_overfit_onset"] == 4 and cnn["median_overfit_onset"] == 3
    assert lstm["onset_fraction"] == 0.5 and cnn["onset_fraction"] == pytest.approx(1 / 3)
    assert lstm["median_test_accuracy"] == pytest.approx(0.795) and cnn["median_test_accuracy"] == pytest.approx(0.70)


def test_boundaries_flag_the_value_on_an_edge_only(frame):
    boundaries = boundary_table(isolation_table(frame, SPACE), SPACE)
    assert len(boundaries) == 6  # 2 cells x 3 nuisance hyperparameters
    flagged = boundaries.loc[boundaries["on_boundary"]]
    assert flagged[["architecture", "depth", "hyperparameter", "value", "edge"]].values.tolist() == [
        ["lstm", 2, "dropout", 0.5, "upper"],
    ]
    by_key = boundaries.set_index(["architecture", "hyperparameter"])
    # 1e-3 in log space of 1e-5..1e-2 sits at 2/3; 1e-4 at 1/3 (near the edge on a linear scale).
    assert by_key.loc[("lstm", "weight_decay"), "position"] == pytest.approx(2 / 3)
    assert by_key.loc[("cnn", "weight_decay"), "position"] == pytest.approx(1 / 3)
    assert not by_key.loc[("cnn", "weight_decay"), "on_boundary"]
    assert by_key.loc[("cnn", "dropout"), "position"] == 0.5
    assert by_key.loc[("lstm", "weight_decay_type"), "kind"] == "categorical"
    assert by_key.loc[("cnn", "dropout"), "search_range"] == "[0.0, 0.25, 0.5]"
    assert by_key.loc[("lstm", "weight_decay"), "search_range"] == "1e-05..0.01 (log)"


def test_boundary_position_rules():
    linear = {"min": 0.0, "max": 1.0}
    assert boundary_position(0.04, linear)[2:] == (True, "lower")
    assert boundary_position(0.06, linear)[2:] == (False, "")
    assert boundary_position(0.96, linear)[2:] == (True, "upper")
    log = {"min": 1e-5, "max": 1e-2, "log": True}
    assert boundary_position(1e-4, log)[2] is False  # 0.9% of the linear range, 33% of the log range
    assert boundary_position(1.2e-5, log)[2:] == (True, "lower")
    assert boundary_position(9.0e-3, log)[2:] == (True, "upper")
    assert boundary_position(0.5, {"values": [0.0, 0.25, 0.5]})[2:] == (True, "upper")
    assert boundary_position(0.0, {"values": [0.0, 0.25, 0.5]})[2:] == (True, "lower")
    assert boundary_position(0.25, {"values": [0.0, 0.25, 0.5]})[2:] == (False, "")
    assert boundary_position(4, {"values": [4]})[2] is False
    assert boundary_position("l2", {"values": ["l2", "l1"]})[:3:2] == ("categorical", False)
    with pytest.raises(ValueError, match="positive"):
        boundary_position(0.0, log)


def test_boundary_table_skips_hyperparameters_that_do_not_apply_to_a_cell():
    space = {"hyperparameters": {
        "architecture": {"role": "scientific", "values": ["lstm", "cnn"]},
        "kernel_size": {"role": "nuisance", "values": [3, 5, 7]},
    }}
    isolation = pd.DataFrame({"architecture": ["lstm", "cnn"], "trial_id": ["a", "b"], "kernel_size": [math.nan, 7.0]})
    boundaries = boundary_table(isolation, space)
    assert boundaries[["architecture", "value", "on_boundary", "edge"]].values.tolist() == [["cnn", 7.0, True, "upper"]]


def test_problem_trials_are_the_crashed_and_diverged_ones(frame):
    problems = problem_trials_table(frame, SPACE)
    assert problems.columns.tolist() == ["architecture", "depth", "trial_id", "phase", "status", "classification",
                                         "diverged_epoch", "message"]
    assert problems[["architecture", "trial_id", "status", "classification"]].values.tolist() == [
        ["lstm", "t6", "diverged", "diverged"], ["cnn", "t5", "failed", "crashed"]]
    assert problems["diverged_epoch"].iloc[0] == 3 and pd.isna(problems["diverged_epoch"].iloc[1])
    assert problems["message"].tolist() == ["loss became NaN", "ResourceExhaustedError: out of memory"]


def test_trainability_and_classification_counts(frame):
    trainability = trainability_table(frame).set_index("architecture")
    assert trainability.loc["cnn", ["settings", "trained", "failed_to_train", "diverged", "crashed"]].tolist() == \
        [4, 2, 1, 0, 1]
    assert trainability.loc["lstm", ["settings", "trained", "failed_to_train", "diverged", "crashed"]].tolist() == \
        [3, 2, 0, 1, 0]
    assert trainability.loc["cnn", "trainable_fraction"] == 0.5
    assert trainability.loc["lstm", "trainable_fraction"] == pytest.approx(2 / 3)
    assert (trainability.loc["cnn", "fraction_low"], trainability.loc["cnn", "fraction_high"]) == \
        pytest.approx(wilson(2, 4))
    assert (trainability.loc["lstm", "fraction_low"], trainability.loc["lstm", "fraction_high"]) == \
        pytest.approx(wilson(2, 3))
    assert trainability.loc["cnn", "best_train_loss"] == 0.1 and trainability.loc["lstm", "best_train_loss"] == 0.1

    counts = classification_counts(frame)
    assert counts.columns.tolist() == ["phase", "architecture", "depth", "classification", "trials", "share"]
    by_key = counts.set_index(["phase", "architecture", "classification"])["trials"]
    assert [by_key[("tune", "cnn", name)] for name in
            ("crashed", "diverged", "failed to train", "overfitting", "fitting")] == [1, 0, 1, 1, 1]
    assert [by_key[("tune", "lstm", name)] for name in
            ("crashed", "diverged", "failed to train", "overfitting", "fitting")] == [0, 1, 0, 1, 1]
    assert by_key[("repeat", "lstm", "fitting")] == 1 and len(counts) == 15  # 3 (phase, cell) x 5 classes
    assert counts.loc[counts["phase"] == "tune"].groupby("architecture")["share"].sum().tolist() == \
        pytest.approx([1.0, 1.0])


def test_learning_curves_are_the_winner_and_its_repeat_seeds(frame):
    curves = learning_curve_table(epoch_rows(), frame)
    assert curves.groupby(["architecture", "depth"])["trial_id"].first().to_dict() == {("cnn", 1): "t3",
                                                                                         ("lstm", 2): "t1"}
    lstm_train = curves.loc[(curves["architecture"] == "lstm") & (curves["split"] == "train")]
    # t1 train [.9 .5 .3 .2] and r1 [.3 .01 .01 .01]
    assert lstm_train["mean"].tolist() == pytest.approx([0.6, 0.255, 0.155, 0.105])
    assert lstm_train["low"].tolist() == pytest.approx([0.3, 0.01, 0.01, 0.01])
    assert lstm_train["high"].tolist() == pytest.approx([0.9, 0.5, 0.3, 0.2])
    assert lstm_train["seeds"].tolist() == [2, 2, 2, 2]
    cnn_validation = curves.loc[(curves["architecture"] == "cnn") & (curves["split"] == "validation")]
    assert cnn_validation["mean"].tolist() == pytest.approx([0.8, 0.5, 0.3, 0.3])
    assert cnn_validation["seeds"].tolist() == [1, 1, 1, 1]


def test_every_winner_is_the_one_of_best_per_cell(frame, tmp_path):
    """Isolation, learning curves, nuisance stars and per-class rows all name the trial best_per_cell picks."""
    expected = set(best_per_cell(frame, ["architecture", "depth"])["trial_id"])
    assert expected == {"t1", "t3"}
    assert set(isolation_table(frame, SPACE)["trial_id"]) == expected
    assert set(learning_curve_table(epoch_rows(), frame)["trial_id"]) == expected
    values = nuisance_value_table(frame, SPACE)
    assert set(values.loc[values["best_in_cell"], "trial_id"]) == expected
    assert sorted(values["hyperparameter"].unique()) == ["dropout", "weight_decay"]  # weight_decay_type: no axis
    classes = pd.DataFrame(CLASS_ROWS, columns=tables.CLASS_COLUMNS)
    assert set(per_class_table(isolation_table(frame, SPACE), classes)["trial_id"]) == expected


# ---------------------------------------------------------------- build_report


def test_build_report_writes_every_table_figure_and_page(run_dir, tmp_path):
    report_path = build_report(run_dir, tmp_path / "report")
    directory = tmp_path / "report"
    assert report_path == directory / "report.md"
    assert sorted(path.name for path in directory.iterdir()) == sorted(
        [*TABLE_FILES, "figures", "report.html", "report.md"])
    assert sorted(path.name for path in (directory / "figures").iterdir()) == sorted(
        f"{name}.{suffix}" for name in (*FIGURE_NAMES, *WHY_FIGURES) for suffix in ("png", "svg"))
    assert set(FIGURE_NAMES) == {"gap_vs_depth", "claim_profiles", "trainability_vs_depth", "slopes", "learning_curves",
                                 "gap_heatmaps", "nuisance_axes", "best_of_k", "winners"}
    for name in FIGURE_NAMES:
        assert (directory / "figures" / f"{name}.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert not list(tmp_path.glob(".report.*"))  # no temporary directory left

    isolation = pd.read_csv(directory / "isolation.csv", dtype={"trial_id": str})
    assert isolation["trial_id"].tolist() == ["t1", "t3"]
    medians = pd.read_csv(directory / "medians.csv")
    assert medians["crashed_trials"].tolist() == [0, 1] and medians["completed_trials"].tolist() == [2, 3]
    assert pd.read_csv(directory / "boundaries.csv")["on_boundary"].sum() == 1
    problems = pd.read_csv(directory / "problem_trials.csv", dtype={"trial_id": str})
    assert problems["trial_id"].tolist() == ["t6", "t5"]

    text = report_path.read_text(encoding="utf-8")
    assert text.startswith("# Study report: toy-study\n")
    assert "Dataset **toy** (content hash `abc123def456`); tuner random (max_trials=5, seed=7); 7 tuning trial(s) " \
           "in 2 cell(s) (5 completed, 1 diverged, 1 crashed), 1 repeat trial(s)" in text
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == [
        "## Verdict", "## Why?", "## What was held fixed", "## Caveats", "## Data problems",
        "## What each claim's factor did", "## Each claim's measure at every level of its factor", "## Thresholds",
        "## Slopes along each claim's axis", "## Trainability per cell", "## What happened to the trials",
        "## Isolation: each cell's tuned winner", "## Tuned winners with selection-aware intervals",
        "## Expected best of k settings", "## Medians over the completed tuning trials per cell",
        "## Boundary warnings", "## Problem trials (crashed or diverged)", "## Kendall tau", "## Figures",
        "## How to read this"]
    # Each arm has a single depth: nothing decides either statement.
    verdict = text.split("## Verdict")[1].split("\n## ")[0]
    assert verdict.count("Status: **inconclusive**") == 2
    assert "### Trainability: deeper LSTMs are harder to train than deeper CNNs" in verdict
    assert "### Overfitting: deeper LSTMs overfit faster than deeper CNNs" in verdict
    assert "\n- Nothing decides it yet: both arms need units" in verdict
    assert "**Calibration:** Calibration skipped (analysis.calibration_studies = 0)." in verdict
    assert "width=16" in text.split("## What was held fixed")[1].split("\n## ")[0]
    assert "1 trial(s) diverged (a NaN or infinite loss): tune t6 at epoch 3" in \
        text.split("## Data problems")[1].split("\n## ")[0]
    assert "| architecture | depth | trial_id | dropout | weight_decay |" in text
    assert ("| lstm | 2 | t1 | 0.5 | 0.001 | l2 | 1000 | overfitting | 4 | 3 | 0.4 | 0.63 | 0.1 | 0.3 | 0.2 | 4 | "
            "0.1 | 0.81 | 0.5 | 0.5 |") in text
    assert ("| cnn | 1 | t3 | 0.25 | 0.0001 | decoupled | 500 | fitting | 4 | 3 | 0.3 | 0.63 | 0.1 | 0.2 | 0.1 | "
            "n/a | 0.1 | 0.7 | 0.5 | 0.5 |") in text
    assert "| lstm | 2 | 3 | 2 | 1 | 0 | 2 | 3.5 | 0.475 | 0.1 | 0.2 | 0.2 | 0.1 | 4 | 0.5 | 0.795 |" in text
    assert "| cnn | 1 | 4 | 3 | 0 | 1 | 2 | 2 | 0.6 | 0.1 | 0.24 | 0.1 | 0.35 | 3 | 0.3333 | 0.7 |" in text
    assert "| tune | lstm | 2 | 0 | 1 | 0 | 1 | 1 |" in text  # class counts: crashed .. fitting
    warnings = text.split("## Boundary warnings")[1].split("\n## ")[0]
    assert warnings.count("\n- ") == 1 and "best dropout = 0.5 is on the upper edge" in warnings
    assert "| lstm | 2 | t6 | tune | diverged | diverged | 3 | loss became NaN |" in text
    assert "ResourceExhaustedError" in text
    for name in FIGURE_NAMES:
        assert f"![{name}](figures/{name}.png)" in text
    how = text.split("## How to read this")[1]
    assert "`gap_at_target` (overfitting, primary" in how and "inference mode" in how

    page = (directory / "report.html").read_text(encoding="utf-8")
    assert page.count('src="data:image/png;base64,') == len(FIGURE_NAMES) + len(WHY_FIGURES)
    assert page.index('id="verdict"') < page.index("<img")


def test_report_is_rebuilt_identically_from_a_copy_elsewhere(run_dir, tmp_path):
    first = build_report(run_dir, tmp_path / "first").parent
    copy = shutil.copytree(run_dir, tmp_path / "elsewhere" / "deeper" / "renamed")
    second = build_report(copy, tmp_path / "second").parent
    files = sorted(path.relative_to(first) for path in first.rglob("*") if path.is_file())
    assert files == sorted(path.relative_to(second) for path in second.rglob("*") if path.is_file())
    for name in files:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_a_failing_rebuild_leaves_the_previous_report_whole(run_dir, tmp_path, monkeypatch):
    report_dir = tmp_path / "reports" / "toy-study"
    build_report(run_dir, report_dir)
    before = {path.relative_to(report_dir): path.read_bytes() for path in report_dir.rglob("*") if path.is_file()}

    # 1. trials.csv cannot be read: bad input, nothing touched.
    (run_dir / tables.TRIALS_FILE).write_bytes(b"\xff\xfe\x00\x81 not a table")
    with pytest.raises(BadInput, match=r"trials\.csv: cannot read the table"):
        build_report(run_dir, report_dir)
    after = {path.relative_to(report_dir): path.read_bytes() for path in report_dir.rglob("*") if path.is_file()}
    assert after == before

    # 2. The build fails half-way through writing (after some tables and figures were written).
    trial_rows().to_csv(run_dir / tables.TRIALS_FILE, index=False)
    saved = []
    real_save = study.report.save_figure

    def failing_save(figure, directory, name, **kwargs):
        if len(saved) == 3:
            raise OSError("disk full")
        saved.append(name)
        return real_save(figure, directory, name, **kwargs)

    monkeypatch.setattr(study.report, "save_figure", failing_save)
    with pytest.raises(OSError, match="disk full"):
        build_report(run_dir, report_dir)
    after = {path.relative_to(report_dir): path.read_bytes() for path in report_dir.rglob("*") if path.is_file()}
    assert after == before
    assert sorted(path.name for path in report_dir.parent.iterdir()) == ["index.html", "index.md", "toy-study"]  # no temporary leftovers


def test_a_rebuild_replaces_the_directory_whole(run_dir, tmp_path):
    report_dir = tmp_path / "report"
    write_classes(run_dir)
    build_report(run_dir, report_dir)
    assert (report_dir / "per_class.csv").is_file()
    (report_dir / "notes.txt").write_text("left by hand", encoding="utf-8")
    (run_dir / tables.CLASSES_FILE).unlink()
    build_report(run_dir, report_dir)
    assert not (report_dir / "per_class.csv").exists() and not (report_dir / "notes.txt").exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["index.html", "index.md", "report", "runs"]


def test_a_phase_free_run_treats_every_row_as_tuning(tmp_path):
    epochs, trials = epoch_rows(), trial_rows()
    run = write_run(tmp_path / "run", epochs.loc[epochs["phase"] == "tune"].drop(columns="phase"),
                    trials.loc[trials["phase"] == "tune"].drop(columns="phase"))
    report = build_report(run, tmp_path / "report")
    isolation = pd.read_csv(report.parent / "isolation.csv", dtype={"trial_id": str})
    assert isolation["trial_id"].tolist() == ["t1", "t3"]


def test_a_study_without_a_verdict_still_gets_every_table_and_figure(run_dir, tmp_path):
    report = build_report(run_dir, tmp_path / "report", compare=("lstm", "gru"))
    text = report.read_text(encoding="utf-8")
    verdict = text.split("## Verdict")[1].split("\n## ")[0]
    assert "**No verdict:** the verdict compares 'lstm' with 'gru', but the study has 'cnn', 'lstm'" in verdict
    assert "none (no verdict)" in text.split("## Caveats")[1].split("\n## ")[0]
    assert sorted(path.name for path in (report.parent / "figures").iterdir()) == sorted(
        f"{name}.{suffix}" for name in FIGURE_NAMES for suffix in ("png", "svg"))
    assert (report.parent / "isolation.csv").is_file() and (report.parent / "slopes.csv").is_file()


def test_missing_run_or_tables_are_bad_input(tmp_path, run_dir):
    with pytest.raises(BadInput, match=r"no study at .*nowhere: run `python -m study run \.\.\.` first"):
        build_report(tmp_path / "runs" / "nowhere", tmp_path / "report")
    (run_dir / tables.TRIALS_FILE).unlink()
    with pytest.raises(BadInput, match="no trials.csv in"):
        build_report(run_dir, tmp_path / "report")
    assert not (tmp_path / "report").exists()


def test_malformed_tables_are_bad_input(tmp_path):
    run = write_run(tmp_path / "a", trials=trial_rows().drop(columns=["status"]))
    with pytest.raises(BadInput, match="trials.csv: lacks column.*status"):
        build_report(run, tmp_path / "report")
    run = write_run(tmp_path / "b", epochs=epoch_rows().drop(columns=["train_loss"]))
    with pytest.raises(BadInput, match="epochs.csv: lacks column.*train_loss"):
        build_report(run, tmp_path / "report")
    run = write_run(tmp_path / "c")
    (run / tables.MANIFEST_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(BadInput, match="manifest.json: not valid JSON"):
        build_report(run, tmp_path / "report")
    run = write_run(tmp_path / "d", trials=pd.concat([trial_rows(), trial_rows().iloc[:1]]))
    with pytest.raises(BadInput, match=r"trials.csv: lists tune trial 't1' more than once"):
        build_report(run, tmp_path / "report")
    manifest = {**MANIFEST, "dataset": {"name": "toy"}}
    run = write_run(tmp_path / "e", manifest=manifest)
    with pytest.raises(BadInput, match=r"manifest.json: key 'dataset.class_names': .*names no classes"):
        build_report(run, tmp_path / "report")
    assert not (tmp_path / "report").exists()


def test_markdown_helpers():
    assert format_cell(0.123456) == "0.1235"
    assert format_cell(123456.0) == "1.235e+05"
    assert format_cell(np.int64(123456)) == "123456"
    assert format_cell(math.nan) == "n/a" and format_cell(pd.NA) == "n/a"
    assert format_cell("a|b") == "a\\|b"
    table = markdown_table(pd.DataFrame({"name": ["x"], "value": [2.0 / 3.0]}))
    assert table == "| name | value |\n| --- | ---: |\n| x | 0.6667 |"
    assert markdown_table(pd.DataFrame({"name": ["<b>"]})) == "| name |\n| --- |\n| &lt;b&gt; |"


def test_report_of_100000_epoch_rows(tmp_path):
    rng = np.random.default_rng(0)
    trial_count, epoch_count = 2000, 50
    epoch = np.tile(np.arange(1, epoch_count + 1), trial_count)
    trial_ids = np.array([f"trial{index:05d}" for index in range(trial_count)])
    architecture = np.where(np.arange(trial_count) % 2 == 0, "lstm", "cnn")
    depth = 1 + (np.arange(trial_count) // 2) % 2
    dropout = rng.choice([0.0, 0.25, 0.5], trial_count)
    weight_decay = 10 ** rng.uniform(-5, -2, trial_count)
    epochs = pd.DataFrame({
        "trial_id": np.repeat(trial_ids, epoch_count), "phase": "tune",
        "architecture": np.repeat(architecture, epoch_count), "depth": np.repeat(depth, epoch_count),
        "dropout": np.repeat(dropout, epoch_count), "weight_decay": np.repeat(weight_decay, epoch_count),
        "weight_decay_type": "l2", **FIXED, "seed": 7, "epoch": epoch,
        "train_loss": 1.0 / epoch, "val_loss": 0.5 + 0.001 * (epoch - 20) ** 2 + rng.normal(0, 0.01, epoch.size),
        "train_balanced_accuracy": 0.9, "val_accuracy": rng.random(epoch.size), "fit_loss": 1.0,
    })
    trials = pd.DataFrame({
        "trial_id": trial_ids, "phase": "tune", "status": "completed", "architecture": architecture,
        "depth": depth, "dropout": dropout, "weight_decay": weight_decay, "weight_decay_type": "l2",
        "parameter_count": 1000, "test_accuracy": rng.random(trial_count),
    })
    run = write_run(tmp_path / "big", epochs, trials)
    report = build_report(run, tmp_path / "report")  # speed is measured by `make bench`, not here
    assert len(pd.read_csv(report.parent / "isolation.csv")) == 4
    assert pd.read_csv(report.parent / "trainability.csv")["settings"].tolist() == [500, 500, 500, 500]


# ---------------------------------------------------------------- per-class test scores

# trial id, phase, class, precision, recall, f1, support. "N" and "~" must stay class names, not missing values.
CLASS_ROWS = [
    ("t1", "tune", "~", 0.5, 0.25, 1 / 3, 8), ("t1", "tune", "N", 0.9, 0.95, 0.925, 80),
    ("t2", "tune", "~", 0.1, 0.1, 0.1, 8), ("t2", "tune", "N", 0.8, 0.8, 0.8, 80),
    ("t3", "tune", "~", 0.0, 0.0, 0.0, 8), ("t3", "tune", "N", 0.91, 1.0, 0.953, 80),
    # A repeat with better scores: the per-class section shows tuning winners only.
    ("r1", "repeat", "~", 1.0, 1.0, 1.0, 8), ("r1", "repeat", "N", 1.0, 1.0, 1.0, 80),
]


def write_classes(run_dir: Path, rows=CLASS_ROWS) -> None:
    frame = pd.DataFrame(rows, columns=["trial_id", "phase", "class_name", "precision", "recall", "f1", "support"])
    frame[tables.CLASS_COLUMNS].to_csv(run_dir / tables.CLASSES_FILE, index=False)


def trials_with_test_summaries() -> pd.DataFrame:
    trials = trial_rows()
    summaries = {"t1": (0.629, 0.6), "t3": (0.4765, 0.5)}  # macro-F1, balanced accuracy (mean recall)
    for trial_id, (macro_f1, balanced) in summaries.items():
        trials.loc[trials["trial_id"] == trial_id, ["test_macro_f1", "test_balanced_accuracy"]] = [macro_f1, balanced]
    return trials


def test_per_class_table_lists_each_winner_class_by_class(tmp_path):
    run = write_run(tmp_path / "run", trials=trials_with_test_summaries())
    write_classes(run)
    isolation = isolation_table(the_trial_frame(tables.read_trials(run)), SPACE)
    table = per_class_table(isolation, tables.read_classes(run), class_names=["N", "~"])
    assert table.columns.tolist() == ["architecture", "depth", "trial_id", "class_name", "precision", "recall", "f1",
                                      "support", "test_accuracy", "test_macro_f1", "test_balanced_accuracy"]
    assert table[["architecture", "depth", "trial_id", "class_name"]].values.tolist() == [
        ["lstm", 2, "t1", "N"], ["lstm", 2, "t1", "~"], ["cnn", 1, "t3", "N"], ["cnn", 1, "t3", "~"]]
    assert table["recall"].tolist() == [0.95, 0.25, 1.0, 0.0]
    assert table["support"].tolist() == [80, 8, 80, 8]
    assert table["test_macro_f1"].tolist() == [0.629, 0.629, 0.4765, 0.4765]
    assert table["test_balanced_accuracy"].tolist() == [0.6, 0.6, 0.5, 0.5]
    assert table["test_accuracy"].tolist() == [0.81, 0.81, 0.70, 0.70]
    # Without class names the order of classes.csv is kept.
    unordered = per_class_table(isolation, tables.read_classes(run))
    assert unordered["class_name"].tolist() == ["~", "N", "~", "N"]


def test_report_has_a_per_class_section_only_when_the_run_has_classes_csv(tmp_path):
    run = write_run(tmp_path / "run", trials=trials_with_test_summaries())
    without = build_report(run, tmp_path / "report")
    assert "Per-class test scores" not in without.read_text(encoding="utf-8")
    assert not (without.parent / "per_class.csv").exists()

    write_classes(run)
    report = build_report(run, tmp_path / "report")
    per_class = pd.read_csv(report.parent / "per_class.csv", dtype={"trial_id": str, "class_name": str},
                            keep_default_na=False)
    assert per_class[["trial_id", "class_name", "f1"]].values.tolist() == [
        ["t1", "N", 0.925], ["t1", "~", pytest.approx(1 / 3)], ["t3", "N", 0.953], ["t3", "~", 0.0]]
    text = report.read_text(encoding="utf-8")
    assert text.index("## Problem trials") < text.index("## Per-class test scores") < text.index("## Kendall tau")
    section = text.split("## Per-class test scores")[1].split("\n## ")[0]
    assert "| architecture | depth | trial_id | test_accuracy | test_macro_f1 | test_balanced_accuracy |" in section
    assert "| lstm | 2 | t1 | 0.81 | 0.629 | 0.6 |" in section
    assert "| cnn | 1 | t3 | 0.7 | 0.4765 | 0.5 |" in section
    assert "| lstm | 2 | t1 | ~ | 0.5 | 0.25 | 0.3333 | 8 |" in section
    assert "| cnn | 1 | t3 | N | 0.91 | 1 | 0.953 | 80 |" in section
    assert "r1" not in section and "t2" not in section

    write_classes(run, [row for row in CLASS_ROWS if row[0] != "t1"] + [CLASS_ROWS[2]])
    with pytest.raises(BadInput, match=r"classes.csv: lists class '~' of tuning trial 't2' more than once"):
        build_report(run, tmp_path / "report")
    (run / tables.CLASSES_FILE).write_text("trial_id,phase,class_name\nt1,tune,N\n", encoding="utf-8")
    with pytest.raises(BadInput, match=r"classes.csv: lacks column\(s\): precision, recall, f1, support"):
        build_report(run, tmp_path / "report")
    assert (tmp_path / "report" / "per_class.csv").is_file()  # bad input left the last report as it was


# ---------------------------------------------------------------- layering


def _imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_only_the_cli_and_the_benchmarks_import_the_report_module():
    importers = sorted(str(path.relative_to(PROJECT)) for path in (PROJECT / "study").rglob("*.py")
                       if "study.report" in _imported_modules(path))
    assert importers == ["study/bench.py", "study/cli.py"]
    # The report layer's own modules import nothing of it either way round but downwards.
    for name in ("html_report.py", "markdown.py", "figures.py"):
        assert not {"study.report"} & _imported_modules(PROJECT / "study" / name)
    for path in (PROJECT / "study" / "statistics").glob("*.py"):
        imported = _imported_modules(path)
        assert not {module for module in imported if module.split(".")[:2] in (
            ["study", "report"], ["study", "figures"], ["study", "markdown"], ["study", "html_report"],
            ["study", "cli"])}, path


def test_the_package_has_no_import_cycle():
    tool = PROJECT.parent / "shared" / "tools" / "import_cycles.py"
    if not tool.is_file():
        pytest.skip(f"{tool} is not here")
    result = subprocess.run([sys.executable, str(tool), "study"], cwd=PROJECT, capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
