"""Simulated studies whose answer is known: the error rate and power of the decision rule, and the
number of units per cell that would decide an inconclusive statement.

Every simulated study has the shape of a real one: two architectures, a set of
depths, ``units_per_cell`` units (tuning settings) in every cell, paired
settings or not. Its values are drawn from a :class:`Scenario` (null or planted
effect) and decided by exactly the code the report uses:
:class:`study.statistics.inference.Design` for the permutation tests and
:func:`study.statistics.rules.decide` for the status. Studies of one shape share
one weight matrix, so 400 studies cost one matrix product.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from study.statistics.claims import family_p_values
from study.statistics.inference import Design, midranks, normalise_units, permutation_p_values
from study.statistics.rules import INCONCLUSIVE, STATUSES, decide_claim

FIRST, SECOND = "first", "second"


@dataclass(frozen=True)
class Scenario:
    """How simulated values arise. Slopes are per doubling of depth (log2 depth).

    ``kind``: 'normal' (level + slope x log2(depth) + setting effect + noise),
    'lognormal' (exp of that: skewed, like gaps and epochs), 'binary' (1 with
    probability level + slope x log2(depth), clipped to [0.02, 0.98]: a setting
    that trained). ``setting_sd``: a nuisance setting's effect, shared by every
    cell that uses the same setting (paired designs) or drawn per unit (unpaired).
    ``noise_sd_first/second``: per-architecture noise (unequal variances).
    """

    name: str
    kind: str = "normal"
    level_first: float = 0.0
    level_second: float = 0.0
    slope_first: float = 0.0
    slope_second: float = 0.0
    common_curve: tuple[float, ...] = ()
    setting_sd: float = 0.0
    noise_sd_first: float = 1.0
    noise_sd_second: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in ("normal", "lognormal", "binary"):
            raise ValueError(f"kind must be 'normal', 'lognormal' or 'binary', got {self.kind!r}")

    @property
    def is_null(self) -> bool:
        """True when the architectures do not differ in how they change with depth."""
        return math.isclose(self.slope_first, self.slope_second)


#: Null scenarios the calibration test runs: no difference in slope between the architectures.
NULL_SCENARIOS: tuple[Scenario, ...] = (
    Scenario("pure noise"),
    Scenario("shared setting effects", setting_sd=1.0),
    Scenario("unequal variances (sd 1 vs 2)", noise_sd_second=2.0),
    Scenario("common depth trend and a level shift", level_first=1.0, slope_first=-0.5, slope_second=-0.5,
             setting_sd=0.5),
    Scenario("common non-linear depth curve", common_curve=(0.0, 1.0, 0.2, 1.2), setting_sd=0.5),
    Scenario("skewed (log-normal) values", kind="lognormal", setting_sd=0.5),
    Scenario("binary, 80% of settings train", kind="binary", level_first=0.8, level_second=0.8),
    Scenario("binary, LSTMs train less at every depth", kind="binary", level_first=0.6, level_second=0.85),
)

#: The planted effects the power test states: the first architecture changes with depth, the second not.
PLANTED_CONTINUOUS = Scenario("first arm +1 sd per doubling of depth, second flat", slope_first=1.0,
                              setting_sd=0.5)
PLANTED_BINARY = Scenario("first arm loses 0.3 of its trainable share per doubling from 0.95, second flat",
                          kind="binary", level_first=0.95, slope_first=-0.3, level_second=0.95)
#: A difference that comes from the other arm: the first is flat, the second improves with depth.
OTHER_ARM_SCENARIO = Scenario("second arm rises 0.75 sd per doubling, first flat", slope_second=0.75, setting_sd=0.5)


@dataclass(frozen=True)
class Shape:
    """The layout of a study's units: depths, units (settings) per cell, paired settings or not."""

    depths: tuple[float, ...]
    units_per_cell: int
    paired: bool = True

    def units(self) -> pd.DataFrame:
        """One row per unit: architecture ('first'/'second'), depth, setting."""
        rows = [(architecture, depth, setting) for architecture in (FIRST, SECOND) for depth in self.depths
                for setting in range(self.units_per_cell)]
        return pd.DataFrame(rows, columns=["architecture", "depth", "setting"])


