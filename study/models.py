"""Model registry: plain Keras builders with plain arguments, no keras-tuner inside.

``MODELS`` maps an architecture name to a builder. Every builder takes the input
shape, the number of classes and the same keyword arguments (``depth``,
``width``, ``dropout``, ``weight_decay``, ...), ignoring the ones that do not
apply, and returns an uncompiled ``keras.Model`` ending in a softmax.
:func:`compile_model` attaches the optimizer: weight decay is either an L2 kernel
penalty (set at build time) or decoupled AdamW decay (set here).

Architectures: ``lstm``, ``bilstm``, ``gru``, ``rnn`` (the ungated control) and
``residual_lstm`` stack recurrent layers; ``cnn``, ``resnet`` and ``tcn`` stack
Conv1D blocks. :func:`receptive_field` gives how many input samples the last
feature map sees, and :func:`match_width` picks the width that puts a model at
a given parameter count, so that architectures can be compared at equal size.
"""
from __future__ import annotations

import functools
import warnings
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # keras is imported inside the builders, so validating a space never loads TensorFlow
    import keras

# On a CUDA GPU, Keras 3's torch backend warns on every LSTM/GRU call that the "RNN module weights are not part of
# single contiguous chunk of memory". Nothing in our code can fix it: keras/src/backend/torch/rnn.py (Keras 3.15,
# lstm -> _cudnn_lstm -> prepare_lstm_params; gru -> _cudnn_gru -> prepare_gru_params) builds the weight list
# afresh on every call - kernel.T.contiguous(), recurrent_kernel.T.contiguous(), a new torch.zeros for the bias
# it lacks - and passes it to torch._VF.lstm/gru, not to a torch.nn.LSTM. Those are four separate new tensors,
# never views of one cuDNN-layout buffer, so torch's _cudnn_rnn copies them into one (TORCH_WARN(WEIGHT_FORMAT_WARN))
# each call; there is no nn.LSTM whose flatten_parameters() could compact them, and the Keras variables are stored
# transposed, (input_dim, 4*units) against torch's (4*units, input_dim), so a copy per call is inherent. The
# copy is 4*units*(input_dim + units + 2) floats per layer (tens of KB at our widths): the warning is noise.
# Only this message is ignored. (Read from the code; the machine this was written on has no GPU to measure.)
TORCH_RNN_WEIGHTS_WARNING = r"RNN module weights are not part of single contiguous chunk of memory"


def ignore_torch_rnn_weights_warning() -> None:
    """Ignore (only) torch's non-contiguous RNN weights UserWarning; installed when this module is imported."""
    warnings.filterwarnings("ignore", message=TORCH_RNN_WEIGHTS_WARNING, category=UserWarning)


ignore_torch_rnn_weights_warning()


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
    return _stacked_recurrent("lstm", "LSTM", input_shape, num_classes, depth=depth, width=width,
                              dropout=dropout, recurrent_dropout=recurrent_dropout, weight_decay=weight_decay,
                              weight_decay_type=weight_decay_type)


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


@functools.cache
def _last_time_step() -> type:
    """The layer class that keeps only the last time step, defined on first use so that importing
    this module never loads Keras. Plain indexing, which every backend's tensors support."""
    import keras

    @keras.saving.register_keras_serializable(package="study")
    class LastTimeStep(keras.layers.Layer):
        """``(batch, steps, features) -> (batch, features)``: the readout of a sequence-to-sequence stack."""

        def call(self, inputs):
            return inputs[:, -1, :]

        def compute_output_shape(self, input_shape):
            return (input_shape[0], input_shape[-1])

    return LastTimeStep


