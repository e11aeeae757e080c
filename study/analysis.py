"""Are deeper LSTMs harder to train, or do they overfit faster than CNNs?

Pure functions of the study tables (epochs.csv, the per-trial measures of
:mod:`study.measures`, optionally trials.csv and the manifest's search space).
Nothing here reads files, draws or formats; :mod:`study.figures` and
:mod:`study.html_report` only present what these functions return.

The answer is built in four steps:

1. :func:`classify_trials` labels every trial 'failed to train', 'overfitting'
   or 'fitting' from its inference-mode train and validation losses. A trial
   that never fits its training data has an early best epoch only because it
   never learned; it must not count as overfitting fast, so it is left out of
   every overfitting measure (it counts, instead, against trainability).
2. :func:`trainability_table` gives, per cell (architecture x depth), the share
   of tuned nuisance settings that train at all and the lowest train loss.
3. :func:`depth_slope_table` fits, per architecture, the OLS slope of each
   measure against log2(depth) (the change per doubling of depth) and the
   difference of slopes between two architectures, with percentile confidence
   intervals from a bootstrap stratified by cell (seeds are resampled within
   each architecture x depth cell, as rliable does) and a permutation p-value
   (architecture labels permuted within each depth).
   :func:`granulated_kendall_tau` adds the rank agreement between depth and gap
   over the tuning trials (Jiang et al. 2019).
4. :func:`verdict` decides two statements from the confidence interval of one
   primary slope difference each and lists caveats found in the data.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field, fields
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from study.errors import BadInput
from study.measures import measures_table
from study.report import boundary_table, fixed_values
from study.tables import HYPERPARAMETER_COLUMNS

# ---------------------------------------------------------------- names

FAILED_TO_TRAIN = "failed to train"
OVERFITTING = "overfitting"
FITTING = "fitting"
CLASSIFICATIONS = (FAILED_TO_TRAIN, OVERFITTING, FITTING)

SUPPORTED = "supported"
CONTRADICTED = "contradicted"
INCONCLUSIVE = "inconclusive"

TUNE = "tune"
REPEAT = "repeat"

#: The per-trial measures (from study.measures) the overfitting question uses.
OVERFITTING_MEASURES = ("best_epoch", "gap_growth", "gap_at_best", "overfit_onset")

#: Nuisance hyperparameters whose effect on the gap is drawn as a depth x value heatmap.
HEATMAP_HYPERPARAMETERS = ("dropout", "weight_decay")

_CELL = ["architecture", "depth"]


@dataclass(frozen=True)
class Thresholds:
    """Every threshold the classification and the caveats use; the report prints them.

    ``train_drop_fraction``: a trial *trains* when its lowest inference-mode
    train loss falls below ``(1 - train_drop_fraction) x chance loss``. The
    chance loss is the loss of the best constant prediction: the entropy of the
    training class frequencies when they are known (:func:`constant_prediction_loss`),
    else ln(number of classes). The first-epoch train loss is *not* the
    reference: it is measured after a whole epoch of training (a model may be
    fitted by then), and a bad initialisation above chance would lower the bar
    to a loss that is still worse than guessing.

    ``validation_rise`` (nats, absolute, like the onset tolerance of
    study.measures) and ``train_fall_fraction`` (relative): a trial that trains
    is *overfitting* when, at its last epoch, the validation loss is more than
    ``validation_rise`` above its minimum while the train loss is more than
    ``train_fall_fraction`` below its value at the best validation epoch.

    ``minimum_seeds``: repeat-phase cells with fewer trained seeds get a caveat.
    """

    train_drop_fraction: float = 0.5
    validation_rise: float = 0.05
    train_fall_fraction: float = 0.05
    minimum_seeds: int = 3

    def __post_init__(self) -> None:
        if not 0.0 < self.train_drop_fraction < 1.0:
            raise ValueError(f"train_drop_fraction must be in (0, 1), got {self.train_drop_fraction!r}")
        if not (math.isfinite(self.validation_rise) and self.validation_rise >= 0):
            raise ValueError(f"validation_rise must be a finite number >= 0, got {self.validation_rise!r}")
        if not 0.0 <= self.train_fall_fraction < 1.0:
            raise ValueError(f"train_fall_fraction must be in [0, 1), got {self.train_fall_fraction!r}")
        if isinstance(self.minimum_seeds, bool) or not isinstance(self.minimum_seeds, numbers.Integral) \
                or self.minimum_seeds < 1:
            raise ValueError(f"minimum_seeds must be an integer >= 1, got {self.minimum_seeds!r}")

    def table(self) -> pd.DataFrame:
        """The thresholds as rows (name, value, meaning) for the report."""
        meanings = {
            "train_drop_fraction": "a trial trains when its lowest train loss < (1 - this) x chance loss",
            "validation_rise": "nats the last validation loss must exceed its minimum by to count as overfitting",
            "train_fall_fraction": "relative fall of the train loss after the best validation epoch "
                                   "needed to count as overfitting",
            "minimum_seeds": "trained repeat seeds per cell below which a caveat is raised",
        }
        return pd.DataFrame(
            {"threshold": [item.name for item in fields(self)],
             "value": pd.Series([getattr(self, item.name) for item in fields(self)], dtype=object),
             "meaning": [meanings[item.name] for item in fields(self)]},
        )


@dataclass(frozen=True)
class MeasureDefinition:
    """One measure of the slope analysis: which trials it uses and which sign supports its statement."""

    name: str
    question: str          # "trainability" or "overfitting"
    phase: str             # the phase whose trials are the units
    trained_only: bool     # leave out trials that failed to train
    supports_sign: int     # -1: a negative first-minus-second slope difference supports the statement
    meaning: str


#: Every measure the slope table reports, the primary one of each question first.
MEASURES: tuple[MeasureDefinition, ...] = (
    MeasureDefinition("trainable_fraction", "trainability", TUNE, False, -1,
                      "share of tuned nuisance settings that train at all (each tuning trial counts 1 or 0)"),
    MeasureDefinition("best_train_loss", "trainability", REPEAT, False, +1,
                      "lowest inference-mode train loss of each repeat seed, failed seeds included"),
    MeasureDefinition("best_epoch", "overfitting", REPEAT, True, -1,
                      "epoch of the lowest validation loss (earlier = overfits sooner)"),
    MeasureDefinition("gap_growth", "overfitting", REPEAT, True, +1,
                      "slope of the gap (val - train loss) per epoch after the best epoch"),
    MeasureDefinition("gap_at_best", "overfitting", REPEAT, True, +1,
                      "gap (val - train loss) at the best epoch"),
    MeasureDefinition("overfit_onset", "overfitting", REPEAT, True, -1,
                      "first epoch from which validation loss stays above its minimum + tolerance "
                      "(seeds that never overfitted are left out)"),
)

#: The primary measure of each statement (the one whose interval decides it).
PRIMARY_MEASURES = {"trainability": "trainable_fraction", "overfitting": "best_epoch"}


def measure_definition(name: str) -> MeasureDefinition:
    """The definition of a measure of :data:`MEASURES` by name."""
    for definition in MEASURES:
        if definition.name == name:
            return definition
    raise BadInput(f"unknown measure {name!r}, allowed: " + ", ".join(repr(item.name) for item in MEASURES))


# ---------------------------------------------------------------- helpers


def constant_prediction_loss(class_counts: Iterable[float]) -> float:
    """Cross-entropy (nats) of always predicting the class frequencies: the chance loss.

    This is the lowest loss a model can reach without looking at its inputs;
    for balanced classes it equals ln(number of classes).
    """
    counts = np.asarray(list(class_counts), dtype=float)
    if counts.size < 2 or np.any(counts < 0) or counts.sum() <= 0:
        raise ValueError(f"class counts must be >= 2 non-negative numbers with a positive sum, got {counts.tolist()}")
    return float(stats.entropy(counts))


def chance_loss_from_manifest(manifest: Mapping[str, Any]) -> tuple[int, float | None]:
    """(number of classes, chance loss) from a manifest's dataset record.

    The chance loss comes from the training split's class counts when the
    manifest has them, else it is None (callers then use ln(number of classes)).
    """
    dataset = manifest.get("dataset") or {}
    names = dataset.get("class_names") or []
    counts = (dataset.get("class_counts") or {}).get("train")
    if not names and not counts:
        raise BadInput("the manifest's dataset record names no classes", key="dataset.class_names")
    num_classes = len(names) if names else len(counts)
    chance = constant_prediction_loss(counts.values()) if isinstance(counts, Mapping) and counts else None
    return num_classes, chance


def _keys(frame: pd.DataFrame) -> list[str]:
    """Columns that identify one trial: trial_id, and phase when present (trial ids may repeat across phases)."""
    return ["trial_id", "phase"] if "phase" in frame.columns else ["trial_id"]


def _require(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks required column(s): {', '.join(missing)}")


def _finite(values: pd.Series) -> pd.Series:
    numeric = pd.to_numeric(values, errors="coerce").astype(float)
    return numeric.where(np.isfinite(numeric))


def status_from_interval(ci_low: float, ci_high: float, supports_sign: int) -> str:
    """'supported' when the interval lies entirely on the supporting side of 0, 'contradicted'
    when entirely on the other side, else (0 inside, or no interval) 'inconclusive'."""
    if not (math.isfinite(ci_low) and math.isfinite(ci_high)):
        return INCONCLUSIVE
    low, high = sorted((supports_sign * ci_low, supports_sign * ci_high))
    if low > 0:
        return SUPPORTED
    if high < 0:
        return CONTRADICTED
    return INCONCLUSIVE


# ---------------------------------------------------------------- 1. classification


def classify_trials(
    epochs: pd.DataFrame, *, num_classes: int, thresholds: Thresholds = Thresholds(),
    chance_loss: float | None = None,
) -> pd.DataFrame:
    """Label every trial 'failed to train', 'overfitting' or 'fitting' (see :class:`Thresholds`).

    Returns one row per trial (trial_id, phase when present) with
    ``classification`` and the numbers behind it: ``chance_loss``,
    ``lowest_train_loss``, ``train_loss_at_best`` (at the epoch of lowest
    validation loss), ``last_train_loss``, ``lowest_val_loss``, ``last_val_loss``.
    Non-finite losses are ignored; a trial without any finite train or
    validation loss failed to train.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    keys = _keys(epochs)
    _require(epochs, [*keys, "epoch", "train_loss", "val_loss"], "epoch table")
    chance = math.log(num_classes) if chance_loss is None else float(chance_loss)
    if not (math.isfinite(chance) and chance > 0):
        raise ValueError(f"chance_loss must be a positive number, got {chance_loss!r}")

    frame = epochs[[*keys, "epoch", "train_loss", "val_loss"]].copy()
    frame["train_loss"] = _finite(frame["train_loss"])
    frame["val_loss"] = _finite(frame["val_loss"])
    frame = frame.sort_values([*keys, "epoch"], kind="stable").reset_index(drop=True)
    grouped = frame.groupby(keys, sort=True, dropna=False)
    result = pd.DataFrame({
        "lowest_train_loss": grouped["train_loss"].min(),
        "last_train_loss": grouped["train_loss"].last(),    # last finite value
        "lowest_val_loss": grouped["val_loss"].min(),
        "last_val_loss": grouped["val_loss"].last(),
    })
    with_val = frame.dropna(subset=["val_loss"])
    best_rows = with_val.loc[with_val.groupby(keys, sort=True, dropna=False)["val_loss"].idxmin()]  # earliest on ties
    result["train_loss_at_best"] = best_rows.set_index(keys)["train_loss"].reindex(result.index)
    result["chance_loss"] = chance

    trains = result["lowest_train_loss"] < (1.0 - thresholds.train_drop_fraction) * chance
    trains &= result["lowest_val_loss"].notna()
    overfits = (
        (result["last_val_loss"] > result["lowest_val_loss"] + thresholds.validation_rise)
        & (result["last_train_loss"] < (1.0 - thresholds.train_fall_fraction) * result["train_loss_at_best"])
    )
    result["classification"] = np.where(~trains, FAILED_TO_TRAIN, np.where(overfits, OVERFITTING, FITTING))
    result = result.reset_index()
    return result[[*keys, "classification", "chance_loss", "lowest_train_loss", "train_loss_at_best",
                   "last_train_loss", "lowest_val_loss", "last_val_loss"]]


