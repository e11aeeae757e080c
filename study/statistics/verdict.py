"""The verdict: every claim of a study, decided from both arms, with the error rate controlled across claims.

Each claim (:class:`study.config.Claim`; a depth space without a ``claims:``
section gets the two depth statements of :func:`study.statistics.claims.default_claims`)
is decided by :func:`study.statistics.rules.decide` (two compared levels) or
:func:`study.statistics.rules.decide_one_arm` on its measure's permutation tests.
Across the claims of one study, Holm's step-down method adjusts the p-values,
so the chance of any false decision in the study is at most alpha. Every other
measure gets the same tests in the slope table but decides nothing. A statement
also carries the rule's measured error rate for its own layout and, when it is
inconclusive, how many settings per cell would decide it at the observed effect.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import pandas as pd

from study.config import AnalysisConfig, Claim
from study.statistics.claims import (ALL, arms, axis_key, claim_axes, claim_columns, claim_units,
                                     family_p_values, strata_of, stratum_names)
from study.statistics.inference import compare_slopes
from study.statistics.rules import CONTRADICTED, INCONCLUSIVE, OTHER_ARM, SUPPORTED, decide_claim
from study.statistics.simulation import study_calibration, units_needed
from study.statistics.trials import MEASURES, measure_available, measure_definition, measure_units

__all__ = ["ArmSlope", "Statement", "Verdict", "slope_table", "build_statements", "data_caveats",
           "empty_slopes", "number"]


@dataclass(frozen=True)
class ArmSlope:
    """One arm's slope along the claim's axis, its bootstrap interval and permutation p-value. ``architecture``
    is the arm's label (the compared level, or 'all' for a one-arm claim); ``depths``: the levels it has."""

    architecture: str
    slope: float
    low: float
    high: float
    p_value: float
    units: int
    depths: int


@dataclass(frozen=True)
class Statement:
    """One decided claim with everything the report prints about it."""

    question: str
    claim: str
    status: str
    measure: str
    first: ArmSlope
    second: ArmSlope
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    reading: str
    rule: str
    calibration_text: str
    units_needed_text: str
    false_positive_rate: float = math.nan
    power: float = math.nan
    units_needed: int | None = None
    adjusted_p_value: float = math.nan
    axis: str = "per doubling of depth"
    factor: str = "depth"
    compared: str | None = "architecture"
    strata: str = ""
    one_arm: bool = False

    @property
    def estimate(self) -> float:
        """The tested effect: the slope difference, or a one-arm claim's own slope."""
        return self.first.slope if self.one_arm else self.difference

    @property
    def estimate_interval(self) -> tuple[float, float]:
        return (self.first.low, self.first.high) if self.one_arm else (self.ci_low, self.ci_high)


@dataclass(frozen=True)
class Verdict:
    """Every claim's statement, how the error rate is controlled across them, caveats, what was held fixed,
    and the slope table of every measure along every claim's axis."""

    statements: tuple[Statement, ...]
    caveats: tuple[str, ...]
    held_fixed: tuple[str, ...]
    first: str
    second: str
    alpha: float
    slopes: pd.DataFrame = field(compare=False, repr=False)
    family: str = ""
    declared: bool = False

    @property
    def trainability(self) -> Statement:
        return next(item for item in self.statements if item.question == "trainability")

    @property
    def overfitting(self) -> Statement:
        return next(item for item in self.statements if item.question == "overfitting")


def number(value: float) -> str:
    return "n/a" if value is None or not math.isfinite(float(value)) else f"{float(value):.3g}"


def p_text(value: float | None) -> str:
    """A p-value in words: '0.012', '< 0.001' or 'n/a'."""
    if value is None or not math.isfinite(float(value)):
        return "n/a"
    return f"{float(value):.3f}" if float(value) >= 0.001 else "< 0.001"


def arm_name(claim: Claim, label: str) -> str:
    """An arm in words: LSTM for an architecture, 'weight_decay_type adamw' for another factor."""
    if label == ALL:
        return "all trials"
    if claim.compare_factor == "architecture":
        return label.upper()
    return f"{claim.compare_factor} {label}"


