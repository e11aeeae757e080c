"""Which trial won the tuning of a cell, and how uncertain that choice is.

:func:`best_per_cell` is the one rule for "the best trial of a cell": the runner
uses it to pick the setting it retrains with fresh seeds, and the report uses it
for the isolation table, the learning curves and the boundary warnings.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

#: The phase whose trials compete for "best in cell".
TUNE = "tune"
#: The only status that can win a cell (diverged and crashed trials cannot).
COMPLETED = "completed"


def best_per_cell(trials: pd.DataFrame, cell_columns: Sequence[str]) -> pd.DataFrame:
    """The tuning winner of every cell: one row per cell, in the order of ``cell_columns``.

    Candidates are the tuning-phase trials (all rows when there is no ``phase``
    column) whose ``status`` is 'completed' (when there is a status column) and
    whose ``best_val_loss`` is finite. The winner has the lowest
    ``best_val_loss``; ties go to the lower trial id. Cells without a candidate
    get no row.
    """
    missing = [column for column in [*cell_columns, "trial_id", "best_val_loss"] if column not in trials.columns]
    if missing:
        raise ValueError(f"trials lack column(s) needed to pick each cell's best: {', '.join(missing)}")
    rows = trials
    if "phase" in rows.columns:
        rows = rows.loc[rows["phase"].astype(str) == TUNE]
    if "status" in rows.columns:
        rows = rows.loc[rows["status"].astype(str) == COMPLETED]
    loss = pd.to_numeric(rows["best_val_loss"], errors="coerce").astype(float)
    rows = rows.loc[np.isfinite(loss.to_numpy())]
    rows = rows.assign(_loss=loss.loc[rows.index], _id=rows["trial_id"].astype(str))
    rows = rows.sort_values([*cell_columns, "_loss", "_id"], kind="stable")
    winners = rows.drop_duplicates(list(cell_columns), keep="first")
    return winners.drop(columns=["_loss", "_id"]).reset_index(drop=True)


def expected_best_of_k(trials: pd.DataFrame, cell_columns: Sequence[str], *, score: str = "best_val_accuracy",
                       ) -> pd.DataFrame:
    """Expected best validation score of k settings drawn from each cell's tuning trials, k = 1..n.

    Dodge et al. 2019 ("Show your work"): with the cell's n scores sorted,
    v_(1) <= ... <= v_(n), the expected maximum of k draws with replacement is
    sum_i v_(i) [(i/n)^k - ((i-1)/n)^k]. A curve still rising at k = n says the
    tuning budget had not settled which setting wins; curves that cross say the
    ranking of cells depends on the budget. Trials without a finite score
    (crashed, diverged before any epoch) count as the worst score of the cell.
    """
    rows = trials.loc[trials["phase"] == TUNE] if "phase" in trials.columns else trials
    output = []
    for cell, group in rows.groupby(list(cell_columns), sort=True):
        values = pd.to_numeric(group[score], errors="coerce").to_numpy(dtype=float)
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            continue
        values = np.sort(np.where(np.isfinite(values), values, finite.min()))
        n = len(values)
        ranks = np.arange(1, n + 1) / n
        for k in range(1, n + 1):
            weights = ranks ** k - (ranks - 1.0 / n) ** k
            cell_values = cell if isinstance(cell, tuple) else (cell,)
            output.append({**dict(zip(cell_columns, cell_values)), "k": k,
                           "expected_best": float(weights @ values), "settings": n})
    return pd.DataFrame(output, columns=[*cell_columns, "k", "expected_best", "settings"])


def winner_intervals(trials: pd.DataFrame, cell_columns: Sequence[str], measures: Sequence[str], *,
                     resamples: int = 2000, seed: int = 0, confidence: float = 0.95) -> pd.DataFrame:
    """Each cell's tuned winner: the mean of a measure over its repeat seeds, with an interval that includes
    the uncertainty of which setting won the tuning.

    Every bootstrap replicate resamples the cell's tuning trials (with
    replacement) and picks the winner among them by the rule of
    :func:`best_per_cell` (lowest best_val_loss of a completed trial). When the
    winner is the setting that was retrained, the replicate's value is the mean
    of its repeat seeds resampled with replacement (its tuning run included);
    when another setting wins, it is that setting's own tuning run. The interval
    is the percentile interval of those values. Columns: cell, measure, mean,
    ci_low, ci_high, seeds, winner_share (how often the retrained setting won).
    """
    rng = np.random.default_rng(seed)
    tail = (1.0 - confidence) / 2.0
    tune = trials.loc[trials["phase"] == TUNE] if "phase" in trials.columns else trials
    repeat = trials.loc[trials["phase"] == "repeat"] if "phase" in trials.columns else trials.iloc[0:0]
    winners = best_per_cell(trials, cell_columns)
    output = []
    for _, winner in winners.iterrows():
        in_cell = np.ones(len(tune), dtype=bool)
        repeat_mask = np.ones(len(repeat), dtype=bool)
        for column in cell_columns:
            in_cell &= (tune[column].astype(str) == str(winner[column])).to_numpy()
            repeat_mask &= (repeat[column].astype(str) == str(winner[column])).to_numpy()
        cell_trials = tune.loc[in_cell]
        seeds = pd.concat([repeat.loc[repeat_mask], cell_trials.loc[cell_trials["trial_id"] == winner["trial_id"]]])
        status_ok = (cell_trials["status"].astype(str) == COMPLETED).to_numpy() if "status" in cell_trials else True
        loss = pd.to_numeric(cell_trials["best_val_loss"], errors="coerce").to_numpy(dtype=float)
        loss = np.where(status_ok & np.isfinite(loss), loss, np.inf)
        is_winner = (cell_trials["trial_id"] == winner["trial_id"]).to_numpy()
        draws = rng.integers(0, len(cell_trials), size=(resamples, len(cell_trials)))
        chosen = draws[np.arange(resamples), np.argmin(loss[draws], axis=1)]
        for measure in measures:
            own = pd.to_numeric(cell_trials[measure], errors="coerce").to_numpy(dtype=float)
            seed_values = pd.to_numeric(seeds[measure], errors="coerce").dropna().to_numpy(dtype=float)
            if seed_values.size == 0:
                continue
            seed_means = seed_values[rng.integers(0, seed_values.size, size=(resamples, seed_values.size))].mean(axis=1)
            replicate = np.where(is_winner[chosen], seed_means, own[chosen])
            replicate = replicate[np.isfinite(replicate)]
            low, high = ((float(np.quantile(replicate, tail)), float(np.quantile(replicate, 1 - tail)))
                         if replicate.size >= 2 else (np.nan, np.nan))
            output.append({**{column: winner[column] for column in cell_columns}, "measure": measure,
                           "trial_id": winner["trial_id"], "mean": float(seed_values.mean()), "ci_low": low,
                           "ci_high": high, "seeds": int(seed_values.size),
                           "winner_share": float(np.mean(is_winner[chosen]))})
    return pd.DataFrame(output, columns=[*cell_columns, "measure", "trial_id", "mean", "ci_low", "ci_high", "seeds",
                                         "winner_share"])
