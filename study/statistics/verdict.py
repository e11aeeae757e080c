"""The verdict: "deeper FIRSTs are harder to train / overfit faster than deeper SECONDs", read from both arms.

Each statement is decided by :func:`study.statistics.rules.decide` on its
primary measure's two permutation tests; every other measure gets the same rule
in the slope table but decides nothing. The statement also carries the
rule's measured error rate for this study's own layout and, when it is
inconclusive, how many settings per cell would decide it at the observed effect.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from study.config import AnalysisConfig
from study.statistics.inference import compare_slopes
from study.statistics.rules import CONTRADICTED, INCONCLUSIVE, OTHER_ARM, SUPPORTED, decide
from study.statistics.simulation import study_calibration, units_needed
from study.statistics.trials import MEASURES, PRIMARY_MEASURES, measure_definition, measure_units


@dataclass(frozen=True)
class ArmSlope:
    """One architecture's slope per doubling of depth, its bootstrap interval and permutation p-value."""

    architecture: str
    slope: float
    low: float
    high: float
    p_value: float
    units: int
    depths: int


@dataclass(frozen=True)
class Statement:
    """One decided statement with everything the report prints about it."""

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


@dataclass(frozen=True)
class Verdict:
    """Both statements, what was held fixed, caveats, and the slope table of every measure."""

    statements: tuple[Statement, ...]
    caveats: tuple[str, ...]
    held_fixed: tuple[str, ...]
    first: str
    second: str
    alpha: float
    slopes: pd.DataFrame = field(compare=False, repr=False)

    @property
    def trainability(self) -> Statement:
        return self.statements[0]

    @property
    def overfitting(self) -> Statement:
        return self.statements[1]


def claim_text(question: str, first: str, second: str) -> str:
    if question == "trainability":
        return f"deeper {first.upper()}s are harder to train than deeper {second.upper()}s"
    return f"deeper {first.upper()}s overfit faster than deeper {second.upper()}s"


def number(value: float) -> str:
    return "n/a" if value is None or not math.isfinite(float(value)) else f"{float(value):.3g}"


def _p(value: float) -> str:
    return "n/a" if not math.isfinite(value) else (f"{value:.3f}" if value >= 0.001 else "< 0.001")


def slope_table(trials: pd.DataFrame, *, first: str, second: str, paired: bool, settings: AnalysisConfig,
                seed: int = 0) -> pd.DataFrame:
    """One row per measure of :data:`MEASURES`: both arms' slopes, their difference, tests and status."""
    rows = []
    for definition in MEASURES:
        if definition.name not in ("trainable_fraction", "best_train_loss") and definition.name not in trials.columns:
            continue
        units = measure_units(trials, definition.name)
        comparison = compare_slopes(units, first=first, second=second, paired=paired,
                                    permutations=settings.permutations, seed=seed, rank_based=definition.rank_based,
                                    binary=definition.binary)
        status = decide(difference=comparison.difference, p_difference=comparison.p_difference,
                        slope_first=comparison.slope_first, p_first=comparison.p_first,
                        supports_sign=definition.supports_sign, alpha=settings.alpha)
        rows.append({"measure": definition.name, "question": definition.question,
                     "primary": PRIMARY_MEASURES[definition.question] == definition.name,
                     "supports_if": "negative" if definition.supports_sign < 0 else "positive",
                     "first": first, "second": second, **comparison.as_row(), "status": status})
    return pd.DataFrame(rows)


def _direction(slope: float, p_value: float, alpha: float, measure: str) -> str:
    if not math.isfinite(slope):
        return f"has no {measure} slope (units at fewer than two depths)"
    if p_value < alpha and slope > 0:
        return f"rises with depth ({number(slope)} per doubling, p = {_p(p_value)})"
    if p_value < alpha and slope < 0:
        return f"falls with depth ({number(slope)} per doubling, p = {_p(p_value)})"
    return f"does not change decidedly with depth ({number(slope)} per doubling, p = {_p(p_value)})"


