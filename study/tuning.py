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
import dataclasses
import functools
import math
import os
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

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
from study.recording import (EpochRecorder, GradientRecorder, RowWriter, drop_trial_rows, per_class_scores,
                             predict_probabilities, score_probabilities)
from study.tables import (CLASS_COLUMNS, CLASSES_FILE, COMPLETED, DIVERGED, EPOCHS_FILE, FAILED, GRADIENT_COLUMNS,
                          GRADIENTS_FILE, HYPERPARAMETER_COLUMNS, RECEPTIVE_FIELD_COLUMNS, RECEPTIVE_FIELDS_FILE,
                          TRIALS_FILE, epoch_columns, trial_columns)

OBJECTIVE = keras_tuner.Objective("val_loss", direction="min")
HYPERBAND_KEYS = ("tuner/epochs", "tuner/initial_epoch", "tuner/bracket", "tuner/round", "tuner/trial_id")

#: The trial value that carries a tuning trial's nuisance draw index within its cell (see StratifiedOracle).
SETTING_KEY = "study/setting"

#: Trial values that carry a repeat-phase trial's phase and seed, and why a repeat cannot run (a cell without a
#: completed tuning trial). Repeat trials go through the oracle like tuning trials, so that the workers of a
#: distributed study (study.distributed) run them too.
PHASE_KEY = "study/phase"
SEED_KEY = "study/seed"
NO_REPEAT_KEY = "study/no_repeat"

#: The metric name (followed by the worker's tuner id) of a worker's heartbeat: sent with the standard
#: ``update_trial`` call, the only way a keras-tuner worker reaches the chief's oracle. The answer says whether the
#: worker still holds the trial (status RUNNING) or the trial was handed to another worker (status STOPPED).
HEARTBEAT_PREFIX = "study/heartbeat/"

#: The tables a trial writes rows to (all begin with trial_id): a trial handed out again starts by removing them.
TRIAL_TABLES = (EPOCHS_FILE, TRIALS_FILE, CLASSES_FILE, GRADIENTS_FILE, RECEPTIVE_FIELDS_FILE)

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


