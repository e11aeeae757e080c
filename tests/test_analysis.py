"""Tests of study.analysis on hand-made tables whose answers are known."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from study import analysis
from study.errors import BadInput
from study.measures import measures_table

LN5 = math.log(5)
EPOCHS = 20


def losses(kind: str, best: int, epochs: int = EPOCHS) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation loss curves with a known shape.

    'overfit': train falls towards 0, validation falls to its minimum at ``best`` and rises after;
    'fit': both keep falling (validation minimum at the last epoch);
    'fail': train loss stays at chance (ln 5) and validation has its minimum at ``best``.
    """
    epoch = np.arange(1, epochs + 1, dtype=float)
    if kind == "fail":
        return LN5 + 0.01 * np.cos(epoch), LN5 + 0.02 + 0.001 * np.abs(epoch - best)
    train = 1.5 * np.exp(-0.25 * epoch) + 0.02
    if kind == "overfit":
        return train, np.where(epoch < best, 0.6 + 0.1 * (best - epoch), 0.6 + 0.06 * (epoch - best))
    if kind == "fit":
        return train, 0.6 + 0.05 * (epochs - epoch)
    raise ValueError(kind)


class Study:
    """Builds an epochs table one trial at a time."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.count = 0

    def add(self, phase: str, architecture: str, depth: int, kind: str, best: int, *, seed: int = 0,
            dropout: float = 0.2, learning_rate: float = 1e-3, weight_decay: float = 1e-4) -> str:
        trial_id = f"{phase}-{self.count:03d}"
        self.count += 1
        train, val = losses(kind, best)
        for epoch, (train_loss, val_loss) in enumerate(zip(train, val), start=1):
            self.rows.append({
                "trial_id": trial_id, "phase": phase, "architecture": architecture, "depth": depth, "width": 32,
                "kernel_size": 7, "dropout": dropout, "recurrent_dropout": 0.0, "weight_decay": weight_decay,
                "weight_decay_type": "l2", "learning_rate": learning_rate, "epochs": EPOCHS, "batch_size": 64,
                "seed": seed, "epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                "val_accuracy": 0.5,
            })
        return trial_id

    def epochs(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)


SPACE = {"hyperparameters": {
    "architecture": {"role": "scientific", "values": ["lstm", "cnn"]},
    "depth": {"role": "scientific", "values": [1, 2, 4, 8]},
    "dropout": {"role": "nuisance", "min": 0.0, "max": 0.5},
    "learning_rate": {"role": "nuisance", "min": 1e-4, "max": 1e-2, "log": True},
    "weight_decay": {"role": "nuisance", "min": 1e-6, "max": 1e-2, "log": True},
    "width": {"role": "fixed", "value": 32},
}}


def units_frame(values: dict[tuple[str, int], list[float]]) -> pd.DataFrame:
    return pd.DataFrame([{"architecture": architecture, "depth": depth, "value": value}
                         for (architecture, depth), cell in values.items() for value in cell])


# ---------------------------------------------------------------- classification


def test_classify_trials_labels_failed_overfitting_and_fitting():
    study = Study()
    failed = study.add("tune", "lstm", 4, "fail", 4)
    overfit = study.add("tune", "lstm", 1, "overfit", 8)
    fitting = study.add("tune", "cnn", 1, "fit", EPOCHS)
    table = analysis.classify_trials(study.epochs(), num_classes=5).set_index("trial_id")
    assert table.loc[failed, "classification"] == analysis.FAILED_TO_TRAIN
    assert table.loc[overfit, "classification"] == analysis.OVERFITTING
    assert table.loc[fitting, "classification"] == analysis.FITTING
    assert table["chance_loss"].eq(LN5).all()
    assert table.loc[overfit, "train_loss_at_best"] == pytest.approx(1.5 * math.exp(-0.25 * 8) + 0.02)


def test_diverged_trial_without_finite_losses_failed_to_train():
    study = Study()
    trial = study.add("tune", "lstm", 2, "overfit", 8)
    epochs = study.epochs()
    epochs["train_loss"] = np.inf
    epochs["val_loss"] = np.nan
    table = analysis.classify_trials(epochs, num_classes=5)
    assert table.set_index("trial_id").loc[trial, "classification"] == analysis.FAILED_TO_TRAIN


def test_failure_threshold_uses_the_chance_loss_of_the_class_prior():
    # A model that only learned the class prior of a 90/5/5 split sits at its entropy, 0.394 nats,
    # which is below half of ln(3) = 1.099 but not below half of the prior's entropy.
    prior_entropy = analysis.constant_prediction_loss([90, 5, 5])
    assert prior_entropy == pytest.approx(-(0.9 * math.log(0.9) + 2 * 0.05 * math.log(0.05)))
    study = Study()
    trial = study.add("tune", "lstm", 4, "fit", EPOCHS)
    epochs = study.epochs()
    epochs["train_loss"] = prior_entropy
    by_default = analysis.classify_trials(epochs, num_classes=3).set_index("trial_id")
    with_prior = analysis.classify_trials(epochs, num_classes=3, chance_loss=prior_entropy).set_index("trial_id")
    assert by_default.loc[trial, "classification"] != analysis.FAILED_TO_TRAIN
    assert with_prior.loc[trial, "classification"] == analysis.FAILED_TO_TRAIN


def test_constant_prediction_loss_and_manifest_chance():
    assert analysis.constant_prediction_loss([10, 10, 10, 10, 10]) == pytest.approx(LN5)
    manifest = {"dataset": {"class_names": ["a", "b"], "class_counts": {"train": {"a": 30, "b": 10}}}}
    num_classes, chance = analysis.chance_loss_from_manifest(manifest)
    assert num_classes == 2
    assert chance == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    assert analysis.chance_loss_from_manifest({"dataset": {"class_names": ["a", "b", "c"]}}) == (3, None)
    with pytest.raises(ValueError):
        analysis.constant_prediction_loss([5])


def test_thresholds_validate_and_list_themselves():
    with pytest.raises(ValueError, match="train_drop_fraction"):
        analysis.Thresholds(train_drop_fraction=1.5)
    with pytest.raises(ValueError, match="minimum_seeds"):
        analysis.Thresholds(minimum_seeds=0)
    table = analysis.Thresholds(validation_rise=0.1).table()
    assert table["threshold"].tolist() == ["train_drop_fraction", "validation_rise", "train_fall_fraction",
                                           "minimum_seeds"]
    assert table.set_index("threshold").loc["validation_rise", "value"] == 0.1
    with pytest.raises(ValueError, match="num_classes"):
        analysis.classify_trials(Study().epochs(), num_classes=1)


# ---------------------------------------------------------------- slopes


def test_slope_difference_finds_best_epoch_falling_two_epochs_per_doubling():
    rng = np.random.default_rng(3)
    values = {}
    for depth in (1, 2, 4, 8):
        values[("lstm", depth)] = list(20 - 2 * math.log2(depth) + rng.normal(0, 0.05, 3))
        values[("cnn", depth)] = list(20 + rng.normal(0, 0.05, 3))
    result = analysis.compare_depth_slopes(units_frame(values), resamples=2000, seed=0)
    assert result["slope_first"] == pytest.approx(-2, abs=0.05)
    assert result["slope_second"] == pytest.approx(0, abs=0.05)
    assert result["difference"] == pytest.approx(-2, abs=0.05)
    assert -2.15 < result["ci_low"] < result["difference"] < result["ci_high"] < -1.85
    assert result["p_value"] <= 2 / 2001
    assert analysis.status_from_interval(result["ci_low"], result["ci_high"], -1) == analysis.SUPPORTED
    assert analysis.status_from_interval(result["ci_low"], result["ci_high"], +1) == analysis.CONTRADICTED
    assert (result["units_first"], result["depths_first"]) == (12, 4)


def test_symmetric_architectures_are_inconclusive():
    values = {}
    for depth in (1, 2, 4, 8):
        cell = [15 - math.log2(depth) + offset for offset in (-1.0, 0.0, 1.0)]
        values[("lstm", depth)] = cell
        values[("cnn", depth)] = cell
    result = analysis.compare_depth_slopes(units_frame(values), resamples=1000, seed=1)
    assert result["difference"] == 0.0
    assert result["ci_low"] < 0 < result["ci_high"]
    assert result["p_value"] == 1.0
    assert analysis.status_from_interval(result["ci_low"], result["ci_high"], -1) == analysis.INCONCLUSIVE


def test_bootstrap_resamples_within_cells_and_is_reproducible():
    # Seeds agree within every cell, so resampling within cells cannot move any slope:
    # a bootstrap that pooled the cells would give a wide interval here.
    values = {(architecture, depth): [slope * math.log2(depth) + 3] * 3
              for architecture, slope in (("lstm", -1.5), ("cnn", 0.5)) for depth in (1, 2, 4)}
    first = analysis.compare_depth_slopes(units_frame(values), resamples=500, seed=7)
    assert first["difference"] == pytest.approx(-2.0)
    assert first["ci_low"] == pytest.approx(-2.0) and first["ci_high"] == pytest.approx(-2.0)
    noisy = {key: [value + offset for value, offset in zip(cell, (-0.5, 0.0, 0.5))] for key, cell in values.items()}
    again = analysis.compare_depth_slopes(units_frame(noisy), resamples=500, seed=7)
    assert again == analysis.compare_depth_slopes(units_frame(noisy), resamples=500, seed=7)
    other_seed = analysis.compare_depth_slopes(units_frame(noisy), resamples=500, seed=8)
    assert other_seed["difference"] == again["difference"]
    assert other_seed["ci_low"] != again["ci_low"]


def test_an_architecture_with_one_depth_has_no_slope():
    values = {("lstm", 1): [1.0, 2.0], ("cnn", 1): [1.0], ("cnn", 2): [2.0]}
    result = analysis.compare_depth_slopes(units_frame(values), resamples=200)
    assert math.isnan(result["slope_first"]) and math.isnan(result["difference"])
    assert math.isnan(result["p_value"])
    assert analysis.status_from_interval(result["ci_low"], result["ci_high"], -1) == analysis.INCONCLUSIVE
    with pytest.raises(ValueError):
        analysis.compare_depth_slopes(units_frame(values), first="cnn", second="cnn")
    with pytest.raises(ValueError, match="resamples"):
        analysis.compare_depth_slopes(units_frame(values), resamples=10)


def test_increasing_best_epoch_contradicts_overfitting_faster():
    values = {}
    for depth in (1, 2, 4):
        values[("lstm", depth)] = [10 + 3 * math.log2(depth) + offset for offset in (-0.2, 0.0, 0.2)]
        values[("cnn", depth)] = [10 + offset for offset in (-0.2, 0.0, 0.2)]
    result = analysis.compare_depth_slopes(units_frame(values), resamples=1000)
    assert result["difference"] == pytest.approx(3.0)
    assert analysis.status_from_interval(result["ci_low"], result["ci_high"], -1) == analysis.CONTRADICTED


# ---------------------------------------------------------------- whole verdicts


def depth_study() -> Study:
    """LSTM best epoch 14 - 2 log2(depth) +-1 over seeds, CNN 12 +-1; deep LSTMs often fail in tuning."""
    study = Study()
    for architecture in ("lstm", "cnn"):
        for depth in (1, 2, 4, 8):
            for seed, offset in enumerate((-1, 0, 1)):
                best = (14 - 2 * math.log2(depth) if architecture == "lstm" else 12) + offset
                study.add("repeat", architecture, depth, "overfit", int(best), seed=seed)
            for setting, dropout in enumerate((0.1, 0.2, 0.3, 0.4)):
                fails = architecture == "lstm" and depth >= 4 and setting >= 2
                study.add("tune", architecture, depth, "fail" if fails else "overfit", 10, dropout=dropout)
    return study


def test_verdict_supports_both_statements_on_a_known_study():
    epochs = depth_study().epochs()
    result = analysis.verdict(epochs, measures_table(epochs), num_classes=5, space=SPACE, resamples=1000)
    assert result.overfitting.measure == "best_epoch"
    assert result.overfitting.status == analysis.SUPPORTED
    assert result.overfitting.estimate == pytest.approx(-2.0)
    assert result.overfitting.ci_high < 0
    assert result.trainability.measure == "trainable_fraction"
    assert result.trainability.status == analysis.SUPPORTED
    fraction = result.slopes.set_index("measure").loc["trainable_fraction"]
    # LSTM: 4/4, 4/4, 2/4, 2/4 trained at depths 1, 2, 4, 8 -> OLS slope -0.2 per doubling; CNN flat.
    assert fraction["slope_first"] == pytest.approx(-0.2)
    assert fraction["slope_second"] == 0.0
    assert "deeper LSTMs overfit faster than deeper CNNs" == result.overfitting.claim
    assert "gap_growth" in result.overfitting.explanation  # the other measures are shown
    assert any("failed to train" in caveat and "lstm depth 4: 2 of 4" in caveat for caveat in result.caveats)
    assert not any("edge" in caveat for caveat in result.caveats)
    assert "Fixed: width=32." in result.held_fixed


def test_a_trial_that_never_trained_does_not_count_as_overfitting_fast():
    # The GPU reference case: a deep LSTM whose best validation epoch is early because it never trained.
    study = Study()
    failed = []
    for architecture in ("lstm", "cnn"):
        for depth in (1, 2, 4):
            for seed, offset in enumerate((-1, 0, 1)):
                study.add("repeat", architecture, depth, "overfit", 10 + offset, seed=seed)
            study.add("tune", architecture, depth, "overfit", 10)
    failed.append(study.add("repeat", "lstm", 4, "fail", 1, seed=3))
    failed.append(study.add("repeat", "lstm", 4, "fail", 2, seed=4))
    epochs = study.epochs()
    measures = measures_table(epochs)
    trials = analysis.trial_frame(epochs, measures, num_classes=5)
    assert set(trials.loc[~trials["trained"], "trial_id"]) == set(failed)
    units = analysis.measure_units(trials, "best_epoch")
    assert len(units.loc[(units["architecture"] == "lstm") & (units["depth"] == 4)]) == 3
    # Counting the failed seeds would make deep LSTMs look like they overfit much sooner.
    repeat = trials.loc[trials["phase"] == "repeat"]
    naive = analysis.compare_depth_slopes(repeat.assign(value=repeat["best_epoch"])[["architecture", "depth", "value"]],
                                          resamples=500)
    assert naive["difference"] < -1.0
    result = analysis.verdict_from_trials(trials, resamples=1000)
    assert result.overfitting.estimate == pytest.approx(0.0, abs=1e-9)
    assert result.overfitting.status == analysis.INCONCLUSIVE
    assert any("lstm depth 4: 2 of 5" in caveat and "left out of the overfitting measures" in caveat
               for caveat in result.caveats)
    best_train = result.slopes.set_index("measure").loc["best_train_loss"]
    assert best_train["difference"] > 0  # failed seeds count against trainability instead


def test_caveats_name_boundaries_few_seeds_still_improving_and_crashes():
    study = Study()
    for architecture in ("lstm", "cnn"):
        for depth in (1, 2):
            seeds = 2 if (architecture, depth) == ("cnn", 2) else 3
            kind = "fit" if (architecture, depth) == ("lstm", 2) else "overfit"
            for seed in range(seeds):
                study.add("repeat", architecture, depth, kind, 10, seed=seed, learning_rate=1e-2)
            study.add("tune", architecture, depth, "overfit", 10, learning_rate=1e-2)
    epochs = study.epochs()
    status = pd.DataFrame({"trial_id": ["tune-999"], "phase": ["tune"], "status": ["failed"]})
    trials = analysis.trial_frame(epochs, measures_table(epochs), num_classes=5)
    caveats = analysis.data_caveats(trials, space=SPACE, trial_status=status)
    text = "\n".join(caveats)
    assert "lstm depth 1: best learning_rate = 0.01 lies on the upper edge" in text
    assert "Fewer than 3 trained seeds in: cnn depth 2 (2)" in text
    assert "still falling at the last epoch" in text and "lstm depth 2 (3 seed(s))" in text
    assert "1 tune" in text and "crashed" in text
    # A boundary frame from the report is used as given: only rows on a boundary count.
    boundary = pd.DataFrame({"architecture": ["cnn", "cnn"], "depth": [1, 2], "hyperparameter": ["dropout", "dropout"],
                             "value": [0.0, 0.2], "edge": ["lower", ""], "on_boundary": [True, False]})
    given = "\n".join(analysis.data_caveats(trials, boundary=boundary))
    assert "cnn depth 1: best dropout = 0.0 lies on the lower edge" in given
    assert "cnn depth 2: best dropout" not in given and "learning_rate" not in given


def test_unknown_architecture_is_bad_input():
    epochs = depth_study().epochs()
    with pytest.raises(BadInput, match="'gru'"):
        analysis.verdict(epochs, measures_table(epochs), num_classes=5, first="gru", resamples=200)


# ---------------------------------------------------------------- per-cell tables


def test_trainability_table_counts_settings_that_train():
    trials = analysis.trial_frame(depth_study().epochs(), num_classes=5)
    table = analysis.trainability_table(trials).set_index(["architecture", "depth"])
    assert table.loc[("lstm", 4), "settings"] == 4
    assert table.loc[("lstm", 4), "trained"] == 2
    assert table.loc[("lstm", 4), "trainable_fraction"] == 0.5
    assert table.loc[("cnn", 8), "trainable_fraction"] == 1.0
    assert (table["fraction_low"] <= table["trainable_fraction"]).all()
    assert (table["trainable_fraction"] <= table["fraction_high"]).all()
    assert table.loc[("lstm", 4), "fraction_low"] > 0  # Wilson interval, not a degenerate one
    assert table.loc[("lstm", 1), "best_train_loss"] == pytest.approx(1.5 * math.exp(-0.25 * EPOCHS) + 0.02)


def kendall_frame(rows: list[tuple[str, int, float, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"trial_id": f"t{index}", "phase": "tune", "architecture": architecture, "depth": depth,
                          "dropout": dropout, "weight_decay": 1e-4, "gap_at_best": gap, "trained": True}
                         for index, (architecture, depth, dropout, gap) in enumerate(rows)])


def test_granulated_kendall_tau_is_one_for_monotone_groups():
    rows = []
    for dropout in (0.1, 0.3):
        for depth, gap in ((1, 0.1), (2, 0.2), (4, 0.4)):
            rows.append(("lstm", depth, dropout, gap))
            rows.append(("cnn", depth, dropout, 0.5 - gap))
    rows.append(("lstm", 8, 0.1 + 1e-15, 0.9))  # the same dropout after a CSV round trip
    rows.append(("lstm", 2, 0.45, 0.2))         # alone in its group: no depth varies
    table = analysis.granulated_kendall_tau(kendall_frame(rows)).set_index("architecture")
    assert table.loc["lstm", "kendall_tau"] == 1.0
    assert table.loc["lstm", "groups"] == 2
    assert table.loc["cnn", "kendall_tau"] == -1.0
    assert table.loc["all", "kendall_tau"] == 0.0 and table.loc["all", "groups"] == 4


def test_granulated_kendall_tau_is_nan_without_groups():
    rows = [("lstm", 1, 0.1, 0.1), ("lstm", 2, 0.2, 0.3)]
    table = analysis.granulated_kendall_tau(kendall_frame(rows)).set_index("architecture")
    assert math.isnan(table.loc["lstm", "kendall_tau"])
    assert table.loc["lstm", "groups"] == 0


def test_gap_heatmap_bins_follow_the_searched_range():
    frame = pd.DataFrame({
        "trial_id": [f"t{index}" for index in range(5)], "phase": "tune", "architecture": "cnn",
        "depth": [1, 1, 1, 2, 2], "dropout": [0.0, 0.1, 0.3, 0.5, 0.49], "weight_decay": [0.0, 1e-6, 1e-5, 1e-3, 1e-2],
        "gap_at_best": [0.1, 0.3, 0.5, 0.7, 0.9], "trained": True,
    })
    dropout = analysis.gap_heatmap_table(frame, "dropout", space=SPACE)
    by_bin = dropout.set_index(["depth", "bin"])["mean"]
    assert by_bin[(1, "0-0.125")] == pytest.approx(0.2)      # 0.0 and 0.1 share the first bin
    assert by_bin[(1, "0.25-0.375")] == pytest.approx(0.5)
    assert by_bin[(2, "0.375-0.5")] == pytest.approx(0.8)    # the top edge belongs to the last bin
    decay = analysis.gap_heatmap_table(frame, "weight_decay", space=SPACE)
    assert decay.loc[decay["bin"] == "0", "mean"].tolist() == [0.1]  # zero decay gets its own bin
    assert decay.loc[decay["bin"] == "0", "bin_order"].tolist() == [-1]
    assert set(decay["bin"]) == {"0", "1e-06-1e-05", "1e-05-0.0001", "0.001-0.01"}


def test_search_edges_are_five_percent_inside_each_edge():
    edges = analysis.search_edges(SPACE).set_index("hyperparameter")
    assert edges.loc["dropout", "low_edge"] == pytest.approx(0.025)
    assert edges.loc["dropout", "high_edge"] == pytest.approx(0.475)
    assert edges.loc["learning_rate", "low_edge"] == pytest.approx(1e-4 * 100 ** 0.05)
    assert bool(edges.loc["learning_rate", "log"])
    assert "width" not in edges.index


def test_learning_curves_band_is_the_range_over_seeds():
    study = Study()
    for seed, best in enumerate((8, 10, 12)):
        study.add("repeat", "lstm", 2, "overfit", best, seed=seed)
    study.add("tune", "lstm", 2, "overfit", 5)  # a tuning trial is not the retrained setting
    epochs = study.epochs()
    trials = analysis.trial_frame(epochs, num_classes=5)
    curves = analysis.learning_curve_table(epochs, trials)
    at_ten = curves.loc[(curves["split"] == "validation") & (curves["epoch"] == 10)].iloc[0]
    assert at_ten["seeds"] == 3
    assert at_ten["low"] == pytest.approx(0.6)           # the seed whose minimum is at epoch 10
    assert at_ten["high"] == pytest.approx(0.6 + 0.2)    # best 12: two epochs before its minimum
    assert at_ten["mean"] == pytest.approx((0.72 + 0.6 + 0.8) / 3)


def test_best_settings_prefer_the_retrained_setting():
    study = Study()
    study.add("tune", "lstm", 1, "overfit", 10, dropout=0.1)
    study.add("repeat", "lstm", 1, "overfit", 10, dropout=0.3)
    study.add("tune", "cnn", 1, "overfit", 10, dropout=0.4)
    study.add("tune", "cnn", 1, "fail", 10, dropout=0.0)
    trials = analysis.trial_frame(study.epochs(), num_classes=5)
    chosen = analysis.best_settings(trials).set_index("architecture")
    assert chosen.loc["lstm", "dropout"] == 0.3 and chosen.loc["lstm", "source"] == "repeat"
    assert chosen.loc["cnn", "dropout"] == 0.4 and chosen.loc["cnn", "source"] == "tune"


def test_analyse_returns_every_table_and_figure_frame():
    epochs = depth_study().epochs()
    result = analysis.analyse(epochs, measures_table(epochs), num_classes=5, space=SPACE, resamples=300)
    assert set(result.tables) == {"slopes", "trainability", "kendall_tau", "classification", "thresholds"}
    frames = result.figure_frames
    assert frames["chance_loss"] == pytest.approx(LN5)
    assert frames["train_threshold"] == pytest.approx(LN5 / 2)
    summary = frames["cell_summary"].set_index(["measure", "architecture", "depth"])
    assert summary.loc[("best_epoch", "lstm", 4), "mean"] == pytest.approx(10.0)
    assert summary.loc[("best_epoch", "lstm", 4), "ci_low"] < 10 < summary.loc[("best_epoch", "lstm", 4), "ci_high"]
    values = frames["nuisance_values"]
    assert values.groupby(["hyperparameter", "architecture", "depth"])["best_in_cell"].sum().eq(1).all()


def test_measures_must_cover_every_trial():
    epochs = depth_study().epochs()
    tune_only = measures_table(epochs.loc[epochs["phase"] == "tune"])
    with pytest.raises(ValueError, match="every phase"):
        analysis.trial_frame(epochs, tune_only, num_classes=5)
