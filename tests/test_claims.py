"""Claims declared in a search space: validation at the door, verdicts along any factor (planted effects found,
nulls left inconclusive, Holm across claims), ``--compare`` for any factor, and the index of all answers."""
from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from study.config import Claim, parse_claims, space_from_dict
from study.errors import BadInput
from study.statistics.analysis import analyse
from study.statistics.claims import claim_units, holm
from study.statistics.inference import compare_slopes
from study.statistics.planted import PlantedStudy, planted_tables
from study.statistics.rules import CONTRADICTED, INCONCLUSIVE, SUPPORTED, decide_one_arm
from tests.conftest import TINY_SPACE, assert_clean_exit, run_cli, run_main, snapshot, write_space

SCIENTIFIC = {"architecture": ("lstm", "cnn"), "depth": (1, 2, 4), "dropout": (0.0, 0.25, 0.5),
              "weight_decay_type": ("l2", "adamw")}
DROPOUT_CLAIMS = [
    {"factor": "dropout", "measure": "gap_at_target", "direction": "decreases",
     "sentence": "dropout narrows the gap"},
    {"factor": "dropout", "measure": "gap_at_target", "direction": "decreases",
     "compare": {"architecture": ["lstm", "cnn"]}, "sentence": "dropout closes more of the gap in LSTMs"},
]


# ---------------------------------------------------------------- validation


def test_a_valid_claim_gets_its_levels_scale_and_a_generated_sentence():
    (claim,) = parse_claims([{"factor": "dropout", "measure": "gap_at_target", "direction": "decreases",
                              "compare": {"architecture": ["lstm", "cnn"]}, "at": {"depth": 4}}], SCIENTIFIC, "s.yaml")
    assert claim == Claim(factor="dropout", measure="gap_at_target", direction="decreases", levels=(0.0, 0.25, 0.5),
                          scale="linear", compare_factor="architecture", compare_levels=("lstm", "cnn"),
                          at=(("depth", (4,)),))
    assert claim.supports_sign == -1
    assert claim.text == "gap_at_target falls more with dropout for architecture lstm than for architecture cnn at depth 4"
    (depth,) = parse_claims([{"factor": "depth", "measure": "trainable_fraction", "direction": "decreases"}],
                            SCIENTIFIC, "s.yaml")
    assert depth.scale == "log2" and depth.axis_text == "per doubling of depth"
    (kind,) = parse_claims([{"factor": "weight_decay_type", "levels": ["l2", "adamw"], "measure": "gap_at_target",
                             "direction": "decreases"}], SCIENTIFIC, "s.yaml")
    assert kind.scale == "rank" and kind.axis_text == "weight_decay_type adamw minus l2"


@pytest.mark.parametrize("claim, key, fragment", [
    ({"factor": "width", "measure": "gap_at_target", "direction": "decreases"}, "claims[0].factor",
     "allowed: a scientific hyperparameter of this space: 'architecture', 'depth', 'dropout', 'weight_decay_type'"),
    ({"factor": "dropout", "measure": "gap", "direction": "decreases"}, "claims[0].measure", "allowed: 'trainable_fraction'"),
    ({"factor": "dropout", "measure": "gap_at_target", "direction": "down"}, "claims[0].direction",
     "allowed: 'increases', 'decreases'"),
    ({"factor": "dropout", "measure": "gap_at_target", "direction": "decreases",
      "compare": {"architecture": ["lstm", "gru"]}}, "claims[0].compare.architecture", "'gru' is not a level"),
    ({"factor": "dropout", "measure": "gap_at_target", "direction": "decreases",
      "compare": {"dropout": [0.0, 0.5]}}, "claims[0].compare", "another scientific hyperparameter"),
    ({"factor": "dropout", "measure": "gap_at_target", "direction": "decreases", "levels": [0.0, 0.3]},
     "claims[0].levels", "0.3 is not a level"),
    ({"factor": "dropout", "measure": "gap_at_target", "direction": "decreases", "scale": "log2"},
     "claims[0].scale", "log2 needs positive levels"),
    ({"factor": "dropout", "measure": "gap_at_target", "direction": "decreases", "at": {"depth": 3}},
     "claims[0].at.depth", "3 is not a level"),
    ({"factor": "dropout", "measure": "gap_at_target"}, "claims[0].direction", "missing"),
    ({"factor": "dropout", "measure": "gap_at_target", "direction": "decreases", "why": "x"}, "claims[0].why",
     "unknown key"),
    ({"factor": "architecture", "measure": "gap_at_target", "direction": "decreases", "levels": ["lstm"]},
     "claims[0].levels", "at least 2"),
])
def test_a_malformed_claim_is_one_bad_input_naming_the_key_and_what_is_allowed(claim, key, fragment):
    with pytest.raises(BadInput) as caught:
        parse_claims([claim], SCIENTIFIC, "space.yaml")
    message = str(caught.value)
    assert message.startswith(f"space.yaml: key '{key}'"), message
    assert fragment in message and "\n" not in message


