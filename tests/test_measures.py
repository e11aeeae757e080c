"""Overfitting measures on hand-made curves with values worked out by hand."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from study.measures import (
    DEFAULT_ONSET_TOLERANCE,
    MEASURE_COLUMNS,
    best_epoch,
    final_gap,
    gap_at_best,
    gap_growth,
    gaps,
    measures_table,
    overfit_onset,
    trial_measures,
)

NAN = math.nan


def curve(val_loss, train_loss, *, trial_id="t1", epochs=None, val_accuracy=None, fit_loss=None) -> pd.DataFrame:
    """One trial's rows; fit_loss defaults to nonsense so that using it would show."""
    count = len(val_loss)
    return pd.DataFrame({
        "trial_id": trial_id,
        "epoch": list(epochs) if epochs is not None else list(range(1, count + 1)),
        "train_loss": train_loss,
        "val_loss": val_loss,
        "val_accuracy": val_accuracy if val_accuracy is not None else [0.1 * (index + 1) for index in range(count)],
        "fit_loss": fit_loss if fit_loss is not None else [100.0 + index for index in range(count)],
    })


# val [1.0, 0.5, 0.7, 0.9], train [0.9, 0.4, 0.3, 0.2]: gaps 0.1, 0.1, 0.4, 0.7.
# Best epoch 2; after it gaps 0.1, 0.4, 0.7 at epochs 2..4: slope 0.3.
# Onset (tol 0.05, threshold 0.55): epochs 3 (0.7) and 4 (0.9) are above -> 3.
BRIEF = curve([1.0, 0.5, 0.7, 0.9], [0.9, 0.4, 0.3, 0.2])


def test_brief_example():
    assert best_epoch(BRIEF) == 2
    assert gap_at_best(BRIEF) == pytest.approx(0.1)
    assert final_gap(BRIEF) == pytest.approx(0.7)
    assert gap_growth(BRIEF) == pytest.approx(0.3)
    assert overfit_onset(BRIEF, 0.05) == 3
    assert overfit_onset(BRIEF) == 3 and DEFAULT_ONSET_TOLERANCE == 0.05
    assert list(gaps(BRIEF).round(12)) == [0.1, 0.1, 0.4, 0.7]
    assert trial_measures(BRIEF) == {
        "best_epoch": 2, "best_val_loss": 0.5, "best_val_accuracy": pytest.approx(0.2),
        "gap_at_best": pytest.approx(0.1), "final_gap": pytest.approx(0.7), "gap_growth": pytest.approx(0.3),
        "overfit_onset": 3, "epochs_run": 4,
    }


def test_rows_in_any_order_give_the_same_measures():
    shuffled = BRIEF.iloc[[3, 0, 2, 1]]
    assert trial_measures(shuffled) == trial_measures(BRIEF)


def test_ties_take_the_earliest_epoch():
    # val minimum 0.4 at epochs 2 and 4; best is 2. Gaps: 0.2, 0.1, 0.3, 0.2, 0.4.
    tied = curve([0.6, 0.4, 0.5, 0.4, 0.6], [0.4, 0.3, 0.2, 0.2, 0.2])
    assert best_epoch(tied) == 2
    assert gap_at_best(tied) == pytest.approx(0.1)
    # Gaps from epoch 2: (2, .1) (3, .3) (4, .2) (5, .4): slope = sum(dx*dy)/sum(dx^2)
    # with mean x 3.5, mean y 0.25: (-1.5*-.15 + -.5*.05 + .5*-.05 + 1.5*.15) / 5 = 0.4 / 5 = 0.08.
    assert gap_growth(tied) == pytest.approx(0.08)
    # Threshold 0.45: epoch 4 is within, epoch 5 (0.6) is above until the end.
    assert overfit_onset(tied, 0.05) == 5


def test_nan_losses_are_ignored():
    # NaN val at epoch 2 (would otherwise be the best), inf counts as missing too.
    # Finite val: e1 .8, e3 .5, e4 .9, e5 .7 -> best 3, threshold .55, e4 and e5 above -> onset 4.
    broken = curve([0.8, NAN, 0.5, 0.9, 0.7], [0.7, 0.1, 0.3, NAN, 0.2])
    assert best_epoch(broken) == 3
    assert gap_at_best(broken) == pytest.approx(0.2)
    assert final_gap(broken) == pytest.approx(0.5)
    # Finite gaps from epoch 3: (3, .2) (5, .5): slope 0.15 (epoch 4 has no train loss).
    assert gap_growth(broken) == pytest.approx(0.15)
    assert overfit_onset(broken, 0.05) == 4
    with_inf = curve([0.8, math.inf, 0.5, 0.9, 0.7], [0.7, 0.1, 0.3, NAN, 0.2])
    assert trial_measures(with_inf) == trial_measures(broken)


