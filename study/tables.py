"""The study tables: file names, column contract and readers.

``runs/<study>/epochs.csv`` holds one row per (trial, epoch); ``trials.csv`` one
row per trial; ``manifest.json`` what the study was. Tests, reports and later
issues rely on these columns, so they live in one place.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

EPOCHS_FILE = "epochs.csv"
TRIALS_FILE = "trials.csv"
MANIFEST_FILE = "manifest.json"
CLASSES_FILE = "classes.csv"

#: Every hyperparameter a trial row carries, in column order (see study.config.HYPERPARAMETERS).
HYPERPARAMETER_COLUMNS = [
    "architecture", "depth", "width", "kernel_size", "dropout", "recurrent_dropout",
    "weight_decay", "weight_decay_type", "learning_rate", "epochs", "batch_size",
]

#: Per-epoch metrics. ``train_*`` are re-evaluated in inference mode on a fixed
#: training subset as the pure data loss (no dropout, BatchNorm in inference mode,
#: no regularisation penalty); ``val_*`` likewise on the validation split;
#: ``fit_loss`` is Keras' own running training loss, kept for comparison only.
EPOCH_METRIC_COLUMNS = [
    "train_loss", "train_accuracy", "train_macro_f1", "train_balanced_accuracy",
    "val_loss", "val_accuracy", "val_macro_f1", "val_balanced_accuracy",
    "fit_loss", "seconds", "eval_seconds",
]

EPOCH_COLUMNS = ["trial_id", "phase", *HYPERPARAMETER_COLUMNS, "seed", "epoch", *EPOCH_METRIC_COLUMNS]

TRIAL_COLUMNS = [
    "trial_id", "phase", "status", *HYPERPARAMETER_COLUMNS, "seed", "setting", "parent_trial_id", "epochs_allotted", "parameter_count",
    "epochs_run", "best_epoch", "best_val_loss", "best_val_accuracy", "gap_at_best", "final_gap",
    "gap_growth", "overfit_onset", "test_loss", "test_accuracy", "test_macro_f1",
    "test_balanced_accuracy", "seconds", "message",
]

#: Per-class test scores at the restored best epoch: one row per (trial, class).
CLASS_COLUMNS = ["trial_id", "phase", "class_name", "precision", "recall", "f1", "support"]

#: Trial statuses as written to trials.csv.
COMPLETED = "completed"
FAILED = "failed"        # crashed: an exception, no usable curve
DIVERGED = "diverged"    # a loss became NaN or infinite; the curve up to then is kept


def read_epochs(run_dir: Path) -> pd.DataFrame:
    """Read epochs.csv with trial ids as strings."""
    return pd.read_csv(Path(run_dir) / EPOCHS_FILE, dtype={"trial_id": str})


def read_trials(run_dir: Path) -> pd.DataFrame:
    """Read trials.csv with trial ids (and the ids of continued trials) as strings."""
    return pd.read_csv(Path(run_dir) / TRIALS_FILE, dtype={"trial_id": str, "parent_trial_id": str, "message": str})


def read_classes(run_dir: Path) -> pd.DataFrame:
    """Read classes.csv (per-class test scores) with trial ids as strings."""
    return pd.read_csv(Path(run_dir) / CLASSES_FILE, dtype={"trial_id": str, "class_name": str},
                       keep_default_na=False, na_values=[""])


def read_manifest(run_dir: Path) -> dict[str, Any]:
    with open(Path(run_dir) / MANIFEST_FILE, encoding="utf-8") as handle:
        return json.load(handle)