def slope_table(trials: pd.DataFrame, claims: Sequence[Claim], scientific: Sequence[str], *, paired: bool,
                settings: AnalysisConfig, seed: int = 0) -> pd.DataFrame:
    """One row per (claim axis, measure of :data:`MEASURES`): both arms' slopes, their difference, tests and the
    status at the unadjusted alpha. Claims along the same axis (factor, levels, compared levels, at) share rows;
    ``primary`` marks the measures some claim is about."""
    rows = []
    for axis_index, group in claim_axes(claims):
        claim = group[0]
        first, second = arms(claim)
        signs = {item.measure: item.supports_sign for item in group}
        for definition in MEASURES:
            if not measure_available(trials, definition.name):
                continue
            units = claim_units(measure_units(trials, definition.name, claim_columns(claim, scientific)), claim,
                                scientific)
            comparison = compare_slopes(units, first=first, second=second, paired=paired,
                                        permutations=settings.permutations, seed=seed,
                                        rank_based=definition.rank_based, binary=definition.binary)
            sign = signs.get(definition.name, definition.supports_sign)
            status = decide_claim(one_arm=claim.compare_levels is None, difference=comparison.difference,
                                  p_difference=comparison.p_difference, slope_first=comparison.slope_first,
                                  p_first=comparison.p_first, supports_sign=sign, alpha=settings.alpha)
            rows.append({"axis_id": axis_index, "factor": claim.factor, "axis": claim.axis_text,
                         "measure": definition.name, "question": definition.question,
                         "primary": definition.name in signs,
                         "supports_if": "negative" if sign < 0 else "positive",
                         "first": first, "second": second, **comparison.as_row(), "status": status})
    return pd.DataFrame(rows, columns=slopes_frame_columns())


def _direction(slope: float, p_value: float, alpha: float, measure: str, axis: str) -> str:
    if not math.isfinite(slope):
        return f"has no {measure} slope (units at fewer than two levels of the factor)"
    if p_value < alpha and slope > 0:
        return f"rises ({number(slope)} {axis}, p = {p_text(p_value)})"
    if p_value < alpha and slope < 0:
        return f"falls ({number(slope)} {axis}, p = {p_text(p_value)})"
    return f"does not change decidedly ({number(slope)} {axis}, p = {p_text(p_value)})"


def reading_text(claim: Claim, row: pd.Series, status: str, alpha: float, adjusted: float, family: int) -> str:
    """The statement read from both arms, in words."""
    measure, axis = claim.measure, claim.axis_text
    first, second = arms(claim)
    adjusted_text = (f"; the claim's p after Holm's adjustment over {family} claims: {p_text(adjusted)}" if family > 1
                     else "")
    if claim.compare_levels is None:
        slope = f"slope {number(row['slope_first'])} {axis} (p = {p_text(row['p_first'])}{adjusted_text})"
        if status == SUPPORTED:
            return f"Supported: the {slope} lies on the claimed side."
        if status == CONTRADICTED:
            return f"Contradicted: the {slope} lies on the opposite side."
        return f"Inconclusive: the {slope} is not decided at alpha = {alpha:g}."
    first_name, second_name = arm_name(claim, first), arm_name(claim, second)
    arms_text = (f"{first_name}: {measure} {_direction(row['slope_first'], row['p_first'], alpha, measure, axis)}; "
                 f"{second_name}: {_direction(row['slope_second'], row['p_second'], alpha, measure, axis)}.")
    difference = f"difference of slopes {number(row['difference'])} (p = {p_text(row['p_difference'])}{adjusted_text})"
    if status == SUPPORTED:
        return f"Supported: the {difference} lies on the claimed side and {first_name}'s own {measure} moves that way. {arms_text}"
    if status == CONTRADICTED:
        return (f"Contradicted: the {difference} lies on the opposite side and {first_name}'s own {measure} "
                f"moves that way. {arms_text}")
    if status == OTHER_ARM:
        if claim.compare_factor == "architecture":
            second_name, first_name = f"the {second.upper()}s", f"deeper {first.upper()}s"
        return (f"Not supported: the {difference} is decided, but it comes from {second_name}, not from "
                f"{first_name}: {arms_text}")
    return f"Inconclusive: the {difference} is not decided at alpha = {alpha:g}. {arms_text}"