def _stacked_recurrent(arch: str, layer_type: str, input_shape: tuple[int, ...], num_classes: int, *, depth: int,
                       width: int, dropout: float, recurrent_dropout: float, weight_decay: float,
                       weight_decay_type: str, bidirectional: bool = False) -> keras.Model:
    """The shared body of the stacked recurrent classifiers: ``depth`` Keras ``layer_type`` layers (LSTM, GRU,
    SimpleRNN; wrapped in Bidirectional when asked) named ``<arch>_<i>``, a Dropout layer after each one (so
    the fused cuDNN kernels stay usable), the last one returning its final state, a softmax classifier."""
    import keras
    from keras import layers

    regularizer = _l2(weight_decay, weight_decay_type)
    inputs = keras.Input(shape=input_shape)
    hidden = inputs
    for index in range(depth):
        name = f"{arch}_{index + 1}"
        layer = getattr(layers, layer_type)(width, return_sequences=index < depth - 1,
                                            recurrent_dropout=recurrent_dropout, kernel_regularizer=regularizer,
                                            recurrent_regularizer=regularizer, name=None if bidirectional else name)
        if bidirectional:
            layer = layers.Bidirectional(layer, merge_mode="concat", name=name)
        hidden = layer(hidden)
        if dropout > 0:
            hidden = layers.Dropout(dropout, name=f"dropout_{index + 1}")(hidden)
    outputs = layers.Dense(num_classes, activation="softmax", kernel_regularizer=regularizer, name="classifier")(hidden)
    return keras.Model(inputs, outputs, name=f"{arch}_depth{depth}")


def build_bilstm(input_shape: tuple[int, ...], num_classes: int, *, depth: int = 2, width: int = 32,
                 dropout: float = 0.0, recurrent_dropout: float = 0.0, weight_decay: float = 0.0,
                 weight_decay_type: str = "l2", **_: Any) -> keras.Model:
    """Stacked bidirectional LSTM classifier: ``width`` units per direction, the two directions concatenated
    (so each layer emits ``2 * width`` features).

    Reading the strip both ways tests whether seeing the future of each beat helps (or only adds capacity).
    Dropout layers sit between layers as in :func:`build_lstm`.
    """
    return _stacked_recurrent("bilstm", "LSTM", input_shape, num_classes, depth=depth, width=width,
                              dropout=dropout, recurrent_dropout=recurrent_dropout, weight_decay=weight_decay,
                              weight_decay_type=weight_decay_type, bidirectional=True)


def build_gru(input_shape: tuple[int, ...], num_classes: int, *, depth: int = 2, width: int = 32,
              dropout: float = 0.0, recurrent_dropout: float = 0.0, weight_decay: float = 0.0,
              weight_decay_type: str = "l2", **_: Any) -> keras.Model:
    """Stacked GRU classifier, laid out like :func:`build_lstm`.

    A GRU has two gates to the LSTM's three (about three quarters of the parameters at equal width),
    so it tells whether the LSTM's extra gate matters. Keras' default ``reset_after=True`` keeps cuDNN.
    """
    return _stacked_recurrent("gru", "GRU", input_shape, num_classes, depth=depth, width=width,
                              dropout=dropout, recurrent_dropout=recurrent_dropout, weight_decay=weight_decay,
                              weight_decay_type=weight_decay_type)


def build_rnn(input_shape: tuple[int, ...], num_classes: int, *, depth: int = 2, width: int = 32,
              dropout: float = 0.0, recurrent_dropout: float = 0.0, weight_decay: float = 0.0,
              weight_decay_type: str = "l2", **_: Any) -> keras.Model:
    """Stacked SimpleRNN (tanh, no gates) classifier, laid out like :func:`build_lstm`.

    The ungated control: if deep LSTMs train (or overfit) differently from deep plain RNNs, gating is the
    explanation on offer. Plain RNNs have no cuDNN kernel in Keras, so they are slower on a GPU.
    """
    return _stacked_recurrent("rnn", "SimpleRNN", input_shape, num_classes, depth=depth, width=width,
                              dropout=dropout, recurrent_dropout=recurrent_dropout, weight_decay=weight_decay,
                              weight_decay_type=weight_decay_type)


