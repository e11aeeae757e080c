"""Model registry: plain Keras builders with plain arguments, no keras-tuner inside.

``MODELS`` maps an architecture name to a builder. Every builder takes the input
shape, the number of classes and the same keyword arguments (``depth``,
``width``, ``dropout``, ``weight_decay``, ...), ignoring the ones that do not
apply, and returns an uncompiled ``keras.Model`` ending in a softmax.
:func:`compile_model` attaches the optimizer: weight decay is either an L2 kernel
penalty (set at build time) or decoupled AdamW decay (set here).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # keras is imported inside the builders, so validating a space never loads TensorFlow
    import keras


def _l2(weight_decay: float, weight_decay_type: str) -> keras.regularizers.Regularizer | None:
    """The kernel penalty: only for 'l2' weight decay; AdamW decays in the optimizer instead."""
    import keras

    if weight_decay_type == "l2" and weight_decay > 0:
        return keras.regularizers.L2(weight_decay)
    return None


def build_lstm(input_shape: tuple[int, ...], num_classes: int, *, depth: int = 2, width: int = 32,
               dropout: float = 0.0, recurrent_dropout: float = 0.0, weight_decay: float = 0.0,
               weight_decay_type: str = "l2", **_: Any) -> keras.Model:
    """Stacked LSTM classifier.

    Dropout sits in separate layers between LSTMs so that, with
    ``recurrent_dropout == 0``, every LSTM keeps the fused cuDNN kernel on a GPU.
    """
    import keras
    from keras import layers

    regularizer = _l2(weight_decay, weight_decay_type)
    inputs = keras.Input(shape=input_shape)
    hidden = inputs
    for index in range(depth):
        hidden = layers.LSTM(
            width,
            return_sequences=index < depth - 1,
            recurrent_dropout=recurrent_dropout,
            kernel_regularizer=regularizer,
            recurrent_regularizer=regularizer,
            name=f"lstm_{index + 1}",
        )(hidden)
        if dropout > 0:
            hidden = layers.Dropout(dropout, name=f"dropout_{index + 1}")(hidden)
    outputs = layers.Dense(num_classes, activation="softmax", kernel_regularizer=regularizer, name="classifier")(hidden)
    return keras.Model(inputs, outputs, name=f"lstm_depth{depth}")


def build_cnn(input_shape: tuple[int, ...], num_classes: int, *, depth: int = 2, width: int = 32,
              kernel_size: int = 7, dropout: float = 0.0, weight_decay: float = 0.0,
              weight_decay_type: str = "l2", pool_every: int = 2, batchnorm_momentum: float = 0.9,
              **_: Any) -> keras.Model:
    """Stacked Conv1D -> BatchNorm -> ReLU blocks, global average pooling, softmax.

    Every ``pool_every`` blocks halve the length with max pooling while the
    sequence is still at least 8 long, so deep stacks stay cheap without running
    out of length. BatchNorm momentum is 0.9 rather than Keras' 0.99 because small
    ECG datasets give only a few steps per epoch, and inference-mode scores read the
    moving statistics: at 0.99 they lag the weights for hundreds of steps.
    """
    import keras
    from keras import layers

    regularizer = _l2(weight_decay, weight_decay_type)
    inputs = keras.Input(shape=input_shape)
    hidden = inputs
    length = input_shape[0]
    for index in range(depth):
        hidden = layers.Conv1D(width, kernel_size, padding="same", use_bias=False, kernel_regularizer=regularizer,
                               name=f"conv_{index + 1}")(hidden)
        hidden = layers.BatchNormalization(momentum=batchnorm_momentum, name=f"batchnorm_{index + 1}")(hidden)
        hidden = layers.Activation("relu", name=f"relu_{index + 1}")(hidden)
        if (index + 1) % pool_every == 0 and length is not None and length >= 8:
            hidden = layers.MaxPooling1D(2, name=f"pool_{index + 1}")(hidden)
            length //= 2
        if dropout > 0:
            hidden = layers.Dropout(dropout, name=f"dropout_{index + 1}")(hidden)
    hidden = layers.GlobalAveragePooling1D(name="global_pool")(hidden)
    outputs = layers.Dense(num_classes, activation="softmax", kernel_regularizer=regularizer, name="classifier")(hidden)
    return keras.Model(inputs, outputs, name=f"cnn_depth{depth}")


MODELS: dict[str, Callable[..., keras.Model]] = {"lstm": build_lstm, "cnn": build_cnn}

#: The builder arguments a trial's hyperparameters map to (the rest are training settings).
BUILDER_ARGUMENTS = ("depth", "width", "kernel_size", "dropout", "recurrent_dropout", "weight_decay", "weight_decay_type")


def build_model(values: dict[str, Any], input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """The one adapter from a trial's hyperparameter values to a builder call."""
    builder = MODELS[values["architecture"]]
    return builder(input_shape, num_classes, **{name: values[name] for name in BUILDER_ARGUMENTS if name in values})


def compile_model(model: keras.Model, *, learning_rate: float, weight_decay: float, weight_decay_type: str) -> None:
    """Adam for L2 penalties (already in the layers), AdamW for decoupled weight decay."""
    import keras

    if weight_decay_type == "adamw":
        optimizer = keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=weight_decay)
    else:
        optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
