"""Summary frames of a study: pure functions of the trial frame, the epochs and the search space.

Every function here takes frames (and the manifest's search space) and returns a
frame or a list of lines; nothing reads or writes files, draws or formats text
for a file. :func:`study.statistics.analysis.analyse` calls them to fill its
tables, :mod:`study.figures` draws them and :mod:`study.report` writes them.

The input is the *trial frame* of :func:`study.statistics.trials.trial_frame`
(one row per trial, measures recomputed from epochs.csv). "The best trial of a
cell" is always :func:`study.statistics.selection.best_per_cell` (lowest
best_val_loss of a completed tuning trial, ties to the lower trial id): the
isolation table, the boundary warnings, the learning curves, the winners marked
on the nuisance axes and the per-class scores all use it, so they always show
the same trial (the one the runner retrained with fresh seeds).

The tables show the observed ``overfit_onset`` (missing when a trial never
overfitted, with ``onset_fraction`` the share of trials that had one); only
the rank tests censor it, in :func:`study.statistics.trials.measure_units`.
"""
from __future__ import annotations

import json
import math
import numbers
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from study.measures import finite
from study.statistics.classification import CLASSES, CRASHED, DIVERGED, FAILED_TO_TRAIN
from study.statistics.selection import best_per_cell
from study.statistics.trials import CELL, KEYS, REPEAT, TUNE, nuisance_columns, tuning_units
from study.tables import HYPERPARAMETER_COLUMNS

#: A best value within this fraction of a min/max range from an edge sits on a boundary.
BOUNDARY_FRACTION = 0.05

#: Nuisance hyperparameters whose effect on the gap is drawn as a depth x value heatmap.
HEATMAP_HYPERPARAMETERS = ("dropout", "weight_decay")

#: trials.csv columns summarising a trial's test scores over classes, shown beside the per-class scores.
TEST_SUMMARY_COLUMNS = ["test_accuracy", "test_macro_f1", "test_balanced_accuracy"]

#: classes.csv columns the per-class table needs.
CLASS_REQUIRED_COLUMNS = ["trial_id", "class_name", "precision", "recall", "f1", "support"]

#: The per-trial measures the isolation table shows for each cell's winner, in order.
ISOLATION_MEASURES = ["epochs_run", "best_epoch", "best_val_loss", "best_val_accuracy", "gap_at_best", "final_gap",
                      "gap_growth", "overfit_onset", "gap_at_target"]

#: The measures :func:`median_table` takes medians of (over the completed tuning trials of a cell).
MEDIAN_MEASURES = ["best_epoch", "best_val_loss", "gap_at_best", "final_gap", "gap_growth", "gap_at_target"]

#: Classifications that mean the trial has no usable curve to the end (a crash or a NaN/inf loss).
PROBLEM_CLASSES = (CRASHED, DIVERGED)

_PHASE_ORDER = {TUNE: 0, REPEAT: 1}


# ---------------------------------------------------------------- the search space


