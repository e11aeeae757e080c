"""Dataset registry: every study dataset is a name that maps to a loader.

A loader takes a dict of parameters (already merged over its defaults) and a
data directory, and returns a :class:`Dataset` with fixed train/validation/test
splits. Loaders raise :class:`study.errors.BadInput` for bad parameters or
broken data files.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import math
import numbers
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from study.errors import BadInput


@dataclass(frozen=True)
class Dataset:
    """Arrays of one dataset with its fixed splits.

    ``x_*`` are float32 arrays shaped (examples, length, channels); ``y_*`` are
    int64 class indices in ``0 .. len(class_names) - 1``. ``info`` holds what the
    manifest should record beyond the parameters (split records, label mapping,
    class counts per split, ...); it must be JSON-serialisable.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    parameters: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, int]:
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def content_hash(self) -> str:
        """SHA-256 over every array, so two runs can tell whether they saw the same data."""
        digest = hashlib.sha256()
        for array in (self.x_train, self.y_train, self.x_val, self.y_val, self.x_test, self.y_test):
            contiguous = np.ascontiguousarray(array)
            digest.update(str((contiguous.dtype.str, contiguous.shape)).encode())
            digest.update(contiguous.tobytes())
        return digest.hexdigest()

    def class_counts(self) -> dict[str, dict[str, int]]:
        """Examples per class in each split, by class name."""
        counts = {}
        for split, labels in (("train", self.y_train), ("validation", self.y_val), ("test", self.y_test)):
            per_class = np.bincount(labels.astype(np.int64), minlength=self.num_classes)
            counts[split] = {name: int(n) for name, n in zip(self.class_names, per_class)}
        return counts

    def describe(self) -> dict[str, Any]:
        """The manifest's record of this dataset."""
        return {
            "name": self.name,
            "parameters": json.loads(json.dumps(self.parameters, default=str)),
            "content_hash": self.content_hash(),
            "class_names": list(self.class_names),
            "input_shape": list(self.input_shape),
            "sizes": {"train": len(self.y_train), "validation": len(self.y_val), "test": len(self.y_test)},
            "class_counts": self.class_counts(),
            **self.info,
        }


@dataclass(frozen=True)
class DatasetSpec:
    """How to load one registered dataset: its loader, default parameters and an optional parameter check.

    ``check`` gets the merged parameters and raises BadInput (key ``dataset.parameters.<name>``) for a
    bad value without reading any file, so a search space is refused when it is loaded.
    """

    loader: Callable[[dict[str, Any], Path], Dataset]
    defaults: dict[str, Any]
    description: str
    check: Callable[[dict[str, Any]], None] | None = None


DATASETS: dict[str, DatasetSpec] = {}


def register(name: str, spec: DatasetSpec) -> None:
    DATASETS[name] = spec


def dataset_names() -> list[str]:
    """Registered names (and those that need a missing optional package) plus the ``ucr:<directory>`` form."""
    return sorted(set(DATASETS) | set(_MISSING)) + ["ucr:<directory>"]


def resolve(name: str, *, source: str | None = None, key: str = "dataset.name") -> tuple[DatasetSpec, dict[str, Any]]:
    """Return the spec for a dataset name and the parameters the name itself carries."""
    _load_registry()
    base = "ucr" if name.startswith("ucr:") else name
    if base in _MISSING and base not in DATASETS:
        package = _MISSING[base]
        raise BadInput(f"dataset {base!r} needs the optional package {package}: pip install "
                       f"{pinned_requirement(package)}", source=source, key=key)
    if name.startswith("ucr:") and "ucr" in DATASETS:
        directory = name[len("ucr:"):]
        if not directory:
            raise BadInput("ucr: needs a directory, as in ucr:path/to/GunPoint", source=source, key=key)
        return DATASETS["ucr"], {"directory": directory}
    if name not in DATASETS:
        allowed = ", ".join(dataset_names())
        raise BadInput(f"unknown dataset {name!r}, allowed: {allowed}", source=source, key=key)
    return DATASETS[name], {}


def check_parameters(name: str, parameters: dict[str, Any], *, source: str | None = None) -> dict[str, Any]:
    """Merge parameters over the dataset's defaults, rejecting unknown names and bad values.

    Values are checked without reading any file, by the dataset's own check (``synthetic_ecg``, ``mitdb``,
    ``cinc2017``: every parameter), else by the split parameters the loaders share (``validation_fraction``,
    ``test_fraction``, ``seed``: ``ucr``); checks that need the data (every class in every split, record
    names of a CinC list) stay with the loader.
    """
    spec, implied = resolve(name, source=source)
    unknown = sorted(set(parameters) - set(spec.defaults) - set(implied))
    if unknown:
        allowed = ", ".join(sorted(spec.defaults)) or "(none)"
        raise BadInput(
            f"unknown parameter {unknown[0]!r} for dataset {name!r}, allowed: {allowed}",
            source=source,
            key=f"dataset.parameters.{unknown[0]}",
        )
    merged = {**spec.defaults, **implied, **parameters}
    base = "ucr" if name.startswith("ucr:") else name
    check = spec.check or _BUILTIN_CHECKS.get(base, _check_split_parameters)
    try:
        check(merged)
    except BadInput as error:
        raise _with_source(error, source) from None
    return merged