def rule_text(claim: Claim, alpha: float, paired: bool, strata: str, family: int) -> str:
    side = "negative" if claim.supports_sign < 0 else "positive"
    first, second = arms(claim)
    holm_text = (f" With {family} claims in this study, the p-values are Holm-adjusted across them first, so the "
                 f"chance of any false decision in the study is at most {alpha:g}." if family > 1 else "")
    within = " within each setting" if paired else ""
    if claim.compare_levels is None:
        return (f"Supported when the slope of {claim.measure} ({claim.axis_text}, {strata}) is {side} with a "
                f"two-sided permutation p < {alpha:g} ({claim.factor} labels exchanged among the trials{within}"
                f" and stratum); contradicted when it is decided on the other side; else inconclusive. Units are "
                f"tuning trials (one per nuisance setting).{holm_text}")
    exchange = (f"{claim.factor} labels exchanged between paired trials of the same setting" if paired
                else f"{claim.compare_factor} labels exchanged within each {claim.factor} level")
    return (f"Supported when the slope difference of {claim.measure} ({first} minus {second}, {claim.axis_text}, "
            f"{strata}) is {side} with a two-sided permutation p < {alpha:g} ({exchange}) AND {first}'s own slope is "
            f"{side} with p < {alpha:g} ({claim.factor} labels exchanged among its trials{within}); contradicted "
            "when both are decided on the other side; 'other arm' when only the difference is decided; else "
            f"inconclusive. Units are tuning trials (one per nuisance setting).{holm_text}")


def _arm_slope(row: pd.Series | None, label: str, arm: str) -> ArmSlope:
    if row is None:
        return ArmSlope(arm, math.nan, math.nan, math.nan, math.nan, 0, 0)
    return ArmSlope(arm, float(row[f"slope_{label}"]), float(row[f"slope_{label}_low"]),
                    float(row[f"slope_{label}_high"]), float(row[f"p_{label}"]), int(row[f"units_{label}"]),
                    int(row[f"depths_{label}"]))


def build_statements(slopes: pd.DataFrame, trials: pd.DataFrame, claims: Sequence[Claim], scientific: Sequence[str],
                     *, paired: bool, settings: AnalysisConfig, seed: int = 0) -> tuple[Statement, ...]:
    """Every claim's statement from its measure's row of the slope table, Holm-adjusted across the claims, with
    its calibration and the settings per cell that would decide it."""
    axis_ids = {axis_key(group[0]): axis_id for axis_id, group in claim_axes(claims)}
    rows: list[pd.Series | None] = []
    for claim in claims:
        match = slopes.loc[(slopes["axis_id"] == axis_ids[axis_key(claim)]) & (slopes["measure"] == claim.measure)]
        rows.append(None if match.empty else match.iloc[0])
    missing = [row is None for row in rows]
    adjusted_difference, adjusted_union = family_p_values(
        [math.nan if gone else row["p_difference"] for row, gone in zip(rows, missing)],
        [math.nan if gone else row["p_first"] for row, gone in zip(rows, missing)],
        [claim.compare_levels is None for claim in claims])
    adjusted_difference, adjusted_union = adjusted_difference[:, 0], adjusted_union[:, 0]
    family = len(claims)
    statements = []
    for index, (claim, row) in enumerate(zip(claims, rows)):
        statements.append(_statement(claim, row, trials, scientific, index=index, family=family, paired=paired,
                                     settings=settings, seed=seed, adjusted_difference=float(adjusted_difference[index]),
                                     adjusted_union=float(adjusted_union[index])))
    return tuple(statements)


