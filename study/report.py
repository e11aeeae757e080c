"""Build ``reports/<study>/`` from ``runs/<study>/``: the only module of the report that touches files.

:func:`build_report` reads epochs.csv, trials.csv, manifest.json and (when the
run has them) classes.csv and gradients.csv and checks them before anything is written
(:func:`load_run`): every cell is read as text and converted column by column,
so a bad cell, a row with too many fields, a duplicated (trial, phase, epoch)
row, an unknown phase or status, a missing column, an empty table or a manifest
that is not a JSON object is a one-line :class:`~study.errors.BadInput` naming
the file, the line (the header is line 1) and the column. A torn last row (no
line end, or too few fields: a writer stopped half-way) is left out and listed
among the report's data problems instead. :func:`study_note` says whether the
study is still running (its runner holds ``<runs>/.<name>.lock``) or stopped
before it finished (no end time in the manifest). Then it runs
:func:`study.statistics.analysis.analyse`, and writes what it returns:
report.md (:mod:`study.markdown`), report.html (:mod:`study.html_report`), every
table as ``<name>.csv`` and every figure of :func:`study.figures.build_figures`
as ``figures/<name>.png`` and ``.svg``.

Everything is written into a new directory next to the report directory, which
then replaces the old one whole (the old one is renamed away, the new one
renamed in, the old one deleted): a build that fails leaves the previous report
as it was, never a mix of old and new files. Nothing but the run's tables goes
in (no clock, no paths), so a copy of the run directory anywhere rebuilds the
same report.
"""
from __future__ import annotations

import csv
import fcntl
import io
import json
import math
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from study import tables
from study.config import MAX_DEPTH, MAX_EPOCHS, ROLES, AnalysisConfig
from study.errors import BadInput
from study.figures import build_figures
from study.html_report import render_html
from study.index_report import build_index, current_umask
from study.markdown import ReportContext, render_markdown
from study.statistics.analysis import Analysis, analyse
from study.statistics.summaries import CLASS_REQUIRED_COLUMNS, hyperparameters_with_role

REPORT_FILE = "report.md"
HTML_FILE = "report.html"
ANSWERS_FILE = "answers.json"
FIGURES_DIR = "figures"

#: trials.csv columns the report needs besides the scientific and nuisance hyperparameters.
TRIAL_REQUIRED_COLUMNS = ["trial_id", "status"]
#: epochs.csv columns the report needs.
EPOCH_REQUIRED_COLUMNS = ["trial_id", "architecture", "depth", "epoch", "train_loss", "val_loss", "val_accuracy"]

#: Resolution of the PNG figures.
FIGURE_DPI = 110

#: The notes at the top of a report of a study that has not finished.
RUNNING_NOTE = "partial: the study is still running"
STOPPED_NOTE = "the study stopped before it finished (run the same command again to resume it)"

_RUN_HINT = "run `python -m study run ...` first"
#: How a numeric cell may say "no value" (pandas' defaults; the runner writes NaN as an empty cell).
_MISSING = frozenset({"", "nan", "NaN", "NAN", "-nan", "-NaN", "NA", "N/A", "n/a", "<NA>", "#N/A", "null", "NULL",
                      "None"})
_PHASES = ("tune", "repeat")
_STATUSES = (tables.COMPLETED, tables.DIVERGED, tables.FAILED)


# ---------------------------------------------------------------- reading and checking


@dataclass(frozen=True)
class Column:
    """What one table column may hold.

    kind: ``text`` (missing allowed), ``name`` (non-empty text), ``choice`` (one of ``choices``),
    ``number`` (any number, NaN and infinities included: a diverged epoch's losses), ``finite``
    (a finite number in [minimum, maximum]), ``whole`` (a whole number in [minimum, maximum]). ``required``: an
    empty cell is an error (``name`` and ``choice`` are always required).
    """

    kind: str
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()


_NAME, _TEXT, _NUMBER, _FINITE = Column("name"), Column("text"), Column("number"), Column("finite")
_HYPERPARAMETER_RULES = {name: _FINITE for name in tables.HYPERPARAMETER_COLUMNS}
_HYPERPARAMETER_RULES.update(architecture=_NAME, weight_decay_type=_TEXT,
                             depth=Column("whole", required=True, minimum=1, maximum=MAX_DEPTH))
_TRIAL_KEY_RULES = {"trial_id": _NAME, "phase": Column("choice", choices=_PHASES)}