def build_residual_lstm(input_shape: tuple[int, ...], num_classes: int, *, depth: int = 2, width: int = 32,
                        dropout: float = 0.0, recurrent_dropout: float = 0.0, weight_decay: float = 0.0,
                        weight_decay_type: str = "l2", **_: Any) -> keras.Model:
    """Stacked LSTMs with identity shortcuts between stacked layers (Wu et al. 2016, GNMT; Kim et al. 2017).

    Layer 1 maps the input to ``width`` features; from layer 2 on, ``h = LSTM_i(h) + h``, so gradients reach
    the lower layers through the additions: the recurrent counterpart of :func:`build_resnet`, telling
    whether depth hurts LSTMs through optimisation rather than capacity. Every layer returns sequences
    (the shortcut needs the whole sequence) and the classifier reads the last time step. Dropout acts on
    each layer's own output before the addition (residual dropout), leaving the identity path intact.
    """
    import keras
    from keras import layers

    regularizer = _l2(weight_decay, weight_decay_type)
    inputs = keras.Input(shape=input_shape)
    hidden = inputs
    for index in range(depth):
        branch = layers.LSTM(width, return_sequences=True, recurrent_dropout=recurrent_dropout,
                             kernel_regularizer=regularizer, recurrent_regularizer=regularizer,
                             name=f"lstm_{index + 1}")(hidden)
        if dropout > 0:
            branch = layers.Dropout(dropout, name=f"dropout_{index + 1}")(branch)
        hidden = branch if index == 0 else layers.Add(name=f"add_{index + 1}")([branch, hidden])
    hidden = _last_time_step()(name="last_step")(hidden)
    outputs = layers.Dense(num_classes, activation="softmax", kernel_regularizer=regularizer, name="classifier")(hidden)
    return keras.Model(inputs, outputs, name=f"residual_lstm_depth{depth}")


def build_resnet(input_shape: tuple[int, ...], num_classes: int, *, depth: int = 2, width: int = 32,
                 kernel_size: int = 7, dropout: float = 0.0, weight_decay: float = 0.0,
                 weight_decay_type: str = "l2", pool_every: int = 2, batchnorm_momentum: float = 0.9,
                 **_: Any) -> keras.Model:
    """1-D ResNet: ``depth`` residual blocks, global average pooling, softmax.

    Each block is Conv1D -> BatchNorm -> ReLU -> Conv1D -> BatchNorm plus a shortcut (the identity, or a
    1x1 Conv1D + BatchNorm projection where the channel count changes, i.e. into the first block), added,
    then ReLU (He et al. 2016). The CNN with shortcuts: tells whether deep CNNs degrade for want of them.
    Pooling, dropout and BatchNorm momentum follow :func:`build_cnn`, per block instead of per layer.
    """
    import keras
    from keras import layers

    regularizer = _l2(weight_decay, weight_decay_type)
    inputs = keras.Input(shape=input_shape)
    hidden = inputs
    length, channels = input_shape[0], input_shape[-1]
    for index in range(depth):
        block = index + 1
        shortcut = hidden
        hidden = layers.Conv1D(width, kernel_size, padding="same", use_bias=False, kernel_regularizer=regularizer,
                               name=f"conv_{block}a")(hidden)
        hidden = layers.BatchNormalization(momentum=batchnorm_momentum, name=f"batchnorm_{block}a")(hidden)
        hidden = layers.Activation("relu", name=f"relu_{block}a")(hidden)
        hidden = layers.Conv1D(width, kernel_size, padding="same", use_bias=False, kernel_regularizer=regularizer,
                               name=f"conv_{block}b")(hidden)
        hidden = layers.BatchNormalization(momentum=batchnorm_momentum, name=f"batchnorm_{block}b")(hidden)
        if channels != width:
            shortcut = layers.Conv1D(width, 1, use_bias=False, kernel_regularizer=regularizer,
                                     name=f"projection_{block}")(shortcut)
            shortcut = layers.BatchNormalization(momentum=batchnorm_momentum,
                                                 name=f"projection_batchnorm_{block}")(shortcut)
            channels = width
        hidden = layers.Add(name=f"add_{block}")([hidden, shortcut])
        hidden = layers.Activation("relu", name=f"relu_{block}")(hidden)
        if block % pool_every == 0 and length is not None and length >= 8:
            hidden = layers.MaxPooling1D(2, name=f"pool_{block}")(hidden)
            length //= 2
        if dropout > 0:
            hidden = layers.Dropout(dropout, name=f"dropout_{block}")(hidden)
    hidden = layers.GlobalAveragePooling1D(name="global_pool")(hidden)
    outputs = layers.Dense(num_classes, activation="softmax", kernel_regularizer=regularizer, name="classifier")(hidden)
    return keras.Model(inputs, outputs, name=f"resnet_depth{depth}")