def synchronized(method):
    """keras-tuner's ``synchronized`` (one oracle call at a time, across the chief's gRPC threads), except that the
    lock is released when the method raises: keras-tuner's own wrapper then leaves it held, and the chief hangs."""
    from keras_tuner.src.engine import oracle as oracle_module

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        thread = threading.current_thread().name
        if oracle_module.THREADS[self] == thread:  # a nested call: the lock is held by this thread
            return method(self, *args, **kwargs)
        with oracle_module.LOCKS[self]:
            oracle_module.THREADS[self] = thread
            try:
                return method(self, *args, **kwargs)
            finally:
                oracle_module.THREADS[self] = None

    return wrapper


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

    def __init__(self, space: SearchSpace, seed: int, max_consecutive_failed_trials: int = 10, *,
                 run_dir: Path | None = None, finished_repeats: set[str] | frozenset[str] = frozenset()):
        self.space = space
        self.run_dir = run_dir
        #: Repeat trials finished before repeats went through the oracle (their trials.csv rows exist).
        self.finished_repeats = set(finished_repeats)
        #: Seconds without a heartbeat after which a worker's trial is handed out again (None: never; a single
        #: process holds its own trial).
        self.trial_timeout: float | None = None
        self._last_seen: dict[str, float] = {}
        self._winners = None
        #: Set when the whole study (tuning and repeats) has been handed out and ended.
        self.search_finished = False
        #: The reason the study stopped (too many consecutive failures), for the chief to report.
        self.failure: str | None = None
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

    @synchronized
    def create_trial(self, tuner_id):
        """keras-tuner's create_trial, then the repeat phase: once every tuning trial has ended, each cell's best
        setting is handed out again with fresh seeds (trial ids ``r<cell>-<seed>``). A worker asking while others
        still hold trials gets IDLE, not STOPPED, so that a trial handed out again (its worker died) still finds a
        worker, and the repeats wait for every tuning result."""
        self.release_silent_trials()
        if tuner_id in self.ongoing_trials:
            return self.ongoing_trials[tuner_id]
        trial = super().create_trial(tuner_id)
        if trial.status == trial_module.TrialStatus.RUNNING:
            self._last_seen[trial.trial_id] = time.monotonic()
        if trial.status != trial_module.TrialStatus.STOPPED:
            return trial
        self.tuner_ids.add(tuner_id)  # keras-tuner forgot this tuner when it said STOPPED; it may get a repeat
        if any(ongoing.trial_id in self.cell_of_trial for ongoing in self.ongoing_trials.values()):
            return self._idle_trial()  # the repeats need every cell's tuning winner
        repeat = self._next_repeat()
        if repeat is None:
            if self.ongoing_trials:  # the last repeats: one may yet come back to be handed out again
                return self._idle_trial()
            self.tuner_ids.discard(tuner_id)
            self.search_finished = True
            return trial
        trial_id, values = repeat
        hyperparameters = self.hyperparameters.copy()
        hyperparameters.values = values
        trial = trial_module.Trial(hyperparameters=hyperparameters, trial_id=trial_id,
                                   status=trial_module.TrialStatus.RUNNING)
        self.trials[trial_id] = trial
        self.start_order.append(trial_id)
        self.ongoing_trials[tuner_id] = trial
        self._last_seen[trial_id] = time.monotonic()
        self._save_trial(trial)
        self.save()
        self._display.on_trial_begin(trial)
        return trial

    def _idle_trial(self) -> trial_module.Trial:
        return trial_module.Trial(hyperparameters=self.hyperparameters.copy(), trial_id="idle",
                                  status=trial_module.TrialStatus.IDLE)

    def _next_repeat(self) -> tuple[str, dict[str, Any]] | None:
        """The next repeat trial not yet handed out: its id and values (the cell's best tuned setting)."""
        if self.space.repeat_seeds == 0:
            return None
        for cell_index, cell in enumerate(self.cells.values()):
            for seed_index in range(self.space.repeat_seeds):
                trial_id = repeat_trial_id(cell_index, seed_index)
                if trial_id in self.trials or trial_id in self.finished_repeats:
                    continue
                return trial_id, self._repeat_values(cell_index, cell, seed_index)
        return None

    def _repeat_values(self, cell_index: int, cell: dict[str, Any], seed_index: int) -> dict[str, Any]:
        """A repeat trial's values: its cell's tuning winner (:func:`study.statistics.selection.best_per_cell`,
        from trials.csv) with the repeat's phase and seed."""
        import pandas as pd

        from study.config import HYPERPARAMETERS
        from study.statistics.selection import best_per_cell
        from study.tables import read_trials

        space = self.space
        if self._winners is None:
            trials_path = Path(self.run_dir) / TRIALS_FILE
            trials = read_trials(self.run_dir) if trials_path.exists() else pd.DataFrame(
                columns=trial_columns(space.dataset.factor_names))
            self._winners = best_per_cell(trials, space.scientific_names)
        in_cell = self._winners
        for name, value in cell.items():
            in_cell = in_cell[in_cell[name].astype(str) == str(value)]
        values: dict[str, Any] = {PHASE_KEY: "repeat", SEED_KEY: trial_seed(space.tuner.seed, 1, cell_index, seed_index)}
        if in_cell.empty:  # every tuning trial of this cell failed: the repeat is recorded as failed
            return {**values, **cell, NO_REPEAT_KEY: "no completed tuning trial in this cell"}
        best = in_cell.iloc[0]
        values.update({name: HYPERPARAMETERS[name].value_type(best[name]) if not pd.isna(best[name])
                       else HYPERPARAMETERS[name].default for name in HYPERPARAMETER_COLUMNS})
        values.update({name: cell[name] for name in space.dataset.factor_names})
        if "setting" in best.index and not pd.isna(best["setting"]):
            values[SETTING_KEY] = int(best["setting"])
        return {name: value for name, value in values.items() if value is not None}

    @synchronized
    def release_silent_trials(self) -> None:
        """Hand out again every trial whose worker sent no heartbeat for ``trial_timeout`` seconds."""
        if self.trial_timeout is None:
            return
        now = time.monotonic()
        for tuner_id, trial in list(self.ongoing_trials.items()):
            if now - self._last_seen.get(trial.trial_id, now) > self.trial_timeout:
                self.release(tuner_id)

    @synchronized
    def release(self, tuner_id: str) -> str | None:
        """Take a worker's trial back (the worker died or went silent) and queue it to be handed out again; the
        next attempt removes what the last one wrote. Returns the trial id (None when the worker held none)."""
        trial = self.ongoing_trials.pop(tuner_id, None)
        if trial is None:
            return None
        self._last_seen.pop(trial.trial_id, None)
        self._retry_queue.append(trial.trial_id)
        self.save()
        return trial.trial_id

    def holder(self, trial_id: str) -> str | None:
        """The tuner id of the worker that holds a trial now (None: nobody)."""
        return next((tuner_id for tuner_id, trial in self.ongoing_trials.items() if trial.trial_id == trial_id), None)

    @synchronized
    def update_trial(self, trial_id, metrics, step=0):
        beats = [name for name in metrics.keys() if name.startswith(HEARTBEAT_PREFIX)]
        if beats:  # a worker's heartbeat: does it still hold the trial?
            tuner_id = beats[0][len(HEARTBEAT_PREFIX):]
            if self.holder(trial_id) == tuner_id:
                self._last_seen[trial_id] = time.monotonic()
                return self.trials[trial_id]
            return trial_module.Trial(hyperparameters=self.hyperparameters.copy(), trial_id=trial_id,
                                      status=trial_module.TrialStatus.STOPPED)
        trial = super().update_trial(trial_id, metrics, step=step)
        if trial_id in self.cell_of_trial:
            key, inner_id = self.cell_of_trial[trial_id][:2]
            self.inner[key].update_trial(inner_id, metrics, step=step)
        return trial

    @synchronized
    def end_trial(self, trial):
        if self.holder(trial.trial_id) is None:
            return  # a late report of a trial that was handed out again: the new attempt's report counts
        self._last_seen.pop(trial.trial_id, None)
        try:
            super().end_trial(trial)
        except RuntimeError as error:
            if "consecutive failures" in str(error):
                self.failure = str(error).splitlines()[0]
            raise
        if trial.trial_id not in self.cell_of_trial:  # a repeat trial: no cell oracle
            return
        key, inner_id = self.cell_of_trial[trial.trial_id][:2]
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
    #: Several worker processes append to the tables (a distributed study): see RowWriter's ``shared``.
    shared: bool = False

    def writer(self, path: Path, columns: list[str]) -> RowWriter:
        """A writer of one of the study's tables."""
        return RowWriter(path, columns, shared=self.shared)

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


