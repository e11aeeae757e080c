"""Compiled functions of a model's weights, shared by the trials of a cell.

Tracing a backward pass (a ``tf.function`` on TensorFlow, ``jax.jit`` on JAX) costs about a second for a small
LSTM and several for an 8-layer one, longer than the few calls a trial makes; Keras' own ``predict_on_batch``
compiles anew for every model too. A function that runs ``template.stateless_call`` on the variable values it is
given (:func:`weight_values`) serves every model with the same graph and the same variables, so the trials of one
cell share one compilation. :func:`compile_function` and :func:`compile_gradient` compile such a function for
TensorFlow or JAX; :func:`model_key` says when two models may share; :class:`CompiledFunctions` keeps the most
recently used functions.
"""
from __future__ import annotations

import collections
import logging
from typing import Any, Callable, Hashable

import keras


def model_key(model: keras.Model, structure: Hashable) -> tuple:
    """The key under which ``model`` may share a compiled function with other models.

    ``structure`` names the graph (the caller's architecture name, say). The backend, the input shapes and the
    shapes of the trainable and non-trainable variables join it: layers without weights of their own can hold
    state (Dropout's seed generator), and the same weights can read inputs of another length, so the graph
    name alone does not pin the function down.
    """
    return (keras.backend.backend(), structure,
            tuple(tuple(tensor.shape) for tensor in model.inputs),
            tuple(tuple(variable.shape) for variable in model.trainable_variables),
            tuple(tuple(variable.shape) for variable in model.non_trainable_variables))


def weight_values(model: keras.Model) -> tuple[list, list]:
    """The current values of the model's trainable and non-trainable variables, as the backend's tensors: the
    first two arguments of a function over ``stateless_call``."""
    def values(variables) -> list:
        return [keras.ops.convert_to_tensor(variable.value) for variable in variables]

    return values(model.trainable_variables), values(model.non_trainable_variables)


class _CellRetracingFilter(logging.Filter):
    """Drops TensorFlow's warning of "excessive" retracing about this module's functions, and no other.

    TensorFlow counts traces per Python code object and warns when five of the last ten calls of one traced,
    taking that for "a tf.function created in a loop". Every cell's function here runs the same code
    (``cell_function``), and a study's first trials visit its cells in turn, so from the fifth cell on each first
    call traces, as designed: one compilation per cell, shared by its later trials.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("triggered tf.function retracing" in message and ".cell_function at " in message)


_RETRACING_FILTER = _CellRetracingFilter()


def _tensorflow_function(cell_function: Callable) -> Callable:
    """``tf.function`` (retracing once for a new input size, then with a relaxed shape), with TensorFlow's
    retracing warning about it dropped (see :class:`_CellRetracingFilter`)."""
    import tensorflow as tf

    logger = logging.getLogger("tensorflow")
    if _RETRACING_FILTER not in logger.filters:
        logger.addFilter(_RETRACING_FILTER)
    return tf.function(cell_function, reduce_retracing=True)


def compile_function(function: Callable) -> Callable:
    """``function`` compiled for the backend: ``tf.function`` on TensorFlow, ``jax.jit`` on JAX."""
    if keras.backend.backend() == "tensorflow":
        def cell_function(*arguments):
            return function(*arguments)

        return _tensorflow_function(cell_function)
    import jax

    return jax.jit(function)


def compile_gradient(function: Callable, argument: int) -> Callable:
    """The gradient of the scalar ``function`` with respect to its positional ``argument`` (a tensor or a list of
    them), compiled for the backend: a GradientTape inside a ``tf.function`` on TensorFlow, ``jax.grad`` under
    ``jax.jit`` on JAX."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        def cell_function(*arguments):
            with tf.GradientTape() as tape:
                tape.watch(arguments[argument])
                value = function(*arguments)
            return tape.gradient(value, arguments[argument])

        return _tensorflow_function(cell_function)
    import jax

    return jax.jit(jax.grad(function, argnums=argument))


class CompiledFunctions:
    """A small least-recently-used store of compiled functions by key."""

    def __init__(self, size: int = 32):
        if size < 1:
            raise ValueError(f"the store must hold at least one function, not {size}")
        self.size = size
        self._functions: collections.OrderedDict[Hashable, Any] = collections.OrderedDict()

    def get(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """The function stored under ``key``, built by ``build()`` (and stored) on first use."""
        if key in self._functions:
            self._functions.move_to_end(key)
            return self._functions[key]
        function = build()
        self._functions[key] = function
        while len(self._functions) > self.size:
            self._functions.popitem(last=False)
        return function

    def __len__(self) -> int:
        return len(self._functions)
