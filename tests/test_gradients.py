"""Per-layer gradient norms, gradient clipping and parameter-matched widths (issue: Why? (1)).

Gradient norms are checked against a direct computation of the same gradient (the closed-form gradient of a
two-layer softmax network, in numpy) on every Keras backend installed, and across backends on an LSTM with the
same weights; the per-trial gradient measures on a hand-made table with exact values; and a tiny real study
with ``record_gradients`` and ``width: {role: fixed, match_parameters: N}`` end to end.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from study.config import space_from_dict
from study.errors import BadInput
from study.measures import gradient_measures, layer_gradient_norms
from study.tables import GRADIENT_COLUMNS, read_gradients, read_manifest, read_trials
from tests.conftest import PROJECT_ROOT, TINY_SPACE, run_main, write_space

BACKENDS = [backend for backend, module in (("tensorflow", "tensorflow"), ("jax", "jax"), ("torch", "torch"))
            if importlib.util.find_spec(module) is not None]

#: Run on one backend: the recorder's norms for a dense softmax network next to the closed-form gradient, and
#: the recorder's rows for an LSTM whose weights are set from a fixed numpy seed.
_BACKEND_SCRIPT = r"""
import json
import numpy as np
import keras
from keras import layers
from study.recording import gradient_norm_rows

rng = np.random.default_rng(0)
x = rng.normal(size=(16, 5)).astype("float32")
y = rng.integers(0, 2, size=16)

inputs = keras.Input(shape=(5,))
hidden = layers.Dense(3, activation="relu", name="hidden")(inputs)
outputs = layers.Dense(2, activation="softmax", name="classifier")(hidden)
dense = keras.Model(inputs, outputs)
dense.set_weights([rng.normal(size=w.shape).astype("float32") for w in dense.get_weights()])
w1, b1, w2, b2 = [np.asarray(w, dtype=np.float64) for w in dense.get_weights()]
pre = x @ w1 + b1
h = np.maximum(pre, 0.0)
logits = h @ w2 + b2
p = np.exp(logits - logits.max(axis=1, keepdims=True))
p /= p.sum(axis=1, keepdims=True)
delta = (p - np.eye(2)[y]) / len(y)           # d mean cross-entropy / d logits
back = (delta @ w2.T) * (pre > 0)
direct = {("hidden", "input_kernel"): np.linalg.norm(x.T @ back), ("hidden", "bias"): np.linalg.norm(back.sum(0)),
          ("classifier", "input_kernel"): np.linalg.norm(h.T @ delta),
          ("classifier", "bias"): np.linalg.norm(delta.sum(0))}
recorded = {(row["layer"], row["kind"]): row["norm"] for row in gradient_norm_rows(dense, x, y)}

sequences = rng.normal(size=(8, 12, 1)).astype("float32")
labels = rng.integers(0, 3, size=8)
inputs = keras.Input(shape=(12, 1))
hidden = layers.LSTM(4, return_sequences=True, name="lstm_1")(inputs)
hidden = layers.LSTM(4, name="lstm_2")(hidden)
outputs = layers.Dense(3, activation="softmax", name="classifier")(hidden)
lstm = keras.Model(inputs, outputs)
weights = np.random.default_rng(1)
lstm.set_weights([weights.normal(scale=0.5, size=w.shape).astype("float32") for w in lstm.get_weights()])
rows = gradient_norm_rows(lstm, sequences, labels)
print(json.dumps({"direct": {"/".join(k): v for k, v in direct.items()},
                  "recorded": {"/".join(k): v for k, v in recorded.items()},
                  "lstm": [[row["layer"], row["layer_index"], row["kind"], row["norm"]] for row in rows]}))
"""


@pytest.fixture(scope="module", autouse=True)
def _backend_runs(request: pytest.FixtureRequest) -> Iterator[dict[str, subprocess.Popen]]:
    """Start the script on every installed backend when the module starts, if a selected test reads its results:
    one subprocess per backend, side by side and beside the in-process tests above the backend tests (which come
    last in this file)."""
    wanted = any(item.module is request.module and "backend_results" in item.fixturenames
                 for item in request.session.items)
    runs = {}
    for backend in BACKENDS if wanted else ():
        environment = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(PROJECT_ROOT),
                       "TF_CPP_MIN_LOG_LEVEL": "3"}
        runs[backend] = subprocess.Popen([sys.executable, "-c", _BACKEND_SCRIPT], cwd=PROJECT_ROOT, env=environment,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    yield runs
    for run in runs.values():
        if run.poll() is None:
            run.kill()
            run.wait()


@pytest.fixture(scope="module")
def backend_results(_backend_runs: dict[str, subprocess.Popen]) -> dict[str, dict]:
    """The script's results on every installed backend."""
    results = {}
    for backend, run in _backend_runs.items():
        stdout, stderr = run.communicate(timeout=300)
        assert run.returncode == 0, f"{backend}: {stderr[-2000:]}"
        results[backend] = json.loads(stdout.strip().splitlines()[-1])
    assert set(results) == set(BACKENDS)
    return results


