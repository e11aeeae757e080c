"""Run a study end to end: lock, resume or start afresh, search, write the manifest.

A study lives in ``runs/<name>/``: ``epochs.csv``, ``trials.csv``,
``manifest.json``, the keras-tuner project in ``tuner/`` and best-epoch weights in
``weights/``. Running the same study again continues it: finished trials are
kept, the interrupted one is redone, and rows of unfinished trials are dropped
so that ``epochs.csv`` has no duplicate and no missing rows.
"""
from __future__ import annotations

import csv
import datetime as dt
import fcntl
import io
import json
import os
import shutil
import sys
import time
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from study.config import SearchSpace
from study.datasets import Dataset, load_dataset
from study.errors import BadInput
from study.tables import (CLASS_COLUMNS, CLASSES_FILE, EPOCHS_FILE, GRADIENT_COLUMNS, GRADIENTS_FILE, MANIFEST_FILE,
                          RECEPTIVE_FIELD_COLUMNS, RECEPTIVE_FIELDS_FILE, TRIALS_FILE, epoch_columns, trial_columns)

PACKAGES = ("tensorflow", "keras", "keras-tuner", "numpy", "pandas", "scikit-learn", "scipy", "seaborn", "wfdb",
            "jax", "torch")


class StudyBusy(BadInput):
    """Another process holds the study's lock."""


class Progress:
    """One study-level line per finished trial: trials done of total, elapsed, ETA."""

    def __init__(self, name: str, total: int, done: int, stream=sys.stdout):
        self.name, self.total, self.done = name, total, done
        self.resumed_at = done
        self.failed = 0
        self.started = time.monotonic()
        self.stream = stream

    def trial_done(self, failed: bool = False) -> None:
        self.done += 1
        self.failed += int(failed)
        elapsed = time.monotonic() - self.started
        finished_here = self.done - self.resumed_at
        remaining = max(self.total - self.done, 0)
        eta = elapsed / finished_here * remaining if finished_here else float("nan")
        failed_note = f", {self.failed} failed" if self.failed else ""
        print(f"[{self.name}] {self.done}/{self.total} trials{failed_note} | elapsed {_duration(elapsed)}"
              f" | ETA {_duration(eta)}", file=self.stream, flush=True)


