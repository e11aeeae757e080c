"""keras-tuner search with an equal nuisance-tuning budget in every scientific cell.

The whole study sits behind ONE oracle, :class:`StratifiedOracle`, so that
keras-tuner's distributed mode (one chief oracle, many workers) can run it. The
oracle holds one ordinary keras-tuner oracle per scientific cell (say ``lstm``
at depth 4), searching only the nuisance hyperparameters with the chosen
strategy (random, Bayesian, Hyperband or grid) and the same budget, and hands out
trials to the cell with the fewest trials so far. :class:`StudyTuner` trains each
trial with :class:`study.recording.EpochRecorder` and writes the tables.
"""
from __future__ import annotations

import collections
import math
import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import keras_tuner
import numpy as np
import pandas as pd
from keras_tuner.engine import base_tuner, trial as trial_module

from study import measures
from study.config import HYPERPARAMETERS, MAX_WIDTH, SearchSpace, level_key
from study.datasets import Dataset
from study.effective_field import effective_field_profile, effective_receptive_field
from study.errors import BadInput
from study.models import SIZE_ARGUMENTS, build_model, compile_model, match_width, receptive_field
from study.recording import (EpochRecorder, GradientRecorder, RowWriter, per_class_scores, predict_probabilities,
                             score_probabilities)
from study.tables import (CLASS_COLUMNS, CLASSES_FILE, COMPLETED, DIVERGED, FAILED, GRADIENT_COLUMNS, GRADIENTS_FILE,
                          HYPERPARAMETER_COLUMNS, RECEPTIVE_FIELD_COLUMNS, RECEPTIVE_FIELDS_FILE, epoch_columns,
                          trial_columns)

OBJECTIVE = keras_tuner.Objective("val_loss", direction="min")
HYPERBAND_KEYS = ("tuner/epochs", "tuner/initial_epoch", "tuner/bracket", "tuner/round", "tuner/trial_id")

#: The trial value that carries a tuning trial's nuisance draw index within its cell (see StratifiedOracle).
SETTING_KEY = "study/setting"

#: Tuners whose cells all receive the same sequence of nuisance settings (common random numbers).
#: Bayesian optimisation adapts each cell's draws to that cell's results, so its cells are not paired.
PAIRED_TUNERS = ("random", "quasi_random", "grid", "hyperband")

#: The objective reported to the oracle for a trial that never gave a finite validation loss. keras-tuner
#: promotes only completed trials, so a diverged trial is reported as completed with the worst possible
#: score: Hyperband then fills every bracket in every cell and each cell spends the same epochs.
DIVERGED_OBJECTIVE = 1.0e12

#: Examples in the fixed training batch whose loss gradient is recorded per layer (record_gradients): small, so
#: that one gradient per epoch costs a few percent of the epoch; fixed, so that epochs and trials compare.
GRADIENT_BATCH = 32


def cell_key(cell: dict[str, Any]) -> str:
    """A file-name-safe key of one scientific cell, e.g. ``architecture=lstm,depth=4``."""
    return ",".join(f"{name}={value}" for name, value in cell.items()) or "all"


def keras_tuner_space(space: SearchSpace, roles: tuple[str, ...]) -> keras_tuner.HyperParameters:
    """The keras-tuner HyperParameters of the given roles (fixed ones as ``Fixed``)."""
    hyperparameters = keras_tuner.HyperParameters()
    for spec in space.hyperparameters.values():
        if spec.role not in roles:
            continue
        if spec.role == "fixed":
            hyperparameters.Fixed(spec.name, spec.fixed_value)
        elif spec.values is not None:
            hyperparameters.Choice(spec.name, list(spec.values), ordered=HYPERPARAMETERS[spec.name].choices is None
                                   and spec.name != "architecture")
        elif HYPERPARAMETERS[spec.name].value_type is int:
            hyperparameters.Int(spec.name, int(spec.minimum), int(spec.maximum),
                                step=int(spec.step) if spec.step is not None else None,
                                sampling="log" if spec.log else "linear")
        else:
            hyperparameters.Float(spec.name, spec.minimum, spec.maximum, step=spec.step,
                                  sampling="log" if spec.log else "linear")
    return hyperparameters