def _gradient_rows(trial: str, epoch: int, first: float, last: float) -> list[dict]:
    """Three weighted layers: two hidden (norms ``first`` and ``last``) and the classifier."""
    return [{"trial_id": trial, "phase": "tune", "epoch": epoch, "layer": "a", "layer_index": 1,
             "kind": "input_kernel", "norm": first},
            {"trial_id": trial, "phase": "tune", "epoch": epoch, "layer": "a", "layer_index": 1, "kind": "bias",
             "norm": 100.0},
            {"trial_id": trial, "phase": "tune", "epoch": epoch, "layer": "b", "layer_index": 2,
             "kind": "recurrent_kernel", "norm": last},
            {"trial_id": trial, "phase": "tune", "epoch": epoch, "layer": "classifier", "layer_index": 3,
             "kind": "input_kernel", "norm": 5.0}]


def test_gradient_measures_exact_values():
    rows = (_gradient_rows("1", 0, 0.1, 1.0) + _gradient_rows("1", 1, 1.0, 100.0)
            + _gradient_rows("1", 2, 1.0, 10.0) + _gradient_rows("1", 3, 3.0, 3.0))
    measured = gradient_measures(pd.DataFrame(rows, columns=GRADIENT_COLUMNS)).set_index("trial_id")
    assert measured.loc["1", "gradient_ratio_at_init"] == pytest.approx(-1.0)
    assert measured.loc["1", "gradient_ratio"] == pytest.approx(-1.0)  # median of -2, -1, 0
    assert measured.loc["1", "gradient_layers"] == 2


def test_layer_norm_sums_kernel_kinds_in_quadrature_and_leaves_out_biases():
    rows = pd.DataFrame([
        {"trial_id": "7", "phase": "tune", "epoch": 1, "layer": "lstm_1", "layer_index": 1, "kind": "input_kernel",
         "norm": 3.0},
        {"trial_id": "7", "phase": "tune", "epoch": 1, "layer": "lstm_1", "layer_index": 1,
         "kind": "recurrent_kernel", "norm": 4.0},
        {"trial_id": "7", "phase": "tune", "epoch": 1, "layer": "lstm_1", "layer_index": 1, "kind": "bias",
         "norm": 12.0},
        {"trial_id": "7", "phase": "tune", "epoch": 1, "layer": "batchnorm", "layer_index": 2,
         "kind": "normalisation", "norm": 1.0}])
    norms = layer_gradient_norms(rows)
    assert norms["norm"].tolist() == [5.0] and norms["layer_index"].tolist() == [1]


def test_match_parameters_is_the_parameter_budget_and_bad_budgets_are_named():
    hyperparameters = {**TINY_SPACE["hyperparameters"], "width": {"role": "fixed", "match_parameters": 3000}}
    space = space_from_dict({**TINY_SPACE, "hyperparameters": hyperparameters}, source="s.yaml")
    assert space.hyperparameters["parameter_budget"].fixed_value == 3000
    for bad, words in ((0, "parameter count"), (2.5, "parameter count"), ("many", "parameter count")):
        with pytest.raises(BadInput, match=words) as caught:
            space_from_dict({**TINY_SPACE, "hyperparameters": {**hyperparameters, "width": {
                "role": "fixed", "match_parameters": bad}}}, source="s.yaml")
        assert "width.match_parameters" in str(caught.value)
    with pytest.raises(BadInput, match="role fixed"):
        space_from_dict({**TINY_SPACE, "hyperparameters": {**hyperparameters, "width": {
            "role": "nuisance", "match_parameters": 3000}}}, source="s.yaml")
    with pytest.raises(BadInput, match="not both"):
        space_from_dict({**TINY_SPACE, "hyperparameters": {**hyperparameters, "parameter_budget": {
            "role": "fixed", "value": 10}}}, source="s.yaml")
    with pytest.raises(BadInput, match="clipnorm"):
        space_from_dict({**TINY_SPACE, "hyperparameters": {**hyperparameters, "clipnorm": {
            "role": "fixed", "value": -1.0}}}, source="s.yaml")


def test_an_unmeetable_parameter_budget_is_bad_input_before_anything_is_written(tmp_path):
    hyperparameters = {**TINY_SPACE["hyperparameters"], "width": {"role": "fixed", "match_parameters": 10}}
    space_file = write_space(tmp_path, {"hyperparameters": hyperparameters})
    status, _, err = run_main(["run", str(space_file), "--runs-dir", str(tmp_path / "runs"), "--quiet"])
    assert status == 2
    assert err.count("\n") == 1 and "width.match_parameters" in err and "10" in err, err
    assert not (tmp_path / "runs" / "tiny").exists()