def build_tcn(input_shape: tuple[int, ...], num_classes: int, *, depth: int = 2, width: int = 32,
              kernel_size: int = 7, dropout: float = 0.0, weight_decay: float = 0.0,
              weight_decay_type: str = "l2", **_: Any) -> keras.Model:
    """Temporal convolutional network (Bai, Kolter and Koltun 2018): ``depth`` residual blocks, block ``i``
    (from 0) dilated by ``2**i``.

    Each block is two causal dilated Conv1D(width, kernel_size) layers, each followed by ReLU and spatial
    dropout (whole channels, as in the paper), plus a shortcut (1x1 Conv1D where the channel count
    changes), added, then ReLU. The paper's weight normalisation is left out: it only reparameterises
    the kernels, and no other normalisation is added, so the convolutions keep their biases. The
    classifier reads the last time step, which sees ``1 + 2 * (kernel_size - 1) * (2**depth - 1)``
    samples: the receptive field grows exponentially with depth where :func:`build_cnn`'s grows linearly.

    The keras-tcn package cannot serve: its 3.5.7 wheel requires tensorflow-macos and it imports
    TensorFlow directly, so it does not run on the JAX or PyTorch backends.
    """
    import keras
    from keras import layers

    regularizer = _l2(weight_decay, weight_decay_type)
    inputs = keras.Input(shape=input_shape)
    hidden = inputs
    channels = input_shape[-1]
    for index in range(depth):
        block = index + 1
        shortcut = hidden
        for part in "ab":
            hidden = layers.Conv1D(width, kernel_size, padding="causal", dilation_rate=2 ** index,
                                   kernel_regularizer=regularizer, name=f"conv_{block}{part}")(hidden)
            hidden = layers.Activation("relu", name=f"relu_{block}{part}")(hidden)
            if dropout > 0:
                hidden = layers.SpatialDropout1D(dropout, name=f"dropout_{block}{part}")(hidden)
        if channels != width:
            shortcut = layers.Conv1D(width, 1, kernel_regularizer=regularizer, name=f"projection_{block}")(shortcut)
            channels = width
        hidden = layers.Add(name=f"add_{block}")([hidden, shortcut])
        hidden = layers.Activation("relu", name=f"relu_{block}")(hidden)
    hidden = _last_time_step()(name="last_step")(hidden)
    outputs = layers.Dense(num_classes, activation="softmax", kernel_regularizer=regularizer, name="classifier")(hidden)
    return keras.Model(inputs, outputs, name=f"tcn_depth{depth}")


MODELS: dict[str, Callable[..., keras.Model]] = {
    "lstm": build_lstm,
    "cnn": build_cnn,
    "bilstm": build_bilstm,
    "gru": build_gru,
    "rnn": build_rnn,
    "residual_lstm": build_residual_lstm,
    "resnet": build_resnet,
    "tcn": build_tcn,
}

#: The builder arguments a trial's hyperparameters map to (the rest are training settings).
BUILDER_ARGUMENTS = ("depth", "width", "kernel_size", "dropout", "recurrent_dropout", "weight_decay", "weight_decay_type")
#: The builder arguments besides width that change a model's parameter count (the rest change no weight's shape).
SIZE_ARGUMENTS = ("depth", "kernel_size")


