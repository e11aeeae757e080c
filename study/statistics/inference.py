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
"""
from __future__ import annotations

import itertools
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


def _centred_slope_weights(x: np.ndarray) -> np.ndarray:
    """Weights w with slope = w @ y for the OLS slope of y on x (zeros when x is constant)."""
    centred = x - x.mean() if x.size else x
    sxx = float(centred @ centred)
    return centred / sxx if sxx > 0 else np.zeros_like(x)


def _masked_slope_weights(x: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Row r: the weights w with w @ y = OLS slope of y on x over the units where masks[r] is true."""
    selected = masks.astype(float)
    count = selected.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_x = np.where(count > 0, selected @ x / np.maximum(count, 1), 0.0)
        centred = (x[None, :] - mean_x[:, None]) * selected
        sxx = (centred ** 2).sum(axis=1)
        return np.where(sxx[:, None] > 0, centred / np.where(sxx > 0, sxx, 1.0)[:, None], 0.0)


def _complete_pairs(rows: pd.DataFrame, is_first: np.ndarray) -> pd.DataFrame:
    """One row per (depth, setting) with exactly one unit of each architecture: columns of the first
    architecture's unit suffixed ``_a``, the second's ``_b``."""
    firsts = rows.loc[is_first].drop_duplicates(["depth", "setting"], keep=False)
    seconds = rows.loc[~is_first].drop_duplicates(["depth", "setting"], keep=False)
    return firsts.merge(seconds, on=["depth", "setting"], suffixes=("_a", "_b"))


def _slope_of_cell_means(x: np.ndarray, counts: np.ndarray, means: np.ndarray) -> np.ndarray:
    """The unit-level OLS slope on x, from cell means (replicates x cells) and cell sizes: each cell counts
    by its number of units, so this equals the slope fitted on the units themselves."""
    weights = counts / counts.sum()
    x_bar = float(weights @ x)
    sxx = float(weights @ (x - x_bar) ** 2)
    return ((means - (means @ weights)[:, None]) * (weights * (x - x_bar))).sum(axis=1) / sxx


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
    if pairs["depth"].nunique() < 2:
        return np.zeros((2, len(rows)), dtype=float)
    pair_x = np.log2(pairs["depth"].to_numpy(dtype=float))
    settings = pd.factorize(pairs["setting"])[0]
    permuted_x = np.vstack([pair_x[None, :], _permuted_within(pair_x, settings, permutations, rng)])
    weights = np.zeros((permuted_x.shape[0], len(rows)), dtype=float)
    centred = pair_x - pair_x.mean()
    sxx = float(centred @ centred)
    slope_weights = (permuted_x - pair_x.mean()) / sxx   # the multiset of x is the same in every row
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
    blocks = _block_codes(rows, ["depth"])
    labels = np.vstack([is_first[None, :], _permuted_within(is_first, blocks, permutations, rng)])
    return _masked_slope_weights(x, labels) - _masked_slope_weights(x, ~labels)


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