def _statement(claim: Claim, row: pd.Series | None, trials: pd.DataFrame, scientific: Sequence[str], *, index: int,
               family: int, paired: bool, settings: AnalysisConfig, seed: int, adjusted_difference: float,
               adjusted_union: float) -> Statement:
    definition = measure_definition(claim.measure)
    first, second = arms(claim)
    one_arm = claim.compare_levels is None
    label = claim.label or f"claim {index + 1}"
    strata = stratum_names(claim, scientific)
    rule = rule_text(claim, settings.alpha, paired, strata, family)
    common = dict(axis=claim.axis_text, factor=claim.factor, compared=claim.compare_factor, strata=strata,
                  one_arm=one_arm)
    if row is None:
        return Statement(label, claim.text, INCONCLUSIVE, claim.measure, _arm_slope(None, "first", first),
                         _arm_slope(None, "second", second), math.nan, math.nan, math.nan, math.nan,
                         f"{claim.measure} was not measured.", rule, "", "", **common)
    status = decide_claim(one_arm=one_arm, difference=float(row["difference"]), p_difference=adjusted_difference,
                          slope_first=float(row["slope_first"]), p_first=adjusted_union,
                          supports_sign=claim.supports_sign, alpha=settings.alpha)
    arm = {"first": _arm_slope(row, "first", first), "second": _arm_slope(row, "second", second)}
    units = claim_units(measure_units(trials, claim.measure, claim_columns(claim, scientific)), claim, scientific)
    enough = arm["first"].depths >= 2 and (one_arm or arm["second"].depths >= 2)
    calibration_text, false_positive, power = "", math.nan, math.nan
    if settings.calibration_studies > 0 and enough:
        calibration = study_calibration(units, first, second, paired=paired, supports_sign=claim.supports_sign,
                                        alpha=settings.alpha, binary=definition.binary,
                                        rank_based=definition.rank_based, studies=settings.calibration_studies,
                                        permutations=min(settings.permutations, 999), seed=seed + 101 * index)
        false_positive, power = calibration["false_positive_rate"], calibration["power"]
        nothing = "no change along the factor" if one_arm else "no difference between the compared levels"
        calibration_text = (
            f"Error rate of this rule, measured on {settings.calibration_studies} simulated null studies with this "
            f"claim's own layout ({len(units)} units, {'paired' if paired else 'unpaired'} settings, {nothing}): "
            f"{false_positive:.1%} decided (nominal {settings.alpha:.0%} before the Holm adjustment); power "
            f"{power:.0%} to call 'supported' at a planted effect ({calibration['planted']}).")
    elif settings.calibration_studies == 0:
        calibration_text = "Calibration skipped (analysis.calibration_studies = 0)."
    else:
        calibration_text = "No calibration: an arm has units at fewer than two levels of the factor."
    needed, needed_text = None, ""
    if status == INCONCLUSIVE:
        if not enough:
            needed_text = (f"Nothing decides it yet: {'the trials' if one_arm else 'both arms'} need units that "
                           f"count for {claim.measure} at two or more levels of {claim.factor}.")
        else:
            needed, _scenario = units_needed(units, first, second, supports_sign=claim.supports_sign,
                                             alpha=settings.alpha, binary=definition.binary,
                                             rank_based=definition.rank_based, paired=paired, seed=seed)
            per_cell = int(units.groupby(["arm", "stratum", "level"]).size().max()) if len(units) else 0
            if needed is not None:
                needed_text = (f"What would decide it: at the observed effect, about {needed} tuning trials "
                               f"(settings) per cell instead of {per_cell} would reach a decision in 80% of "
                               "simulated studies (same rule, same simulation code as the calibration; before "
                               "the Holm adjustment).")
            else:
                needed_text = ("What would decide it: at the observed effect even 200 tuning trials (settings) per "
                               "cell would not reach a decision in 80% of simulated studies: the observed "
                               "difference is too small to matter at this noise level.")
    return Statement(
        label, claim.text, str(status), claim.measure, arm["first"], arm["second"], float(row["difference"]),
        float(row["ci_low"]), float(row["ci_high"]),
        float(row["p_first"] if one_arm else row["p_difference"]),
        reading_text(claim, row, str(status), settings.alpha, adjusted_union, family), rule, calibration_text,
        needed_text, false_positive, power, needed, adjusted_p_value=adjusted_union, **common)