def test_an_empty_or_non_list_claims_section_is_bad_input():
    for raw in ([], {"factor": "dropout"}, None):
        with pytest.raises(BadInput, match="key 'claims'"):
            parse_claims(raw, SCIENTIFIC, "space.yaml")


def test_run_with_a_malformed_claim_exits_2_in_one_line_and_writes_nothing(tmp_path):
    path = write_space(tmp_path, {"claims": [{"factor": "dropout", "measure": "gap_at_target",
                                              "direction": "decreases"}]})  # dropout is a nuisance in TINY_SPACE
    before = snapshot(tmp_path)
    status, _out, err = run_main(["run", str(path), "--runs-dir", str(tmp_path / "runs")])
    assert status == 2
    assert_clean_exit(status, err)
    assert "key 'claims[0].factor'" in err and "'architecture', 'depth'" in err
    assert snapshot(tmp_path) == before


def test_the_question_comes_from_the_spaces_opening_comment(tmp_path):
    path = write_space(tmp_path)
    path.write_text("# Question: does it work? More words here.\n# Run: make x\n" + path.read_text(), encoding="utf-8")
    from study.config import load_space

    space = load_space(path)
    assert space.question == "does it work?"
    assert space.to_dict()["question"] == "does it work?"
    shipped = load_space(Path(__file__).resolve().parents[1] / "search_spaces" / "dropout.yaml")
    assert shipped.question.startswith("how much of the train/validation gap does dropout close")
    assert len(shipped.claims) == 3


# ---------------------------------------------------------------- statistics


def test_strata_keep_slopes_and_permutations_within_each_level():
    """Two depths with very different levels: the within-stratum slope is the planted 1 per unit, and an
    unstratified slope would be dragged by the level difference between strata."""
    rows = []
    for depth, offset, xs in ((1, 0.0, (0.0, 0.5)), (4, 10.0, (0.25, 0.5))):
        for setting in range(4):
            for x in xs:
                rows.append({"arm": "all", "x": x, "level": str(x), "stratum": str(depth), "setting": setting,
                             "value": offset + 1.0 * x + 0.01 * setting})
    units = pd.DataFrame(rows)
    result = compare_slopes(units, first="all", second="(none)", paired=True, permutations=199, resamples=200)
    assert result.slope_first == pytest.approx(1.0)
    assert result.p_first < 0.05
    assert math.isnan(result.difference) and result.p_difference == 1.0


def test_holm_matches_the_step_down_rule_and_statsmodels():
    from statsmodels.stats.multitest import multipletests

    assert holm([0.01, 0.04, 0.03]).tolist() == pytest.approx([0.03, 0.06, 0.06])
    assert holm([]).size == 0 and holm([float("nan"), 0.01]).tolist() == pytest.approx([1.0, 0.02])
    for p_values in np.random.default_rng(1).random((30, 5)) ** 3:
        assert holm(p_values) == pytest.approx(multipletests(p_values, method="holm")[1])


