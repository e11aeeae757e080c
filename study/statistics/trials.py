"""One row per trial with everything the statistics use, and the units each measure is tested on.

:func:`trial_frame` joins trials.csv (status, hyperparameters, setting) with the
measures recomputed from epochs.csv (never the measure columns of trials.csv),
the classification and the matched-progress measures. :data:`MEASURES` says,
for every measure, which trials are its units and which direction supports
"deeper FIRSTs are harder to train / overfit faster"; :func:`measure_units`
returns those units.

The units of every test are **tuning trials**: each is one nuisance setting,
drawn independently of the others. With paired draws (the same setting sequence
in every cell) a unit has a partner in every other cell that differs in
architecture or depth alone. Repeat seeds of a cell's winner are *not* units of
the tests: they share one setting, so they are not independent draws of "the
cell", and a test that treated them as such declared differences in 7-17% of
null studies. They give the winners' curves and selection-aware intervals
(:mod:`study.statistics.selection`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from study.config import CLAIM_MEASURES, AnalysisConfig
from study.measures import finite, gradient_measures, measures_table
from study.statistics.classification import Chance, classify_trials
from study.statistics.progress import matched_progress, target_train_loss
from study.tables import EPOCH_COLUMNS, HYPERPARAMETER_COLUMNS

TUNE, REPEAT = "tune", "repeat"
KEYS = ["trial_id", "phase"]
CELL = ["architecture", "depth"]


@dataclass(frozen=True)
class MeasureDefinition:
    """One measure: its question, which trials are units, and which slope sign supports the statement."""

    name: str
    question: str          # "trainability" or "overfitting"
    trained_only: bool     # units are tuning trials that trained (else every tuning trial)
    supports_sign: int     # -1: a negative first-minus-second slope (and first-arm slope) supports
    binary: bool           # 0/1 units (a share)
    rank_based: bool       # censored at the epoch budget: tested on mid-ranks
    meaning: str


#: Every measure, the primary one of each question first.
MEASURES: tuple[MeasureDefinition, ...] = (
    MeasureDefinition("trainable_fraction", "trainability", False, -1, True, False,
                      "share of tuned nuisance settings that trained (accuracy clearly above chance; diverged "
                      "and crashed trials count as not trained)"),
    MeasureDefinition("best_train_loss", "trainability", False, +1, False, False,
                      "lowest inference-mode train loss of each setting (crashed ones left out)"),
    MeasureDefinition("epochs_to_target", "trainability", True, +1, False, True,
                      "epochs until the train loss first reached the common target (never: censored at the "
                      "budget + 1, ranked last)"),
    MeasureDefinition("gap_at_target", "overfitting", True, +1, False, False,
                      "gap (val - train loss) at the first epoch the train loss reached the common target: "
                      "overfitting at matched training progress"),
    MeasureDefinition("gap_growth_after_target", "overfitting", True, +1, False, False,
                      "slope of the gap per epoch after the train loss reached the target"),
    MeasureDefinition("best_epoch", "overfitting", True, -1, False, True,
                      "epoch of the lowest validation loss (earlier = overfits sooner; mixes fitting speed in; "
                      "a curve still improving at its last epoch is censored at the budget)"),
    MeasureDefinition("overfit_onset", "overfitting", True, -1, False, True,
                      "first epoch from which validation loss stays above its minimum + tolerance (never "
                      "overfitted: censored at the budget + 1)"),
    MeasureDefinition("gap_at_best", "overfitting", True, +1, False, False,
                      "gap (val - train loss) at the best epoch"),
    MeasureDefinition("best_val_accuracy", "performance", False, -1, False, False,
                      "validation accuracy at the epoch of lowest validation loss (crashed settings left out): what a "
                      "regulariser costs or gains"),
    MeasureDefinition("gradient_ratio", "gradients", False, -1, False, False,
                      "log10 of the first layer's over the last hidden layer's loss-gradient norm (kernels), median "
                      "over the training epochs (gradients.csv; -1: ten times smaller at the first layer)"),
    MeasureDefinition("final_gap", "overfitting", True, +1, False, False,
                      "gap (val - train loss) at the last epoch: what training on to the epoch budget memorises, "
                      "with no early stopping (Zhang et al. 2017)"),
)
if tuple(definition.name for definition in MEASURES) != CLAIM_MEASURES:  # pragma: no cover - a coding error
    raise RuntimeError("study.config.CLAIM_MEASURES must list the names of MEASURES in order")

#: The primary measure of each question: the one whose tests decide the statement.
PRIMARY_MEASURES = {"trainability": "trainable_fraction", "overfitting": "gap_at_target"}


def measure_definition(name: str) -> MeasureDefinition:
    for definition in MEASURES:
        if definition.name == name:
            return definition
    raise ValueError(f"unknown measure {name!r}, allowed: " + ", ".join(repr(item.name) for item in MEASURES))


def trial_frame(epochs: pd.DataFrame, trials: pd.DataFrame | None, *, chance: Chance,
                settings: AnalysisConfig = AnalysisConfig(),
                gradients: pd.DataFrame | None = None) -> tuple[pd.DataFrame, float]:
    """(one row per trial, the common train-loss target).

    ``trials`` is trials.csv (None: every trial of the epoch table, all
    completed); ``gradients`` is gradients.csv when the study recorded it (adds
    the gradient measures of :func:`study.measures.gradient_measures`). Trials with epoch rows but no trials.csv row (still running, or
    cut off) are left out; the caller reports them.
    """
    epochs = epochs.copy()
    if "phase" not in epochs.columns:
        epochs["phase"] = TUNE
    epochs["trial_id"] = epochs["trial_id"].astype(str)
    curve = measures_table(epochs, tolerance=settings.onset_tolerance)
    # The hyperparameters, the seed, and the columns of scientific dataset parameters (any column the epoch
    # table's contract does not name: epoch_columns places them after the hyperparameters).
    attributes = [column for column in [*HYPERPARAMETER_COLUMNS, "seed"] if column in epochs.columns]
    attributes += [column for column in epochs.columns if column not in EPOCH_COLUMNS and column not in attributes]
    from_epochs = epochs.groupby(KEYS, sort=True)[attributes].first().reset_index()
    if trials is None:
        base = from_epochs.assign(status="completed", setting=np.nan, parent_trial_id=np.nan)
    else:
        base = trials.copy()
        base["trial_id"] = base["trial_id"].astype(str)
        if "phase" not in base.columns:
            base["phase"] = TUNE
        base = base.drop_duplicates(KEYS, keep="last")
        for column in ("setting", "parent_trial_id"):
            if column not in base.columns:
                base[column] = np.nan
        keep = [column for column in base.columns
                if column in [*KEYS, *attributes, "status", "setting", "parent_trial_id", "parameter_count",
                              "receptive_field", "effective_receptive_field", "test_accuracy", "test_macro_f1", "test_balanced_accuracy", "message"]]
        base = base[keep]
        missing = [column for column in attributes if column not in base.columns]
        if missing:
            base = base.merge(from_epochs[[*KEYS, *missing]], on=KEYS, how="left")
    frame = base.merge(curve, on=KEYS, how="left")
    classes = classify_trials(epochs, chance=chance, settings=settings,
                              statuses=base[[*KEYS, "status"]] if trials is not None else None)
    frame = frame.merge(classes, on=KEYS, how="left")
    frame["depth"] = pd.to_numeric(frame["depth"], errors="coerce")
    frame["architecture"] = frame["architecture"].astype(str)
    target = target_train_loss(frame, settings)
    progress = matched_progress(epochs, target)
    frame = frame.merge(progress, on=KEYS, how="left")
    if gradients is not None and not gradients.empty:
        measured = gradient_measures(gradients.assign(trial_id=gradients["trial_id"].astype(str)))
        if "phase" not in measured.columns:
            measured["phase"] = TUNE
        frame = frame.merge(measured, on=KEYS, how="left")
    frame["reached_target"] = frame["reached_target"].fillna(False).astype(bool)
    for column in ("best_epoch", "epochs_run", "overfit_onset", "best_val_loss", "best_val_accuracy", "gap_at_best",
                   "gap_growth", "final_gap", "epochs_to_target", "gap_at_target", "gap_growth_after_target"):
        if column in frame.columns:
            frame[column] = finite(frame[column])
    frame["still_improving"] = frame["best_epoch"].notna() & (frame["best_epoch"] >= frame["epochs_run"])
    frame["never_overfitted"] = frame["best_epoch"].notna() & frame["overfit_onset"].isna()
    frame["trained"] = frame["trained"].fillna(False).astype(bool)
    return frame.sort_values(KEYS, kind="stable").reset_index(drop=True), target


def tuning_units(trials: pd.DataFrame) -> pd.DataFrame:
    """The tuning trials that are units: one per nuisance setting.

    Hyperband continues a setting in later trials (``parent_trial_id``); only
    the last trial of each chain is a unit, so 2-epoch fragments of a bracket
    are not counted as settings of their own.
    """
    rows = trials.loc[trials["phase"] == TUNE] if "phase" in trials.columns else trials
    if "parent_trial_id" in rows.columns:
        parents = set(rows["parent_trial_id"].dropna().astype(str))
        rows = rows.loc[~rows["trial_id"].astype(str).isin(parents)]
    return rows


def measure_available(trials: pd.DataFrame, measure: str) -> bool:
    """Whether the trial frame holds what ``measure`` is computed from (the two trainability measures always)."""
    return measure in ("trainable_fraction", "best_train_loss") or measure in trials.columns


def measure_units(trials: pd.DataFrame, measure: str, columns: tuple[str, ...] | list[str] = ()) -> pd.DataFrame:
    """The units of one measure: rows architecture, depth, setting, value (missing values dropped), plus the
    trial columns named in ``columns`` (the factors of a claim)."""
    definition = measure_definition(measure)
    rows = tuning_units(trials)
    if definition.trained_only:
        rows = rows.loc[rows["trained"]]
    if measure == "trainable_fraction":
        values = rows["trained"].astype(float)
    elif measure in ("best_train_loss", "best_val_accuracy"):
        rows = rows.loc[rows["classification"] != "crashed"]
        values = rows["lowest_train_loss" if measure == "best_train_loss" else measure]
    elif measure == "overfit_onset":
        # Censored at the budget: a trial that never overfitted has an onset of at least one more epoch
        # than it ran (tested on mid-ranks, so it ties behind every observed onset).
        values = rows["overfit_onset"].where(~rows["never_overfitted"], rows["epochs_run"] + 1)
    elif measure in rows.columns:
        values = rows[measure]
    else:  # not recorded (gradient_ratio without gradients.csv rows): no units, and the claim says so
        values = pd.Series(math.nan, index=rows.index)
    setting = pd.to_numeric(rows["setting"], errors="coerce") if "setting" in rows.columns else math.nan
    units = pd.DataFrame({"architecture": rows["architecture"].astype(str), "depth": pd.to_numeric(rows["depth"]),
                          "setting": setting, "value": finite(values)})
    for column in columns:
        if column not in units.columns:
            units[column] = rows[column].to_numpy() if column in rows.columns else math.nan
    return units.dropna(subset=["architecture", "depth", "value"]).reset_index(drop=True)


def nuisance_columns(trials: pd.DataFrame, space: dict | None = None) -> list[str]:
    """Nuisance hyperparameters: role 'nuisance' in the space, else the columns that vary over tuning trials."""
    specs = (space or {}).get("hyperparameters", {}) if isinstance(space, dict) else {}
    if specs:
        return [name for name, spec in specs.items()
                if isinstance(spec, dict) and spec.get("role") == "nuisance" and name in trials.columns]
    tune = trials.loc[trials["phase"] == TUNE] if "phase" in trials.columns else trials
    return [column for column in HYPERPARAMETER_COLUMNS
            if column in tune.columns and column not in CELL and tune[column].nunique(dropna=True) > 1]


def settings_are_paired(trials: pd.DataFrame, nuisance: list[str]) -> bool:
    """True when tuning trials with the same setting index carry the same nuisance values in every cell
    (every architecture and depth): the cells were tuned on common random numbers, so paired tests apply."""
    rows = tuning_units(trials)
    if "setting" not in rows.columns or rows["setting"].isna().any() or rows.empty:
        return False
    if not nuisance:
        return True
    values = rows[nuisance].copy()
    for column in nuisance:
        numeric = pd.to_numeric(values[column], errors="coerce")
        values[column] = numeric.map(lambda value: f"{value:.10g}") if numeric.notna().all() else values[column].astype(str)
    keyed = values.assign(setting=rows["setting"].to_numpy())
    distinct = keyed.groupby("setting")[nuisance].nunique(dropna=False)
    shared = keyed.groupby("setting").size() >= 2
    return bool(shared.any() and (distinct.loc[shared] <= 1).all().all())
