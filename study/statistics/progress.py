"""Overfitting at matched training progress (Jiang et al. 2019, "Fantastic generalization measures").

The best epoch mixes two things: how fast a model fits and how fast it
overfits. A model that fits in 3 epochs reaches its validation minimum early
even if it never overfits more than a slow one, and the best epoch is capped by
the epoch budget. Jiang et al. compare models stopped at the same training
cross-entropy instead. Here every trial is read at the first epoch its
inference-mode train loss reaches one common *target*:

* ``gap_at_target``: validation minus train loss at that epoch (the primary
  overfitting measure: how much a model has overfitted for the same fit);
* ``gap_growth_after_target``: least-squares slope of the gap per epoch from
  that epoch to the last (how fast it overfits once it fits that well);
* ``epochs_to_target``: how long it took (a trainability measure).

Censoring is explicit, never a silent drop: a trial that never reaches the
target has ``reached_target`` false, ``epochs_to_target`` set to one more than
the epochs it ran (it needs at least that many; the tests rank it behind every
trial that got there) and no gap at the target (the report counts it per cell).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from study.config import AnalysisConfig

KEYS = ["trial_id", "phase"]
PROGRESS_COLUMNS = ["reached_target", "epochs_to_target", "gap_at_target", "gap_growth_after_target"]


def target_train_loss(trials: pd.DataFrame, settings: AnalysisConfig = AnalysisConfig()) -> float:
    """The common train-loss target: the space's number, or (``auto``) the ``target_quantile`` quantile of
    the lowest train loss over tuning trials that trained, pooled over every cell.

    Pooling over cells (never per architecture) keeps the target the same for
    every unit, so the permutation tests that exchange architecture or depth
    labels stay valid. NaN when no tuning trial trained.
    """
    if settings.target_train_loss != "auto":
        return float(settings.target_train_loss)
    rows = trials.loc[trials["trained"].astype(bool)]
    if "phase" in rows.columns:
        rows = rows.loc[rows["phase"] == "tune"]
    losses = pd.to_numeric(rows["lowest_train_loss"], errors="coerce").dropna()
    return float(np.quantile(losses, settings.target_quantile)) if len(losses) else math.nan


def matched_progress(epochs: pd.DataFrame, target: float) -> pd.DataFrame:
    """Per trial (trial_id, phase): reached_target, epochs_to_target, gap_at_target, gap_growth_after_target.

    Vectorised over the whole table (grouped array operations, no per-trial loop).
    """
    frame = epochs[[column for column in (*KEYS, "epoch", "train_loss", "val_loss") if column in epochs.columns]].copy()
    if "phase" not in frame.columns:
        frame["phase"] = "tune"
    for column in ("train_loss", "val_loss"):
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        frame[column] = np.where(np.isfinite(values), values, np.nan)
    frame = frame.sort_values([*KEYS, "epoch"], kind="stable").reset_index(drop=True)
    group = frame.groupby(KEYS, sort=True).ngroup().to_numpy()
    count = int(group.max()) + 1 if len(group) else 0
    index = frame.groupby(KEYS, sort=True).size().index
    epochs_run = np.bincount(group, minlength=count)
    last_epoch = frame.groupby(KEYS, sort=True)["epoch"].max().to_numpy(dtype=float)
    reached_rows = frame["train_loss"].to_numpy() <= target if math.isfinite(target) else np.zeros(len(frame), bool)
    positions = np.flatnonzero(reached_rows)
    first = pd.Series(positions).groupby(group[positions]).min().reindex(range(count), fill_value=-1).to_numpy()
    reached = first >= 0
    target_epoch = np.where(reached, frame["epoch"].to_numpy(dtype=float)[np.where(reached, first, 0)], np.nan)
    gap = (frame["val_loss"] - frame["train_loss"]).to_numpy()
    gap_at_target = np.where(reached, gap[np.where(reached, first, 0)], np.nan)

    window = (frame["epoch"].to_numpy(dtype=float) >= target_epoch[group]) & np.isfinite(gap)
    window_group = group[window]
    x = frame["epoch"].to_numpy(dtype=float)[window]
    y = gap[window]
    points = np.bincount(window_group, minlength=count).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_x = np.bincount(window_group, weights=x, minlength=count) / points
        mean_y = np.bincount(window_group, weights=y, minlength=count) / points
        centred_x = x - mean_x[window_group]
        sxy = np.bincount(window_group, weights=centred_x * (y - mean_y[window_group]), minlength=count)
        sxx = np.bincount(window_group, weights=centred_x ** 2, minlength=count)
        growth = np.where((points >= 2) & (sxx > 0), sxy / sxx, np.nan)
    result = pd.DataFrame(index=index).reset_index()
    result["reached_target"] = reached
    result["epochs_to_target"] = np.where(reached, target_epoch, np.maximum(last_epoch, epochs_run) + 1)
    result["gap_at_target"] = gap_at_target
    result["gap_growth_after_target"] = growth
    return result[[*KEYS, *PROGRESS_COLUMNS]]
