"""Overfitting measures: pure functions of the epoch table.

Every measure is computed from ``train_loss`` and ``val_loss`` of epochs.csv.
Both are pure data losses evaluated in inference mode (no dropout, no weight
penalty), so their difference, the *gap*, is the true generalisation gap.
``fit_loss`` (Keras' running training loss, measured with dropout on and the
penalty included) is never used.

A *curve* is the rows of one trial; epochs are 1-based integers. Losses that are
NaN or infinite are ignored (a diverged evaluation carries no information about
where the minimum is).

The single-curve functions (:func:`best_epoch`, :func:`overfit_onset`, ...) state
the definitions; :func:`measures_table` computes the same values for a whole
table at once with grouped array operations, so reports of large studies stay
fast. Tests check that the two agree.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from study.tables import KERNEL_KINDS

#: Absolute tolerance (nats) above the minimum validation loss before a later
#: epoch counts as overfitting, see :func:`overfit_onset`.
DEFAULT_ONSET_TOLERANCE = 0.05

#: Columns :func:`measures_table` needs.
REQUIRED_COLUMNS = ["trial_id", "epoch", "train_loss", "val_loss", "val_accuracy"]

#: The measures, in the column order of :func:`measures_table`.
MEASURE_COLUMNS = [
    "best_epoch", "best_val_loss", "best_val_accuracy", "gap_at_best", "final_gap",
    "gap_growth", "overfit_onset", "epochs_run",
]

_LOSS_COLUMNS = ["train_loss", "val_loss"]


def check_tolerance(tolerance: float) -> float:
    """Return the onset tolerance as a float; it must be a finite number >= 0."""
    try:
        value = float(tolerance)
    except (TypeError, ValueError):
        raise ValueError(f"onset tolerance must be a number >= 0, got {tolerance!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"onset tolerance must be a finite number >= 0, got {tolerance!r}")
    return value


def _require_columns(frame: pd.DataFrame, columns: list[str]) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"epoch table lacks required column(s): {', '.join(missing)}")


def finite(values: pd.Series) -> pd.Series:
    """Values as float64, with anything non-numeric, NaN or infinite turned into NaN (missing)."""
    numeric = pd.to_numeric(values, errors="coerce").astype(float)
    return numeric.where(np.isfinite(numeric))


def _clean_losses(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Losses as float64 with infinities turned into NaN (both are ignored)."""
    for column in columns:
        values = pd.to_numeric(frame[column], errors="raise").to_numpy(dtype=float, na_value=np.nan)
        frame[column] = np.where(np.isfinite(values), values, np.nan)
    return frame