def oracle_seed(space: SearchSpace) -> int:
    """The study oracle's seed: the study seed plus one, because keras-tuner treats seed 0 as "no seed"."""
    return space.tuner.seed + 1


def repeat_trial_id(cell_index: int, seed_index: int) -> str:
    """Repeat-phase trial ids: ``r<cell>-<seed>``, apart from the tuning trials' numbers."""
    return f"r{cell_index:02d}-{seed_index:02d}"


def trial_seed(study_seed: int, *numbers: int) -> int:
    """A distinct, reproducible 31-bit seed for a trial.

    Tuning trials use ``(0, trial number)``, repeats ``(1, cell index, seed index)``.
    """
    return int(np.random.SeedSequence([study_seed, *numbers]).generate_state(1)[0] & 0x7FFFFFFF)


def class_weights(labels: np.ndarray, num_classes: int) -> dict[int, float]:
    """Inverse-frequency class weights (the 'balanced' heuristic), for imbalanced datasets."""
    counts = np.bincount(labels, minlength=num_classes).astype(float)
    return {index: float(len(labels) / (num_classes * count)) if count else 0.0 for index, count in enumerate(counts)}


class TrialAbandoned(Exception):
    """The chief handed this worker's trial to another worker (this one was silent too long): stop, write nothing."""


