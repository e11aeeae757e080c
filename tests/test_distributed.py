"""A study over several processes (study.distributed): the chief, local and joining workers, SIGKILL.

The process tests run real chiefs and workers (``python -m study run --workers N`` and ``python -m study
worker``) on a tiny study, kill them with SIGKILL mid-trial, and compare every table with the same study run
in one process (one thread everywhere, so seeded CPU runs are bitwise repeatable).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import PROJECT_ROOT, TINY_SPACE, assert_clean_exit, run_cli, run_main, write_space

#: Eight epochs, so that a trial lasts long enough after its first epoch row for the tests to catch it mid-way
#: (with TINY_SPACE's three, a trial took 0.3-1.5 s once per-cell compilation made trials fast, and a test once
#: missed every trial of a worker).
SPACE_CHANGES = {"tuner": {"name": "random", "trials_per_cell": 1, "seed": 7}, "repeats": {"seeds": 1},
                 "training": {"record_gradients": True},
                 "hyperparameters": {**TINY_SPACE["hyperparameters"], "epochs": {"role": "fixed", "value": 8}}}
TRIALS = 4 * 1 + 4 * 1  # four cells: one tuning trial and one repeat each
#: Every table and the columns that key one of its rows; timing columns differ between runs.
TABLES = {"epochs.csv": ["trial_id", "epoch"], "trials.csv": ["trial_id"],
          "gradients.csv": ["trial_id", "epoch", "layer", "kind"], "receptive_fields.csv": ["trial_id", "offset"],
          "classes.csv": ["trial_id", "class_name"]}
TIMING_COLUMNS = ["seconds", "eval_seconds", "gradient_seconds"]
ONE_THREAD = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": "1"}


def _environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", **ONE_THREAD}


def _start(arguments: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "study", *arguments], cwd=cwd, env=_environment(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for(predicate, timeout: float, process: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if process is not None and process.poll() is not None:
            raise AssertionError(f"process ended early:\n{process.stdout.read() if process.stdout else ''}")
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # not there yet, or caught mid-write


def _trial_in_progress(run_dir: Path, tuner_id: str) -> str | None:
    """The trial ``tuner_id`` holds once it has written an epoch row and no trials.csv row (mid-trial)."""
    oracle = _read_json(run_dir / "tuner" / "oracle.json") or {}
    trial_id = (oracle.get("ongoing_trials") or {}).get(tuner_id)
    if trial_id is None:
        return None
    epochs = (run_dir / "epochs.csv").read_text() if (run_dir / "epochs.csv").exists() else ""
    trials = (run_dir / "trials.csv").read_text() if (run_dir / "trials.csv").exists() else ""
    started = f"\n{trial_id},tune," in epochs or f"\n{trial_id},repeat," in epochs
    ended = f"\n{trial_id}," in trials
    return trial_id if started and not ended else None


def _finish(process: subprocess.Popen, timeout: float = 240) -> str:
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        raise AssertionError(f"the chief did not finish:\n{output}")
    assert process.returncode == 0, output
    return output


def assert_same_tables(run_dir: Path, reference: Path) -> None:
    """Every table has the reference's rows (timings aside), each row once."""
    for name, keys in TABLES.items():
        tables = [pd.read_csv(directory / name, dtype={"trial_id": str}) for directory in (run_dir, reference)]
        distributed, single = (table.drop(columns=[c for c in TIMING_COLUMNS if c in table])
                               .sort_values(keys).reset_index(drop=True) for table in tables)
        assert not distributed.duplicated(keys).any(), name
        pd.testing.assert_frame_equal(distributed, single, check_exact=True, obj=name)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, Path]:
    """(space file, run directory) of the study run in one process."""
    directory = tmp_path_factory.mktemp("single")
    space_file = write_space(directory, SPACE_CHANGES)
    process = _start(["run", str(space_file), "--runs-dir", "runs", "--quiet"], directory)
    _finish(process)
    run_dir = directory / "runs" / "tiny"
    assert len(pd.read_csv(run_dir / "trials.csv")) == TRIALS
    return space_file, run_dir