class QuasiRandomOracle(keras_tuner.Oracle):
    """Quasi-random search: the j-th trial takes the j-th point of a scrambled Halton sequence.

    The Deep Learning Tuning Playbook recommends quasi-random search for exploring nuisance
    hyperparameters: low-discrepancy points cover the space more evenly than independent draws, and
    every cell oracle built with the same seed proposes the same sequence, so cells are compared on the
    same settings. Points come from ``scipy.stats.qmc.Halton`` and are mapped to values by keras-tuner's
    own ``prob_to_value`` of each hyperparameter (log sampling and steps included).
    """

    def __init__(self, max_trials: int, **kwargs: Any):
        super().__init__(max_trials=max_trials, **kwargs)
        self._next_point = 0

    def populate_space(self, trial_id):
        if self._next_point >= self.max_trials:
            return {"status": trial_module.TrialStatus.STOPPED, "values": None}
        from scipy.stats import qmc

        space = [hp for hp in self.hyperparameters.space
                 if not isinstance(hp, keras_tuner.engine.hyperparameters.Fixed)]
        values = {}
        if space:
            sampler = qmc.Halton(d=len(space), scramble=True, seed=self.seed)
            point = sampler.random(self._next_point + 1)[-1]
            values = {hp.name: hp.prob_to_value(float(probability)) for hp, probability in zip(space, point)}
        self._next_point += 1
        return {"status": trial_module.TrialStatus.RUNNING, "values": values}

    def get_state(self):
        state = super().get_state()
        state["next_point"] = self._next_point
        return state

    def set_state(self, state):
        super().set_state(state)
        self._next_point = int(state.get("next_point", 0))


def _inner_oracle(space: SearchSpace, seed: int) -> keras_tuner.Oracle:
    """One keras-tuner oracle over the nuisance hyperparameters of one cell."""
    tuner = space.tuner
    common = dict(objective=OBJECTIVE, hyperparameters=keras_tuner_space(space, ("nuisance",)), seed=seed,
                  tune_new_entries=False, allow_new_entries=False, max_consecutive_failed_trials=10**9)
    if tuner.name == "random":
        return keras_tuner.oracles.RandomSearchOracle(max_trials=tuner.trials_per_cell, **common)
    if tuner.name == "quasi_random":
        return QuasiRandomOracle(max_trials=tuner.trials_per_cell, **common)
    if tuner.name == "bayesian":
        return keras_tuner.oracles.BayesianOptimizationOracle(max_trials=tuner.trials_per_cell, **common)
    if tuner.name == "grid":
        return keras_tuner.oracles.GridSearchOracle(max_trials=None, **common)
    if tuner.name == "hyperband":
        return keras_tuner.oracles.HyperbandOracle(max_epochs=space.hyperparameters["epochs"].fixed_value,
                                                   factor=tuner.hyperband_factor,
                                                   hyperband_iterations=tuner.hyperband_iterations, **common)
    raise ValueError(f"unknown tuner {tuner.name!r}")


def epochs_per_cell(space: SearchSpace) -> int | None:
    """The epochs every cell is allotted by the tuner (None when epochs is not fixed).

    Hyperband: the sum over its schedule of (epochs of a round - epochs of the
    round it continues), diverged trials included (they are completed with the
    worst score, so every bracket fills in every cell).
    """
    if space.hyperparameters["epochs"].role != "fixed":
        return None
    epochs = int(space.hyperparameters["epochs"].fixed_value)
    if space.tuner.name != "hyperband":
        return trials_per_cell(space) * epochs
    oracle = _inner_oracle(space, seed=1)
    total = 0
    for bracket in range(oracle._get_num_brackets()):
        for round_number in range(oracle._get_num_rounds(bracket)):
            previous = oracle._get_epochs(bracket, round_number - 1) if round_number else 0
            total += oracle._get_size(bracket, round_number) * (oracle._get_epochs(bracket, round_number) - previous)
    return total * space.tuner.hyperband_iterations


