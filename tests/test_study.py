"""End-to-end studies on tiny data: tables, equal budgets per cell, every tuner, resume, locking, reports."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from study.config import load_space
from study.runner import run_study
from study.tables import (EPOCH_COLUMNS, TRIAL_COLUMNS, read_classes, read_epochs, read_gradients, read_manifest,
                          read_receptive_fields,
                          read_trials)
from tests.conftest import (PROJECT_ROOT, TINY_SPACE, assert_clean_exit, run_cli, run_main, start_cli,
                            write_space)

CELL = ["architecture", "depth"]

#: The tiny space (16 trials: 4 cells x 2 tuning trials, then 2 repeat seeds per cell) with per-layer gradients
#: recorded. The table-contract test reads its uninterrupted run; the SIGKILL test kills and resumes a run of the
#: same space and compares it against that run.
REFERENCE_CHANGES = {"training": {"record_gradients": True}}

#: TINY_SPACE at depth 1 only: two cells (lstm, cnn), enough to compare budgets across cells at half the trials.
TWO_CELLS = {**TINY_SPACE["hyperparameters"], "depth": {"role": "fixed", "value": 1}}


class ReferenceStudy:
    """The reference space run once, uninterrupted, from the command line as a user would: in the background
    from the start of this module, beside the in-process tests, when a selected test reads it (the tests that
    read it come last in this file)."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.space_file = write_space(directory, REFERENCE_CHANGES)
        self.process = start_cli("run", str(self.space_file), "--runs-dir", "runs", "--quiet", cwd=directory)
        self.stderr: str | None = None

    def run_dir(self) -> Path:
        """The finished run's directory (waits for the run; fails the test if the run failed)."""
        if self.stderr is None:
            _, self.stderr = self.process.communicate(timeout=900)
        assert self.process.returncode == 0, self.stderr
        return self.directory / "runs" / "tiny"