def simulate_values(units: pd.DataFrame, scenario: Scenario, studies: int, rng: np.random.Generator) -> np.ndarray:
    """A (studies x units) matrix of values for the given unit layout under ``scenario`` (a depth layout, or
    normalised units whose arm is 'first'/'second' and whose slopes run along x)."""
    units = normalise_units(units)
    is_first = (units["arm"] == FIRST).to_numpy()
    x = units["x"].to_numpy(dtype=float)
    level = np.where(is_first, scenario.level_first, scenario.level_second)
    slope = np.where(is_first, scenario.slope_first, scenario.slope_second)
    mean = level + slope * x
    if scenario.common_curve:
        ordered = sorted(set(x.tolist()))
        curve = {value: scenario.common_curve[index % len(scenario.common_curve)] for index, value in enumerate(ordered)}
        mean = mean + np.array([curve[value] for value in x.tolist()])
    if scenario.kind == "binary":
        probability = np.clip(mean, 0.02, 0.98)
        return (rng.random((studies, len(units))) < probability[None, :]).astype(float)
    setting = units["setting"].to_numpy()
    if scenario.setting_sd > 0:
        codes = pd.factorize(setting)[0]
        effects = rng.normal(0.0, scenario.setting_sd, size=(studies, codes.max() + 1))[:, codes]
    else:
        effects = 0.0
    noise_sd = np.where(is_first, scenario.noise_sd_first, scenario.noise_sd_second)
    values = mean[None, :] + effects + rng.normal(size=(studies, len(units))) * noise_sd[None, :]
    return np.exp(values) if scenario.kind == "lognormal" else values


def _unpaired_settings(units: pd.DataFrame) -> pd.DataFrame:
    """Unpaired designs draw their own settings in every cell: give every unit its own setting code."""
    return units.assign(setting=np.arange(len(units)))


def _tests(design: Design, ordered: pd.DataFrame, tested: np.ndarray) -> dict:
    """Both permutation tests of simulated studies (rows of ``tested``), as :func:`decide_claim`'s arguments: a
    layout without 'second' units is a one-arm claim and has no difference test."""
    slope_first, p_first = permutation_p_values(design.weights_first, tested)
    one_arm = not (ordered["arm"] == SECOND).any()
    difference, p_difference = (None, None) if one_arm else permutation_p_values(design.weights_difference, tested)
    return {"one_arm": one_arm, "difference": difference, "p_difference": p_difference, "slope_first": slope_first,
            "p_first": p_first}


def status_shares(units: pd.DataFrame, scenario: Scenario, *, paired: bool, supports_sign: int, alpha: float,
                  studies: int, permutations: int, seed: int, rank_based: bool = False) -> dict[str, float]:
    """Share of simulated studies that end in each status, for one unit layout and scenario.

    ``units`` has architecture ('first'/'second'), depth and setting (or the
    normalised columns, arm 'first'/'second'). A layout without 'second' units
    is a one-arm claim, decided by :func:`decide_one_arm`. Returns {status:
    share} for every status, plus 'decided' (any status but inconclusive) and
    'studies'.
    """
    if studies < 1:
        raise ValueError(f"studies must be >= 1, got {studies!r}")
    rng = np.random.default_rng(seed)
    layout = normalise_units(units if paired else _unpaired_settings(units))
    design = Design.build(layout, FIRST, SECOND, permutations=permutations, seed=seed + 1, paired=paired)
    ordered = layout.loc[layout["arm"].isin([FIRST, SECOND])].reset_index(drop=True)
    values = simulate_values(ordered, scenario, studies, rng)
    tested = midranks(values) if rank_based else values
    statuses = decide_claim(**_tests(design, ordered, tested), supports_sign=supports_sign, alpha=alpha)
    shares = {status: float(np.mean(statuses == status)) for status in STATUSES}
    shares["decided"] = 1.0 - shares[INCONCLUSIVE]
    shares["studies"] = float(studies)
    return shares