def trials_per_cell(space: SearchSpace) -> int:
    """The number of trials every cell gets under the space's tuner."""
    tuner = space.tuner
    if tuner.name in ("random", "quasi_random", "bayesian"):
        return tuner.trials_per_cell
    if tuner.name == "grid":
        return math.prod(len(list(hp.values)) for hp in keras_tuner_space(space, ("nuisance",)).space) or 1
    oracle = _inner_oracle(space, seed=1)
    per_iteration = sum(oracle._get_size(bracket, round_number)  # keras-tuner's own schedule
                        for bracket in range(oracle._get_num_brackets())
                        for round_number in range(oracle._get_num_rounds(bracket)))
    return per_iteration * tuner.hyperband_iterations


class StratifiedOracle(keras_tuner.Oracle):
    """One oracle for the whole study: one keras-tuner oracle per scientific cell, equal budgets.

    A new trial goes to the unfinished cell with the fewest trials so far, whose
    own oracle proposes the nuisance values. Trial ids are the study's; each maps
    to (cell, the cell oracle's trial id).
    """

    def __init__(self, space: SearchSpace, seed: int, max_consecutive_failed_trials: int = 10):
        self.cells = {cell_key(cell): cell for cell in space.cells()}
        self.budget_per_cell = trials_per_cell(space)
        super().__init__(objective=OBJECTIVE, max_trials=self.budget_per_cell * len(self.cells),
                         hyperparameters=keras_tuner_space(space, ("scientific", "nuisance", "fixed")),
                         tune_new_entries=False, allow_new_entries=False, seed=seed,
                         max_consecutive_failed_trials=max_consecutive_failed_trials)
        self.fixed = space.fixed_values()
        # Paired tuners: every cell oracle gets the same seed, so the j-th nuisance setting of every cell is
        # the same (common random numbers) and cells differ in their scientific values alone. Bayesian
        # optimisation adapts to each cell's results, so its cells get far-apart seeds instead
        # (keras-tuner's random sampling steps its seed by one per value drawn: seeds seed+1, seed+2, ...
        # would replay each other's draws one trial later).
        self.paired = space.tuner.name in PAIRED_TUNERS
        self.inner = {key: _inner_oracle(space, seed=trial_seed(seed, 2, 0 if self.paired else index))
                      for index, key in enumerate(self.cells)}
        for oracle in self.inner.values():
            oracle.verbose = 0
        # study trial id -> [cell key, cell oracle's trial id, setting index]
        self.cell_of_trial: dict[str, list[Any]] = {}
        self._finished_cells: set[str] = set()

    # -- persistence: the cell oracles live in <project>/cells/<cell key>/
    def _set_project_dir(self, directory, project_name):
        super()._set_project_dir(directory, project_name)
        for key, oracle in self.inner.items():
            oracle._set_project_dir(os.path.join(str(directory), project_name, "cells"), key)

    def reload(self):
        """Reload the study oracle and the cell oracles.

        keras-tuner's reload queues every trial that was running for a retry. The
        study oracle redoes its interrupted trial that way; the cell oracle's copy of
        that trial must go back to running under the same study trial instead of
        being handed out again as a new one.
        """
        super().reload()
        for key, oracle in self.inner.items():
            if not os.path.exists(oracle._get_oracle_fname()):
                continue
            oracle.reload()
            for inner_id in list(oracle._retry_queue):
                try:
                    study_id = self._study_trial_id(key, inner_id)
                except KeyError:
                    continue  # created by the cell oracle but never by the study: let it be handed out again
                oracle._retry_queue.remove(inner_id)
                trial = oracle.trials[inner_id]
                if trial.status not in (trial_module.TrialStatus.COMPLETED, trial_module.TrialStatus.FAILED):
                    trial.status = trial_module.TrialStatus.RUNNING
                    oracle.ongoing_trials[study_id] = trial

    def get_state(self):
        state = super().get_state()
        state["cell_of_trial"] = self.cell_of_trial
        return state

    def set_state(self, state):
        super().set_state(state)
        self.cell_of_trial = state.get("cell_of_trial", {})

    # -- search
    def populate_space(self, trial_id):
        counts = collections.Counter(entry[0] for entry in self.cell_of_trial.values())
        order = sorted(self.cells, key=lambda key: (counts[key], list(self.cells).index(key)))
        waiting = False
        for key in order:
            if key in self._finished_cells:
                continue
            inner = self.inner[key]
            inner_trial = inner.create_trial(trial_id)  # the study trial id serves as the cell oracle's tuner id
            if inner_trial.status == trial_module.TrialStatus.RUNNING:
                values = {**self.fixed, **self.cells[key], **inner_trial.hyperparameters.values}
                if "tuner/trial_id" in values:  # Hyperband continues a trial of this cell: same setting
                    values["tuner/trial_id"] = self._study_trial_id(key, values["tuner/trial_id"])
                    setting = self.setting_of(values["tuner/trial_id"])
                else:  # a new draw: the cell's next setting index (the same draw in every paired cell)
                    setting = len({self.setting_of(study_id) for study_id, entry in self.cell_of_trial.items()
                                   if entry[0] == key})
                values[SETTING_KEY] = setting
                self.cell_of_trial[trial_id] = [key, inner_trial.trial_id, setting]
                return {"status": trial_module.TrialStatus.RUNNING, "values": values}
            if inner_trial.status == trial_module.TrialStatus.STOPPED:
                self._finished_cells.add(key)
            else:
                waiting = True
        status = trial_module.TrialStatus.IDLE if waiting else trial_module.TrialStatus.STOPPED
        return {"status": status}

    def setting_of(self, study_trial_id: str) -> int:
        """The nuisance setting index of a study trial (its position among its cell's draws)."""
        entry = self.cell_of_trial[study_trial_id]
        return int(entry[2]) if len(entry) > 2 else -1

    def _study_trial_id(self, key: str, inner_id: str) -> str:
        for study_id, (cell, cell_trial_id, *_rest) in self.cell_of_trial.items():
            if cell == key and cell_trial_id == inner_id:
                return study_id
        raise KeyError(f"no study trial for {key} trial {inner_id}")

    @keras_tuner.synchronized
    def update_trial(self, trial_id, metrics, step=0):
        trial = super().update_trial(trial_id, metrics, step=step)
        key, inner_id = self.cell_of_trial[trial_id][:2]
        self.inner[key].update_trial(inner_id, metrics, step=step)
        return trial

    @keras_tuner.synchronized
    def end_trial(self, trial):
        key, inner_id = self.cell_of_trial[trial.trial_id][:2]
        super().end_trial(trial)
        inner = self.inner[key]
        status = self.trials[trial.trial_id].status
        if status not in (trial_module.TrialStatus.COMPLETED, trial_module.TrialStatus.FAILED):
            status = trial_module.TrialStatus.FAILED
        inner.end_trial(trial_module.Trial(inner.trials[inner_id].hyperparameters, inner_id, status))
        inner.save()  # keras-tuner saves before it drops the trial from its running ones

    def ended_trial_ids(self) -> set[str]:
        """Trials whose records are final (completed or failed)."""
        return set(self.end_order)


