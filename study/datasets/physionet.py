"""Real ECG datasets read with ``wfdb``: ``mitdb`` (heartbeats) and ``cinc2017`` (rhythm strips).

``mitdb``: MIT-BIH Arrhythmia Database under ``<data_dir>/mitdb``. Every beat
annotation of the reference ``.atr`` file is cut from lead ``lead`` as the window
``[R - window_before, R + window_after)`` (seconds, rounded to samples at the
record's rate, or at ``resample_to`` Hz after resampling the whole lead with
:func:`scipy.signal.resample_poly`) and labelled with its AAMI EC57 class:
N = N L R e j; S = A a J S; V = V E; F = F; Q = / f Q (Q only with ``include_q``).
Other annotation symbols (rhythm changes, noise, comments) are skipped; beats whose
window runs off the record are dropped. ``normalise="beat"`` (default) standardises
each window to zero mean and unit standard deviation, which removes baseline and
gain differences between patients; ``"none"`` keeps millivolts.

The split is inter-patient (de Chazal et al., IEEE TBME 2004): DS1 records are
for training and validation, DS2 records for testing. Validation takes whole DS1
records, so no record is in two splits: ``validation_records`` is either a list
of DS1 record names or a count k; for a count, every k-record combination of the
selected DS1 records is scored by how far each class's share of beats that goes
to validation is from k / (DS1 records) (largest deviation over classes, then
their sum), combinations that leave some class without beats in train or
validation rank last, and the best one wins (ties: the first in record order).
No random number is involved, so the choice depends only on the records and the
beat parameters. (Records 201 and 202 come from one patient; the standard
DS1/DS2 split keeps them apart as de Chazal did.)

``max_beats_per_class`` caps every class in the training split and, separately,
in the validation split at that many beats, chosen uniformly at random without
replacement with ``seed`` (the kept beats stay in record order); classes with
fewer beats keep all of them. The test split (DS2) is never subsampled, so test
scores are over all of DS2 as in the literature. ``info["subsample"]`` records
the cap and the beats per class before and after it. The defaults (120 Hz: 84
samples per beat; at most 1,500 beats per class, about 4,200 training and 2,300
validation beats instead of 42,000 and 8,800) cut a depth-1 LSTM epoch from
about 14 s to about 0.6 s on two CPU cores and soften the 46:1 imbalance of N
over S in training; ``resample_to: null, max_beats_per_class: null`` gives the
full 360 Hz data set.

``cinc2017``: PhysioNet/CinC Challenge 2017 strips under ``<data_dir>/cinc2017``
(``REFERENCE.csv`` ``record,label`` lines and WFDB ``.hea``/``.mat`` records).
Each strip is resampled from its rate to ``sampling_rate`` Hz with
:func:`scipy.signal.resample_poly`, standardised (``normalise="record"``: zero mean,
unit standard deviation over the strip; ``"none"`` keeps millivolts), then cut to
``duration`` seconds (``crop="center"`` or ``"start"``) or padded at the end with
zeros. Labels N (normal), A (atrial fibrillation), O (other rhythm) and ~ (noisy)
are split by record, stratified by class, with ``validation_fraction``,
``test_fraction`` and ``seed``. The defaults (25 Hz, the central 20 s: 500
samples) keep recurrent models within CPU budgets (an LSTM's epoch time grows with
the number of time steps: a third of the steps of 50 Hz x 30 s, and LSTM epochs
about 2.5x shorter) while leaving RR irregularity visible: R peaks stay placed to
40 ms, and 20 s hold 20 to 40 beats. In short single-seed probes a depth-4 CNN
reached about the same validation loss at 50 Hz x 30 s, 25 Hz x 30 s and
50 Hz x 20 s (docs/real_data.md). No class cap is needed: the 1,184 records are
nearly balanced over the four classes (300, 300, 300, 284).

Both loaders cache the decoded arrays (:mod:`study.datasets.cache`) keyed by the
parameters that shape them and the source files' sizes and times; the split is
made after the cache, so changing a split parameter does not decode again.
Broken files raise :class:`BadInput` naming the file and the problem.
"""
from __future__ import annotations