def test_a_missing_loss_at_the_last_epoch_makes_the_final_gap_missing():
    assert math.isnan(final_gap(curve([0.9, 0.5, 0.6, 0.7], [0.8, 0.4, 0.3, NAN])))


def test_no_finite_validation_loss_is_an_error():
    hopeless = curve([NAN, math.inf, NAN, NAN], [0.5, 0.4, 0.3, 0.2])
    with pytest.raises(ValueError, match="no finite val_loss"):
        best_epoch(hopeless)
    with pytest.raises(ValueError, match="no finite val_loss"):
        trial_measures(hopeless)


def test_never_overfitting_has_no_onset_and_growth_nan_at_the_last_epoch():
    # Validation keeps improving: best is the last epoch, one epoch from best to end.
    improving = curve([1.0, 0.8, 0.6, 0.5], [0.9, 0.6, 0.4, 0.3])
    assert best_epoch(improving) == 4
    assert overfit_onset(improving, 0.05) is None
    assert math.isnan(gap_growth(improving))
    assert gap_at_best(improving) == pytest.approx(0.2) == final_gap(improving)


def test_validation_rising_then_returning_within_tolerance_has_no_onset():
    # Best 0.5 at epoch 2, up to 0.8 at epoch 4, back to 0.54 (< 0.55) at the end.
    recovering = curve([1.0, 0.5, 0.7, 0.8, 0.54, 0.53], [0.9, 0.4, 0.35, 0.3, 0.25, 0.2])
    assert overfit_onset(recovering, 0.05) is None
    # With a tolerance of 0.02 (threshold 0.52) the last two epochs are above, so the onset is 3.
    assert overfit_onset(recovering, 0.02) == 3
    # A dip back within tolerance restarts the count: onset is after the last epoch within.
    dip = curve([1.0, 0.5, 0.7, 0.52, 0.8, 0.9], [0.9, 0.4, 0.35, 0.3, 0.25, 0.2])
    assert overfit_onset(dip, 0.05) == 5


def test_tolerance_zero_and_invalid_tolerances():
    # With tolerance 0, any epoch after the best with a higher loss counts.
    flat_after = curve([0.6, 0.5, 0.5, 0.51], [0.5, 0.4, 0.3, 0.2])
    assert overfit_onset(flat_after, 0.0) == 4
    assert overfit_onset(flat_after, 0.05) is None
    for bad in (-0.01, NAN, math.inf, "a lot"):
        with pytest.raises(ValueError, match="tolerance"):
            overfit_onset(BRIEF, bad)
        with pytest.raises(ValueError, match="tolerance"):
            measures_table(BRIEF, bad)


def test_repeated_epochs_in_one_curve_are_an_error():
    with pytest.raises(ValueError, match="repeated epochs"):
        best_epoch(pd.concat([BRIEF, BRIEF]))


def test_fit_loss_changes_nothing():
    other_fit = BRIEF.assign(fit_loss=[0.01, 5.0, NAN, -3.0])
    without_fit = BRIEF.drop(columns="fit_loss")
    assert trial_measures(other_fit) == trial_measures(BRIEF) == trial_measures(without_fit)
    pd.testing.assert_frame_equal(measures_table(other_fit), measures_table(BRIEF))
    pd.testing.assert_frame_equal(measures_table(without_fit), measures_table(BRIEF))


def test_measures_table_of_several_trials_and_phases():
    improving = curve([1.0, 0.8, 0.6, 0.5], [0.9, 0.6, 0.4, 0.3], trial_id="t2")
    table = pd.concat([
        BRIEF.assign(phase="tune"),
        improving.assign(phase="tune"),
        # Same trial id in another phase is another row: val [0.9, 0.3, 0.35, 0.8, 0.9].
        curve([0.9, 0.3, 0.35, 0.8, 0.9], [0.8, 0.2, 0.1, 0.1, 0.1], trial_id="t1").assign(phase="repeat"),
    ]).iloc[::-1]  # reversed rows: the table must sort them itself
    measures = measures_table(table, 0.05)
    assert list(measures.columns) == ["trial_id", "phase", *MEASURE_COLUMNS]
    assert list(zip(measures["trial_id"], measures["phase"])) == [("t1", "repeat"), ("t1", "tune"), ("t2", "tune")]
    assert list(measures["best_epoch"]) == [2, 2, 4]
    assert measures["best_val_loss"].tolist() == [0.3, 0.5, 0.5]
    assert measures["best_val_accuracy"].tolist() == pytest.approx([0.2, 0.2, 0.4])
    assert measures["gap_at_best"].tolist() == pytest.approx([0.1, 0.1, 0.2])
    assert measures["final_gap"].tolist() == pytest.approx([0.8, 0.7, 0.2])
    # repeat gaps from epoch 2: .1, .25, .7, .8 at 2..5: mean x 3.5, mean y .4625,
    # sum dx*dy = -1.5*-.3625 - .5*-.2125 + .5*.2375 + 1.5*.3375 = 1.275, sum dx^2 = 5.
    assert measures["gap_growth"].iloc[0] == pytest.approx(0.255)
    assert measures["gap_growth"].iloc[1] == pytest.approx(0.3)
    assert math.isnan(measures["gap_growth"].iloc[2])
    # repeat: threshold .35, epoch 3 (0.35) is within, 4 and 5 above -> onset 4.
    assert measures["overfit_onset"].iloc[0] == 4 and measures["overfit_onset"].iloc[1] == 3
    assert measures["overfit_onset"].isna().tolist() == [False, False, True]
    assert measures["epochs_run"].tolist() == [5, 4, 4]
    assert str(measures["best_epoch"].dtype) == "Int64" and str(measures["overfit_onset"].dtype) == "Int64"


