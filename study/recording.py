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
import io
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import keras
import numpy as np
from sklearn.metrics import balanced_accuracy_score, f1_score

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


def predict_probabilities(model: keras.Model, inputs: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Class probabilities in inference mode (dropout off, BatchNorm moving statistics).

    ``predict_on_batch`` over fixed-size chunks: ``model.predict`` costs about 40 ms
    per call in data-adapter and callback set-up, which at every epoch would be a
    large share of a small model's epoch.
    """
    chunks = [np.asarray(model.predict_on_batch(inputs[start:start + batch_size]), dtype=np.float64)
              for start in range(0, len(inputs), batch_size)]
    return np.concatenate(chunks) if chunks else np.zeros((0, model.output_shape[-1]))


def score_probabilities(probabilities: np.ndarray, labels: np.ndarray) -> Scores:
    """Pure cross-entropy (no penalty, no class weights) plus accuracy, macro-F1 and balanced accuracy."""
    labels = np.asarray(labels, dtype=np.int64)
    normalised = probabilities / probabilities.sum(axis=1, keepdims=True)
    picked = np.clip(normalised[np.arange(len(labels)), labels], EPSILON, 1.0 - EPSILON)
    predictions = normalised.argmax(axis=1)
    present = np.unique(labels)
    return Scores(
        loss=float(-np.mean(np.log(picked))),
        accuracy=float(np.mean(predictions == labels)),
        macro_f1=float(f1_score(labels, predictions, labels=present, average="macro", zero_division=0)),
        balanced_accuracy=float(balanced_accuracy_score(labels, predictions)),
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


class RowWriter:
    """Appends CSV rows with a fixed header; writes the header once, flushes every row.

    Rows are never appended under a missing or different header, nor after a
    torn last line: an existing non-empty file must start with exactly this
    header line and end with a line end, else :class:`TableMismatch` is raised
    and nothing is written (the runner checks and repairs headers before a
    study resumes, so this is a last guard).
    """

    def __init__(self, path: Path, columns: Sequence[str]):
        self.path = Path(path)
        self.columns = list(columns)
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
            raise TableMismatch("its last line is torn; refusing to append rows after it (run the study again to "
                                "resume it: that drops the torn line)", source=str(self.path))
        return False

    def append(self, rows: Iterable[dict[str, Any]]) -> None:
        with open(self.path, "a+b") as raw:
            new_file = self._check_existing(raw)
            with io.TextIOWrapper(raw, encoding="utf-8", newline="", write_through=True) as handle:
                writer = csv.DictWriter(handle, fieldnames=self.columns, extrasaction="raise")
                if new_file:
                    writer.writeheader()
                for row in rows:
                    writer.writerow({column: _cell(row.get(column)) for column in self.columns})
                handle.flush()
                os.fsync(handle.fileno())


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    return value


class EpochRecorder(keras.callbacks.Callback):
    """Records every epoch's inference-mode train/validation scores and keeps the best weights.

    ``row_base`` holds the trial's columns (trial id, phase, hyperparameters, seed).
    The best epoch is the one with the lowest validation loss; its weights are kept
    in memory so the test split can be evaluated at the restored best epoch.
    Training stops when the pure training loss is no longer finite.
    """

    def __init__(self, *, train_inputs: np.ndarray, train_labels: np.ndarray, val_inputs: np.ndarray,
                 val_labels: np.ndarray, row_base: dict[str, Any], writer: RowWriter):
        super().__init__()
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
        probabilities = predict_probabilities(self.model, self.inputs)
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
