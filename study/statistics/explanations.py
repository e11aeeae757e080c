"""Why? The five explanations of why ECG papers stack LSTMs 2-4 deep and CNNs 10-15 deep, and what a study says
about each (pure: tables in, tables out; no files, no drawing).

A claim of a search space may name the explanation it tests (``explanation:``, one of
:data:`study.config.EXPLANATIONS`). :func:`why_table` gathers the verdict's statements by explanation: one row
per explanation, its prediction in measurable terms, the measures and statuses of its claims with their numbers,
and one status for the row decided from those claims' statuses alone (the statuses are Holm-adjusted across all
of the study's claims already, so grouping them adds no test of its own):

* ``supported``: every claim tagged with it is supported;
* ``contradicted``: some claim is contradicted and none is supported;
* ``mixed``: some claims are supported and some contradicted;
* ``inconclusive``: anything else (a claim inconclusive or "other arm", none contradicted);
* ``not tested in this study``: no claim is tagged with it.

:func:`gradient_profile` summarises the per-trial gradient measures of gradients.csv per cell and
:func:`model_sizes` lists each cell's width, parameter count and receptive field (parameter-matched studies
solve the width per cell). The evidence of explanation 3 (receptive fields) is :func:`distance_profile`
(accuracy per cell at every level of the dataset factor that sets how far apart what must be seen is,
:func:`distance_factor`) and :func:`receptive_field_profile` (each cell's theoretical and effective receptive
field); that of explanation 2 (overfitting) is :func:`data_profile` (the gap per cell at every level of a
dataset factor that sets how much or how clean the training data are, :func:`data_factors`). Units are tuning
trials, as in every test of the verdict; every other scientific factor stays a grouping column.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Collection, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from study.config import CLAIM_MEASURES, EXPLANATIONS, Claim, level_key
from study.statistics.claims import axis_key, claim_axes
from study.statistics.effects import mean_interval
from study.statistics.rules import CONTRADICTED, INCONCLUSIVE, SUPPORTED
from study.statistics.trials import measure_units, tuning_units
from study.statistics.verdict import number, p_text

__all__ = ["DATA_FACTORS", "DATA_PROFILE_MEASURES", "DISTANCE_FACTORS", "DISTANCE_PROFILE_MEASURES",
           "EXPLANATION_DETAILS", "GRADIENT_PROFILE_COLUMNS", "MIXED", "MODEL_SIZE_COLUMNS", "NOT_TESTED",
           "RECEPTIVE_FIELD_PROFILE_COLUMNS", "WHY_COLUMNS", "WHY_FIGURE_PREFIX", "WHY_STATUSES", "Explanation",
           "data_factors", "data_profile", "distance_factor", "distance_profile", "explanation_axes",
           "gradient_profile", "has_values", "model_sizes", "profile_columns", "receptive_field_profile",
           "summarise_statuses", "why_figure_name", "why_table"]

MIXED = "mixed"
NOT_TESTED = "not tested in this study"
#: The statuses of a row of :func:`why_table`.
WHY_STATUSES = (SUPPORTED, CONTRADICTED, MIXED, INCONCLUSIVE, NOT_TESTED)
#: A study's figure of one explanation is named ``why_<explanation>`` (drawn when some claim is tagged with it).
WHY_FIGURE_PREFIX = "why_"

WHY_COLUMNS = ["explanation", "question", "prediction", "measure", "claims", "supported", "contradicted",
               "status", "evidence", "figure"]
MODEL_SIZE_COLUMNS = ["parameter_budget", "width", "parameter_count", "receptive_field"]
GRADIENT_PROFILE_COLUMNS = ["n", "gradient_ratio_mean", "gradient_ratio_low", "gradient_ratio_high", "n_at_init",
                            "gradient_ratio_at_init_mean", "gradient_ratio_at_init_low",
                            "gradient_ratio_at_init_high"]

#: Scientific dataset factors that set how far apart what a model must see is, in input samples, in the order
#: :func:`distance_factor` prefers them: ecg_events' ``event_distance`` (two events that far apart decide the
#: class), then ``length`` (T of the adding and copy-memory tasks: the whole sequence must be seen).
DISTANCE_FACTORS = ("event_distance", "length")
#: Scientific dataset factors that set how much or how clean the training data are (synthetic_ecg's ``n_strips``
#: and ``label_noise``, the long-memory tasks' ``n_sequences``): the axes of :func:`data_profile`.
DATA_FACTORS = ("n_strips", "n_sequences", "label_noise")
#: The measures of :func:`distance_profile` and :func:`data_profile` (``gap_at_target`` only when the frame has it).
DISTANCE_PROFILE_MEASURES = ("best_val_accuracy", "test_accuracy")
DATA_PROFILE_MEASURES = ("gap_at_target", "gap_at_best", "best_val_accuracy")
#: The columns of :func:`receptive_field_profile` after the cell's.
RECEPTIVE_FIELD_PROFILE_COLUMNS = ["receptive_field", "effective_receptive_field_n", "effective_receptive_field_mean",
                                   "effective_receptive_field_low", "effective_receptive_field_high"]


@dataclass(frozen=True)
class Explanation:
    """What an explanation says (one sentence), what it predicts in measurable terms, and the measures that
    would test it when no claim of the study does."""

    question: str
    prediction: str
    measures: tuple[str, ...]


EXPLANATION_DETAILS: dict[str, Explanation] = {
    "vanishing_gradients": Explanation(
        "gradients vanish or explode through deep recurrent stacks, so deep LSTMs are hard to train",
        "the loss gradient reaching the first layer shrinks relative to the last hidden layer's as LSTMs get deeper "
        "(gradient_ratio falls with depth, more than in CNNs or residual LSTMs), and gradient clipping or shortcuts "
        "lower the best train loss of deep LSTMs",
        ("gradient_ratio", "best_train_loss")),
    "overfitting": Explanation(
        "deep LSTMs overfit faster than deep CNNs, so papers stop stacking them early",
        "at matched training progress the train/validation gap grows with depth, more for LSTMs than for CNNs "
        "(gap_at_target rises with depth); where the study varies the training data, the gap (gap_at_target, "
        "gap_at_best) grows as the training set shrinks (n_strips, n_sequences) or label noise rises, and grows "
        "faster with depth for LSTMs than for CNNs",
        ("gap_at_target",)),
    "receptive_field": Explanation(
        "a CNN needs depth to see a whole beat or rhythm, while a recurrent layer sees the whole strip at depth 1",
        "CNN validation accuracy rises with depth until the receptive field (receptive_field, in input samples; "
        "effective_receptive_field: the samples holding 95% of the input-gradient mass) covers the pattern, while "
        "LSTM accuracy does not need depth; where the study varies the event distance (event_distance, or the "
        "sequence length T), accuracy falls to chance once the distance exceeds the receptive field: CNN accuracy "
        "rises with depth at long distances while a one-layer LSTM's does not fall",
        ("best_val_accuracy",)),
    "parameters": Explanation(
        "depth effects are parameter-count effects: at a fixed width a deeper model is a larger model",
        "the depth slopes of the best train loss and of the gap shrink or vanish when every cell has the same "
        "parameter count (parameter_budget) instead of the same width",
        ("best_train_loss", "gap_at_best")),
    "gating": Explanation(
        "the LSTM's multiplicative gates make deep stacks hard to optimise",
        "the best train loss rises faster with depth for gated cells (LSTM, GRU) than for an ungated RNN of the "
        "same layout",
        ("best_train_loss",)),
}
if tuple(EXPLANATION_DETAILS) != EXPLANATIONS:  # pragma: no cover - a coding error
    raise RuntimeError("EXPLANATION_DETAILS must describe study.config.EXPLANATIONS in order")


def why_figure_name(explanation: str) -> str:
    return f"{WHY_FIGURE_PREFIX}{explanation}"


def summarise_statuses(statuses: Sequence[str]) -> str:
    """One status for an explanation from the statuses of the claims tagged with it (see the module's rule)."""
    if not statuses:
        return NOT_TESTED
    supported = sum(status == SUPPORTED for status in statuses)
    contradicted = sum(status == CONTRADICTED for status in statuses)
    if supported == len(statuses):
        return SUPPORTED
    if contradicted and supported:
        return MIXED
    if contradicted:
        return CONTRADICTED
    return INCONCLUSIVE


def _p(value: Any) -> str:
    """'= 0.012', '< 0.001' or '= n/a'."""
    text = p_text(value)
    return text if text.startswith("<") else f"= {text}"


def _evidence(statement: Any) -> str:
    """One claim with its numbers: sentence (status: estimate [interval] axis, Holm p, measured error rate)."""
    low, high = statement.estimate_interval
    what = "slope" if statement.one_arm else "slope difference"
    error = statement.false_positive_rate
    error_text = f"{float(error):.1%}" if error is not None and math.isfinite(float(error)) else "not measured"
    return (f"{statement.claim} ({statement.status}: {statement.measure} {what} {number(statement.estimate)} "
            f"[{number(low)}, {number(high)}] {statement.axis}, Holm-adjusted p {_p(statement.adjusted_p_value)}, "
            f"measured error rate {error_text})")


def why_table(statements: Sequence[Any], claims: Sequence[Claim], space: Mapping[str, Any] | None = None,
              measured: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One row per explanation of :data:`study.config.EXPLANATIONS`, in that order: what it says, what it
    predicts, the measures of its claims (or the measures that would test it), how many claims test it and how
    many of them are supported / contradicted, the row's status (:func:`summarise_statuses`), the claims with
    their estimate, interval, Holm-adjusted p and measured error rate joined into one text, and the name of its
    figure (empty when no claim tests it and the study measured nothing else for it).

    ``statements`` are the verdict's, one per claim of ``claims`` in the same order (as
    :func:`study.statistics.verdict.build_statements` makes them); ``space`` is the study's search space (it
    says whether gradient norms were recorded); ``measured``: per explanation, what the study measured for it
    beyond its claims, in a few words (a distance or data profile): that explanation's row names its figure
    even when no claim is tagged with it, and its evidence says what was measured. The status is decided from
    the tagged claims alone.
    """
    if len(statements) != len(claims):
        raise ValueError(f"expected one statement per claim, got {len(statements)} statements for "
                         f"{len(claims)} claims")
    training = (space or {}).get("training") if isinstance(space, Mapping) else None
    recorded = isinstance(training, Mapping) and bool(training.get("record_gradients"))
    measured = measured or {}
    rows = []
    for explanation in EXPLANATIONS:
        details = EXPLANATION_DETAILS[explanation]
        tagged = [statement for statement, claim in zip(statements, claims) if claim.explanation == explanation]
        statuses = [str(statement.status) for statement in tagged]
        if tagged:
            counts = ", ".join(f"{statuses.count(status)} {status}" for status in dict.fromkeys(statuses))
            evidence = f"{len(tagged)} claim{'s' if len(tagged) != 1 else ''} ({counts}): " + "; ".join(
                _evidence(statement) for statement in tagged)
            measures = ", ".join(dict.fromkeys(str(statement.measure) for statement in tagged))
        else:
            evidence = "no claim of this study is tagged with it"
            if explanation == "vanishing_gradients" and recorded:
                evidence += " (gradient norms were recorded: see the gradient ratio per cell)"
            elif explanation in measured:
                evidence += f" ({measured[explanation]})"
            measures = ", ".join(details.measures) + " (none claimed here)"
        drawn = bool(tagged) or explanation in measured
        rows.append({"explanation": explanation, "question": details.question, "prediction": details.prediction,
                     "measure": measures, "claims": len(tagged), "supported": statuses.count(SUPPORTED),
                     "contradicted": statuses.count(CONTRADICTED), "status": summarise_statuses(statuses),
                     "evidence": evidence, "figure": why_figure_name(explanation) if drawn else ""})
    return pd.DataFrame(rows, columns=WHY_COLUMNS)


def explanation_axes(claims: Sequence[Claim]) -> dict[str, list[tuple[int, str]]]:
    """Per explanation with claims: the (axis id, measure) of each of its claims, as the factor_profile table
    numbers the axes (:func:`study.statistics.claims.claim_axes`), in claim order without repeats."""
    axis_ids = {axis_key(group[0]): axis_id for axis_id, group in claim_axes(claims)}
    result: dict[str, list[tuple[int, str]]] = {}
    for claim in claims:
        if claim.explanation:
            pair = (axis_ids[axis_key(claim)], claim.measure)
            pairs = result.setdefault(claim.explanation, [])
            if pair not in pairs:
                pairs.append(pair)
    return {explanation: result[explanation] for explanation in EXPLANATIONS if explanation in result}


def _cell_columns(frame: pd.DataFrame, scientific: Sequence[str]) -> list[str]:
    """Architecture and depth first (when the frame has them), then every other scientific factor."""
    first = [name for name in ("architecture", "depth") if name in frame.columns]
    return [*first, *(name for name in scientific if name in frame.columns and name not in first)]


def gradient_profile(frame: pd.DataFrame, scientific: Sequence[str], *, resamples: int = 2000, seed: int = 0,
                     confidence: float = 0.95) -> pd.DataFrame:
    """Per cell (architecture x depth x the other scientific factors), over the tuning trials (units) with a
    finite gradient_ratio: their number, the mean gradient_ratio with a percentile-bootstrap interval, and the
    same for gradient_ratio_at_init (over the units that have it). An empty frame with the columns when the
    study recorded no gradients."""
    cell = _cell_columns(frame, scientific)
    columns = [*cell, *GRADIENT_PROFILE_COLUMNS]
    if "gradient_ratio" not in frame.columns or frame.empty:
        return pd.DataFrame(columns=columns)
    units = tuning_units(frame)
    ratio = pd.to_numeric(units["gradient_ratio"], errors="coerce")
    units = units.loc[np.isfinite(ratio.to_numpy(dtype=float, na_value=np.nan))]
    if units.empty:
        return pd.DataFrame(columns=columns)
    rng = np.random.default_rng(seed)
    tail = (1.0 - confidence) / 2.0
    rows = []
    for key, group in units.groupby(cell, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        row: dict[str, Any] = dict(zip(cell, key))
        for measure, prefix, count in (("gradient_ratio", "gradient_ratio", "n"),
                                       ("gradient_ratio_at_init", "gradient_ratio_at_init", "n_at_init")):
            values = pd.to_numeric(group[measure], errors="coerce").to_numpy(dtype=float, na_value=np.nan) \
                if measure in group.columns else np.array([], dtype=float)
            values = values[np.isfinite(values)]
            low, high = (mean_interval(values, binary=False, rng=rng, resamples=resamples, tail=tail)
                         if len(values) else (math.nan, math.nan))
            row.update({count: int(len(values)), f"{prefix}_mean": float(values.mean()) if len(values) else math.nan,
                        f"{prefix}_low": low, f"{prefix}_high": high})
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def _shared(values: pd.Series) -> Any:
    """The value every trial of a cell shares (an int when it is whole), 'low-high' when they differ, NaN when
    none has one."""
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    numbers = numbers[np.isfinite(numbers)]
    if not len(numbers):
        return math.nan

    def shown(value: float) -> Any:
        return int(value) if float(value).is_integer() else float(value)

    low, high = numbers.min(), numbers.max()
    return shown(low) if low == high else f"{shown(low)}-{shown(high)}"


def model_sizes(frame: pd.DataFrame, scientific: Sequence[str]) -> pd.DataFrame:
    """Per cell (architecture x depth x the other scientific factors): the parameter budget (when the frame has
    the column), the width, the parameter count and the receptive field (input samples; recurrent models: the
    input length) of its tuning trials: the value they share, or 'min-max' when they differ."""
    cell = _cell_columns(frame, scientific)
    sizes = [name for name in MODEL_SIZE_COLUMNS if name in frame.columns and name not in cell]
    units = tuning_units(frame)
    if units.empty or not cell:
        return pd.DataFrame(columns=[*cell, *sizes])
    rows = []
    for key, group in units.groupby(cell, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(cell, key)), **{name: _shared(group[name]) for name in sizes}})
    return pd.DataFrame(rows, columns=[*cell, *sizes])


# ---------------------------------------------------------------- explanations 3 and 2: distance and data profiles


def distance_factor(scientific_dataset_factors: Iterable[str]) -> str | None:
    """The scientific dataset factor that sets how far apart what must be seen is (the first of
    :data:`DISTANCE_FACTORS` among ``scientific_dataset_factors``), or None."""
    present = set(scientific_dataset_factors)
    return next((name for name in DISTANCE_FACTORS if name in present), None)


def data_factors(scientific_dataset_factors: Iterable[str]) -> list[str]:
    """The scientific dataset factors of :data:`DATA_FACTORS` among ``scientific_dataset_factors``, in that order."""
    present = set(scientific_dataset_factors)
    return [name for name in DATA_FACTORS if name in present]


def profile_columns(measure: str) -> list[str]:
    """The columns of one measure in a profile: its unit count, mean and interval."""
    return [f"{measure}_n", f"{measure}_mean", f"{measure}_low", f"{measure}_high"]


def _finite(values: Any) -> np.ndarray:
    numbers = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return numbers[np.isfinite(numbers)]


def _measure_values(frame: pd.DataFrame, measure: str, group: Sequence[str]) -> dict[tuple, np.ndarray]:
    """Per group (a key of the ``group`` columns' values) the finite values of one measure over its units: the
    verdict's units for a measure it defines (:func:`study.statistics.trials.measure_units`: tuning trials, the
    trained ones for a gap), else every tuning trial's value of that column (none when the frame lacks it)."""
    if measure in CLAIM_MEASURES:
        units = measure_units(frame, measure, [name for name in group if name not in ("architecture", "depth")])
        values = "value"
    else:
        units = tuning_units(frame)
        values = measure
        if measure not in units.columns:
            return {}
    units = units.assign(_value=pd.to_numeric(units[values], errors="coerce"))
    units = units.loc[np.isfinite(units["_value"].to_numpy(dtype=float, na_value=np.nan))]
    if units.empty:
        return {}
    return {_level_keys(key): rows["_value"].to_numpy(dtype=float)
            for key, rows in units.groupby(list(group), sort=False, dropna=False)}


