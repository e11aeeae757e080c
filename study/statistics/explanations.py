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
solve the width per cell). Units are tuning trials, as in every test of the verdict.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from study.config import EXPLANATIONS, Claim
from study.statistics.claims import axis_key, claim_axes
from study.statistics.effects import mean_interval
from study.statistics.rules import CONTRADICTED, INCONCLUSIVE, SUPPORTED
from study.statistics.trials import tuning_units
from study.statistics.verdict import number, p_text

__all__ = ["EXPLANATION_DETAILS", "GRADIENT_PROFILE_COLUMNS", "MIXED", "MODEL_SIZE_COLUMNS", "NOT_TESTED",
           "WHY_COLUMNS", "WHY_FIGURE_PREFIX", "WHY_STATUSES", "Explanation", "explanation_axes", "gradient_profile",
           "model_sizes", "summarise_statuses", "why_figure_name", "why_table"]

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
        "(gap_at_target rises with depth)",
        ("gap_at_target",)),
    "receptive_field": Explanation(
        "a CNN needs depth to see a whole beat or rhythm, while a recurrent layer sees the whole strip at depth 1",
        "CNN validation accuracy rises with depth until the receptive field (receptive_field, in input samples) "
        "covers the pattern, while LSTM accuracy does not need depth",
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


def why_table(statements: Sequence[Any], claims: Sequence[Claim], space: Mapping[str, Any] | None = None
              ) -> pd.DataFrame:
    """One row per explanation of :data:`study.config.EXPLANATIONS`, in that order: what it says, what it
    predicts, the measures of its claims (or the measures that would test it), how many claims test it and how
    many of them are supported / contradicted, the row's status (:func:`summarise_statuses`), the claims with
    their estimate, interval, Holm-adjusted p and measured error rate joined into one text, and the name of its
    figure (empty when no claim tests it).

    ``statements`` are the verdict's, one per claim of ``claims`` in the same order (as
    :func:`study.statistics.verdict.build_statements` makes them); ``space`` is the study's search space (it
    says whether gradient norms were recorded).
    """
    if len(statements) != len(claims):
        raise ValueError(f"expected one statement per claim, got {len(statements)} statements for "
                         f"{len(claims)} claims")
    training = (space or {}).get("training") if isinstance(space, Mapping) else None
    recorded = isinstance(training, Mapping) and bool(training.get("record_gradients"))
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
            measures = ", ".join(details.measures) + " (none claimed here)"
        rows.append({"explanation": explanation, "question": details.question, "prediction": details.prediction,
                     "measure": measures, "claims": len(tagged), "supported": statuses.count(SUPPORTED),
                     "contradicted": statuses.count(CONTRADICTED), "status": summarise_statuses(statuses),
                     "evidence": evidence, "figure": why_figure_name(explanation) if tagged else ""})
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
