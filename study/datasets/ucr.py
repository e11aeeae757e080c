"""``ucr:<directory>``: a univariate classification problem in the UCR/UEA archive formats.

The directory holds ``<Problem>_TRAIN`` and ``<Problem>_TEST`` files, either

* ``.tsv`` (UCR archive 2018): one series per line, the class label in the first
  column, the values after it, tab-separated; series shorter than the file's widest
  row are padded with trailing ``NaN`` by the archive;
* ``.ts`` (sktime/UEA): ``@`` header lines (``@problemName``, ``@classLabel true
  <labels>``, ...), then ``@data`` and one ``v1,v2,...,vn:label`` line per series.

Series of different lengths are padded at the end with their own last value to
the longest series of both files; a missing value anywhere else (``NaN`` inside a
``.tsv`` row, ``?`` or ``NaN`` in a ``.ts`` row) is rejected. Labels become class
indices ``0..K-1`` in sorted order of the original labels (numerically when all are
numbers), recorded in ``info["label_mapping"]``. The validation split is carved
from TRAIN, stratified by class; TEST is the test split, unchanged.

Parameters: ``directory`` (from the name; relative paths resolve against the
current directory), ``problem`` (the ``<Problem>`` prefix, default: the only one
in the directory), ``validation_fraction`` (default 0.2) and ``seed`` (default 0).

This module also holds the class-stratified split and the every-class check that
the PhysioNet loaders share, because it needs no ``wfdb``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from study.datasets import Dataset, DatasetSpec, register
from study.datasets.splits import check_fraction, check_seed, require_every_class, stratified_split
from study.errors import BadInput

FORMATS = ("tsv", "ts")

UCR_DEFAULTS: dict[str, Any] = {
    "directory": None,
    "problem": None,
    "validation_fraction": 0.2,
    "seed": 0,
}


# --------------------------------------------------------------------------- file formats


def read_tsv(path: Path) -> tuple[list[str], list[np.ndarray]]:
    """Labels and series of a UCR 2018 ``.tsv`` file (trailing NaNs shorten a series)."""
    labels: list[str] = []
    series: list[np.ndarray] = []
    width = None
    for line_number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2:
            raise BadInput(f"line {line_number}: expected a label and values separated by tabs", source=str(path))
        if width is None:
            width = len(fields)
        elif len(fields) != width:
            raise BadInput(f"line {line_number}: {len(fields)} columns, but the first row has {width}",
                           source=str(path))
        label = fields[0].strip()
        if not label:
            raise BadInput(f"line {line_number}: empty class label", source=str(path))
        values = _parse_values(fields[1:], path, line_number)
        present = np.flatnonzero(~np.isnan(values))
        if len(present) == 0:
            raise BadInput(f"line {line_number}: no values", source=str(path))
        length = present[-1] + 1
        if len(present) != length:
            column = int(np.flatnonzero(np.isnan(values[:length]))[0]) + 2
            raise BadInput(f"line {line_number}, column {column}: missing value inside the series", source=str(path))
        labels.append(label)
        series.append(values[:length])
    if not series:
        raise BadInput("no series in file", source=str(path))
    return labels, series


def read_ts(path: Path) -> tuple[list[str], list[np.ndarray]]:
    """Labels and series of a univariate, labelled sktime ``.ts`` file."""
    declared_labels: list[str] | None = None
    labels: list[str] = []
    series: list[np.ndarray] = []
    in_data = False
    for line_number, raw_line in enumerate(_read_text(path).splitlines(), start=1):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            if not line.startswith("@"):
                raise BadInput(f"line {line_number}: expected an @ header line before @data", source=str(path))
            pieces = line.split(maxsplit=1)
            tag, words = pieces[0].lower(), (pieces[1].split() if len(pieces) > 1 else [])
            if tag == "@data":
                if declared_labels is None:
                    raise BadInput("no '@classLabel true <labels>' line before @data", source=str(path))
                in_data = True
            elif tag == "@classlabel":
                if not words or words[0].lower() != "true" or len(words) < 2:
                    raise BadInput(f"line {line_number}: expected '@classLabel true <labels>'", source=str(path))
                declared_labels = words[1:]
            elif tag == "@timestamps" and words[:1] and words[0].lower() == "true":
                raise BadInput(f"line {line_number}: time-stamped series are not supported", source=str(path))
            elif tag == "@univariate" and words[:1] and words[0].lower() == "false":
                raise BadInput(f"line {line_number}: multivariate problems are not supported", source=str(path))
            elif tag == "@dimensions" and words[:1] and words[0] != "1":
                raise BadInput(f"line {line_number}: multivariate problems are not supported", source=str(path))
            elif tag == "@targetlabel" and words[:1] and words[0].lower() == "true":
                raise BadInput(f"line {line_number}: regression problems are not supported", source=str(path))
            continue
        parts = line.split(":")
        if len(parts) != 2:
            problem = "no ':<label>' at the end" if len(parts) == 1 else "more than one dimension (multivariate)"
            raise BadInput(f"line {line_number}: {problem}", source=str(path))
        values_text, label = parts[0], parts[1].strip()
        if label not in declared_labels:  # type: ignore[operator]
            allowed = ", ".join(declared_labels)  # type: ignore[arg-type]
            raise BadInput(f"line {line_number}: label {label!r} is not declared by @classLabel ({allowed})",
                           source=str(path))
        fields = values_text.split(",")
        if "?" in (field.strip() for field in fields):
            raise BadInput(f"line {line_number}: missing value '?' in the series", source=str(path))
        values = _parse_values(fields, path, line_number, first_column=1)
        if np.isnan(values).any():
            raise BadInput(f"line {line_number}: NaN in the series", source=str(path))
        labels.append(label)
        series.append(values)
    if not in_data:
        raise BadInput("no @data line", source=str(path))
    if not series:
        raise BadInput("no series after @data", source=str(path))
    return labels, series


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise BadInput(f"cannot read: {error}", source=str(path)) from None


def _parse_values(fields: Sequence[str], path: Path, line_number: int, first_column: int = 2) -> np.ndarray:
    """Floats of one row; BadInput naming the line and column of the first non-number."""
    try:
        return np.array([float(field) for field in fields], dtype=np.float64)
    except ValueError:
        for column, field in enumerate(fields, start=first_column):
            try:
                float(field)
            except ValueError:
                raise BadInput(f"line {line_number}, column {column}: {field.strip()!r} is not a number",
                               source=str(path)) from None
        raise


# --------------------------------------------------------------------------- loader


def find_problem(directory: Path, problem: str | None) -> tuple[str, str]:
    """The problem name and file format (``tsv`` or ``ts``) to read from ``directory``."""
    if problem is not None:
        for file_format in FORMATS:
            if (directory / f"{problem}_TRAIN.{file_format}").is_file():
                return problem, file_format
        raise BadInput(f"no {problem}_TRAIN.tsv or {problem}_TRAIN.ts", source=str(directory),
                       key="dataset.parameters.problem")
    found: dict[str, str] = {}
    for file_format in reversed(FORMATS):  # .tsv wins when a problem has both
        for path in directory.glob(f"*_TRAIN.{file_format}"):
            found[path.name[: -len(f"_TRAIN.{file_format}")]] = file_format
    if not found:
        raise BadInput("no <Problem>_TRAIN.tsv or <Problem>_TRAIN.ts file", source=str(directory))
    if len(found) > 1:
        raise BadInput(f"several problems ({', '.join(sorted(found))}); choose one with dataset.parameters.problem",
                       source=str(directory))
    (name, file_format), = found.items()
    return name, file_format


def label_order(labels: Sequence[str]) -> list[str]:
    """Distinct labels sorted numerically when all are numbers, else as strings."""
    distinct = set(labels)
    try:
        return sorted(distinct, key=lambda label: (float(label), label))
    except ValueError:
        return sorted(distinct)


def canonical_label(label: str) -> str:
    """``'1.0'`` and ``'1'`` name the same class; other labels stay as written."""
    try:
        value = float(label)
    except ValueError:
        return label
    return str(int(value)) if value.is_integer() else repr(value)


def pad_series(series: Sequence[np.ndarray], length: int) -> np.ndarray:
    """Stack series into (n, length), padding each at the end with its last value."""
    stacked = np.empty((len(series), length), dtype=np.float32)
    for row, values in enumerate(series):
        stacked[row, : len(values)] = values
        stacked[row, len(values):] = values[-1]
    return stacked


def load_ucr(parameters: dict[str, Any], data_dir: Path) -> Dataset:
    """Load ``<Problem>_TRAIN``/``_TEST`` from ``parameters['directory']`` (``data_dir`` is unused)."""
    directory_text = parameters.get("directory")
    if not directory_text:
        raise BadInput("ucr needs a directory, as in ucr:path/to/GunPoint", key="dataset.name")
    directory = Path(str(directory_text)).expanduser()
    if not directory.is_absolute():
        directory = Path.cwd() / directory
    if not directory.is_dir():
        raise BadInput("UCR problem directory not found", source=str(directory))
    validation_fraction = check_fraction(parameters, "validation_fraction")
    seed = check_seed(parameters)
    problem = parameters.get("problem")
    name, file_format = find_problem(directory, None if problem is None else str(problem))

    reader = read_tsv if file_format == "tsv" else read_ts
    files = {split: directory / f"{name}_{split.upper()}.{file_format}" for split in ("train", "test")}
    if not files["test"].is_file():
        raise BadInput(f"missing {files['test'].name} beside {files['train'].name}", source=str(directory))
    train_labels, train_series = reader(files["train"])
    test_labels, test_series = reader(files["test"])
    train_labels = [canonical_label(label) for label in train_labels]
    test_labels = [canonical_label(label) for label in test_labels]

    class_names = label_order(train_labels + test_labels)
    mapping = {label: index for index, label in enumerate(class_names)}
    length = max(len(values) for values in train_series + test_series)
    x_train_all = pad_series(train_series, length)[..., np.newaxis]
    x_test = pad_series(test_series, length)[..., np.newaxis]
    y_train_all = np.array([mapping[label] for label in train_labels], dtype=np.int64)
    y_test = np.array([mapping[label] for label in test_labels], dtype=np.int64)

    parts = stratified_split(y_train_all, {"validation": validation_fraction}, seed)
    y_train, y_val = y_train_all[parts["train"]], y_train_all[parts["validation"]]
    require_every_class({"train": y_train, "validation": y_val, "test": y_test}, class_names,
                        source=str(directory))

    def padded(series: list[np.ndarray]) -> int:
        return sum(len(values) < length for values in series)

    info = {
        "problem": name,
        "format": file_format,
        "directory": str(directory),
        "files": {split: path.name for split, path in files.items()},
        "label_mapping": mapping,
        "series_length": length,
        "padded_series": {"train": padded(train_series), "test": padded(test_series)},
        "validation": f"{validation_fraction} of TRAIN per class, seed {seed}",
    }
    return Dataset(
        name=f"ucr:{directory_text}",
        x_train=x_train_all[parts["train"]], y_train=y_train,
        x_val=x_train_all[parts["validation"]], y_val=y_val,
        x_test=x_test, y_test=y_test,
        class_names=tuple(class_names),
        parameters=dict(parameters),
        info=info,
    )


register("ucr", DatasetSpec(
    loader=load_ucr,
    defaults=dict(UCR_DEFAULTS),
    description="UCR/UEA univariate problem from <Problem>_TRAIN/_TEST .tsv or .ts files (name it ucr:<directory>); "
                "validation carved from TRAIN stratified by class",
))
