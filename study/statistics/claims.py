"""Claims as units: which trials a claim is tested on, along which axis, in which arms and strata.

A claim (:class:`study.config.Claim`) is about the slope of a measure along one
scientific factor. Its units are the measure's units (tuning trials, see
:func:`study.statistics.trials.measure_units`) restricted to the claim's levels
and ``at`` levels, with

* ``x``: the factor level on the claim's scale (log2, linear or rank),
* ``arm``: the compared factor's level (``ALL`` for a one-arm claim),
* ``stratum``: the levels of every other scientific factor, so slopes are read
  within each of them and permutations never cross them,
* ``setting``: the paired nuisance setting.

Depth spaces without a ``claims:`` section get :func:`default_claims`: the two
statements of the depth question, "deeper FIRSTs are harder to train / overfit
faster than deeper SECONDs".
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from study.config import Claim, level_key, scientific_levels

#: The arm label of a one-arm claim.
ALL = "all"
#: The arm label no unit has: the empty second arm of a one-arm claim.
NONE = "(none)"


def claim_text(question: str, first: str, second: str) -> str:
    """The default depth statements in words."""
    if question == "trainability":
        return f"deeper {first.upper()}s are harder to train than deeper {second.upper()}s"
    return f"deeper {first.upper()}s overfit faster than deeper {second.upper()}s"


def default_claims(depths: Sequence[float], first: str, second: str) -> tuple[Claim, ...]:
    """The depth question's two statements as claims (trainable fraction falls, gap at matched progress rises,
    more for FIRST than for SECOND per doubling of depth)."""
    levels = tuple(sorted(float(depth) for depth in set(depths)))
    common = dict(factor="depth", levels=levels, scale="log2", compare_factor="architecture",
                  compare_levels=(first, second))
    return (Claim(measure="trainable_fraction", direction="decreases", label="trainability",
                  sentence=claim_text("trainability", first, second), **common),
            Claim(measure="gap_at_target", direction="increases", label="overfitting",
                  sentence=claim_text("overfitting", first, second), **common))


def arms(claim: Claim) -> tuple[str, str]:
    """(first, second) arm labels: the compared levels, or (ALL, NONE) for a one-arm claim."""
    if claim.compare_levels is None:
        return ALL, NONE
    return str(claim.compare_levels[0]), str(claim.compare_levels[1])


def claim_columns(claim: Claim, scientific: Sequence[str]) -> list[str]:
    """The trial columns a claim's units need: its factor, compared factor and strata."""
    return [name for name in dict.fromkeys([claim.factor, *(claim.compare_factor or "",), *scientific]) if name]


def axis_values(levels: pd.Series, claim: Claim) -> np.ndarray:
    """x of every unit: the factor level on the claim's scale."""
    if claim.scale == "rank":
        order = {level_key(level): index for index, level in enumerate(claim.levels)}
        return np.array([order[level_key(level)] for level in levels], dtype=float)
    numbers = pd.to_numeric(levels, errors="coerce").to_numpy(dtype=float)
    return np.log2(numbers) if claim.scale == "log2" else numbers


def strata_of(claim: Claim, scientific: Sequence[str]) -> list[str]:
    """The scientific factors a claim's slopes are read within: all but its factor and compared factor."""
    return [name for name in scientific if name not in (claim.factor, claim.compare_factor)]


def claim_units(units: pd.DataFrame, claim: Claim, scientific: Sequence[str]) -> pd.DataFrame:
    """A measure's units (from :func:`measure_units` with the claim's columns) as the claim's normalised units:
    arm, x, level, stratum, setting, value (and the factor columns)."""
    rows = units.copy()
    keys = {column: rows[column].map(level_key) if column in rows.columns else pd.Series("", index=rows.index)
            for column in claim_columns(claim, scientific)}
    keep = keys[claim.factor].isin({level_key(level) for level in claim.levels})
    if claim.compare_factor is not None:
        keep &= keys[claim.compare_factor].isin({level_key(level) for level in claim.compare_levels or ()})
    for name, values in claim.at:
        keep &= keys[name].isin({level_key(value) for value in values})
    rows = rows.loc[keep.to_numpy()].copy()
    if claim.compare_factor is None:
        rows["arm"] = ALL
    else:
        spelled = {level_key(level): str(level) for level in claim.compare_levels or ()}
        rows["arm"] = rows[claim.compare_factor].map(level_key).map(spelled)
    rows["level"] = rows[claim.factor].map(level_key)
    rows["x"] = axis_values(rows[claim.factor], claim) if len(rows) else np.zeros(0)
    strata = strata_of(claim, scientific)
    if strata and len(rows):
        rows["stratum"] = rows[strata].astype(str).agg(" / ".join, axis=1) if len(strata) > 1 \
            else rows[strata[0]].map(level_key)
    else:
        rows["stratum"] = ""
    return rows.reset_index(drop=True)


