"""Depth slopes and their permutation tests, written as linear maps so one code path serves real studies
and thousands of simulated ones.

A *unit* is one number about one trial: for example 1 or 0 for "this nuisance
setting trained", or the gap at matched training progress of a trial that
trained. Units carry their ``architecture``, ``depth`` and, when the tuner gave
every cell the same sequence of nuisance settings, their ``setting`` index.

Every statistic here is an ordinary least-squares slope of the units' values
against log2(depth), so it is a weighted sum of the values. A permutation of
labels changes the weights, never the values: :class:`Design` turns a set of
units and a set of permutations into a weight matrix once, and the statistics
of one study or of thousands of simulated studies of the same shape are a
single matrix product.

Two tests:

* **difference** (first minus second architecture's slope): architecture labels
  are exchanged within blocks. Blocks are (depth, setting) pairs when settings
  are paired across cells (a swap exchanges two trials that differ in
  architecture alone), else depths. Exact under the null that, at every depth,
  the architecture label does not change the distribution of the units.
* **one arm** (one architecture's own slope): depth labels are exchanged among
  that architecture's units, within each setting when settings are paired.
  Exact under the null that depth does not change that architecture's units.

P-values are two-sided Monte Carlo permutation p-values, (1 + #{|T*| >= |T|}) /
(1 + permutations).

The same code serves any claim (:mod:`study.statistics.claims`): units may
carry their own axis ``x`` (the claim's factor on its scale), ``arm`` (the
level of the compared factor), ``level`` (the factor level, which defines a
cell with ``arm`` and ``stratum``) and ``stratum`` (the levels of the other
scientific factors). Slopes are then within-stratum (fixed-effects) slopes,
and every permutation stays within its stratum. Units with only
``architecture`` and ``depth`` are the depth question: arm = architecture,
x = log2(depth), one stratum.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

def depth_axis(depth: np.ndarray | pd.Series) -> np.ndarray:
    """log2(depth): the x of every slope (a slope is the change per doubling of depth)."""
    values = np.asarray(depth, dtype=float)
    if np.any(~np.isfinite(values)) or np.any(values <= 0):
        raise ValueError("depths must be positive numbers")
    return np.log2(values)


def normalise_units(units: pd.DataFrame) -> pd.DataFrame:
    """Units with the columns arm, x, level, stratum (and setting, value when present).

    A depth table (architecture, depth) becomes arm = architecture, x =
    log2(depth), level = depth, one stratum; a claim's table already has them.
    """
    rows = units.copy()
    if "x" not in rows.columns:
        rows["x"] = depth_axis(rows["depth"]) if len(rows) else np.zeros(0)
        if "level" not in rows.columns:
            rows["level"] = pd.to_numeric(rows["depth"]) if len(rows) else rows["depth"]
    if "arm" not in rows.columns:
        rows["arm"] = rows["architecture"].astype(str)
    if "level" not in rows.columns:
        rows["level"] = rows["x"]
    if "stratum" not in rows.columns:
        rows["stratum"] = 0
    rows["arm"] = rows["arm"].astype(str)
    return rows


def _stratum_codes(strata: np.ndarray | pd.Series) -> np.ndarray:
    return pd.factorize(pd.Series(np.asarray(strata)), sort=True)[0] if len(strata) else np.zeros(0, dtype=int)


def _stratum_means(x: np.ndarray, strata: np.ndarray) -> np.ndarray:
    """Each unit's stratum mean of x."""
    if not x.size:
        return x
    codes = _stratum_codes(strata)
    sums = np.bincount(codes, weights=x)
    counts = np.bincount(codes)
    return (sums / counts)[codes]


def fixed_effects_slope(x: np.ndarray, strata: np.ndarray, values: np.ndarray) -> float:
    """The slope of values on x within strata (x centred on each stratum's mean); NaN when x never varies
    within a stratum."""
    centred = x - _stratum_means(x, strata)
    sxx = float(centred @ centred)
    return float(centred @ values / sxx) if sxx > 1e-15 else math.nan