EPOCH_RULES: dict[str, Column] = {
    **_TRIAL_KEY_RULES, **_HYPERPARAMETER_RULES, "seed": _FINITE,
    "epoch": Column("whole", required=True, minimum=1, maximum=MAX_EPOCHS),
    **{name: _NUMBER for name in tables.EPOCH_METRIC_COLUMNS},
}
TRIAL_RULES: dict[str, Column] = {
    **_TRIAL_KEY_RULES, "status": Column("choice", choices=_STATUSES), **_HYPERPARAMETER_RULES,
    # A failed trial's row may lack them (a repeat of a cell whose tuning trials all failed names its cell only).
    "architecture": _TEXT, "depth": Column("whole", minimum=1, maximum=MAX_DEPTH), "seed": _FINITE,
    "setting": Column("whole", minimum=0), "parent_trial_id": _TEXT, "message": _TEXT,
    **{name: _NUMBER for name in tables.TRIAL_COLUMNS
       if name not in (*_TRIAL_KEY_RULES, "status", *_HYPERPARAMETER_RULES, "seed", "setting", "parent_trial_id",
                       "message")},
}
CLASS_RULES: dict[str, Column] = {
    **_TRIAL_KEY_RULES, "class_name": _NAME, "precision": _NUMBER, "recall": _NUMBER, "f1": _NUMBER,
    "support": _FINITE,
}
#: gradients.csv: epoch 0 is the initialisation; a norm that was not finite is written as an empty cell.
GRADIENT_RULES: dict[str, Column] = {
    **_TRIAL_KEY_RULES, "epoch": Column("whole", required=True, minimum=0, maximum=MAX_EPOCHS), "layer": _NAME,
    "layer_index": Column("whole", required=True, minimum=1),
    "kind": Column("choice", choices=(*tables.GRADIENT_KINDS, "other")), "norm": Column("finite", minimum=0),
}
#: gradients.csv columns the report needs (phase may be absent: every row is a tuning trial's).
GRADIENT_REQUIRED_COLUMNS = ["trial_id", "epoch", "layer", "layer_index", "kind", "norm"]


@dataclass(frozen=True)
class RunTables:
    """A run directory's tables as read and checked (classes and gradients: None when the run has no such file),
    and the problems the report lists (torn rows)."""

    epochs: pd.DataFrame
    trials: pd.DataFrame
    manifest: dict[str, Any]
    classes: pd.DataFrame | None
    problems: tuple[str, ...] = ()
    gradients: pd.DataFrame | None = None