import csv
import itertools
import math
import numbers
from fractions import Fraction
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import wfdb
from wfdb.io._signal import BYTES_PER_SAMPLE

from study.datasets import Dataset, DatasetSpec, register
from study.datasets.cache import cached
from study.datasets.splits import check_fraction, check_seed, require_every_class, stratified_split
from study.errors import BadInput, check_choice

#: de Chazal et al. (2004) inter-patient groups of the 44 non-paced MIT-BIH records.
DS1 = ("101", "106", "108", "109", "112", "114", "115", "116", "118", "119", "122",
       "124", "201", "203", "205", "207", "208", "209", "215", "220", "223", "230")
DS2 = ("100", "103", "105", "111", "113", "117", "121", "123", "200", "202", "210",
       "212", "213", "214", "219", "221", "222", "228", "231", "232", "233", "234")

#: AAMI EC57 heartbeat classes and the MIT-BIH beat symbols each one gathers.
AAMI_CLASSES: dict[str, tuple[str, ...]] = {
    "N": ("N", "L", "R", "e", "j"),
    "S": ("A", "a", "J", "S"),
    "V": ("V", "E"),
    "F": ("F",),
    "Q": ("/", "f", "Q"),
}

MITDB_DEFAULTS: dict[str, Any] = {
    "records": None,            # None: all 44 DS1 + DS2 records; else a list of record names
    "lead": "MLII",
    "window_before": 0.25,      # seconds before the R peak
    "window_after": 0.45,       # seconds after the R peak (0.25 + 0.45 s = 252 samples at 360 Hz)
    "resample_to": 120,         # Hz (84-sample windows); None keeps 360 Hz (252 samples)
    "include_q": False,
    "normalise": "beat",        # "beat" | "none"
    "validation_records": 4,    # count of DS1 records (balanced choice) or a list of DS1 record names
    "max_beats_per_class": 1500,  # per class in train and in validation (seeded subsample); None: every beat
    "seed": 0,                  # seed of that subsample
}

CINC2017_LABELS: dict[str, str] = {
    "N": "normal sinus rhythm",
    "A": "atrial fibrillation",
    "O": "other rhythm",
    "~": "too noisy to classify",
}

CINC2017_DEFAULTS: dict[str, Any] = {
    "records": None,            # None: every record of REFERENCE.csv; an int n: n records, even over classes; a list
    "sampling_rate": 25,        # Hz after resampling (the records are 300 Hz)
    "duration": 20.0,           # seconds kept per strip (500 samples at 25 Hz)
    "crop": "center",           # "center" | "start": which part of a longer strip is kept
    "normalise": "record",      # "record" | "none"
    "validation_fraction": 0.2,
    "test_fraction": 0.2,
    "seed": 0,
}

#: Bump when what the builders store changes, so old cache entries are ignored.
BUILD_VERSION = 1

#: Errors ``wfdb`` raises for unreadable or inconsistent files (translated to BadInput).
WFDB_ERRORS = (ValueError, IndexError, KeyError, OSError, EOFError, TypeError)

#: Combinations of validation records scored exhaustively; more are sampled (seed 0).
MAXIMUM_COMBINATIONS = 200_000


# --------------------------------------------------------------------------- wfdb helpers


def read_header(record_path: Path) -> wfdb.Record:
    """The record's header, with its signal files checked against it."""
    header_path = record_path.with_name(record_path.name + ".hea")
    if not header_path.is_file():
        raise BadInput("record header missing", source=str(header_path))
    try:
        header = wfdb.rdheader(str(record_path))
    except WFDB_ERRORS as error:
        raise BadInput(f"unreadable header: {_one_line(error)}", source=str(header_path)) from None
    if not isinstance(header, wfdb.Record):
        raise BadInput("multi-segment records are not supported", source=str(header_path))
    check_signal_files(header, record_path)
    return header