def _level_keys(key: Any) -> tuple[str, ...]:
    """A group key as one spelling per level (:func:`study.config.level_key`: NaN equals NaN, 2 equals 2.0), so
    the units' groups and the trials' groups meet whatever types the columns came back with."""
    return tuple(level_key(value) for value in (key if isinstance(key, tuple) else (key,)))


def _profile(frame: pd.DataFrame, group: list[str], measures: Sequence[str], extra: Mapping[str, Any], *,
             resamples: int, seed: int, confidence: float) -> pd.DataFrame:
    """Per group of the tuning trials (``group`` columns, sorted): ``extra`` columns, then per measure its unit
    count, mean and percentile-bootstrap interval (NaN where fewer than two units)."""
    columns = [*group, *extra, *(name for measure in measures for name in profile_columns(measure))]
    units = tuning_units(frame)
    if units.empty or any(name not in units.columns for name in group):
        return pd.DataFrame(columns=columns)
    values = {measure: _measure_values(frame, measure, group) for measure in measures}
    rng = np.random.default_rng(seed)
    tail = (1.0 - confidence) / 2.0
    rows = []
    for key, _rows in units.groupby(group, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        row: dict[str, Any] = {**dict(zip(group, key)), **extra}
        for measure in measures:
            found = values[measure].get(_level_keys(key), np.array([], dtype=float))
            low, high = (mean_interval(found, binary=False, rng=rng, resamples=resamples, tail=tail)
                         if len(found) else (math.nan, math.nan))
            row.update(dict(zip(profile_columns(measure), (int(len(found)),
                                                            float(found.mean()) if len(found) else math.nan,
                                                            low, high))))
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def _factor_profile(frame: pd.DataFrame, scientific: Sequence[str], factor: str, measures: Sequence[str], *,
                    resamples: int, seed: int, confidence: float) -> pd.DataFrame:
    """Per cell without ``factor`` (architecture, depth, the other scientific factors) and level of ``factor``:
    columns ``factor`` (its name) and ``level``, then each measure's count, mean and interval."""
    cell = [name for name in _cell_columns(frame, scientific) if name != factor]
    columns = [*cell, "factor", "level", *(name for measure in measures for name in profile_columns(measure))]
    if factor not in frame.columns or frame.empty:
        return pd.DataFrame(columns=columns)
    profile = _profile(frame, [*cell, factor], measures, {"factor": factor}, resamples=resamples, seed=seed,
                       confidence=confidence)
    return profile.rename(columns={factor: "level"}).reindex(columns=columns)


def distance_profile(frame: pd.DataFrame, scientific: Sequence[str], distance_factor: str, *,
                     resamples: int = 2000, seed: int = 0, confidence: float = 0.95) -> pd.DataFrame:
    """Explanation 3's measure: per cell (architecture x depth x the other scientific factors) and level of the
    distance factor (:func:`distance_factor`), the mean best validation accuracy (the verdict's units: tuning
    trials, crashed ones left out) and test accuracy (tuning trials that have one) with percentile-bootstrap
    intervals and their unit counts. Columns: the cell's, ``factor`` (the distance factor's name), ``level``,
    then ``<measure>_n``, ``_mean``, ``_low``, ``_high`` per measure of :data:`DISTANCE_PROFILE_MEASURES`."""
    return _factor_profile(frame, scientific, distance_factor, DISTANCE_PROFILE_MEASURES, resamples=resamples,
                           seed=seed, confidence=confidence)


def data_profile(frame: pd.DataFrame, scientific: Sequence[str], data_factor: str, *, resamples: int = 2000,
                 seed: int = 0, confidence: float = 0.95) -> pd.DataFrame:
    """Explanation 2's measure where a study varies its training data: per cell (architecture x depth x the
    other scientific factors) and level of ``data_factor`` (one of :data:`DATA_FACTORS`), the mean gap at
    matched progress (gap_at_target, the verdict's overfitting measure, when the frame has it), the gap at the
    best epoch (both over the tuning trials that trained, as the verdict counts them) and the best validation
    accuracy, with percentile-bootstrap intervals and unit counts. Columns as :func:`distance_profile`'s."""
    measures = [measure for measure in DATA_PROFILE_MEASURES
                if measure != "gap_at_target" or measure in frame.columns]
    return _factor_profile(frame, scientific, data_factor, measures, resamples=resamples, seed=seed,
                           confidence=confidence)


def _theoretical(values: pd.Series) -> float:
    """A cell's theoretical receptive field: the value its trials share, else their median (NaN: none)."""
    numbers = _finite(values)
    if not len(numbers):
        return math.nan
    return float(numbers[0]) if (numbers == numbers[0]).all() else float(np.median(numbers))


def receptive_field_profile(frame: pd.DataFrame, scientific: Sequence[str], *, resamples: int = 2000, seed: int = 0,
                            confidence: float = 0.95) -> pd.DataFrame:
    """Per cell (architecture x depth x the other scientific factors, the distance factor included: an LSTM
    sees its whole input, so its field grows with T): the theoretical receptive field of its tuning trials (the
    value they share, else their median; input samples), and the mean effective receptive field (the fewest
    input samples holding 95% of the input-gradient mass, at the restored best epoch) with a
    percentile-bootstrap interval over the tuning trials that have one and their count (0: not recorded).
    Cells with neither are left out; a frame without ``receptive_field`` gives the columns and no rows."""
    cell = _cell_columns(frame, scientific)
    columns = [*cell, *RECEPTIVE_FIELD_PROFILE_COLUMNS]
    units = tuning_units(frame)
    if "receptive_field" not in frame.columns or units.empty or not cell:
        return pd.DataFrame(columns=columns)
    effective = _profile(frame, cell, ("effective_receptive_field",), {}, resamples=resamples, seed=seed,
                         confidence=confidence)
    theoretical = [_theoretical(rows["receptive_field"])
                   for _key, rows in units.groupby(cell, sort=True, dropna=False)]
    profile = effective.assign(receptive_field=theoretical)
    keep = profile["receptive_field"].notna() | (profile["effective_receptive_field_n"] > 0)
    return profile.loc[keep].reindex(columns=columns).reset_index(drop=True)


def has_values(frame: pd.DataFrame, columns: Collection[str]) -> bool:
    """Whether some tuning trial of the frame has a finite value in one of ``columns``."""
    units = tuning_units(frame)
    return any(len(_finite(units[name])) for name in columns if name in units.columns)
