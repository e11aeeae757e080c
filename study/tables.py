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
GRADIENTS_FILE = "gradients.csv"

#: Every hyperparameter a trial row carries, in column order (see study.config.HYPERPARAMETERS).
HYPERPARAMETER_COLUMNS = [
    "architecture", "depth", "width", "kernel_size", "dropout", "recurrent_dropout",
    "weight_decay", "weight_decay_type", "learning_rate", "clipnorm", "epochs", "batch_size", "parameter_budget",
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
    "receptive_field", "epochs_run", "best_epoch", "best_val_loss", "best_val_accuracy", "gap_at_best", "final_gap",
    "gap_growth", "overfit_onset", "test_loss", "test_accuracy", "test_macro_f1",
    "test_balanced_accuracy", "seconds", "gradient_seconds", "message",
]

#: Per-class test scores at the restored best epoch: one row per (trial, class).
CLASS_COLUMNS = ["trial_id", "phase", "class_name", "precision", "recall", "f1", "support"]

#: Per-layer gradient norms (``training: {record_gradients: true}``): one row per (trial, epoch, layer, kind).
#: Epoch 0 is the initialisation, before the first update. ``norm`` is the L2 norm of the gradient of the mean
#: cross-entropy (no penalty) on a fixed training batch in inference mode, over every weight of that kind in
#: the layer. Kinds: input_kernel (recurrent input kernels and dense kernels), recurrent_kernel,
#: convolution_kernel, bias, normalisation (BatchNorm/LayerNorm scales and offsets).
GRADIENT_COLUMNS = ["trial_id", "phase", "epoch", "layer", "layer_index", "kind", "norm"]
GRADIENT_KINDS = ("input_kernel", "recurrent_kernel", "convolution_kernel", "bias", "normalisation")
#: The kinds that make a layer's weight-gradient norm in the first-to-last-layer ratio (biases and
#: normalisation offsets are left out: they are not the path gradients vanish along).
KERNEL_KINDS = ("input_kernel", "recurrent_kernel", "convolution_kernel")

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


def read_gradients(run_dir: Path) -> pd.DataFrame:
    """Read gradients.csv with trial ids as strings."""
    return pd.read_csv(Path(run_dir) / GRADIENTS_FILE, dtype={"trial_id": str, "layer": str, "kind": str})


def read_manifest(run_dir: Path) -> dict[str, Any]:
    with open(Path(run_dir) / MANIFEST_FILE, encoding="utf-8") as handle:
        return json.load(handle)