def check_signal_files(header: wfdb.Record, record_path: Path) -> None:
    """BadInput when a signal file is missing or its size disagrees with the header.

    The header's sample count, channel count and format fix each signal file's
    size; a truncated file or an edited header shows as a different number of
    whole frames (the same arithmetic as ``wfdb``'s own length inference).
    """
    if not header.n_sig or header.sig_len is None:
        return
    for file_name in dict.fromkeys(header.file_name):
        channels = [index for index, name in enumerate(header.file_name) if name == file_name]
        signal_path = record_path.parent / file_name
        if not signal_path.is_file():
            raise BadInput(f"signal file missing (named by {record_path.name}.hea)", source=str(signal_path))
        file_format = header.fmt[channels[0]]
        bytes_per_sample = BYTES_PER_SAMPLE.get(file_format, 0)
        if not bytes_per_sample:  # compressed formats have no fixed size
            continue
        samples_per_frame = sum(header.samps_per_frame[index] for index in channels)
        offset = header.byte_offset[channels[0]] or 0
        size = signal_path.stat().st_size
        frames = int((size - offset) / (bytes_per_sample * samples_per_frame))
        if frames != header.sig_len:
            raise BadInput(
                f"header says {header.sig_len} samples x {len(channels)} signal(s) in format {file_format}, "
                f"but the file's {size} bytes hold {max(frames, 0)}",
                source=str(signal_path),
            )


def read_signal(record_path: Path, header: wfdb.Record, channel: str | None = None) -> np.ndarray:
    """One channel of the record in physical units (the named one, else the only one)."""
    header_path = f"{record_path}.hea"
    if channel is None:
        if header.n_sig != 1:
            raise BadInput(f"expected a single-lead record, the header lists {header.n_sig} signals",
                           source=header_path)
        channel = header.sig_name[0]
    try:
        record = wfdb.rdrecord(str(record_path), channel_names=[channel])
    except WFDB_ERRORS as error:
        raise BadInput(f"unreadable signal: {_one_line(error)}", source=header_path) from None
    return record.p_signal[:, 0]


def resample(signal: np.ndarray, rate: float, target: float) -> np.ndarray:
    """The signal at ``target`` Hz (polyphase filtering; unchanged when the rates agree)."""
    ratio = Fraction(target).limit_denominator(1000) / Fraction(rate).limit_denominator(1000)
    if ratio == 1:
        return signal
    from scipy.signal import resample_poly  # imported here: scipy.signal takes about a second to import

    return resample_poly(signal, ratio.numerator, ratio.denominator)


def standardise(windows: np.ndarray) -> np.ndarray:
    """Zero mean, unit standard deviation along the last axis (flat windows become zeros)."""
    mean = windows.mean(axis=-1, keepdims=True)
    deviation = windows.std(axis=-1, keepdims=True)
    return (windows - mean) / np.where(deviation > 1e-8, deviation, 1.0)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _positive_number(parameters: dict[str, Any], name: str, *, allow_zero: bool = False) -> float:
    value = parameters[name]
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or value < 0 or (value == 0 and not allow_zero):
        bound = "non-negative" if allow_zero else "positive"
        raise BadInput(f"must be a {bound} number, got {value!r}", key=f"dataset.parameters.{name}")
    return float(value)


def _optional_count(parameters: dict[str, Any], name: str) -> int | None:
    """The parameter as a positive integer, or None (no limit)."""
    value = parameters[name]
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise BadInput(f"must be a positive integer or null (no limit), got {value!r}",
                       key=f"dataset.parameters.{name}")
    return int(value)


def _class_counts(labels: np.ndarray, class_names: Sequence[str]) -> dict[str, int]:
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(class_names))
    return {name: int(count) for name, count in zip(class_names, counts)}


def cap_per_class(labels: np.ndarray, cap: int, generator: np.random.Generator) -> np.ndarray:
    """Sorted positions of at most ``cap`` examples of every class, drawn without replacement.

    Classes with ``cap`` or fewer examples keep them all; the draw for each class
    (in label order) uses ``generator``, so the same generator state gives the same
    subsample.
    """
    kept = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        kept.append(members if len(members) <= cap else generator.choice(members, cap, replace=False))
    return np.sort(np.concatenate(kept)) if kept else np.zeros(0, dtype=np.int64)


def _source_directory(data_dir: Path, name: str) -> Path:
    directory = Path(data_dir) / name
    if not directory.is_dir():
        raise BadInput(f"{name} data directory not found; run `python -m study.download {name}` "
                       f"or set DATA_DIR", source=str(directory))
    return directory


