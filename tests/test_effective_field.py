"""Effective receptive fields (study.effective_field) against models whose answer is known exactly.

A single Conv1D of kernel ``k`` with equal weights, read by global average pooling, has an effective field of
exactly ``k`` samples, on every Keras backend installed (TensorFlow here, JAX and PyTorch in a subprocess each,
started first so that they run while this process tests TensorFlow); the three backends give one LSTM with the
same weights the same profile; the profiles of real builders stay inside their theoretical field; and the
95%-mass size is checked on hand-made mass arrays.
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from typing import Any, Iterator

import numpy as np
import pytest

from tests.conftest import PROJECT_ROOT

KERNEL_SIZES = (1, 3, 7)
PADDINGS = ("valid", "same")
#: The backends run in a subprocess each (TensorFlow runs in this process), where installed.
OTHER_BACKENDS = [backend for backend in ("jax", "torch") if importlib.util.find_spec(backend) is not None]


def _single_convolution(kernel_size: int, padding: str, length: int = 24) -> Any:
    """Input -> Conv1D(1, kernel_size) with every weight 1 -> global average pooling -> softmax."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=(length, 1))
    hidden = layers.Conv1D(1, kernel_size, padding=padding, use_bias=False, name="convolution")(inputs)
    hidden = layers.GlobalAveragePooling1D(name="global_pool")(hidden)
    outputs = layers.Dense(2, activation="softmax", name="classifier")(hidden)
    model = keras.Model(inputs, outputs)
    model.get_layer("convolution").set_weights([np.ones((kernel_size, 1, 1), dtype="float32")])
    return model


def _small_lstm(seed: int = 1) -> Any:
    """An LSTM(4) over 12 steps of 2 channels, weights from a fixed numpy seed (the same on every backend)."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=(12, 2))
    hidden = layers.LSTM(4, name="lstm_1")(inputs)
    outputs = layers.Dense(3, activation="softmax", name="classifier")(hidden)
    model = keras.Model(inputs, outputs)
    weights = np.random.default_rng(seed)
    model.set_weights([weights.normal(scale=0.5, size=w.shape).astype("float32") for w in model.get_weights()])
    return model


def measure_this_backend() -> dict[str, Any]:
    """The measurements every backend makes: per padding and kernel size, the 95% field and the offsets
    holding mass; the small LSTM's offsets and mass."""
    from study.effective_field import effective_field_profile, effective_receptive_field

    batch = np.random.default_rng(0).normal(size=(4, 24, 1)).astype("float32")
    convolutions = {}
    for padding in PADDINGS:
        for kernel_size in KERNEL_SIZES:
            offsets, mass = effective_field_profile(_single_convolution(kernel_size, padding), batch)
            convolutions[f"{padding}/{kernel_size}"] = {"field": effective_receptive_field(mass),
                                                        "support": offsets[mass > 0].tolist()}
    sequences = np.random.default_rng(2).normal(size=(6, 12, 2)).astype("float32")
    offsets, mass = effective_field_profile(_small_lstm(), sequences)
    # Two LSTMs of one structure share one compiled function, which must read each model's own weights.
    from study import effective_field

    stored = len(effective_field._FIELD_FUNCTIONS)
    shared = [effective_field_profile(_small_lstm(seed), sequences, structure="small_lstm")[1] for seed in (1, 4)]
    alone = effective_field_profile(_small_lstm(4), sequences)[1]
    return {"convolutions": convolutions, "lstm": {"offsets": offsets.tolist(), "mass": mass.tolist()},
            "shared": {"masses": [values.tolist() for values in shared], "alone": alone.tolist(),
                       "functions_added": len(effective_field._FIELD_FUNCTIONS) - stored}}


_SCRIPT = "import json\nfrom tests.test_effective_field import measure_this_backend\n" \
          "print(json.dumps(measure_this_backend()))\n"


