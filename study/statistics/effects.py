"""What a factor does, per arm and stratum: the profile of a claim's measure over the factor's levels, the
change per unit of the factor, and what it cost in validation accuracy.

A regularisation claim ("dropout narrows the gap") is decided by the tests of
:mod:`study.statistics.verdict`; a reader also wants to see the effect itself:
the gap at every dropout rate for every architecture and depth, with intervals
(:func:`factor_profile`), how much gap one unit of the regulariser closed and
how much validation accuracy it cost or gained (:func:`factor_effects`). Both
are pure functions of the trial frame; units are tuning trials, as in the tests.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from study.config import Claim
from study.statistics.claims import claim_axes, claim_columns, claim_units
from study.statistics.inference import fixed_effects_slope
from study.statistics.trials import measure_available, measure_definition, measure_units

#: The measure every profile adds beside the claim's own: what the factor cost in validation accuracy.
COST_MEASURE = "best_val_accuracy"
PROFILE_COLUMNS = ["axis_id", "factor", "measure", "arm", "stratum", "level", "x", "mean", "ci_low", "ci_high",
                   "units"]
EFFECT_COLUMNS = ["axis_id", "factor", "axis", "measure", "arm", "stratum", "slope", "slope_low", "slope_high",
                  "change", "from_level", "to_level", "units"]


def _axes(claims: Sequence[Claim]) -> list[tuple[int, Claim, list[str]]]:
    """(axis id, its first claim, the measures to show: its claims' and the cost measure) per claim axis."""
    return [(axis_id, group[0], list(dict.fromkeys([*(claim.measure for claim in group), COST_MEASURE])))
            for axis_id, group in claim_axes(claims)]


def _units(trials: pd.DataFrame, claim: Claim, measure: str, scientific: Sequence[str]) -> pd.DataFrame:
    if not measure_available(trials, measure):
        return pd.DataFrame(columns=["arm", "x", "level", "stratum", "value"])
    return claim_units(measure_units(trials, measure, claim_columns(claim, scientific)), claim, scientific)


def mean_interval(values: np.ndarray, *, binary: bool, rng: np.random.Generator, resamples: int,
                  tail: float) -> tuple[float, float]:
    """A cell mean's interval: Jeffreys for 0/1 units (never zero-width where all or none trained), else the
    percentile bootstrap of the mean; (nan, nan) for a single continuous unit."""
    if binary:
        successes = values.sum()
        low, high = stats.beta.ppf([tail, 1 - tail], successes + 0.5, len(values) - successes + 0.5)
    elif len(values) >= 2:
        means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
        low, high = np.quantile(means, [tail, 1 - tail])
    else:
        return math.nan, math.nan
    return float(low), float(high)


def factor_profile(trials: pd.DataFrame, claims: Sequence[Claim], scientific: Sequence[str], *,
                   resamples: int = 2000, seed: int = 0, confidence: float = 0.95) -> pd.DataFrame:
    """Mean of each claim's measure (and of validation accuracy) per arm, stratum and factor level, with a
    percentile-bootstrap interval (Jeffreys for 0/1 units) and the number of units."""
    rng = np.random.default_rng(seed)
    tail = (1.0 - confidence) / 2.0
    rows = []
    for axis_id, claim, measures in _axes(claims):
        for measure in measures:
            binary = measure_definition(measure).binary
            units = _units(trials, claim, measure, scientific)
            for (arm, stratum, level), group in units.groupby(["arm", "stratum", "level"], sort=True):
                values = group["value"].to_numpy(dtype=float)
                low, high = mean_interval(values, binary=binary, rng=rng, resamples=resamples, tail=tail)
                rows.append({"axis_id": axis_id, "factor": claim.factor, "measure": measure, "arm": arm,
                             "stratum": stratum, "level": level, "x": float(group["x"].iloc[0]),
                             "mean": float(values.mean()), "ci_low": float(low), "ci_high": float(high),
                             "units": len(values)})
    frame = pd.DataFrame(rows, columns=PROFILE_COLUMNS)
    return frame.sort_values(["axis_id", "measure", "arm", "stratum", "x"], kind="stable").reset_index(drop=True)


def factor_effects(trials: pd.DataFrame, claims: Sequence[Claim], scientific: Sequence[str], *,
                   resamples: int = 2000, seed: int = 0, confidence: float = 0.95) -> pd.DataFrame:
    """Per claim axis, measure, arm and stratum: the slope along the claim's axis (for a regulariser: the gap
    closed per unit of strength when negative) with a bootstrap interval (units resampled within each level),
    and the change of the mean from the first to the last level."""
    rng = np.random.default_rng(seed)
    tail = (1.0 - confidence) / 2.0
    rows = []
    for axis_id, claim, measures in _axes(claims):
        for measure in measures:
            units = _units(trials, claim, measure, scientific)
            for (arm, stratum), group in units.groupby(["arm", "stratum"], sort=True):
                levels = [(float(cell["x"].iloc[0]), level, cell["value"].to_numpy(dtype=float))
                          for level, cell in group.groupby("level", sort=True)]
                levels.sort(key=lambda item: item[0])
                if len(levels) < 2:
                    continue
                x = group["x"].to_numpy(dtype=float)
                values = group["value"].to_numpy(dtype=float)
                slope = fixed_effects_slope(x, np.zeros(len(x)), values)
                low = high = math.nan
                if min(len(cell) for *_, cell in levels) >= 2:
                    xs = np.concatenate([np.full(len(cell), position) for position, _, cell in levels])
                    centred = xs - xs.mean()
                    sxx = float(centred @ centred)
                    draws = np.concatenate([cell[rng.integers(0, len(cell), size=(resamples, len(cell)))]
                                            for *_, cell in levels], axis=1)
                    replicates = draws @ centred / sxx
                    low, high = np.quantile(replicates, [tail, 1 - tail])
                rows.append({"axis_id": axis_id, "factor": claim.factor, "axis": claim.axis_text, "measure": measure,
                             "arm": arm, "stratum": stratum, "slope": slope, "slope_low": float(low),
                             "slope_high": float(high), "change": float(levels[-1][2].mean() - levels[0][2].mean()),
                             "from_level": levels[0][1], "to_level": levels[-1][1], "units": int(len(values))})
    return pd.DataFrame(rows, columns=EFFECT_COLUMNS)