def build_model(values: dict[str, Any], input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """The one adapter from a trial's hyperparameter values to a builder call."""
    builder = MODELS[values["architecture"]]
    return builder(input_shape, num_classes, **{name: values[name] for name in BUILDER_ARGUMENTS if name in values})


def compile_model(model: keras.Model, *, learning_rate: float, weight_decay: float, weight_decay_type: str,
                  clipnorm: float = 0.0) -> None:
    """Adam for L2 penalties (already in the layers), AdamW for decoupled weight decay.

    ``clipnorm > 0`` clips each weight's gradient to that L2 norm before the update (Keras' ``clipnorm``,
    per variable; Pascanu et al. 2013), the standard stabiliser of recurrent networks; 0 leaves gradients alone.
    """
    import keras

    clipping = {"clipnorm": float(clipnorm)} if clipnorm and clipnorm > 0 else {}
    if weight_decay_type == "adamw":
        optimizer = keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=weight_decay, **clipping)
    else:
        optimizer = keras.optimizers.Adam(learning_rate=learning_rate, **clipping)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    # Create the optimizer's slot variables now. On TensorFlow, Keras otherwise creates them while tracing the
    # first train step, and a tf.function that creates variables is traced a second time: that doubled tracing
    # took 1.3 s of a 4.3 s ten-epoch trial (CNN depth 4). The slots start at zero either way, so the weights
    # and every recorded number are unchanged.
    optimizer.build(model.trainable_variables)


def receptive_field(model: keras.Model) -> int:
    """How many input samples one position of the model's last feature map sees, in theory.

    Walks the functional graph tracking ``(rf, jump)`` per tensor (jump: input samples between adjacent
    positions): Conv1D adds ``(kernel - 1) * dilation * jump`` and multiplies jump by its stride; pooling
    adds ``(pool - 1) * jump`` and multiplies jump by its stride; Add and Concatenate take the largest
    field of their inputs; a recurrent layer (any ``keras.layers.RNN``, or ``Bidirectional``) sees the
    whole input. Global pooling and the last-step readout are readouts, not feature maps, so they are not
    counted: a one-layer CNN with kernel 7 has a field of 7. Every other layer passes its input's field on.
    The result is capped at the input length; with an unknown length it is uncapped, and a recurrent
    layer raises ValueError because its field is that length.
    """
    from keras import layers

    def first(value: Any) -> int:
        return int(value[0]) if isinstance(value, (tuple, list)) else int(value)

    def flat(tensors: Any) -> list:
        return list(tensors) if isinstance(tensors, (tuple, list)) else [tensors]

    length = model.input_shape[1]
    fields: dict[int, tuple[int, int]] = {id(tensor): (1, 1) for tensor in model.inputs}
    convolutions = (layers.Conv1D, layers.SeparableConv1D, layers.DepthwiseConv1D)
    poolings = (layers.MaxPooling1D, layers.AveragePooling1D)
    for layer in model.layers:
        if isinstance(layer, layers.InputLayer):
            continue
        incoming = [fields[id(tensor)] for tensor in flat(layer.input) if id(tensor) in fields]
        if not incoming:  # a tensor the walk has not reached: treat it as the raw input
            incoming = [(1, 1)]
        rf, jump = max(field for field, _ in incoming), max(step for _, step in incoming)
        if isinstance(layer, convolutions):
            rf += (first(layer.kernel_size) - 1) * first(layer.dilation_rate) * jump
            jump *= first(layer.strides)
        elif isinstance(layer, poolings):
            rf += (first(layer.pool_size) - 1) * jump
            jump *= first(layer.strides)
        elif isinstance(layer, (layers.RNN, layers.Bidirectional)):
            if length is None:
                raise ValueError(f"layer {layer.name!r} is recurrent: its receptive field is the whole input, "
                                 "which needs a fixed input length")
            rf = length
        for tensor in flat(layer.output):
            fields[id(tensor)] = (rf, jump)
    rf = max(fields[id(tensor)][0] for tensor in model.outputs)
    return rf if length is None else min(rf, length)


#: Relative distance from the budget that :func:`match_width` accepts by default.
PARAMETER_TOLERANCE = 0.05


def parameter_count(values: dict[str, Any], input_shape: tuple[int, ...], num_classes: int) -> int:
    """``count_params()`` (trainable and not, e.g. BatchNorm's moving statistics) of the model ``values`` build."""
    model = build_model(values, input_shape, num_classes)
    count = int(model.count_params())
    del model
    return count


