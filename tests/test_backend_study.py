"""Every Keras backend: a tiny study end to end on JAX and on PyTorch (TensorFlow, the default, runs everywhere else).

A backend whose package is not installed is skipped, unless the comma-separated ``STUDY_REQUIRE_BACKENDS``
names it (CI sets ``STUDY_REQUIRE_BACKENDS=jax``): then the test fails, so a broken install cannot pass as a skip.
"""
from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
import textwrap
import time
import warnings
from importlib import metadata
from pathlib import Path

import pandas as pd
import pytest

from study.tables import read_epochs, read_gradients, read_manifest, read_trials
from tests.conftest import PROJECT_ROOT, write_space

BACKENDS = ("jax", "torch")
# the packages each backend needs importable; the first one's version is the backend's version
BACKEND_PACKAGES = {"jax": ("jax", "jaxlib"), "torch": ("torch",)}
TORCH_WARNING_TEXT = ("RNN module weights are not part of single contiguous chunk of memory. This means they need "
                      "to be compacted at every call, possibly greatly increasing memory usage. To compact weights "
                      "again call flatten_parameters().")

# 80 strips of 48 samples; lstm and cnn at depth 1, one tuning trial each and one repeat seed (so the repeat
# phase runs), 2 epochs, gradient norms recorded (so the backend's own gradient code runs).
BACKEND_SPACE = {
    "name": "backend",
    "dataset": {"name": "synthetic_ecg", "parameters": {"n_strips": 80, "length": 48, "sampling_rate": 20.0,
                                                       "seed": 3}},
    "tuner": {"name": "random", "trials_per_cell": 1, "seed": 5},
    "repeats": {"seeds": 1},
    "training": {"record_gradients": True},
    "hyperparameters": {
        "architecture": {"role": "scientific", "values": ["lstm", "cnn"]},
        "depth": {"role": "scientific", "values": [1]},
        "dropout": {"role": "nuisance", "min": 0.0, "max": 0.2, "step": 0.1},
        "learning_rate": {"role": "nuisance", "values": [0.01]},
        "width": {"role": "fixed", "value": 4},
        "epochs": {"role": "fixed", "value": 2},
        "batch_size": {"role": "fixed", "value": 32},
    },
}
CELLS, EPOCHS, REPEAT_SEEDS = 2, 2, 1


def required_backends() -> set[str]:
    return {name.strip() for name in os.environ.get("STUDY_REQUIRE_BACKENDS", "").split(",") if name.strip()}


def require(backend: str) -> None:
    """Skip when ``backend``'s packages are missing, or fail when STUDY_REQUIRE_BACKENDS names it."""
    missing = [package for package in BACKEND_PACKAGES[backend] if importlib.util.find_spec(package) is None]
    if not missing:
        return
    message = f"KERAS_BACKEND={backend} needs {', '.join(missing)}, not importable from {sys.executable}"
    if backend in required_backends():
        pytest.fail(f"{message}, and STUDY_REQUIRE_BACKENDS={os.environ['STUDY_REQUIRE_BACKENDS']!r} requires "
                    f"it: install the pins of requirements-backends.txt into the venv", pytrace=False)
    pytest.skip(message)


def run_study_cli(backend: str, *arguments: str, cwd: Path) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "TF_CPP_MIN_LOG_LEVEL": "3",
                   "KERAS_BACKEND": backend}
    if backend == "jax":
        # XLA compiling is most of a tiny JAX study (about 23 of 39 s on 2 cores): a repeat trial compiles the very
        # programs of its cell's tuning trial. JAX's persistent cache, fresh in this test's folder, reuses them
        # (identical programs give identical executables), which saves about 15 s; nothing of ours is skipped.
        environment.update({"JAX_COMPILATION_CACHE_DIR": str(cwd / "jax_cache"),
                            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
                            "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"})
    return subprocess.run([sys.executable, "-m", "study", *arguments], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=600)