def _shown(value: Any, limit: int = 40) -> str:
    """A cell for a one-line message: its text quoted, escaped and cut (a parsed number as Python writes it)."""
    text = value if isinstance(value, str) else str(value.item() if isinstance(value, np.generic) else value)
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _parse_csv(path: Path, rules: Mapping[str, Column]) -> tuple[list[str], list[Sequence[str] | np.ndarray],
                                                                np.ndarray, list[str]]:
    """(header, each column's cells, each row's 1-based line number, problems) of a CSV file.

    A column's cells are text, or a numeric array when every cell of a column the
    ``rules`` do not read as text was a number.

    A last line without a newline, or with fewer fields than the header, is torn
    (the writer was stopped half-way): it is left out and named in the problems.
    Anything else that is wrong is a BadInput naming the file and the line.
    """
    source, name = str(path), path.name
    try:
        data = path.read_bytes()
    except OSError as error:
        raise BadInput(f"cannot read the table ({error.strerror or error})", source=source) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise BadInput(f"cannot read the table (line {line} is not UTF-8 text)", source=source) from None
    if not text.strip():
        raise BadInput("is empty: not even a header line (the study has not written it yet?)", source=source)
    problems = []
    cut = max(text.rfind("\n"), text.rfind("\r")) + 1
    torn = text[cut:].strip() != ""
    if torn:
        text = text[:cut]
        problems.append(f"{name}: line {_line_count(text) + 1} is torn (it has no line end: the study was stopped "
                        "while writing it, or is still running); left out")
        if not text.strip():
            raise BadInput("holds only a torn first line, no header and no rows (the study was stopped while "
                           "writing it)", source=source)
    header: list[str] | None = None
    header_line = 0
    rows: list[list[str]] = []
    lines: list[int] = []
    if '"' not in text and text.count("\r") == text.count("\r\n") and "\x00" not in text:
        # No quoting, one kind of line end: what the runner writes (but a trials.csv message with a comma).
        text = text.replace("\r\n", "\n")
        split = text.split("\n")
        if split and split[-1] == "":
            split.pop()
        if split and all(line.strip() for line in split) and len({line.count(",") for line in split}) == 1:
            # Rectangular with no blank line: pandas' C parser reads it several times faster. Columns of
            # numbers come back parsed; any column with an empty or other cell comes back as text and is
            # checked cell by cell (text rules always read as text: trial ids like "03" stay as written).
            header = split[0].split(",")
            _check_header(header, 1, source)
            as_text = {index: str for index, column in enumerate(header)
                       if column not in rules or rules[column].kind in ("text", "name", "choice")}
            table = pd.read_csv(io.StringIO(text), header=None, skiprows=1, names=list(range(len(header))),
                                dtype=as_text, na_filter=False, engine="c", skip_blank_lines=False)
            columns: list[Sequence[str] | np.ndarray] = []
            for index in range(len(header)):
                values = table[index]
                numeric = values.dtype in (np.int64, np.float64) and index not in as_text
                columns.append(values.to_numpy() if numeric else values.to_numpy(dtype=object))
            return header, columns, np.arange(2, len(table) + 2, dtype=np.int64), problems
        for number, line in enumerate(split, start=1):
            if not line.strip():
                continue  # a blank line
            if header is None:
                header, header_line = line.split(","), number
                continue
            rows.append(line.split(","))
            lines.append(number)
    else:
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        end = 0
        try:
            for record in reader:
                start, end = end + 1, reader.line_num
                if not record or (len(record) == 1 and not record[0].strip()):
                    continue  # a blank line
                if header is None:
                    header, header_line = record, start
                    continue
                rows.append(record)
                lines.append(start)
        except csv.Error as error:
            where = f"line {end + 1}" if reader.line_num <= end + 1 else f"lines {end + 1}-{reader.line_num}"
            raise BadInput(f"{where}: not a valid CSV row ({error})", source=source) from None
    if header is None:
        raise BadInput("is empty: not even a header line", source=source)
    _check_header(header, header_line, source)
    width = len(header)
    for position, (record, line) in enumerate(zip(rows, lines)):
        if len(record) == width:
            continue
        if len(record) < width and position == len(rows) - 1 and not torn:
            problems.append(f"{name}: line {line} is torn ({len(record)} of {width} fields: the study was stopped "
                            "while writing it); left out")
            rows.pop()
            lines.pop()
            break
        raise BadInput(f"line {line}: {len(record)} fields, but the header (line {header_line}) has {width}",
                       source=source)
    columns = [list(cells) for cells in zip(*rows)] if rows else [[] for _ in header]
    return header, columns, np.asarray(lines, dtype=np.int64), problems


def _check_header(header: list[str], line: int, source: str) -> None:
    seen: dict[str, int] = {}
    for index, column in enumerate(header):
        if column in seen:
            raise BadInput(f"line {line} (the header): column {_shown(column)} appears twice "
                           f"(fields {seen[column] + 1} and {index + 1})", source=source)
        seen[column] = index


def _line_count(text: str) -> int:
    """Lines in ``text`` as the csv module counts them (a line ends at \\n, \\r\\n or \\r)."""
    return text.count("\n") + text.count("\r") - text.count("\r\n")