def calibration_table(shapes: Iterable[Shape], scenarios: Sequence[Scenario], *, supports_sign: int = 1,
                      alpha: float = 0.05, studies: int = 400, permutations: int = 999, seed: int = 0) -> pd.DataFrame:
    """Status shares for every (shape, scenario): the false-positive rate of null scenarios and the
    power of planted ones. One row per pair, with a Monte Carlo standard error of 'decided'."""
    rows = []
    for index, shape in enumerate(shapes):
        for offset, scenario in enumerate(scenarios):
            shares = status_shares(shape.units(), scenario, paired=shape.paired, supports_sign=supports_sign,
                                   alpha=alpha, studies=studies, permutations=permutations,
                                   seed=seed + 1000 * index + offset)
            rows.append({"scenario": scenario.name, "null": scenario.is_null, "depths": "/".join(
                f"{depth:g}" for depth in shape.depths), "units_per_cell": shape.units_per_cell,
                "paired": shape.paired, **shares,
                "monte_carlo_se": math.sqrt(shares["decided"] * (1 - shares["decided"]) / studies)})
    return pd.DataFrame(rows)


def observed_scenario(units: pd.DataFrame, first: str, second: str, *, binary: bool) -> Scenario | None:
    """A scenario with the observed effect: each arm's fitted level and slope, the pooled within-cell sd.

    0/1 units: each arm's fitted share line (levels at x = 0). None when an arm
    that has units lacks two levels (a one-arm claim has no second arm).
    """
    units = normalise_units(units)
    parameters = {}
    residuals = []
    for label, arm in ((FIRST, first), (SECOND, second)):
        rows = units.loc[units["arm"] == arm]
        if label == SECOND and rows.empty:
            continue
        if rows["level"].nunique() < 2:
            return None
        x = rows["x"].to_numpy(dtype=float)
        y = rows["value"].to_numpy(dtype=float)
        slope, intercept = np.polyfit(x, y, 1)
        parameters[f"slope_{label}"], parameters[f"level_{label}"] = float(slope), float(intercept)
        residuals.append(y - rows.groupby(["stratum", "level"])["value"].transform("mean").to_numpy(dtype=float))
    if binary:
        return Scenario("observed effect", kind="binary", **parameters)
    pooled = np.concatenate(residuals)
    cells = units.groupby(["arm", "stratum", "level"]).ngroups
    dof = max(len(pooled) - cells, 1)
    sd = float(np.sqrt(np.sum(pooled ** 2) / dof)) or 1e-9
    return Scenario("observed effect", noise_sd_first=sd, noise_sd_second=sd, **parameters)


def replicated_layout(units: pd.DataFrame, first: str, second: str, count: int) -> pd.DataFrame:
    """The study's cells (arm, level, stratum) with ``count`` settings each, arms renamed 'first'/'second':
    the layout of the same study with more tuning trials per cell."""
    units = normalise_units(units)
    cells = units.loc[units["arm"].isin([first, second]), ["arm", "x", "level", "stratum"]]
    cells = cells.drop_duplicates(["arm", "level", "stratum"])
    cells = cells.assign(arm=np.where(cells["arm"] == first, FIRST, SECOND))
    cells = cells.sort_values(["arm", "stratum", "x"], key=lambda column: column.map(
        {FIRST: 0, SECOND: 1}) if column.name == "arm" else column, kind="stable")
    rows = [(*cell, setting) for cell in cells.itertuples(index=False) for setting in range(count)]
    return pd.DataFrame(rows, columns=["arm", "x", "level", "stratum", "setting"])


#: Units per cell tried when looking for the number that would decide a statement.
CANDIDATE_UNITS = (4, 6, 8, 10, 12, 16, 20, 25, 30, 40, 50, 65, 80, 100, 130, 160, 200)


def units_needed(units: pd.DataFrame, first: str, second: str, *, supports_sign: int, alpha: float, binary: bool,
                 rank_based: bool = False, paired: bool = True, power: float = 0.8, studies: int = 200,
                 permutations: int = 499, seed: int = 0,
                 candidates: Sequence[int] = CANDIDATE_UNITS) -> tuple[int | None, Scenario | None]:
    """The smallest number of units per cell that decides the statement (any status but inconclusive) in
    at least ``power`` of simulated studies with the observed effect; None when even the largest
    candidate does not (or the effect cannot be estimated). Returns (units, the scenario simulated)."""
    scenario = observed_scenario(units, first, second, binary=binary)
    if scenario is None:
        return None, None
    units = normalise_units(units)
    current = int(units.groupby(["arm", "stratum", "level"]).size().max())
    for count in candidates:
        if count <= current:
            continue
        shares = status_shares(replicated_layout(units, first, second, count), scenario, paired=paired,
                               supports_sign=supports_sign, alpha=alpha, studies=studies, permutations=permutations,
                               seed=seed + count, rank_based=rank_based)
        if shares["decided"] >= power:
            return count, scenario
    return None, scenario


