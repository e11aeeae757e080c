"""Per-epoch records of the true train/validation gap.

Keras' own training ``loss`` is a running mean over the epoch with dropout on,
BatchNorm in training mode and the regularisation penalty added, and
``model.evaluate`` adds the penalty too. So after every epoch the recorder
predicts, in inference mode, on a fixed training subset and on the validation
split, and computes the pure data loss (cross-entropy only) and classification
metrics from the predicted probabilities. Rows are appended to ``epochs.csv``
as they are produced, so a killed run loses at most the epoch in progress.
"""
from __future__ import annotations

import csv
import fcntl
import io
import math
import os
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import keras
import numpy as np
from sklearn.metrics import balanced_accuracy_score, f1_score

from study.compiled import CompiledFunctions, compile_function, compile_gradient, model_key, weight_values
from study.errors import BadInput

#: Keras clips probabilities to [epsilon, 1 - epsilon] before the log; so do we,
#: so a recorded loss equals ``model.evaluate`` of a penalty-free model.
EPSILON = 1e-7


@dataclass(frozen=True)
class Scores:
    loss: float
    accuracy: float
    macro_f1: float
    balanced_accuracy: float


def predict_probabilities(model: keras.Model, inputs: np.ndarray, batch_size: int = 1024,
                          structure: Any = None) -> np.ndarray:
    """Class probabilities in inference mode (dropout off, BatchNorm moving statistics).

    Fixed-size chunks, each one call: ``model.predict`` costs about 40 ms per call in data-adapter and callback
    set-up, which at every epoch would be a large share of a small model's epoch. With a ``structure`` (see
    :func:`study.compiled.model_key`) on TensorFlow and JAX, the chunks go through a compiled ``stateless_call``
    shared by every model of that key: Keras' own ``predict_on_batch`` compiles anew for every model, and again
    for a second input size (the test split), which for an LSTM costs more than its ten epochs of predictions.
    Without one (and on PyTorch, which runs eagerly) it is ``predict_on_batch``.
    """
    if len(inputs) == 0:
        return np.zeros((0, model.output_shape[-1]))
    starts = range(0, len(inputs), batch_size)
    if structure is None or keras.backend.backend() not in ("tensorflow", "jax"):
        return np.concatenate([np.asarray(model.predict_on_batch(inputs[start:start + batch_size]), dtype=np.float64)
                               for start in starts])
    function = _compiled_inference(model, structure)
    trainable, non_trainable = weight_values(model)
    return np.concatenate([np.asarray(keras.ops.convert_to_numpy(function(
        trainable, non_trainable, keras.ops.convert_to_tensor(inputs[start:start + batch_size]))), dtype=np.float64)
        for start in starts])


#: Compiled inference functions by model key (see :func:`predict_probabilities`).
_INFERENCE_FUNCTIONS = CompiledFunctions()


def _compiled_inference(model: keras.Model, structure: Any) -> Any:
    """A compiled function (trainable values, non-trainable values, inputs) -> the model's outputs in inference
    mode, shared by every model with the same :func:`study.compiled.model_key` (a cell's trials)."""
    template = model

    def outputs(trainable, non_trainable, inputs):
        values, _ = template.stateless_call(trainable, non_trainable, inputs, training=False)
        return values

    return _INFERENCE_FUNCTIONS.get(model_key(model, structure), lambda: compile_function(outputs))


def score_probabilities(probabilities: np.ndarray, labels: np.ndarray) -> Scores:
    """Pure cross-entropy (no penalty, no class weights) plus accuracy, macro-F1 and balanced accuracy."""
    labels = np.asarray(labels, dtype=np.int64)
    normalised = probabilities / probabilities.sum(axis=1, keepdims=True)
    picked = np.clip(normalised[np.arange(len(labels)), labels], EPSILON, 1.0 - EPSILON)
    predictions = normalised.argmax(axis=1)
    present = np.unique(labels)
    with warnings.catch_warnings():
        # A small split can lack a class the model predicts. Balanced accuracy is the mean recall over the classes
        # the split holds, which is what scikit-learn computes; its warning about the others would print at every
        # epoch of every trial.
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true", category=UserWarning)
        balanced_accuracy = float(balanced_accuracy_score(labels, predictions))
    return Scores(
        loss=float(-np.mean(np.log(picked))),
        accuracy=float(np.mean(predictions == labels)),
        macro_f1=float(f1_score(labels, predictions, labels=present, average="macro", zero_division=0)),
        balanced_accuracy=balanced_accuracy,
    )