# --------------------------------------------------------------------------- mitdb


def _mitdb_records(parameters: dict[str, Any]) -> list[str]:
    """The selected record names, DS1 then DS2, each in numeric order."""
    requested = parameters["records"]
    if requested is None:
        return list(DS1 + DS2)
    if isinstance(requested, (str, bytes)) or not isinstance(requested, Sequence) or not requested:
        raise BadInput(f"must be a non-empty list of record names, got {requested!r}",
                       key="dataset.parameters.records")
    names = {str(record) for record in requested}
    for name in sorted(names):
        if name not in DS1 + DS2:
            raise BadInput(f"record {name!r} is not one of the 44 inter-patient records (DS1 or DS2)",
                           key="dataset.parameters.records")
    return [record for record in DS1 + DS2 if record in names]


def _mitdb_record_beats(record_path: Path, header: wfdb.Record, build: dict[str, Any],
                        symbol_classes: dict[str, int]) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Windows (beats, samples) and class indices of one record, with counts of what was left out."""
    signal = read_signal(record_path, header, build["lead"])
    annotation_path = f"{record_path}.atr"
    try:
        annotation = wfdb.rdann(str(record_path), "atr")
    except WFDB_ERRORS as error:
        raise BadInput(f"unreadable annotations: {_one_line(error)}", source=annotation_path) from None
    symbols = np.asarray(annotation.symbol)
    peaks = np.asarray(annotation.sample, dtype=np.int64)

    rate = float(header.fs)
    if build["resample_to"] is not None:
        signal = resample(signal, rate, build["resample_to"])
        peaks = np.rint(peaks * (build["resample_to"] / rate)).astype(np.int64)
        rate = float(build["resample_to"])
    before = int(round(build["window_before"] * rate))
    after = int(round(build["window_after"] * rate))

    is_beat = np.isin(symbols, list(symbol_classes))
    inside = (peaks - before >= 0) & (peaks + after <= len(signal))
    kept = is_beat & inside
    windows = signal[peaks[kept, np.newaxis] + np.arange(-before, after)[np.newaxis, :]]
    finite = np.isfinite(windows).all(axis=1)
    windows = windows[finite]
    labels = np.array([symbol_classes[symbol] for symbol in symbols[kept][finite]], dtype=np.int8)
    if build["normalise"] == "beat":
        windows = standardise(windows)
    left_out = {
        "skipped_annotations": int((~is_beat).sum()),
        "dropped_at_edges": int((is_beat & ~inside).sum()),
        "dropped_invalid_samples": int((~finite).sum()),
    }
    return windows.astype(np.float32), labels, left_out


def choose_validation_records(counts: np.ndarray, records: Sequence[str], size: int) -> list[str]:
    """The ``size`` records (rows of ``counts``, beats per class) whose classes split most evenly.

    Scores every combination (or a seeded sample of them when there are more than
    :data:`MAXIMUM_COMBINATIONS`) by the largest, then summed, deviation of each
    class's validation share from ``size / len(records)``; combinations leaving a
    class with beats in no validation record, or in no training record, rank last.
    """
    record_count = len(records)
    if math.comb(record_count, size) <= MAXIMUM_COMBINATIONS:
        combinations = np.array(list(itertools.combinations(range(record_count), size)), dtype=np.int64)
    else:
        generator = np.random.default_rng(0)
        combinations = np.sort(np.argsort(generator.random((MAXIMUM_COMBINATIONS, record_count)), axis=1)[:, :size],
                               axis=1)
    totals = counts.sum(axis=0)
    validation = counts[combinations].sum(axis=1)
    training = totals - validation
    present = totals > 0
    feasible = ((validation > 0) | ~present).all(axis=1) & ((training > 0) | ~present).all(axis=1)
    share = validation[:, present] / totals[present]
    deviation = np.abs(share - size / record_count)
    order = np.lexsort((
        np.arange(len(combinations)),
        np.round(deviation.sum(axis=1), 9),
        np.round(deviation.max(axis=1), 9),
        ~feasible,
    ))
    return [records[index] for index in combinations[order[0]]]


def check_mitdb_parameters(parameters: dict[str, Any]) -> None:
    """Every mitdb parameter value that can be checked without reading a file (run when a space is loaded)."""
    _mitdb_records(parameters)
    check_choice(parameters["normalise"], ("beat", "none"), key="dataset.parameters.normalise")
    if not isinstance(parameters["include_q"], bool):
        raise BadInput(f"must be true or false, got {parameters['include_q']!r}", key="dataset.parameters.include_q")
    if not isinstance(parameters["lead"], str) or not parameters["lead"]:
        raise BadInput(f"must be a signal name such as 'MLII', got {parameters['lead']!r}",
                       key="dataset.parameters.lead")
    _positive_number(parameters, "window_before", allow_zero=True)
    _positive_number(parameters, "window_after")
    if parameters["resample_to"] is not None:
        _positive_number(parameters, "resample_to")
    _optional_count(parameters, "max_beats_per_class")
    check_seed(parameters)
    requested = parameters["validation_records"]
    key = "dataset.parameters.validation_records"
    if isinstance(requested, numbers.Integral) and not isinstance(requested, bool):
        if requested < 1:
            raise BadInput(f"must be a positive count or a list of DS1 record names, got {requested}", key=key)
    elif isinstance(requested, (str, bytes)) or not isinstance(requested, Sequence) or not requested:
        raise BadInput(f"must be a count or a list of DS1 record names, got {requested!r}", key=key)


def load_mitdb(parameters: dict[str, Any], data_dir: Path) -> Dataset:
    """Heartbeats of MIT-BIH with the inter-patient split (see the module docstring)."""
    check_mitdb_parameters(parameters)  # every value, so the lines below only convert
    directory = _source_directory(data_dir, "mitdb")
    records = _mitdb_records(parameters)
    before, after = float(parameters["window_before"]), float(parameters["window_after"])
    resample_to = None if parameters["resample_to"] is None else float(parameters["resample_to"])
    cap = _optional_count(parameters, "max_beats_per_class")
    seed = check_seed(parameters)

    class_names = tuple(name for name in AAMI_CLASSES if name != "Q" or parameters["include_q"])
    symbol_classes = {symbol: index for index, name in enumerate(class_names) for symbol in AAMI_CLASSES[name]}

    headers = {}
    sources = []
    for record in records:
        record_path = directory / record
        header = read_header(record_path)
        if parameters["lead"] not in header.sig_name:
            raise BadInput(f"lead {parameters['lead']!r} not in the header's signals {header.sig_name}",
                           source=f"{record_path}.hea", key="dataset.parameters.lead")
        annotation_path = record_path.with_name(f"{record}.atr")
        if not annotation_path.is_file():
            raise BadInput("annotation file missing", source=str(annotation_path))
        headers[record] = header
        sources += [record_path.with_name(f"{record}.hea"), annotation_path,
                    *(directory / name for name in dict.fromkeys(header.file_name))]

    rates = {float(header.fs) for header in headers.values()}
    if resample_to is None and len(rates) > 1:
        raise BadInput(f"records have different sampling rates {sorted(rates)}; set resample_to",
                       source=str(directory), key="dataset.parameters.resample_to")

    build = {
        "records": records, "lead": parameters["lead"], "window_before": before, "window_after": after,
        "resample_to": resample_to, "include_q": parameters["include_q"], "normalise": parameters["normalise"],
        "version": BUILD_VERSION,
    }

    def build_beats() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        windows, labels, record_indices = [], [], []
        per_record: dict[str, dict[str, int]] = {}
        left_out_total: dict[str, int] = {}
        for index, record in enumerate(records):
            record_windows, record_labels, left_out = _mitdb_record_beats(
                directory / record, headers[record], build, symbol_classes)
            windows.append(record_windows)
            labels.append(record_labels)
            record_indices.append(np.full(len(record_labels), index, dtype=np.int16))
            per_record[record] = {name: int(count) for name, count in
                                  zip(class_names, np.bincount(record_labels, minlength=len(class_names)))}
            for reason, count in left_out.items():
                left_out_total[reason] = left_out_total.get(reason, 0) + count
        rate = float(resample_to) if resample_to is not None else float(headers[records[0]].fs)
        arrays = {
            "x": np.concatenate(windows),
            "y": np.concatenate(labels),
            "record": np.concatenate(record_indices),
        }
        info = {"records": records, "beats_per_record": per_record, "left_out": left_out_total,
                "sampling_rate": rate,
                "window_samples": {"before": int(round(before * rate)), "after": int(round(after * rate))}}
        return arrays, info

    arrays, built = cached("mitdb", build, build_beats, sources)

    ds1 = [record for record in records if record in DS1]
    ds2 = [record for record in records if record in DS2]
    validation = _validation_records(parameters["validation_records"], ds1, built["beats_per_record"], class_names)
    split_records = {
        "train": [record for record in ds1 if record not in validation],
        "validation": [record for record in ds1 if record in validation],
        "test": ds2,
    }
    for split, names in split_records.items():
        if not names:
            raise BadInput(f"no records left for the {split} split (DS1 feeds train and validation, DS2 test)",
                           key="dataset.parameters.records")

    record_of_beat = np.asarray(built["records"])[arrays["record"]]
    rows = {split: np.flatnonzero(np.isin(record_of_beat, names)) for split, names in split_records.items()}
    require_every_class({split: arrays["y"][indices] for split, indices in rows.items()}, class_names,
                        key="dataset.parameters.records", unit="beats")
    before_cap = {split: _class_counts(arrays["y"][rows[split]], class_names) for split in ("train", "validation")}
    if cap is not None:
        for split_number, split in enumerate(("train", "validation")):
            generator = np.random.default_rng([seed, split_number])
            rows[split] = rows[split][cap_per_class(arrays["y"][rows[split]], cap, generator)]
    labels = {split: arrays["y"][indices].astype(np.int64) for split, indices in rows.items()}

    def beats(split: str) -> dict[str, int]:
        return _class_counts(labels[split], class_names)

    info = {
        "source": str(directory),
        "lead": parameters["lead"],
        "sampling_rate": built["sampling_rate"],
        "window_samples": built["window_samples"],
        "aami_classes": {name: list(AAMI_CLASSES[name]) for name in class_names},
        "split_protocol": "inter-patient (de Chazal 2004): DS1 train/validation by whole record, DS2 test",
        "splits": {split: {"records": names, "beats": beats(split)} for split, names in split_records.items()},
        "left_out_beats": built["left_out"],
        "subsample": {
            "max_beats_per_class": cap, "seed": seed, "splits": ["train", "validation"],
            "beats_before": before_cap, "beats_kept": {split: beats(split) for split in ("train", "validation")},
        },
    }
    return Dataset(
        name="mitdb",
        x_train=arrays["x"][rows["train"], :, np.newaxis], y_train=labels["train"],
        x_val=arrays["x"][rows["validation"], :, np.newaxis], y_val=labels["validation"],
        x_test=arrays["x"][rows["test"], :, np.newaxis], y_test=labels["test"],
        class_names=class_names,
        parameters=dict(parameters),
        info=info,
    )


def _validation_records(requested: Any, ds1: list[str], per_record: dict[str, dict[str, int]],
                        class_names: Sequence[str]) -> list[str]:
    """The DS1 records for validation: the given names, or a balanced choice of that many."""
    key = "dataset.parameters.validation_records"
    if isinstance(requested, numbers.Integral) and not isinstance(requested, bool):
        if not 1 <= requested < len(ds1):
            raise BadInput(f"needs 1 to {len(ds1) - 1} of the {len(ds1)} selected DS1 records, got {requested}",
                           key=key)
        counts = np.array([[per_record[record][name] for name in class_names] for record in ds1], dtype=np.int64)
        return choose_validation_records(counts, ds1, int(requested))
    if isinstance(requested, (str, bytes)) or not isinstance(requested, Sequence) or not requested:
        raise BadInput(f"must be a count or a list of DS1 record names, got {requested!r}", key=key)
    names = [str(record) for record in requested]
    for name in names:
        if name not in ds1:
            raise BadInput(f"record {name!r} is not among the selected DS1 records", key=key)
    return sorted(set(names), key=ds1.index)


# --------------------------------------------------------------------------- cinc2017


def read_reference(path: Path) -> list[tuple[str, str]]:
    """``(record, label)`` rows of a CinC 2017 ``REFERENCE.csv`` (no header line)."""
    if not path.is_file():
        raise BadInput("label file missing", source=str(path))
    rows: list[tuple[str, str]] = []
    seen: set[str] = set()
    with path.open(newline="") as handle:
        for line_number, row in enumerate(csv.reader(handle), start=1):
            if not row or not "".join(row).strip():
                continue
            if len(row) != 2:
                raise BadInput(f"line {line_number}: expected 'record,label', got {','.join(row)!r}",
                               source=str(path))
            record, label = row[0].strip(), row[1].strip()
            if label not in CINC2017_LABELS:
                allowed = ", ".join(CINC2017_LABELS)
                raise BadInput(f"line {line_number}: unknown label {label!r} for record {record!r}, "
                               f"allowed: {allowed}", source=str(path))
            if not record or Path(record).name != record:
                raise BadInput(f"line {line_number}: bad record name {record!r}", source=str(path))
            if record in seen:
                raise BadInput(f"line {line_number}: record {record!r} listed twice", source=str(path))
            seen.add(record)
            rows.append((record, label))
    if not rows:
        raise BadInput("no records listed", source=str(path))
    return rows


def _cinc_selection(rows: list[tuple[str, str]], requested: Any) -> list[tuple[str, str]]:
    """The rows to load: all, ``n`` spread evenly over classes (record order), or the named records."""
    key = "dataset.parameters.records"
    if requested is None:
        return rows
    if isinstance(requested, numbers.Integral) and not isinstance(requested, bool):
        if requested < 1:
            raise BadInput(f"must be a positive count or a list of record names, got {requested}", key=key)
        by_class = [[row for row in rows if row[1] == label] for label in CINC2017_LABELS]
        interleaved = [row for group in itertools.zip_longest(*by_class) for row in group if row is not None]
        chosen = set(interleaved[: int(requested)])
        return [row for row in rows if row in chosen]
    if isinstance(requested, (str, bytes)) or not isinstance(requested, Sequence) or not requested:
        raise BadInput(f"must be a count or a list of record names, got {requested!r}", key=key)
    labels = dict(rows)
    names = {str(record) for record in requested}
    for name in sorted(names):
        if name not in labels:
            raise BadInput(f"record {name!r} is not listed in REFERENCE.csv", key=key)
    return [row for row in rows if row[0] in names]


def check_cinc2017_parameters(parameters: dict[str, Any]) -> None:
    """Every cinc2017 parameter value that can be checked without reading a file (run when a space is loaded)."""
    sampling_rate = _positive_number(parameters, "sampling_rate")
    duration = _positive_number(parameters, "duration")
    check_choice(parameters["crop"], ("center", "start"), key="dataset.parameters.crop")
    check_choice(parameters["normalise"], ("record", "none"), key="dataset.parameters.normalise")
    if check_fraction(parameters, "validation_fraction") + check_fraction(parameters, "test_fraction") >= 1:
        raise BadInput("validation_fraction + test_fraction must be below 1", key="dataset.parameters.test_fraction")
    check_seed(parameters)
    if int(round(duration * sampling_rate)) < 1:
        raise BadInput("duration x sampling_rate must be at least one sample", key="dataset.parameters.duration")
    requested = parameters["records"]
    if requested is not None:
        if isinstance(requested, numbers.Integral) and not isinstance(requested, bool):
            if requested < 1:
                raise BadInput(f"must be a positive count or a list of record names, got {requested}",
                               key="dataset.parameters.records")
        elif isinstance(requested, (str, bytes)) or not isinstance(requested, Sequence) or not requested:
            raise BadInput(f"must be null, a positive count or a list of record names, got {requested!r}",
                           key="dataset.parameters.records")


def load_cinc2017(parameters: dict[str, Any], data_dir: Path) -> Dataset:
    """Fixed-length CinC 2017 strips with a class-stratified record split (see the module docstring)."""
    check_cinc2017_parameters(parameters)  # every value, so the lines below only convert
    directory = _source_directory(data_dir, "cinc2017")
    sampling_rate, duration = float(parameters["sampling_rate"]), float(parameters["duration"])
    validation_fraction = check_fraction(parameters, "validation_fraction")
    test_fraction = check_fraction(parameters, "test_fraction")
    seed = check_seed(parameters)
    length = int(round(duration * sampling_rate))

    reference_path = directory / "REFERENCE.csv"
    rows = _cinc_selection(read_reference(reference_path), parameters["records"])
    headers = {}
    sources = [reference_path]
    for record, _ in rows:
        record_path = directory / record
        header = read_header(record_path)
        headers[record] = header
        sources += [record_path.with_name(f"{record}.hea"), *(directory / name for name in dict.fromkeys(header.file_name))]

    build = {
        "records": [record for record, _ in rows], "sampling_rate": sampling_rate, "length": length,
        "crop": parameters["crop"], "normalise": parameters["normalise"], "version": BUILD_VERSION,
    }
    class_names = tuple(CINC2017_LABELS)

    def build_strips() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        strips = np.zeros((len(rows), length), dtype=np.float32)
        valid = np.zeros(len(rows), dtype=np.int32)
        for row, (record, _) in enumerate(rows):
            record_path = directory / record
            signal = read_signal(record_path, headers[record])
            if not np.isfinite(signal).all():
                raise BadInput("signal holds invalid (NaN) samples", source=f"{record_path}.hea")
            signal = resample(signal, float(headers[record].fs), sampling_rate)
            if parameters["normalise"] == "record":
                signal = standardise(signal)
            start = (len(signal) - length) // 2 if parameters["crop"] == "center" and len(signal) > length else 0
            kept = signal[start:start + length]
            strips[row, : len(kept)] = kept
            valid[row] = len(kept)
        labels = np.array([class_names.index(label) for _, label in rows], dtype=np.int8)
        return {"x": strips, "y": labels, "valid_samples": valid}, {"records": build["records"]}

    arrays, built = cached("cinc2017", build, build_strips, sources)
    records = np.asarray(built["records"])
    labels = arrays["y"].astype(np.int64)
    parts = stratified_split(labels, {"validation": validation_fraction, "test": test_fraction}, seed)
    require_every_class({split: labels[indices] for split, indices in parts.items()}, class_names,
                        source=str(reference_path), key="dataset.parameters.records", unit="records")

    def examples(split: str) -> dict[str, int]:
        counts = np.bincount(labels[parts[split]], minlength=len(class_names))
        return {name: int(count) for name, count in zip(class_names, counts)}

    info = {
        "source": str(directory),
        "labels": CINC2017_LABELS,
        "sampling_rate": sampling_rate,
        "length_samples": length,
        "padded_records": int((arrays["valid_samples"] < length).sum()),
        "splits": {split: {"records": records[parts[split]].tolist(), "examples": examples(split)}
                   for split in ("train", "validation", "test")},
    }
    x = arrays["x"][..., np.newaxis]
    return Dataset(
        name="cinc2017",
        x_train=x[parts["train"]], y_train=labels[parts["train"]],
        x_val=x[parts["validation"]], y_val=labels[parts["validation"]],
        x_test=x[parts["test"]], y_test=labels[parts["test"]],
        class_names=class_names,
        parameters=dict(parameters),
        info=info,
    )


register("mitdb", DatasetSpec(
    loader=load_mitdb,
    defaults=dict(MITDB_DEFAULTS),
    check=check_mitdb_parameters,
    description="MIT-BIH Arrhythmia heartbeats (AAMI N/S/V/F[/Q]) around annotated R peaks, "
                "inter-patient DS1/DS2 split with whole-record validation",
))

register("cinc2017", DatasetSpec(
    loader=load_cinc2017,
    defaults=dict(CINC2017_DEFAULTS),
    check=check_cinc2017_parameters,
    description="PhysioNet/CinC 2017 single-lead strips (N/A/O/~), resampled and cropped or padded "
                "to a fixed length, record split stratified by class",
))