def test_two_workers_survive_a_killed_worker_and_a_killed_chief_and_write_the_tables_of_one_process(reference,
                                                                                                   tmp_path):
    space_file, single = reference
    command = ["run", str(space_file), "--runs-dir", "runs", "--workers", "2"]
    run_dir = tmp_path / "runs" / "tiny"
    chief = _start(command, tmp_path)
    # a local worker killed mid-trial is replaced, and its trial handed out again at once
    killed = _wait_for(lambda: _trial_in_progress(run_dir, "worker0"), timeout=180, process=chief)
    os.kill(_read_json(run_dir / "chief.json")["workers"]["worker0"], signal.SIGKILL)
    _wait_for(lambda: "worker0-1" in (_read_json(run_dir / "chief.json") or {}).get("workers", {}), timeout=60,
              process=chief)
    # the chief killed once a few trials have ended: its workers die with it
    _wait_for(lambda: (run_dir / "trials.csv").exists() and len((run_dir / "trials.csv").read_text().splitlines()) > 3,
              timeout=180, process=chief)
    workers = list(_read_json(run_dir / "chief.json")["workers"].values())
    chief.send_signal(signal.SIGKILL)
    first_output, _ = chief.communicate(timeout=30)
    assert f"worker0 exited with status -9; trial {killed} is handed out again" in first_output

    def gone(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"  # exited, not yet reaped

    _wait_for(lambda: all(gone(pid) for pid in workers), timeout=20)
    # the same command again resumes the study
    output = _finish(_start(command, tmp_path))
    assert f"{TRIALS}/{TRIALS} trials" in output
    assert_same_tables(run_dir, single)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert [run["workers"] for run in manifest["distributed"]] == [2, 2] and len(manifest["resumed"]) == 1
    assert manifest["finished"] and manifest["backend"] == "tensorflow" and manifest["backend_version"]
    assert not (run_dir / "chief.json").exists()  # the chief removes its address when it is done


def test_a_silent_worker_loses_its_trial_after_the_timeout_and_the_study_finishes(reference, tmp_path):
    space_file, single = reference
    chief = _start(["run", str(space_file), "--runs-dir", "runs", "--workers", "1", "--threads", "1",
                    "--trial-timeout", "4"], tmp_path)
    run_dir = tmp_path / "runs" / "tiny"
    _wait_for(lambda: (run_dir / "chief.json").exists(), timeout=120, process=chief)
    joined = _start(["worker", "tiny", "--runs-dir", "runs", "--id", "remote", "--threads", "1"],
                    tmp_path)  # the chief's address from chief.json
    try:
        _wait_for(lambda: _trial_in_progress(run_dir, "remote"), timeout=180, process=joined)
        joined.send_signal(signal.SIGKILL)
        joined.wait(timeout=30)
        _finish(chief)
    finally:
        for process in (joined, chief):
            if process.poll() is None:
                process.kill()
    assert_same_tables(run_dir, single)
    oracle = json.loads((run_dir / "tuner" / "oracle.json").read_text())
    assert sorted(oracle["end_order"]) == sorted(pd.read_csv(single / "trials.csv", dtype=str)["trial_id"])


@pytest.mark.parametrize("arguments, key", [
    (["worker", "nosuch"], "no study 'nosuch' here"),
    (["worker", "tiny", "--id", "chief-1"], "--id"),
    (["run", "SPACE", "--host", "0.0.0.0"], "--host needs --workers"),
    (["run", "SPACE", "--workers", "-1"], "--workers"),
    (["run", "SPACE", "--workers", "2", "--port", "70000"], "--port"),
    (["run", "SPACE", "--workers", "2", "--trial-timeout", "0"], "--trial-timeout"),
    (["run", "SPACE", "--workers", "2", "--threads", "0"], "--threads"),
    (["run", "SPACE", "--threads", "2"], "--threads needs --workers"),
])
def test_bad_distributed_arguments_are_one_line_and_exit_2(tmp_path, arguments, key):
    space_file = write_space(tmp_path, SPACE_CHANGES)
    arguments = [str(space_file) if argument == "SPACE" else argument for argument in arguments]
    status, _, stderr = run_main([*arguments, "--runs-dir", str(tmp_path / "runs")])
    assert_clean_exit(status, stderr)
    assert status == 2 and key in stderr, stderr
    assert not (tmp_path / "runs" / "tiny").exists()


def test_a_worker_without_a_chief_is_told_how_to_give_its_address(tmp_path):
    run_dir = tmp_path / "runs" / "tiny"
    run_dir.mkdir(parents=True)
    from study.config import load_space

    space = load_space(write_space(tmp_path, SPACE_CHANGES))
    (run_dir / "manifest.json").write_text(json.dumps({"space": space.to_dict(), "dataset": {"content_hash": "x"}},
                                                      default=str))
    result = run_cli("worker", "tiny", "--runs-dir", "runs", cwd=tmp_path)
    assert result.returncode == 2 and "--chief HOST:PORT" in result.stderr, result.stderr
    result = run_cli("worker", "tiny", "--runs-dir", "runs", "--chief", "nohost", cwd=tmp_path)
    assert result.returncode == 2 and "HOST:PORT" in result.stderr and "Traceback" not in result.stderr


# --------------------------------------------------------------------------- the oracle's rules, in process


@pytest.fixture
def oracle(tmp_path):
    from study.config import load_space
    from study.tuning import StratifiedOracle

    space = load_space(write_space(tmp_path, SPACE_CHANGES))
    oracle = StratifiedOracle(space, seed=8, run_dir=tmp_path)
    oracle._set_project_dir(str(tmp_path), "tuner")
    return oracle


def _beat(oracle, trial_id: str, tuner_id: str) -> str:
    from study.tuning import HEARTBEAT_PREFIX

    return oracle.update_trial(trial_id, {HEARTBEAT_PREFIX + tuner_id: 0.0}).status


def test_a_released_trial_goes_to_the_next_worker_and_its_old_holder_is_told(oracle):
    first = oracle.create_trial("a")
    assert first.status == "RUNNING" and _beat(oracle, first.trial_id, "a") == "RUNNING"
    assert oracle.release("a") == first.trial_id and oracle.release("a") is None
    again = oracle.create_trial("b")
    assert again.trial_id == first.trial_id  # the same trial id, hence the same seed and values
    assert again.hyperparameters.values == first.hyperparameters.values
    assert _beat(oracle, first.trial_id, "a") == "STOPPED" and _beat(oracle, first.trial_id, "b") == "RUNNING"
    again.status = "COMPLETED"
    oracle.update_trial(again.trial_id, {"val_loss": 1.0})
    oracle.end_trial(again)
    assert oracle.end_order == [first.trial_id]
    oracle.end_trial(again)  # a late second report of the same trial is ignored
    assert oracle.end_order == [first.trial_id]


def test_silent_workers_lose_their_trials_after_the_timeout(oracle):
    oracle.trial_timeout = 0.2
    held = oracle.create_trial("a")
    time.sleep(0.3)
    assert oracle.create_trial("b").trial_id == held.trial_id
    oracle.trial_timeout = None
    assert _beat(oracle, held.trial_id, "a") == "STOPPED"


def test_repeats_wait_for_every_tuning_trial_then_run_side_by_side(oracle, tmp_path):
    from study.tables import TRIALS_FILE, trial_columns

    handed = []
    while True:
        trial = oracle.create_trial(f"w{len(handed)}")
        if trial.status != "RUNNING":
            break
        handed.append(trial)
    assert len(handed) == 4  # every tuning trial is out
    assert trial.status == "IDLE"  # tuning trials are running: no repeat yet, and not STOPPED either
    rows = []
    for index, trial in enumerate(handed):
        values = trial.hyperparameters.values
        rows.append({**{name: values.get(name) for name in trial_columns()}, "trial_id": trial.trial_id,
                     "phase": "tune", "status": "completed", "best_val_loss": 1.0 + index})
        trial.status = "COMPLETED"
        oracle.update_trial(trial.trial_id, {"val_loss": 1.0 + index})
        oracle.end_trial(trial)
    pd.DataFrame(rows, columns=trial_columns()).to_csv(tmp_path / TRIALS_FILE, index=False)
    repeats = [oracle.create_trial(f"r{index}") for index in range(4)]
    assert [trial.trial_id for trial in repeats] == ["r00-00", "r01-00", "r02-00", "r03-00"]
    for repeat in repeats:
        values = repeat.hyperparameters.values
        winner = min((row for row in rows if all(row[name] == values[name] for name in ("architecture", "depth"))),
                     key=lambda row: row["best_val_loss"])
        assert values["learning_rate"] == winner["learning_rate"] and values["study/phase"] == "repeat"
    assert oracle.create_trial("late").status == "IDLE"  # repeats still running
    for repeat in repeats:
        repeat.status = "COMPLETED"
        oracle.update_trial(repeat.trial_id, {"val_loss": 1.0})
        oracle.end_trial(repeat)
    assert oracle.create_trial("late").status == "STOPPED" and oracle.search_finished


def test_drop_trial_rows_removes_one_trial_and_a_torn_line(tmp_path):
    from study.recording import RowWriter, drop_trial_rows

    path = tmp_path / "epochs.csv"
    path.write_bytes(b"trial_id,epoch\r\n1,1\r\n12,1\r\n1,2\r\n2,1\r\n3,")
    assert drop_trial_rows(tmp_path, ["epochs.csv", "missing.csv"], "1") == 2  # and the torn "3," goes
    assert path.read_bytes() == b"trial_id,epoch\r\n12,1\r\n2,1\r\n"
    assert drop_trial_rows(tmp_path, ["epochs.csv"], "9") == 0
    path.write_bytes(b"trial_id,epoch\r\n12,1\r\n2,")  # torn by a killed worker: a shared writer drops it
    RowWriter(path, ["trial_id", "epoch"], shared=True).append([{"trial_id": "4", "epoch": 1}])
    assert path.read_bytes() == b"trial_id,epoch\r\n12,1\r\n4,1\r\n"