def per_class_scores(probabilities: np.ndarray, labels: np.ndarray, class_names: Sequence[str]) -> list[dict[str, Any]]:
    """Precision, recall, F1 and support of every class (scikit-learn), for imbalanced datasets."""
    from sklearn.metrics import precision_recall_fscore_support

    predictions = probabilities.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predictions, labels=np.arange(len(class_names)), zero_division=0)
    return [{"class_name": name, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(n)}
            for name, p, r, f, n in zip(class_names, precision, recall, f1, support)]


class TableMismatch(BadInput):
    """A table on disk does not have the header (or the clean end) that rows may be appended under."""


#: The lock file beside a study's tables: every append and every rewrite of a table holds it, so that the worker
#: processes of a distributed study (study.distributed) never interleave rows or append to a file being rewritten.
TABLES_LOCK = ".tables.lock"


@contextmanager
def table_lock(directory: Path) -> Iterator[None]:
    """Hold the exclusive lock on the tables of one run directory (``fcntl.flock``; held by one process at a time,
    on a local disk and on an NFS mount alike)."""
    with open(Path(directory) / TABLES_LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class RowWriter:
    """Appends CSV rows with a fixed header; writes the header once, flushes every row.

    Rows are never appended under a missing or different header, nor after a
    torn last line: an existing non-empty file must start with exactly this
    header line and end with a line end, else :class:`TableMismatch` is raised
    and nothing is written (the runner checks and repairs headers before a
    study resumes, so this is a last guard). With ``shared`` (the workers of a
    distributed study append to one file) a torn last line is dropped instead:
    every append holds the tables lock, so a torn line can only be the last
    write of a worker killed mid-row, whose trial is redone from the start.
    """

    def __init__(self, path: Path, columns: Sequence[str], *, shared: bool = False):
        self.path = Path(path)
        self.columns = list(columns)
        self.shared = shared
        buffer = io.StringIO()
        csv.writer(buffer).writerow(self.columns)
        self.header = buffer.getvalue().encode("utf-8")

    def _check_existing(self, handle) -> bool:
        """True when the file is empty (the header must be written); raise when rows may not be appended."""
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return True
        handle.seek(0)
        first = handle.readline(len(self.header) + 1)
        if first.rstrip(b"\r\n") != self.header.rstrip(b"\r\n"):
            raise TableMismatch("its header is not this table's header line; refusing to append rows under it "
                                "(use --overwrite or --name)", source=str(self.path))
        handle.seek(size - 1)
        if handle.read(1) not in (b"\n", b"\r"):
            if not self.shared:
                raise TableMismatch("its last line is torn; refusing to append rows after it (run the study again "
                                    "to resume it: that drops the torn line)", source=str(self.path))
            handle.seek(0)
            data = handle.read()
            handle.truncate(data.rfind(b"\n") + 1)
            return handle.seek(0, os.SEEK_END) == 0
        return False

    def append(self, rows: Iterable[dict[str, Any]]) -> None:
        with table_lock(self.path.parent), open(self.path, "a+b") as raw:
            new_file = self._check_existing(raw)
            with io.TextIOWrapper(raw, encoding="utf-8", newline="", write_through=True) as handle:
                writer = csv.DictWriter(handle, fieldnames=self.columns, extrasaction="raise")
                if new_file:
                    writer.writeheader()
                for row in rows:
                    writer.writerow({column: _cell(row.get(column)) for column in self.columns})
                handle.flush()
                os.fsync(handle.fileno())


def drop_trial_rows(run_dir: Path, file_names: Sequence[str], trial_id: str) -> int:
    """Remove every row of one trial from the named tables of a run directory (holding the tables lock); returns
    the rows removed. A distributed study hands a trial out again when its worker died or went silent, and the new
    attempt starts from scratch: the rows the old attempt wrote must go first, or they would be duplicated."""
    needle = b"\n" + trial_id.encode("utf-8") + b","
    removed = 0
    with table_lock(run_dir):
        for name in file_names:
            path = Path(run_dir) / name
            if not path.exists():
                continue
            data = path.read_bytes()
            if needle not in data:  # the common case: nothing of this trial was written (trial_id is column one)
                continue
            lines = data.split(b"\n")
            body = lines[1:-1]  # the last piece is empty, or a line torn by a killed writer: dropped either way
            kept = [line for line in body if not line.startswith(trial_id.encode("utf-8") + b",")]
            removed += len(body) - len(kept)
            temporary = path.with_suffix(path.suffix + ".tmp")
            temporary.write_bytes(b"\n".join([lines[0], *kept]) + b"\n")
            os.replace(temporary, path)
    return removed


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    return value


#: Compiled loss-gradient functions by model key (see :func:`loss_gradients`).
_GRADIENT_FUNCTIONS = CompiledFunctions()


def _compiled_gradient(model: keras.Model, structure: Any) -> Any:
    """A compiled function (trainable values, non-trainable values, inputs, labels) -> gradients.

    It runs ``template.stateless_call`` on the values it is given, so one compilation serves every model with
    the same :func:`study.compiled.model_key` (a cell's trials).
    """
    template = model

    def mean_loss(trainable, non_trainable, inputs, labels):
        probabilities, _ = template.stateless_call(trainable, non_trainable, inputs, training=False)
        return keras.ops.mean(keras.losses.sparse_categorical_crossentropy(labels, probabilities))

    return _GRADIENT_FUNCTIONS.get(model_key(model, structure), lambda: compile_gradient(mean_loss, 0))


def loss_gradients(model: keras.Model, inputs: np.ndarray, labels: np.ndarray, structure: Any = None) -> list[np.ndarray]:
    """The gradient of the mean cross-entropy over ``inputs`` with respect to every trainable variable.

    Inference mode (dropout off, BatchNorm moving statistics) and no penalty, so the same weights always give
    the same gradient and epochs compare. Keras 3 has no backend-neutral gradient call, so: TensorFlow's
    GradientTape and JAX's ``grad`` (both compiled, and shared by models whose ``structure`` the caller names:
    a hashable key of the graph, such as the architecture, to which the variables' shapes are added), and PyTorch's
    ``torch.autograd.grad`` (eager, as PyTorch runs). Returned in the order of ``model.trainable_variables``.
    """
    backend = keras.backend.backend()
    variables = list(model.trainable_variables)
    targets = keras.ops.convert_to_tensor(np.asarray(labels, dtype=np.int32))
    if backend == "torch":
        import torch

        with torch.enable_grad():
            probabilities = model(inputs, training=False)
            loss = keras.ops.mean(keras.losses.sparse_categorical_crossentropy(targets, probabilities))
            gradients = torch.autograd.grad(loss, [variable.value for variable in variables], allow_unused=True)
    elif backend in ("tensorflow", "jax"):
        function = _compiled_gradient(model, structure if structure is not None else ("model", id(model)))
        gradients = function(*weight_values(model), keras.ops.convert_to_tensor(np.asarray(inputs)), targets)
    else:
        raise ValueError(f"gradient norms are recorded on the tensorflow, jax and torch backends, not {backend!r}")
    return [np.zeros(tuple(variable.shape)) if gradient is None
            else np.asarray(keras.ops.convert_to_numpy(gradient), dtype=np.float64)
            for variable, gradient in zip(variables, gradients)]


def weight_kind(layer: keras.layers.Layer, variable: keras.Variable) -> str:
    """The kind of one trainable weight (see study.tables.GRADIENT_KINDS), from its name and layer type."""
    name = variable.name.rsplit("/", 1)[-1]
    if name == "recurrent_kernel":
        return "recurrent_kernel"
    if name == "kernel":
        return "convolution_kernel" if "Conv" in type(layer).__name__ else "input_kernel"
    if name == "bias":
        return "bias"
    if name in ("gamma", "beta"):
        return "normalisation"
    return "other"


def layer_weight_kinds(model: keras.Model) -> list[tuple[str, int, str, list[int]]]:
    """(layer name, layer index, kind, positions in model.trainable_variables) for every weighted layer.

    Layer indices count the layers that hold trainable weights, from the input side, starting at 1, so the
    first row is the first layer a gradient reaches last.
    """
    position = {id(variable): index for index, variable in enumerate(model.trainable_variables)}
    groups: list[tuple[str, int, str, list[int]]] = []
    layer_index = 0
    for layer in model.layers:
        weights = [variable for variable in layer.trainable_weights if id(variable) in position]
        if not weights:
            continue
        layer_index += 1
        kinds: dict[str, list[int]] = {}
        for variable in weights:
            kinds.setdefault(weight_kind(layer, variable), []).append(position[id(variable)])
        groups.extend((layer.name, layer_index, kind, indices) for kind, indices in kinds.items())
    return groups


def gradient_norm_rows(model: keras.Model, inputs: np.ndarray, labels: np.ndarray,
                       structure: Any = None) -> list[dict[str, Any]]:
    """One row per (layer, kind): the L2 norm of the loss gradient over those weights."""
    gradients = loss_gradients(model, inputs, labels, structure)
    rows = []
    for layer, layer_index, kind, indices in layer_weight_kinds(model):
        total = sum(float(np.sum(np.square(gradients[index]))) for index in indices)
        rows.append({"layer": layer, "layer_index": layer_index, "kind": kind, "norm": math.sqrt(total)})
    return rows


class GradientRecorder(keras.callbacks.Callback):
    """Writes per-layer gradient norms on a fixed training batch at initialisation and after every epoch.

    Rows go to ``gradients.csv`` as they are produced, like ``epochs.csv``: a killed run loses at most the
    epoch in progress, and a resumed study drops the rows of unfinished trials. A continued Hyperband trial
    (``initial_epoch > 0``) has no epoch-0 rows: its parent recorded them.
    """

    def __init__(self, *, inputs: np.ndarray, labels: np.ndarray, row_base: dict[str, Any], writer: RowWriter,
                 initial_epoch: int = 0, structure: Any = None):
        super().__init__()
        self.inputs, self.labels = inputs, labels
        self.structure = structure
        self.row_base = row_base
        self.writer = writer
        self.initial_epoch = initial_epoch
        self.seconds = 0.0

    def _record(self, epoch: int) -> None:
        started = time.perf_counter()
        rows = [{**self.row_base, "epoch": epoch, **row}
                for row in gradient_norm_rows(self.model, self.inputs, self.labels, self.structure)]
        self.writer.append(rows)
        self.seconds += time.perf_counter() - started

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.initial_epoch == 0:
            self._record(0)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._record(epoch + 1)


class EpochRecorder(keras.callbacks.Callback):
    """Records every epoch's inference-mode train/validation scores and keeps the best weights.

    ``row_base`` holds the trial's columns (trial id, phase, hyperparameters, seed).
    The best epoch is the one with the lowest validation loss; its weights are kept
    in memory so the test split can be evaluated at the restored best epoch.
    Training stops when the pure training loss is no longer finite. ``structure`` (the architecture) lets a
    cell's trials share one compiled inference function (see :func:`predict_probabilities`).
    """

    def __init__(self, *, train_inputs: np.ndarray, train_labels: np.ndarray, val_inputs: np.ndarray,
                 val_labels: np.ndarray, row_base: dict[str, Any], writer: RowWriter, structure: Any = None):
        super().__init__()
        self.structure = structure
        # One prediction call per epoch over both splits.
        self.inputs = np.concatenate([train_inputs, val_inputs])
        self.train_count = len(train_labels)
        self.train_labels, self.val_labels = train_labels, val_labels
        self.row_base = row_base
        self.writer = writer
        self.rows: list[dict[str, Any]] = []
        self.best_val_loss = math.inf
        self.best_epoch: int | None = None
        self.best_weights: list[np.ndarray] | None = None
        self.diverged_epoch: int | None = None
        self._epoch_start = 0.0

    @property
    def diverged(self) -> bool:
        """Whether a train, validation or Keras fit loss became NaN or infinite."""
        return self.diverged_epoch is not None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        fit_seconds = time.perf_counter() - self._epoch_start
        eval_start = time.perf_counter()
        probabilities = predict_probabilities(self.model, self.inputs, structure=self.structure)
        train = score_probabilities(probabilities[: self.train_count], self.train_labels)
        val = score_probabilities(probabilities[self.train_count:], self.val_labels)
        eval_seconds = time.perf_counter() - eval_start
        fit_loss = float((logs or {}).get("loss", float("nan")))
        row = {
            **self.row_base,
            "epoch": epoch + 1,
            "train_loss": train.loss, "train_accuracy": train.accuracy, "train_macro_f1": train.macro_f1,
            "train_balanced_accuracy": train.balanced_accuracy,
            "val_loss": val.loss, "val_accuracy": val.accuracy, "val_macro_f1": val.macro_f1,
            "val_balanced_accuracy": val.balanced_accuracy,
            "fit_loss": fit_loss, "seconds": round(fit_seconds, 4), "eval_seconds": round(eval_seconds, 4),
        }
        self.writer.append([row])
        self.rows.append(row)
        if math.isfinite(val.loss) and val.loss < self.best_val_loss:
            self.best_val_loss = val.loss
            self.best_epoch = epoch + 1
            self.best_weights = [np.array(weight, copy=True) for weight in self.model.get_weights()]
        if not (math.isfinite(train.loss) and math.isfinite(val.loss) and math.isfinite(fit_loss)):
            if self.diverged_epoch is None:
                self.diverged_epoch = epoch + 1
            self.model.stop_training = True