def test_required_backends_are_known():
    """A misspelt STUDY_REQUIRE_BACKENDS would require nothing; say so instead."""
    unknown = required_backends() - set(BACKENDS)
    assert not unknown, f"STUDY_REQUIRE_BACKENDS names {sorted(unknown)}; the backends tested are {BACKENDS}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_tiny_study_runs_end_to_end_on_the_backend(tmp_path, backend):
    require(backend)
    space = write_space(tmp_path, BACKEND_SPACE, name="backend.yaml")
    started = time.perf_counter()
    result = run_study_cli(backend, "run", str(space), "--runs-dir", "runs", "--quiet", cwd=tmp_path)
    seconds = time.perf_counter() - started
    assert result.returncode == 0, f"KERAS_BACKEND={backend}: exit status {result.returncode}\n{result.stderr}"
    print(f"KERAS_BACKEND={backend}: the study ran in {seconds:.1f} s")
    run_dir = tmp_path / "runs" / "backend"

    manifest = read_manifest(run_dir)
    assert manifest["backend"] == backend
    assert manifest["backend_version"] == metadata.version(BACKEND_PACKAGES[backend][0]), manifest.get("versions")
    assert manifest["finished"]

    trials = read_trials(run_dir)
    assert not trials["trial_id"].duplicated().any()
    assert trials["status"].tolist() == ["completed"] * len(trials), trials[["trial_id", "phase", "status"]]
    phases = trials["phase"].value_counts().to_dict()
    assert phases == {"tune": CELLS, "repeat": CELLS * REPEAT_SEEDS}, phases
    assert set(trials["architecture"]) == {"lstm", "cnn"}

    epochs = read_epochs(run_dir)
    assert not epochs.duplicated(["trial_id", "epoch"]).any()
    assert len(epochs) == len(trials) * EPOCHS
    for trial_id, curve in epochs.groupby("trial_id"):
        assert sorted(curve["epoch"]) == list(range(1, EPOCHS + 1)), trial_id
    assert set(epochs["trial_id"]) == set(trials["trial_id"])
    for column in ("train_loss", "val_loss"):
        values = pd.to_numeric(epochs[column], errors="coerce")
        assert all(math.isfinite(value) for value in values), (column, epochs[["trial_id", "epoch", column]])

    gradients = read_gradients(run_dir)  # the backend's own autodiff (recording.py), for every trial
    assert set(gradients["trial_id"]) == set(trials["trial_id"])
    norms = pd.to_numeric(gradients["norm"], errors="coerce")
    assert all(math.isfinite(norm) and norm >= 0 for norm in norms) and (norms > 0).any()

    report = run_study_cli(backend, "report", "backend", "--runs-dir", "runs", "--reports-dir", "reports",
                           cwd=tmp_path)
    assert report.returncode == 0, f"KERAS_BACKEND={backend}: report exit status {report.returncode}\n{report.stderr}"
    report_dir = tmp_path / "reports" / "backend"
    for name in ("report.md", "report.html", "isolation.csv"):
        assert (report_dir / name).is_file() and (report_dir / name).stat().st_size > 0, name
    text = (report_dir / "report.md").read_text(encoding="utf-8")
    assert "lstm" in text and "cnn" in text


def test_importing_models_installs_the_torch_rnn_weights_filter():
    """In a fresh interpreter (pytest resets warnings.filters after collection, where study.models may have
    been imported already): no such filter before the import, exactly one after it."""
    script = textwrap.dedent("""
        import sys, warnings
        text = sys.argv[1]
        def count():
            return sum(action == "ignore" and category is UserWarning and message is not None
                       and message.match(text) is not None for action, message, category, *_ in warnings.filters)
        before = count()
        import study.models
        print(before, count(), "keras" in sys.modules)
    """)
    result = subprocess.run([sys.executable, "-c", script, TORCH_WARNING_TEXT], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "1", "False"], result.stdout  # and the import still loads no Keras


def test_the_filter_ignores_the_torch_rnn_weights_warning_and_nothing_else():
    """Pure Python, so it runs without torch too; the message is torch's WEIGHT_FORMAT_WARN verbatim."""
    from study import models

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.warn(TORCH_WARNING_TEXT, UserWarning)
        assert len(caught) == 1  # recorded before the filter: the check below can fail
        models.ignore_torch_rnn_weights_warning()
        warnings.warn(TORCH_WARNING_TEXT, UserWarning)
        warnings.warn("RNN module weights are fine", UserWarning)
        warnings.warn(TORCH_WARNING_TEXT, RuntimeWarning)
    assert [(str(record.message), record.category) for record in caught[1:]] == [
        ("RNN module weights are fine", UserWarning), (TORCH_WARNING_TEXT, RuntimeWarning)]


def test_torch_lstm_on_cuda_warns_without_the_filter_and_not_with_it(tmp_path):
    """Where torch sees a CUDA GPU: Keras's cuDNN LSTM path really raises torch's warning, and the filter that
    importing study.models installs hides it."""
    require("torch")
    script = textwrap.dedent("""
        import sys, warnings
        import torch
        if not torch.cuda.is_available():
            print("no-cuda")
            raise SystemExit(0)
        from study.models import TORCH_RNN_WEIGHTS_WARNING, build_lstm
        import numpy as np
        model = build_lstm((16, 1), 4, depth=2, width=8)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        x, y = np.random.default_rng(0).normal(size=(32, 16, 1)).astype("float32"), np.arange(32) % 4
        def count():
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                if sys.argv[1] == "filtered":
                    warnings.filterwarnings("ignore", message=TORCH_RNN_WEIGHTS_WARNING, category=UserWarning)
                model.fit(x, y, epochs=1, batch_size=16, verbose=0)
                model.predict(x, verbose=0)
            return sum("not part of single contiguous chunk" in str(record.message) for record in caught)
        print(count())
    """)
    environment = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "KERAS_BACKEND": "torch"}
    counts = {}
    for mode in ("unfiltered", "filtered"):
        result = subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True, timeout=300,
                                env=environment, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        if result.stdout.split()[-1:] == ["no-cuda"]:
            pytest.skip("torch sees no CUDA GPU: Keras's torch LSTM takes its non-cuDNN loop, which never warns")
        counts[mode] = int(result.stdout.split()[-1])
    assert counts["unfiltered"] > 0 and counts["filtered"] == 0, counts
