"""Everything a report shows, computed from the study tables alone (pure: no files, no drawing).

:func:`analyse` runs the pipeline: the trial frame (classification and
matched-progress measures), the slope table and its permutation tests, the two
statements with their measured error rates, Kendall tau, the tuned winners with
selection-aware intervals, the expected best-of-k curves, the summary
tables the report prints and the figures draw, and what the claims say about
each explanation of the depth question (:mod:`study.statistics.explanations`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd


from study.config import AnalysisConfig, Claim, claims_from_mapping, dataset_factor_levels, level_key, scientific_levels
from study.errors import BadInput
from study.statistics import summaries
from study.statistics.classification import Chance, chance_from_manifest
from study.statistics.kendall import granulated_kendall_tau
from study.statistics.selection import expected_best_of_k, winner_intervals
from study.statistics.trials import (CELL, measure_available, measure_definition, measure_units, nuisance_columns,
                                     settings_are_paired, trial_frame)
from study.statistics.claims import default_claims, scientific_factors
from study.statistics.effects import factor_effects, factor_profile, mean_interval
from study.statistics.explanations import (data_factors, data_profile, distance_factor, distance_profile,
                                           gradient_profile, has_values, model_sizes, receptive_field_profile,
                                           why_table)
from study.statistics.verdict import Verdict, build_statements, data_caveats, empty_slopes, slope_table

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
    claims: tuple[Claim, ...] = ()


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
        if not measure_available(trials, measure):
            continue
        definition = measure_definition(measure)
        units = measure_units(trials, measure)
        for (architecture, depth), group in units.groupby(CELL, sort=True):
            values = group["value"].to_numpy(dtype=float)
            low, high = mean_interval(values, binary=definition.binary, rng=rng, resamples=resamples, tail=tail)
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


def with_comparison(claims: tuple[Claim, ...], compare: tuple[str, str, str], levels: dict[str, tuple]) -> tuple[Claim, ...]:
    """The claims with their comparison replaced by ``compare`` = (factor, first, second): every claim that
    runs along another factor now compares those two levels of it (``--compare``)."""
    factor, first, second = compare
    if factor not in levels:
        allowed = ", ".join(repr(name) for name in levels) or "none"
        raise BadInput(f"--compare names {factor!r}, allowed: a scientific hyperparameter of the study: {allowed}",
                       source="command line", key="--compare")
    spelled = {level_key(value): value for value in levels[factor]}
    for value in (first, second):
        if level_key(value) not in spelled:
            raise BadInput(f"{value!r} is not a level of {factor} in this study; allowed: "
                           + ", ".join(repr(str(item)) for item in levels[factor]), source="command line",
                           key="--compare")
    if level_key(first) == level_key(second):
        raise BadInput(f"compare two different levels, got {first!r} twice", source="command line", key="--compare")
    changed = tuple(replace(claim, compare_factor=factor,
                                        compare_levels=(spelled[level_key(first)], spelled[level_key(second)]),
                                        at=tuple(item for item in claim.at if item[0] != factor),
                                        sentence=None)
                    for claim in claims if claim.factor != factor)
    if not changed:
        raise BadInput(f"every claim of this study runs along {factor} itself, so it cannot compare two of its "
                       "levels", source="command line", key="--compare")
    return changed


def study_claims(space: Mapping[str, Any], frame: pd.DataFrame, first: str, second: str,
                 compare: tuple[str, str, str] | None) -> tuple[tuple[Claim, ...], bool, str | None]:
    """(the claims to decide, whether the space declared them, why there are none)."""
    declared = claims_from_mapping(space)
    levels = scientific_levels(space) or {name: tuple(sorted(frame[name].dropna().unique()))
                                          for name in ("architecture", "depth") if name in frame.columns}
    if declared:
        return (with_comparison(declared, compare, levels) if compare else declared), True, None
    present = set(frame["architecture"].astype(str))
    if compare is None or compare[0] == "architecture":
        if first == second:
            return (), False, f"compare two different architectures, got {first!r} twice"
        if first not in present or second not in present:
            return (), False, (f"the verdict compares {first!r} with {second!r}, but the study has "
                               + ", ".join(repr(name) for name in sorted(present)) + " (use --compare FIRST SECOND)")
    if frame["depth"].nunique() < 2:
        return (), False, "the study has a single depth, so there is no depth slope to compare"
    claims = default_claims(frame["depth"].dropna().unique(), first, second)
    if compare is not None and compare[0] != "architecture":
        claims = with_comparison(claims, compare, levels)
    return claims, False, None


def analyse(epochs: pd.DataFrame, trials: pd.DataFrame | None, manifest: Mapping[str, Any], *, first: str = "lstm",
            second: str = "cnn", classes: pd.DataFrame | None = None, seed: int = 0,
            extra_problems: Sequence[str] = (), compare: tuple[str, str, str] | None = None,
            gradients: pd.DataFrame | None = None) -> Analysis:
    """The whole analysis of one study from its tables (``trials`` None: every epoch-table trial completed).

    The claims are the space's ``claims:`` section, else the two depth statements comparing ``first`` with
    ``second``; ``compare`` = (factor, first level, second level) replaces every claim's comparison.
    ``extra_problems``: data problems found while reading the tables (torn rows), listed first. ``gradients``:
    gradients.csv when the study recorded it (the gradient measures, the ``gradient_profile`` table).
    The ``why`` table groups the claims by the explanation they test; the depth study's default overfitting
    statement tests the overfitting explanation."""
    space = manifest.get("space") if isinstance(manifest.get("space"), Mapping) else {}
    space = dict(space)
    settings = AnalysisConfig.from_mapping(space.get("analysis"))
    chance = chance_levels(manifest, classes)
    frame, target = trial_frame(epochs, trials, chance=chance, settings=settings, gradients=gradients)
    nuisance = nuisance_columns(frame, space)
    paired = settings_are_paired(frame, nuisance)
    tuner = (space.get("tuner") or {}).get("name") if isinstance(space.get("tuner"), Mapping) else None
    if compare is not None and compare[0] == "architecture":
        first, second = compare[1], compare[2]
    claims, declared, reason = study_claims(space, frame, first, second, compare)
    if not declared:  # the default overfitting statement is the overfitting explanation, stated for the depth study
        claims = tuple(replace(claim, explanation="overfitting") if claim.label == "overfitting" else claim
                       for claim in claims)
    scientific = scientific_factors(space, frame)
    # A cell is every combination of the scientific factors (architecture and depth first): each has its own
    # tuned winner, as the runner's repeat phase does.
    cell = [*CELL, *(name for name in scientific if name not in CELL)]
    isolation = summaries.isolation_table(frame, space)
    boundaries = summaries.boundary_table(isolation, space)
    tables: dict[str, pd.DataFrame] = {
        "isolation": isolation,
        "medians": summaries.median_table(frame, space),
        "boundaries": boundaries,
        "problem_trials": summaries.problem_trials_table(frame, space),
        "trainability": summaries.trainability_table(frame, cell=cell),
        "classification": summaries.classification_counts(frame),
        "cell_summary": cell_summary(frame, seed=seed),
        "winners": winner_intervals(frame, cell, [m for m in WINNER_MEASURES if m in frame.columns], seed=seed),
        "best_of_k": expected_best_of_k(frame, cell),
        "kendall_tau": granulated_kendall_tau(frame, permutations=min(settings.permutations, 999), seed=seed),
        "thresholds": thresholds_table(settings, chance, target),
        "learning_curves": summaries.learning_curve_table(epochs, frame, cell),
        "gap_heatmaps": summaries.gap_heatmaps(frame, space),
        "nuisance_values": summaries.nuisance_value_table(frame, space),
        "nuisance_edges": summaries.search_edges(space),
        "model_sizes": model_sizes(frame, scientific),
    }
    if "gradient_ratio" in frame.columns:  # the study recorded gradients.csv
        tables["gradient_profile"] = gradient_profile(frame, scientific, seed=seed)
    measured = _why_profiles(tables, frame, space, scientific, seed=seed)
    if classes is not None:
        dataset = manifest.get("dataset") if isinstance(manifest.get("dataset"), Mapping) else {}
        names = dataset.get("class_names") if isinstance(dataset.get("class_names"), list) else None
        tables["per_class"] = summaries.per_class_table(isolation, classes, names)

    verdict = None
    if reason is None:
        slopes = slope_table(frame, claims, scientific, paired=paired, settings=settings, seed=seed)
        statements = build_statements(slopes, frame, claims, scientific, paired=paired, settings=settings, seed=seed)
        caveats = data_caveats(frame, claims, scientific, paired=paired, tuner=tuner, boundaries=boundaries,
                               target=target, minimum_units=settings.minimum_units)
        family = (f"Holm across {len(claims)} claims: the chance of any false decision in this study "
                  f"is at most alpha = {settings.alpha:g}" if len(claims) > 1
                  else f"one claim, tested at alpha = {settings.alpha:g}")
        compared = claims[0].compare_levels or ("all", "")
        verdict = Verdict(statements=statements, caveats=tuple(caveats),
                          held_fixed=tuple(summaries.held_fixed(frame, space)), first=str(compared[0]),
                          second=str(compared[1]), alpha=settings.alpha, slopes=slopes, family=family,
                          declared=declared)
        tables["slopes"] = slopes
        tables["claims"] = claims_table(statements)
        tables["factor_profile"] = factor_profile(frame, claims, scientific, seed=seed)
        tables["factor_effects"] = factor_effects(frame, claims, scientific, seed=seed)
        tables["calibration"] = pd.DataFrame([{
            "question": statement.question, "measure": statement.measure, "status": statement.status,
            "false_positive_rate": statement.false_positive_rate, "power": statement.power,
            "studies": settings.calibration_studies, "units_needed_per_cell": statement.units_needed}
            for statement in statements])
    else:
        tables["slopes"] = empty_slopes()
    tables["why"] = why_table(verdict.statements if verdict is not None else (), claims if verdict is not None else (),
                              space, measured)
    return Analysis(verdict=verdict, no_verdict_reason=reason, trials=frame, tables=tables,
                    data_problems=(*extra_problems, *_data_problems(epochs, trials, frame)), space=space,
                    manifest=dict(manifest), target_train_loss=target, chance=chance, settings=settings, paired=paired,
                    claims=claims)


def _why_profiles(tables: dict[str, pd.DataFrame], frame: pd.DataFrame, space: Mapping[str, Any],
                  scientific: Sequence[str], *, seed: int) -> dict[str, str]:
    """Add the evidence tables of explanations 3 and 2 that the study can give: ``distance_profile`` (a
    distance factor is scientific), ``receptive_field_profile`` (some tuning trial has a receptive field) and
    ``data_profile`` (one block per data factor that is scientific, its ``factor`` column naming it). Returns
    what was measured per explanation, for the why table."""
    factors = [name for name in dataset_factor_levels(space) if name in frame.columns and name in scientific]
    measured: dict[str, str] = {}
    distance = distance_factor(factors)
    if distance is not None:
        tables["distance_profile"] = distance_profile(frame, scientific, distance, seed=seed)
        measured["receptive_field"] = f"the study varies {distance}: see the accuracy per cell at every {distance}"
    if has_values(frame, ("receptive_field", "effective_receptive_field")):
        tables["receptive_field_profile"] = receptive_field_profile(frame, scientific, seed=seed)
    present = data_factors(factors)
    if present:
        blocks = [data_profile(frame, scientific, name, seed=seed) for name in present]
        filled = [block for block in blocks if not block.empty]
        profile = pd.concat(filled, ignore_index=True) if filled else blocks[0]
        # Several data factors: each block's cell has the other data factors as columns (its own is in level).
        first = [name for name in ("architecture", "depth", *scientific) if name in profile.columns]
        tables["data_profile"] = profile.reindex(columns=list(dict.fromkeys([*first, *profile.columns])))
        measured["overfitting"] = (f"the study varies {' and '.join(present)}: see the gap per cell at every level "
                                   f"of {'each' if len(present) > 1 else 'it'}")
    return measured


def claims_table(statements: Sequence[Any]) -> pd.DataFrame:
    """One row per claim: what it says, its status, the tested estimate with its interval, raw and Holm-adjusted
    p-values and the measured error rate."""
    rows = []
    for statement in statements:
        low, high = statement.estimate_interval
        rows.append({"claim": statement.question, "sentence": statement.claim, "factor": statement.factor,
                     "measure": statement.measure, "compared": statement.compared or "", "axis": statement.axis,
                     "strata": statement.strata, "status": statement.status, "estimate": statement.estimate,
                     "ci_low": low, "ci_high": high, "p_value": statement.p_value,
                     "adjusted_p_value": statement.adjusted_p_value,
                     "false_positive_rate": statement.false_positive_rate, "power": statement.power,
                     "units_needed_per_cell": statement.units_needed})
    return pd.DataFrame(rows)

