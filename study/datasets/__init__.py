"""Dataset registry: every study dataset is a name that maps to a loader.

A loader takes a dict of parameters (already merged over its defaults) and a
data directory, and returns a :class:`Dataset` with fixed train/validation/test
splits. Loaders raise :class:`study.errors.BadInput` for bad parameters or
broken data files.
"""
from __future__ import annotations

import hashlib
import json
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
    """How to load one registered dataset: its loader and default parameters."""

    loader: Callable[[dict[str, Any], Path], Dataset]
    defaults: dict[str, Any]
    description: str


DATASETS: dict[str, DatasetSpec] = {}


def register(name: str, spec: DatasetSpec) -> None:
    DATASETS[name] = spec


def dataset_names() -> list[str]:
    """Registered names plus the parametrised ``ucr:<directory>`` form."""
    return sorted(DATASETS) + ["ucr:<directory>"]


def resolve(name: str, *, source: str | None = None, key: str = "dataset.name") -> tuple[DatasetSpec, dict[str, Any]]:
    """Return the spec for a dataset name and the parameters the name itself carries."""
    _load_registry()
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
    """Merge parameters over the dataset's defaults, rejecting unknown names."""
    spec, implied = resolve(name, source=source)
    unknown = sorted(set(parameters) - set(spec.defaults) - set(implied))
    if unknown:
        allowed = ", ".join(sorted(spec.defaults)) or "(none)"
        raise BadInput(
            f"unknown parameter {unknown[0]!r} for dataset {name!r}, allowed: {allowed}",
            source=source,
            key=f"dataset.parameters.{unknown[0]}",
        )
    return {**spec.defaults, **implied, **parameters}


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


_LOADED = False


def _load_registry() -> None:
    """Import the modules that register datasets (lazily, to keep imports cheap)."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    from study.datasets import synthetic  # noqa: F401  registers synthetic_ecg
    for optional in ("physionet", "ucr"):
        try:
            __import__(f"study.datasets.{optional}")
        except ModuleNotFoundError as error:
            if error.name != f"study.datasets.{optional}":
                raise