def _duration(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s" if seconds >= 3600 \
        else f"{seconds // 60}m{seconds % 60:02d}s"


@contextmanager
def study_lock(runs_dir: Path, name: str) -> Iterator[None]:
    """Hold an exclusive lock on a study for this process; refuse if another process holds it."""
    lock_path = runs_dir / f".{name}.lock"
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
        handle = open(lock_path, "a+")
    except OSError as error:
        raise BadInput(f"cannot keep studies there ({error.strerror or error})", source=str(runs_dir),
                       key="--runs-dir") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise StudyBusy(f"study {name!r} is already running ({holder}); wait for it or use another --name",
                        source=str(runs_dir / name)) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}")
    handle.flush()
    try:
        yield
    finally:
        handle.close()


def package_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return versions


def backend_version(backend: str) -> str | None:
    """The installed version of a Keras backend's package (tensorflow, jax or torch)."""
    try:
        return metadata.version(backend)  # the backends' names are their packages' names
    except metadata.PackageNotFoundError:
        return None


def write_json_atomic(path: Path, document: dict[str, Any]) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def _header_line(columns: list[str]) -> str:
    """The header line RowWriter writes for ``columns`` (csv.writer: no quoting of plain names)."""
    buffer = io.StringIO()
    csv.writer(buffer).writerow(columns)
    return buffer.getvalue().rstrip("\r\n")


def check_table_header(path: Path, columns: list[str]) -> bool:
    """Check an existing table's header against the current columns before a study resumes.

    Returns True when the header is torn and must be repaired (:func:`repair_table_header`):
    the file holds only part of its first line, or a first line that is a strict
    prefix of the expected header and no rows, or rows that are all complete
    (as many fields as the current columns) under a header cut short. A missing
    or empty file is fine (the header is written with the first row). Any other
    difference is a BadInput naming the file: the rows were written for other
    columns and must not be continued.
    """
    if not path.exists():
        return False
    refuse = "use --overwrite to start afresh or --name for a new study"
    try:
        data = path.read_bytes()
    except OSError as error:
        raise BadInput(f"cannot check its header ({error.strerror or error}); {refuse}", source=str(path)) from None
    if not data:
        return False
    expected = _header_line(columns).encode("utf-8")
    first, newline, rest = data.partition(b"\n")
    first = first.rstrip(b"\r")
    complete = data[: data.rfind(b"\n") + 1]  # a torn last line is dropped on resume, never read
    try:
        lines = complete.decode("utf-8").splitlines()
    except UnicodeDecodeError as error:
        if first == expected or expected.startswith(first):
            line = complete[: error.start].count(b"\n") + 1
            raise BadInput(f"line {line} is not UTF-8 text; {refuse}", source=str(path)) from None
        lines = []
    if first == expected and newline:
        return False
    if expected.startswith(first):
        if not newline or not rest.strip():
            return True  # torn while the header (or its line end) was written: no rows yet
        rows = list(csv.reader(lines[1:]))
        if all(len(row) == len(columns) for row in rows if row):
            return True
    found = first.decode("utf-8", "replace")
    found = found if len(found) <= 60 else found[:60] + "..."
    raise BadInput(f"its header does not match the current columns (found {found!r}); this table was written by "
                   f"another version of the study or by hand; {refuse}", source=str(path))


def repair_table_header(path: Path, columns: list[str]) -> None:
    """Rewrite a torn header line (see :func:`check_table_header`), keeping the complete rows."""
    complete, _ = _complete_lines(path)
    temporary = path.with_suffix(".tmp")
    with open(temporary, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for line in complete[1:]:
            handle.write(line + "\r\n")
    os.replace(temporary, path)


def _complete_lines(path: Path) -> tuple[list[str], bool]:
    """A table's lines without a last row torn by a kill, and whether one was torn."""
    if not path.exists():
        return [], False
    data = path.read_bytes()
    torn = bool(data) and not data.endswith(b"\n")
    if torn:  # cut before decoding: a kill may have split a character of the torn line
        data = data[: data.rfind(b"\n") + 1]
    return data.decode("utf-8").splitlines(), torn


def keep_rows(path: Path, keep_trial_ids: set[str], *, last_per_trial: bool = False) -> int:
    """Rewrite a table keeping rows of the given trials; drops a torn last line. Returns rows removed."""
    lines, torn = _complete_lines(path)
    if not lines:
        return 0
    reader = csv.reader(lines)
    header = next(reader)
    trial_column = header.index("trial_id")
    rows = [row for row in reader if row and row[trial_column] in keep_trial_ids]
    if last_per_trial:
        latest = {row[trial_column]: row for row in rows}
        rows = [row for row in rows if latest[row[trial_column]] is row]
    removed = len(lines) - 1 - len(rows)
    if removed == 0 and not torn:
        return 0  # nothing to drop: leave a large epochs.csv alone
    temporary = path.with_suffix(".tmp")
    with open(temporary, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    os.replace(temporary, path)
    return removed


#: Parts of a space that change how a study is read, not what it ran: a resume may change them, and the
#: manifest then records the new ones.
ANALYSIS_ONLY_KEYS = ("source", "analysis", "claims", "question")


def _comparable(space_dict: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in space_dict.items() if key not in ANALYSIS_ONLY_KEYS}


def train_eval_indices(dataset: Dataset, space: SearchSpace) -> np.ndarray:
    """The fixed training subset for inference-mode train scores: as large as the validation split by default."""
    size = space.training.train_eval_size or len(dataset.y_val)
    size = min(size, len(dataset.y_train))
    rng = np.random.default_rng(space.tuner.seed)
    return np.sort(rng.permutation(len(dataset.y_train))[:size])


def data_record(context) -> dict[str, Any]:
    """The manifest's record of the study's data: the dataset's own record, or, for a space with scientific
    dataset parameters, one record per level under ``levels`` (its factor values, then what the dataset records:
    parameters, content hash, sizes, class counts, ...) beside the name, classes and parameters they share;
    ``content_hash`` then hashes the levels' hashes in order, and ``sizes`` and ``class_counts`` add the levels
    up (chance levels come from the pooled class counts)."""
    if not context.levels:
        return context.dataset.describe()
    import hashlib

    levels = []
    for factor_values, (data, indices) in zip(context.space.dataset.levels(), context.levels.values()):
        described = {key: value for key, value in data.describe().items() if key not in ("name", "class_names")}
        levels.append({"factors": factor_values, **described, "train_eval_size": int(len(indices))})
    first = levels[0]
    shapes = {tuple(level["input_shape"]) for level in levels}
    return {
        "name": context.dataset.name,
        "parameters": context.space.dataset.parameters_dict(),
        "content_hash": hashlib.sha256("".join(level["content_hash"] for level in levels).encode()).hexdigest(),
        "class_names": list(context.dataset.class_names),
        "input_shape": first["input_shape"] if len(shapes) == 1 else "per level",
        "sizes": {split: sum(level["sizes"][split] for level in levels) for split in first["sizes"]},
        "class_counts": {split: {name: sum(level["class_counts"][split][name] for level in levels)
                                 for name in counts} for split, counts in first["class_counts"].items()},
        "levels": levels,
    }


def study_context(space: SearchSpace, runs_dir: Path, *, data_dir: Path | None = None, dataset: Dataset | None = None,
                  shared: bool = False):
    """Load a study's data (every level of its scientific dataset parameters) and return its
    :class:`study.tuning.StudyContext`; the chief and every worker of a distributed study build the same one."""
    from study.tuning import StudyContext, dataset_level_key

    levels: dict[tuple[str, ...], tuple[Dataset, np.ndarray]] = {}
    if space.dataset.factors:
        if dataset is not None:
            raise ValueError("a space with scientific dataset parameters loads the data of each level itself")
        for level in space.dataset.levels():
            data = load_dataset(space.dataset.name, space.dataset.level_parameters(level), data_dir,
                                source=space.source)
            levels[dataset_level_key(space, level)] = (data, train_eval_indices(data, space))
        dataset = next(iter(levels.values()))[0]
        for level, (data, _) in zip(space.dataset.levels(), levels.values()):
            if data.class_names != dataset.class_names:
                raise BadInput(f"the level {level} has the classes {list(data.class_names)}, the first level "
                               f"{list(dataset.class_names)}; allowed: levels that keep the classes (a study compares "
                               "one task across levels)", source=space.source, key="dataset.parameters")
    elif dataset is None:
        dataset = load_dataset(space.dataset.name, dict(space.dataset.parameters), data_dir, source=space.source)
    return StudyContext(space=space, dataset=dataset, run_dir=Path(runs_dir) / space.name,
                        train_eval_indices=train_eval_indices(dataset, space), levels=levels, shared=shared)


def run_study(space: SearchSpace, *, runs_dir: Path = Path("runs"), overwrite: bool = False,
              data_dir: Path | None = None, dataset: Dataset | None = None, verbose: bool = True,
              chief=None) -> Path:
    """Run (or resume) a study; returns its run directory.

    ``dataset``: the data to use instead of loading the space's (only for a space without scientific dataset
    parameters). A space with them loads the data of every level once, here, before anything is written.
    ``chief`` (a :class:`study.distributed.ChiefOptions`, which imports this module, not the other way round):
    serve the study's oracle to worker processes instead of training here (keras-tuner's distributed mode); None
    runs every trial in this process.
    """
    from study.tuning import matched_widths

    context = study_context(space, runs_dir, data_dir=data_dir, dataset=dataset)
    runs_dir = Path(runs_dir)
    run_dir = context.run_dir
    matched = matched_widths(space, context)  # an unmeetable parameter budget is bad input before anything is written
    with study_lock(runs_dir, space.name):
        manifest_path = run_dir / MANIFEST_FILE
        if (run_dir.exists() or run_dir.is_symlink()) and not overwrite:
            if not run_dir.is_dir() or not manifest_path.is_file():
                raise BadInput(f"{run_dir} exists but is not a study (no {MANIFEST_FILE}); use --overwrite",
                               source=str(run_dir))
            previous = _previous_manifest(manifest_path)
            if _comparable(previous["space"]) != _comparable(json.loads(json.dumps(space.to_dict(), default=str))):
                raise BadInput(f"study {space.name!r} was started with a different search space; "
                               "use --overwrite to start afresh or --name for a new study", source=str(run_dir))
            if previous["dataset"]["content_hash"] != data_record(context)["content_hash"]:
                raise BadInput(f"study {space.name!r} was started on different data; use --overwrite or --name",
                               source=str(run_dir))
            factors = space.dataset.factor_names
            current = {EPOCHS_FILE: epoch_columns(factors), TRIALS_FILE: trial_columns(factors),
                       CLASSES_FILE: CLASS_COLUMNS, GRADIENTS_FILE: GRADIENT_COLUMNS,
                       RECEPTIVE_FIELDS_FILE: RECEPTIVE_FIELD_COLUMNS}
            torn = [name for name, columns in current.items() if check_table_header(run_dir / name, columns)]
            for name in torn:  # only once every table passed: a refused study is left as it was
                repair_table_header(run_dir / name, current[name])
            manifest = previous
            current_space = json.loads(json.dumps(space.to_dict(), default=str))
            for key in ANALYSIS_ONLY_KEYS:  # how the study is read follows the space as it is now
                if key in current_space:
                    manifest["space"][key] = current_space[key]
            resumed = manifest.get("resumed")
            manifest["resumed"] = (resumed if isinstance(resumed, list) else []) + [_now()]
            manifest["finished"] = None
        else:
            if run_dir.is_symlink() or run_dir.is_file():
                run_dir.unlink()
            elif run_dir.exists():
                shutil.rmtree(run_dir)
            manifest = None
        run_dir.mkdir(parents=True, exist_ok=True)
        return _search(context, manifest, matched, verbose=verbose, chief=chief)


def _previous_manifest(path: Path) -> dict[str, Any]:
    """The manifest of the study being resumed; one that cannot tell what the study was is a BadInput."""
    refuse = "use --overwrite to start afresh or --name for a new study"
    try:
        previous = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not valid JSON"
        raise BadInput(f"cannot read the study's manifest ({reason}); {refuse}", source=str(path)) from None
    if not (isinstance(previous, dict) and isinstance(previous.get("space"), dict)
            and isinstance(previous.get("dataset"), dict) and "content_hash" in previous["dataset"]):
        raise BadInput(f"is not a study manifest (it needs a 'space' and a 'dataset' with a 'content_hash'); "
                       f"{refuse}", source=str(path))
    return previous


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _search(context, manifest: dict[str, Any] | None, matched: list[dict[str, Any]], *, verbose: bool,
            chief=None) -> Path:
    import keras

    from study.recording import table_lock
    from study.tuning import TRIAL_TABLES, StratifiedOracle, StudyTuner, epochs_per_cell, oracle_seed

    space, dataset, run_dir, indices = context.space, context.dataset, context.run_dir, context.train_eval_indices
    if manifest is None:
        manifest = {
            "study": space.name,
            "space": space.to_dict(),
            "dataset": data_record(context),
            "seeds": {"study": space.tuner.seed, "oracle": oracle_seed(space),
                      "trial_seed": "SeedSequence([study, 0, trial number]); repeats: [study, 1, cell index, seed index]",
                      "train_eval_subset": space.tuner.seed},
            "train_eval_size": int(len(indices)),
            "versions": package_versions(),
            "backend": keras.backend.backend(),
            "backend_version": backend_version(keras.backend.backend()),
            "started": _now(),
            "finished": None,
        }
    if matched:
        manifest["matched_widths"] = matched
    write_json_atomic(run_dir / MANIFEST_FILE, manifest)

    oracle = StratifiedOracle(space, seed=oracle_seed(space),
                              max_consecutive_failed_trials=space.tuner.max_consecutive_failures, run_dir=run_dir,
                              finished_repeats=_finished_repeats(run_dir))
    tuner = StudyTuner(oracle, context, directory=str(run_dir), project_name="tuner")
    ended = oracle.ended_trial_ids() | oracle.finished_repeats
    with table_lock(run_dir):  # remote workers of a restarted chief may still be writing
        for name in TRIAL_TABLES:
            keep_rows(run_dir / name, ended, last_per_trial=name == TRIALS_FILE)
    repeat_total = len(oracle.cells) * space.repeat_seeds
    total = oracle.max_trials + repeat_total
    manifest["budget"] = {"cells": len(oracle.cells), "trials_per_cell": oracle.budget_per_cell,
                          "epochs_per_cell": epochs_per_cell(space), "paired_settings": oracle.paired,
                          "trials": oracle.max_trials, "repeat_seeds": space.repeat_seeds,
                          "repeat_trials": repeat_total}
    write_json_atomic(run_dir / MANIFEST_FILE, manifest)
    progress = Progress(space.name, total, len(ended)) if verbose else None
    tuner.progress = progress
    if verbose:
        print(f"[{space.name}] {len(oracle.cells)} cells x {oracle.budget_per_cell} trials ({space.tuner.name}), "
              f"then {space.repeat_seeds} seeds of each cell's best, on {dataset.name}; {len(ended)} already done",
              flush=True)
    try:
        if chief is None:
            tuner.search(verbose=0)
        else:
            manifest.setdefault("distributed", []).append(chief.record())
            write_json_atomic(run_dir / MANIFEST_FILE, manifest)
            tuner.save()  # the oracle's state on disk: a restarted chief resumes from it
            chief.serve(oracle, run_dir=run_dir, progress=progress, verbose=verbose)
    except RuntimeError as error:
        if "consecutive failures" in str(error):
            raise StudyFailed(str(error).splitlines()[0] + "; see the message column of trials.csv") from None
        raise
    if oracle.failure is not None:
        raise StudyFailed(oracle.failure + "; see the message column of trials.csv")
    manifest["finished"] = _now()
    write_json_atomic(run_dir / MANIFEST_FILE, manifest)
    return run_dir


def _finished_repeats(run_dir: Path) -> set[str]:
    """Repeat trials whose trials.csv row was written (their records are complete)."""
    rows = csv.DictReader(_complete_lines(run_dir / TRIALS_FILE)[0])
    return {row["trial_id"] for row in rows if row.get("phase") == "repeat"}


class StudyFailed(RuntimeError):
    """Trials kept failing; the study stopped."""
