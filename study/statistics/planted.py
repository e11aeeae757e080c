"""Study tables with a known answer: epochs.csv, trials.csv and a manifest generated in vectorised numpy.

Used by the tests (null studies, planted effects, the "other arm" confound,
diverged trials, a 100,000-row benchmark) and by ``make bench``. Nothing is
trained: every trial's curves follow a simple model whose parameters are
planted per cell, so the right verdict is known.

Curve model of a trial that trains (epoch e = 1..E): the inference-mode train
loss falls from the chance loss towards a floor at a per-setting speed,
``train(e) = floor + (chance - floor) * exp(-e / tau)``; the validation loss is
``train(e) + kappa * (chance - train(e)) + noise``, so the gap grows with
training progress at the planted rate ``kappa`` (its gap at a matched train
loss is kappa x (chance - target)). A trial that does not train stays at the
chance loss and chance accuracy. A diverged trial's losses become NaN at a
given epoch and the run stops there.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from study.tables import EPOCH_COLUMNS, TRIAL_COLUMNS

CellFunction = Callable[..., float]


def _constant(value: float) -> CellFunction:
    return lambda architecture, depth, *level: value


def _at(function: CellFunction, architecture: str, depth: int, level: float | None) -> float:
    """A planted cell value: function(architecture, depth), or function(architecture, depth, level) when the
    study has a third scientific factor."""
    return function(architecture, depth) if level is None else function(architecture, depth, level)


@dataclass(frozen=True)
class PlantedStudy:
    """What a generated study plants: per-cell chance of training and gap rate, layout and noise."""

    depths: tuple[int, ...] = (1, 2, 4, 8)
    architectures: tuple[str, ...] = ("lstm", "cnn")
    settings_per_cell: int = 6
    repeat_seeds: int = 3
    epochs: int = 20
    num_classes: int = 4
    train_probability: CellFunction = field(default=_constant(0.9))
    kappa: CellFunction = field(default=_constant(0.6))
    kappa_sd: float = 0.15
    noise: float = 0.01
    paired: bool = True
    diverge: dict = field(default_factory=dict)   # (phase, trial_id) -> epoch at which losses become NaN
    seed: int = 0
    #: A third scientific factor (dropout or weight_decay) and its levels; the cell functions then take
    #: (architecture, depth, level). Empty: the depth study alone.
    factor: str = "dropout"
    levels: tuple[float, ...] = ()
    #: The manifest space's claims: section (as parsed YAML), or None for none.
    claims: list | None = None


def _trial_curves(rng: np.random.Generator, plan: PlantedStudy, trains: bool, kappa: float, tau: float,
                  chance: float, diverge_at: int | None) -> dict[str, np.ndarray]:
    epochs = np.arange(1, plan.epochs + 1, dtype=float)
    if trains:
        floor = 0.05 * chance
        train = floor + (chance - floor) * np.exp(-epochs / tau)
        train = train + rng.normal(0.0, plan.noise, size=epochs.size)
        val = train + kappa * (chance - train) + rng.normal(0.0, plan.noise, size=epochs.size)
    else:
        train = chance + np.abs(rng.normal(0.0, plan.noise, size=epochs.size))
        val = chance + np.abs(rng.normal(0.0, plan.noise, size=epochs.size))
    progress = np.clip(1.0 - train / chance, 0.0, 1.0)
    low = 1.0 / plan.num_classes
    train_accuracy = low + (1.0 - low) * progress
    val_accuracy = low + (1.0 - low) * np.clip(1.0 - val / chance, 0.0, 1.0)
    curves = {"epoch": epochs.astype(int), "train_loss": train, "val_loss": val,
              "train_accuracy": train_accuracy, "train_balanced_accuracy": train_accuracy,
              "train_macro_f1": train_accuracy, "val_accuracy": val_accuracy,
              "val_balanced_accuracy": val_accuracy, "val_macro_f1": val_accuracy, "fit_loss": train * 1.1}
    if diverge_at is not None:
        keep = int(diverge_at)
        curves = {name: values[:keep].astype(float).copy() if name != "epoch" else values[:keep]
                  for name, values in curves.items()}
        for name in ("train_loss", "val_loss", "fit_loss"):
            curves[name][-1] = np.nan
    return curves


def planted_tables(plan: PlantedStudy) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(epochs, trials, manifest) of a generated study; tuning trial ids are zero-padded numbers."""
    rng = np.random.default_rng(plan.seed)
    chance = math.log(plan.num_classes)
    settings = rng.uniform(size=(plan.settings_per_cell, 2))
    if plan.factor not in ("dropout", "weight_decay"):
        raise ValueError(f"factor must be 'dropout' or 'weight_decay', got {plan.factor!r}")
    cells = [(architecture, depth, level) for architecture in plan.architectures for depth in plan.depths
             for level in (plan.levels or (None,))]
    epoch_parts, trial_rows = [], []
    number = 0
    winners: dict[tuple, dict] = {}
    width = len(str(len(cells) * plan.settings_per_cell))
    for setting in range(plan.settings_per_cell):
        for cell in cells:
            architecture, depth, level = cell
            draw = settings[setting] if plan.paired else rng.uniform(size=2)
            trial_id = f"{number:0{width}d}"
            number += 1
            trains = rng.random() < _at(plan.train_probability, architecture, depth, level)
            kappa = max(0.0, _at(plan.kappa, architecture, depth, level) + rng.normal(0.0, plan.kappa_sd))
            tau = 2.0 + 4.0 * draw[1]
            row = _trial(rng, plan, "tune", trial_id, cell, setting, draw, trains, kappa, tau, chance, epoch_parts)
            trial_rows.append(row)
            best = winners.get(cell)
            if row["status"] == "completed" and (best is None or row["best_val_loss"] < best["best_val_loss"]):
                winners[cell] = {**row, "_kappa": kappa, "_tau": tau, "_trains": trains, "_draw": draw}
    for index, cell in enumerate(cells):
        winner = winners.get(cell)
        if winner is None:
            continue
        for seed_index in range(plan.repeat_seeds):
            trial_id = f"r{index:02d}-{seed_index:02d}"
            kappa = max(0.0, winner["_kappa"] + rng.normal(0.0, plan.kappa_sd / 3))
            trial_rows.append(_trial(rng, plan, "repeat", trial_id, cell, winner["setting"], winner["_draw"],
                                     winner["_trains"], kappa, winner["_tau"], chance, epoch_parts))
    epochs = pd.concat(epoch_parts, ignore_index=True)[EPOCH_COLUMNS]
    trials = pd.DataFrame(trial_rows).reindex(columns=TRIAL_COLUMNS)
    class_names = [f"class{index}" for index in range(plan.num_classes)]
    manifest = {
        "study": "planted",
        "space": {
            "name": "planted", "tuner": {"name": "quasi_random" if plan.paired else "bayesian",
                                         "trials_per_cell": plan.settings_per_cell, "seed": plan.seed},
            "repeats": {"seeds": plan.repeat_seeds},
            "hyperparameters": {
                "architecture": {"role": "scientific", "values": list(plan.architectures)},
                "depth": {"role": "scientific", "values": list(plan.depths)},
                "dropout": {"role": "nuisance", "min": 0.0, "max": 0.5},
                "learning_rate": {"role": "nuisance", "min": 1e-4, "max": 1e-2, "log": True},
                **({plan.factor: {"role": "scientific", "values": list(plan.levels)}} if plan.levels else {}),
                "width": {"role": "fixed", "value": 16},
                "epochs": {"role": "fixed", "value": plan.epochs},
            },
        },
        "dataset": {"name": "planted", "class_names": class_names, "content_hash": "planted",
                    "class_counts": {"train": {name: 100 for name in class_names}}},
        "started": "2026-01-01T00:00:00+00:00", "finished": "2026-01-01T01:00:00+00:00",
    }
    if plan.claims is not None:
        manifest["space"]["claims"] = plan.claims
    return epochs, trials, manifest