def _check_split_parameters(parameters: dict[str, Any]) -> None:
    """The split parameters shared by the loaders: fractions in (0, 1) summing below 1, a seed >= 0."""
    from study.datasets.splits import check_fraction, check_seed

    fractions = [check_fraction(parameters, name) for name in ("validation_fraction", "test_fraction")
                 if name in parameters]
    if sum(fractions) >= 1:
        raise BadInput(f"validation_fraction + test_fraction is {sum(fractions):g}, allowed: a sum below 1, "
                       "leaving training examples", key="dataset.parameters.test_fraction")
    if "seed" in parameters:
        check_seed(parameters)


def _check_synthetic_ecg(parameters: dict[str, Any]) -> None:
    """Every parameter of ``synthetic_ecg`` (types and ranges, with its loader's messages)."""
    from study.datasets.synthetic import check_strip_parameters

    fractions = []
    for name in ("validation_fraction", "test_fraction"):
        value = parameters[name]
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
                or not 0 < value < 1:
            raise BadInput(f"got {value!r}, allowed: a fraction in (0, 1)", key=f"dataset.parameters.{name}")
        fractions.append(float(value))
    if sum(fractions) >= 1:
        raise BadInput(f"validation_fraction + test_fraction is {sum(fractions):g}, allowed: a sum below 1, "
                       "leaving training examples", key="dataset.parameters.test_fraction")
    check_strip_parameters(parameters["n_strips"], parameters["length"], parameters["sampling_rate"],
                           parameters["noise"], parameters["label_noise"], parameters["seed"])


#: Parameter checks of datasets whose registration carries none.
_BUILTIN_CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {"synthetic_ecg": _check_synthetic_ecg}


def _with_source(error: BadInput, source: str | None) -> BadInput:
    """The same BadInput naming ``source`` when it names no file yet."""
    if source is None or error.source:
        return error
    text = str(error)
    prefix = f"key '{error.key}': " if error.key else ""
    return BadInput(text[len(prefix):] if prefix and text.startswith(prefix) else text, source=source, key=error.key)


def load_dataset(name: str, parameters: dict[str, Any] | None = None, data_dir: Path | None = None,
                 *, source: str | None = None) -> Dataset:
    """Load a registered dataset by name with parameters merged over its defaults."""
    spec, _ = resolve(name, source=source)
    merged = check_parameters(name, dict(parameters or {}), source=source)
    return spec.loader(merged, Path(data_dir) if data_dir is not None else default_data_dir())


def default_data_dir() -> Path:
    """``../shared/data`` beside the project root when it exists, else ``data/``."""
    import os

    if os.environ.get("DATA_DIR"):
        return Path(os.environ["DATA_DIR"])
    project_root = Path(__file__).resolve().parents[2]
    shared = project_root.parent / "shared" / "data"
    return shared if shared.is_dir() else project_root / "data"


#: Modules that register datasets, the names each registers, and whether it is optional: an optional
#: module whose third-party imports fail leaves its datasets answering with an install hint.
_REGISTRY_MODULES: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("study.datasets.synthetic", ("synthetic_ecg",), False),
    ("study.datasets.long_memory", ("adding", "copy_memory"), False),
    ("study.datasets.ecg_events", ("ecg_events",), False),
    ("study.datasets.physionet", ("mitdb", "cinc2017"), True),
    ("study.datasets.ucr", ("ucr",), True),
)

#: Dataset name -> the optional package it needs that could not be imported.
_MISSING: dict[str, str] = {}
_LOADED = False


def _load_registry() -> None:
    """Import the modules that register datasets (lazily, to keep imports cheap).

    The registry counts as loaded only once every import has succeeded or failed for a missing optional
    package; any other failure propagates and the next call tries again.
    """
    global _LOADED
    if _LOADED:
        return
    missing: dict[str, str] = {}
    for module, names, optional in _REGISTRY_MODULES:
        try:
            importlib.import_module(module)
        except ImportError as error:
            if optional and error.name == module:
                continue  # the module itself is left out of this checkout
            package = (error.name or "").split(".")[0]
            if not optional or not package or package == "study":
                raise
            missing.update({name: package for name in names})
    _MISSING.clear()
    _MISSING.update(missing)
    _LOADED = True


def pinned_requirement(package: str) -> str:
    """``package==version`` as pinned in the project's requirements.txt, else the bare package name."""
    requirements = Path(__file__).resolve().parents[2] / "requirements.txt"
    try:
        text = requirements.read_text(encoding="utf-8")
    except OSError:
        return package
    match = re.search(rf"^\s*({re.escape(package)}==\S+)", text, flags=re.MULTILINE | re.IGNORECASE)
    return match.group(1) if match else package