def _bad_cell(source: str, line: int, column: str, message: str) -> BadInput:
    return BadInput(f"line {line}, column {_shown(column)}: {message}", source=source)


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _convert(column: str, cells: Sequence[str] | np.ndarray, rule: Column | None, lines: np.ndarray,
             source: str) -> pd.Series:
    """One column from its text cells to the type its rule says (no rule: a number column when every cell is
    a number or empty, else text); the first bad cell is a BadInput naming its line and column."""
    if rule is not None and rule.kind in ("text", "name", "choice"):
        distinct = set(cells)
        if rule.kind == "text":
            return pd.Series(cells, dtype=object).replace("", None).astype("str")
        if rule.kind == "name" and all(value.strip() for value in distinct):
            return pd.Series(cells, dtype="str")
        if rule.kind == "choice" and distinct <= set(rule.choices):
            return pd.Series(cells, dtype="str")
        stripped = np.array([value.strip() for value in cells], dtype=object)
        empty = stripped == ""
        if empty.any():
            raise _bad_cell(source, int(lines[_first(empty)]), column, "is empty; a value is needed")
        if rule.kind == "choice":
            wrong = ~np.isin(stripped, list(rule.choices))
            if wrong.any():
                position = _first(wrong)
                allowed = ", ".join(repr(choice) for choice in rule.choices)
                raise _bad_cell(source, int(lines[position]), column,
                                f"{_shown(cells[position])} is not allowed; allowed: {allowed}")
            return pd.Series(stripped, dtype="str")  # " tune" is the phase tune
        return pd.Series(cells, dtype="str")
    values: np.ndarray | None = None
    if isinstance(cells, np.ndarray) and cells.dtype in (np.int64, np.float64):
        values = cells  # parsed already: every cell a number
    else:
        for dtype in (np.int64, np.float64):  # fast: every cell a number (no empty cell)
            try:
                values = np.array(cells, dtype=dtype)
                break
            except (ValueError, OverflowError, TypeError):
                continue
    if values is None:
        text = pd.Series(cells, dtype=object)
        stripped = text.str.strip()
        missing = stripped.isin(_MISSING).to_numpy()
        numbers = pd.to_numeric(stripped.where(~missing, None), errors="coerce")
        values = numbers.to_numpy(dtype=float, na_value=np.nan) if numbers.dtype == object \
            else numbers.to_numpy()
        not_number = ~missing & np.isnan(values.astype(float))
        if not_number.any():
            if rule is None:
                return text.replace("", None).astype("str")
            position = _first(not_number)
            raise _bad_cell(source, int(lines[position]), column, f"{_shown(cells[position])} is not a number")
    else:
        missing = np.zeros(len(values), dtype=bool) if values.dtype == np.int64 else np.isnan(values)
    if rule is not None:
        if rule.required and missing.any():
            position = _first(missing)
            cell = cells[position]
            what = "is empty" if isinstance(cell, str) and not cell.strip() else f"{_shown(cell)} is no value"
            raise _bad_cell(source, int(lines[position]), column, f"{what}; a number is needed")
        floats = values.astype(float)
        present = ~missing
        if rule.kind in ("finite", "whole"):
            bad = present & ~np.isfinite(floats)
            if bad.any():
                position = _first(bad)
                raise _bad_cell(source, int(lines[position]), column,
                                f"{_shown(cells[position])} is not a finite number")
        if rule.kind in ("finite", "whole") and (rule.kind == "whole" or rule.minimum is not None
                                                 or rule.maximum is not None):
            low = -np.inf if rule.minimum is None else rule.minimum
            high = np.inf if rule.maximum is None else rule.maximum
            with np.errstate(invalid="ignore"):
                bad = present & ((floats < low) | (floats > high))
                if rule.kind == "whole":
                    bad |= present & (floats != np.floor(floats))
            if bad.any():
                position = _first(bad)
                bounds = " and ".join(bound for bound in (
                    "" if rule.minimum is None else f">= {rule.minimum:g}",
                    "" if rule.maximum is None else f"<= {rule.maximum:g}") if bound)
                what = "a whole number" if rule.kind == "whole" else "a finite number"
                raise _bad_cell(source, int(lines[position]), column,
                                f"{_shown(cells[position])} is not {what}" + (f" {bounds}" if bounds else ""))
    return pd.Series(values)


def read_table(path: Path, rules: dict[str, Column], required: list[str], *,
               allow_empty: bool = False) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """(the table, each row's line number in the file, problems to list) of one CSV table of a run.

    Every cell is read as text first and then converted column by column, so a
    bad cell is reported with its line (the header is line 1) and column.
    ``allow_empty``: a header without rows is an empty table, not bad input.
    """
    path = Path(path)
    header, columns, lines, problems = _parse_csv(path, rules)
    missing = [column for column in dict.fromkeys(required) if column not in header]
    if missing:
        raise BadInput(f"lacks column(s): {', '.join(missing)} (the header is line 1)", source=str(path))
    if not len(lines) and not allow_empty:
        raise BadInput("has a header but no rows yet: nothing to report (is the study still starting?)",
                       source=str(path))
    frame = pd.DataFrame({column: _convert(column, cells, rules.get(column), lines, str(path))
                          for column, cells in zip(header, columns)})
    return frame, lines, problems