def _trial(rng, plan, phase, trial_id, cell, setting, draw, trains, kappa, tau, chance, parts) -> dict:
    architecture, depth, level = cell
    diverge_at = plan.diverge.get((phase, trial_id))
    curves = _trial_curves(rng, plan, trains, kappa, tau, chance, diverge_at)
    dropout = float(level) if level is not None and plan.factor == "dropout" else round(0.5 * float(draw[0]), 6)
    weight_decay = float(level) if level is not None and plan.factor == "weight_decay" else 0.0
    learning_rate = float(10 ** (-4 + 2 * draw[1]))
    base = {"trial_id": trial_id, "phase": phase, "architecture": architecture, "depth": depth, "width": 16,
            "kernel_size": 7, "dropout": dropout, "recurrent_dropout": 0.0, "weight_decay": weight_decay,
            "weight_decay_type": "l2", "learning_rate": learning_rate, "clipnorm": 0.0, "epochs": plan.epochs,
            "batch_size": 64, "parameter_budget": 0,
            "seed": int(rng.integers(0, 2**31 - 1))}
    count = len(curves["epoch"])
    part = pd.DataFrame({**{name: [value] * count for name, value in base.items()}, **curves,
                         "seconds": 0.1, "eval_seconds": 0.01})
    parts.append(part)
    val = curves["val_loss"]
    finite = np.isfinite(val)
    best = int(np.argmin(np.where(finite, val, np.inf))) if finite.any() else None
    status = "diverged" if diverge_at is not None else "completed"
    return {**base, "status": status, "setting": setting, "parameter_count": 1000 * depth,
            "epochs_run": count, "best_epoch": None if best is None else best + 1,
            "best_val_loss": None if best is None else float(val[best]),
            "best_val_accuracy": None if best is None else float(curves["val_accuracy"][best]),
            "test_accuracy": 0.5, "test_macro_f1": 0.5, "test_balanced_accuracy": 0.5, "seconds": 1.0}
