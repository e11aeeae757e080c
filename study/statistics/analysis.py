"""Everything a report shows, computed from the study tables alone (pure: no files, no drawing).

:func:`analyse` runs the pipeline: the trial frame (classification and
matched-progress measures), the slope table and its permutation tests, the two
statements with their measured error rates, Kendall tau, the tuned winners with
selection-aware intervals, the expected best-of-k curves, and the summary
tables the report prints and the figures draw.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from study.config import AnalysisConfig
from study.errors import BadInput
from study.statistics import summaries
from study.statistics.classification import Chance, chance_from_manifest
from study.statistics.kendall import granulated_kendall_tau
from study.statistics.selection import expected_best_of_k, winner_intervals
from study.statistics.trials import (CELL, measure_definition, measure_units, nuisance_columns,
                                     settings_are_paired, trial_frame)
from study.statistics.verdict import Verdict, build_statement, data_caveats, empty_slopes, slope_table

#: Measures whose per-cell means (with intervals) the report tabulates and draws.
SUMMARY_MEASURES = ("trainable_fraction", "gap_at_target", "gap_growth_after_target", "epochs_to_target",
                    "best_epoch", "overfit_onset", "gap_at_best", "best_train_loss")
#: Measures of each cell's tuned winner, with selection-aware intervals.
WINNER_MEASURES = ("gap_at_target", "gap_at_best", "best_epoch", "best_val_accuracy")


@dataclass(frozen=True)
class Analysis:
    """The verdict (None when the study cannot answer the question), the trial frame and every table."""

    verdict: Verdict | None
    no_verdict_reason: str | None
    trials: pd.DataFrame = field(repr=False)
    tables: dict[str, pd.DataFrame] = field(repr=False)
    data_problems: tuple[str, ...]
    space: dict = field(repr=False)
    manifest: dict = field(repr=False)
    target_train_loss: float
    chance: Chance
    settings: AnalysisConfig
    paired: bool


def chance_levels(manifest: Mapping[str, Any], classes: pd.DataFrame | None) -> Chance:
    """Chance levels from the manifest; from classes.csv's class names when the manifest has none."""
    try:
        return chance_from_manifest(manifest)
    except BadInput:
        if classes is not None and "class_name" in classes.columns and classes["class_name"].nunique() >= 2:
            count = int(classes["class_name"].nunique())
            return Chance(num_classes=count, loss=math.log(count))
        raise


def cell_summary(trials: pd.DataFrame, *, resamples: int = 2000, seed: int = 0,
                 confidence: float = 0.95) -> pd.DataFrame:
    """Per measure and cell: mean over the measure's units (tuning trials), a 95% interval and the count.

    Intervals: percentile bootstrap of the mean; for 0/1 units the Jeffreys
    interval of the share (never zero-width for a cell where all or none trained).
    """
    rng = np.random.default_rng(seed)
    tail = (1.0 - confidence) / 2.0
    rows = []
    for measure in SUMMARY_MEASURES:
        if measure not in ("trainable_fraction", "best_train_loss") and measure not in trials.columns:
            continue
        definition = measure_definition(measure)
        units = measure_units(trials, measure)
        for (architecture, depth), group in units.groupby(CELL, sort=True):
            values = group["value"].to_numpy(dtype=float)
            if definition.binary:
                from scipy import stats

                successes = values.sum()
                low, high = stats.beta.ppf([tail, 1 - tail], successes + 0.5, len(values) - successes + 0.5)
            elif len(values) >= 2:
                means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
                low, high = np.quantile(means, [tail, 1 - tail])
            else:
                low = high = math.nan
            rows.append({"measure": measure, "architecture": architecture, "depth": depth,
                         "mean": float(values.mean()), "ci_low": float(low), "ci_high": float(high),
                         "units": len(values)})
    return pd.DataFrame(rows, columns=["measure", *CELL, "mean", "ci_low", "ci_high", "units"])


def thresholds_table(settings: AnalysisConfig, chance: Chance, target: float) -> pd.DataFrame:
    """Every threshold the classification, the measures and the tests used, with its meaning."""
    meanings = {
        "trained_above_chance": "a trial trained when its best train balanced accuracy > 1/K + this",
        "onset_tolerance": "nats above the minimum validation loss that count as overfitting (class and onset)",
        "train_fall_fraction": "relative fall of the train loss after the best epoch needed to call a trial overfitting",
        "target_train_loss": "the common train-loss target of the matched-progress measures (auto: a quantile)",
        "target_quantile": "auto target: this quantile of the lowest train loss of the tuning trials that trained",
        "alpha": "level of every permutation test",
        "permutations": "permutations per test",
        "calibration_studies": "simulated null studies that measure the rule's error rate for this study",
        "minimum_units": "units per cell below which a cell is flagged",
    }
    rows = [{"threshold": item.name, "value": str(getattr(settings, item.name)), "meaning": meanings[item.name]}
            for item in fields(settings)]
    rows += [{"threshold": "chance balanced accuracy", "value": f"{chance.balanced_accuracy:.4g}",
              "meaning": f"1/K for K = {chance.num_classes} classes"},
             {"threshold": "chance loss", "value": f"{chance.loss:.4g}",
              "meaning": "cross-entropy of predicting the training class frequencies"},
             {"threshold": "target train loss used", "value": f"{target:.4g}" if math.isfinite(target) else "n/a",
              "meaning": "the train loss every trial is read at for the matched-progress measures"}]
    return pd.DataFrame(rows, columns=["threshold", "value", "meaning"])