class _OwnerCheck(keras.callbacks.Callback):
    """Asks, before each epoch's rows are written, whether this worker still holds its trial (first callback)."""

    def __init__(self, check_owner: Callable[[], None]):
        super().__init__()
        self.check_owner = check_owner

    def on_epoch_end(self, epoch, logs=None):
        self.check_owner()


def train_trial(context: StudyContext, trial_id: str, values: dict[str, Any], seed: int,
                check_owner: Callable[[], None] | None = None) -> dict[str, Any]:
    """Train one configuration, record every epoch, evaluate the test split at the best epoch.

    Returns the trial's row for trials.csv: status completed, or diverged when a
    loss became non-finite (the scores are then those of the best finite epoch, if any).
    ``check_owner`` (a distributed study's worker) raises :class:`TrialAbandoned` when the trial was handed to
    another worker; it is called before every write, so an abandoned attempt stops without writing more rows.
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

    # The architecture names the graph; study.compiled.model_key adds the input and variable shapes, so every trial
    # of a cell shares one compiled function for its predictions, one for the gradient norms and one for the
    # effective receptive field (tracing them anew for every trial cost more than an LSTM trial's calls of them).
    structure = hyperparameters["architecture"]
    recorder = EpochRecorder(train_inputs=dataset.x_train[indices], train_labels=dataset.y_train[indices],
                             val_inputs=dataset.x_val, val_labels=dataset.y_val, row_base=row_base,
                             writer=context.writer(context.epochs_path, epoch_columns(list(factors))),
                             structure=structure)
    callbacks: list[keras.callbacks.Callback] = [recorder]
    if check_owner is not None:
        callbacks.insert(0, _OwnerCheck(check_owner))
    gradient_recorder = None
    # A fixed training batch for the gradient norms and the effective receptive field: the first GRADIENT_BATCH
    # examples of the fixed inference-mode training subset.
    batch = indices[:GRADIENT_BATCH]
    if context.space.training.record_gradients:
        gradient_recorder = GradientRecorder(inputs=dataset.x_train[batch], labels=dataset.y_train[batch],
                                             row_base={"trial_id": trial_id, "phase": context.phase},
                                             writer=context.writer(context.gradients_path, GRADIENT_COLUMNS),
                                             initial_epoch=initial_epoch, structure=structure)
        callbacks.append(gradient_recorder)
    model.fit(dataset.x_train, dataset.y_train, batch_size=hyperparameters["batch_size"], epochs=epochs,
              initial_epoch=initial_epoch, shuffle=True, verbose=0, callbacks=callbacks,
              class_weight=class_weights(dataset.y_train, dataset.num_classes)
              if context.space.training.class_weights else None)
    row: dict[str, Any] = {**row_base, **trial_columns, "parameter_count": model.count_params(),
                           "receptive_field": receptive_field(model),
                           "status": DIVERGED if recorder.diverged else COMPLETED}
    if check_owner is not None:
        check_owner()
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
        row["effective_receptive_field"] = record_effective_field(context, trial_id, model, dataset.x_train[batch],
                                                                  structure=structure)
        test_probabilities = predict_probabilities(model, dataset.x_test, structure=structure)
        test = score_probabilities(test_probabilities, dataset.y_test)
        context.writer(context.run_dir / CLASSES_FILE, CLASS_COLUMNS).append(
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


def record_effective_field(context: StudyContext, trial_id: str, model: keras.Model, inputs: np.ndarray,
                           structure: Any = None) -> float:
    """Measure the model's effective receptive field on ``inputs`` (the fixed gradient batch), append its profile
    to receptive_fields.csv and return its size (NaN when no input gradient reached the output). ``structure``
    (the architecture) lets a cell's trials share one compiled gradient function."""
    offsets, mass = effective_field_profile(model, inputs, structure)
    context.writer(context.receptive_fields_path, RECEPTIVE_FIELD_COLUMNS).append(
        {"trial_id": trial_id, "phase": context.phase, "offset": int(offset),
         "mass": float(share) if math.isfinite(share) else None}
        for offset, share in zip(offsets, mass))
    return effective_receptive_field(mass)