def _hyperparameters(space: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The hyperparameter specs of a space (the manifest's ``space``, or its ``hyperparameters`` mapping)."""
    if not space:
        return {}
    specs = space.get("hyperparameters", space)
    return specs if isinstance(specs, Mapping) else {}


def hyperparameters_with_role(space: Mapping[str, Any] | None, role: str) -> list[str]:
    """Names of the space's hyperparameters with the given role, in the space's order."""
    return [name for name, spec in _hyperparameters(space).items()
            if isinstance(spec, Mapping) and spec.get("role") == role]


def describe_range(spec: Mapping[str, Any]) -> str:
    """A hyperparameter's search range as one short string."""
    if "values" in spec:
        return "[" + ", ".join(str(value) for value in spec["values"]) + "]"
    if "min" in spec and "max" in spec:
        text = f"{spec['min']}..{spec['max']}"
        if spec.get("step") is not None:
            text += f" step {spec['step']}"
        if spec.get("log"):
            text += " (log)"
        return text
    if "value" in spec:
        return str(spec["value"])
    return json.dumps(dict(spec), sort_keys=True, default=str)


def fixed_values(space: Mapping[str, Any] | None) -> dict[str, Any]:
    """What the study held fixed: {name: value} for role 'fixed'."""
    fixed = {}
    specs = _hyperparameters(space)
    for name in hyperparameters_with_role(space, "fixed"):
        spec = specs[name]
        if "value" in spec:
            fixed[name] = spec["value"]
        elif len(spec.get("values", [])) == 1:
            fixed[name] = spec["values"][0]
        else:
            fixed[name] = describe_range(spec)
    return fixed


def is_number(value: Any) -> bool:
    """A real number that is not a bool (numpy scalars included)."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def boundary_position(value: Any, spec: Mapping[str, Any]) -> tuple[str, float, bool, str]:
    """Where a value sits in a hyperparameter's range: (kind, position, on_boundary, edge).

    ``values`` lists of numbers: on a boundary when equal to the lowest or highest
    listed value; position is the index in the list scaled to 0..1. Lists of
    names (e.g. a penalty type) have no order, so they never sit on a boundary.
    ``min``/``max`` ranges: the relative position in the range, in log space when
    ``"log": true``; on a boundary when within :data:`BOUNDARY_FRACTION` of either
    edge. Lists or ranges with a single value are never on a boundary (there is
    nothing to widen towards).
    """
    if "values" in spec:
        listed = list(spec["values"])
        if not listed or not all(is_number(item) for item in listed) or not is_number(value):
            return "categorical", math.nan, False, ""
        low, high = min(listed), max(listed)
        matches = [index for index, item in enumerate(listed) if math.isclose(item, value, rel_tol=1e-9, abs_tol=1e-12)]
        position = matches[0] / (len(listed) - 1) if matches and len(listed) > 1 else math.nan
        if low == high:
            return "values", position, False, ""
        if math.isclose(value, low, rel_tol=1e-9, abs_tol=1e-12):
            return "values", position, True, "lower"
        if math.isclose(value, high, rel_tol=1e-9, abs_tol=1e-12):
            return "values", position, True, "upper"
        return "values", position, False, ""
    if "min" in spec and "max" in spec:
        low, high, value = float(spec["min"]), float(spec["max"]), float(value)
        kind = "log range" if spec.get("log") else "range"
        if spec.get("log"):
            if low <= 0 or value <= 0:
                raise ValueError(f"log range {low}..{high} needs positive values, got {value}")
            low, high, value = math.log(low), math.log(high), math.log(value)
        if high <= low:
            return kind, math.nan, False, ""
        position = (value - low) / (high - low)
        if position <= BOUNDARY_FRACTION:
            return kind, position, True, "lower"
        if position >= 1 - BOUNDARY_FRACTION:
            return kind, position, True, "upper"
        return kind, position, False, ""
    return "fixed", math.nan, False, ""


def search_edges(space: Mapping[str, Any] | None, *, edge_fraction: float = BOUNDARY_FRACTION) -> pd.DataFrame:
    """Per numeric nuisance hyperparameter: its searched range and the edge zones.

    low/high: the range (min/max, or the lowest/highest listed value); log:
    log-scale range; low_edge/high_edge: the points ``edge_fraction`` of the
    range inside each edge (in log space for log ranges), the zones where
    :func:`boundary_position` flags a min/max range's best value.
    """
    rows = []
    for name, spec in _hyperparameters(space).items():
        if not isinstance(spec, Mapping) or spec.get("role") != "nuisance":
            continue
        if "values" in spec:
            listed = list(spec["values"])
            if len(listed) < 2 or not all(is_number(value) for value in listed):
                continue
            low, high, log = float(min(listed)), float(max(listed)), False
        elif "min" in spec and "max" in spec:
            low, high, log = float(spec["min"]), float(spec["max"]), bool(spec.get("log", False))
        else:
            continue
        if high <= low or (log and low <= 0):
            continue
        if log:
            span = math.log(high) - math.log(low)
            low_edge = math.exp(math.log(low) + edge_fraction * span)
            high_edge = math.exp(math.log(high) - edge_fraction * span)
        else:
            low_edge, high_edge = low + edge_fraction * (high - low), high - edge_fraction * (high - low)
        rows.append({"hyperparameter": name, "low": low, "high": high, "log": log,
                     "low_edge": low_edge, "high_edge": high_edge})
    return pd.DataFrame(rows, columns=["hyperparameter", "low", "high", "log", "low_edge", "high_edge"])


# ---------------------------------------------------------------- helpers


def tune_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of the tuning phase (all rows when the table has no phase column)."""
    if "phase" not in frame.columns:
        return frame
    return frame.loc[frame["phase"].astype(str) == TUNE]


def _sort_cells(frame: pd.DataFrame, space: Mapping[str, Any] | None, columns: Sequence[str],
                then: Sequence[str] = ()) -> pd.DataFrame:
    """Sort rows by the given hyperparameters in the order the space lists their values, then by ``then``."""
    specs = _hyperparameters(space)

    def order(series: pd.Series) -> pd.Series:
        if series.name == "phase":
            return series.map(lambda value: _PHASE_ORDER.get(value, len(_PHASE_ORDER)))
        spec = specs.get(series.name, {})
        if not isinstance(spec, Mapping) or "values" not in spec:
            return series
        rank = {value: index for index, value in enumerate(spec["values"])}
        return series.map(lambda value: rank.get(value, len(rank)))

    keys = [*columns, *then]
    if not keys or frame.empty:
        return frame.reset_index(drop=True)
    return frame.sort_values(keys, key=order, kind="stable").reset_index(drop=True)


def _scientific(trials: pd.DataFrame, space: Mapping[str, Any] | None) -> list[str]:
    """The cell columns: the space's scientific hyperparameters (architecture and depth without a space)."""
    names = hyperparameters_with_role(space, "scientific")
    return names if names else [column for column in CELL if column in trials.columns]


def _winner_keys(trials: pd.DataFrame, cell_columns: Sequence[str]) -> set[tuple[str, str]]:
    """(trial_id, phase) of every cell's winner by :func:`best_per_cell`."""
    winners = best_per_cell(trials, cell_columns)
    phases = winners["phase"].astype(str) if "phase" in winners.columns else pd.Series(TUNE, index=winners.index)
    return set(zip(winners["trial_id"].astype(str), phases))


def _keys_of(frame: pd.DataFrame) -> pd.Series:
    phases = frame["phase"].astype(str) if "phase" in frame.columns else pd.Series(TUNE, index=frame.index)
    return pd.Series(list(zip(frame["trial_id"].astype(str), phases)), index=frame.index, dtype=object)


# ---------------------------------------------------------------- per cell: winners, medians, boundaries


def isolation_table(trials: pd.DataFrame, space: Mapping[str, Any] | None) -> pd.DataFrame:
    """Per cell (combination of scientific values): its tuned winner, by :func:`best_per_cell`.

    One row per cell that has a completed tuning trial with a finite validation
    loss, in the order the space lists the cells: the winner's nuisance values,
    parameter count, classification, measures (:data:`ISOLATION_MEASURES`, the
    observed overfit onset) and test scores (missing when trials.csv lacks them).
    """
    scientific = _scientific(trials, space)
    nuisance = [name for name in hyperparameters_with_role(space, "nuisance") if name not in scientific]
    winners = best_per_cell(trials, scientific)
    columns = [*scientific, "trial_id", *nuisance, "parameter_count", "classification", *ISOLATION_MEASURES,
               *TEST_SUMMARY_COLUMNS]
    return _sort_cells(winners.reindex(columns=columns), space, scientific)


def median_table(trials: pd.DataFrame, space: Mapping[str, Any] | None) -> pd.DataFrame:
    """Per cell, over its tuning units (one per nuisance setting): counts and medians.

    ``trials`` (settings), ``completed_trials`` (neither crashed nor diverged),
    ``diverged_trials``, ``crashed_trials``, ``trained_trials``; medians of
    :data:`MEDIAN_MEASURES` and of the test accuracy over the completed ones;
    ``median_overfit_onset`` over those that overfitted and ``onset_fraction``,
    the share of completed trials with a best epoch that overfitted. Every cell
    seen in the tuning trials gets a row, also one whose trials all crashed.
    """
    scientific = _scientific(trials, space)
    units = tuning_units(trials)
    cells = units[scientific].drop_duplicates()
    classification = units["classification"].astype(str)
    completed = units.loc[~classification.isin(PROBLEM_CLASSES)].copy()
    completed["_onset"] = finite(completed["overfit_onset"])
    measured = completed["best_epoch"].notna() if "best_epoch" in completed.columns \
        else pd.Series(False, index=completed.index)
    completed["_has_onset"] = completed["_onset"].notna().astype(float).where(measured)
    present = [column for column in [*MEDIAN_MEASURES, "test_accuracy"] if column in completed.columns]
    for column in present:
        completed[column] = finite(completed[column])
    grouped = completed.groupby(scientific, sort=False, dropna=False)
    table = grouped[present].median()
    table.columns = [f"median_{column}" for column in table.columns]
    table["median_overfit_onset"] = grouped["_onset"].median()
    table["onset_fraction"] = grouped["_has_onset"].mean()
    table = cells.merge(table.reset_index(), on=scientific, how="left")
    counts = {
        "trials": units,
        "completed_trials": completed,
        "diverged_trials": units.loc[classification == DIVERGED],
        "crashed_trials": units.loc[classification == CRASHED],
        "trained_trials": units.loc[units["trained"].fillna(False).astype(bool)],
    }
    for name, rows in counts.items():
        size = rows.groupby(scientific, sort=False, dropna=False).size().rename(name).reset_index()
        table = table.merge(size, on=scientific, how="left")
        table[name] = table[name].fillna(0).astype(np.int64)
    columns = [*scientific, *counts, *(f"median_{column}" for column in MEDIAN_MEASURES),
               "median_overfit_onset", "onset_fraction", "median_test_accuracy"]
    return _sort_cells(table.reindex(columns=columns), space, scientific)


def boundary_table(isolation: pd.DataFrame, space: Mapping[str, Any] | None) -> pd.DataFrame:
    """Per cell and nuisance hyperparameter: the cell winner's value and whether it is on an edge.

    ``isolation`` is :func:`isolation_table`. A best value on the edge of its
    search range means the tuner may have wanted to go further, so the cell's
    winner (and the comparison between cells) is suspect until the range is
    widened. Hyperparameters that do not apply to a cell (a missing value, e.g.
    kernel size of an LSTM) are left out.
    """
    scientific = [name for name in hyperparameters_with_role(space, "scientific") if name in isolation.columns]
    specs = _hyperparameters(space)
    rows = []
    for _, winner in isolation.iterrows():
        for name in hyperparameters_with_role(space, "nuisance"):
            if name not in winner.index or name in scientific:
                continue
            value = winner[name]
            if pd.isna(value):
                continue
            if isinstance(value, np.generic):
                value = value.item()
            spec = specs[name]
            kind, position, on_boundary, edge = boundary_position(value, spec)
            rows.append({
                **{column: winner[column] for column in scientific},
                "trial_id": winner["trial_id"], "hyperparameter": name, "value": value,
                "search_range": describe_range(spec), "kind": kind, "position": position,
                "on_boundary": on_boundary, "edge": edge,
            })
    columns = [*scientific, "trial_id", "hyperparameter", "value", "search_range", "kind", "position", "on_boundary",
               "edge"]
    return pd.DataFrame(rows, columns=columns)


def problem_trials_table(trials: pd.DataFrame, space: Mapping[str, Any] | None) -> pd.DataFrame:
    """Trials that crashed or diverged (any phase): cell, trial_id, phase, status, classification,
    diverged_epoch (first epoch with a NaN/inf loss) and message, in cell order, tuning before repeat."""
    scientific = _scientific(trials, space)
    rows = trials.loc[trials["classification"].astype(str).isin(PROBLEM_CLASSES)]
    columns = [*scientific, "trial_id", "phase", "status", "classification", "diverged_epoch", "message"]
    table = rows.reindex(columns=columns)
    table["message"] = table["message"].astype(object).where(table["message"].notna(), "").astype(str)
    table = table.sort_values("trial_id", kind="stable")
    return _sort_cells(table, space, scientific, then=["phase"])


def per_class_table(isolation: pd.DataFrame, classes: pd.DataFrame,
                    class_names: Sequence[str] | None = None) -> pd.DataFrame:
    """Per cell and class: the test precision, recall, F1 and support of the cell's tuned winner.

    ``isolation`` is :func:`isolation_table` (its columns before ``trial_id``
    are the cell; it carries the winners' test accuracy, macro-F1 and balanced
    accuracy); ``classes`` is classes.csv (tuning rows used). Rows follow the
    isolation table's cell order and, within a cell, ``class_names`` (else the
    order of classes.csv). A winner without classes.csv rows gets no rows. A
    class listed twice for one tuning trial is a ValueError.
    """
    cell = list(isolation.columns[:isolation.columns.get_loc("trial_id")]) if "trial_id" in isolation.columns else []
    columns = [*cell, "trial_id", "class_name", "precision", "recall", "f1", "support", *TEST_SUMMARY_COLUMNS]
    class_rows = tune_rows(classes).assign(trial_id=lambda frame: frame["trial_id"].astype(str))
    duplicated = class_rows[["trial_id", "class_name"]].duplicated()
    if duplicated.any():
        trial_id, class_name = class_rows.loc[duplicated, ["trial_id", "class_name"]].iloc[0]
        raise ValueError(f"classes.csv lists class {class_name!r} of tuning trial {trial_id!r} more than once")
    if isolation.empty:
        return pd.DataFrame(columns=columns)
    winners = isolation.reindex(columns=[*cell, "trial_id", *TEST_SUMMARY_COLUMNS]).reset_index(names="cell_order")
    winners["trial_id"] = winners["trial_id"].astype(str)
    table = winners.merge(class_rows[CLASS_REQUIRED_COLUMNS], on="trial_id", how="inner", validate="one_to_many")
    order = list(class_names or []) + [name for name in dict.fromkeys(class_rows["class_name"])
                                       if name not in (class_names or [])]
    table["class_order"] = table["class_name"].map({name: index for index, name in enumerate(order)})
    table = table.sort_values(["cell_order", "class_order"], kind="stable")
    return table[columns].reset_index(drop=True)


# ---------------------------------------------------------------- trainability and classification


def trainability_table(trials: pd.DataFrame, *, confidence: float = 0.95,
                       cell: Sequence[str] = tuple(CELL)) -> pd.DataFrame:
    """Per cell (architecture, depth and any other scientific factor in ``cell``) over the tuning units
    (:func:`tuning_units`, one per nuisance setting).

    settings, trained, trainable_fraction (trained / settings) with its Wilson
    interval (fraction_low, fraction_high; statsmodels ``proportion_confint``),
    failed_to_train, diverged, crashed, and best_train_loss (the lowest
    inference-mode train loss any setting reached).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    units = tuning_units(trials)
    cell = [column for column in cell if column in units.columns] or list(CELL)
    columns = [*cell, "settings", "trained", "trainable_fraction", "fraction_low", "fraction_high",
               "failed_to_train", "diverged", "crashed", "best_train_loss"]
    if units.empty:
        return pd.DataFrame(columns=columns)
    classification = units["classification"].astype(str)
    flags = units[cell].assign(
        trained=units["trained"].fillna(False).astype(bool).astype(np.int64),
        failed_to_train=(classification == FAILED_TO_TRAIN).astype(np.int64),
        diverged=(classification == DIVERGED).astype(np.int64),
        crashed=(classification == CRASHED).astype(np.int64),
        best_train_loss=finite(units["lowest_train_loss"]))
    grouped = flags.groupby(cell, sort=True)
    table = grouped[["trained", "failed_to_train", "diverged", "crashed"]].sum()
    table["settings"] = grouped.size()
    table["best_train_loss"] = grouped["best_train_loss"].min()
    table = table.reset_index()
    table["trainable_fraction"] = table["trained"] / table["settings"]
    low, high = proportion_confint(table["trained"].to_numpy(), table["settings"].to_numpy(),
                                   alpha=1 - confidence, method="wilson")
    # Wilson bounds at 0 or n of n come out as +-1e-17: clip that rounding noise into [0, 1].
    table["fraction_low"] = np.clip(np.round(np.asarray(low, dtype=float), 12), 0.0, 1.0)
    table["fraction_high"] = np.clip(np.round(np.asarray(high, dtype=float), 12), 0.0, 1.0)
    return table[columns]


def classification_counts(trials: pd.DataFrame) -> pd.DataFrame:
    """Per phase and cell: how many trials fall in each class of
    :data:`study.statistics.classification.CLASSES` (zeros included) and their share of the cell.

    Tuning rows are the tuning units (:func:`tuning_units`), so the tune-phase
    counts add up to trainability's ``settings``; repeat rows are every repeat
    trial. Columns: phase, architecture, depth, classification, trials, share.
    """
    columns = ["phase", *CELL, "classification", "trials", "share"]
    repeat = trials.loc[trials["phase"].astype(str) == REPEAT] if "phase" in trials.columns else trials.iloc[0:0]
    rows = pd.concat([tuning_units(trials).assign(phase=TUNE), repeat], ignore_index=True)
    if rows.empty:
        return pd.DataFrame(columns=columns)
    counts = rows.groupby(["phase", *CELL, "classification"], sort=False).size()
    cells = rows[["phase", *CELL]].drop_duplicates()
    grid = cells.merge(pd.DataFrame({"classification": list(CLASSES)}), how="cross")
    table = grid.merge(counts.rename("trials").reset_index(), on=["phase", *CELL, "classification"], how="left")
    table["trials"] = table["trials"].fillna(0).astype(np.int64)
    table["share"] = table["trials"] / table.groupby(["phase", *CELL])["trials"].transform("sum")
    table["_phase"] = table["phase"].map(lambda value: _PHASE_ORDER.get(value, len(_PHASE_ORDER)))
    table["_class"] = table["classification"].map({name: index for index, name in enumerate(CLASSES)})
    table = table.sort_values(["_phase", *CELL, "_class"], kind="stable")
    return table[columns].reset_index(drop=True)


# ---------------------------------------------------------------- curves, nuisance axes, heatmaps


def learning_curve_table(epochs: pd.DataFrame, trials: pd.DataFrame, cell: Sequence[str] = tuple(CELL)) -> pd.DataFrame:
    """Inference-mode train and validation loss per epoch of each cell's winning setting.

    The winner is :func:`best_per_cell` over ``cell`` (architecture, depth and any other scientific factor:
    the runner retrains one winner per such cell); its curves
    are its own tuning run plus the cell's repeat seeds (the runner retrains
    that same winner). Long format: architecture, depth, trial_id (the winner),
    epoch, split ('train' or 'validation'), mean, low, high (the range over
    runs, drawn as a band) and seeds (runs with a finite value at that epoch).
    """
    cell = list(cell)
    columns = [*cell, "trial_id", "epoch", "split", "mean", "low", "high", "seeds"]
    winners = best_per_cell(trials, cell)
    if winners.empty:
        return pd.DataFrame(columns=columns)
    runs = winners[[*cell, "trial_id"]].assign(phase=TUNE, winner=winners["trial_id"].astype(str))
    runs["trial_id"] = runs["trial_id"].astype(str)
    if "phase" in trials.columns:
        repeat = trials.loc[(trials["phase"].astype(str) == REPEAT)
                            & (trials["classification"].astype(str) != CRASHED), [*cell, "trial_id"]]
        repeat = repeat.merge(runs[[*cell, "winner"]], on=cell, how="inner")
        runs = pd.concat([runs, repeat.assign(phase=REPEAT, trial_id=repeat["trial_id"].astype(str))],
                         ignore_index=True)
    curve = epochs.copy()
    if "phase" not in curve.columns:
        curve["phase"] = TUNE
    curve["trial_id"] = curve["trial_id"].astype(str)
    curve = curve.drop(columns=[column for column in cell if column in curve.columns])
    rows = curve.merge(runs[[*KEYS, *cell, "winner"]], on=KEYS, how="inner")
    parts = []
    for split, column in (("train", "train_loss"), ("validation", "val_loss")):
        values = rows.assign(value=finite(rows[column])).dropna(subset=["value"])
        grouped = values.groupby([*cell, "winner", "epoch"], sort=True)["value"]
        part = pd.DataFrame({"mean": grouped.mean(), "low": grouped.min(), "high": grouped.max(),
                             "seeds": grouped.count()}).reset_index()
        parts.append(part.assign(split=split))
    table = pd.concat(parts, ignore_index=True).rename(columns={"winner": "trial_id"})
    return table[columns].sort_values([*cell, "split", "epoch"], kind="stable").reset_index(drop=True)


def nuisance_value_table(trials: pd.DataFrame, space: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Long table of numeric nuisance values against best validation loss over the tuning trials.

    Columns: hyperparameter, value, best_val_loss, architecture, depth,
    classification, best_in_cell (the cell's winner by :func:`best_per_cell`),
    trial_id. Categorical nuisances (e.g. weight_decay_type) have no axis and
    are left out.
    """
    columns = ["hyperparameter", "value", "best_val_loss", *CELL, "classification", "best_in_cell", "trial_id"]
    tune = tune_rows(trials)
    winners = _winner_keys(trials, CELL)
    best_in_cell = _keys_of(tune).isin(winners) if not tune.empty else pd.Series(False, index=tune.index)
    parts = []
    for name in nuisance_columns(trials, dict(space) if space else None):
        if name in CELL:
            continue
        values = pd.to_numeric(tune[name], errors="coerce")
        if values.notna().sum() == 0:
            continue
        parts.append(pd.DataFrame({
            "hyperparameter": name, "value": values.astype(float), "best_val_loss": finite(tune["best_val_loss"]),
            "architecture": tune["architecture"], "depth": tune["depth"], "classification": tune["classification"],
            "best_in_cell": best_in_cell.astype(bool), "trial_id": tune["trial_id"].astype(str),
        }).dropna(subset=["value"]))
    return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)


