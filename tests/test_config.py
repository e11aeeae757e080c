"""Search-space validation: every bad input is one BadInput naming the file, the key and what is allowed."""
from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import pytest

from study.config import AnalysisConfig, TrainingConfig, load_space, with_overrides
from study.errors import BadInput
from tests.conftest import TINY_SPACE, run_cli, write_space


def _hyperparameters(**changes):
    hyperparameters = copy.deepcopy(TINY_SPACE["hyperparameters"])
    hyperparameters.update(changes)
    return {"hyperparameters": hyperparameters}


def test_shipped_spaces_load_and_open_with_the_question_and_command():
    for path in sorted(Path("search_spaces").glob("*.yaml")):
        space = load_space(path)
        lines = path.read_text().splitlines()
        assert lines[0].startswith("# Question:"), path
        assert any(line.startswith("# Run: make") for line in lines if line.startswith("#")), path
        assert space.cells(), path
    assert {path.stem for path in Path("search_spaces").glob("*.yaml")} >= {"demo", "depth", "dropout",
                                                                           "weight_decay"}


def test_tiny_space_roles_cells_and_defaults(tiny_space_file):
    space = load_space(tiny_space_file)
    assert space.cells() == [{"architecture": "lstm", "depth": 1}, {"architecture": "lstm", "depth": 2},
                             {"architecture": "cnn", "depth": 1}, {"architecture": "cnn", "depth": 2}]
    assert [spec.name for spec in space.with_role("nuisance")] == ["dropout", "weight_decay", "learning_rate"]
    assert space.fixed_values()["weight_decay_type"] == "l2"  # omitted: fixed at its default
    assert space.hyperparameters["weight_decay"].log is True


@pytest.mark.parametrize("changes, key, words", [
    ({"colour": "red"}, "colour", "allowed: name, dataset"),
    ({"tuner": {"name": "annealing"}}, "tuner.name", "'random', 'quasi_random', 'bayesian', 'hyperband', 'grid'"),
    ({"tuner": {"trials_per_cell": 0}}, "tuner.trials_per_cell", ">= 1"),
    ({"tuner": {"trials_per_cell": "four"}}, "tuner.trials_per_cell", "integer"),
    ({"dataset": {"name": "ptbxl"}}, "dataset.name", "synthetic_ecg"),
    ({"dataset": {"name": "synthetic_ecg", "parameters": {"strips": 3}}}, "dataset.parameters.strips", "n_strips"),
    ({"name": "my study"}, "name", "letters, digits"),
    (_hyperparameters(architecture={"role": "scientific", "values": ["lstm", "transformer"]}),
     "hyperparameters.architecture.values", "'lstm', 'cnn'"),
    (_hyperparameters(depth={"role": "scientific", "values": [2, 0]}), "hyperparameters.depth.values", ">= 1"),
    (_hyperparameters(depth={"role": "scientific", "values": [2.5]}), "hyperparameters.depth.values", "integer"),
    (_hyperparameters(epochs={"role": "fixed", "value": 0}), "hyperparameters.epochs.value", ">= 1"),
    (_hyperparameters(dropout={"role": "nuisance", "min": 0.0, "max": 1.0}), "hyperparameters.dropout.max", "< 1"),
    (_hyperparameters(dropout={"role": "nuisance", "min": -0.1, "max": 0.5}), "hyperparameters.dropout.min", ">= 0"),
    (_hyperparameters(dropout={"role": "nuisance", "min": 0.4, "max": 0.2}), "hyperparameters.dropout", "empty range"),
    (_hyperparameters(dropout={"role": "nuisance", "values": []}), "hyperparameters.dropout.values", "non-empty"),
    (_hyperparameters(dropout={"role": "tuned", "values": [0.1]}), "hyperparameters.dropout.role", "'scientific'"),
    (_hyperparameters(dropout={"role": "nuisance", "min": 0.1, "max": 0.2, "spread": 1}),
     "hyperparameters.dropout.spread", "allowed: role, value, values"),
    (_hyperparameters(learning_rate={"role": "nuisance", "min": 0.0, "max": 0.1, "log": True}),
     "hyperparameters.learning_rate.min", "> 0"),
    (_hyperparameters(momentum={"role": "fixed", "value": 0.9}), "hyperparameters.momentum", "allowed: architecture"),
    (_hyperparameters(depth={"role": "scientific", "min": 1, "max": 4}), "hyperparameters.depth", "list of 'values'"),
    (_hyperparameters(width={"role": "fixed", "value": True}), "hyperparameters.width.value", "integer"),
    (_hyperparameters(weight_decay_type={"role": "fixed", "value": "l1"}), "hyperparameters.weight_decay_type.value",
     "'l2', 'adamw'"),
])
def test_bad_spaces_name_file_key_and_allowed(tmp_path, changes, key, words):
    path = write_space(tmp_path, changes)
    with pytest.raises(BadInput) as caught:
        load_space(path)
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message and f"key '{key}'" in message and words in message, message