def test_one_arm_rule_reads_the_sign():
    assert decide_one_arm(slope=-0.2, p_value=0.01, supports_sign=-1, alpha=0.05) == SUPPORTED
    assert decide_one_arm(slope=0.2, p_value=0.01, supports_sign=-1, alpha=0.05) == CONTRADICTED
    assert decide_one_arm(slope=-0.2, p_value=0.2, supports_sign=-1, alpha=0.05) == INCONCLUSIVE
    assert decide_one_arm(slope=np.array([0.0, -1.0]), p_value=np.array([0.0, 0.0]), supports_sign=-1,
                          alpha=0.05).tolist() == [INCONCLUSIVE, SUPPORTED]


def dropout_closes_lstm_gap(architecture: str, depth: int, dropout: float) -> float:
    return 0.7 - 1.0 * dropout if architecture == "lstm" else 0.5


def no_effect(architecture: str, depth: int, dropout: float) -> float:
    return 0.5


def dropout_plan(kappa, seed: int, claims=DROPOUT_CLAIMS) -> PlantedStudy:
    return PlantedStudy(depths=(1, 4), levels=(0.0, 0.25, 0.5), kappa=kappa, settings_per_cell=5, repeat_seeds=1,
                        epochs=15, seed=seed, claims=copy.deepcopy(claims),
                        train_probability=lambda architecture, depth, dropout: 0.97)