def _masked_slope_weights(x: np.ndarray, masks: np.ndarray, strata: np.ndarray | None = None) -> np.ndarray:
    """Row r: the weights w with w @ y = the within-stratum OLS slope of y on x over the units where masks[r]
    is true (x centred on the masked units' mean in each stratum)."""
    selected = masks.astype(float)
    codes = _stratum_codes(strata) if strata is not None else np.zeros(x.size, dtype=int)
    onehot = (codes[:, None] == np.arange(codes.max() + 1 if codes.size else 0)[None, :]).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        count = selected @ onehot
        sums = (selected * x[None, :]) @ onehot
        mean_x = (np.where(count > 0, sums / np.maximum(count, 1), 0.0)) @ onehot.T
        centred = (x[None, :] - mean_x) * selected
        sxx = (centred ** 2).sum(axis=1)
        return np.where(sxx[:, None] > 0, centred / np.where(sxx > 0, sxx, 1.0)[:, None], 0.0)


PAIR_KEYS = ["level", "stratum", "setting"]


def _complete_pairs(rows: pd.DataFrame, is_first: np.ndarray) -> pd.DataFrame:
    """One row per (level, stratum, setting) with exactly one unit of each arm: columns of the first arm's
    unit suffixed ``_a``, the second's ``_b``."""
    firsts = rows.loc[is_first].drop_duplicates(PAIR_KEYS, keep=False)
    seconds = rows.loc[~is_first].drop_duplicates(PAIR_KEYS, keep=False)
    return firsts.merge(seconds, on=PAIR_KEYS, suffixes=("_a", "_b"))


def _slope_of_cell_means(x: np.ndarray, counts: np.ndarray, means: np.ndarray,
                         strata: np.ndarray | None = None) -> np.ndarray:
    """The unit-level within-stratum OLS slope on x, from cell means (replicates x cells) and cell sizes: each
    cell counts by its number of units, so this equals the slope fitted on the units themselves."""
    codes = _stratum_codes(strata) if strata is not None else np.zeros(x.size, dtype=int)
    x_bar = (np.bincount(codes, weights=counts * x) / np.bincount(codes, weights=counts))[codes]
    lever = counts * (x - x_bar)
    sxx = float(lever @ (x - x_bar))
    return (means * lever).sum(axis=1) / sxx


def _paired_difference_weights(rows: pd.DataFrame, x: np.ndarray, is_first: np.ndarray, permutations: int,
                               rng: np.random.Generator) -> np.ndarray:
    """Paired settings: the slope of the within-pair differences (first minus second) on log2(depth).

    A pair is the two trials of one (depth, setting), one per architecture; the
    setting's effect cancels in their difference. Under the null (the
    architectures change alike with depth; a constant level difference is
    allowed) the differences do not depend on depth, so depth labels are
    exchanged between pairs of the same setting: an exact test. Units without a
    partner get weight 0 here (they still count in each arm's own slope).
    """
    pairs = _complete_pairs(rows.assign(_position=np.arange(len(rows))), is_first)
    pair_x = pairs["x_a"].to_numpy(dtype=float)
    stratum_mean = _stratum_means(pair_x, pairs["stratum"].to_numpy())
    centred = pair_x - stratum_mean
    sxx = float(centred @ centred)
    if sxx <= 1e-15:
        return np.zeros((2, len(rows)), dtype=float)
    settings = _block_codes(pairs, ["stratum", "setting"], appearance=True)
    permuted_x = np.vstack([pair_x[None, :], _permuted_within(pair_x, settings, permutations, rng)])
    weights = np.zeros((permuted_x.shape[0], len(rows)), dtype=float)
    # Within a (stratum, setting) block the multiset of x is the same in every row, so are the stratum means.
    slope_weights = (permuted_x - stratum_mean[None, :]) / sxx
    weights[:, pairs["_position_a"].to_numpy()] = slope_weights
    weights[:, pairs["_position_b"].to_numpy()] = -slope_weights
    return weights


def _centred_label_weights(rows: pd.DataFrame, x: np.ndarray, is_first: np.ndarray, permutations: int,
                           rng: np.random.Generator) -> np.ndarray:
    """Unpaired settings: the slope difference with architecture labels exchanged within each depth.

    Exact under the null that, at each depth, both architectures' units come
    from one distribution. A constant level difference between the
    architectures widens the permutation distribution, so the test is then
    conservative (it loses power, never error rate). Centring each architecture
    on its own mean first would win that power back but made the test
    anti-conservative with 3 units per cell (8% false positives measured), so
    it is not done.
    """
    blocks = _block_codes(rows, ["level", "stratum"])
    labels = np.vstack([is_first[None, :], _permuted_within(is_first, blocks, permutations, rng)])
    strata = rows["stratum"].to_numpy()
    return _masked_slope_weights(x, labels, strata) - _masked_slope_weights(x, ~labels, strata)