def study_calibration(units: pd.DataFrame, first: str, second: str, *, paired: bool, supports_sign: int, alpha: float,
                      binary: bool, rank_based: bool, studies: int, permutations: int, seed: int = 0) -> dict[str, float]:
    """The measured false-positive rate and power of the rule for one study's own unit layout.

    The null keeps the study's layout (its architectures, depths, settings and
    missing units) and draws values with no difference between the architectures;
    the planted effect is :data:`PLANTED_BINARY` for 0/1 units, else
    :data:`PLANTED_CONTINUOUS` scaled to the sign the statement claims. Both are
    per *level step* of the claim's axis (one doubling of depths 1-2-4-8, 0.25 of
    dropout rates 0-0.25-0.5): x is measured from its lowest level in steps of
    (highest - lowest) / (levels - 1), so a planted effect means the same on every
    axis.
    """
    units = normalise_units(units)
    layout = units.loc[units["arm"].isin([first, second]),
                       [column for column in ("arm", "x", "level", "stratum", "setting") if column in units.columns]]
    layout = layout.assign(arm=np.where(layout["arm"] == first, FIRST, SECOND))
    x = layout["x"].to_numpy(dtype=float)
    distinct = np.unique(x)
    if distinct.size >= 2:
        step = (distinct[-1] - distinct[0]) / (distinct.size - 1)
        layout = layout.assign(x=(x - distinct[0]) / step)
    if "setting" not in layout.columns:
        layout = layout.assign(setting=np.arange(len(layout)))
    null = Scenario("null", kind="binary", level_first=0.8, level_second=0.8) if binary \
        else Scenario("null", setting_sd=0.5 if paired else 0.0)
    if binary:
        planted = replace(PLANTED_BINARY, slope_first=abs(PLANTED_BINARY.slope_first) * supports_sign,
                          level_first=0.95 if supports_sign < 0 else 0.05)
    else:
        planted = replace(PLANTED_CONTINUOUS, slope_first=abs(PLANTED_CONTINUOUS.slope_first) * supports_sign)
    common = dict(paired=paired, supports_sign=supports_sign, alpha=alpha, studies=studies,
                  permutations=permutations, rank_based=rank_based)
    false_positive = status_shares(layout, null, seed=seed, **common)["decided"]
    shares = status_shares(layout, planted, seed=seed + 7, **common)
    return {"false_positive_rate": false_positive, "power": shares["supported"], "studies": float(studies),
            "planted": planted.name.replace("per doubling of depth", "per level step").replace(
                "per doubling", "per level step")}


def claim_layout(levels: Sequence[float], strata: int, units_per_cell: int, *, two_arms: bool) -> pd.DataFrame:
    """The unit layout of a claim along ``levels`` (x = the levels), ``strata`` levels of other factors, paired
    settings, one arm or two: the shape of a regularisation claim such as "dropout narrows the gap"."""
    arms = (FIRST, SECOND) if two_arms else (FIRST,)
    rows = [(arm, float(level), str(level), str(stratum), setting) for arm in arms for stratum in range(strata)
            for level in levels for setting in range(units_per_cell)]
    return pd.DataFrame(rows, columns=["arm", "x", "level", "stratum", "setting"])