@dataclass
class StudyContext:
    """What every trial of a study shares: data, the fixed training subset, output files, seeds."""

    space: SearchSpace
    dataset: Dataset
    run_dir: Path
    train_eval_indices: np.ndarray
    phase: str = "tune"
    #: Solved widths of parameter-matched cells: builder arguments (width left out) -> (width, parameter count).
    matched: dict[tuple, tuple[int, int]] = field(default_factory=dict)
    #: The data of every level of the scientific dataset parameters (empty when none is scientific, and then
    #: ``dataset`` serves every trial): :func:`dataset_level_key` -> (dataset, its fixed training subset).
    levels: dict[tuple[str, ...], tuple[Dataset, np.ndarray]] = field(default_factory=dict)

    def data_for(self, values: dict[str, Any]) -> tuple[Dataset, np.ndarray]:
        """The dataset of a trial (``values``: its hyperparameters and cell) and its fixed training subset."""
        if not self.levels:
            return self.dataset, self.train_eval_indices
        return self.levels[dataset_level_key(self.space, values)]

    def width_for(self, hyperparameters: dict[str, Any], dataset: Dataset | None = None) -> int:
        """The trial's width: as given, or solved for its ``parameter_budget`` (see :meth:`matched_size`)."""
        if int(hyperparameters.get("parameter_budget") or 0) <= 0:
            return int(hyperparameters["width"])
        return self.matched_size(hyperparameters, dataset)[0]

    def matched_size(self, hyperparameters: dict[str, Any], dataset: Dataset | None = None) -> tuple[int, int]:
        """(width, parameter count) solved for the trial's ``parameter_budget`` on ``dataset`` (default: the
        study's), cached per architecture, budget, the builder arguments that change a model's size, and the
        data's input shape and classes."""
        dataset = dataset or self.dataset
        key = (hyperparameters["architecture"], int(hyperparameters["parameter_budget"]),
               *((name, hyperparameters.get(name)) for name in SIZE_ARGUMENTS), dataset.input_shape,
               dataset.num_classes)
        if key not in self.matched:
            self.matched[key] = match_width(dict(hyperparameters), dataset.input_shape, dataset.num_classes,
                                            int(hyperparameters["parameter_budget"]), max_width=MAX_WIDTH)
        return self.matched[key]

    @property
    def gradients_path(self) -> Path:
        return self.run_dir / GRADIENTS_FILE

    @property
    def receptive_fields_path(self) -> Path:
        return self.run_dir / RECEPTIVE_FIELDS_FILE

    @property
    def epochs_path(self) -> Path:
        return self.run_dir / "epochs.csv"

    @property
    def trials_path(self) -> Path:
        return self.run_dir / "trials.csv"

    @property
    def weights_dir(self) -> Path:
        return self.run_dir / "weights"