def _all_within(labels: np.ndarray, blocks: np.ndarray, limit: int) -> np.ndarray | None:
    """Every distinct within-block rearrangement of ``labels`` except the observed one, or None when there
    are more than ``limit`` (then Monte Carlo permutations are drawn instead)."""
    groups = _block_positions(blocks)
    total = 1
    for positions in groups:
        total *= _distinct_arrangements(labels[positions])
        if total > limit:
            return None
    arrangements = [np.array(sorted(set(itertools.permutations(labels[positions].tolist()))), dtype=labels.dtype)
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


def _block_codes(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    return frame.groupby(columns, sort=True, dropna=False).ngroup().to_numpy() if len(frame) else np.zeros(0, int)


@dataclass(frozen=True)
class Design:
    """The units of one comparison and the permutation weight matrices of its tests.

    ``is_first``: which units belong to the first architecture (the others to
    the second). ``paired``: blocks are (depth, setting). ``weights_*``: the
    observed statistic is ``weights_*[0] @ values``, the permuted ones
    ``weights_*[1:] @ values``.
    """

    x: np.ndarray
    is_first: np.ndarray
    depth: np.ndarray
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
        """Weights for ``units`` (columns architecture, depth, optional setting), two architectures."""
        if permutations < 1:
            raise ValueError(f"permutations must be >= 1, got {permutations!r}")
        rows = units.loc[units["architecture"].astype(str).isin([first, second])].reset_index(drop=True)
        paired = bool(paired and "setting" in rows.columns and rows["setting"].notna().all())
        rng = np.random.default_rng(seed)
        x = depth_axis(rows["depth"]) if len(rows) else np.zeros(0)
        is_first = (rows["architecture"].astype(str) == first).to_numpy()
        if paired:
            weights_difference = _paired_difference_weights(rows, x, is_first, permutations, rng)
        else:
            weights_difference = _centred_label_weights(rows, x, is_first, permutations, rng)
        arm_weights = []
        for selected in (is_first, ~is_first):
            positions = np.flatnonzero(selected)
            arm = np.zeros((2, len(rows)), dtype=float)
            if positions.size:
                arm_blocks = (_block_codes(rows.iloc[positions], ["setting"]) if paired
                              else np.zeros(positions.size, dtype=int))
                arm_x = x[positions]
                permuted_x = np.vstack([arm_x[None, :], _permuted_within(arm_x, arm_blocks, permutations, rng)])
                arm = np.zeros((permuted_x.shape[0], len(rows)), dtype=float)
                centred = arm_x - arm_x.mean()
                sxx = float(centred @ centred)
                if sxx > 0:
                    # The permuted x keep the same multiset within the arm, so the mean and Sxx are unchanged.
                    arm[:, positions] = (permuted_x - arm_x.mean()) / sxx
            arm_weights.append(arm)
        return cls(x=x, is_first=is_first, depth=rows["depth"].to_numpy(dtype=float), paired=paired,
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
    """Both arms' slopes per doubling of depth, their difference, intervals and permutation p-values."""

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


def _bootstrap_slopes(units: pd.DataFrame, first: str, second: str, *, binary: bool, resamples: int,
                      seed: int) -> dict[str, np.ndarray]:
    """Bootstrap replicates of each arm's slope from cell means.

    Units are resampled with replacement within each (architecture, depth)
    cell. For 0/1 units (a share of settings) each cell's share is drawn from its
    Jeffreys posterior Beta(k + 1/2, n - k + 1/2) instead, so a cell where every
    setting trained (or none did) still carries uncertainty instead of a
    zero-width interval. A cell with a single continuous unit has no spread to
    resample, so that arm gets no interval (NaN) rather than a falsely narrow one.
    """
    rng = np.random.default_rng(seed)
    replicates = {}
    for label, architecture in (("first", first), ("second", second)):
        rows = units.loc[units["architecture"].astype(str) == architecture]
        cells = [(float(np.log2(depth)), group["value"].to_numpy(dtype=float))
                 for depth, group in rows.groupby("depth", sort=True)]
        if len(cells) < 2 or (not binary and min(len(values) for _, values in cells) < 2):
            replicates[label] = np.full(resamples, np.nan)
            continue
        x = np.array([cell[0] for cell in cells])
        counts = np.array([len(cell[1]) for cell in cells], dtype=float)
        means = np.empty((resamples, len(cells)))
        for index, (_x, values) in enumerate(cells):
            if binary:
                successes = float(values.sum())
                means[:, index] = rng.beta(successes + 0.5, len(values) - successes + 0.5, size=resamples)
            else:
                draws = values[rng.integers(0, len(values), size=(resamples, len(values)))]
                means[:, index] = draws.mean(axis=1)
        replicates[label] = _slope_of_cell_means(x, counts, means)
    return replicates


def _paired_differences(rows: pd.DataFrame, first: str) -> pd.DataFrame:
    """Complete pairs (one unit per architecture at the same depth and setting): depth and first-minus-second."""
    pairs = _complete_pairs(rows, (rows["architecture"].astype(str) == first).to_numpy())
    return pd.DataFrame({"depth": pairs["depth"].to_numpy(dtype=float),
                         "value": (pairs["value_a"] - pairs["value_b"]).to_numpy(dtype=float)})


def _bootstrap_paired_difference(pairs: pd.DataFrame, resamples: int, seed: int) -> np.ndarray:
    """Bootstrap replicates of the slope of the within-pair differences, pairs resampled within each depth."""
    rng = np.random.default_rng(seed + 1)
    cells = [(float(np.log2(depth)), group["value"].to_numpy(dtype=float))
             for depth, group in pairs.groupby("depth", sort=True)]
    if len(cells) < 2 or min(len(values) for _, values in cells) < 2:
        return np.full(resamples, np.nan)
    x = np.array([cell[0] for cell in cells])
    counts = np.array([len(values) for _, values in cells], dtype=float)
    means = np.column_stack([values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
                             for _, values in cells])
    return _slope_of_cell_means(x, counts, means)


def compare_slopes(units: pd.DataFrame, *, first: str, second: str, paired: bool, permutations: int = 1999,
                   resamples: int = 2000, seed: int = 0, confidence: float = 0.95, rank_based: bool = False,
                   binary: bool = False) -> SlopeComparison:
    """Slopes of ``value`` against log2(depth) for two architectures, their difference, tests and intervals.

    ``units``: columns architecture, depth, value and optionally setting.
    ``difference`` is the tested statistic: with paired settings the slope of
    the within-pair differences over the complete pairs, else the difference of
    the two arms' slopes. Estimates and percentile-bootstrap intervals are on
    the values' own scale;
    the permutation tests are on the values, or on their mid-ranks when
    ``rank_based`` (time measures censored at the epoch budget). An
    architecture with units at fewer than two depths has no slope (NaN, p = 1).
    """
    rows = units.loc[units["architecture"].astype(str).isin([first, second])]
    rows = rows.loc[np.isfinite(pd.to_numeric(rows["value"], errors="coerce").astype(float))].reset_index(drop=True)
    design = Design.build(rows, first, second, permutations=permutations, seed=seed, paired=paired)
    values = rows["value"].to_numpy(dtype=float)
    tested = midranks(values)[0] if rank_based and values.size else values
    first_rows = rows["architecture"].astype(str) == first
    depths_first = int(rows.loc[first_rows, "depth"].nunique())
    depths_second = int(rows.loc[~first_rows, "depth"].nunique())
    both = depths_first >= 2 and depths_second >= 2
    statistic, p_difference = (permutation_p_values(design.weights_difference, values)[0],
                               permutation_p_values(design.weights_difference, tested)[1]) if both \
        else ([math.nan], [1.0])
    p_first = permutation_p_values(design.weights_first, tested)[1][0] if depths_first >= 2 else 1.0
    p_second = permutation_p_values(design.weights_second, tested)[1][0] if depths_second >= 2 else 1.0

    def slope(selected: pd.Series) -> float:
        if rows.loc[selected, "depth"].nunique() < 2:
            return math.nan
        return float(_centred_slope_weights(depth_axis(rows.loc[selected, "depth"])) @ values[selected.to_numpy()])

    slope_first, slope_second = slope(first_rows), slope(~first_rows)
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