def _first_duplicate(frame: pd.DataFrame, keys: list[str]) -> tuple[int, int] | None:
    """(position of the first row that repeats an earlier row's keys, position of that earlier row)."""
    keyed = frame[keys].astype(str)
    repeated = keyed.duplicated(keep="first").to_numpy()
    if not repeated.any():
        return None
    position = int(np.flatnonzero(repeated)[0])
    same = (keyed == keyed.iloc[position]).all(axis=1).to_numpy()
    return position, int(np.flatnonzero(same)[0])


def _phase_of(frame: pd.DataFrame) -> pd.Series:
    return frame["phase"] if "phase" in frame.columns else pd.Series("tune", index=frame.index, dtype="str")


def read_manifest(path: Path) -> dict[str, Any]:
    """manifest.json as a dict; every problem is a one-line BadInput naming the file."""
    source = str(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise BadInput(f"cannot read it ({error.strerror or error})", source=source) from None
    try:
        manifest = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as error:
        raise BadInput(f"not valid JSON (byte {error.start} is not UTF-8 text)", source=source) from None
    except json.JSONDecodeError as error:
        raise BadInput(f"not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})",
                       source=source) from None
    except RecursionError:
        raise BadInput("not valid JSON (nested too deeply)", source=source) from None
    if not isinstance(manifest, dict):
        raise BadInput(f"is not a JSON object (it holds a {type(manifest).__name__})", source=source)
    return manifest


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, bool, int, float))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_manifest(manifest: dict[str, Any], source: str) -> list[str]:
    """The scientific hyperparameters of a manifest whose space and dataset record can make a report;
    anything else is a BadInput naming the file and the key."""
    space = manifest.get("space")
    if not isinstance(space, dict) or not isinstance(space.get("hyperparameters"), dict):
        raise BadInput("has no search space with hyperparameters", source=source, key="space")
    for name, spec in space["hyperparameters"].items():
        key = f"space.hyperparameters.{name}"
        if not isinstance(spec, dict):
            raise BadInput(f"expected a mapping, got {spec!r:.60}", source=source, key=key)
        if spec.get("role") not in ROLES:
            raise BadInput(f"role {spec.get('role')!r:.40} is not one of {', '.join(ROLES)}", source=source,
                           key=f"{key}.role")
        if "values" in spec and (not isinstance(spec["values"], list) or not spec["values"]
                                 or not all(_is_scalar(value) for value in spec["values"])):
            raise BadInput(f"expected a non-empty list of values, got {spec['values']!r:.60}", source=source,
                           key=f"{key}.values")
        if "value" in spec and not _is_scalar(spec["value"]):
            raise BadInput(f"expected one value, got {spec['value']!r:.60}", source=source, key=f"{key}.value")
        for bound in ("min", "max", "step"):
            if bound in spec and not (_is_number(spec[bound]) or (bound == "step" and spec[bound] is None)):
                raise BadInput(f"expected a finite number, got {spec[bound]!r:.40}", source=source,
                               key=f"{key}.{bound}")
        if "log" in spec and not isinstance(spec["log"], bool):
            raise BadInput(f"expected true or false, got {spec['log']!r:.40}", source=source, key=f"{key}.log")
    scientific = hyperparameters_with_role(space, "scientific")
    if not scientific:
        raise BadInput("the search space has no scientific hyperparameter, so there are no cells to compare",
                       source=source, key="space")
    if "tuner" in space and not isinstance(space["tuner"], (dict, str, type(None))):
        raise BadInput(f"expected a mapping, got {space['tuner']!r:.40}", source=source, key="space.tuner")
    try:
        AnalysisConfig.from_mapping(space.get("analysis"))
    except BadInput as error:
        raise BadInput(str(error).split(": ", 1)[-1], source=source) from None
    dataset = manifest.get("dataset")
    if dataset is not None and not isinstance(dataset, dict):
        raise BadInput(f"expected a mapping, got {dataset!r:.40}", source=source, key="dataset")
    dataset = dataset or {}
    names = dataset.get("class_names")
    if names is not None and (not isinstance(names, list) or not all(isinstance(item, str) for item in names)):
        raise BadInput(f"expected a list of class names, got {names!r:.60}", source=source, key="dataset.class_names")
    counts = dataset.get("class_counts")
    if counts is not None:
        if not isinstance(counts, dict):
            raise BadInput(f"expected a mapping, got {counts!r:.40}", source=source, key="dataset.class_counts")
        train = counts.get("train")
        if train is not None and (not isinstance(train, dict)
                                  or not all(_is_number(value) and value >= 0 for value in train.values())):
            raise BadInput(f"expected a mapping of class names to counts >= 0, got {train!r:.60}", source=source,
                           key="dataset.class_counts.train")
    return scientific