def test_measures_table_without_phase_groups_by_trial():
    table = pd.concat([BRIEF, curve([0.7, 0.6, 0.65, 0.64], [0.6, 0.5, 0.4, 0.3], trial_id="t0")])
    measures = measures_table(table)
    assert list(measures.columns) == ["trial_id", *MEASURE_COLUMNS]
    assert measures["trial_id"].tolist() == ["t0", "t1"]
    assert measures["best_epoch"].tolist() == [2, 2]
    # t0: threshold .65, epoch 3 (.65) within, epoch 4 (.64) within -> no onset.
    assert measures["overfit_onset"].isna().tolist() == [True, False]


def test_measures_table_gives_missing_measures_for_a_trial_without_finite_validation_loss():
    table = pd.concat([BRIEF, curve([NAN, NAN, NAN, NAN], [0.5, 0.4, 0.3, 0.2], trial_id="t9")])
    measures = measures_table(table).set_index("trial_id")
    assert measures.loc["t1", "best_epoch"] == 2
    assert pd.isna(measures.loc["t9", "best_epoch"]) and pd.isna(measures.loc["t9", "overfit_onset"])
    for name in ("best_val_loss", "best_val_accuracy", "gap_at_best", "final_gap", "gap_growth"):
        assert math.isnan(measures.loc["t9", name]), name
    assert measures.loc["t9", "epochs_run"] == 4


def test_measures_table_rejects_missing_columns_and_repeated_rows():
    with pytest.raises(ValueError, match="train_loss, val_accuracy"):
        measures_table(BRIEF.drop(columns=["train_loss", "val_accuracy"]))
    with pytest.raises(ValueError, match="repeated"):
        measures_table(pd.concat([BRIEF, BRIEF]))


def test_measures_table_of_an_empty_table_is_empty():
    measures = measures_table(BRIEF.iloc[:0])
    assert measures.empty and list(measures.columns) == ["trial_id", *MEASURE_COLUMNS]


def random_epochs(trial_count: int, epoch_count: int, seed: int) -> pd.DataFrame:
    """Noisy U-shaped validation curves with some missing and tied losses."""
    rng = np.random.default_rng(seed)
    epoch = np.tile(np.arange(1, epoch_count + 1), trial_count)
    val_loss = np.round(0.5 + 0.002 * (epoch - epoch_count / 2) ** 2 + rng.normal(0, 0.05, epoch.size), 2)
    train_loss = np.round(1.0 / epoch + rng.normal(0, 0.02, epoch.size), 3)
    val_loss[rng.random(epoch.size) < 0.05] = np.nan
    train_loss[rng.random(epoch.size) < 0.05] = np.nan
    return pd.DataFrame({
        "trial_id": np.repeat([f"trial{index:05d}" for index in range(trial_count)], epoch_count),
        "phase": "tune", "epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
        "val_accuracy": rng.random(epoch.size), "fit_loss": rng.random(epoch.size),
    })


def test_measures_table_agrees_with_the_single_curve_definitions():
    epochs = random_epochs(trial_count=40, epoch_count=12, seed=3)
    measures = measures_table(epochs, 0.03).set_index("trial_id")
    for trial_id, rows in epochs.groupby("trial_id"):
        expected = trial_measures(rows, 0.03)
        row = measures.loc[trial_id]
        for name in MEASURE_COLUMNS:
            if expected[name] is None:
                assert pd.isna(row[name]), (trial_id, name)
            elif isinstance(expected[name], float) and math.isnan(expected[name]):
                assert math.isnan(row[name]), (trial_id, name)
            else:
                assert row[name] == pytest.approx(expected[name], abs=1e-9), (trial_id, name)


def test_measures_table_handles_100000_rows():
    """One row per trial on a large table (its speed is measured by `make bench`, not here)."""
    epochs = random_epochs(trial_count=2000, epoch_count=50, seed=1)
    measures = measures_table(epochs)
    assert len(measures) == 2000 and measures["best_epoch"].between(1, 50).all()
