"""Shared fixtures: tiny search spaces that train real Keras models in seconds."""
from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
PROJECT_ROOT = Path(__file__).resolve().parents[1]

TINY_SPACE = {
    "name": "tiny",
    "dataset": {"name": "synthetic_ecg", "parameters": {"n_strips": 64, "length": 32, "sampling_rate": 20.0,
                                                       "seed": 3}},
    "tuner": {"name": "random", "trials_per_cell": 2, "seed": 5},
    "repeats": {"seeds": 2},
    "hyperparameters": {
        "architecture": {"role": "scientific", "values": ["lstm", "cnn"]},
        "depth": {"role": "scientific", "values": [1, 2]},
        "dropout": {"role": "nuisance", "min": 0.0, "max": 0.3, "step": 0.1},
        "weight_decay": {"role": "nuisance", "min": 1.0e-5, "max": 1.0e-2, "log": True},
        "learning_rate": {"role": "nuisance", "values": [0.003, 0.01]},
        "width": {"role": "fixed", "value": 4},
        "epochs": {"role": "fixed", "value": 3},
        "batch_size": {"role": "fixed", "value": 32},
    },
}


def write_space(directory: Path, changes: dict | None = None, name: str = "tiny.yaml") -> Path:
    """Write TINY_SPACE with top-level sections replaced by ``changes``; returns the path."""
    document = {**TINY_SPACE, **(changes or {})}
    path = Path(directory) / name
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def run_cli(*arguments: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m study ...`` in a subprocess, as a user would."""
    environment = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "study", *arguments], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=timeout)


def start_cli(*arguments: str, cwd: Path) -> subprocess.Popen:
    """Start ``python -m study ...`` in a subprocess, as :func:`run_cli` runs it, without waiting for it (stderr
    piped, stdout discarded): ``communicate()`` waits."""
    environment = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen([sys.executable, "-m", "study", *arguments], cwd=cwd, env=environment,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def run_main(arguments: list[str]) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``python -m study ARGUMENTS`` run in this process."""
    from study.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(arguments)
        except SystemExit as stop:  # argparse: --help (0) and bad arguments (2)
            status = stop.code if isinstance(stop.code, int) else 1
    return status, out.getvalue(), err.getvalue()


def assert_clean_exit(status: int, stderr: str) -> None:
    """Exit status 0 or 2 (1 is an internal failure), no traceback, bad input in one ``study: error:`` line."""
    assert status != 1, f"internal failure: {stderr}"
    assert status in (0, 2), (status, stderr)
    assert "Traceback" not in stderr, stderr
    if status == 2:
        lines = stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("study: error: "), stderr


def snapshot(directory: Path) -> dict[str, bytes | None]:
    """Every file and folder under ``directory`` with its bytes (None for a folder)."""
    if not directory.exists():
        return {}
    return {str(path.relative_to(directory)): (path.read_bytes() if path.is_file() else None)
            for path in sorted(directory.rglob("*"))}


@pytest.fixture
def tiny_space_file(tmp_path: Path) -> Path:
    return write_space(tmp_path)