@functools.lru_cache(maxsize=256)
def _width_quadratic(frozen: tuple, input_shape: tuple[int, ...], num_classes: int) -> tuple[float, float, float]:
    """``(a, b, c)`` with ``count(width) = a * width**2 + b * width + c`` for widths other than the input
    channel count, fitted exactly from three builds at consecutive widths that avoid that count."""
    values = dict(frozen)
    channels = input_shape[-1]
    start = 2 if channels not in (2, 3, 4) else channels + 1
    p0, p1, p2 = (parameter_count({**values, "width": start + step}, input_shape, num_classes) for step in range(3))
    a = (p2 - 2 * p1 + p0) / 2
    b = (p1 - p0) - a * (2 * start + 1)
    c = p0 - a * start ** 2 - b * start
    return a, b, c


def match_width(values: dict[str, Any], input_shape: tuple[int, ...], num_classes: int, budget: int,
                tolerance: float = PARAMETER_TOLERANCE, *, max_width: int = 4096) -> tuple[int, int]:
    """``(width, parameter_count)``: the width (1 to ``max_width``, study.config.MAX_WIDTH for a study) whose
    model, with every other value in ``values`` unchanged, comes closest to ``budget`` parameters, within
    ``tolerance`` (relative).

    The count is a quadratic in the width for every builder here, except at the width equal to the input
    channel count, where projection shortcuts disappear. So three builds away from that width fit the
    quadratic, its root gives the width, the fit ranks the widths within 2 of it (a real build where the
    width is the channel count), and a real build of the chosen width confirms its count (if it did not,
    every candidate is built). Building is slow on JAX (about 1.6 s a model here), hence so few builds.
    Raises ValueError when no width comes within the tolerance.
    """
    if budget <= 0:
        raise ValueError(f"a parameter budget must be positive, not {budget}")
    input_shape = tuple(input_shape)
    frozen = tuple(sorted((name, value) for name, value in values.items()
                          if name == "architecture" or name in SIZE_ARGUMENTS))  # the rest leaves the count alone
    a, b, c = _width_quadratic(frozen, input_shape, num_classes)
    if a > 0:
        discriminant = b * b - 4 * a * (c - budget)
        root = (-b + discriminant ** 0.5) / (2 * a) if discriminant >= 0 else -b / (2 * a)
    else:
        root = (budget - c) / b if b > 0 else 1.0
    largest = int(round(a * max_width ** 2 + b * max_width + c))  # from the fit: the widest models are huge
    if largest < budget * (1 - tolerance):
        width, closest = max_width, largest
    else:
        centre = int(round(min(max(root, 1.0), float(max_width))))
        candidates = range(max(1, centre - 2), min(max_width, centre + 2) + 1)
        channels = input_shape[-1]

        def closest_of(counts: dict[int, int]) -> int:
            return min(counts, key=lambda width: (abs(counts[width] - budget), width))

        predicted = {width: int(round(a * width ** 2 + b * width + c)) if width != channels
                     else parameter_count({**values, "width": width}, input_shape, num_classes)
                     for width in candidates}
        width = closest_of(predicted)
        closest = parameter_count({**values, "width": width}, input_shape, num_classes)
        if closest != predicted[width]:  # the fit did not hold: build every candidate
            counts = {width: parameter_count({**values, "width": width}, input_shape, num_classes)
                      for width in candidates}
            width = closest_of(counts)
            closest = counts[width]
        if abs(closest - budget) <= tolerance * budget:
            return width, closest
    smallest = parameter_count({**values, "width": 1}, input_shape, num_classes)
    description = f"a depth-{values.get('depth', 2)} {values['architecture']}"
    raise ValueError(
        f"no width puts {description} within {tolerance:.0%} of a budget of {budget:,} parameters: the closest "
        f"is {closest:,} at width {width}; {description} has {smallest:,} parameters at width 1 and "
        f"{largest:,} at width {max_width} (input shape {input_shape}, {num_classes} classes)")