def _block_positions(blocks: np.ndarray) -> list[np.ndarray]:
    order = np.argsort(blocks, kind="stable")
    boundaries = np.flatnonzero(np.diff(blocks[order])) + 1
    return [positions for positions in np.split(order, boundaries) if positions.size]


def _distinct_arrangements(values: np.ndarray) -> int:
    """How many distinct orderings a block's labels have: n! / (product of the tied counts' factorials)."""
    _, counts = np.unique(values, return_counts=True)
    total = math.factorial(int(values.size))
    for count in counts:
        total //= math.factorial(int(count))
    return total


def _distinct_permutations(values: list) -> list[tuple]:
    """Every distinct ordering of ``values`` in lexicographic order (the same list as
    ``sorted(set(itertools.permutations(values)))``), generated one by one with the next-permutation step, so a
    block of many tied labels costs its few distinct orderings, never n! candidates."""
    current = sorted(values)
    result = [tuple(current)]
    while True:
        pivot = len(current) - 2
        while pivot >= 0 and current[pivot] >= current[pivot + 1]:
            pivot -= 1
        if pivot < 0:
            return result
        successor = len(current) - 1
        while current[successor] <= current[pivot]:
            successor -= 1
        current[pivot], current[successor] = current[successor], current[pivot]
        current[pivot + 1:] = reversed(current[pivot + 1:])
        result.append(tuple(current))


def _all_within(labels: np.ndarray, blocks: np.ndarray, limit: int) -> np.ndarray | None:
    """Every distinct within-block rearrangement of ``labels`` except the observed one, or None when there
    are more than ``limit`` (then Monte Carlo permutations are drawn instead)."""
    groups = _block_positions(blocks)
    total = 1
    for positions in groups:
        total *= _distinct_arrangements(labels[positions])
        if total > limit:
            return None
    arrangements = [np.array(_distinct_permutations(labels[positions].tolist()), dtype=labels.dtype)
                    for positions in groups]
    grid = np.indices([len(block) for block in arrangements]).reshape(len(arrangements), -1).T
    result = np.empty((total, len(labels)), dtype=labels.dtype)
    for index, (positions, block) in enumerate(zip(groups, arrangements)):
        result[:, positions] = block[grid[:, index]]
    observed = np.flatnonzero((result == labels[None, :]).all(axis=1))
    return np.delete(result, observed[:1], axis=0)


def _permuted_within(labels: np.ndarray, blocks: np.ndarray, permutations: int,
                     rng: np.random.Generator) -> np.ndarray:
    """Rearrangements of ``labels`` within each block, one per row.

    When a design has at most ``permutations`` distinct rearrangements (small
    studies: a few settings, few depths), all of them except the observed one
    are returned, so the p-value is the exact one, (1 + count) / (1 + rows) =
    count including the observed / all arrangements. Otherwise ``permutations``
    random ones are drawn. (With few arrangements, a fixed random draw can
    over- or under-represent the extreme ones: in one 5-setting layout it made
    a 6.25%-minimum exact test reject 8.5% of null studies.)
    """
    exact = _all_within(labels, blocks, permutations)
    if exact is not None:
        return exact
    result = np.empty((permutations, len(labels)), dtype=labels.dtype)
    order = np.argsort(blocks, kind="stable")
    sorted_blocks = blocks[order]
    boundaries = np.flatnonzero(np.diff(sorted_blocks)) + 1
    for positions in np.split(order, boundaries):
        if positions.size == 0:
            continue
        tiled = np.tile(labels[positions], (permutations, 1))
        result[:, positions] = rng.permuted(tiled, axis=1) if positions.size > 1 else tiled
    return result


def _block_codes(frame: pd.DataFrame, columns: list[str], *, appearance: bool = False) -> np.ndarray:
    """One code per block (a combination of ``columns``): sorted, or in order of first appearance."""
    if not len(frame):
        return np.zeros(0, int)
    if appearance:
        keys = pd.MultiIndex.from_frame(frame[columns].astype(str)) if len(columns) > 1 else frame[columns[0]]
        return pd.factorize(keys)[0]
    return frame.groupby(columns, sort=True, dropna=False).ngroup().to_numpy()