class StudyTuner(base_tuner.BaseTuner):
    """Runs the study's trials: keras-tuner's search loop, our training and records.

    ``owner`` (a worker of a distributed study, see study.distributed.Heartbeat) keeps the chief told that this
    worker is alive and says whether it still holds its trial; a trial handed out again is redone from scratch.
    """

    def __init__(self, oracle: StratifiedOracle, context: StudyContext, *, directory: str, project_name: str,
                 overwrite: bool = False, progress=None, owner=None):
        super().__init__(oracle=oracle, hypermodel=None, directory=directory, project_name=project_name,
                         overwrite=overwrite)
        self.context = context
        self.progress = progress
        self.owner = owner
        self._rows: dict[str, dict[str, Any]] = {}
        self._abandoned: set[str] = set()

    def run_trial(self, trial, *args, **kwargs):
        trial_id = trial.trial_id
        values = dict(trial.hyperparameters.values)
        phase = str(values.get(PHASE_KEY, "tune"))
        context = self.context if phase == self.context.phase else dataclasses.replace(self.context, phase=phase)
        seed = int(values[SEED_KEY]) if SEED_KEY in values else trial_seed(context.space.tuner.seed, 0, int(trial_id))
        check_owner = None
        if self.owner is not None:  # another attempt at this trial may have written rows: start clean
            drop_trial_rows(context.run_dir, TRIAL_TABLES, trial_id)
            self.owner.begin(trial_id)
            check_owner = self.owner.check
        base = {"trial_id": trial_id, "phase": phase, "seed": seed,
                **{name: values.get(name) for name in HYPERPARAMETER_COLUMNS},
                **{name: values.get(name) for name in context.space.dataset.factor_names},
                "setting": values.get(SETTING_KEY), "parent_trial_id": values.get("tuner/trial_id")}
        if NO_REPEAT_KEY in values:
            self._rows[trial_id] = {**base, "status": FAILED, "message": values[NO_REPEAT_KEY]}
            return {"val_loss": DIVERGED_OBJECTIVE}
        try:
            row = train_trial(context, trial_id, values, seed, check_owner=check_owner)
        except TrialAbandoned:
            self._abandoned.add(trial_id)
            raise
        except Exception:
            self._rows[trial_id] = {**base, "status": FAILED,
                                    "message": traceback.format_exc().strip().splitlines()[-1]}
            raise
        self._rows[trial_id] = row
        best = row.get("best_val_loss")
        # A diverged trial is a completed trial with the worst score, not a failure: keras-tuner's
        # Hyperband promotes only completed trials, and a failure would leave its cell's brackets unfilled.
        return {"val_loss": float(best) if best is not None and math.isfinite(float(best)) else DIVERGED_OBJECTIVE}

    def on_trial_end(self, trial):
        row = self._rows.pop(trial.trial_id, None)
        if self.owner is not None:
            self.owner.end()
            if trial.trial_id in self._abandoned or not self.owner.holds(trial.trial_id):
                self._abandoned.discard(trial.trial_id)
                return  # handed to another worker: it writes the rows and reports the trial
        if row is not None:  # written before the oracle hears of it: a kill in between redoes the trial
            self.context.writer(self.context.trials_path,
                                trial_columns(self.context.space.dataset.factor_names)).append([row])
        super().on_trial_end(trial)
        if self.progress is not None:
            self.progress.trial_done(failed=row is None or row.get("status") in (FAILED, DIVERGED))
