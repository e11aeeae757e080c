"""Stricter search spaces: names, duplicate keys, null sections, upper bounds, steps and dataset parameters.

Every case writes a YAML file and expects one BadInput line naming the file, the key and what is allowed.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from study import config
from study.config import load_space
from study.errors import BadInput
from tests.conftest import PROJECT_ROOT, TINY_SPACE, write_space


def _hyperparameters(**changes) -> dict:
    hyperparameters = copy.deepcopy(TINY_SPACE["hyperparameters"])
    hyperparameters.update(changes)
    return {"hyperparameters": hyperparameters}


def _dataset(**parameters) -> dict:
    return {"dataset": {"name": "synthetic_ecg", "parameters": {**TINY_SPACE["dataset"]["parameters"], **parameters}}}


def _rejected(path: Path, key: str, *words: str) -> str:
    with pytest.raises(BadInput) as caught:
        load_space(path)
    message = str(caught.value)
    assert "\n" not in message, message
    assert message.startswith(f"{path}: key '{key}': "), message
    for word in words:
        assert word in message, message
    return message


def _write(tmp_path: Path, text: str, name: str = "space.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


TAIL = ("hyperparameters:\n"
        "  architecture: {role: scientific, values: [lstm]}\n"
        "  depth: {role: scientific, values: [1]}\n")


def test_study_name_with_a_trailing_newline_is_rejected(tmp_path):
    _rejected(_write(tmp_path, 'name: "demo\\n"\n' + TAIL), "name", "letters, digits, '-' and '_'")
    assert load_space(_write(tmp_path, "name: demo\n" + TAIL, name="ok.yaml")).name == "demo"
    with pytest.raises(BadInput, match="letters, digits"):
        config.check_study_name("demo\n", source="command line", key="--name")


def test_duplicate_keys_are_rejected_naming_the_key(tmp_path):
    top = _write(tmp_path, "name: one\nname: two\n" + TAIL, name="top.yaml")
    message = _rejected(top, "name", "duplicate key 'name' at line 2", "each key once")
    assert "two" not in message
    nested = _write(tmp_path, "tuner: {name: random, trials_per_cell: 2, trials_per_cell: 3}\n" + TAIL,
                    name="nested.yaml")
    _rejected(nested, "trials_per_cell", "duplicate key 'trials_per_cell' at line 1")
    spec = _write(tmp_path, TAIL + "  dropout:\n    role: nuisance\n    min: 0.0\n    max: 0.5\n    min: 0.1\n",
                  name="spec.yaml")
    _rejected(spec, "min", "duplicate key 'min' at line 8")
    # Safe loading is kept: object tags are still refused.
    tagged = _write(tmp_path, "name: !!python/object/apply:os.system ['echo hacked']\n" + TAIL, name="tagged.yaml")
    with pytest.raises(BadInput, match="malformed YAML"):
        load_space(tagged)


@pytest.mark.parametrize("section", ["dataset", "tuner", "repeats", "training", "hyperparameters", "analysis"])
def test_null_sections_are_rejected(tmp_path, section):
    path = write_space(tmp_path, {section: None})
    _rejected(path, section, "mapping")


def test_omitted_sections_take_their_defaults(tmp_path):
    path = _write(tmp_path, "name: bare\n" + TAIL)
    space = load_space(path)
    assert (space.tuner, space.training, space.analysis, space.repeat_seeds) == \
        (config.TunerConfig(), config.TrainingConfig(), config.AnalysisConfig(), 5)


@pytest.mark.parametrize("name, spec, key, allowed", [
    ("epochs", {"role": "fixed", "value": 10_001}, "value", "<= 10000"),
    ("epochs", {"role": "nuisance", "min": 1, "max": 10_001}, "max", "<= 10000"),
    ("batch_size", {"role": "fixed", "value": 65_537}, "value", "<= 65536"),
    ("batch_size", {"role": "nuisance", "values": [32, 70_000]}, "values", "<= 65536"),
    ("learning_rate", {"role": "nuisance", "values": [0.1, 10.5]}, "values", "<= 10"),
    ("learning_rate", {"role": "nuisance", "min": 0.001, "max": 11.0, "log": True}, "max", "<= 10"),
    ("weight_decay", {"role": "nuisance", "min": 0.0, "max": 2.0}, "max", "<= 1"),
    ("weight_decay", {"role": "fixed", "value": 1.5}, "value", "<= 1"),
    ("dropout", {"role": "fixed", "value": 1.0}, "value", "< 1"),
    ("recurrent_dropout", {"role": "nuisance", "values": [0.0, 1.0]}, "values", "< 1"),
    ("depth", {"role": "scientific", "values": [1, 65]}, "values", "<= 64"),
    ("width", {"role": "fixed", "value": 4097}, "value", "<= 4096"),
    ("width", {"role": "nuisance", "min": 2000, "max": 5000, "step": 1000}, "max", "<= 4096"),
    ("kernel_size", {"role": "nuisance", "values": [3, 1025]}, "values", "<= 1024"),
])
def test_hyperparameter_upper_bounds(tmp_path, name, spec, key, allowed):
    path = write_space(tmp_path, _hyperparameters(**{name: spec}))
    _rejected(path, f"hyperparameters.{name}.{key}", "out of range", allowed)


def test_upper_bounds_themselves_are_allowed(tmp_path):
    at_limits = _hyperparameters(
        epochs={"role": "fixed", "value": config.MAX_EPOCHS},
        batch_size={"role": "fixed", "value": config.MAX_BATCH_SIZE},
        learning_rate={"role": "nuisance", "min": 1.0, "max": config.MAX_LEARNING_RATE},
        weight_decay={"role": "nuisance", "values": [0.0, config.MAX_WEIGHT_DECAY]},
        depth={"role": "scientific", "values": [1, config.MAX_DEPTH]},
        width={"role": "fixed", "value": config.MAX_WIDTH},
        kernel_size={"role": "fixed", "value": config.MAX_KERNEL_SIZE},
    )
    path = write_space(tmp_path, {**at_limits, "tuner": {"trials_per_cell": config.MAX_TRIALS_PER_CELL},
                                  "repeats": {"seeds": config.MAX_REPEAT_SEEDS}})
    space = load_space(path)
    assert space.fixed_values()["epochs"] == 10_000 and space.tuner.trials_per_cell == 10_000
    assert space.repeat_seeds == 1000 and space.hyperparameters["depth"].values == (1, 64)


def test_budget_upper_bounds(tmp_path):
    _rejected(write_space(tmp_path, {"tuner": {"trials_per_cell": 10_001}}), "tuner.trials_per_cell", "<= 10000")
    _rejected(write_space(tmp_path, {"repeats": {"seeds": 1001}}, name="seeds.yaml"), "repeats.seeds", "<= 1000")


def test_readme_documents_the_upper_bounds():
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    line = next(line for line in readme.splitlines() if line.startswith("Upper bounds"))
    for name, bound in [("epochs", config.MAX_EPOCHS), ("batch_size", config.MAX_BATCH_SIZE),
                        ("learning_rate", config.MAX_LEARNING_RATE), ("weight_decay", config.MAX_WEIGHT_DECAY),
                        ("depth", config.MAX_DEPTH), ("width", config.MAX_WIDTH),
                        ("kernel_size", config.MAX_KERNEL_SIZE), ("trials_per_cell", config.MAX_TRIALS_PER_CELL),
                        ("repeats.seeds", config.MAX_REPEAT_SEEDS)]:
        assert re.search(rf"`{re.escape(name)}` <= {bound:g}\b", line), (name, line)


@pytest.mark.parametrize("name, spec, allowed", [
    ("dropout", {"role": "nuisance", "min": 0.0, "max": 0.3, "step": 0.5}, "allowed: a step in (0, 0.3]"),
    ("batch_size", {"role": "nuisance", "min": 16, "max": 64, "step": 64}, "allowed: a step in (0, 48]"),
    ("weight_decay", {"role": "nuisance", "min": 1.0e-4, "max": 1.0e-3, "log": True, "step": 100},
     "allowed: a factor in (1, 10]"),
])
def test_step_larger_than_its_range_is_rejected(tmp_path, name, spec, allowed):
    path = write_space(tmp_path, _hyperparameters(**{name: spec}))
    _rejected(path, f"hyperparameters.{name}.step", "larger than the range", allowed)


def test_step_equal_to_its_range_is_allowed(tmp_path):
    path = write_space(tmp_path, _hyperparameters(dropout={"role": "nuisance", "min": 0.0, "max": 0.5, "step": 0.5}))
    assert load_space(path).hyperparameters["dropout"].step == 0.5
    # 0.3 - 0.1 is 0.19999999999999998 in floating point: a step of 0.2 still spans the range exactly.
    path = write_space(tmp_path, _hyperparameters(dropout={"role": "nuisance", "min": 0.1, "max": 0.3, "step": 0.2}),
                       name="rounding.yaml")
    assert load_space(path).hyperparameters["dropout"].step == 0.2


@pytest.mark.parametrize("parameters, key, words", [
    ({"n_strips": "many"}, "n_strips", "integer >= 12"),
    ({"n_strips": 5}, "n_strips", "integer >= 12"),
    ({"n_strips": 64.0}, "n_strips", "integer"),
    ({"length": 8}, "length", "integer >= 16"),
    ({"sampling_rate": -1}, "sampling_rate", "> 0"),
    ({"sampling_rate": float("nan")}, "sampling_rate", "> 0"),
    ({"noise": float("inf")}, "noise", ">= 0"),
    ({"label_noise": 1.0}, "label_noise", "[0, 1)"),
    ({"seed": -1}, "seed", "integer >= 0"),
    ({"seed": True}, "seed", "integer >= 0"),
    ({"validation_fraction": 0}, "validation_fraction", "a fraction in (0, 1)"),
    ({"test_fraction": "0.2"}, "test_fraction", "a fraction in (0, 1)"),
    ({"validation_fraction": 0.5, "test_fraction": 0.5}, "test_fraction", "a sum below 1"),
])
def test_dataset_parameters_are_checked_when_the_space_loads(tmp_path, parameters, key, words):
    path = write_space(tmp_path, _dataset(**parameters))
    _rejected(path, f"dataset.parameters.{key}", words)


def test_split_parameters_of_other_datasets_are_checked_when_the_space_loads(tmp_path):
    path = write_space(tmp_path, {"dataset": {"name": "ucr:nowhere", "parameters": {"validation_fraction": 1.5}}})
    _rejected(path, "dataset.parameters.validation_fraction", "between 0 and 1")
    path = write_space(tmp_path, {"dataset": {"name": "cinc2017", "parameters": {"seed": -2}}}, name="cinc.yaml")
    _rejected(path, "dataset.parameters.seed", "non-negative integer")


@pytest.mark.parametrize("dataset, parameters, key", [
    ("mitdb", {"window_after": -1}, "dataset.parameters.window_after"),
    ("mitdb", {"normalise": "zscore"}, "dataset.parameters.normalise"),
    ("mitdb", {"records": ["999"]}, "dataset.parameters.records"),
    ("mitdb", {"validation_records": 0}, "dataset.parameters.validation_records"),
    ("cinc2017", {"sampling_rate": 0}, "dataset.parameters.sampling_rate"),
    ("cinc2017", {"crop": "middle"}, "dataset.parameters.crop"),
    ("cinc2017", {"records": "A00001"}, "dataset.parameters.records"),
])
def test_real_dataset_parameters_are_checked_when_the_space_loads(tmp_path, dataset, parameters, key):
    """Values are refused at load time, before any file of the database is read (the data directory is absent)."""
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump({"name": "x", "dataset": {"name": dataset, "parameters": parameters},
                                    "hyperparameters": {"architecture": {"role": "scientific",
                                                                         "values": ["lstm", "cnn"]}}}),
                    encoding="utf-8")
    with pytest.raises(BadInput) as caught:
        load_space(path)
    assert str(path) in str(caught.value) and key in str(caught.value)
