"""The study tables: file names, column contract and readers.

``runs/<study>/epochs.csv`` holds one row per (trial, epoch); ``trials.csv`` one
row per trial; ``manifest.json`` what the study was. Tests, reports and later
issues rely on these columns, so they live in one place.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

EPOCHS_FILE = "epochs.csv"
TRIALS_FILE = "trials.csv"
MANIFEST_FILE = "manifest.json"
CLASSES_FILE = "classes.csv"
GRADIENTS_FILE = "gradients.csv"
RECEPTIVE_FIELDS_FILE = "receptive_fields.csv"

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
    "receptive_field", "effective_receptive_field", "epochs_run", "best_epoch", "best_val_loss", "best_val_accuracy", "gap_at_best", "final_gap",
    "gap_growth", "overfit_onset", "test_loss", "test_accuracy", "test_macro_f1",
    "test_balanced_accuracy", "seconds", "gradient_seconds", "message",
]



def epoch_columns(factors: Sequence[str] = ()) -> list[str]:
    """epochs.csv's columns for a study whose scientific dataset parameters are ``factors`` (factor names): each
    is a column after the hyperparameters."""
    return _with_factors(EPOCH_COLUMNS, factors)


def trial_columns(factors: Sequence[str] = ()) -> list[str]:
    """trials.csv's columns for a study whose scientific dataset parameters are ``factors`` (see epoch_columns)."""
    return _with_factors(TRIAL_COLUMNS, factors)


def _with_factors(columns: list[str], factors: Sequence[str]) -> list[str]:
    position = columns.index(HYPERPARAMETER_COLUMNS[-1]) + 1
    return [*columns[:position], *factors, *columns[position:]]


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

#: Effective receptive field profiles (Luo et al. 2016), one row per (trial, input offset), measured at the
#: restored best epoch: ``mass`` is the share of the mean absolute gradient of one output position of the last
#: sequence layer (the last step where the model reads the last step, else the centre) with respect to the input
#: sample at ``offset`` from that position (negative: earlier), over a fixed training batch; a trial's masses sum
#: to 1. trials.csv's ``effective_receptive_field`` is the fewest samples holding 95% of the mass.
RECEPTIVE_FIELD_COLUMNS = ["trial_id", "phase", "offset", "mass"]
#: The share of the gradient mass the effective receptive field holds.
EFFECTIVE_FIELD_MASS = 0.95

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


def read_receptive_fields(run_dir: Path) -> pd.DataFrame:
    """Read receptive_fields.csv with trial ids as strings."""
    return pd.read_csv(Path(run_dir) / RECEPTIVE_FIELDS_FILE, dtype={"trial_id": str})


def read_manifest(run_dir: Path) -> dict[str, Any]:
    with open(Path(run_dir) / MANIFEST_FILE, encoding="utf-8") as handle:
        return json.load(handle)