@pytest.fixture(scope="module")
def other_backend_processes() -> Iterator[dict[str, subprocess.Popen]]:
    """One subprocess per other installed backend, started before TensorFlow's measurements so that they
    run alongside them."""
    processes = {}
    for backend in OTHER_BACKENDS:
        environment = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(PROJECT_ROOT),
                       "TF_CPP_MIN_LOG_LEVEL": "3"}
        processes[backend] = subprocess.Popen([sys.executable, "-c", _SCRIPT], cwd=PROJECT_ROOT, env=environment,
                                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    yield processes
    for process in processes.values():
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def backend_results(other_backend_processes) -> dict[str, dict[str, Any]]:
    """Every installed backend's measurements, TensorFlow's from this process."""
    import keras

    assert keras.backend.backend() == "tensorflow"
    results = {"tensorflow": measure_this_backend()}
    for backend, process in other_backend_processes.items():
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, f"{backend}: {err[-2000:]}"
        results[backend] = json.loads(out.strip().splitlines()[-1])
    return results


@pytest.mark.parametrize("backend", ["tensorflow", *OTHER_BACKENDS])
def test_a_single_convolution_has_an_effective_field_of_its_kernel_size(backend_results, backend):
    convolutions = backend_results[backend]["convolutions"]
    for padding in PADDINGS:
        for kernel_size in KERNEL_SIZES:
            measured = convolutions[f"{padding}/{kernel_size}"]
            assert measured["field"] == kernel_size, (backend, padding, kernel_size)
            support = measured["support"]
            assert support == list(np.arange(support[0], support[0] + kernel_size, dtype=float)), (padding, support)
            if padding == "same":
                assert support[0] == -(kernel_size // 2), support


def test_the_backends_agree_on_an_lstm_with_the_same_weights(backend_results):
    reference = backend_results["tensorflow"]["lstm"]
    assert reference["offsets"] == list(np.arange(-11.0, 1.0))
    assert sum(reference["mass"]) == pytest.approx(1.0) and min(reference["mass"]) > 0
    for backend in OTHER_BACKENDS:
        other = backend_results[backend]["lstm"]
        assert other["offsets"] == reference["offsets"]
        np.testing.assert_allclose(other["mass"], reference["mass"], atol=1e-4, err_msg=backend)


@pytest.mark.parametrize("backend", ["tensorflow", *OTHER_BACKENDS])
def test_models_of_one_structure_share_a_compiled_function_that_reads_their_own_weights(backend_results, backend):
    reference = backend_results[backend]["lstm"]["mass"]
    shared = backend_results[backend]["shared"]
    np.testing.assert_allclose(shared["masses"][0], reference, rtol=1e-5, atol=1e-7)  # compiled = eager
    np.testing.assert_allclose(shared["masses"][1], shared["alone"], rtol=1e-5, atol=1e-7)  # its own weights
    assert np.abs(np.subtract(shared["masses"][1], shared["masses"][0])).max() > 1e-3  # the weights matter
    assert shared["functions_added"] == (0 if backend == "torch" else 1)  # PyTorch runs eagerly


def test_one_compiled_function_per_cell_raises_no_retracing_warning():
    """A study compiles one function per cell, so TensorFlow sees a new function of the same code traced at each
    cell's first trial and, after five, warns of 'excessive' retracing: a warning a user should not see."""
    import logging

    import keras

    from study.effective_field import effective_field_profile

    if keras.backend.backend() != "tensorflow":
        pytest.skip("the warning is TensorFlow's")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("tensorflow")
    logger.addHandler(handler)
    try:
        batch = np.random.default_rng(5).normal(size=(2, 24, 1)).astype("float32")
        for kernel_size in range(1, 9):  # eight cells: eight keys, one function each
            effective_field_profile(_single_convolution(kernel_size, "same"), batch, structure="retracing_test")
    finally:
        logger.removeHandler(handler)
    assert not [record for record in records if "retracing" in record.getMessage()]


def test_builder_profiles_stay_inside_the_theoretical_field():
    from study.effective_field import effective_field_profile, effective_receptive_field
    from study.models import build_model, receptive_field

    batch = np.random.default_rng(3).normal(size=(4, 48, 1)).astype("float32")
    for values in ({"architecture": "cnn", "depth": 2, "kernel_size": 7, "width": 4},
                   {"architecture": "tcn", "depth": 2, "kernel_size": 3, "width": 4}):
        model = build_model(values, (48, 1), 3)
        offsets, mass = effective_field_profile(model, batch)
        assert offsets.dtype == mass.dtype == np.float64 and mass.sum() == pytest.approx(1.0)
        support = offsets[mass > 0]
        theoretical = receptive_field(model)
        assert support.max() - support.min() + 1 <= theoretical, (values, support, theoretical)
        assert 1 <= effective_receptive_field(mass) <= theoretical
        if values["architecture"] == "tcn":  # causal: the last step sees only the past
            assert support.max() <= 0
    model = build_model({"architecture": "lstm", "depth": 1, "width": 4}, (10, 1), 3)
    offsets, mass = effective_field_profile(model, batch[:, :10])
    assert offsets.tolist() == list(np.arange(-9.0, 1.0)) and mass[0] > 0  # recurrent: the whole strip


def test_a_dead_model_has_a_nan_profile_and_bad_arguments_are_named():
    import keras

    from study.effective_field import effective_field_profile, effective_receptive_field

    model = _single_convolution(3, "same")
    model.get_layer("convolution").set_weights([np.zeros((3, 1, 1), dtype="float32")])
    offsets, mass = effective_field_profile(model, np.ones((2, 24, 1)))
    assert offsets.tolist() == list(np.arange(-12.0, 12.0)) and np.isnan(mass).all()
    assert math.isnan(effective_receptive_field(mass))
    inputs = keras.Input(shape=(5,))
    flat = keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="classifier")(inputs))
    with pytest.raises(ValueError, match="time axis"):
        effective_field_profile(flat, np.ones((2, 5)))
    with pytest.raises(ValueError, match="shape"):
        effective_field_profile(_single_convolution(3, "same"), np.ones((2, 24)))
    with pytest.raises(ValueError, match="do not fit"):
        effective_field_profile(_single_convolution(3, "same"), np.ones((2, 20, 1)))


def test_effective_receptive_field_exact_values():
    from study.effective_field import effective_receptive_field

    assert effective_receptive_field(np.array([0.5, 0.3, 0.15, 0.05])) == 3
    assert effective_receptive_field(np.array([0.05, 0.15, 0.5, 0.3])) == 3  # order does not matter
    assert effective_receptive_field(np.array([5.0, 3.0, 1.5, 0.5])) == 3  # nor normalisation
    assert effective_receptive_field(np.full(7, 1 / 7)) == 7
    assert effective_receptive_field(np.full(20, 1 / 20)) == 19  # 19 * 0.05 is 0.95 up to rounding
    assert effective_receptive_field(np.array([0.0, 1.0, 0.0])) == 1
    assert effective_receptive_field(np.array([0.5, 0.3, 0.15, 0.05]), share=1.0) == 4
    assert effective_receptive_field(np.array([0.5, 0.3, 0.15, 0.05]), share=0.5) == 1
    assert isinstance(effective_receptive_field(np.full(4, 0.25)), float)
    assert math.isnan(effective_receptive_field(np.full(5, np.nan)))
    with pytest.raises(ValueError, match="share"):
        effective_receptive_field(np.full(4, 0.25), share=0.0)