def gap_heatmap_table(trials: pd.DataFrame, hyperparameter: str, *, measure: str = "gap_at_target", bins: int = 4,
                      space: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Mean of a gap measure per architecture, depth and bin of one nuisance hyperparameter.

    Over the tuning units that trained and have the measure. Bins are
    equal-width over the searched range (from the space when given, else the
    data), geometric when the range is log or spans more than a decade of
    positive values; exact zeros of a geometric axis get their own bin '0'.
    Long format: hyperparameter, measure, architecture, depth, bin (label),
    bin_order, mean, trials.
    """
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins!r}")
    columns = ["hyperparameter", "measure", *CELL, "bin", "bin_order", "mean", "trials"]
    rows = tuning_units(trials)
    rows = rows.loc[rows["trained"].fillna(False).astype(bool)]
    if hyperparameter not in rows.columns or measure not in rows.columns:
        return pd.DataFrame(columns=columns)
    rows = rows.assign(_x=pd.to_numeric(rows[hyperparameter], errors="coerce").astype(float),
                       _y=finite(rows[measure])).dropna(subset=["_x", "_y"])
    if rows.empty:
        return pd.DataFrame(columns=columns)
    edges_row = search_edges(space)
    edges_row = edges_row.loc[edges_row["hyperparameter"] == hyperparameter]
    if edges_row.empty:
        low, high, log = float(rows["_x"].min()), float(rows["_x"].max()), False
    else:
        low, high, log = (float(edges_row["low"].iloc[0]), float(edges_row["high"].iloc[0]),
                          bool(edges_row["log"].iloc[0]))
    positive = rows.loc[rows["_x"] > 0, "_x"]
    if not positive.empty and (log or positive.max() / positive.min() > 10):
        if low <= 0:
            low = float(positive.min())
        edges = np.geomspace(low, high, bins + 1) if high > low else np.array([low, low])
        log = True
    else:
        edges = np.linspace(low, high, bins + 1) if high > low else np.array([low, high])
    labels, order = [], []
    for value in rows["_x"].to_numpy():
        if log and value <= 0:
            labels.append("0")
            order.append(-1)
            continue
        index = int(np.clip(np.searchsorted(edges, value, side="right") - 1, 0, max(len(edges) - 2, 0)))
        labels.append(f"{edges[index]:.3g}-{edges[index + 1]:.3g}" if len(edges) > 1 else f"{value:.3g}")
        order.append(index)
    rows = rows.assign(bin=labels, bin_order=order)
    grouped = rows.groupby([*CELL, "bin_order", "bin"], sort=True)["_y"]
    table = pd.DataFrame({"mean": grouped.mean(), "trials": grouped.count()}).reset_index()
    return table.assign(hyperparameter=hyperparameter, measure=measure)[columns]


def gap_heatmaps(trials: pd.DataFrame, space: Mapping[str, Any] | None = None, *,
                 measure: str = "gap_at_target") -> pd.DataFrame:
    """:func:`gap_heatmap_table` of every hyperparameter of :data:`HEATMAP_HYPERPARAMETERS`, concatenated."""
    parts = [gap_heatmap_table(trials, name, measure=measure, space=space) for name in HEATMAP_HYPERPARAMETERS]
    parts = [part for part in parts if not part.empty]
    if not parts:
        return gap_heatmap_table(trials.iloc[0:0], HEATMAP_HYPERPARAMETERS[0], measure=measure)
    return pd.concat(parts, ignore_index=True)


# ---------------------------------------------------------------- what was held fixed


def held_fixed(trials: pd.DataFrame, space: Mapping[str, Any] | None = None) -> list[str]:
    """What was held fixed: the space's fixed hyperparameters (or, without a space, the columns constant
    over all trials), and how the nuisances were handled."""
    lines = []
    if _hyperparameters(space):
        fixed = fixed_values(space)
        if fixed:
            lines.append("Fixed: " + ", ".join(f"{name}={value}" for name, value in fixed.items()) + ".")
    else:
        constant = [column for column in HYPERPARAMETER_COLUMNS if column in trials.columns and column not in CELL
                    and trials[column].nunique(dropna=False) == 1]
        if constant:
            lines.append("Constant over all trials: " + ", ".join(
                f"{column}={trials[column].iloc[0]}" for column in constant) + ".")
    nuisance = [name for name in nuisance_columns(trials, dict(space) if space else None) if name not in CELL]
    if nuisance:
        lines.append("Tuned afresh in every cell with the same budget (nuisance): " + ", ".join(nuisance)
                     + "; each cell's winner (lowest validation loss) was retrained with fresh seeds (repeat phase).")
    lines.append("Train and validation losses are pure data losses evaluated in inference mode.")
    return lines