def reading_text(row: pd.Series, status: str, alpha: float) -> str:
    """The statement read from both arms, in words."""
    measure = row["measure"]
    first, second = row["first"], row["second"]
    arms = (f"{first.upper()}: {measure} {_direction(row['slope_first'], row['p_first'], alpha, measure)}; "
            f"{second.upper()}: {_direction(row['slope_second'], row['p_second'], alpha, measure)}.")
    difference = f"difference of slopes {number(row['difference'])} (p = {_p(row['p_difference'])})"
    if status == SUPPORTED:
        return f"Supported: the {difference} lies on the claimed side and {first.upper()}s' own {measure} moves that way. {arms}"
    if status == CONTRADICTED:
        return (f"Contradicted: the {difference} lies on the opposite side and {first.upper()}s' own {measure} "
                f"moves that way. {arms}")
    if status == OTHER_ARM:
        return (f"Not supported: the {difference} is decided, but it comes from the {second.upper()}s, not from "
                f"deeper {first.upper()}s: {arms}")
    return f"Inconclusive: the {difference} is not decided at alpha = {alpha:g}. {arms}"


def rule_text(measure: str, supports_sign: int, first: str, second: str, alpha: float, paired: bool) -> str:
    side = "negative" if supports_sign < 0 else "positive"
    exchange = ("depth labels exchanged between paired trials of the same setting" if paired
                else "architecture labels exchanged within each depth")
    return (f"Supported when the slope difference of {measure} ({first} minus {second}, per doubling of depth) is "
            f"{side} with a two-sided permutation p < {alpha:g} ({exchange}) AND {first}'s own slope is {side} with "
            f"p < {alpha:g} (depth labels exchanged among its trials{' within each setting' if paired else ''}); "
            "contradicted when both are decided on the other side; 'other arm' when only the difference is "
            "decided; else inconclusive. Units are tuning trials (one per nuisance setting).")


def build_statement(slopes: pd.DataFrame, trials: pd.DataFrame, question: str, *, first: str, second: str,
                    paired: bool, settings: AnalysisConfig, seed: int = 0) -> Statement:
    """The statement of one question from its primary measure's row, with calibration and units needed."""
    measure = PRIMARY_MEASURES[question]
    definition = measure_definition(measure)
    claim = claim_text(question, first, second)
    rule = rule_text(measure, definition.supports_sign, first, second, settings.alpha, paired)
    row = slopes.loc[slopes["measure"] == measure]
    if row.empty:
        empty = ArmSlope(first, math.nan, math.nan, math.nan, math.nan, 0, 0)
        return Statement(question, claim, INCONCLUSIVE, measure, empty, ArmSlope(second, *[math.nan] * 4, 0, 0),
                         math.nan, math.nan, math.nan, math.nan, f"{measure} was not measured.", rule, "", "")
    row = row.iloc[0]
    status = str(row["status"])
    arm = {label: ArmSlope(architecture, float(row[f"slope_{label}"]), float(row[f"slope_{label}_low"]),
                           float(row[f"slope_{label}_high"]), float(row[f"p_{label}"]), int(row[f"units_{label}"]),
                           int(row[f"depths_{label}"]))
           for label, architecture in (("first", first), ("second", second))}
    units = measure_units(trials, measure)
    units = units.loc[units["architecture"].isin([first, second])]
    calibration_text, false_positive, power = "", math.nan, math.nan
    if settings.calibration_studies > 0 and arm["first"].depths >= 2 and arm["second"].depths >= 2:
        calibration = study_calibration(units, first, second, paired=paired, supports_sign=definition.supports_sign,
                                        alpha=settings.alpha, binary=definition.binary,
                                        rank_based=definition.rank_based, studies=settings.calibration_studies,
                                        permutations=min(settings.permutations, 999), seed=seed)
        false_positive, power = calibration["false_positive_rate"], calibration["power"]
        calibration_text = (
            f"Error rate of this rule, measured on {settings.calibration_studies} simulated null studies with this "
            f"study's own layout ({len(units)} units, {'paired' if paired else 'unpaired'} settings, no difference "
            f"between the architectures): {false_positive:.1%} decided (nominal {settings.alpha:.0%}); power "
            f"{power:.0%} to call 'supported' at a planted effect ({calibration['planted']}).")
    elif settings.calibration_studies == 0:
        calibration_text = "Calibration skipped (analysis.calibration_studies = 0)."
    else:
        calibration_text = "No calibration: an architecture has units at fewer than two depths."
    needed, needed_text = None, ""
    if status == INCONCLUSIVE:
        if arm["first"].depths < 2 or arm["second"].depths < 2:
            needed_text = ("Nothing decides it yet: both architectures need trials that count for this measure at "
                           "two or more depths.")
        else:
            needed, scenario = units_needed(units, first, second, supports_sign=definition.supports_sign,
                                            alpha=settings.alpha, binary=definition.binary,
                                            rank_based=definition.rank_based, paired=paired, seed=seed)
            per_cell = int(units.groupby(["architecture", "depth"]).size().max()) if len(units) else 0
            if needed is not None:
                needed_text = (f"What would decide it: at the observed effect, about {needed} tuning trials "
                               f"(settings) per cell instead of {per_cell} would reach a decision in 80% of "
                               "simulated studies (same rule, same simulation code as the calibration).")
            else:
                needed_text = ("What would decide it: at the observed effect even 200 tuning trials (settings) per "
                               "cell would not reach a decision in 80% of simulated studies: the observed "
                               "difference is too small to matter at this noise level.")
    return Statement(
        question, claim, status, measure, arm["first"], arm["second"], float(row["difference"]), float(row["ci_low"]),
        float(row["ci_high"]), float(row["p_difference"]), reading_text(row, status, settings.alpha), rule,
        calibration_text, needed_text, false_positive, power, needed)