def matched_widths(space: SearchSpace, context: StudyContext) -> list[dict[str, Any]]:
    """Solve the width of every parameter-matched cell before anything trains, so an unmeetable budget is bad
    input at the door. Returns one row per matched cell (its scientific values, budget, width, parameter count)
    for the manifest; cells whose builder arguments are tuned nuisances are solved when their trials start."""
    key = "hyperparameters.width.match_parameters" if space.hyperparameters["parameter_budget"].role == "fixed" \
        else "hyperparameters.parameter_budget"
    nuisance = {spec.name for spec in space.with_role("nuisance")}
    if nuisance & {"architecture", "parameter_budget", *SIZE_ARGUMENTS}:
        return []
    rows = []
    for cell in space.cells():
        values = {**space.fixed_values(), **cell}
        if int(values.get("parameter_budget") or 0) <= 0:
            continue
        try:
            width, count = context.matched_size(values, context.data_for(values)[0])
        except ValueError as error:
            raise BadInput(f"{cell_key(cell)}: {error}", source=space.source, key=key) from None
        rows.append({**cell, "parameter_budget": int(values["parameter_budget"]), "width": width,
                     "parameter_count": count})
    return rows


def dataset_level_key(space: SearchSpace, values: dict[str, Any]) -> tuple[str, ...]:
    """The level of the scientific dataset parameters that ``values`` (a cell, a trial's values) name."""
    return tuple(level_key(values[name]) for name in space.dataset.factor_names)


def trial_seed(study_seed: int, *numbers: int) -> int:
    """A distinct, reproducible 31-bit seed for a trial.

    Tuning trials use ``(0, trial number)``, repeats ``(1, cell index, seed index)``.
    """
    return int(np.random.SeedSequence([study_seed, *numbers]).generate_state(1)[0] & 0x7FFFFFFF)


def class_weights(labels: np.ndarray, num_classes: int) -> dict[int, float]:
    """Inverse-frequency class weights (the 'balanced' heuristic), for imbalanced datasets."""
    counts = np.bincount(labels, minlength=num_classes).astype(float)
    return {index: float(len(labels) / (num_classes * count)) if count else 0.0 for index, count in enumerate(counts)}