def write_run(run_dir: Path, plan: PlantedStudy, calibration_studies: int | None = None) -> None:
    epochs, trials, manifest = planted_tables(plan)
    if calibration_studies is not None:  # fewer simulated studies where the calibration is not what is tested
        manifest["space"]["analysis"] = {"calibration_studies": calibration_studies}
    run_dir.mkdir(parents=True)
    epochs.to_csv(run_dir / "epochs.csv", index=False)
    trials.to_csv(run_dir / "trials.csv", index=False)
    (run_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def test_a_planted_dropout_effect_is_found_through_the_report_command(tmp_path):
    write_run(tmp_path / "runs" / "dropout", dropout_plan(dropout_closes_lstm_gap, seed=3))
    result = run_cli("report", "dropout", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report_dir = tmp_path / "reports" / "dropout"
    claims = pd.read_csv(report_dir / "claims.csv")
    assert claims["sentence"].tolist() == ["dropout narrows the gap", "dropout closes more of the gap in LSTMs"]
    assert claims["status"].tolist() == [SUPPORTED, SUPPORTED]
    assert (claims["adjusted_p_value"] >= claims["p_value"] - 1e-12).all()
    assert (claims["estimate"] < 0).all()
    assert claims["strata"].tolist() == ["within each architecture / depth", "within each depth"]
    effects = pd.read_csv(report_dir / "factor_effects.csv")
    gap = effects.loc[effects["measure"] == "gap_at_target"]
    lstm = gap.loc[(gap["axis_id"] == 1) & (gap["arm"] == "lstm"), "slope"]
    cnn = gap.loc[(gap["axis_id"] == 1) & (gap["arm"] == "cnn"), "slope"]
    assert (lstm < -0.5).all() and (cnn.abs() < 0.5).all()  # the planted gap rate falls 1 per unit of dropout
    assert set(effects["measure"]) == {"gap_at_target", "best_val_accuracy"}  # what it cost
    profile = pd.read_csv(report_dir / "factor_profile.csv")
    assert set(profile["level"].astype(float)) == {0.0, 0.25, 0.5}
    text = (report_dir / "report.md").read_text(encoding="utf-8")
    assert "2 claims, declared in the search space's claims: section" in text
    assert "Holm across 2 claims" in text
    answers = json.loads((report_dir / "answers.json").read_text(encoding="utf-8"))
    assert [claim["status"] for claim in answers["claims"]] == [SUPPORTED, SUPPORTED]
    index = (tmp_path / "reports" / "index.md").read_text(encoding="utf-8")
    assert "dropout narrows the gap" in index and "dropout/report.md" in index


def test_a_null_dropout_study_is_left_inconclusive():
    analysis = analyse(*planted_tables(dropout_plan(no_effect, seed=1000)))
    assert [statement.status for statement in analysis.verdict.statements] == [INCONCLUSIVE, INCONCLUSIVE]
    assert all(statement.units_needed_text for statement in analysis.verdict.statements)


def test_null_dropout_studies_are_rarely_decided():
    """Ten null studies, two claims each, Holm across them: at most one study makes any decision (the
    family-wise rate is at most 5%; one in ten is within chance)."""
    decided = 0
    for seed in range(10):
        plan = dropout_plan(no_effect, seed=100 + seed)
        epochs, trials, manifest = planted_tables(plan)
        manifest["space"]["analysis"] = {"calibration_studies": 0, "permutations": 499}
        verdict = analyse(epochs, trials, manifest).verdict
        decided += any(statement.status != INCONCLUSIVE for statement in verdict.statements)
    assert decided <= 1


def test_claim_units_carry_arm_axis_and_strata():
    epochs, trials, manifest = planted_tables(dropout_plan(no_effect, seed=1))
    analysis = analyse(epochs, trials, {**manifest, "space": {**manifest["space"],
                                                              "analysis": {"calibration_studies": 0}}})
    claim = analysis.claims[1]
    from study.statistics.trials import measure_units

    units = claim_units(measure_units(analysis.trials, "trainable_fraction", ["architecture", "depth", "dropout"]),
                        claim, ["architecture", "depth", "dropout"])
    assert set(units["arm"]) == {"lstm", "cnn"}
    assert sorted(set(units["x"])) == [0.0, 0.25, 0.5]
    assert set(units["stratum"]) == {"1", "4"}
    assert len(units) == 2 * 2 * 3 * 5


def test_compare_generalises_to_any_factor(tmp_path):
    plan = dropout_plan(dropout_closes_lstm_gap, seed=3, claims=None)
    write_run(tmp_path / "runs" / "dropout", plan, calibration_studies=50)
    result = run_cli("report", "dropout", "--compare", "dropout", "0.5", "0.0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    claims = pd.read_csv(tmp_path / "reports" / "dropout" / "claims.csv")
    assert claims["factor"].tolist() == ["depth", "depth"]
    assert claims["compared"].tolist() == ["dropout", "dropout"]
    bad = run_cli("report", "dropout", "--compare", "dropout", "0.5", "0.9", cwd=tmp_path)
    assert bad.returncode == 2 and "0.9' is not a level of dropout" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_a_broken_claim_in_a_manifest_is_bad_input_for_the_report(tmp_path):
    plan = dropout_plan(no_effect, seed=2, claims=[{"factor": "width", "measure": "gap_at_target",
                                                    "direction": "decreases"}])
    write_run(tmp_path / "runs" / "dropout", plan)
    result = run_cli("report", "dropout", cwd=tmp_path)
    assert result.returncode == 2
    assert "manifest.json: key 'claims[0].factor'" in result.stderr
    assert not (tmp_path / "reports" / "dropout").exists()


def test_the_index_lists_every_study_built(tmp_path):
    write_run(tmp_path / "runs" / "dropout", dropout_plan(dropout_closes_lstm_gap, seed=3), calibration_studies=50)
    write_run(tmp_path / "runs" / "depth", PlantedStudy(settings_per_cell=4, depths=(1, 2, 4), seed=9),
              calibration_studies=50)
    for name in ("dropout", "depth"):
        status, _out, err = run_main(["report", name, "--runs-dir", str(tmp_path / "runs"), "--reports-dir",
                                      str(tmp_path / "reports")])
        assert status == 0, err
    index = (tmp_path / "reports" / "index.md").read_text(encoding="utf-8")
    assert "2 studies" in index
    assert "deeper LSTMs overfit faster than deeper CNNs" in index and "dropout narrows the gap" in index
    page = (tmp_path / "reports" / "index.html").read_text(encoding="utf-8")
    assert 'href="depth/report.html"' in page and 'href="dropout/report.html"' in page


def test_holm_keeps_the_family_wise_error_rate_of_several_claims_at_alpha():
    """Three null claims of the dropout study's shape: unadjusted, some claim is decided in about
    1 - 0.95^3 = 14% of studies; with Holm's adjustment (the verdict's rule) at most alpha."""
    from study.statistics.claims import holm_rows
    from study.statistics.simulation import claim_layout, family_error_rate

    p_values = np.random.default_rng(0).random((40, 4))
    assert np.allclose(holm_rows(p_values), np.vstack([holm(row) for row in p_values]))
    rates = family_error_rate([claim_layout((0.0, 0.25, 0.5), 4, 4, two_arms=False),
                               claim_layout((0.0, 0.25, 0.5), 1, 4, two_arms=True),
                               claim_layout((0.0, 0.25, 0.5), 4, 4, two_arms=False)], studies=2000, seed=23)
    assert rates["any_decided_unadjusted"] > 0.09
    assert rates["any_decided_holm"] <= 0.06  # 0.05 plus two Monte Carlo standard errors


GARBAGE = [None, 5, 1.5, True, "x", [], [1], ["lstm", "cnn"], {}, {"a": 1}, {"architecture": ["lstm", "cnn"]},
           {"architecture": "lstm"}, {"depth": [[1]]}, {"depth": {"a": 1}}, [[1, 2]], float("nan"),
           {"depth": [1, 1]}, {"architecture": ["lstm", "lstm"]}, [0.0, 1e400]]


@pytest.mark.parametrize("key", ["factor", "measure", "direction", "compare", "levels", "at", "scale", "sentence"])
def test_any_value_of_any_claim_key_is_accepted_or_one_bad_input_line(key):
    for value in GARBAGE:
        document = copy.deepcopy(TINY_SPACE)
        document["claims"] = [{"factor": "depth", "measure": "gap_at_target", "direction": "increases", key: value}]
        try:
            space_from_dict(document, source="s.yaml")
        except BadInput as error:
            assert "\n" not in str(error) and str(error).startswith("s.yaml: key 'claims"), str(error)


def test_distinct_permutations_match_itertools_and_stay_cheap_for_tied_blocks():
    import itertools

    from study.statistics.inference import _distinct_permutations

    for values in ([0.0], [1.0, 0.0, 1.0], [2, 1, 1, 0, 2], list("abcab")):
        assert _distinct_permutations(list(values)) == sorted(set(itertools.permutations(values)))
    assert _distinct_permutations([True] * 400) == [tuple([True] * 400)]  # one ordering, not 400! candidates


def test_a_one_arm_claim_on_a_single_architecture_study_is_decided_by_its_own_slope():
    plan = PlantedStudy(architectures=("cnn",), depths=(1, 2, 4), settings_per_cell=6, seed=1,
                        kappa=lambda architecture, depth: 0.2 + 0.3 * math.log2(depth),
                        claims=[{"factor": "depth", "measure": "gap_at_target", "direction": "increases"}])
    epochs, trials, manifest = planted_tables(plan)
    manifest["space"]["analysis"] = {"calibration_studies": 50}
    analysis = analyse(epochs, trials, manifest)
    assert analysis.paired  # one architecture, the same settings at every depth
    (statement,) = analysis.verdict.statements
    assert statement.one_arm and statement.first.architecture == "all"
    assert statement.status == SUPPORTED and statement.first.slope > 0
