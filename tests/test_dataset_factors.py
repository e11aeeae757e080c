"""Dataset parameters as scientific factors: parsed and checked at the door, one cell level per value, the
data of each level loaded once, one table column per factor, the manifest's per-level record, and a tiny
real study end to end (tuning, repeats, report) with a claim along a dataset factor."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from study.config import dataset_factor_levels, dataset_factor_name, load_space, scientific_levels, with_overrides
from study.datasets import load_dataset
from study.errors import BadInput
from study.tables import epoch_columns, read_trials, trial_columns
from tests.conftest import TINY_SPACE, assert_clean_exit, run_main, snapshot, write_space

FACTOR_PARAMETERS = {"n_strips": {"role": "scientific", "values": [48, 96]}, "length": 32, "sampling_rate": 20.0,
                     "seed": 3}


def factor_space(tmp_path, parameters=None, **changes):
    dataset = {"name": "synthetic_ecg", "parameters": parameters or FACTOR_PARAMETERS}
    return write_space(tmp_path, {"dataset": dataset, **changes})


def test_a_scientific_dataset_parameter_is_a_cell_level_with_its_own_column(tmp_path):
    space = load_space(factor_space(tmp_path, {**FACTOR_PARAMETERS,
                                               "seed": {"role": "scientific", "values": [3, 4]}}))
    assert space.dataset.factors == {"n_strips": (48, 96), "seed": (3, 4)}
    # seed names the trial seed column already, so the data seed's factor is dataset_seed
    assert space.dataset.factor_names == {"n_strips": "n_strips", "dataset_seed": "seed"}
    assert space.scientific_names == ["architecture", "depth", "n_strips", "dataset_seed"]
    cells = space.cells()
    assert len(cells) == 2 * 2 * 2 * 2
    assert cells[0] == {"architecture": "lstm", "depth": 1, "n_strips": 48, "dataset_seed": 3}
    assert space.dataset.level_parameters(cells[-1])["n_strips"] == 96
    assert space.dataset.level_parameters(cells[-1])["seed"] == 4
    assert [level for level in space.dataset.levels()] == [
        {"n_strips": 48, "dataset_seed": 3}, {"n_strips": 48, "dataset_seed": 4},
        {"n_strips": 96, "dataset_seed": 3}, {"n_strips": 96, "dataset_seed": 4}]
    recorded = space.to_dict()
    assert recorded["dataset"]["parameters"]["n_strips"] == {"role": "scientific", "values": [48, 96]}
    assert dataset_factor_levels(recorded) == {"n_strips": (48, 96), "dataset_seed": (3, 4)}
    assert scientific_levels(recorded)["dataset_seed"] == (3, 4)
    assert dataset_factor_name("label_noise") == "label_noise" and dataset_factor_name("depth") == "dataset_depth"
    columns = trial_columns(["n_strips", "dataset_seed"])
    assert columns[columns.index("parameter_budget") + 1: columns.index("parameter_budget") + 3] == \
        ["n_strips", "dataset_seed"]
    assert epoch_columns([]) == epoch_columns()


@pytest.mark.parametrize("value, key, words", [
    ({"role": "nuisance", "values": [48, 96]}, "dataset.parameters.n_strips", "role: scientific"),
    ({"role": "scientific"}, "dataset.parameters.n_strips", "role: scientific"),
    ({"role": "scientific", "values": []}, "dataset.parameters.n_strips.values", "non-empty list"),
    ({"role": "scientific", "values": [48, 48.0]}, "dataset.parameters.n_strips.values", "twice"),
    ({"role": "scientific", "values": [48, 5]}, "dataset.parameters.n_strips", "at least"),
    ({"role": "scientific", "values": [48], "min": 3}, "dataset.parameters.n_strips.min", "role, values"),
])
def test_bad_dataset_factors_name_the_file_key_and_what_is_allowed(tmp_path, value, key, words):
    path = factor_space(tmp_path, {**FACTOR_PARAMETERS, "n_strips": value})
    with pytest.raises(BadInput) as caught:
        load_space(path)
    assert caught.value.key == key and str(path) in str(caught.value) and words in str(caught.value)


def test_every_combination_of_levels_is_checked_and_claims_may_run_along_a_dataset_factor(tmp_path):
    # length 32 is too short for a 0.95 validation + test fraction only at the second level of another factor
    parameters = {**FACTOR_PARAMETERS, "test_fraction": {"role": "scientific", "values": [0.2, 0.9]}}
    with pytest.raises(BadInput, match="validation_fraction \\+ test_fraction"):
        load_space(factor_space(tmp_path, parameters))
    claims = [{"factor": "n_strips", "measure": "gap_at_best", "direction": "decreases", "scale": "log2",
               "compare": {"architecture": ["lstm", "cnn"]}, "at": {"depth": 2}, "explanation": "overfitting"}]
    space = load_space(factor_space(tmp_path, claims=claims))
    assert space.claims[0].factor == "n_strips" and space.claims[0].levels == (48, 96)
    with pytest.raises(BadInput, match="is not a level"):
        load_space(factor_space(tmp_path, claims=[{**claims[0], "levels": [48, 100]}]))
    with pytest.raises(BadInput) as caught:
        with_overrides(space, dataset="mitdb")
    assert caught.value.key == "--dataset"


def test_a_tiny_study_along_a_dataset_factor_end_to_end(tmp_path):
    hyperparameters = {**TINY_SPACE["hyperparameters"], "architecture": {"role": "scientific", "values": ["cnn"]},
                       "depth": {"role": "scientific", "values": [1]}, "epochs": {"role": "fixed", "value": 2}}
    claims = [{"factor": "n_strips", "measure": "best_val_accuracy", "direction": "increases",
               "explanation": "overfitting"},
              {"factor": "n_strips", "measure": "final_gap", "direction": "decreases", "explanation": "overfitting"}]
    path = factor_space(tmp_path, hyperparameters=hyperparameters, claims=claims,
                        tuner={"name": "quasi_random", "trials_per_cell": 2, "seed": 5},
                        repeats={"seeds": 1}, analysis={"calibration_studies": 50})
    runs, reports = tmp_path / "runs", tmp_path / "reports"
    status, _, stderr = run_main(["run", str(path), "--runs-dir", str(runs), "--quiet"])
    assert status == 0, stderr
    run_dir = runs / "tiny"
    trials = read_trials(run_dir)
    assert list(trials.columns) == trial_columns(["n_strips"])
    assert sorted(trials.loc[trials["phase"] == "tune", "n_strips"]) == [48, 48, 96, 96]
    repeats = trials.loc[trials["phase"] == "repeat"]
    assert sorted(repeats["n_strips"]) == [48, 96] and (repeats["status"] == "completed").all()
    # the effective receptive field of every trial at its best epoch: a profile summing to 1, within the theory
    profiles = pd.read_csv(run_dir / "receptive_fields.csv", dtype={"trial_id": str})
    assert set(profiles["trial_id"]) == set(trials["trial_id"])
    assert profiles.groupby("trial_id")["mass"].sum().round(6).eq(1).all()
    assert profiles.groupby("trial_id").size().eq(32).all()  # one row per input sample (length 32)
    assert trials["effective_receptive_field"].between(1, 7).all()  # a single kernel-7 convolution
    assert (trials["receptive_field"] == 7).all()
    epochs = pd.read_csv(run_dir / "epochs.csv")
    assert list(epochs.columns) == epoch_columns(["n_strips"])
    assert epochs.groupby("trial_id")["n_strips"].nunique().max() == 1
    # each level trained on its own data: the manifest records the parameters and hash of each
    manifest = json.loads((run_dir / "manifest.json").read_text())
    levels = manifest["dataset"]["levels"]
    assert [level["factors"] for level in levels] == [{"n_strips": 48}, {"n_strips": 96}]
    for level in levels:
        parameters = {**{key: value for key, value in FACTOR_PARAMETERS.items() if key != "n_strips"},
                      "n_strips": level["factors"]["n_strips"]}
        data = load_dataset("synthetic_ecg", parameters)
        assert level["content_hash"] == data.content_hash()
        assert level["sizes"]["train"] == len(data.y_train)
    assert manifest["dataset"]["sizes"]["train"] == sum(level["sizes"]["train"] for level in levels)
    assert len({level["content_hash"] for level in levels}) == 2
    # a second run resumes (same data per level), a changed level is refused with nothing written
    status, _, stderr = run_main(["run", str(path), "--runs-dir", str(runs), "--quiet"])
    assert status == 0, stderr
    assert len(read_trials(run_dir)) == len(trials)
    changed = factor_space(tmp_path, {**FACTOR_PARAMETERS, "n_strips": {"role": "scientific", "values": [48, 100]}},
                           hyperparameters=hyperparameters, claims=claims,
                           tuner={"name": "quasi_random", "trials_per_cell": 2, "seed": 5}, repeats={"seeds": 1},
                           analysis={"calibration_studies": 50})
    before = snapshot(run_dir)
    status, _, stderr = run_main(["run", str(changed), "--runs-dir", str(runs)])
    assert_clean_exit(status, stderr)
    assert status == 2 and snapshot(run_dir) == before
    # the claim along the factor is decided in the report, stratified by nothing else
    status, _, stderr = run_main(["report", "tiny", "--runs-dir", str(runs), "--reports-dir", str(reports)])
    assert status == 0, stderr
    claims_table = pd.read_csv(reports / "tiny" / "claims.csv")
    assert len(claims_table) == 2 and all("n_strips" in row.to_string() for _, row in claims_table.iterrows())
    assert "final_gap" in claims_table.iloc[1].to_string()
    profile = pd.read_csv(reports / "tiny" / "data_profile.csv")  # the Why? evidence of the overfitting row
    assert sorted(profile["level"]) == [48, 96] and (profile["factor"] == "n_strips").all()
    assert "n_strips" in (reports / "tiny" / "report.md").read_text()