def family_error_rate(layouts: Sequence[pd.DataFrame], *, alpha: float = 0.05, studies: int = 1000,
                      permutations: int = 999, seed: int = 0, setting_sd: float = 0.5) -> dict[str, float]:
    """Share of simulated null studies in which any of several claims is decided, with and without Holm's
    adjustment across the claims (each claim on its own layout, null values drawn independently per claim:
    the case where unadjusted tests add up their error rates). Uses the verdict's own decision rules."""
    rng = np.random.default_rng(seed)
    null = Scenario("null", setting_sd=setting_sd)
    claims = []
    for index, layout in enumerate(layouts):
        layout = normalise_units(layout)
        design = Design.build(layout, FIRST, SECOND, permutations=permutations, seed=seed + 1 + index, paired=True)
        ordered = layout.loc[layout["arm"].isin([FIRST, SECOND])].reset_index(drop=True)
        claims.append(_tests(design, ordered, simulate_values(ordered, null, studies, rng)))
    raw = [decide_claim(**tests, supports_sign=-1, alpha=alpha) != INCONCLUSIVE for tests in claims]
    any_raw = np.any(np.vstack(raw), axis=0)
    one_arm = [tests["one_arm"] for tests in claims]
    nothing = np.full(studies, np.nan)
    differences, unions = family_p_values(
        np.vstack([nothing if tests["one_arm"] else tests["p_difference"] for tests in claims]),
        np.vstack([tests["p_first"] for tests in claims]), one_arm)
    decided = [decide_claim(**{**tests, "p_difference": differences[index], "p_first": unions[index]},
                            supports_sign=-1, alpha=alpha) != INCONCLUSIVE for index, tests in enumerate(claims)]
    any_holm = np.any(np.vstack(decided), axis=0)
    return {"claims": float(len(layouts)), "studies": float(studies), "any_decided_unadjusted": float(any_raw.mean()),
            "any_decided_holm": float(any_holm.mean())}


def main() -> None:
    """Print the calibration table of docs/statistics.md (``make calibration``): the false-positive rate of every
    null scenario and the power at the stated planted effects, for study shapes like the shipped spaces."""
    shapes = [Shape(depths, units, paired) for depths in ((1, 2, 4), (1, 2, 4, 8)) for units in (3, 4, 5, 6, 8, 10)
              for paired in (True, False)]
    null = calibration_table(shapes, NULL_SCENARIOS, studies=1000, permutations=999, seed=11)
    worst = null.groupby(["depths", "units_per_cell", "paired"])["decided"].max().unstack("paired")
    print("False-positive rate (any decision) under the null, worst of the", len(NULL_SCENARIOS),
          "null scenarios; 1,000 simulated studies each:\n")
    print(worst.rename(columns={True: "paired", False: "unpaired"}).to_string(float_format="%.3f"))
    print("\nPer null scenario, mean over shapes:\n")
    print(null.groupby("scenario")["decided"].agg(["mean", "max"]).to_string(float_format="%.3f"))
    planted = calibration_table([Shape(depths, units, True) for depths in ((1, 2, 4), (1, 2, 4, 8))
                                 for units in (3, 6, 10)], (PLANTED_CONTINUOUS,), studies=1000, permutations=999,
                                seed=13, supports_sign=1)
    binary = calibration_table([Shape(depths, units, True) for depths in ((1, 2, 4), (1, 2, 4, 8))
                                for units in (3, 6, 10)], (PLANTED_BINARY,), studies=1000, permutations=999,
                               seed=17, supports_sign=-1)
    other = calibration_table([Shape((1, 2, 4, 8), units, True) for units in (3, 6, 10)], (OTHER_ARM_SCENARIO,),
                              studies=1000, permutations=999, seed=19, supports_sign=-1)
    columns = ["scenario", "depths", "units_per_cell", "supported", "contradicted", "other arm", "inconclusive"]
    print("\nPower (share 'supported') at the stated planted effects, paired settings:\n")
    print(pd.concat([planted, binary])[columns].to_string(index=False, float_format="%.3f"))
    print("\nA difference that comes from the other arm:\n")
    print(other[columns].to_string(index=False, float_format="%.3f"))
    family = family_error_rate([claim_layout((0.0, 0.25, 0.5), 4, 4, two_arms=False),
                                claim_layout((0.0, 0.25, 0.5), 1, 4, two_arms=True),
                                claim_layout((0.0, 0.25, 0.5), 4, 4, two_arms=False)], studies=2000, seed=23)
    print("\nThree claims of the dropout study's shape (one-arm over 4 strata, two-arm in 1 stratum, one-arm), "
          "2,000 null studies: any claim decided", f"{family['any_decided_unadjusted']:.3f} unadjusted,",
          f"{family['any_decided_holm']:.3f} with Holm's adjustment.")


if __name__ == "__main__":
    main()