def data_caveats(trials: pd.DataFrame, *, first: str, second: str, paired: bool, tuner: str | None,
                 boundaries: pd.DataFrame | None, space: dict | None, target: float,
                 minimum_units: int = 3) -> list[str]:
    """Caveats the data show: unpaired draws, boundary optima, non-training trials, censoring, thin cells,
    other factors."""
    caveats: list[str] = []
    for question, measure in PRIMARY_MEASURES.items():
        units = measure_units(trials, measure)
        units = units.loc[units["architecture"].isin([first, second])]
        counts = units.groupby(["architecture", "depth"]).size()
        cells = trials.loc[trials["architecture"].isin([first, second]), ["architecture", "depth"]].drop_duplicates()
        thin = [(a, d, int(counts.get((a, d), 0))) for a, d in cells.itertuples(index=False)
                if counts.get((a, d), 0) < minimum_units]
        if thin:
            caveats.append(f"{measure} ({question}) rests on fewer than {minimum_units} units in: "
                           + "; ".join(f"{a} depth {d:g} ({n})" for a, d, n in sorted(thin))
                           + "; those cells' means and the slopes through them are fragile.")
    compared = trials.loc[trials["architecture"].isin([first, second])]
    specs = (space or {}).get("hyperparameters", {}) if isinstance(space, dict) else {}
    extra = [name for name, spec in specs.items() if isinstance(spec, dict) and spec.get("role") == "scientific"
             and name not in ("architecture", "depth")]
    if extra:
        caveats.append(f"Other scientific hyperparameters also vary ({', '.join(extra)}); the depth slopes pool over them.")
    if not paired:
        why = "Bayesian optimisation adapts each cell's draws to its own results" if tuner == "bayesian" \
            else "the tuning trials of different cells do not share their nuisance settings"
        caveats.append(f"Nuisance draws are not paired across cells ({why}): the tests exchange architecture labels "
                       "within each depth instead of comparing the same settings, and lose power.")
    if boundaries is not None and not boundaries.empty and "on_boundary" in boundaries.columns:
        on_edge = boundaries.loc[boundaries["on_boundary"].astype(bool)]
        for _, row in on_edge.iterrows():
            cell = f"{row.get('architecture', '?')} depth {row.get('depth', '?')}"
            caveats.append(f"{cell}: best {row['hyperparameter']} = {row['value']} lies on the {row.get('edge', '')} "
                           f"edge of {row.get('search_range', 'its range')}; the optimum may lie outside it.")
    tune = compared.loc[compared["phase"] == "tune"]
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
    return ["measure", "question", "primary", "supports_if", "first", "second", "slope_first", "slope_first_low",
            "slope_first_high", "p_first", "slope_second", "slope_second_low", "slope_second_high", "p_second",
            "difference", "ci_low", "ci_high", "p_difference", "units_first", "units_second", "depths_first",
            "depths_second", "paired", "rank_based", "status"]


def empty_slopes() -> pd.DataFrame:
    return pd.DataFrame(columns=slopes_frame_columns())