@pytest.fixture(scope="module", autouse=True)
def _reference_study(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """Start the reference run when the module starts, if a selected test of this module reads it."""
    wanted = any(item.module is request.module and "reference_study" in item.fixturenames
                 for item in request.session.items)
    reference = ReferenceStudy(tmp_path_factory.mktemp("reference")) if wanted else None
    yield reference
    if reference is not None and reference.process.poll() is None:
        reference.process.kill()
        reference.process.wait()


@pytest.fixture
def reference_study(_reference_study: ReferenceStudy | None) -> ReferenceStudy:
    assert _reference_study is not None
    return _reference_study


def check_tables(run_dir: Path, trials_per_cell: int | None = None,
                 repeat_seeds: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The table contract: one row per (trial, epoch), every epoch 1..E present once, one row per trial.

    Tuning trials: ``trials_per_cell`` in every cell; repeats: ``repeat_seeds`` per cell, each
    retraining its cell's best tuned setting with a seed of its own.
    """
    epochs, trials = read_epochs(run_dir), read_trials(run_dir)
    assert list(epochs.columns) == EPOCH_COLUMNS and list(trials.columns) == TRIAL_COLUMNS
    assert not trials["trial_id"].duplicated().any()
    assert not epochs.duplicated(["trial_id", "epoch"]).any()
    assert set(epochs["trial_id"]) == set(trials["trial_id"])
    for trial_id, curve in epochs.groupby("trial_id"):
        epochs_expected = int(curve["epochs"].iloc[0])
        assert sorted(curve["epoch"]) == list(range(1, epochs_expected + 1)), trial_id
    classes = read_classes(run_dir)  # per-class test scores: one row per class of every completed trial
    completed = trials.loc[trials["status"] == "completed", "trial_id"]
    assert sorted(classes["trial_id"]) == sorted(np.repeat(completed.to_numpy(), 4))
    assert set(classes["class_name"]) == {"normal", "af", "pvc", "st_elevation"}
    assert classes["recall"].between(0, 1).all()
    tuned = trials[trials["phase"] == "tune"]
    if trials_per_cell is not None:
        assert set(tuned.groupby(CELL).size()) == {trials_per_cell}
    repeats = trials[trials["phase"] == "repeat"]
    assert len(repeats) == repeat_seeds * tuned.groupby(CELL).ngroups
    for cell, group in repeats.groupby(CELL):
        in_cell = tuned[(tuned["architecture"] == cell[0]) & (tuned["depth"] == cell[1])]
        best = in_cell.sort_values(["best_val_loss", "trial_id"]).iloc[0]
        for name in ("dropout", "weight_decay", "learning_rate"):
            assert (group[name] == best[name]).all(), (cell, name)
        assert group["seed"].nunique() == repeat_seeds and not set(group["seed"]) & set(tuned["seed"])
    return epochs, trials


@pytest.mark.parametrize("tuner, expected_per_cell", [("bayesian", 2), ("grid", 4), ("hyperband", None)])
def test_every_tuner_gives_every_cell_the_same_budget(tmp_path, tuner, expected_per_cell):
    changes = {"tuner": {"name": tuner, "trials_per_cell": 2, "seed": 3}, "repeats": {"seeds": 0}}
    if tuner == "grid":  # 2 dropout rates x 2 learning rates in each architecture
        space = load_space(write_space(tmp_path, {**changes, "hyperparameters": {
            "architecture": {"role": "scientific", "values": ["lstm", "cnn"]},
            "depth": {"role": "fixed", "value": 1},
            "dropout": {"role": "nuisance", "values": [0.0, 0.2]},
            "learning_rate": {"role": "nuisance", "values": [0.003, 0.01]},
            "width": {"role": "fixed", "value": 4}, "epochs": {"role": "fixed", "value": 2}}}))
    else:
        space = load_space(write_space(tmp_path, {**changes, "hyperparameters": TWO_CELLS}))
    run_dir = run_study(space, runs_dir=tmp_path / "runs", verbose=False)
    epochs, trials = read_epochs(run_dir), read_trials(run_dir)
    cell_columns = [name for name in CELL if space.hyperparameters[name].role == "scientific"]
    per_cell = trials.groupby(cell_columns).size()
    assert per_cell.nunique() == 1, per_cell
    if expected_per_cell is not None:
        assert per_cell.iloc[0] == expected_per_cell
    if tuner == "grid":
        combos = trials.groupby(cell_columns)[["dropout", "learning_rate"]].apply(
            lambda frame: sorted(map(tuple, frame.to_numpy())))
        assert all(list(value) == [(0.0, 0.003), (0.0, 0.01), (0.2, 0.003), (0.2, 0.01)] for value in combos)
    if tuner == "hyperband":
        assert per_cell.iloc[0] == read_manifest(run_dir)["budget"]["trials_per_cell"]
        assert not epochs.duplicated(["trial_id", "epoch"]).any()
        # continued trials record only the epochs they trained, after the ones they started from
        assert epochs.groupby("trial_id")["epoch"].min().max() > 1


def _wait_for(predicate, timeout: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"process ended early: {process.stderr.read() if process.stderr else ''}")
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


def _count_rows(path: Path) -> int:
    return max(len(path.read_text().splitlines()) - 1, 0) if path.exists() else 0


def test_resume_after_sigkill_keeps_finished_trials_and_redoes_the_interrupted_one(tmp_path, reference_study):
    space_file = write_space(tmp_path, REFERENCE_CHANGES)
    environment = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", "study", "run", str(space_file), "--runs-dir", "runs", "--quiet"]
    run_dir = tmp_path / "runs" / "tiny"

    def run_here(*arguments: str) -> tuple[int, str]:
        """``python -m study run`` of this space in this process: (exit status, stderr)."""
        status, _, err = run_main(["run", str(space_file), "--runs-dir", str(tmp_path / "runs"), "--quiet",
                                   *arguments])
        assert_clean_exit(status, err)
        return status, err

    def start_and_kill(finished_trials: int, check_busy: bool = False) -> None:
        """Kill the study mid-epoch once ``finished_trials`` trials are in trials.csv."""
        process = subprocess.Popen(command, cwd=tmp_path, env=environment, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)
        try:
            _wait_for(lambda: _count_rows(run_dir / "trials.csv") >= finished_trials
                      and _count_rows(run_dir / "epochs.csv") % 3 != 0, timeout=240, process=process)
            if check_busy:
                status, err = run_here()
                assert status == 2 and "already running" in err, err
                assert process.poll() is None  # refused while the study ran on, not after it ended
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()

    start_and_kill(2, check_busy=True)  # during tuning
    finished_before = read_trials(run_dir)
    assert 2 <= len(finished_before) < 8
    start_and_kill(10)  # during the repeat phase
    assert 10 <= len(read_trials(run_dir)) < 16
    resumed = run_cli("run", str(space_file), "--runs-dir", "runs", "--quiet", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    epochs, trials = check_tables(run_dir, trials_per_cell=2, repeat_seeds=2)
    assert len(trials) == 16
    kept = trials.set_index("trial_id").loc[finished_before["trial_id"]]
    np.testing.assert_array_equal(kept["seed"].to_numpy(), finished_before["seed"].to_numpy())
    assert len(read_manifest(run_dir)["resumed"]) == 2

    # the resumed study equals one that was never interrupted (seeded CPU runs are repeatable): the reference
    # run of the same space, from the command line too
    fresh_dir = reference_study.run_dir()
    fresh_epochs = read_epochs(fresh_dir).sort_values(["trial_id", "epoch"])
    resumed_epochs = epochs.sort_values(["trial_id", "epoch"])
    for column in ("trial_id", "dropout", "weight_decay", "learning_rate", "seed", "epoch"):
        np.testing.assert_array_equal(resumed_epochs[column].to_numpy(), fresh_epochs[column].to_numpy())
    np.testing.assert_allclose(resumed_epochs["val_loss"].to_numpy(), fresh_epochs["val_loss"].to_numpy(),
                               rtol=1e-5)
    # gradients.csv resumes like epochs.csv: every trial's epochs 0..3 once per (layer, kind), as in a fresh run
    keys = ["trial_id", "phase", "epoch", "layer", "kind"]
    resumed_gradients = read_gradients(run_dir).sort_values(keys).reset_index(drop=True)
    fresh_gradients = read_gradients(fresh_dir).sort_values(keys).reset_index(drop=True)
    assert not resumed_gradients.duplicated(keys).any()
    assert set(resumed_gradients["trial_id"]) == set(trials["trial_id"])
    assert all(sorted(set(group)) == [0, 1, 2, 3] for _, group in resumed_gradients.groupby("trial_id")["epoch"])
    pd.testing.assert_frame_equal(resumed_gradients[keys], fresh_gradients[keys])
    np.testing.assert_allclose(resumed_gradients["norm"].to_numpy(), fresh_gradients["norm"].to_numpy(), rtol=1e-4)
    # receptive_fields.csv too: one profile per trial (one row per input sample), as in a fresh run
    keys = ["trial_id", "phase", "offset"]
    resumed_fields = read_receptive_fields(run_dir).sort_values(keys).reset_index(drop=True)
    fresh_fields = read_receptive_fields(fresh_dir).sort_values(keys).reset_index(drop=True)
    assert not resumed_fields.duplicated(keys).any()
    assert set(resumed_fields["trial_id"]) == set(trials["trial_id"])
    pd.testing.assert_frame_equal(resumed_fields[keys], fresh_fields[keys])
    np.testing.assert_allclose(resumed_fields["mass"].to_numpy(), fresh_fields["mass"].to_numpy(), atol=1e-6)

    # a finished study run again does nothing new; --overwrite starts afresh; a changed space is refused
    # (in this process: these runs train little or nothing, and a new process would cost more than they do)
    assert run_here()[0] == 0 and len(read_trials(run_dir)) == 16
    # claims say how a study is read, not what it ran: adding them resumes, and the manifest records them
    import yaml

    document = yaml.safe_load(space_file.read_text(encoding="utf-8"))
    document["claims"] = [{"factor": "depth", "measure": "gap_at_target", "direction": "increases"}]
    space_file.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    assert run_here()[0] == 0 and len(read_trials(run_dir)) == 16
    assert read_manifest(run_dir)["space"]["claims"][0]["factor"] == "depth"
    status, err = run_here("--epochs", "4")
    assert status == 2 and "different search space" in err
    assert len(read_epochs(run_dir)) == len(epochs)
    assert run_here("--epochs", "1", "--trials", "1", "--seeds", "0", "--overwrite")[0] == 0
    assert set(read_epochs(run_dir)["epoch"]) == {1} and "resumed" not in read_manifest(run_dir)
    assert len(read_trials(run_dir)) == 4


def test_hyperband_gives_every_cell_the_same_epochs_when_trials_diverge(tmp_path):
    """keras-tuner promotes only completed trials: diverged trials are completed with the worst score, so every
    bracket still fills, every cell spends the same epochs, and the study does not stop on 'failures'."""
    import dataclasses

    from study.datasets import load_dataset

    space = load_space(write_space(tmp_path, {"tuner": {"name": "hyperband", "seed": 3}, "repeats": {"seeds": 0},
                                              "hyperparameters": TWO_CELLS}))
    clean = load_dataset(space.dataset.name, dict(space.dataset.parameters), None)
    poisoned = clean.x_train.copy()
    poisoned[::3] = np.nan  # every model's weights become NaN after its first update: every trial diverges
    dataset = dataclasses.replace(clean, x_train=poisoned)
    run_dir = run_study(space, runs_dir=tmp_path / "runs", dataset=dataset, verbose=False)
    trials = read_trials(run_dir)
    manifest = read_manifest(run_dir)
    assert set(trials["status"]) == {"diverged"}
    per_cell = trials.groupby(CELL)
    assert set(per_cell.size()) == {manifest["budget"]["trials_per_cell"]}
    assert set(per_cell["epochs_allotted"].sum()) == {manifest["budget"]["epochs_per_cell"]}
    assert trials["parent_trial_id"].notna().any()  # later rounds continued diverged trials
    from study.statistics.analysis import analyse

    analysis = analyse(read_epochs(run_dir), trials, manifest)
    assert set(analysis.trials["classification"]) == {"diverged"}
    trainability = analysis.tables["trainability"]
    assert (trainability["trainable_fraction"] == 0).all()
    # units are settings, not bracket fragments: continued trials are not counted again
    assert trainability["settings"].sum() == trials["parent_trial_id"].isna().sum()


def test_random_study_writes_the_table_contract(reference_study, tmp_path):
    run_dir = reference_study.run_dir()
    epochs, trials = check_tables(run_dir, trials_per_cell=2, repeat_seeds=2)
    assert len(trials) == 16 and set(trials["status"]) == {"completed"}
    assert trials["test_accuracy"].between(0, 1).all() and (trials["parameter_count"] > 0).all()
    # best epoch is the lowest validation loss, and the test split was scored there
    for _, trial in trials[trials["phase"] == "tune"].iterrows():
        curve = epochs[epochs["trial_id"] == trial["trial_id"]]
        assert trial["best_epoch"] == curve.loc[curve["val_loss"].idxmin(), "epoch"]
        assert trial["gap_at_best"] == pytest.approx(curve["val_loss"].min()
                                                     - curve.loc[curve["val_loss"].idxmin(), "train_loss"])
    # nuisances were tuned on common random numbers: setting j is the same draw in every cell, settings
    # differ from each other, and every trial still has a seed of its own
    tuned = trials[trials["phase"] == "tune"]
    assert sorted(tuned["setting"].unique()) == [0, 1]
    assert tuned["weight_decay"].nunique() == 2  # a continuous log range: equal values mean shared draws
    assert (tuned.groupby("setting")[["dropout", "weight_decay", "learning_rate"]].nunique() == 1).all().all()
    assert set(tuned.groupby("setting").size()) == {4}
    assert trials["seed"].nunique() == len(trials)
    # ... so the granulated Kendall tau has groups that differ in depth alone, on real tuner output
    from study.statistics.analysis import analyse
    from study.statistics.kendall import granulated_kendall_tau

    analysis = analyse(epochs, trials, read_manifest(run_dir))
    assert analysis.paired
    tau = granulated_kendall_tau(analysis.trials, measure="best_val_loss", trained_only=False).set_index("architecture")
    assert tau.loc["all", "groups"] == 4  # (lstm, cnn) x 2 settings, each over depths 1 and 2
    assert -1.0 <= tau.loc["all", "kendall_tau"] <= 1.0
    manifest = read_manifest(run_dir)
    assert manifest["dataset"]["name"] == "synthetic_ecg" and len(manifest["dataset"]["content_hash"]) == 64
    assert manifest["backend"] == "tensorflow" and manifest["versions"]["keras-tuner"] == "1.4.8"
    assert manifest["space"]["hyperparameters"]["depth"] == {"role": "scientific", "values": [1, 2]}
    assert manifest["seeds"]["study"] == 5 and manifest["seeds"]["oracle"] == 6
    assert manifest["budget"] == {"cells": 4, "trials_per_cell": 2, "epochs_per_cell": 6, "paired_settings": True,
                                  "trials": 8, "repeat_seeds": 2, "repeat_trials": 8}
    assert manifest["started"] and manifest["finished"]

    # the report is rebuilt from the run's tables alone, anywhere: the run is moved away while its reports are
    # built (and put back after, for the other test that reads it)
    moved = tmp_path / "elsewhere" / "tiny"
    moved.parent.mkdir()
    os.rename(run_dir, moved)
    processes = []
    try:  # the two reports are built side by side
        processes.append(start_cli("report", "tiny", "--runs-dir", str(moved.parent), "--reports-dir", "out",
                                   cwd=tmp_path))
        processes.append(start_cli("report", "tiny", "--runs-dir", str(moved.parent), "--reports-dir", "swapped",
                                   "--compare", "cnn", "lstm", cwd=tmp_path))
        report_stderr, swapped_stderr = (process.communicate(timeout=300)[1] for process in processes)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        os.rename(moved, run_dir)
    report, swapped = processes
    assert report.returncode == 0, report_stderr
    text = (tmp_path / "out" / "tiny" / "report.md").read_text()
    assert "tiny" in text and "lstm" in text and "cnn" in text
    isolation = pd.read_csv(tmp_path / "out" / "tiny" / "isolation.csv")
    assert len(isolation) == 4
    html = (tmp_path / "out" / "tiny" / "report.html").read_text()
    assert "Verdict" in text.split("## Isolation")[0] and "<img" in html
    assert "deeper LSTMs are harder to train than deeper CNNs" in text
    assert swapped.returncode == 0, swapped_stderr
    assert "deeper CNNs are harder to train than deeper LSTMs" in (tmp_path / "swapped" / "tiny" / "report.md").read_text()
