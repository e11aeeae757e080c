"""What happened to every trial: crashed, diverged, failed to train, overfitting or fitting.

A trial *trained* when its best inference-mode train balanced accuracy rose
clearly above chance: more than ``trained_above_chance`` above 1/K, the balanced
accuracy of any constant prediction whatever the class frequencies. Accuracy,
not loss, decides it: a model can learn (train accuracy 0.85, validation 0.74)
while its loss stays above half the chance loss, the old rule that called every
demo trial "failed".

* ``crashed``: trials.csv says the trial raised an exception, or it has no epoch rows;
* ``diverged``: a train, validation or Keras fit loss became NaN or infinite (or
  trials.csv says so); its finite epochs are kept for the curves, but it counts
  against trainability and is left out of the overfitting measures, so a curve
  cut short by a NaN is never read as early overfitting;
* ``failed to train``: never clearly above chance;
* ``overfitting``: trained, and at its last epoch the validation loss is more
  than ``onset_tolerance`` nats above its minimum while the train loss fell more
  than ``train_fall_fraction`` below its value at the best validation epoch;
* ``fitting``: trained and not overfitting by its last epoch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd
from scipy import stats

from study.config import AnalysisConfig
from study.errors import BadInput
from study.measures import finite

CRASHED = "crashed"
DIVERGED = "diverged"
FAILED_TO_TRAIN = "failed to train"
OVERFITTING = "overfitting"
FITTING = "fitting"
CLASSES = (CRASHED, DIVERGED, FAILED_TO_TRAIN, OVERFITTING, FITTING)
#: Classes that count against trainability.
NOT_TRAINED = (CRASHED, DIVERGED, FAILED_TO_TRAIN)


@dataclass(frozen=True)
class Chance:
    """Chance levels of a dataset: ``loss`` is the cross-entropy of always predicting the training class
    frequencies (ln K for balanced classes), ``balanced_accuracy`` is 1/K."""

    num_classes: int
    loss: float

    @property
    def balanced_accuracy(self) -> float:
        return 1.0 / self.num_classes


def constant_prediction_loss(class_counts: Iterable[float]) -> float:
    """Cross-entropy (nats) of always predicting the class frequencies: the chance loss."""
    counts = np.asarray(list(class_counts), dtype=float)
    if counts.size < 2 or np.any(counts < 0) or counts.sum() <= 0:
        raise ValueError(f"class counts must be >= 2 non-negative numbers with a positive sum, got {counts.tolist()}")
    return float(stats.entropy(counts))


def chance_from_manifest(manifest: Mapping[str, Any]) -> Chance:
    """The chance levels from a manifest's dataset record (class names, training class counts)."""
    dataset = manifest.get("dataset") if isinstance(manifest, Mapping) else None
    dataset = dataset if isinstance(dataset, Mapping) else {}
    names = dataset.get("class_names") or []
    counts = (dataset.get("class_counts") or {}).get("train") if isinstance(dataset.get("class_counts"), Mapping) else None
    if not isinstance(names, list):
        names = []
    if not names and not counts:
        raise BadInput("the manifest's dataset record names no classes (dataset.class_names), so chance levels "
                       "are unknown", key="dataset.class_names")
    num_classes = len(names) if names else len(counts)
    if num_classes < 2:
        raise BadInput(f"needs at least 2 classes, got {num_classes}", key="dataset.class_names")
    try:
        loss = constant_prediction_loss(counts.values()) if isinstance(counts, Mapping) and counts \
            else math.log(num_classes)
    except (TypeError, ValueError) as error:
        raise BadInput(f"class counts are not usable ({error})", key="dataset.class_counts") from None
    return Chance(num_classes=num_classes, loss=loss)


def classify_trials(epochs: pd.DataFrame, *, chance: Chance, settings: AnalysisConfig = AnalysisConfig(),
                    statuses: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per trial (trial_id, phase) with its ``classification``, ``trained`` and the numbers behind them.

    ``statuses``: trials.csv rows (trial_id, phase, status); trials there with
    status 'failed' or without epoch rows are crashed, status 'diverged' marks a
    divergence. Columns: classification, trained, diverged_epoch,
    best_train_balanced_accuracy, lowest_train_loss, train_loss_at_best,
    last_train_loss, lowest_val_loss, last_val_loss.
    """
    keys = ["trial_id", "phase"]
    frame = epochs.copy()
    if "phase" not in frame.columns:
        frame["phase"] = "tune"
    score = "train_balanced_accuracy" if "train_balanced_accuracy" in frame.columns else "train_accuracy"
    loss_columns = [column for column in ("train_loss", "val_loss", "fit_loss") if column in frame.columns]
    raw = {column: pd.to_numeric(frame[column], errors="coerce").astype(float) for column in loss_columns}
    bad = np.zeros(len(frame), dtype=bool)
    for column, values in raw.items():
        bad |= ~np.isfinite(values.to_numpy())
    frame["_bad"] = bad
    frame["train_loss"] = finite(frame["train_loss"])
    frame["val_loss"] = finite(frame["val_loss"])
    frame["_score"] = finite(frame[score]) if score in frame.columns else np.nan
    frame = frame.sort_values([*keys, "epoch"], kind="stable").reset_index(drop=True)
    grouped = frame.groupby(keys, sort=True)
    result = pd.DataFrame({
        "best_train_balanced_accuracy": grouped["_score"].max(),
        "lowest_train_loss": grouped["train_loss"].min(),
        "last_train_loss": grouped["train_loss"].last(),
        "lowest_val_loss": grouped["val_loss"].min(),
        "last_val_loss": grouped["val_loss"].last(),
        "epochs_recorded": grouped["epoch"].count(),
    })
    bad_epochs = frame.loc[frame["_bad"]].groupby(keys, sort=True)["epoch"].min()
    result["diverged_epoch"] = bad_epochs.reindex(result.index)
    with_val = frame.dropna(subset=["val_loss"])
    best_rows = with_val.loc[with_val.groupby(keys, sort=True)["val_loss"].idxmin()]
    result["train_loss_at_best"] = best_rows.set_index(keys)["train_loss"].reindex(result.index)
    result = result.reset_index()

    if statuses is not None and not statuses.empty:
        status_rows = statuses[[column for column in (*keys, "status") if column in statuses.columns]].copy()
        if "phase" not in status_rows.columns:
            status_rows["phase"] = "tune"
        status_rows = status_rows.drop_duplicates(keys, keep="last")
        result = status_rows.merge(result, on=keys, how="left")
    else:
        result["status"] = np.nan
    status = result["status"].astype(str)
    crashed = (status == "failed") | result["epochs_recorded"].isna() | (result["epochs_recorded"] == 0)
    diverged = ~crashed & (result["diverged_epoch"].notna() | (status == "diverged"))
    trained = (~crashed & ~diverged
               & (result["best_train_balanced_accuracy"] > chance.balanced_accuracy + settings.trained_above_chance))
    overfits = (
        (result["last_val_loss"] > result["lowest_val_loss"] + settings.onset_tolerance)
        & (result["last_train_loss"] < (1.0 - settings.train_fall_fraction) * result["train_loss_at_best"])
    )
    result["classification"] = np.select(
        [crashed, diverged, ~trained, overfits], [CRASHED, DIVERGED, FAILED_TO_TRAIN, OVERFITTING], FITTING)
    result["trained"] = result["classification"].isin([OVERFITTING, FITTING])
    return result[[*keys, "classification", "trained", "diverged_epoch", "best_train_balanced_accuracy",
                   "lowest_train_loss", "train_loss_at_best", "last_train_loss", "lowest_val_loss",
                   "last_val_loss"]]