def _sorted_curve(curve: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """One trial's rows sorted by epoch, with cleaned losses; repeated epochs are an error."""
    _require_columns(curve, ["epoch", *columns])
    frame = curve[["epoch", *columns]].copy()
    if frame["epoch"].duplicated().any():
        raise ValueError("curve has repeated epochs: pass the rows of one trial only")
    frame = _clean_losses(frame, [column for column in columns if column in _LOSS_COLUMNS])
    return frame.sort_values("epoch", kind="stable").reset_index(drop=True)


def _best_position(ordered: pd.DataFrame) -> int:
    losses = ordered["val_loss"].to_numpy(dtype=float)
    finite = np.isfinite(losses)
    if not finite.any():
        raise ValueError("curve has no finite val_loss, so it has no best epoch")
    # argmin returns the first index on ties, i.e. the earliest epoch.
    return int(np.argmin(np.where(finite, losses, np.inf)))


def best_epoch(curve: pd.DataFrame) -> int:
    """Epoch with the lowest val_loss (the earliest one on ties; NaN losses ignored)."""
    ordered = _sorted_curve(curve, ["val_loss"])
    return int(ordered["epoch"].iloc[_best_position(ordered)])


def gaps(curve: pd.DataFrame) -> pd.Series:
    """Gap per epoch, val_loss - train_loss (both inference-mode data losses), indexed by epoch."""
    ordered = _sorted_curve(curve, _LOSS_COLUMNS)
    return pd.Series(
        (ordered["val_loss"] - ordered["train_loss"]).to_numpy(),
        index=pd.Index(ordered["epoch"].to_numpy(), name="epoch"), name="gap",
    )


def gap_at_best(curve: pd.DataFrame) -> float:
    """Gap at the best epoch (NaN when train_loss is missing there)."""
    return float(gaps(curve).loc[best_epoch(curve)])


def final_gap(curve: pd.DataFrame) -> float:
    """Gap at the last epoch recorded (NaN when a loss is missing there)."""
    return float(gaps(curve).iloc[-1])


def gap_growth(curve: pd.DataFrame) -> float:
    """Least-squares slope of the gap per epoch from the best epoch to the last.

    NaN when fewer than two of those epochs have a finite gap. A positive slope
    means the model keeps memorising after validation stopped improving.
    """
    curve_gaps = gaps(curve)
    after_best = curve_gaps[(curve_gaps.index >= best_epoch(curve)) & curve_gaps.notna().to_numpy()]
    if len(after_best) < 2:
        return math.nan
    slope, _intercept = np.polyfit(after_best.index.to_numpy(dtype=float), after_best.to_numpy(), 1)
    return float(slope)


def overfit_onset(curve: pd.DataFrame, tolerance: float = DEFAULT_ONSET_TOLERANCE) -> int | None:
    """First epoch after the best from which val_loss stays above min(val_loss) + tolerance.

    The epoch e must have val_loss > min + tolerance, and so must every later
    epoch (NaN losses ignored). None when the last val_loss is back within the
    tolerance, i.e. the trial never settled into overfitting. ``tolerance`` is
    absolute, in nats, and must be >= 0.
    """
    tolerance = check_tolerance(tolerance)
    ordered = _sorted_curve(curve, ["val_loss"])
    best = _best_position(ordered)
    finite = ordered[ordered["val_loss"].notna()].reset_index(drop=True)
    minimum = float(ordered["val_loss"].iloc[best])
    within = (finite["val_loss"] <= minimum + tolerance).to_numpy()
    last_within = int(np.flatnonzero(within)[-1])  # the best epoch is always within
    if last_within == len(finite) - 1:
        return None
    return int(finite["epoch"].iloc[last_within + 1])


def trial_measures(curve: pd.DataFrame, tolerance: float = DEFAULT_ONSET_TOLERANCE) -> dict[str, Any]:
    """All measures of one trial's curve, keyed as :data:`MEASURE_COLUMNS`."""
    tolerance = check_tolerance(tolerance)
    ordered = _sorted_curve(curve, ["train_loss", "val_loss", "val_accuracy"])
    best = _best_position(ordered)
    return {
        "best_epoch": int(ordered["epoch"].iloc[best]),
        "best_val_loss": float(ordered["val_loss"].iloc[best]),
        "best_val_accuracy": float(ordered["val_accuracy"].iloc[best]),
        "gap_at_best": gap_at_best(curve),
        "final_gap": final_gap(curve),
        "gap_growth": gap_growth(curve),
        "overfit_onset": overfit_onset(curve, tolerance),
        "epochs_run": len(ordered),
    }


def _group_keys(epochs: pd.DataFrame) -> list[str]:
    return ["trial_id", "phase"] if "phase" in epochs.columns else ["trial_id"]


def measures_table(epochs: pd.DataFrame, tolerance: float = DEFAULT_ONSET_TOLERANCE) -> pd.DataFrame:
    """Measures of every trial: one row per (trial_id, phase if present).

    Same definitions as the single-curve functions, computed with grouped array
    operations (100,000 epoch rows take well under a second). A trial without
    any finite val_loss gets missing measures instead of an error, so one
    diverged trial does not stop a report. ``best_epoch`` and ``overfit_onset``
    are nullable integers (missing onset = never overfitted); ``gap_growth`` is
    the ordinary least-squares slope (what numpy.polyfit of degree 1 returns),
    written with grouped sums so it is not one fit per trial.
    """
    tolerance = check_tolerance(tolerance)
    _require_columns(epochs, REQUIRED_COLUMNS)
    keys = _group_keys(epochs)
    frame = epochs[[*keys, "epoch", "train_loss", "val_loss", "val_accuracy"]].copy()
    if frame.duplicated([*keys, "epoch"]).any():
        raise ValueError("epoch table has repeated (trial_id, phase, epoch) rows")
    frame = _clean_losses(frame, _LOSS_COLUMNS)
    frame["val_accuracy"] = pd.to_numeric(frame["val_accuracy"], errors="raise").astype(float)
    frame = frame.sort_values([*keys, "epoch"], kind="stable").reset_index(drop=True)
    group = frame.groupby(keys, sort=True, dropna=False).ngroup().to_numpy()
    frame["group"] = group
    group_count = int(group.max()) + 1 if len(group) else 0
    groups = pd.RangeIndex(group_count, name="group")
    frame["gap"] = frame["val_loss"] - frame["train_loss"]

    first_rows = frame.loc[~frame["group"].duplicated(keep="first")].set_index("group")
    last_rows = frame.loc[~frame["group"].duplicated(keep="last")].set_index("group")

    # Best epoch: the first (earliest) row per trial whose val_loss equals the trial's minimum.
    minimum = frame.groupby("group")["val_loss"].transform("min")
    at_minimum = frame["val_loss"].eq(minimum)  # False where NaN
    best_rows = frame.loc[at_minimum & ~frame.loc[:, "group"].where(at_minimum).duplicated(keep="first")]
    best_rows = best_rows.set_index("group").reindex(groups)

    # Gap growth: OLS slope of gap on epoch over finite gaps at or after the best epoch.
    best_epoch_per_row = best_rows["epoch"].to_numpy(dtype=float)[group] if group_count else np.array([])
    window = (frame["epoch"].to_numpy(dtype=float) >= best_epoch_per_row) & frame["gap"].notna().to_numpy()
    window_group = group[window]
    x = frame["epoch"].to_numpy(dtype=float)[window]
    y = frame["gap"].to_numpy(dtype=float)[window]
    count = np.bincount(window_group, minlength=group_count).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_x = np.bincount(window_group, weights=x, minlength=group_count) / count
        mean_y = np.bincount(window_group, weights=y, minlength=group_count) / count
        centred_x = x - mean_x[window_group]
        centred_y = y - mean_y[window_group]
        sxy = np.bincount(window_group, weights=centred_x * centred_y, minlength=group_count)
        sxx = np.bincount(window_group, weights=centred_x * centred_x, minlength=group_count)
        slope = np.where(count >= 2, sxy / sxx, np.nan)

    # Onset: among finite val_loss rows, the row after the last one within min + tolerance.
    finite_rows = frame.loc[frame["val_loss"].notna(), ["group", "epoch", "val_loss"]]
    position = finite_rows.groupby("group").cumcount()
    within = finite_rows["val_loss"] <= minimum.loc[finite_rows.index] + tolerance
    last_within = position[within].groupby(finite_rows.loc[within, "group"]).max()
    wanted = last_within.reindex(finite_rows["group"]).to_numpy() + 1
    onset_rows = finite_rows.loc[position.to_numpy() == wanted].set_index("group")

    result = first_rows[keys].reindex(groups)
    result["best_epoch"] = best_rows["epoch"].astype("Int64")
    result["best_val_loss"] = best_rows["val_loss"].astype(float)
    result["best_val_accuracy"] = best_rows["val_accuracy"].astype(float)
    result["gap_at_best"] = best_rows["gap"].astype(float)
    result["final_gap"] = last_rows["gap"].reindex(groups).astype(float)
    result["gap_growth"] = slope
    result["overfit_onset"] = onset_rows["epoch"].reindex(groups).astype("Int64")
    result["epochs_run"] = np.bincount(group, minlength=group_count).astype(np.int64)
    return result.reset_index(drop=True)[[*keys, *MEASURE_COLUMNS]]


#: Columns of :func:`gradient_measures`.
GRADIENT_MEASURE_COLUMNS = ["gradient_ratio", "gradient_ratio_at_init", "gradient_layers"]


def layer_gradient_norms(gradients: pd.DataFrame) -> pd.DataFrame:
    """One row per (trial, phase, epoch, layer): the norm over the layer's kernels (input, recurrent and
    convolution kernels; biases and normalisation weights left out), from gradients.csv's rows."""
    rows = gradients.loc[gradients["kind"].isin(KERNEL_KINDS)].copy()
    rows["squared"] = pd.to_numeric(rows["norm"], errors="coerce") ** 2
    keys = [column for column in ("trial_id", "phase") if column in rows.columns]
    grouped = rows.groupby([*keys, "epoch", "layer_index"], sort=True)["squared"].sum(min_count=1)
    return np.sqrt(grouped).rename("norm").reset_index()


def gradient_measures(gradients: pd.DataFrame) -> pd.DataFrame:
    """Per trial: how much smaller the first layer's gradient is than the last hidden layer's.

    ``gradient_ratio`` is the median over the training epochs (1, 2, ...) of log10(first-layer kernel gradient
    norm / last-hidden-layer kernel gradient norm): -1 means the gradient reaching the first layer is ten times
    smaller than at the last hidden layer (vanishing), 0 means equal. The classifier (the last weighted layer)
    is left out. ``gradient_ratio_at_init`` is the same at epoch 0 (before any update); ``gradient_layers``
    the number of hidden weighted layers. A trial with one hidden layer has ratio 0 by definition.
    """
    keys = [column for column in ("trial_id", "phase") if column in gradients.columns]
    if gradients.empty:
        return pd.DataFrame(columns=[*keys, *GRADIENT_MEASURE_COLUMNS])
    norms = layer_gradient_norms(gradients)
    last = norms.groupby([*keys, "epoch"])["layer_index"].transform("max")
    hidden = norms.loc[norms["layer_index"] < last]
    ordered = hidden.sort_values([*keys, "epoch", "layer_index"], kind="stable").groupby([*keys, "epoch"])["norm"]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.log10(ordered.first() / ordered.last())
    ratios = finite(ratios).rename("ratio").reset_index()
    layers = hidden.groupby(keys)["layer_index"].nunique().rename("gradient_layers")
    training = ratios.loc[ratios["epoch"] >= 1].groupby(keys)["ratio"].median().rename("gradient_ratio")
    initial = ratios.loc[ratios["epoch"] == 0].groupby(keys)["ratio"].first().rename("gradient_ratio_at_init")
    result = pd.concat([training, initial, layers], axis=1).reset_index()
    return result[[*keys, *GRADIENT_MEASURE_COLUMNS]]