def stratum_names(claim: Claim, scientific: Sequence[str]) -> str:
    """The strata in words, for the report ("within each depth", "within each depth / architecture")."""
    strata = strata_of(claim, scientific)
    return f"within each {' / '.join(strata)}" if strata else "pooled (no other scientific factor)"


def holm_rows(p_values: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values of every row of a (studies x claims) matrix at once.

    The same numbers as statsmodels' ``multipletests(method="holm")`` on each row
    (tests/test_claims.py checks it), written out because statsmodels' Holm branch
    runs a full ``gc.collect()`` on every call (0.02-0.13 s in a process holding
    Keras), which a simulation of thousands of studies cannot afford.
    """
    p_values = np.atleast_2d(np.asarray(p_values, dtype=float))
    order = np.argsort(p_values, axis=1, kind="stable")
    ordered = np.take_along_axis(p_values, order, axis=1)
    factors = p_values.shape[1] - np.arange(p_values.shape[1])
    adjusted = np.minimum(1.0, np.maximum.accumulate(ordered * factors[None, :], axis=1))
    result = np.empty_like(adjusted)
    np.put_along_axis(result, order, adjusted, axis=1)
    return result


def family_p_values(p_difference: np.ndarray, p_first: np.ndarray,
                    one_arm: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    """Holm-adjusted (difference, intersection-union) p-values of a study's claims, rows = claims (columns =
    simulated studies, or one column). The intersection-union p of a two-arm claim is the larger of its two
    p-values (both tests must decide); a one-arm claim has one test, its own slope's. Missing p-values count
    as 1."""
    one_arm = np.asarray(one_arm, dtype=bool)[:, None]
    p_first = np.nan_to_num(np.atleast_2d(np.asarray(p_first, dtype=float)).reshape(len(one_arm), -1), nan=1.0)
    p_difference = np.nan_to_num(np.atleast_2d(np.asarray(p_difference, dtype=float)).reshape(len(one_arm), -1),
                                 nan=1.0)
    difference = np.where(one_arm, p_first, p_difference)
    union = np.where(one_arm, p_first, np.maximum(p_difference, p_first))
    return holm_rows(difference.T).T, holm_rows(union.T).T


def claim_axes(claims: Sequence[Claim]) -> list[tuple[int, list[Claim]]]:
    """The distinct axes of a study's claims (factor, levels, scale, comparison, restriction), in claim order:
    (axis id, the claims along it). Claims on one axis share their units and slope-table rows."""
    axes: dict[tuple, list[Claim]] = {}
    for claim in claims:
        axes.setdefault(axis_key(claim), []).append(claim)
    return list(enumerate(axes.values()))


def axis_key(claim: Claim) -> tuple:
    return (claim.factor, tuple(map(str, claim.levels)), claim.scale, claim.compare_factor,
            tuple(map(str, claim.compare_levels or ())), claim.at)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm-adjusted p-values of one study's claims (missing p-values count as 1): the family-wise error over
    all claims is at most alpha."""
    values = np.array([1.0 if not math.isfinite(value) else value for value in p_values], dtype=float)
    if values.size == 0:
        return values
    return holm_rows(values[None, :])[0]


def scientific_factors(space: Mapping[str, Any], frame: pd.DataFrame) -> list[str]:
    """The scientific factors of a study: from its space, else the varying hyperparameter columns."""
    specs = space.get("hyperparameters") if isinstance(space, Mapping) else None
    if isinstance(specs, Mapping) and specs:
        return [name for name in scientific_levels(space) if name in frame.columns]
    return [name for name in ("architecture", "depth") if name in frame.columns]
