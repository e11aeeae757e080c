"""Granulated Kendall tau between depth and a measure (Jiang et al. 2019).

Trials are grouped so that every other hyperparameter is equal within a group
and only depth varies. With paired nuisance draws (every cell gets the same
sequence of settings) each (architecture, setting) is such a group, so the tau
is computable on real tuner output; with independent draws per cell (Bayesian
search) no group exists and the tau is NaN, which the report says.

Within a group the tau-b of depth against the measure is taken; the granulated
tau is its mean over groups. Its p-value permutes depth labels within every
group (exact under the null that depth does not change the measure within a
setting).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from study.statistics.trials import tuning_units
from study.tables import HYPERPARAMETER_COLUMNS


def _tau_b(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall tau-b of each row of ``x`` (permutations x m) against ``y`` (m,)."""
    upper = np.triu_indices(len(y), k=1)
    sign_y = np.sign(y[:, None] - y[None, :])[upper]
    sign_x = np.sign(x[:, :, None] - x[:, None, :])[:, upper[0], upper[1]]
    pairs_x = np.count_nonzero(sign_x[0])
    pairs_y = np.count_nonzero(sign_y)
    denominator = math.sqrt(pairs_x * pairs_y)
    if denominator == 0:
        return np.full(x.shape[0], np.nan)
    return (sign_x * sign_y[None, :]).sum(axis=1) / denominator


def granulated_kendall_tau(trials: pd.DataFrame, *, measure: str = "gap_at_target", factor: str = "depth",
                           trained_only: bool = True, permutations: int = 999, seed: int = 0) -> pd.DataFrame:
    """One row per architecture and one for 'all': kendall_tau (mean over groups), groups, trials, p_value."""
    rng = np.random.default_rng(seed)
    rows = tuning_units(trials)
    if trained_only:
        rows = rows.loc[rows["trained"]]
    if measure not in rows.columns:
        return pd.DataFrame(columns=["architecture", "kendall_tau", "groups", "trials", "p_value"])
    values = pd.to_numeric(rows[measure], errors="coerce").astype(float)
    rows = rows.assign(_value=values.where(np.isfinite(values))).dropna(subset=["_value"])
    others = [column for column in HYPERPARAMETER_COLUMNS if column in rows.columns and column != factor]
    keyed = rows[others].copy()
    for column in others:
        numeric = pd.to_numeric(keyed[column], errors="coerce")
        keyed[column] = numeric.map(lambda value: f"{value:.10g}") if numeric.notna().all() \
            else keyed[column].astype(str)
    per_architecture: dict[str, list[tuple[float, np.ndarray]]] = {}
    counts: dict[str, int] = {}
    if len(rows):
        for _, group in rows.groupby([keyed[column] for column in others], sort=True, dropna=False):
            architecture = str(group["architecture"].iloc[0])
            counts[architecture] = counts.get(architecture, 0) + len(group)
            x = group[factor].to_numpy(dtype=float)
            y = group["_value"].to_numpy(dtype=float)
            if np.unique(x).size < 2 or np.unique(y).size < 2:
                continue
            permuted = np.vstack([x[None, :], rng.permuted(np.tile(x, (permutations, 1)), axis=1)])
            taus = _tau_b(permuted, y)
            if math.isfinite(taus[0]):
                per_architecture.setdefault(architecture, []).append((float(taus[0]), taus))
    table = []

    def summarise(label: str, groups: list[tuple[float, np.ndarray]], units: int) -> dict:
        if not groups:
            return {"architecture": label, "kendall_tau": math.nan, "groups": 0, "trials": units, "p_value": math.nan}
        stacked = np.vstack([taus for _, taus in groups]).mean(axis=0)
        observed = stacked[0]
        extreme = np.abs(stacked[1:]) >= abs(observed) - 1e-12
        return {"architecture": label, "kendall_tau": float(observed), "groups": len(groups), "trials": units,
                "p_value": float((1 + extreme.sum()) / (1 + permutations))}

    for architecture in sorted(set(rows["architecture"].astype(str))):
        table.append(summarise(architecture, per_architecture.get(architecture, []), counts.get(architecture, 0)))
    table.append(summarise("all", [item for items in per_architecture.values() for item in items], len(rows)))
    return pd.DataFrame(table, columns=["architecture", "kendall_tau", "groups", "trials", "p_value"])