def load_run(run_dir: Path) -> RunTables:
    """The tables of a run directory, read and checked; every problem is a one-line BadInput naming the
    file, the line and the column, except torn last rows, which are left out and listed."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise BadInput(f"no study at {run_dir}: {_RUN_HINT}")
    for name in (tables.EPOCHS_FILE, tables.TRIALS_FILE, tables.MANIFEST_FILE):
        if not (run_dir / name).is_file():
            raise BadInput(f"no {name} in {run_dir}: the study is incomplete; {_RUN_HINT}")
    manifest_path = run_dir / tables.MANIFEST_FILE
    manifest = read_manifest(manifest_path)
    scientific = check_manifest(manifest, str(manifest_path))
    space = manifest["space"]
    problems: list[str] = []

    epochs_path = run_dir / tables.EPOCHS_FILE
    epochs, epoch_lines, found = read_table(epochs_path, EPOCH_RULES, EPOCH_REQUIRED_COLUMNS)
    problems += found
    keys = ["trial_id", "phase", "epoch"] if "phase" in epochs.columns else ["trial_id", "epoch"]
    duplicate = _first_duplicate(epochs, keys)
    if duplicate is not None:
        position, first = duplicate
        row = epochs.iloc[position]
        raise BadInput(f"line {epoch_lines[position]}, columns {', '.join(map(repr, keys))}: "
                       f"{_phase_of(epochs).iloc[position]} trial {row['trial_id']!r} has epoch {int(row['epoch'])} "
                       f"twice (first on line {epoch_lines[first]})", source=str(epochs_path))

    trials_path = run_dir / tables.TRIALS_FILE
    needed = [*TRIAL_REQUIRED_COLUMNS, *scientific, *hyperparameters_with_role(space, "nuisance")]
    trials, trial_lines, found = read_table(trials_path, TRIAL_RULES, needed)
    problems += found
    keys = ["trial_id", "phase"] if "phase" in trials.columns else ["trial_id"]
    duplicate = _first_duplicate(trials, keys)
    if duplicate is not None:
        position, first = duplicate
        raise BadInput(f"lists {_phase_of(trials).iloc[position]} trial {trials['trial_id'].iloc[position]!r} more "
                       f"than once (line {trial_lines[position]}, first on line {trial_lines[first]}; columns "
                       f"{', '.join(map(repr, keys))})", source=str(trials_path))

    classes = None
    classes_path = run_dir / tables.CLASSES_FILE
    if classes_path.is_file():
        classes, class_lines, found = read_table(classes_path, CLASS_RULES, CLASS_REQUIRED_COLUMNS)
        problems += found
        keys = ["trial_id", "phase", "class_name"] if "phase" in classes.columns else ["trial_id", "class_name"]
        duplicate = _first_duplicate(classes, keys)
        if duplicate is not None:
            position, first = duplicate
            phase = _phase_of(classes).iloc[position]
            raise BadInput(f"lists class {classes['class_name'].iloc[position]!r} of "
                           f"{'tuning' if phase == 'tune' else phase} trial {classes['trial_id'].iloc[position]!r} "
                           f"more than once (line {class_lines[position]}, first on line {class_lines[first]})",
                           source=str(classes_path))

    gradients = None
    gradients_path = run_dir / tables.GRADIENTS_FILE
    if gradients_path.is_file():
        gradients, found = read_gradients_table(gradients_path)
        problems += found
    return RunTables(epochs=epochs, trials=trials, manifest=manifest, classes=classes, problems=tuple(problems),
                     gradients=gradients)


def read_gradients_table(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """(gradients.csv as read and checked, problems to list). A header without rows (a study resumed before
    its first recorded trial finished) is an empty table; a (trial, phase, epoch, layer, kind) given twice is a
    one-line BadInput naming both lines."""
    gradients, lines, problems = read_table(path, GRADIENT_RULES, GRADIENT_REQUIRED_COLUMNS, allow_empty=True)
    keys = ["trial_id", "phase", "epoch", "layer", "kind"] if "phase" in gradients.columns \
        else ["trial_id", "epoch", "layer", "kind"]
    duplicate = _first_duplicate(gradients, keys) if len(gradients) else None
    if duplicate is not None:
        position, first = duplicate
        row = gradients.iloc[position]
        raise BadInput(f"line {lines[position]}, columns {', '.join(map(repr, keys))}: "
                       f"{_phase_of(gradients).iloc[position]} trial {row['trial_id']!r} has layer {row['layer']!r} "
                       f"kind {row['kind']!r} at epoch {int(row['epoch'])} twice (first on line {lines[first]})",
                       source=str(path))
    return gradients, problems


def study_note(run_dir: Path, manifest: Mapping[str, Any], *, runs_dir: Path | None = None) -> str | None:
    """The note at the top of the report of a study that has not finished, or None.

    The runner holds an exclusive ``flock`` on ``<runs_dir>/.<name>.lock`` while it
    runs: if that lock cannot be taken now (it is released at once), the study is
    still running; else a manifest without an end time means it stopped early.
    Nothing is created or written.
    """
    run_dir = Path(run_dir)
    lock_path = Path(runs_dir if runs_dir is not None else run_dir.parent) / f".{run_dir.name}.lock"
    try:
        handle = open(lock_path, "rb")
    except OSError:
        handle = None  # no lock file: no runner ever ran here, or the run directory was copied
    if handle is not None:
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return RUNNING_NOTE
            except OSError:
                pass  # a file system without locks: fall back on the manifest
            else:
                fcntl.flock(handle, fcntl.LOCK_UN)
    if not manifest.get("finished"):
        return STOPPED_NOTE
    return None


# ---------------------------------------------------------------- writing


def save_figure(figure: Figure, directory: Path, name: str, *, dpi: int = FIGURE_DPI) -> Path:
    """Write one figure as ``<name>.png`` and ``<name>.svg`` (no dates, so rebuilds are identical);
    returns the PNG's path."""
    png = directory / f"{name}.png"
    figure.savefig(png, format="png", dpi=dpi, metadata={"Software": None})
    with matplotlib.rc_context({"svg.hashsalt": name}):  # ids from a fixed salt, not a random one
        figure.savefig(directory / f"{name}.svg", format="svg", metadata={"Date": None})
    return png