def train_trial(context: StudyContext, trial_id: str, values: dict[str, Any], seed: int) -> dict[str, Any]:
    """Train one configuration, record every epoch, evaluate the test split at the best epoch.

    Returns the trial's row for trials.csv: status completed, or diverged when a
    loss became non-finite (the scores are then those of the best finite epoch, if any).
    """
    started = time.perf_counter()
    dataset, indices = context.data_for(values)
    factors = {name: values[name] for name in context.space.dataset.factor_names}
    hyperparameters = {name: values[name] for name in HYPERPARAMETER_COLUMNS}
    hyperparameters["width"] = context.width_for(hyperparameters, dataset)
    keras.utils.set_random_seed(seed)
    model = build_model(hyperparameters, dataset.input_shape, dataset.num_classes)
    compile_model(model, learning_rate=hyperparameters["learning_rate"], clipnorm=hyperparameters["clipnorm"],
                  weight_decay=hyperparameters["weight_decay"], weight_decay_type=hyperparameters["weight_decay_type"])
    epochs = int(values.get("tuner/epochs", hyperparameters["epochs"]))
    initial_epoch = int(values.get("tuner/initial_epoch", 0))
    previous = values.get("tuner/trial_id")
    trial_columns = {"setting": values.get(SETTING_KEY), "parent_trial_id": previous,
                     "epochs_allotted": epochs - initial_epoch}
    if previous is not None:
        model.load_weights(context.weights_dir / f"{previous}.weights.h5")
    row_base = {"trial_id": trial_id, "phase": context.phase, **hyperparameters, **factors, "seed": seed}

    recorder = EpochRecorder(train_inputs=dataset.x_train[indices], train_labels=dataset.y_train[indices],
                             val_inputs=dataset.x_val, val_labels=dataset.y_val, row_base=row_base,
                             writer=RowWriter(context.epochs_path, epoch_columns(list(factors))))
    callbacks: list[keras.callbacks.Callback] = [recorder]
    gradient_recorder = None
    # A fixed training batch for the gradient norms and the effective receptive field: the first GRADIENT_BATCH
    # examples of the fixed inference-mode training subset.
    batch = indices[:GRADIENT_BATCH]
    if context.space.training.record_gradients:
        # The architecture names the graph; the recorder adds the variables' shapes, so every trial of a cell
        # shares one compiled gradient.
        structure = hyperparameters["architecture"]
        gradient_recorder = GradientRecorder(inputs=dataset.x_train[batch], labels=dataset.y_train[batch],
                                             row_base={"trial_id": trial_id, "phase": context.phase},
                                             writer=RowWriter(context.gradients_path, GRADIENT_COLUMNS),
                                             initial_epoch=initial_epoch, structure=structure)
        callbacks.append(gradient_recorder)
    model.fit(dataset.x_train, dataset.y_train, batch_size=hyperparameters["batch_size"], epochs=epochs,
              initial_epoch=initial_epoch, shuffle=True, verbose=0, callbacks=callbacks,
              class_weight=class_weights(dataset.y_train, dataset.num_classes)
              if context.space.training.class_weights else None)
    row: dict[str, Any] = {**row_base, **trial_columns, "parameter_count": model.count_params(),
                           "receptive_field": receptive_field(model),
                           "status": DIVERGED if recorder.diverged else COMPLETED}
    context.weights_dir.mkdir(exist_ok=True)
    if recorder.best_weights is None:
        # Saved anyway: Hyperband may continue this trial (it must spend the same epochs in every cell).
        model.save_weights(context.weights_dir / f"{trial_id}.weights.h5")
        row.update(message="no epoch gave a finite validation loss (training diverged)")
    else:
        if recorder.diverged:
            row.update(message=f"a loss became non-finite at epoch {recorder.diverged_epoch}; "
                               f"scores are those of the best epoch before it")
        model.set_weights(recorder.best_weights)
        model.save_weights(context.weights_dir / f"{trial_id}.weights.h5")
        row["effective_receptive_field"] = record_effective_field(context, trial_id, model,
                                                                  dataset.x_train[batch])
        test_probabilities = predict_probabilities(model, dataset.x_test)
        test = score_probabilities(test_probabilities, dataset.y_test)
        RowWriter(context.run_dir / CLASSES_FILE, CLASS_COLUMNS).append(
            {"trial_id": trial_id, "phase": context.phase, **scores}
            for scores in per_class_scores(test_probabilities, dataset.y_test, dataset.class_names))
        curve = measures.trial_measures(pd.DataFrame(recorder.rows),
                                        tolerance=context.space.analysis.onset_tolerance)
        row.update({name: curve[name] for name in ("epochs_run", "best_epoch", "best_val_loss", "best_val_accuracy",
                                                    "gap_at_best", "final_gap", "gap_growth", "overfit_onset")})
        row.update(test_loss=test.loss, test_accuracy=test.accuracy, test_macro_f1=test.macro_f1,
                   test_balanced_accuracy=test.balanced_accuracy)
    row["seconds"] = round(time.perf_counter() - started, 3)
    if gradient_recorder is not None:  # what recording the gradient norms cost this trial (make bench reports it)
        row["gradient_seconds"] = round(gradient_recorder.seconds, 3)
    keras.backend.clear_session(free_memory=False)
    return row