def test_grid_needs_steps_and_hyperband_needs_fixed_epochs(tmp_path):
    grid = write_space(tmp_path, {"tuner": {"name": "grid"}})
    with pytest.raises(BadInput, match="hyperparameters.weight_decay.*step"):
        load_space(grid)
    hyperband = write_space(tmp_path, {"tuner": {"name": "hyperband"},
                                       **_hyperparameters(epochs={"role": "nuisance", "values": [2, 4]})})
    with pytest.raises(BadInput, match="hyperparameters.epochs.role"):
        load_space(hyperband)


def test_malformed_yaml_and_object_tags_are_rejected(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: demo\nhyperparameters: {depth: [1, 2\n")
    with pytest.raises(BadInput, match=r"broken.yaml: malformed YAML at line \d+"):
        load_space(broken)
    tagged = tmp_path / "tagged.yaml"
    tagged.write_text("name: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(BadInput, match="malformed YAML"):
        load_space(tagged)
    with pytest.raises(BadInput, match="file not found"):
        load_space(tmp_path / "absent.yaml")
    not_mapping = tmp_path / "list.yaml"
    not_mapping.write_text("- 1\n- 2\n")
    with pytest.raises(BadInput, match="must be a mapping"):
        load_space(not_mapping)


def test_overrides_are_validated(tiny_space_file):
    space = load_space(tiny_space_file)
    changed = with_overrides(space, name="other", tuner="bayesian", trials=3, epochs=5, seed=9)
    assert (changed.name, changed.tuner.name, changed.tuner.trials_per_cell, changed.tuner.seed) == \
        ("other", "bayesian", 3, 9)
    assert changed.fixed_values()["epochs"] == 5
    for overrides, key in [({"epochs": 0}, "--epochs"), ({"trials": -1}, "--trials"), ({"name": "../x"}, "--name"),
                           ({"tuner": "sgd"}, "--tuner"), ({"dataset": "nope"}, "dataset.name")]:
        with pytest.raises(BadInput, match=key.replace(".", r"\.")):
            with_overrides(space, **overrides)


def test_overrides_refuse_what_would_have_no_effect_or_change_the_design(tiny_space_file, tmp_path):
    space = load_space(tiny_space_file)
    for tuner in ("grid", "hyperband"):
        with pytest.raises(BadInput, match=f"--trials has no effect with the {tuner} tuner"):
            with_overrides(space, tuner=tuner, trials=3)
    grid_space = load_space(write_space(tmp_path, {"tuner": {"name": "grid"}, **_hyperparameters(
        weight_decay={"role": "nuisance", "values": [1e-5, 1e-3]})}, name="grid.yaml"))
    with pytest.raises(BadInput, match="key '--trials': --trials has no effect with the grid tuner"):
        with_overrides(grid_space, trials=3)
    # --tuner is applied first: switching a grid space to random makes --trials meaningful.
    assert with_overrides(grid_space, tuner="random", trials=3).tuner.trials_per_cell == 3
    assert with_overrides(space, tuner="quasi_random", trials=5).tuner == \
        dataclasses.replace(space.tuner, name="quasi_random", trials_per_cell=5)

    for role, values in (("scientific", [2, 4]), ("nuisance", [2, 4])):
        tuned = load_space(write_space(tmp_path, _hyperparameters(epochs={"role": role, "values": values}),
                                       name=f"{role}.yaml"))
        with pytest.raises(BadInput) as caught:
            with_overrides(tuned, epochs=5)
        assert f"key '--epochs': epochs is a {role} hyperparameter" in str(caught.value)
        assert tuned.hyperparameters["epochs"].values == (2, 4)
    with pytest.raises(BadInput, match=r"--epochs.*<= 10000"):
        with_overrides(space, epochs=10_001)
    with pytest.raises(BadInput, match=r"--trials.*<= 10000"):
        with_overrides(space, trials=10_001)
    with pytest.raises(BadInput, match=r"--seeds.*<= 1000"):
        with_overrides(space, repeat_seeds=1001)


def test_quasi_random_tuner_loads_with_its_trial_budget(tmp_path):
    space = load_space(write_space(tmp_path, {"tuner": {"name": "quasi_random", "trials_per_cell": 7}}))
    assert (space.tuner.name, space.tuner.trials_per_cell) == ("quasi_random", 7)


def test_analysis_section_defaults_values_and_manifest(tmp_path):
    defaults = load_space(write_space(tmp_path))
    assert defaults.analysis == AnalysisConfig()
    assert defaults.to_dict()["analysis"] == {
        "trained_above_chance": 0.1, "onset_tolerance": 0.05, "train_fall_fraction": 0.05,
        "target_train_loss": "auto", "target_quantile": 0.75, "alpha": 0.05, "permutations": 1999,
        "calibration_studies": 1000, "minimum_units": 3}
    assert not hasattr(TrainingConfig(), "onset_tolerance")
    chosen = {"trained_above_chance": 0.2, "onset_tolerance": 0, "train_fall_fraction": 0.0,
              "target_train_loss": 0.3, "target_quantile": 0.5, "alpha": 0.5, "permutations": 99,
              "calibration_studies": 0, "minimum_units": 2}
    space = load_space(write_space(tmp_path, {"analysis": chosen}, name="chosen.yaml"))
    assert space.analysis == AnalysisConfig(**chosen)
    assert isinstance(space.analysis.onset_tolerance, float) and isinstance(space.analysis.target_train_loss, float)
    manifest = json.loads(json.dumps(space.to_dict()))
    assert AnalysisConfig.from_mapping(manifest["analysis"]) == space.analysis
    assert AnalysisConfig.from_mapping(None) == AnalysisConfig.from_mapping({}) == AnalysisConfig()
    with pytest.raises(BadInput) as caught:
        AnalysisConfig.from_mapping({"alpha": 0.9})
    assert str(caught.value).startswith("manifest.json: key 'analysis.alpha'") and "(0, 0.5]" in str(caught.value)
    with pytest.raises(BadInput, match="manifest.json: key 'analysis.colour': unknown key"):
        AnalysisConfig.from_mapping({"colour": 1})


@pytest.mark.parametrize("analysis, key, words", [
    ({"trained_above_chance": 0}, "analysis.trained_above_chance", "in (0, 1)"),
    ({"trained_above_chance": 1.0}, "analysis.trained_above_chance", "in (0, 1)"),
    ({"onset_tolerance": -0.01}, "analysis.onset_tolerance", ">= 0"),
    ({"onset_tolerance": float("inf")}, "analysis.onset_tolerance", "finite"),
    ({"onset_tolerance": "small"}, "analysis.onset_tolerance", "finite number"),
    ({"train_fall_fraction": 1.0}, "analysis.train_fall_fraction", "in [0, 1)"),
    ({"train_fall_fraction": -0.1}, "analysis.train_fall_fraction", "in [0, 1)"),
    ({"target_train_loss": "automatic"}, "analysis.target_train_loss", "'auto' or a positive finite number"),
    ({"target_train_loss": 0}, "analysis.target_train_loss", "'auto' or a positive finite number"),
    ({"target_train_loss": float("nan")}, "analysis.target_train_loss", "positive finite"),
    ({"target_train_loss": True}, "analysis.target_train_loss", "positive finite"),
    ({"target_quantile": 1}, "analysis.target_quantile", "in (0, 1)"),
    ({"alpha": 0}, "analysis.alpha", "in (0, 0.5]"),
    ({"alpha": 0.51}, "analysis.alpha", "in (0, 0.5]"),
    ({"permutations": 98}, "analysis.permutations", ">= 99 and <= 100000"),
    ({"permutations": 100_001}, "analysis.permutations", ">= 99 and <= 100000"),
    ({"permutations": 999.0}, "analysis.permutations", "integer"),
    ({"calibration_studies": -1}, "analysis.calibration_studies", ">= 0 and <= 10000"),
    ({"calibration_studies": 10_001}, "analysis.calibration_studies", ">= 0 and <= 10000"),
    ({"minimum_units": 1}, "analysis.minimum_units", ">= 2"),
    ({"bootstrap": 1000}, "analysis.bootstrap", "allowed: trained_above_chance, onset_tolerance"),
])
def test_bad_analysis_values_name_file_key_and_allowed(tmp_path, analysis, key, words):
    path = write_space(tmp_path, {"analysis": analysis})
    with pytest.raises(BadInput) as caught:
        load_space(path)
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message and f"key '{key}'" in message and words in message, message


def test_onset_tolerance_moved_from_training_to_analysis(tmp_path):
    path = write_space(tmp_path, {"training": {"onset_tolerance": 0.1}})
    with pytest.raises(BadInput) as caught:
        load_space(path)
    assert str(caught.value).startswith(f"{path}: key 'training.onset_tolerance': moved to analysis.onset_tolerance")
    moved = load_space(write_space(tmp_path, {"training": {"class_weights": True},
                                              "analysis": {"onset_tolerance": 0.1}}, name="moved.yaml"))
    assert moved.analysis.onset_tolerance == 0.1 and moved.training.class_weights is True
    assert "onset_tolerance" not in moved.to_dict()["training"]


def test_cli_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path):
    bad = write_space(tmp_path, _hyperparameters(dropout={"role": "nuisance", "min": 0.0, "max": 1.5}))
    result = run_cli("run", str(bad), "--runs-dir", "runs", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert "hyperparameters.dropout.max" in lines[0] and "< 1" in lines[0]
    assert not (tmp_path / "runs").exists()
    result = run_cli("run", str(write_space(tmp_path)), "--name", "bad name!", "--runs-dir", "runs", cwd=tmp_path)
    assert result.returncode == 2 and "letters, digits" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()
    result = run_cli("run", str(write_space(tmp_path)), "--epochs", "many", cwd=tmp_path)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    result = run_cli("report", "no_such_study", "--runs-dir", "runs", "--reports-dir", "reports", cwd=tmp_path)
    assert result.returncode == 2 and "no study" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "reports").exists()
