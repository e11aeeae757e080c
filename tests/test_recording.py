"""The recorded train loss is the inference-mode pure data loss, not Keras' running training loss."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from study.datasets import load_dataset
from study.models import build_model, compile_model
from study.recording import EpochRecorder, RowWriter, predict_probabilities, score_probabilities
from study.tables import EPOCH_COLUMNS


@pytest.fixture(scope="module")
def dataset():
    return load_dataset("synthetic_ecg", {"n_strips": 80, "length": 48, "sampling_rate": 25.0, "seed": 2})


def _train(dataset, tmp_path, weight_decay_type: str, weight_decay: float, structure=None, seed: int = 4):
    values = {"architecture": "cnn", "depth": 2, "width": 8, "kernel_size": 5, "dropout": 0.4,
              "weight_decay": weight_decay, "weight_decay_type": weight_decay_type}
    keras.utils.set_random_seed(seed)
    model = build_model(values, dataset.input_shape, dataset.num_classes)
    compile_model(model, learning_rate=0.01, weight_decay=weight_decay, weight_decay_type=weight_decay_type)
    subset = np.arange(0, len(dataset.y_train), 2)
    recorder = EpochRecorder(train_inputs=dataset.x_train[subset], train_labels=dataset.y_train[subset],
                             val_inputs=dataset.x_val, val_labels=dataset.y_val,
                             row_base={"trial_id": "0", "phase": "tune", **values},
                             writer=RowWriter(tmp_path / "epochs.csv", EPOCH_COLUMNS), structure=structure)
    model.fit(dataset.x_train, dataset.y_train, epochs=4, batch_size=16, verbose=0, callbacks=[recorder])
    return model, recorder, subset


@pytest.mark.parametrize("structure", [None, "cnn"])
def test_recorded_losses_equal_inference_mode_evaluate(dataset, tmp_path, structure):
    """Dropout + BatchNorm + AdamW (no penalty term): recorded train loss == model.evaluate of the same weights,
    with Keras' predict_on_batch and with the compiled inference function a cell's trials share."""
    model, recorder, subset = _train(dataset, tmp_path, "adamw", 1e-3, structure=structure)
    last = recorder.rows[-1]
    train_loss = model.evaluate(dataset.x_train[subset], dataset.y_train[subset], verbose=0, batch_size=1024)
    val_loss = model.evaluate(dataset.x_val, dataset.y_val, verbose=0, batch_size=1024)
    assert last["train_loss"] == pytest.approx(train_loss, rel=1e-5)
    assert last["val_loss"] == pytest.approx(val_loss, rel=1e-5)
    # Keras' running training loss (dropout on, BatchNorm in training mode) is a different number.
    assert abs(last["fit_loss"] - last["train_loss"]) > 1e-3
    assert [row["epoch"] for row in recorder.rows] == [1, 2, 3, 4]
    lines = (tmp_path / "epochs.csv").read_text().splitlines()
    assert lines[0].split(",") == EPOCH_COLUMNS and len(lines) == 5


def test_models_of_one_structure_share_an_inference_function_that_reads_their_own_weights(dataset, tmp_path):
    from study import recording

    stored = len(recording._INFERENCE_FUNCTIONS)
    for seed in (4, 5):  # trained, so BatchNorm's moving statistics differ from their initial values too
        (tmp_path / str(seed)).mkdir()
        model, _, _ = _train(dataset, tmp_path / str(seed), "l2", 1e-4, structure="cnn_shared", seed=seed)
        for inputs in (dataset.x_val, dataset.x_test[:7]):  # two input sizes: one function retraced, not two
            expected = np.asarray(model.predict_on_batch(inputs), dtype=np.float64)
            np.testing.assert_allclose(predict_probabilities(model, inputs, structure="cnn_shared"), expected,
                                       rtol=1e-6, atol=1e-7)
    assert len(recording._INFERENCE_FUNCTIONS) - stored == (0 if keras.backend.backend() == "torch" else 1)


def test_recorded_loss_excludes_the_l2_penalty(dataset, tmp_path):
    """evaluate() adds the L2 penalty; the recorded pure data loss is evaluate minus that penalty."""
    model, recorder, subset = _train(dataset, tmp_path, "l2", 1e-2)
    penalty = float(sum(keras.ops.convert_to_numpy(loss) for loss in model.losses))
    assert penalty > 1e-3
    evaluated = model.evaluate(dataset.x_train[subset], dataset.y_train[subset], verbose=0, batch_size=1024)
    assert recorder.rows[-1]["train_loss"] == pytest.approx(evaluated - penalty, rel=1e-4)


def test_best_weights_are_those_of_the_lowest_validation_loss(dataset, tmp_path):
    model, recorder, _ = _train(dataset, tmp_path, "adamw", 0.0)
    val_losses = [row["val_loss"] for row in recorder.rows]
    assert recorder.best_epoch == int(np.argmin(val_losses)) + 1
    model.set_weights(recorder.best_weights)
    assert model.evaluate(dataset.x_val, dataset.y_val, verbose=0) == pytest.approx(min(val_losses), rel=1e-5)


def test_score_probabilities_on_a_hand_made_example():
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])
    labels = np.array([0, 1, 1, 2])
    scores = score_probabilities(probabilities, labels)
    assert scores.loss == pytest.approx(-np.mean(np.log([0.7, 0.8, 0.3, 0.6])))
    assert scores.accuracy == 0.75
    assert scores.balanced_accuracy == pytest.approx((1 + 0.5 + 1) / 3)
    # F1: class 0 = 2/3 (precision 1/2, recall 1), class 1 = 2/3, class 2 = 1.
    assert scores.macro_f1 == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)


def test_a_split_without_a_predicted_class_scores_without_warnings():
    import warnings

    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.1, 0.2, 0.7]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = score_probabilities(probabilities, np.array([0, 1, 1]))  # class 2 is predicted, never present
    assert scores.balanced_accuracy == pytest.approx((1 + 0.5) / 2)  # the mean recall over classes 0 and 1