def data_caveats(trials: pd.DataFrame, claims: Sequence[Claim], scientific: Sequence[str], *, paired: bool,
                 tuner: str | None, boundaries: pd.DataFrame | None, target: float,
                 minimum_units: int = 3) -> list[str]:
    """Caveats the data show: unpaired draws, boundary optima, non-training trials, censoring, thin cells,
    strata."""
    caveats: list[str] = []
    for index, claim in enumerate(claims):
        columns = claim_columns(claim, scientific)
        units = claim_units(measure_units(trials, claim.measure, columns), claim, scientific)
        cells = claim_units(measure_units(trials, "trainable_fraction", columns), claim, scientific)
        keys = ["arm", "stratum", "level"]
        counts = units.groupby(keys).size()
        thin = []
        for cell in cells[keys].drop_duplicates().itertuples(index=False):
            count = int(counts.get(tuple(cell), 0))
            if count < minimum_units:
                where = " ".join(part for part in (
                    "" if cell.arm == ALL else str(cell.arm), str(cell.stratum),
                    f"{claim.factor} {cell.level}") if part)
                thin.append(f"{where} ({count})")
        if thin:
            caveats.append(f"{claim.measure} ({claim.label or f'claim {index + 1}'}) rests on fewer than "
                           f"{minimum_units} units in: " + "; ".join(sorted(thin))
                           + "; those cells' means and the slopes through them are fragile.")
    strata = sorted({name for claim in claims for name in strata_of(claim, scientific)})
    if strata:
        caveats.append(f"Other scientific hyperparameters also vary ({', '.join(strata)}): each claim's slopes are "
                       "read within each of their levels (fixed effects), and permutations stay within them.")
    if not paired:
        why = "Bayesian optimisation adapts each cell's draws to its own results" if tuner == "bayesian" \
            else "the tuning trials of different cells do not share their nuisance settings"
        caveats.append(f"Nuisance draws are not paired across cells ({why}): the tests exchange the compared levels "
                       "within each level of the claim's factor instead of comparing the same settings, and lose "
                       "power.")
    if boundaries is not None and not boundaries.empty and "on_boundary" in boundaries.columns:
        on_edge = boundaries.loc[boundaries["on_boundary"].astype(bool)]
        for _, row in on_edge.iterrows():
            cell = f"{row.get('architecture', '?')} depth {row.get('depth', '?')}"
            caveats.append(f"{cell}: best {row['hyperparameter']} = {row['value']} lies on the {row.get('edge', '')} "
                           f"edge of {row.get('search_range', 'its range')}; the optimum may lie outside it.")
    tune = trials.loc[trials["phase"] == "tune"]
    for label in ("diverged", "crashed", "failed to train"):
        rows = tune.loc[tune["classification"] == label]
        if len(rows):
            per_cell = rows.groupby(["architecture", "depth"]).size()
            text = "; ".join(f"{a} depth {d:g}: {n}" for (a, d), n in per_cell.items())
            caveats.append(f"{len(rows)} tuning trial(s) {label} ({text}); they count against trainability and are "
                           "left out of the overfitting measures.")
    trained = tune.loc[tune["trained"]]
    if len(trained):
        short = trained.loc[~trained["reached_target"]]
        if len(short):
            caveats.append(f"{len(short)} of {len(trained)} trained tuning trials never reached the common train-loss "
                           f"target ({number(target)} nats): they have no gap at matched progress and are ranked last "
                           "in epochs_to_target.")
        still = trained.loc[trained["still_improving"]]
        if len(still):
            caveats.append(f"{len(still)} trained tuning trial(s) still improved at their last epoch: their best epoch is "
                           "censored by the epoch budget (tested on ranks, tied at the budget).")
    return caveats


def slopes_frame_columns() -> list[str]:
    return ["axis_id", "factor", "axis", "measure", "question", "primary", "supports_if", "first", "second", "slope_first", "slope_first_low",
            "slope_first_high", "p_first", "slope_second", "slope_second_low", "slope_second_high", "p_second",
            "difference", "ci_low", "ci_high", "p_difference", "units_first", "units_second", "depths_first",
            "depths_second", "paired", "rank_based", "status"]


def empty_slopes() -> pd.DataFrame:
    return pd.DataFrame(columns=slopes_frame_columns())