def _json_number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def answers(analysis: Analysis, context: ReportContext, partial_note: str | None) -> dict[str, Any]:
    """The study's answers for the index of all reports (answers.json): its question, every claim's status,
    estimate, interval, raw and Holm-adjusted p and measured error rate, and per explanation of the depth
    question (``why``) its status in this study and how many claims test it."""
    verdict = analysis.verdict
    question = analysis.space.get("question") if isinstance(analysis.space.get("question"), str) else ""
    claims = []
    for statement in (verdict.statements if verdict is not None else ()):
        low, high = statement.estimate_interval
        claims.append({"sentence": statement.claim, "factor": statement.factor, "measure": statement.measure,
                       "status": statement.status, "estimate": _json_number(statement.estimate),
                       "ci_low": _json_number(low), "ci_high": _json_number(high),
                       "p_value": _json_number(statement.p_value),
                       "adjusted_p_value": _json_number(statement.adjusted_p_value),
                       "false_positive_rate": _json_number(statement.false_positive_rate),
                       "reading": statement.reading})
    why = analysis.tables.get("why")
    explanations = [] if why is None else [
        {"explanation": str(row["explanation"]), "status": str(row["status"]), "claims": int(row["claims"]),
         "measure": str(row["measure"]), "evidence": str(row["evidence"])} for _, row in why.iterrows()]
    return {"study": context.study, "question": question or "", "dataset": context.dataset, "note": partial_note,
            "alpha": float(analysis.settings.alpha),
            "family": verdict.family if verdict is not None else "no claims decided",
            "claims": claims, "no_verdict_reason": analysis.no_verdict_reason, "why": explanations}


def write_report(analysis: Analysis, directory: Path, *, partial_note: str | None = None) -> Path:
    """Write every file of the report of ``analysis`` into ``directory`` (which must exist and be empty)."""
    figures_dir = directory / FIGURES_DIR
    figures_dir.mkdir()
    for name, table in analysis.tables.items():
        table.to_csv(directory / f"{name}.csv", index=False)
    pngs = {}
    for name, figure in build_figures(analysis).items():
        pngs[name] = save_figure(figure, figures_dir, name)
        figure.clear()
    context = ReportContext.from_manifest(analysis.manifest, figures=tuple(pngs))
    (directory / REPORT_FILE).write_text(render_markdown(analysis, context, partial_note=partial_note),
                                         encoding="utf-8")
    (directory / HTML_FILE).write_text(render_html(analysis, pngs, context.title, partial_note=partial_note),
                                       encoding="utf-8")
    (directory / ANSWERS_FILE).write_text(json.dumps(answers(analysis, context, partial_note), indent=2,
                                                     allow_nan=False) + "\n", encoding="utf-8")
    return directory / REPORT_FILE