@dataclass(frozen=True)
class Design:
    """The units of one comparison and the permutation weight matrices of its tests.

    ``is_first``: which units belong to the first arm (the others to the
    second). ``paired``: blocks are (level, stratum, setting). ``weights_*``: the
    observed statistic is ``weights_*[0] @ values``, the permuted ones
    ``weights_*[1:] @ values``.
    """

    x: np.ndarray
    is_first: np.ndarray
    level: np.ndarray
    paired: bool
    weights_difference: np.ndarray
    weights_first: np.ndarray
    weights_second: np.ndarray

    @property
    def units(self) -> int:
        return int(self.x.size)

    @classmethod
    def build(cls, units: pd.DataFrame, first: str, second: str, *, permutations: int, seed: int,
              paired: bool) -> "Design":
        """Weights for ``units`` (see :func:`normalise_units`; optional setting), two arms."""
        if permutations < 1:
            raise ValueError(f"permutations must be >= 1, got {permutations!r}")
        units = normalise_units(units)
        rows = units.loc[units["arm"].isin([first, second])].reset_index(drop=True)
        paired = bool(paired and "setting" in rows.columns and rows["setting"].notna().all())
        rng = np.random.default_rng(seed)
        x = rows["x"].to_numpy(dtype=float)
        is_first = (rows["arm"] == first).to_numpy()
        if paired:
            weights_difference = _paired_difference_weights(rows, x, is_first, permutations, rng)
        else:
            weights_difference = _centred_label_weights(rows, x, is_first, permutations, rng)
        arm_weights = []
        for selected in (is_first, ~is_first):
            positions = np.flatnonzero(selected)
            arm = np.zeros((2, len(rows)), dtype=float)
            if positions.size:
                arm_rows = rows.iloc[positions]
                arm_blocks = _block_codes(arm_rows, ["stratum", "setting"] if paired else ["stratum"])
                arm_x = x[positions]
                permuted_x = np.vstack([arm_x[None, :], _permuted_within(arm_x, arm_blocks, permutations, rng)])
                arm = np.zeros((permuted_x.shape[0], len(rows)), dtype=float)
                stratum_mean = _stratum_means(arm_x, arm_rows["stratum"].to_numpy())
                centred = arm_x - stratum_mean
                sxx = float(centred @ centred)
                if sxx > 1e-15:
                    # Permutations stay within strata, so each stratum's mean of x and Sxx are unchanged.
                    arm[:, positions] = (permuted_x - stratum_mean[None, :]) / sxx
            arm_weights.append(arm)
        return cls(x=x, is_first=is_first, level=rows["level"].to_numpy(), paired=paired,
                   weights_difference=weights_difference, weights_first=arm_weights[0],
                   weights_second=arm_weights[1])


