"""The effective receptive field of a trained classifier (Luo, Li, Urtasun and Zemel 2016).

:func:`study.models.receptive_field` gives the theoretical receptive field: every input sample that one
position of the last feature map can see. Luo et al. ("Understanding the effective receptive field in deep
convolutional neural networks", NeurIPS 2016) showed that the samples a unit actually depends on are far
fewer: the gradient of the unit with respect to the input is roughly Gaussian, concentrated in the middle
of the theoretical field and occupying only a fraction of it, a fraction that shrinks as depth grows and
widens with training. So the theoretical field says what a model could use, the effective field what a
trained model does use, and a deep model whose effective field stays small has not gained the context its
depth promised.

:func:`effective_field_profile` measures it: the gradient of one output position of the model's last
feature sequence (summed over its channels) with respect to every input time step, in inference mode
(dropout off, BatchNorm moving statistics), its absolute value summed over input channels and averaged
over a fixed batch, normalised to sum to 1. The output position is the centre of the sequence read by
global average pooling (Luo's centre unit, away from the padded edges) and the last position of the
sequence read by the last-step readout (what the classifier sees); a recurrent stack that returns only
its final state is read at its final state, which belongs to the last input step. Offsets count input
samples from that position, so a causal or recurrent model has only offsets <= 0.
:func:`effective_receptive_field` reduces a profile to one number: the fewest input samples holding
``EFFECTIVE_FIELD_MASS`` (95%) of the mass, the size reported per trial.
"""
from __future__ import annotations

import math
from typing import Hashable

import keras
import numpy as np

from study.compiled import CompiledFunctions, compile_gradient, model_key, weight_values
from study.tables import EFFECTIVE_FIELD_MASS

#: Relative slack when comparing accumulated mass with the share, so float rounding never adds a sample.
_RELATIVE_TOLERANCE = 1e-9


def _feature_tensor(model: keras.Model) -> tuple[keras.KerasTensor, str]:
    """The model's last feature tensor and where on it to read: ``"centre"`` (global average pooling),
    ``"last"`` (the last-step readout) or ``"final_state"`` (no time axis: a recurrent final state)."""
    names = {layer.name for layer in model.layers}
    if "global_pool" in names:
        return model.get_layer("global_pool").input, "centre"
    if "last_step" in names:
        return model.get_layer("last_step").input, "last"
    if "classifier" in names:
        tensor = model.get_layer("classifier").input
        if len(tensor.shape) == 3:  # a classifier reading a sequence: read its last position
            return tensor, "last"
        if len(tensor.shape) != 2:
            raise ValueError(f"the classifier of model {model.name!r} reads a tensor of shape {tensor.shape}, "
                             "not (batch, features) or (batch, steps, features)")
        return tensor, "final_state"
    raise ValueError(f"model {model.name!r} has no layer named 'global_pool', 'last_step' or 'classifier', "
                     "so its last feature sequence cannot be found")


#: Compiled input-gradient functions by model key and read position (see :func:`_input_gradient`).
_FIELD_FUNCTIONS = CompiledFunctions()


def _input_gradient(feature_model: keras.Model, inputs: np.ndarray, position: int | None,
                    structure: Hashable | None = None) -> np.ndarray:
    """d (sum over batch and channels of the features at ``position``, or of the whole final state when
    ``position`` is None) / d inputs, in inference mode, with the backend's own autodiff.

    On TensorFlow and JAX, a ``structure`` (see :func:`study.compiled.model_key`) lets the models of one cell
    share one compiled function over ``stateless_call``: the first trial pays the tracing, later ones a few
    milliseconds. Without it, TensorFlow runs the tape eagerly and JAX compiles for this model alone (for a fresh
    model one compilation is faster than running the backward pass op by op: about 2 s against 5 s for a 4-layer
    LSTM on a CPU). PyTorch runs eagerly, as it does everything.
    """
    backend = keras.backend.backend()

    def objective(features):
        return keras.ops.sum(features if position is None else features[:, position, :])

    if backend == "torch":
        import torch

        # Grad mode on: Keras' cuDNN recurrent kernels on PyTorch run their backward-capable path only with it.
        with torch.enable_grad():
            values = keras.ops.convert_to_tensor(inputs).detach().requires_grad_(True)
            total = objective(feature_model(values, training=False))
            (gradient,) = torch.autograd.grad(total, [values])
        return np.asarray(keras.ops.convert_to_numpy(gradient), dtype=np.float64)
    if backend not in ("tensorflow", "jax"):
        raise ValueError(f"effective receptive fields are measured on the tensorflow, jax and torch backends, "
                         f"not {backend!r}")
    if backend == "tensorflow" and structure is None:
        import tensorflow as tf

        values = tf.convert_to_tensor(inputs)
        with tf.GradientTape() as tape:
            tape.watch(values)
            total = objective(feature_model(values, training=False))
        return np.asarray(tape.gradient(total, values).numpy(), dtype=np.float64)

    template = feature_model

    def total_of(trainable, non_trainable, values):
        features, _ = template.stateless_call(trainable, non_trainable, values, training=False)
        return objective(features)

    # The weights are arguments, not baked-in constants, so the function serves any model of the same key.
    def build():
        return compile_gradient(total_of, 2)

    function = build() if structure is None else _FIELD_FUNCTIONS.get((model_key(feature_model, structure),
                                                                       position), build)
    gradient = function(*weight_values(feature_model), keras.ops.convert_to_tensor(inputs))
    return np.asarray(keras.ops.convert_to_numpy(gradient), dtype=np.float64)


