"""The decision rule's error rate and power on simulated studies, and the pure statistics on hand-made tables."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from study.config import AnalysisConfig
from study.statistics.classification import (CRASHED, DIVERGED, FAILED_TO_TRAIN, FITTING, OVERFITTING, Chance,
                                             classify_trials)
from study.statistics.inference import compare_slopes
from study.statistics.progress import matched_progress
from study.statistics.rules import CONTRADICTED, INCONCLUSIVE, OTHER_ARM, SUPPORTED, decide
from study.statistics.selection import best_per_cell, expected_best_of_k
from study.statistics.simulation import (NULL_SCENARIOS, OTHER_ARM_SCENARIO, PLANTED_BINARY, PLANTED_CONTINUOUS,
                                         Shape, calibration_table, status_shares)

#: Study shapes like the shipped spaces: depths 1-2-4 (real data) and 1-2-4-8 (depth.yaml), 3 to 10 units per cell.
CALIBRATION_SHAPES = [Shape(depths, units, paired) for depths in ((1, 2, 4), (1, 2, 4, 8))
                      for units in (3, 4, 5, 6, 8, 10) for paired in (True, False)]


def test_null_false_positive_rate_is_at_most_seven_percent_for_3_to_10_units_per_cell():
    table = calibration_table(CALIBRATION_SHAPES, NULL_SCENARIOS, studies=2000, permutations=999, seed=11)
    assert len(table) == len(CALIBRATION_SHAPES) * len(NULL_SCENARIOS)
    assert (table["studies"] >= 400).all()
    worst = table.sort_values("decided").iloc[-1]
    assert worst["decided"] <= 0.07, worst.to_dict()
    # Over all null studies together the rate is at the nominal 5% or below (Monte Carlo error ~0.04%).
    assert table["decided"].mean() <= 0.05


@pytest.mark.parametrize("scenario, supports_sign", [(PLANTED_CONTINUOUS, +1), (PLANTED_BINARY, -1)])
def test_power_is_at_least_80_percent_on_the_stated_planted_effects(scenario, supports_sign):
    # depth.yaml's shape: depths 1, 2, 4, 8 with 6 tuning settings per cell, paired draws.
    shares = status_shares(Shape((1, 2, 4, 8), 6, True).units(), scenario, paired=True, supports_sign=supports_sign,
                           alpha=0.05, studies=1000, permutations=999, seed=3)
    assert shares[SUPPORTED] >= 0.80, shares
    assert shares[CONTRADICTED] == 0.0


def test_a_difference_from_the_other_arm_is_not_called_supported():
    shares = status_shares(Shape((1, 2, 4, 8), 6, True).units(), OTHER_ARM_SCENARIO, paired=True, supports_sign=-1,
                           alpha=0.05, studies=1000, permutations=999, seed=5)
    assert shares[SUPPORTED] <= 0.05
    assert shares[OTHER_ARM] >= 0.5, shares


def test_decide_reads_both_arms():
    common = dict(supports_sign=-1, alpha=0.05)
    assert decide(difference=-0.3, p_difference=0.01, slope_first=-0.2, p_first=0.01, **common) == SUPPORTED
    assert decide(difference=0.3, p_difference=0.01, slope_first=0.2, p_first=0.01, **common) == CONTRADICTED
    # The difference is decided but the first architecture is flat: the second arm moved.
    assert decide(difference=-0.3, p_difference=0.01, slope_first=0.0, p_first=1.0, **common) == OTHER_ARM
    assert decide(difference=-0.3, p_difference=0.01, slope_first=-0.1, p_first=0.2, **common) == OTHER_ARM
    assert decide(difference=-0.3, p_difference=0.2, slope_first=-0.2, p_first=0.01, **common) == INCONCLUSIVE
    vector = decide(difference=np.array([-1.0, -1.0]), p_difference=np.array([0.01, 0.5]),
                    slope_first=np.array([-1.0, -1.0]), p_first=np.array([0.01, 0.01]), **common)
    assert list(vector) == [SUPPORTED, INCONCLUSIVE]


def test_slopes_on_a_hand_made_table_are_exact():
    units = pd.DataFrame({"architecture": ["lstm", "lstm", "cnn", "cnn"], "depth": [1, 2, 1, 2],
                          "setting": [0, 0, 0, 0], "value": [1.0, 0.0, 1.0, 1.0]})
    result = compare_slopes(units, first="lstm", second="cnn", paired=True, permutations=199, resamples=200)
    assert result.slope_first == -1.0
    assert result.slope_second == 0.0
    assert result.difference == -1.0
    assert result.paired
    # One pair per depth: the only other arrangement swaps the depths, so the p-value cannot go below 1/2.
    assert result.p_difference >= 0.5


def _curve(trial_id, train, val, accuracy, phase="tune"):
    return pd.DataFrame({"trial_id": trial_id, "phase": phase, "epoch": np.arange(1, len(train) + 1),
                         "train_loss": train, "val_loss": val, "train_balanced_accuracy": accuracy,
                         "val_accuracy": accuracy, "fit_loss": train})


def test_matched_progress_on_a_hand_made_table():
    epochs = pd.concat([_curve("a", [1.0, 0.6, 0.4, 0.3], [1.1, 0.8, 0.8, 0.9], [0.5] * 4),
                        _curve("b", [1.2, 1.0, 0.9, 0.8], [1.2, 1.1, 1.0, 1.0], [0.5] * 4)])
    result = matched_progress(epochs, target=0.5).set_index("trial_id")
    assert bool(result.loc["a", "reached_target"]) and not bool(result.loc["b", "reached_target"])
    assert result.loc["a", "epochs_to_target"] == 3
    assert result.loc["a", "gap_at_target"] == pytest.approx(0.4)
    # Gaps after the target: epoch 3 -> 0.4, epoch 4 -> 0.6: slope 0.2 per epoch.
    assert result.loc["a", "gap_growth_after_target"] == pytest.approx(0.2)
    # Never reached: censored one epoch past its last, no gap at the target.
    assert result.loc["b", "epochs_to_target"] == 5
    assert math.isnan(result.loc["b", "gap_at_target"])


def test_classification_by_accuracy_divergence_and_crashes():
    chance = Chance(num_classes=4, loss=math.log(4))
    epochs = pd.concat([
        # Learned (accuracy 0.85 >> 0.25) although its loss never fell below half the chance loss (0.69).
        _curve("learned", [1.3, 1.0, 0.8, 0.72], [1.3, 1.1, 0.95, 0.9], [0.4, 0.6, 0.8, 0.85]),
        _curve("chance", [1.39, 1.38, 1.38, 1.38], [1.39, 1.39, 1.39, 1.39], [0.26, 0.27, 0.25, 0.3]),
        _curve("nan", [1.0, 0.8, 0.7, np.nan], [1.0, 0.9, 0.95, np.nan], [0.5, 0.6, 0.7, 0.7]),
        _curve("overfits", [1.0, 0.5, 0.3, 0.1], [1.0, 0.7, 0.9, 1.2], [0.5, 0.8, 0.9, 0.97]),
    ])
    statuses = pd.DataFrame({"trial_id": ["learned", "chance", "nan", "overfits", "crashed"], "phase": "tune",
                             "status": ["completed", "completed", "diverged", "completed", "failed"]})
    result = classify_trials(epochs, chance=chance, settings=AnalysisConfig(), statuses=statuses).set_index("trial_id")
    assert result.loc["learned", "classification"] == FITTING
    assert result.loc["chance", "classification"] == FAILED_TO_TRAIN
    assert result.loc["nan", "classification"] == DIVERGED
    assert result.loc["nan", "diverged_epoch"] == 4
    assert result.loc["overfits", "classification"] == OVERFITTING
    assert result.loc["crashed", "classification"] == CRASHED
    assert list(result["trained"]) == [True, False, False, True, False]


def test_best_per_cell_is_the_lowest_completed_validation_loss():
    trials = pd.DataFrame({"trial_id": ["0", "1", "2", "3"], "phase": "tune", "architecture": ["lstm"] * 4,
                           "depth": [1, 1, 1, 2], "status": ["completed", "diverged", "completed", "completed"],
                           "best_val_loss": [0.5, 0.1, 0.4, 0.9]})
    winners = best_per_cell(trials, ["architecture", "depth"])
    assert list(winners["trial_id"]) == ["2", "3"]


def test_expected_best_of_k_on_a_hand_made_cell():
    trials = pd.DataFrame({"trial_id": ["0", "1"], "phase": "tune", "architecture": "cnn", "depth": 1,
                           "best_val_accuracy": [0.5, 0.7]})
    table = expected_best_of_k(trials, ["architecture", "depth"]).set_index("k")
    assert table.loc[1, "expected_best"] == pytest.approx(0.6)
    # Two draws with replacement: the best is 0.5 only when both draws are 0.5 (1/4).
    assert table.loc[2, "expected_best"] == pytest.approx(0.25 * 0.5 + 0.75 * 0.7)