def record_effective_field(context: StudyContext, trial_id: str, model: keras.Model, inputs: np.ndarray) -> float:
    """Measure the model's effective receptive field on ``inputs`` (the fixed gradient batch), append its profile
    to receptive_fields.csv and return its size (NaN when no input gradient reached the output)."""
    offsets, mass = effective_field_profile(model, inputs)
    RowWriter(context.receptive_fields_path, RECEPTIVE_FIELD_COLUMNS).append(
        {"trial_id": trial_id, "phase": context.phase, "offset": int(offset),
         "mass": float(share) if math.isfinite(share) else None}
        for offset, share in zip(offsets, mass))
    return effective_receptive_field(mass)


class StudyTuner(base_tuner.BaseTuner):
    """Runs the study's trials: keras-tuner's search loop, our training and records."""

    def __init__(self, oracle: StratifiedOracle, context: StudyContext, *, directory: str, project_name: str,
                 overwrite: bool = False, progress=None):
        super().__init__(oracle=oracle, hypermodel=None, directory=directory, project_name=project_name,
                         overwrite=overwrite)
        self.context = context
        self.progress = progress
        self._rows: dict[str, dict[str, Any]] = {}

    def run_trial(self, trial, *args, **kwargs):
        trial_id = trial.trial_id
        seed = trial_seed(self.context.space.tuner.seed, 0, int(trial_id))
        try:
            row = train_trial(self.context, trial_id, dict(trial.hyperparameters.values), seed)
        except Exception:
            values = trial.hyperparameters.values
            self._rows[trial_id] = {"trial_id": trial_id, "phase": self.context.phase, "status": FAILED,
                                    **{name: values.get(name) for name in HYPERPARAMETER_COLUMNS},
                                    **{name: values.get(name) for name in self.context.space.dataset.factor_names},
                                    "seed": seed,
                                    "setting": values.get(SETTING_KEY), "parent_trial_id": values.get("tuner/trial_id"),
                                    "message": traceback.format_exc().strip().splitlines()[-1]}
            raise
        self._rows[trial_id] = row
        best = row.get("best_val_loss")
        # A diverged trial is a completed trial with the worst score, not a failure: keras-tuner's
        # Hyperband promotes only completed trials, and a failure would leave its cell's brackets unfilled.
        return {"val_loss": float(best) if best is not None and math.isfinite(float(best)) else DIVERGED_OBJECTIVE}

    def on_trial_end(self, trial):
        row = self._rows.pop(trial.trial_id, None)
        if row is not None:  # written before the oracle hears of it: a kill in between redoes the trial
            RowWriter(self.context.trials_path, trial_columns(self.context.space.dataset.factor_names)).append([row])
        super().on_trial_end(trial)
        if self.progress is not None:
            self.progress.trial_done(failed=row is None or row.get("status") in (FAILED, DIVERGED))