def effective_field_profile(model: keras.Model, inputs: np.ndarray,
                            structure: Hashable | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(offsets, mass)``: for every input time step, its offset from the input index of the measured output
    position and its share of the absolute input gradient of that position (see the module docstring).

    ``inputs`` is a batch ``(examples, steps, channels)`` of the model's input. The mass sums to 1; it is all
    NaN when the gradient is zero everywhere or not finite (a dead or diverged model). Both arrays are float64.
    Raises ValueError for a model without a time axis in its input, a model whose last feature sequence
    cannot be found, or inputs of the wrong shape. ``structure`` (a name of the model's graph, such as its
    architecture) lets the models of one cell share one compiled gradient function (see ``_input_gradient``).
    """
    if len(model.inputs) != 1:
        raise ValueError(f"model {model.name!r} has {len(model.inputs)} inputs; an effective receptive field "
                         "needs exactly one")
    input_shape = tuple(model.inputs[0].shape)
    if len(input_shape) != 3:
        raise ValueError(f"model {model.name!r} takes inputs of shape {input_shape}, without a time axis: an "
                         "effective receptive field needs (batch, steps, channels)")
    values = np.asarray(inputs, dtype=keras.backend.floatx())
    if values.ndim != 3 or values.shape[0] == 0 or values.shape[1] == 0:
        raise ValueError(f"inputs must be a non-empty batch of shape (examples, steps, channels), not {values.shape}")
    if any(expected is not None and expected != actual for expected, actual in zip(input_shape[1:], values.shape[1:])):
        raise ValueError(f"inputs of shape {values.shape} do not fit model {model.name!r}, which takes {input_shape}")

    feature, reading = _feature_tensor(model)
    feature_model = keras.Model(model.inputs, feature, name=f"{model.name}_features")
    input_length = values.shape[1]
    if reading == "final_state":
        position, input_position = None, input_length - 1
    else:
        output_length = feature.shape[1]
        if output_length is None:  # an input of unknown length: the length these inputs give
            output_length = feature_model.compute_output_shape(values.shape)[1]
        if output_length is None or output_length < 1:
            raise ValueError(f"model {model.name!r} leaves no feature sequence for inputs of length {input_length}")
        position = output_length // 2 if reading == "centre" else output_length - 1
        input_position = position if output_length == input_length else \
            int(math.floor(position * input_length / output_length + 0.5))
    gradient = _input_gradient(feature_model, values, position, structure)
    magnitude = np.abs(gradient).sum(axis=2).mean(axis=0)
    total = float(magnitude.sum())
    offsets = np.arange(input_length, dtype=np.float64) - input_position
    if not math.isfinite(total) or total <= 0:
        return offsets, np.full(input_length, np.nan)
    return offsets, magnitude / total


def effective_receptive_field(mass: np.ndarray, share: float = EFFECTIVE_FIELD_MASS) -> float:
    """The fewest input samples, largest masses first, that together hold at least ``share`` of the total
    mass: the effective receptive field's size (an integer, as a float). NaN when any mass is NaN."""
    if not 0 < share <= 1:
        raise ValueError(f"the share of the mass must be in (0, 1], not {share}")
    values = np.asarray(mass, dtype=np.float64).ravel()
    if values.size == 0 or np.isnan(values).any():
        return math.nan
    if (values < 0).any() or not np.isfinite(values).all():
        raise ValueError("a receptive field mass must be finite and non-negative")
    total = float(values.sum())
    if total <= 0:
        return math.nan
    accumulated = np.cumsum(np.sort(values)[::-1])
    needed = share * total * (1 - _RELATIVE_TOLERANCE)
    return float(min(int(np.searchsorted(accumulated, needed, side="left")) + 1, values.size))
