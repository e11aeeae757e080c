"""The report of a hand-made run directory, with every expected number worked out by hand."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from study import tables
from study.errors import BadInput
from study.report import (
    boundary_position,
    boundary_table,
    build_report,
    format_cell,
    isolation_table,
    markdown_table,
    median_table,
    per_class_table,
    report_frames,
)

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
}

MANIFEST = {
    "study": "toy-study",
    "space": SPACE,
    "dataset": {"name": "toy", "content_hash": "abc123def456"},
    "seeds": {"base": 7},
    "versions": {"keras": "3"},
    "backend": "tensorflow",
    "started": "2025-01-01T00:00:00",
    "finished": "2025-01-01T01:00:00",
}

# trial id: (phase, status, architecture, depth, dropout, weight_decay, weight_decay_type,
#            parameter_count, test_accuracy, val_loss per epoch, train_loss per epoch)
TRIALS = {
    # Cell (lstm, 2). gaps .1 .1 .1 .3: best 3 (0.4), final .3, growth (.3-.1)/1 = .2,
    # onset: threshold .45, epoch 4 (.5) above -> 4.
    "t1": ("tune", "completed", "lstm", 2, 0.5, 1e-3, "l2", 1000, 0.81,
           [1.0, 0.6, 0.4, 0.5], [0.9, 0.5, 0.3, 0.2]),
    # gaps .05 .1 .1 .1: best 4 (0.55), gap .1, final .1, growth NaN (one epoch), no onset.
    "t2": ("tune", "completed", "lstm", 2, 0.25, 1e-4, "decoupled", 1200, 0.78,
           [1.0, 0.7, 0.6, 0.55], [0.95, 0.6, 0.5, 0.45]),
    # Cell (cnn, 1). Tie at .3 on epochs 3 and 4 -> best 3; gaps .1 .1 .1 .2: gap .1, final .2,
    # growth .1, threshold .35, epoch 4 within -> no onset.
    "t3": ("tune", "completed", "cnn", 1, 0.25, 1e-4, "decoupled", 500, 0.70,
           [0.8, 0.5, 0.3, 0.3], [0.7, 0.4, 0.2, 0.1]),
    # best 2 (.6); gaps .05 .1 .3 .6: gap .1, final .6, growth over (2,.1)(3,.3)(4,.6) = .25,
    # threshold .65, epochs 3 (.7) and 4 (.9) above -> onset 3.
    "t4": ("tune", "completed", "cnn", 1, 0.0, 1e-2, "l2", 600, 0.74,
           [0.9, 0.6, 0.7, 0.9], [0.85, 0.5, 0.4, 0.3]),
    # Failed after one epoch with a (misleadingly) low loss: must never win.
    "t5": ("tune", "failed", "cnn", 1, 0.5, 1e-5, "l2", 550, math.nan, [0.1], [0.1]),
    # A repeat of t1's configuration with a lower loss: not part of tuning, must be ignored.
    "r1": ("repeat", "completed", "lstm", 2, 0.5, 1e-3, "l2", 1000, 0.99,
           [0.3, 0.05, 0.1, 0.2], [0.3, 0.01, 0.01, 0.01]),
}

FIXED = {"width": 16, "kernel_size": 5, "recurrent_dropout": 0.0, "learning_rate": 0.001, "epochs": 4, "batch_size": 32}


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
                "train_balanced_accuracy": 0.5, "val_loss": val_loss,
                "val_accuracy": round(0.6 + 0.01 * (index + 1), 2), "val_macro_f1": 0.5,
                "val_balanced_accuracy": 0.5,
                # Keras' running loss with dropout on: deliberately unrelated, it must not matter.
                "fit_loss": 5.0 - index, "seconds": 1.0, "eval_seconds": 0.1,
            })
    return pd.DataFrame(rows)[tables.EPOCH_COLUMNS]


def trial_rows() -> pd.DataFrame:
    rows = []
    for trial_id, (phase, status, architecture, depth, dropout, weight_decay, decay_type, count, test,
                   val_losses, _train) in TRIALS.items():
        rows.append({
            "trial_id": trial_id, "phase": phase, "status": status, "architecture": architecture,
            "depth": depth, "dropout": dropout, "weight_decay": weight_decay, "weight_decay_type": decay_type,
            **FIXED, "seed": 7, "parameter_count": count, "epochs_run": 99,
            # Wrong on purpose: the report must recompute measures from epochs.csv.
            "best_epoch": 1, "best_val_loss": 0.01 if trial_id == "t2" else 9.9, "best_val_accuracy": 0.0,
            "gap_at_best": 9.9, "final_gap": 9.9, "gap_growth": 9.9, "overfit_onset": 1,
            "test_loss": 1.0, "test_accuracy": test, "test_macro_f1": 0.5, "test_balanced_accuracy": 0.5,
            "seconds": 4.0, "message": "ResourceExhaustedError: out of memory" if status == "failed" else "",
        })
    return pd.DataFrame(rows)[tables.TRIAL_COLUMNS]


def write_run(run_dir: Path, epochs: pd.DataFrame | None = None, trials: pd.DataFrame | None = None) -> Path:
    run_dir.mkdir(parents=True)
    (epoch_rows() if epochs is None else epochs).to_csv(run_dir / tables.EPOCHS_FILE, index=False)
    (trial_rows() if trials is None else trials).to_csv(run_dir / tables.TRIALS_FILE, index=False)
    (run_dir / tables.MANIFEST_FILE).write_text(json.dumps(MANIFEST, indent=2), encoding="utf-8")
    return run_dir


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    return write_run(tmp_path / "runs" / "toy-study")


@pytest.fixture()
def frames(run_dir: Path):
    return report_frames(tables.read_epochs(run_dir), tables.read_trials(run_dir), SPACE)


def test_isolation_picks_the_lowest_validation_loss_of_completed_tuning_trials(frames):
    isolation = frames.isolation
    # Cells in the order the space lists them (lstm before cnn), not alphabetical.
    assert isolation[["architecture", "depth", "trial_id"]].values.tolist() == [["lstm", 2, "t1"], ["cnn", 1, "t3"]]
    lstm, cnn = isolation.iloc[0], isolation.iloc[1]
    assert (lstm["dropout"], lstm["weight_decay"], lstm["weight_decay_type"]) == (0.5, 1e-3, "l2")
    assert (cnn["dropout"], cnn["weight_decay"], cnn["weight_decay_type"]) == (0.25, 1e-4, "decoupled")
    assert isolation["parameter_count"].tolist() == [1000, 500]
    assert isolation["best_epoch"].tolist() == [3, 3]
    assert isolation["best_val_loss"].tolist() == [0.4, 0.3]
    assert isolation["best_val_accuracy"].tolist() == [0.63, 0.63]
    assert isolation["gap_at_best"].tolist() == pytest.approx([0.1, 0.1])
    assert isolation["final_gap"].tolist() == pytest.approx([0.3, 0.2])
    assert isolation["gap_growth"].tolist() == pytest.approx([0.2, 0.1])
    assert lstm["overfit_onset"] == 4 and pd.isna(cnn["overfit_onset"])
    assert isolation["epochs_run"].tolist() == [4, 4]
    assert isolation["test_accuracy"].tolist() == [0.81, 0.70]


def test_medians_per_cell(frames):
    medians = frames.medians.set_index(["architecture", "depth"])
    lstm, cnn = medians.loc[("lstm", 2)], medians.loc[("cnn", 1)]
    assert list(frames.medians["architecture"]) == ["lstm", "cnn"]
    assert (lstm["completed_trials"], lstm["failed_trials"]) == (2, 0)
    assert (cnn["completed_trials"], cnn["failed_trials"]) == (2, 1)
    assert lstm["median_best_epoch"] == 3.5 and cnn["median_best_epoch"] == 2.5
    assert lstm["median_best_val_loss"] == pytest.approx(0.475)
    assert cnn["median_best_val_loss"] == pytest.approx(0.45)
    assert lstm["median_gap_at_best"] == pytest.approx(0.1) and cnn["median_gap_at_best"] == pytest.approx(0.1)
    assert lstm["median_final_gap"] == pytest.approx(0.2) and cnn["median_final_gap"] == pytest.approx(0.4)
    # lstm: growth [0.2, NaN] -> 0.2; cnn: [0.1, 0.25] -> 0.175.
    assert lstm["median_gap_growth"] == pytest.approx(0.2) and cnn["median_gap_growth"] == pytest.approx(0.175)
    assert lstm["median_overfit_onset"] == 4 and cnn["median_overfit_onset"] == 3
    assert lstm["onset_fraction"] == 0.5 and cnn["onset_fraction"] == 0.5
    assert lstm["median_test_accuracy"] == pytest.approx(0.795) and cnn["median_test_accuracy"] == pytest.approx(0.72)


def test_boundaries_flag_the_value_on_an_edge_only(frames):
    boundaries = frames.boundaries
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


def test_the_frames_are_pure_functions_of_the_tables(frames, run_dir):
    trials = tables.read_trials(run_dir)
    isolation = isolation_table(frames.measures, trials, SPACE)
    pd.testing.assert_frame_equal(isolation, frames.isolation)
    pd.testing.assert_frame_equal(median_table(frames.measures, trials, SPACE), frames.medians)
    pd.testing.assert_frame_equal(boundary_table(isolation, SPACE), frames.boundaries)
    # Measures are recomputed for tuning rows only (the repeat r1 is not in them).
    assert sorted(frames.measures["trial_id"]) == ["t1", "t2", "t3", "t4", "t5"]


def test_build_report_writes_the_tables_and_markdown(run_dir, tmp_path):
    report_path = build_report(run_dir, tmp_path / "report")
    assert report_path == tmp_path / "report" / "report.md"
    names = sorted(path.name for path in report_path.parent.iterdir())
    assert names == ["boundaries.csv", "failed.csv", "isolation.csv", "medians.csv", "report.html", "report.md"]

    isolation = pd.read_csv(report_path.parent / "isolation.csv", dtype={"trial_id": str})
    assert isolation["trial_id"].tolist() == ["t1", "t3"]
    medians = pd.read_csv(report_path.parent / "medians.csv")
    assert medians["failed_trials"].tolist() == [0, 1] and medians["completed_trials"].tolist() == [2, 2]
    boundaries = pd.read_csv(report_path.parent / "boundaries.csv")
    assert boundaries["on_boundary"].sum() == 1
    failed = pd.read_csv(report_path.parent / "failed.csv", dtype={"trial_id": str})
    assert failed["trial_id"].tolist() == ["t5"]

    text = report_path.read_text(encoding="utf-8")
    assert text.startswith("# Study report: toy-study\n")
    assert "toy (content hash `abc123def456`)" in text
    assert "random (max_trials=5, seed=7)" in text
    assert "width=16" in text and "learning_rate=0.001" in text
    assert "| architecture | depth | trial_id | dropout | weight_decay |" in text
    assert "| lstm | 2 | t1 | 0.5 | 0.001 | l2 | 1000 | 3 | 0.4 | 0.63 | 0.1 | 0.3 | 0.2 | 4 | 4 | 0.81 |" in text
    assert "| cnn | 1 | t3 | 0.25 | 0.0001 | decoupled | 500 | 3 | 0.3 | 0.63 | 0.1 | 0.2 | 0.1 | n/a | 4 | 0.7 |" in text
    assert "| lstm | 2 | 2 | 0 | 3.5 | 0.475 | 0.1 | 0.2 | 0.2 | 4 | 0.5 | 0.795 |" in text
    assert "| cnn | 1 | 2 | 1 | 2.5 | 0.45 | 0.1 | 0.4 | 0.175 | 3 | 0.5 | 0.72 |" in text
    warnings = text.split("## Boundary warnings")[1].split("##")[0]
    assert warnings.count("\n- ") == 1 and "best dropout = 0.5 is on the upper edge" in warnings
    assert "1 failed tuning trial(s)." in text and "architecture=cnn, depth=1: 1" in text
    assert "ResourceExhaustedError" in text
    assert "## How to read this" in text and "inference mode" in text and "0.05 nats" in text


def test_report_is_rebuilt_identically_from_a_copy_elsewhere(run_dir, tmp_path):
    first = build_report(run_dir, tmp_path / "first").parent
    copy = shutil.copytree(run_dir, tmp_path / "elsewhere" / "deeper" / "renamed")
    second = build_report(copy, tmp_path / "second").parent
    files = sorted(path.name for path in first.iterdir())
    assert files == sorted(path.name for path in second.iterdir())
    for name in files:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_tolerance_changes_the_onset(run_dir, tmp_path):
    # With tolerance 0.2, t1 (threshold 0.6, final 0.5) and t4 (threshold 0.8, final 0.9 -> onset 4) change.
    report = build_report(run_dir, tmp_path / "report", tolerance=0.2)
    medians = pd.read_csv(report.parent / "medians.csv").set_index("architecture")
    assert math.isnan(medians.loc["lstm", "median_overfit_onset"]) and medians.loc["lstm", "onset_fraction"] == 0
    assert medians.loc["cnn", "median_overfit_onset"] == 4
    with pytest.raises(BadInput, match="tolerance"):
        build_report(run_dir, tmp_path / "report", tolerance=-1)


def test_a_phase_free_run_treats_every_row_as_tuning(tmp_path):
    epochs = epoch_rows()
    trials = trial_rows()
    keep = epochs["phase"] == "tune"
    run = write_run(tmp_path / "run", epochs.loc[keep].drop(columns="phase"),
                    trials.loc[trials["phase"] == "tune"].drop(columns="phase"))
    report = build_report(run, tmp_path / "report")
    isolation = pd.read_csv(report.parent / "isolation.csv", dtype={"trial_id": str})
    assert isolation["trial_id"].tolist() == ["t1", "t3"]


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
    with pytest.raises(BadInput, match="train_loss"):
        build_report(run, tmp_path / "report")
    run = write_run(tmp_path / "c")
    (run / tables.MANIFEST_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(BadInput, match="manifest.json: not valid JSON"):
        build_report(run, tmp_path / "report")


def test_markdown_helpers():
    assert format_cell(0.123456) == "0.1235"
    assert format_cell(123456.0) == "1.235e+05"
    assert format_cell(np.int64(123456)) == "123456"
    assert format_cell(math.nan) == "n/a" and format_cell(pd.NA) == "n/a"
    assert format_cell("a|b") == "a\\|b"
    table = markdown_table(pd.DataFrame({"name": ["x"], "value": [2.0 / 3.0]}))
    assert table == "| name | value |\n| --- | ---: |\n| x | 0.6667 |"


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
        "val_accuracy": rng.random(epoch.size), "fit_loss": 1.0,
    })
    trials = pd.DataFrame({
        "trial_id": trial_ids, "phase": "tune", "status": "completed", "architecture": architecture,
        "depth": depth, "dropout": dropout, "weight_decay": weight_decay, "weight_decay_type": "l2",
        "parameter_count": 1000, "test_accuracy": rng.random(trial_count),
    })
    run = write_run(tmp_path / "big", epochs, trials)
    report = build_report(run, tmp_path / "report")  # speed is measured by `make bench`, not here
    assert len(pd.read_csv(report.parent / "isolation.csv")) == 4


def test_boundary_table_skips_hyperparameters_that_do_not_apply_to_a_cell():
    space = {"hyperparameters": {
        "architecture": {"role": "scientific", "values": ["lstm", "cnn"]},
        "kernel_size": {"role": "nuisance", "values": [3, 5, 7]},
    }}
    isolation = pd.DataFrame({"architecture": ["lstm", "cnn"], "trial_id": ["a", "b"], "kernel_size": [math.nan, 7.0]})
    boundaries = boundary_table(isolation, space)
    assert boundaries[["architecture", "value", "on_boundary", "edge"]].values.tolist() == [["cnn", 7.0, True, "upper"]]


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
    frames = report_frames(tables.read_epochs(run), tables.read_trials(run), SPACE)
    table = per_class_table(frames.isolation, tables.read_classes(run), tables.read_trials(run), SPACE,
                            class_names=["N", "~"])
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
    unordered = per_class_table(frames.isolation, tables.read_classes(run), tables.read_trials(run), SPACE)
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
        ["t1", "~", pytest.approx(1 / 3)], ["t1", "N", 0.925], ["t3", "~", 0.0], ["t3", "N", 0.953]]
    section = report.read_text(encoding="utf-8").split("## Per-class test scores")[1].split("\n## ")[0]
    assert "| architecture | depth | trial_id | test_accuracy | test_macro_f1 | test_balanced_accuracy |" in section
    assert "| lstm | 2 | t1 | 0.81 | 0.629 | 0.6 |" in section
    assert "| cnn | 1 | t3 | 0.7 | 0.4765 | 0.5 |" in section
    assert "| lstm | 2 | t1 | ~ | 0.5 | 0.25 | 0.3333 | 8 |" in section
    assert "| cnn | 1 | t3 | N | 0.91 | 1 | 0.953 | 80 |" in section
    assert "r1" not in section and "t2" not in section

    write_classes(run, [row for row in CLASS_ROWS if row[0] != "t1"] + [CLASS_ROWS[2]])
    with pytest.raises(BadInput, match=r"classes.csv: .*class '~' of tuning trial 't2' more than once"):
        build_report(run, tmp_path / "report")
    (run / tables.CLASSES_FILE).write_text("trial_id,phase,class_name\nt1,tune,N\n", encoding="utf-8")
    with pytest.raises(BadInput, match=r"classes.csv: lacks column\(s\): precision, recall, f1, support"):
        build_report(run, tmp_path / "report")
    (run / tables.CLASSES_FILE).unlink()
    build_report(run, tmp_path / "report")
    assert not (tmp_path / "report" / "per_class.csv").exists()