def trial_frame(
    epochs: pd.DataFrame, measures: pd.DataFrame | None = None, *, num_classes: int,
    thresholds: Thresholds = Thresholds(), chance_loss: float | None = None,
) -> pd.DataFrame:
    """One row per trial: its phase, hyperparameters, seed, measures and classification.

    ``measures`` is :func:`study.measures.measures_table` of the epochs of every
    phase (computed with its default tolerance when None; a measures table that
    lacks trials of the epoch table is an error). Adds ``trained`` (bool) and
    ``still_improving`` (the lowest validation loss is at the last epoch run, so
    the epoch budget cut the curve short and best_epoch is censored).
    """
    keys = _keys(epochs)
    _require(epochs, [*keys, "architecture", "depth", "epoch"], "epoch table")
    if measures is None:
        measures = measures_table(epochs)
    _require(measures, ["trial_id"], "measures table")
    attributes = [column for column in [*HYPERPARAMETER_COLUMNS, "seed"] if column in epochs.columns]
    frame = epochs.groupby(keys, sort=True, dropna=False)[attributes].first().reset_index()
    measure_columns = [column for column in measures.columns if column not in keys and column not in attributes]
    merge_keys = [key for key in keys if key in measures.columns]
    if measures.duplicated(merge_keys).any():
        raise ValueError(f"measures table has repeated {'/'.join(merge_keys)} rows")
    frame = frame.merge(measures[[*merge_keys, *measure_columns]], on=merge_keys, how="left", indicator=True)
    unmeasured = frame.loc[frame["_merge"] == "left_only", "trial_id"]
    if not unmeasured.empty:
        raise ValueError(f"the measures table lacks {len(unmeasured)} trial(s) of the epoch table (e.g. "
                         f"{unmeasured.iloc[0]!r}): pass measures_table(epochs) of every phase")
    frame = frame.drop(columns="_merge")
    classification = classify_trials(epochs, num_classes=num_classes, thresholds=thresholds, chance_loss=chance_loss)
    frame = frame.merge(classification, on=keys, how="left")
    frame["trained"] = frame["classification"] != FAILED_TO_TRAIN
    for column in ("best_epoch", "epochs_run", "overfit_onset", "best_val_loss", "gap_at_best", "gap_growth",
                   "final_gap", "best_val_accuracy"):
        if column in frame.columns:
            frame[column] = _finite(frame[column])
    if "epochs_run" not in frame.columns:
        frame["epochs_run"] = epochs.groupby(keys, sort=True, dropna=False)["epoch"].count().to_numpy(dtype=float)
    frame["still_improving"] = (frame["best_epoch"] >= frame["epochs_run"]) if "best_epoch" in frame.columns else False
    frame["depth"] = pd.to_numeric(frame["depth"], errors="raise")
    frame["architecture"] = frame["architecture"].astype(str)
    return frame


