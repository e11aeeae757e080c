"""The verdict on generated study tables whose answer is known: null, planted effects, the other-arm confound,
diverged trials, and ``python -m study report`` end to end."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from study.statistics.analysis import analyse
from study.statistics.planted import PlantedStudy, planted_tables
from study.statistics.rules import INCONCLUSIVE, OTHER_ARM, SUPPORTED
from tests.conftest import run_cli


def lstm_harder_to_train(architecture: str, depth: int) -> float:
    return 0.95 - 0.3 * math.log2(depth) if architecture == "lstm" else 0.95


def lstm_overfits_faster(architecture: str, depth: int) -> float:
    return 0.3 + 0.35 * math.log2(depth) if architecture == "lstm" else 0.3


def only_shallow_cnns_fail(architecture: str, depth: int) -> float:
    return 0.0 if (architecture == "cnn" and depth == 1) else 0.98


def write_run(run_dir: Path, plan: PlantedStudy) -> None:
    epochs, trials, manifest = planted_tables(plan)
    run_dir.mkdir(parents=True)
    epochs.to_csv(run_dir / "epochs.csv", index=False)
    trials.to_csv(run_dir / "trials.csv", index=False)
    (run_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def test_null_studies_are_rarely_decided():
    decided = 0
    for seed in range(10):
        analysis = analyse(*planted_tables(PlantedStudy(seed=seed)))
        decided += sum(statement.status != INCONCLUSIVE for statement in analysis.verdict.statements)
    # 20 statements at a measured error rate of at most 5% each: 3 or more would happen by chance < 8% of the time.
    assert decided <= 2


def test_planted_effects_are_supported_from_the_lstm_arm():
    verdict = analyse(*planted_tables(PlantedStudy(train_probability=lstm_harder_to_train, seed=4))).verdict
    assert verdict.trainability.status == SUPPORTED
    assert verdict.trainability.first.slope < 0 and verdict.trainability.first.p_value < 0.05
    assert verdict.overfitting.status == INCONCLUSIVE or verdict.overfitting.status != SUPPORTED
    verdict = analyse(*planted_tables(PlantedStudy(kappa=lstm_overfits_faster, seed=4))).verdict
    assert verdict.overfitting.status == SUPPORTED
    assert verdict.overfitting.measure == "gap_at_target"
    assert verdict.overfitting.first.slope > 0
    for statement in verdict.statements:
        assert statement.calibration_text and "simulated null studies" in statement.calibration_text
        assert 0 <= statement.false_positive_rate <= 0.07


def test_a_difference_from_the_cnns_is_not_a_support_of_the_lstm_claim():
    verdict = analyse(*planted_tables(PlantedStudy(train_probability=only_shallow_cnns_fail, seed=0))).verdict
    statement = verdict.trainability
    assert statement.status == OTHER_ARM
    assert "comes from the CNNs" in statement.reading
    assert statement.second.slope > 0 and statement.second.p_value < 0.05
    assert statement.first.p_value >= 0.05


def test_a_diverged_repeat_seed_is_its_own_class_and_is_listed():
    plan = PlantedStudy(diverge={("repeat", "r00-01"): 4, ("tune", "05"): 3}, seed=1)
    analysis = analyse(*planted_tables(plan))
    frame = analysis.trials.set_index(["phase", "trial_id"])
    assert frame.loc[("repeat", "r00-01"), "classification"] == "diverged"
    assert frame.loc[("tune", "05"), "classification"] == "diverged"
    assert not frame.loc[("tune", "05"), "trained"]
    assert any("diverged" in problem and "r00-01" in problem for problem in analysis.data_problems)
    trainability = analysis.tables["trainability"]
    assert trainability["diverged"].sum() == 1


def test_an_inconclusive_statement_says_what_would_decide_it():
    verdict = analyse(*planted_tables(PlantedStudy(seed=7, settings_per_cell=3, depths=(1, 2, 4)))).verdict
    inconclusive = [statement for statement in verdict.statements if statement.status == INCONCLUSIVE]
    assert inconclusive
    for statement in inconclusive:
        assert statement.units_needed_text.startswith("What would decide it")
        assert statement.units_needed is None or statement.units_needed > 3


def test_report_command_reaches_the_verdict_on_hand_made_tables(tmp_path):
    plan = PlantedStudy(train_probability=lambda a, d: 0.95 - 0.25 * math.log2(d) if a == "lstm" else 0.95,
                        kappa=lstm_overfits_faster, settings_per_cell=8, seed=4)
    write_run(tmp_path / "runs" / "planted", plan)
    result = run_cli("report", "planted", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report_dir = tmp_path / "reports" / "planted"
    text = (report_dir / "report.md").read_text(encoding="utf-8")
    assert "deeper LSTMs are harder to train than deeper CNNs" in text
    assert text.count("**supported**") >= 2 or text.lower().count("supported") >= 2
    assert "false-positive" in text.lower() or "error rate" in text.lower()
    slopes = pd.read_csv(report_dir / "slopes.csv")
    primary = slopes.loc[slopes["primary"]].set_index("measure")
    assert primary.loc["trainable_fraction", "status"] == SUPPORTED
    assert primary.loc["gap_at_target", "status"] == SUPPORTED
    assert np.isfinite(primary["p_first"]).all()
