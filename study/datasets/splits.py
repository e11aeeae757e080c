"""Split and parameter helpers shared by the dataset loaders (UCR, MIT-BIH, CinC 2017)."""
from __future__ import annotations

import math
import numbers
from typing import Any, Sequence

import numpy as np

from study.errors import BadInput


def check_fraction(parameters: dict[str, Any], name: str) -> float:
    """The parameter as a float strictly between 0 and 1, else BadInput."""
    value = parameters[name]
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < float(value) < 1:
        raise BadInput(f"must be a number between 0 and 1 (exclusive), got {value!r}",
                       key=f"dataset.parameters.{name}")
    return float(value)


def check_seed(parameters: dict[str, Any], name: str = "seed") -> int:
    """The parameter as a non-negative integer, else BadInput."""
    value = parameters[name]
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise BadInput(f"must be a non-negative integer, got {value!r}", key=f"dataset.parameters.{name}")
    return int(value)


def stratified_split(labels: np.ndarray, fractions: dict[str, float], seed: int) -> dict[str, np.ndarray]:
    """Split example indices by class: each named split takes ``fraction`` of every class.

    Per class (in label order) the members are shuffled with one seeded generator;
    each named split takes ``round(fraction * n)`` of them, at least one when the
    class has more members than there are splits, and ``"train"`` keeps the rest
    (at least one). Returns sorted index arrays for ``"train"`` and every named split.
    """
    generator = np.random.default_rng(seed)
    chosen: dict[str, list[np.ndarray]] = {"train": [], **{split: [] for split in fractions}}
    for label in np.unique(labels):
        members = generator.permutation(np.flatnonzero(labels == label))
        size = len(members)
        counts = []
        for fraction in fractions.values():
            count = int(math.floor(fraction * size + 0.5))
            if fraction > 0 and size > len(fractions):
                count = max(count, 1)
            counts.append(count)
        excess = sum(counts) - (size - 1)
        for position in reversed(range(len(counts))):
            if excess <= 0:
                break
            taken = min(counts[position], excess)
            counts[position] -= taken
            excess -= taken
        start = 0
        for split, count in zip(fractions, counts):
            chosen[split].append(members[start:start + count])
            start += count
        chosen["train"].append(members[start:])
    return {split: np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)
            for split, parts in chosen.items()}


def require_every_class(split_labels: dict[str, np.ndarray], class_names: Sequence[str], *,
                        source: str | None = None, key: str | None = None, unit: str = "examples") -> None:
    """BadInput naming the first class that has no examples in some split."""
    for split, labels in split_labels.items():
        counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(class_names))
        for class_name, count in zip(class_names, counts):
            if count == 0:
                raise BadInput(f"class {class_name!r} has no {unit} in the {split} split", source=source, key=key)