# ---------------------------------------------------------------- 2. trainability per cell


def _phase(frame: pd.DataFrame, phase: str) -> pd.DataFrame:
    if "phase" not in frame.columns:
        return frame if phase == TUNE else frame.iloc[0:0]
    return frame.loc[frame["phase"] == phase]


def trainability_table(trials: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """Per cell over the tuning trials: settings tried, settings that trained, their share
    (with a Wilson interval) and the lowest train loss any setting reached.

    ``trials`` is :func:`trial_frame`.
    """
    tune = _phase(trials, TUNE)
    grouped = tune.groupby(_CELL, sort=True)
    table = pd.DataFrame({
        "settings": grouped.size(),
        "trained": grouped["trained"].sum().astype(np.int64),
        "best_train_loss": grouped["lowest_train_loss"].min(),
    }).reset_index()
    table["trainable_fraction"] = table["trained"] / table["settings"]
    low, high = proportion_confint(table["trained"].to_numpy(), table["settings"].to_numpy(),
                                   alpha=1 - confidence, method="wilson")
    table["fraction_low"], table["fraction_high"] = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    return table[[*_CELL, "settings", "trained", "trainable_fraction", "fraction_low", "fraction_high",
                  "best_train_loss"]]


# ---------------------------------------------------------------- 3. estimates


def measure_units(trials: pd.DataFrame, measure: str) -> pd.DataFrame:
    """The units one measure's slopes are fitted on: rows (architecture, depth, value).

    The phase and which trials count follow :data:`MEASURES`: trainable_fraction
    over every tuning trial (1 trained, 0 not), best_train_loss over every repeat
    seed, the overfitting measures over repeat seeds that trained. Missing values
    are dropped.
    """
    definition = measure_definition(measure)
    rows = _phase(trials, definition.phase)
    if definition.trained_only:
        rows = rows.loc[rows["trained"]]
    if measure == "trainable_fraction":
        values = rows["trained"].astype(float)
    elif measure == "best_train_loss":
        values = rows["lowest_train_loss"]
    else:
        if measure not in rows.columns:
            raise ValueError(f"the trial frame has no column {measure!r}: pass the measures table")
        values = rows[measure]
    units = pd.DataFrame({"architecture": rows["architecture"].astype(str),
                          "depth": pd.to_numeric(rows["depth"]), "value": _finite(values)})
    return units.dropna().reset_index(drop=True)


def _cells(units: pd.DataFrame, architecture: str) -> list[tuple[float, np.ndarray]]:
    rows = units.loc[units["architecture"] == architecture]
    return [(float(np.log2(depth)), group["value"].to_numpy(dtype=float))
            for depth, group in rows.groupby("depth", sort=True)]


def _bootstrap_slope(cells: list[tuple[float, np.ndarray]], rng: np.random.Generator,
                     resamples: int) -> tuple[float, np.ndarray]:
    """OLS slope of value on log2(depth) and its stratified bootstrap replicates.

    Each replicate resamples, with replacement, the units within every depth
    cell (cell sizes kept), then refits all replicates at once with polyfit.
    """
    if len(cells) < 2:
        return math.nan, np.full(resamples, np.nan)
    x = np.concatenate([np.full(len(values), x_value) for x_value, values in cells])
    y = np.concatenate([values for _, values in cells])
    slope = float(np.polyfit(x, y, 1)[0])
    replicates = np.hstack([values[rng.integers(0, len(values), size=(resamples, len(values)))]
                            for _, values in cells])
    return slope, np.polyfit(x, replicates.T, 1)[0]


def _masked_slopes(x: np.ndarray, y: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """OLS slope of y on x over the units selected by each row of a boolean mask matrix."""
    weights = masks.astype(float)
    count = weights.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_x = weights @ x / count
        mean_y = weights @ y / count
        centred_x = x[None, :] - mean_x[:, None]
        sxy = (weights * centred_x * (y[None, :] - mean_y[:, None])).sum(axis=1)
        sxx = (weights * centred_x ** 2).sum(axis=1)
        return sxy / sxx


def _permutation_p_value(units: pd.DataFrame, first: str, second: str, observed: float,
                         rng: np.random.Generator, permutations: int) -> float:
    """Two-sided p-value of the slope difference under exchangeable architecture labels within each depth.

    Values are centred on their architecture's mean first, so a constant level
    difference between architectures does not inflate the null distribution;
    the slope difference itself is unchanged by the centring.
    """
    if not math.isfinite(observed):
        return math.nan
    pair = units.loc[units["architecture"].isin([first, second])].sort_values("depth", kind="stable")
    y = pair["value"].to_numpy(dtype=float)
    y = y - pair.groupby("architecture")["value"].transform("mean").to_numpy(dtype=float)
    x = np.log2(pair["depth"].to_numpy(dtype=float))
    is_first = (pair["architecture"] == first).to_numpy()
    depth = pair["depth"].to_numpy()
    labels = np.empty((permutations, len(pair)), dtype=bool)
    for value in np.unique(depth):
        positions = np.flatnonzero(depth == value)
        labels[:, positions] = rng.permuted(np.tile(is_first[positions], (permutations, 1)), axis=1)
    differences = _masked_slopes(x, y, labels) - _masked_slopes(x, y, ~labels)
    extreme = np.abs(differences) >= abs(observed) - 1e-9 * max(1.0, abs(observed))
    return float((1 + np.count_nonzero(extreme)) / (1 + permutations))


def compare_depth_slopes(
    units: pd.DataFrame, *, first: str = "lstm", second: str = "cnn", resamples: int = 2000,
    seed: int = 0, confidence: float = 0.95,
) -> dict[str, float]:
    """Slopes of value against log2(depth) per architecture and their difference (first - second).

    ``units`` has columns architecture, depth, value (one row per seed or
    setting). Intervals are percentile intervals of a bootstrap that resamples
    units within each (architecture, depth) cell; ``p_value`` is a two-sided
    permutation p-value (architecture labels permuted within each depth,
    ``resamples`` permutations). An architecture with fewer than two depths has
    no slope (NaN). The same seed gives the same numbers.
    """
    if first == second:
        raise ValueError(f"compare two different architectures, got {first!r} twice")
    if isinstance(resamples, bool) or not isinstance(resamples, numbers.Integral) or resamples < 100:
        raise ValueError(f"resamples must be an integer >= 100, got {resamples!r}")
    if not 0.5 <= confidence < 1.0:
        raise ValueError(f"confidence must be in [0.5, 1), got {confidence!r}")
    _require(units, ["architecture", "depth", "value"], "units")
    rng = np.random.default_rng(seed)
    tail = (1.0 - confidence) / 2.0
    values = units["value"].to_numpy(dtype=float)
    # Slopes of constant data come out as +-1e-17 rather than 0; snap such rounding noise to 0
    # so that it cannot decide a status.
    noise = 1e-9 * max(1.0, float(np.max(np.abs(values))) if values.size else 1.0)
    result: dict[str, float] = {}
    replicates = {}
    for label, architecture in (("first", first), ("second", second)):
        cells = _cells(units, architecture)
        slope, boot = _bootstrap_slope(cells, rng, int(resamples))
        replicates[label] = boot
        result[f"slope_{label}"] = slope
        result[f"slope_{label}_low"], result[f"slope_{label}_high"] = (
            (float(np.quantile(boot, tail)), float(np.quantile(boot, 1 - tail))) if math.isfinite(slope)
            else (math.nan, math.nan))
        result[f"units_{label}"] = float(sum(len(values) for _, values in cells))
        result[f"depths_{label}"] = float(len(cells))
    difference = result["slope_first"] - result["slope_second"]
    result["difference"] = difference
    if math.isfinite(difference):
        boot = replicates["first"] - replicates["second"]
        result["ci_low"], result["ci_high"] = float(np.quantile(boot, tail)), float(np.quantile(boot, 1 - tail))
    else:
        result["ci_low"] = result["ci_high"] = math.nan
    result["p_value"] = _permutation_p_value(units, first, second, difference, rng, int(resamples))
    for key in ("slope_first", "slope_first_low", "slope_first_high", "slope_second", "slope_second_low",
                "slope_second_high", "difference", "ci_low", "ci_high"):
        if abs(result[key]) <= noise:
            result[key] = 0.0
    return result


def depth_slope_table(
    trials: pd.DataFrame, *, first: str = "lstm", second: str = "cnn", resamples: int = 2000,
    seed: int = 0, confidence: float = 0.95,
) -> pd.DataFrame:
    """One row per measure of :data:`MEASURES`: slopes per doubling of depth, their difference,
    its interval, p-value and status ('supported' etc. for the measure's statement)."""
    rows = []
    for definition in MEASURES:
        if definition.name in OVERFITTING_MEASURES and definition.name not in trials.columns:
            continue
        estimate = compare_depth_slopes(measure_units(trials, definition.name), first=first, second=second,
                                        resamples=resamples, seed=seed, confidence=confidence)
        rows.append({
            "measure": definition.name, "question": definition.question,
            "primary": PRIMARY_MEASURES[definition.question] == definition.name,
            "phase": definition.phase, "supports_if": "negative" if definition.supports_sign < 0 else "positive",
            "first": first, "second": second, **estimate,
            "status": status_from_interval(estimate["ci_low"], estimate["ci_high"], definition.supports_sign),
        })
    table = pd.DataFrame(rows)
    for column in ("units_first", "units_second", "depths_first", "depths_second"):
        if column in table.columns:
            table[column] = table[column].astype(np.int64)
    return table


def granulated_kendall_tau(
    trials: pd.DataFrame, *, measure: str = "gap_at_best", factor: str = "depth", phase: str = TUNE,
    trained_only: bool = True,
) -> pd.DataFrame:
    """Granulated Kendall tau between ``factor`` and ``measure`` (Jiang et al. 2019).

    Trials are grouped so that every other hyperparameter is equal within a
    group (floats compared after rounding to 10 significant digits) and only
    ``factor`` varies; scipy.stats.kendalltau is taken in every group with at
    least two distinct factor values and a non-constant measure, and averaged
    over those groups. One row per architecture and one for 'all':
    kendall_tau (NaN without any group), groups, trials.
    """
    rows = _phase(trials, phase)
    if trained_only:
        rows = rows.loc[rows["trained"]]
    rows = rows.assign(_value=_finite(rows[measure])).dropna(subset=["_value"])
    others = [column for column in HYPERPARAMETER_COLUMNS if column in rows.columns and column != factor]
    keyed = rows[others].copy()
    for column in others:
        if pd.api.types.is_float_dtype(keyed[column]):
            keyed[column] = keyed[column].map(lambda value: float(f"{value:.10g}") if pd.notna(value) else value)
    keyed = keyed.astype(str)  # missing values become one comparable label
    taus: dict[str, list[float]] = {}
    counts: dict[str, int] = {}
    for _, group in rows.groupby([keyed[column] for column in others], sort=True, dropna=False):
        architecture = str(group["architecture"].iloc[0])
        counts[architecture] = counts.get(architecture, 0) + len(group)
        if group[factor].nunique() < 2 or group["_value"].nunique() < 2:
            continue
        tau = stats.kendalltau(group[factor].to_numpy(dtype=float), group["_value"].to_numpy(dtype=float)).statistic
        if math.isfinite(tau):
            taus.setdefault(architecture, []).append(float(tau))
    table = []
    for architecture in sorted(set(rows["architecture"].astype(str))):
        values = taus.get(architecture, [])
        table.append({"architecture": architecture, "kendall_tau": float(np.mean(values)) if values else math.nan,
                      "groups": len(values), "trials": counts.get(architecture, 0)})
    pooled = [tau for values in taus.values() for tau in values]
    table.append({"architecture": "all", "kendall_tau": float(np.mean(pooled)) if pooled else math.nan,
                  "groups": len(pooled), "trials": len(rows)})
    return pd.DataFrame(table, columns=["architecture", "kendall_tau", "groups", "trials"])


# ---------------------------------------------------------------- summaries for figures


def cell_summary(
    trials: pd.DataFrame, measures: Sequence[str] = ("gap_at_best", "gap_growth", "best_epoch", "overfit_onset"),
    *, resamples: int = 2000, seed: int = 0, confidence: float = 0.95,
) -> pd.DataFrame:
    """Per cell and measure: mean over the measure's units, percentile bootstrap interval of the mean
    (scipy.stats.bootstrap; NaN with fewer than two units) and the number of units."""
    rows = []
    for measure in measures:
        units = measure_units(trials, measure)
        for (architecture, depth), group in units.groupby(_CELL, sort=True):
            values = group["value"].to_numpy(dtype=float)
            low = high = math.nan
            if len(values) >= 2 and np.ptp(values) > 0:
                interval = stats.bootstrap((values,), np.mean, n_resamples=resamples, confidence_level=confidence,
                                           method="percentile", rng=np.random.default_rng(seed)).confidence_interval
                low, high = float(interval.low), float(interval.high)
            elif len(values) >= 2:
                low = high = float(values[0])
            rows.append({"measure": measure, "architecture": architecture, "depth": depth,
                         "mean": float(values.mean()), "ci_low": low, "ci_high": high, "units": len(values)})
    return pd.DataFrame(rows, columns=["measure", *_CELL, "mean", "ci_low", "ci_high", "units"])


def best_settings(trials: pd.DataFrame) -> pd.DataFrame:
    """Per cell, the nuisance setting that was retrained: the repeat trials' hyperparameters
    (``source`` 'repeat'), or the tuning trial with the lowest best_val_loss when a cell has
    no repeat trials (``source`` 'tune')."""
    repeat = _phase(trials, REPEAT).sort_values([*_CELL, "trial_id"], kind="stable")
    chosen = repeat.drop_duplicates(_CELL, keep="first").assign(source=REPEAT)
    tune = _phase(trials, TUNE)
    if "best_val_loss" in tune.columns:
        tune = tune.dropna(subset=["best_val_loss"]).sort_values([*_CELL, "best_val_loss", "trial_id"], kind="stable")
        tune = tune.drop_duplicates(_CELL, keep="first")
        have = set(map(tuple, chosen[_CELL].to_numpy().tolist()))
        missing = [tuple(cell) not in have for cell in tune[_CELL].to_numpy().tolist()]
        chosen = pd.concat([chosen, tune.loc[missing].assign(source=TUNE)], ignore_index=True)
    return chosen.sort_values(_CELL, kind="stable").reset_index(drop=True)


def learning_curve_table(epochs: pd.DataFrame, trials: pd.DataFrame) -> pd.DataFrame:
    """Inference-mode train and validation loss per epoch of each cell's retrained best setting.

    Long format: architecture, depth, epoch, split ('train' or 'validation'),
    mean, low, high (the range over seeds, drawn as a band) and seeds (how many
    seeds reached that epoch). Cells without repeat trials use their best tuning trial.
    """
    chosen = best_settings(trials)
    keys = _keys(epochs)
    wanted = _phase(trials, REPEAT)[keys]
    tune_cells = chosen.loc[chosen["source"] == TUNE, keys]
    wanted = pd.concat([wanted, tune_cells], ignore_index=True)
    rows = epochs.merge(wanted, on=keys, how="inner")
    parts = []
    for split, column in (("train", "train_loss"), ("validation", "val_loss")):
        values = rows.assign(value=_finite(rows[column])).dropna(subset=["value"])
        grouped = values.groupby([*_CELL, "epoch"], sort=True)["value"]
        part = pd.DataFrame({"mean": grouped.mean(), "low": grouped.min(), "high": grouped.max(),
                             "seeds": grouped.count()}).reset_index()
        parts.append(part.assign(split=split))
    table = pd.concat(parts, ignore_index=True)
    return table[[*_CELL, "epoch", "split", "mean", "low", "high", "seeds"]].sort_values(
        [*_CELL, "split", "epoch"], kind="stable").reset_index(drop=True)


def _space_hyperparameters(space: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if not space:
        return {}
    return space.get("hyperparameters", space)


def nuisance_names(trials: pd.DataFrame, space: Mapping[str, Any] | None = None) -> list[str]:
    """Nuisance hyperparameters: role 'nuisance' in the space, else the columns that vary over tuning trials."""
    specs = _space_hyperparameters(space)
    if specs:
        return [name for name, spec in specs.items() if spec.get("role") == "nuisance" and name in trials.columns]
    tune = _phase(trials, TUNE)
    return [column for column in HYPERPARAMETER_COLUMNS
            if column in tune.columns and column not in _CELL and tune[column].nunique(dropna=True) > 1]


def search_edges(space: Mapping[str, Any] | None, *, edge_fraction: float = 0.05) -> pd.DataFrame:
    """Per numeric nuisance hyperparameter: its searched range and the edge zones.

    low/high: the range (min/max, or the lowest/highest listed value); log:
    log-scale range; low_edge/high_edge: the points ``edge_fraction`` of the
    range inside each edge (in log space for log ranges). Best values beyond
    them sit on a boundary, the same rule as study.report.boundary_position.
    """
    rows = []
    for name, spec in _space_hyperparameters(space).items():
        if spec.get("role") != "nuisance":
            continue
        if "values" in spec:
            listed = [value for value in spec["values"]]
            if len(listed) < 2 or not all(isinstance(value, numbers.Real) and not isinstance(value, bool)
                                          for value in listed):
                continue
            low, high, log = float(min(listed)), float(max(listed)), False
        elif "min" in spec and "max" in spec:
            low, high, log = float(spec["min"]), float(spec["max"]), bool(spec.get("log", False))
        else:
            continue
        if high <= low:
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


def nuisance_value_table(trials: pd.DataFrame, space: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Long table of numeric nuisance values against best validation loss over the tuning trials:
    hyperparameter, value, best_val_loss, architecture, depth, classification, best_in_cell (the
    trial with the lowest best_val_loss of its cell, i.e. the setting that won the tuning)."""
    tune = _phase(trials, TUNE)
    if "best_val_loss" in tune.columns:
        winners = tune.dropna(subset=["best_val_loss"]).sort_values([*_CELL, "best_val_loss", "trial_id"],
                                                                    kind="stable").drop_duplicates(_CELL)
        winner = pd.Series(tune.index.isin(winners.index), index=tune.index)
    else:
        winner = pd.Series(False, index=tune.index)
    parts = []
    for name in nuisance_names(trials, space):
        values = pd.to_numeric(tune[name], errors="coerce")
        if values.notna().sum() == 0:
            continue  # a categorical choice (e.g. weight_decay_type) has no axis to draw
        parts.append(pd.DataFrame({
            "hyperparameter": name, "value": values.astype(float),
            "best_val_loss": _finite(tune["best_val_loss"]) if "best_val_loss" in tune.columns else math.nan,
            "architecture": tune["architecture"], "depth": tune["depth"], "classification": tune["classification"],
            "best_in_cell": winner,
        }).dropna(subset=["value"]))
    columns = ["hyperparameter", "value", "best_val_loss", *_CELL, "classification", "best_in_cell"]
    return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)


def gap_heatmap_table(
    trials: pd.DataFrame, hyperparameter: str, *, measure: str = "gap_at_best", bins: int = 4,
    space: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Mean gap per architecture, depth and bin of one nuisance hyperparameter (tuning trials that trained).

    Bins are equal-width over the searched range (from the space when given,
    else the data), geometric when the range is log or spans more than a decade
    of positive values; exact zeros get their own bin '0'. Long format:
    architecture, depth, bin (label), bin_order, mean, trials.
    """
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins!r}")
    rows = _phase(trials, TUNE)
    rows = rows.loc[rows["trained"]]
    columns = ["hyperparameter", *_CELL, "bin", "bin_order", "mean", "trials"]
    if hyperparameter not in rows.columns or measure not in rows.columns:
        return pd.DataFrame(columns=columns)
    values = pd.to_numeric(rows[hyperparameter], errors="coerce").astype(float)
    rows = rows.assign(_x=values, _y=_finite(rows[measure])).dropna(subset=["_x", "_y"])
    if rows.empty:
        return pd.DataFrame(columns=columns)
    edges_row = search_edges(space)
    edges_row = edges_row.loc[edges_row["hyperparameter"] == hyperparameter]
    positive = rows.loc[rows["_x"] > 0, "_x"]
    low, high = (float(edges_row["low"].iloc[0]), float(edges_row["high"].iloc[0])) if not edges_row.empty \
        else (float(rows["_x"].min()), float(rows["_x"].max()))
    log = bool(edges_row["log"].iloc[0]) if not edges_row.empty else False
    if not positive.empty and (log or (positive.max() / positive.min() > 10)):
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
    grouped = rows.groupby([*_CELL, "bin_order", "bin"], sort=True)["_y"]
    table = pd.DataFrame({"mean": grouped.mean(), "trials": grouped.count()}).reset_index()
    return table.assign(hyperparameter=hyperparameter)[columns]


# ---------------------------------------------------------------- 4. verdict


@dataclass(frozen=True)
class Statement:
    """One statement of the verdict, decided by the interval of its primary slope difference."""

    claim: str
    status: str
    measure: str
    direction: str
    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    explanation: str


@dataclass(frozen=True)
class Verdict:
    """The answer: two statements, what was held fixed, caveats from the data, and the numbers behind them.

    ``slopes`` is :func:`depth_slope_table` (every measure, primary and others).
    """

    trainability: Statement
    overfitting: Statement
    caveats: tuple[str, ...]
    held_fixed: tuple[str, ...]
    thresholds: Thresholds
    first: str
    second: str
    confidence: float
    resamples: int
    seed: int
    slopes: pd.DataFrame = field(compare=False, repr=False)

    @property
    def statements(self) -> tuple[Statement, Statement]:
        return (self.trainability, self.overfitting)


def _claim(question: str, first: str, second: str) -> str:
    if question == "trainability":
        return f"deeper {first.upper()}s are harder to train than deeper {second.upper()}s"
    return f"deeper {first.upper()}s overfit faster than deeper {second.upper()}s"


def _number(value: float) -> str:
    return "n/a" if value is None or not math.isfinite(float(value)) else f"{float(value):.3g}"


def _statement(slopes: pd.DataFrame, measure: str, first: str, second: str, confidence: float,
               resamples: int) -> Statement:
    definition = measure_definition(measure)
    claim = _claim(definition.question, first, second)
    side = "below" if definition.supports_sign < 0 else "above"
    direction = (f"slope of {measure} per doubling of depth, {first} minus {second}; "
                 f"an interval entirely {side} 0 supports the statement")
    row = slopes.loc[slopes["measure"] == measure]
    if row.empty:
        return Statement(claim, INCONCLUSIVE, measure, direction, math.nan, math.nan, math.nan, math.nan,
                         f"{measure} was not measured, so nothing decides the statement.")
    row = row.iloc[0]
    level = f"{confidence:.0%}"
    if not math.isfinite(row["difference"]):
        missing = [name for name, depths in ((first, row["depths_first"]), (second, row["depths_second"]))
                   if depths < 2]
        explanation = (f"{measure} ({definition.meaning}) has no slope for {', '.join(missing) or 'an architecture'}: "
                       f"it needs {definition.phase}-phase units at two or more depths.")
        return Statement(claim, INCONCLUSIVE, measure, direction, math.nan, math.nan, math.nan, math.nan, explanation)
    status = row["status"]
    verdict_words = {SUPPORTED: f"The interval lies entirely {side} 0: supported.",
                     CONTRADICTED: "The interval lies entirely on the other side of 0: contradicted.",
                     INCONCLUSIVE: "The interval contains 0: inconclusive."}[status]
    explanation = (
        f"Primary measure {measure}: {definition.meaning}. Per doubling of depth it changes by "
        f"{_number(row['slope_first'])} [{_number(row['slope_first_low'])}, {_number(row['slope_first_high'])}] "
        f"for {first} ({int(row['units_first'])} units over {int(row['depths_first'])} depths) and by "
        f"{_number(row['slope_second'])} [{_number(row['slope_second_low'])}, {_number(row['slope_second_high'])}] "
        f"for {second} ({int(row['units_second'])} units over {int(row['depths_second'])} depths). "
        f"Difference {_number(row['difference'])}, {level} interval [{_number(row['ci_low'])}, "
        f"{_number(row['ci_high'])}] ({resamples} bootstrap resamples within cells), permutation p = "
        f"{_number(row['p_value'])}. {verdict_words}"
    )
    others = slopes.loc[(slopes["question"] == definition.question) & (slopes["measure"] != measure)]
    if not others.empty:
        explanation += " Other measures: " + "; ".join(
            f"{other['measure']} difference {_number(other['difference'])} [{_number(other['ci_low'])}, "
            f"{_number(other['ci_high'])}] ({other['status']})" for _, other in others.iterrows()) + "."
    return Statement(claim, status, measure, direction, float(row["difference"]), float(row["ci_low"]),
                     float(row["ci_high"]), float(row["p_value"]), explanation)


def _cell_text(architecture: Any, depth: Any) -> str:
    depth_text = f"{int(depth)}" if float(depth).is_integer() else f"{depth}"
    return f"{architecture} depth {depth_text}"


def _boundary_rows(trials: pd.DataFrame, space: Mapping[str, Any] | None,
                   boundary: pd.DataFrame | None) -> pd.DataFrame:
    """On-boundary rows: the given boundary frame (rows with on_boundary true), or computed from the space."""
    if boundary is None:
        if not space:
            return pd.DataFrame()
        chosen = best_settings(trials)
        if chosen.empty:
            return pd.DataFrame()
        specs = _space_hyperparameters(space)
        boundary = boundary_table(chosen, {"hyperparameters": specs})
    if boundary.empty:
        return boundary
    if "on_boundary" in boundary.columns:
        boundary = boundary.loc[boundary["on_boundary"].astype(bool)]
    return boundary


def data_caveats(
    trials: pd.DataFrame, *, thresholds: Thresholds = Thresholds(), space: Mapping[str, Any] | None = None,
    boundary: pd.DataFrame | None = None, trial_status: pd.DataFrame | None = None,
    first: str = "lstm", second: str = "cnn",
) -> list[str]:
    """Caveats found in the data: boundary optima, failed trials, too few seeds, curves still improving.

    ``boundary``: study.report.boundary_table output (or any frame with
    hyperparameter and, optionally, on_boundary/architecture/depth/value/edge);
    computed from ``space`` for each cell's best setting when None.
    ``trial_status``: trials.csv, for trials that crashed ('failed' status).
    """
    caveats: list[str] = []
    compared = trials.loc[trials["architecture"].isin([first, second])]
    specs = _space_hyperparameters(space)
    extra = [name for name, spec in specs.items() if spec.get("role") == "scientific" and name not in _CELL]
    if extra:
        caveats.append(f"Other scientific hyperparameters also vary ({', '.join(extra)}); "
                       "the depth slopes pool over them.")

    on_edge = _boundary_rows(compared, space, boundary)
    if not on_edge.empty:
        if "architecture" in on_edge.columns:
            on_edge = on_edge.loc[on_edge["architecture"].astype(str).isin([first, second])]
        for _, row in on_edge.iterrows():
            has_cell = {"architecture", "depth"} <= set(row.index)
            cell = _cell_text(row["architecture"], row["depth"]) if has_cell else "a cell"
            value = f" = {row['value']}" if "value" in row.index else ""
            edge = f" on the {row['edge']} edge" if "edge" in row.index and row["edge"] else " on an edge"
            searched = f" of {row['search_range']}" if "search_range" in row.index else ""
            caveats.append(f"{cell}: best {row['hyperparameter']}{value} lies{edge}{searched}; the optimum may lie "
                           "outside the searched range, so this cell's comparison may be unfair.")

    for phase in (TUNE, REPEAT):
        rows = _phase(compared, phase)
        failed = rows.loc[~rows["trained"]]
        if failed.empty:
            continue
        per_cell = failed.groupby(_CELL, sort=True).size()
        totals = rows.groupby(_CELL, sort=True).size()
        text = "; ".join(f"{_cell_text(a, d)}: {n} of {totals[(a, d)]}" for (a, d), n in per_cell.items())
        use = ("they count against trainability" if phase == TUNE
               else "they are left out of the overfitting measures and kept in best_train_loss")
        caveats.append(f"{len(failed)} {phase} trial(s) failed to train (train loss never fell below "
                       f"{1 - thresholds.train_drop_fraction:.2g} x chance): {text}; {use}.")

    if trial_status is not None and "status" in trial_status.columns:
        crashed = trial_status.loc[trial_status["status"].astype(str) == "failed"]
        if not crashed.empty:
            phases = crashed["phase"].value_counts().to_dict() if "phase" in crashed.columns else {"all": len(crashed)}
            caveats.append("Trials that crashed (status 'failed' in trials.csv, no usable curve): "
                           + ", ".join(f"{count} {phase}" for phase, count in sorted(phases.items())) + ".")

    repeat = _phase(compared, REPEAT)
    if repeat.empty:
        caveats.append("No repeat-phase trials: the overfitting slopes and seed intervals cannot be estimated.")
    else:
        trained_seeds = repeat.loc[repeat["trained"]].groupby(_CELL, sort=True).size()
        cells = repeat[_CELL].drop_duplicates().sort_values(_CELL)
        few = [(a, d, int(trained_seeds.get((a, d), 0))) for a, d in cells.itertuples(index=False)
               if trained_seeds.get((a, d), 0) < thresholds.minimum_seeds]
        if few:
            caveats.append(f"Fewer than {thresholds.minimum_seeds} trained seeds in: "
                           + "; ".join(f"{_cell_text(a, d)} ({n})" for a, d, n in few)
                           + "; its intervals rest on very few resamples.")
        still = repeat.loc[repeat["trained"] & repeat["still_improving"].astype(bool)]
        if not still.empty:
            per_cell = still.groupby(_CELL, sort=True).size()
            caveats.append("Validation loss still falling at the last epoch (best epoch = last epoch, so best_epoch "
                           "is censored by the epoch budget) in: "
                           + "; ".join(f"{_cell_text(a, d)} ({n} seed(s))" for (a, d), n in per_cell.items()) + ".")
    return caveats


def held_fixed(trials: pd.DataFrame, space: Mapping[str, Any] | None = None) -> list[str]:
    """What was held fixed: the space's fixed hyperparameters (or the columns constant over all
    trials), and how the nuisances were handled."""
    specs = _space_hyperparameters(space)
    lines = []
    if specs:
        fixed = fixed_values({"hyperparameters": specs})
        if fixed:
            lines.append("Fixed: " + ", ".join(f"{name}={value}" for name, value in fixed.items()) + ".")
    else:
        constant = [column for column in HYPERPARAMETER_COLUMNS if column in trials.columns and column not in _CELL
                    and trials[column].nunique(dropna=False) == 1]
        if constant:
            lines.append("Constant over all trials: " + ", ".join(
                f"{column}={trials[column].iloc[0]}" for column in constant) + ".")
    nuisance = nuisance_names(trials, space)
    if nuisance:
        lines.append("Tuned afresh in every cell with the same budget (nuisance): " + ", ".join(nuisance)
                     + "; each cell's best setting was retrained with several seeds (repeat phase).")
    lines.append("Train and validation losses are pure data losses evaluated in inference mode.")
    return lines


def verdict_from_trials(
    trials: pd.DataFrame, *, space: Mapping[str, Any] | None = None, boundary: pd.DataFrame | None = None,
    trial_status: pd.DataFrame | None = None, thresholds: Thresholds = Thresholds(), first: str = "lstm",
    second: str = "cnn", resamples: int = 2000, seed: int = 0, confidence: float = 0.95,
    slopes: pd.DataFrame | None = None,
) -> Verdict:
    """:func:`verdict` from a :func:`trial_frame` (and, optionally, its precomputed slope table)."""
    present = sorted(set(trials["architecture"].astype(str)))
    for architecture in (first, second):
        if architecture not in present:
            raise BadInput(f"architecture {architecture!r} has no trials, allowed: "
                           + ", ".join(repr(name) for name in present), key="architecture")
    if slopes is None:
        slopes = depth_slope_table(trials, first=first, second=second, resamples=resamples, seed=seed,
                                   confidence=confidence)
    statements = [_statement(slopes, PRIMARY_MEASURES[question], first, second, confidence, resamples)
                  for question in ("trainability", "overfitting")]
    return Verdict(
        trainability=statements[0], overfitting=statements[1],
        caveats=tuple(data_caveats(trials, thresholds=thresholds, space=space, boundary=boundary,
                                   trial_status=trial_status, first=first, second=second)),
        held_fixed=tuple(held_fixed(trials, space)), thresholds=thresholds, first=first, second=second,
        confidence=confidence, resamples=resamples, seed=seed, slopes=slopes,
    )


def verdict(
    epochs: pd.DataFrame, measures: pd.DataFrame | None = None, *, num_classes: int,
    space: Mapping[str, Any] | None = None, boundary: pd.DataFrame | None = None,
    trial_status: pd.DataFrame | None = None, thresholds: Thresholds = Thresholds(),
    chance_loss: float | None = None, first: str = "lstm", second: str = "cnn", resamples: int = 2000,
    seed: int = 0, confidence: float = 0.95,
) -> Verdict:
    """Decide "deeper FIRSTs are harder to train / overfit faster than deeper SECONDs".

    Each statement is decided by the interval of one primary slope difference
    (first minus second, per doubling of depth): trainability by
    trainable_fraction (negative supports: a smaller share of tuned settings
    trains as depth grows), overfitting by best_epoch over repeat seeds that
    trained (negative supports: the validation minimum comes earlier as depth
    grows). The other measures are shown beside it. ``space`` is the manifest's
    space (or its hyperparameters mapping); ``trial_status`` is trials.csv.
    """
    trials = trial_frame(epochs, measures, num_classes=num_classes, thresholds=thresholds, chance_loss=chance_loss)
    return verdict_from_trials(trials, space=space, boundary=boundary, trial_status=trial_status,
                               thresholds=thresholds, first=first, second=second, resamples=resamples, seed=seed,
                               confidence=confidence)


@dataclass(frozen=True)
class Analysis:
    """Everything the reports show: the verdict, tables by name, and the frames the figures draw."""

    verdict: Verdict
    trials: pd.DataFrame = field(repr=False)
    tables: dict[str, pd.DataFrame] = field(repr=False)
    figure_frames: dict[str, Any] = field(repr=False)


def analyse(
    epochs: pd.DataFrame, measures: pd.DataFrame | None = None, *, num_classes: int,
    space: Mapping[str, Any] | None = None, boundary: pd.DataFrame | None = None,
    trial_status: pd.DataFrame | None = None, thresholds: Thresholds = Thresholds(),
    chance_loss: float | None = None, first: str = "lstm", second: str = "cnn", resamples: int = 2000,
    seed: int = 0, confidence: float = 0.95,
) -> Analysis:
    """The verdict plus every table and figure frame, from the study tables (pure).

    ``figure_frames`` holds the keyword arguments of :func:`study.figures.write_figures`
    (frames, plus the chance loss and the trained-below threshold for the train-loss panel).
    """
    trials = trial_frame(epochs, measures, num_classes=num_classes, thresholds=thresholds, chance_loss=chance_loss)
    result = verdict_from_trials(trials, space=space, boundary=boundary, trial_status=trial_status,
                                 thresholds=thresholds, first=first, second=second, resamples=resamples,
                                 seed=seed, confidence=confidence)
    trainability = trainability_table(trials, confidence=confidence)
    summary_measures = [name for name in ("gap_at_best", "gap_growth", "best_epoch", "overfit_onset")
                        if name in trials.columns]
    summary = cell_summary(trials, summary_measures, resamples=resamples, seed=seed, confidence=confidence)
    heatmaps = pd.concat([gap_heatmap_table(trials, name, space=space) for name in HEATMAP_HYPERPARAMETERS],
                         ignore_index=True)
    counts = trials.groupby([*([c for c in ["phase"] if c in trials.columns]), *_CELL, "classification"],
                            sort=True).size().rename("trials").reset_index()
    tables = {
        "slopes": result.slopes,
        "trainability": trainability,
        "kendall_tau": granulated_kendall_tau(trials),
        "classification": counts,
        "thresholds": thresholds.table(),
    }
    figure_frames = {
        "learning_curves": learning_curve_table(epochs, trials),
        "cell_summary": summary,
        "trainability": trainability,
        "gap_heatmaps": heatmaps,
        "nuisance_values": nuisance_value_table(trials, space),
        "nuisance_edges": search_edges(space),
        "chance_loss": float(trials["chance_loss"].iloc[0]) if not trials.empty else None,
        "train_threshold": (float(trials["chance_loss"].iloc[0]) * (1 - thresholds.train_drop_fraction)
                            if not trials.empty else None),
    }
    return Analysis(verdict=result, trials=trials, tables=tables, figure_frames=figure_frames)