def permutation_p_values(weights: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Observed statistics and two-sided permutation p-values for a batch of studies.

    ``values`` is (studies x units) or (units,). Returns (statistic, p_value),
    each of length studies. A statistic of exactly 0 (constant data) gets p = 1.
    """
    batch = np.atleast_2d(np.asarray(values, dtype=float))
    statistics = batch @ weights.T                     # studies x (1 + permutations)
    observed = statistics[:, 0]
    scale = np.maximum(1.0, np.abs(observed))
    tolerance = 1e-9 * scale
    extreme = np.abs(statistics[:, 1:]) >= (np.abs(observed) - tolerance)[:, None]
    permutations = weights.shape[0] - 1
    p_values = (1.0 + extreme.sum(axis=1)) / (1.0 + permutations)
    snapped = np.where(np.abs(observed) <= tolerance, 0.0, observed)
    p_values = np.where(snapped == 0.0, 1.0, p_values)
    return snapped, p_values


def midranks(values: np.ndarray) -> np.ndarray:
    """Mid-ranks along the last axis (ties share their mean rank): a censoring-aware scale.

    A time measure censored at the epoch budget is stored as the budget (or one
    more); its ties at the top are then exactly Gehan's treatment of a common
    censoring time, so a slope test on mid-ranks handles censoring without
    dropping any trial.
    """
    array = np.atleast_2d(np.asarray(values, dtype=float))
    return stats.rankdata(array, axis=1, method="average")


@dataclass(frozen=True)
class SlopeComparison:
    """Both arms' slopes (per doubling of depth, or per unit of a claim's axis), their difference, intervals and
    permutation p-values. ``depths_*``: the levels of the axis an arm has units at (at least 2 for a slope)."""

    slope_first: float
    slope_first_low: float
    slope_first_high: float
    p_first: float
    slope_second: float
    slope_second_low: float
    slope_second_high: float
    p_second: float
    difference: float
    ci_low: float
    ci_high: float
    p_difference: float
    units_first: int
    units_second: int
    depths_first: int
    depths_second: int
    paired: bool
    rank_based: bool

    def as_row(self) -> dict[str, float | int | bool]:
        return dict(self.__dict__)


def _arm_cells(rows: pd.DataFrame) -> list[tuple[float, object, np.ndarray]]:
    """(x, stratum, values) of every (stratum, level) cell of some units, in a fixed order."""
    return [(float(group["x"].iloc[0]), stratum, group["value"].to_numpy(dtype=float))
            for (stratum, _level), group in rows.groupby(["stratum", "level"], sort=True)]


def _varies_within_a_stratum(cells: list[tuple[float, object, np.ndarray]]) -> bool:
    by_stratum: dict[object, set[float]] = {}
    for x, stratum, _values in cells:
        by_stratum.setdefault(stratum, set()).add(x)
    return any(len(xs) >= 2 for xs in by_stratum.values())


def _bootstrap_slopes(units: pd.DataFrame, first: str, second: str, *, binary: bool, resamples: int,
                      seed: int) -> dict[str, np.ndarray]:
    """Bootstrap replicates of each arm's slope from cell means.

    Units are resampled with replacement within each (arm, stratum, level)
    cell. For 0/1 units (a share of settings) each cell's share is drawn from its
    Jeffreys posterior Beta(k + 1/2, n - k + 1/2) instead, so a cell where every
    setting trained (or none did) still carries uncertainty instead of a
    zero-width interval. A cell with a single continuous unit has no spread to
    resample, so that arm gets no interval (NaN) rather than a falsely narrow one.
    """
    rng = np.random.default_rng(seed)
    replicates = {}
    for label, arm in (("first", first), ("second", second)):
        cells = _arm_cells(units.loc[units["arm"] == arm])
        if not _varies_within_a_stratum(cells) or (not binary and min(len(values) for *_, values in cells) < 2):
            replicates[label] = np.full(resamples, np.nan)
            continue
        x = np.array([cell[0] for cell in cells])
        strata = np.array([str(cell[1]) for cell in cells])
        counts = np.array([len(cell[2]) for cell in cells], dtype=float)
        means = np.empty((resamples, len(cells)))
        for index, (_x, _stratum, values) in enumerate(cells):
            if binary:
                successes = float(values.sum())
                means[:, index] = rng.beta(successes + 0.5, len(values) - successes + 0.5, size=resamples)
            else:
                draws = values[rng.integers(0, len(values), size=(resamples, len(values)))]
                means[:, index] = draws.mean(axis=1)
        replicates[label] = _slope_of_cell_means(x, counts, means, strata)
    return replicates


def _paired_differences(rows: pd.DataFrame, first: str) -> pd.DataFrame:
    """Complete pairs (one unit per arm at the same level, stratum and setting): x, level, stratum and the
    first-minus-second difference."""
    pairs = _complete_pairs(rows, (rows["arm"] == first).to_numpy())
    return pd.DataFrame({"x": pairs["x_a"].to_numpy(dtype=float), "level": pairs["level"].to_numpy(),
                         "stratum": pairs["stratum"].to_numpy(),
                         "value": (pairs["value_a"] - pairs["value_b"]).to_numpy(dtype=float)})


def _bootstrap_paired_difference(pairs: pd.DataFrame, resamples: int, seed: int) -> np.ndarray:
    """Bootstrap replicates of the slope of the within-pair differences, pairs resampled within each cell."""
    rng = np.random.default_rng(seed + 1)
    cells = _arm_cells(pairs)
    if not cells or not _varies_within_a_stratum(cells) or min(len(values) for *_, values in cells) < 2:
        return np.full(resamples, np.nan)
    x = np.array([cell[0] for cell in cells])
    strata = np.array([str(cell[1]) for cell in cells])
    counts = np.array([len(values) for *_, values in cells], dtype=float)
    means = np.column_stack([values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
                             for *_, values in cells])
    return _slope_of_cell_means(x, counts, means, strata)


def compare_slopes(units: pd.DataFrame, *, first: str, second: str, paired: bool, permutations: int = 1999,
                   resamples: int = 2000, seed: int = 0, confidence: float = 0.95, rank_based: bool = False,
                   binary: bool = False) -> SlopeComparison:
    """Slopes of ``value`` against x for two arms, their difference, tests and intervals.

    ``units``: columns architecture, depth (x = log2 depth), value and optionally
    setting; or the normalised columns of :func:`normalise_units`.
    ``difference`` is the tested statistic: with paired settings the slope of
    the within-pair differences over the complete pairs, else the difference of
    the two arms' slopes. Slopes are within strata. Estimates and
    percentile-bootstrap intervals are on the values' own scale; the
    permutation tests are on the values, or on their mid-ranks when
    ``rank_based`` (time measures censored at the epoch budget). An arm with
    units at fewer than two levels has no slope (NaN, p = 1).
    """
    rows = normalise_units(units)
    rows = rows.loc[rows["arm"].isin([first, second])]
    rows = rows.loc[np.isfinite(pd.to_numeric(rows["value"], errors="coerce").astype(float))].reset_index(drop=True)
    design = Design.build(rows, first, second, permutations=permutations, seed=seed, paired=paired)
    values = rows["value"].to_numpy(dtype=float)
    tested = midranks(values)[0] if rank_based and values.size else values
    first_rows = rows["arm"] == first
    x = rows["x"].to_numpy(dtype=float)
    strata = rows["stratum"].to_numpy()

    def slope(selected: pd.Series) -> float:
        mask = selected.to_numpy()
        if rows.loc[selected, "level"].nunique() < 2:
            return math.nan
        return fixed_effects_slope(x[mask], strata[mask], values[mask])

    slope_first, slope_second = slope(first_rows), slope(~first_rows)
    depths_first = int(rows.loc[first_rows, "level"].nunique()) if math.isfinite(slope_first) else \
        min(1, int(rows.loc[first_rows, "level"].nunique()))
    depths_second = int(rows.loc[~first_rows, "level"].nunique()) if math.isfinite(slope_second) else \
        min(1, int(rows.loc[~first_rows, "level"].nunique()))
    both = depths_first >= 2 and depths_second >= 2
    statistic, p_difference = (permutation_p_values(design.weights_difference, values)[0],
                               permutation_p_values(design.weights_difference, tested)[1]) if both \
        else ([math.nan], [1.0])
    p_first = permutation_p_values(design.weights_first, tested)[1][0] if depths_first >= 2 else 1.0
    p_second = permutation_p_values(design.weights_second, tested)[1][0] if depths_second >= 2 else 1.0
    replicates = _bootstrap_slopes(rows, first, second, binary=binary, resamples=resamples, seed=seed)
    tail = (1.0 - confidence) / 2.0

    def interval(samples: np.ndarray) -> tuple[float, float]:
        finite = samples[np.isfinite(samples)]
        if finite.size < 2:
            return math.nan, math.nan
        return float(np.quantile(finite, tail)), float(np.quantile(finite, 1 - tail))

    first_low, first_high = interval(replicates["first"])
    second_low, second_high = interval(replicates["second"])
    if design.paired:
        # The interval of the statistic that is tested: the slope of the within-pair differences.
        low, high = interval(_bootstrap_paired_difference(_paired_differences(rows, first), resamples, seed))
    else:
        low, high = interval(replicates["first"] - replicates["second"])
    return SlopeComparison(
        slope_first=_snap(slope_first), slope_first_low=first_low, slope_first_high=first_high,
        p_first=float(p_first), slope_second=_snap(slope_second), slope_second_low=second_low,
        slope_second_high=second_high, p_second=float(p_second),
        difference=_snap(float(statistic[0])), ci_low=low, ci_high=high, p_difference=float(p_difference[0]),
        units_first=int(first_rows.sum()), units_second=int((~first_rows).sum()), depths_first=depths_first,
        depths_second=depths_second, paired=design.paired, rank_based=rank_based)


def _snap(value: float) -> float:
    """Rounding noise of a constant fit (1e-17) is 0."""
    return 0.0 if math.isfinite(value) and abs(value) < 1e-12 else value