def _data_problems(epochs: pd.DataFrame, trials: pd.DataFrame | None, frame: pd.DataFrame) -> list[str]:
    problems = []
    if trials is not None:
        listed = set(zip(trials["trial_id"].astype(str), trials.get("phase", pd.Series("tune", index=trials.index))))
        in_epochs = set(zip(epochs["trial_id"].astype(str), epochs.get("phase", pd.Series("tune", index=epochs.index))))
        unlisted = sorted(in_epochs - listed)
        if unlisted:
            problems.append(f"{len(unlisted)} trial(s) have epoch rows but no trials.csv row (still running or cut "
                            f"off), left out: " + ", ".join(f"{phase} {trial}" for trial, phase in unlisted[:10]))
        no_curve = frame.loc[(frame["status"].astype(str) != "failed") & frame["epochs_run"].isna()]
        if len(no_curve):
            problems.append(f"{len(no_curve)} trial(s) in trials.csv have no epoch rows, counted as crashed: "
                            + ", ".join(no_curve["trial_id"].astype(str).head(10)))
    diverged = frame.loc[frame["classification"] == "diverged"]
    if len(diverged):
        problems.append(f"{len(diverged)} trial(s) diverged (a NaN or infinite loss): "
                        + ", ".join(f"{row.phase} {row.trial_id} at epoch "
                                    f"{'?' if pd.isna(row.diverged_epoch) else int(row.diverged_epoch)}"
                                    for row in diverged.head(10).itertuples()))
    return problems


def analyse(epochs: pd.DataFrame, trials: pd.DataFrame | None, manifest: Mapping[str, Any], *, first: str = "lstm",
            second: str = "cnn", classes: pd.DataFrame | None = None, seed: int = 0,
            extra_problems: Sequence[str] = ()) -> Analysis:
    """The whole analysis of one study from its tables (``trials`` None: every epoch-table trial completed).

    ``extra_problems``: data problems found while reading the tables (torn rows), listed first."""
    space = manifest.get("space") if isinstance(manifest.get("space"), Mapping) else {}
    space = dict(space)
    settings = AnalysisConfig.from_mapping(space.get("analysis"))
    chance = chance_levels(manifest, classes)
    frame, target = trial_frame(epochs, trials, chance=chance, settings=settings)
    nuisance = nuisance_columns(frame, space)
    paired = settings_are_paired(frame, nuisance)
    tuner = (space.get("tuner") or {}).get("name") if isinstance(space.get("tuner"), Mapping) else None

    isolation = summaries.isolation_table(frame, space)
    boundaries = summaries.boundary_table(isolation, space)
    tables: dict[str, pd.DataFrame] = {
        "isolation": isolation,
        "medians": summaries.median_table(frame, space),
        "boundaries": boundaries,
        "problem_trials": summaries.problem_trials_table(frame, space),
        "trainability": summaries.trainability_table(frame),
        "classification": summaries.classification_counts(frame),
        "cell_summary": cell_summary(frame, seed=seed),
        "winners": winner_intervals(frame, CELL, [m for m in WINNER_MEASURES if m in frame.columns], seed=seed),
        "best_of_k": expected_best_of_k(frame, CELL),
        "kendall_tau": granulated_kendall_tau(frame, permutations=min(settings.permutations, 999), seed=seed),
        "thresholds": thresholds_table(settings, chance, target),
        "learning_curves": summaries.learning_curve_table(epochs, frame),
        "gap_heatmaps": summaries.gap_heatmaps(frame, space),
        "nuisance_values": summaries.nuisance_value_table(frame, space),
        "nuisance_edges": summaries.search_edges(space),
    }
    if classes is not None:
        dataset = manifest.get("dataset") if isinstance(manifest.get("dataset"), Mapping) else {}
        names = dataset.get("class_names") if isinstance(dataset.get("class_names"), list) else None
        tables["per_class"] = summaries.per_class_table(isolation, classes, names)

    present = set(frame["architecture"].astype(str))
    reason = None
    if first == second:
        reason = f"compare two different architectures, got {first!r} twice"
    elif first not in present or second not in present:
        reason = (f"the verdict compares {first!r} with {second!r}, but the study has "
                  + ", ".join(repr(name) for name in sorted(present)) + " (use --compare FIRST SECOND)")
    elif frame["depth"].nunique() < 2:
        reason = "the study has a single depth, so there is no depth slope to compare"
    verdict = None
    if reason is None:
        slopes = slope_table(frame, first=first, second=second, paired=paired, settings=settings, seed=seed)
        statements = tuple(build_statement(slopes, frame, question, first=first, second=second, paired=paired,
                                           settings=settings, seed=seed)
                           for question in ("trainability", "overfitting"))
        caveats = data_caveats(frame, first=first, second=second, paired=paired, tuner=tuner, boundaries=boundaries,
                               space=space, target=target, minimum_units=settings.minimum_units)
        verdict = Verdict(statements=statements, caveats=tuple(caveats),
                          held_fixed=tuple(summaries.held_fixed(frame, space)), first=first, second=second,
                          alpha=settings.alpha, slopes=slopes)
        tables["slopes"] = slopes
        tables["calibration"] = pd.DataFrame([{
            "question": statement.question, "measure": statement.measure, "status": statement.status,
            "false_positive_rate": statement.false_positive_rate, "power": statement.power,
            "studies": settings.calibration_studies, "units_needed_per_cell": statement.units_needed}
            for statement in statements])
    else:
        tables["slopes"] = empty_slopes()
    return Analysis(verdict=verdict, no_verdict_reason=reason, trials=frame, tables=tables,
                    data_problems=(*extra_problems, *_data_problems(epochs, trials, frame)), space=space,
                    manifest=dict(manifest), target_train_loss=target, chance=chance, settings=settings, paired=paired)