def replace_directory(new: Path, target: Path) -> None:
    """Put the finished directory ``new`` in place of ``target``: the old one is renamed away, the new one
    renamed in, then the old one deleted. Both renames stay in one parent directory, so each is atomic; if
    the second fails, the old directory is renamed back."""
    old = None
    if target.exists() or target.is_symlink():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        old.rmdir()
        target.rename(old)
    try:
        new.rename(target)
    except BaseException:
        if old is not None:
            old.rename(target)
        raise
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


def analyse_run(run_dir: Path, *, compare: Sequence[str] | None = None, partial_note: str | None = None,
                runs_dir: Path | None = None) -> tuple[Analysis, str | None]:
    """(the analysis, the note at the top) of the study in ``run_dir``: everything a report needs, checked,
    nothing written. Bad input raises a one-line BadInput naming the file."""
    run_dir = Path(run_dir)
    run = load_run(run_dir)
    if partial_note is None:
        partial_note = study_note(run_dir, run.manifest, runs_dir=runs_dir)
    comparison = _comparison(compare)
    try:
        analysis = analyse(run.epochs, run.trials, run.manifest, classes=run.classes, extra_problems=run.problems,
                           compare=comparison, gradients=run.gradients)
    except BadInput as error:
        if error.source:
            raise
        raise BadInput(str(error), source=str(run_dir / tables.MANIFEST_FILE)) from None
    except ValueError as error:
        raise BadInput((str(error).splitlines() or [type(error).__name__])[0], source=str(run_dir)) from None
    return analysis, partial_note


def _comparison(compare: Sequence[str] | None) -> tuple[str, str, str] | None:
    """``--compare FIRST SECOND`` (two architectures) or ``--compare FACTOR FIRST SECOND`` as (factor, first,
    second); None keeps the study's own claims (or the default lstm against cnn)."""
    if compare is None:
        return None
    items = [str(item) for item in compare]
    if len(items) == 2:
        return ("architecture", items[0], items[1])
    if len(items) == 3:
        return (items[0], items[1], items[2])
    raise BadInput(f"expected FIRST SECOND or FACTOR FIRST SECOND, got {len(items)} value(s)", source="command line",
                   key="--compare")


def build_report(run_dir: Path, report_dir: Path, *, compare: Sequence[str] | None = None,
                 partial_note: str | None = None, runs_dir: Path | None = None) -> Path:
    """Build the report of the study in ``run_dir`` into ``report_dir`` (replaced whole); return report.md's path.

    ``compare``: (FIRST, SECOND) architectures or (FACTOR, FIRST, SECOND): the comparison every claim makes
    (None: the claims as the space states them). ``partial_note``: the
    note at the top of the report; None: :func:`study_note` of the run (its lock in
    ``runs_dir``, by default the run directory's parent, and its manifest). Bad
    input raises BadInput before anything is written.
    """
    run_dir, report_dir = Path(run_dir), Path(report_dir)
    target, study = report_dir.resolve(), run_dir.resolve()
    if target == study or target in study.parents:
        raise BadInput(f"the report would replace {'the study' if target == study else 'a folder holding the study'}"
                       f" {run_dir}; choose another reports directory", source=str(report_dir))
    analysis, partial_note = analyse_run(run_dir, compare=compare, partial_note=partial_note, runs_dir=runs_dir)
    try:
        report_dir.parent.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=f".{report_dir.name}.new-", dir=report_dir.parent))
    except OSError as error:
        raise BadInput(f"cannot create the report there ({error.strerror or error})",
                       source=str(report_dir.parent)) from None
    try:
        building.chmod(0o777 & ~current_umask())  # mkdtemp makes it private; a report directory is not
        write_report(analysis, building, partial_note=partial_note)
        replace_directory(building, report_dir)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    try:  # every report build refreshes the index of all answers; the report itself is in place already
        build_index(report_dir.parent)
    except OSError as error:
        print(f"study: warning: the report was written but {report_dir.parent}/index.md and index.html were not "
              f"rebuilt ({error.strerror or error}); run make report-index", file=sys.stderr)
    return report_dir / REPORT_FILE