def test_tiny_study_records_gradients_receptive_fields_and_matched_widths(tmp_path):
    hyperparameters = {**TINY_SPACE["hyperparameters"], "width": {"role": "fixed", "match_parameters": 20000},
                       "clipnorm": {"role": "nuisance", "values": [0.5, 2.0]},
                       "epochs": {"role": "fixed", "value": 2}}
    space_file = write_space(tmp_path, {"hyperparameters": hyperparameters, "repeats": {"seeds": 0},
                                        "tuner": {"name": "random", "trials_per_cell": 1, "seed": 5},
                                        "training": {"record_gradients": True}})
    status, _, err = run_main(["run", str(space_file), "--runs-dir", str(tmp_path / "runs"), "--quiet"])
    assert status == 0, err
    run_dir = tmp_path / "runs" / "tiny"
    trials = read_trials(run_dir)
    assert len(trials) == 4 and (trials["status"] == "completed").all()
    assert ((trials["parameter_count"] - 20000).abs() <= 0.05 * 20000).all()
    assert (trials["parameter_budget"] == 20000).all() and set(trials["clipnorm"]) <= {0.5, 2.0}
    assert ((trials["gradient_seconds"] > 0) & (trials["gradient_seconds"] < trials["seconds"])).all()
    matched = {(row["architecture"], row["depth"]): row for row in read_manifest(run_dir)["matched_widths"]}
    for row in trials.itertuples():
        assert matched[(row.architecture, row.depth)]["width"] == row.width
        assert matched[(row.architecture, row.depth)]["parameter_count"] == row.parameter_count
    lstm = trials.loc[trials["architecture"] == "lstm"]
    assert (lstm["receptive_field"] == 32).all()  # a recurrent model sees the whole 32-sample strip
    cnn = trials.loc[trials["architecture"] == "cnn"].set_index("depth")
    assert cnn.loc[1, "receptive_field"] == 7
    gradients = read_gradients(run_dir)
    assert list(gradients.columns) == GRADIENT_COLUMNS
    assert set(gradients["trial_id"]) == set(trials["trial_id"]) and set(gradients["epoch"]) == {0, 1, 2}
    assert not gradients.duplicated(["trial_id", "epoch", "layer", "kind"]).any()
    assert set(gradients.loc[gradients["layer"].str.startswith("conv"), "kind"]) == {"convolution_kernel"}


def test_a_gradient_claim_without_recorded_gradients_and_bad_flags_are_bad_input():
    claims = [{"factor": "depth", "measure": "gradient_ratio", "direction": "decreases"}]
    with pytest.raises(BadInput, match="record_gradients") as caught:
        space_from_dict({**TINY_SPACE, "claims": claims}, source="s.yaml")
    assert "claims[0].measure" in str(caught.value)
    space = space_from_dict({**TINY_SPACE, "claims": claims, "training": {"record_gradients": True}}, source="s.yaml")
    assert space.training.record_gradients and space.claims[0].measure == "gradient_ratio"
    with pytest.raises(BadInput, match="true or false") as caught:
        space_from_dict({**TINY_SPACE, "training": {"record_gradients": "yes"}}, source="s.yaml")
    assert "training.record_gradients" in str(caught.value)
    with pytest.raises(BadInput, match="vanishing_gradients") as caught:
        space_from_dict({**TINY_SPACE, "claims": [{**claims[0], "measure": "gap_at_best", "explanation": "magic"}]},
                        source="s.yaml")
    assert "claims[0].explanation" in str(caught.value)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradient_norms_equal_the_closed_form_gradient(backend_results, backend):
    result = backend_results[backend]
    assert set(result["recorded"]) == set(result["direct"])
    for key, direct in result["direct"].items():
        assert result["recorded"][key] == pytest.approx(direct, rel=1e-4, abs=1e-7), (backend, key)


def test_lstm_gradient_norms_agree_across_backends_and_split_by_kind(backend_results):
    reference = backend_results[BACKENDS[0]]["lstm"]
    kinds = {(layer, kind) for layer, _, kind, _ in reference}
    assert kinds == {("lstm_1", "input_kernel"), ("lstm_1", "recurrent_kernel"), ("lstm_1", "bias"),
                     ("lstm_2", "input_kernel"), ("lstm_2", "recurrent_kernel"), ("lstm_2", "bias"),
                     ("classifier", "input_kernel"), ("classifier", "bias")}
    assert [index for _, index, _, _ in reference][::3][:2] == [1, 2]
    assert all(np.isfinite(norm) and norm > 0 for *_, norm in reference)
    for backend in BACKENDS[1:]:
        other = backend_results[backend]["lstm"]
        assert [row[:3] for row in other] == [row[:3] for row in reference]
        np.testing.assert_allclose([row[3] for row in other], [row[3] for row in reference], rtol=2e-3,
                                   err_msg=f"{backend} against {BACKENDS[0]}")
