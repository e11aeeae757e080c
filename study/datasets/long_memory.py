"""Generated long-memory datasets ``adding`` and ``copy_memory`` (Bai, Kolter & Koltun 2018).

Bai et al. ("An empirical evaluation of generic convolutional and recurrent networks for sequence
modeling") test how far back a sequence model can remember with two synthetic tasks. The toolkit
scores one class per sequence, so both are recast as single-label classification:

* ``adding``: the input is (T, 2); channel 0 holds uniform [0, 1) values and channel 1 marks exactly
  two of them, one in the first half [0, T//2) and one in the second half [T//2, T). Bai et al.
  regress the sum of the two marked values; here the class is which of ``bins`` equally probable
  bins of that sum's distribution (triangular on [0, 2)) it falls in, so ``bins=2`` asks "is the
  sum >= 1?". The answer is a function of the inputs alone (:func:`adding_sums`), and the first
  marked value lies at least T - T//2 steps before the last input, so a model must carry it over at
  least half the sequence.
* ``copy_memory``: Bai et al.'s input has length T + 20: ten symbols from 1-8, then T - 1 blanks
  (0), then eleven 9s, the first of them the delimiter; the model must output the ten symbols over
  the last ten steps (sequence to sequence). Here the same sequence is one-hot encoded over the ten
  token values (channels 0-9), and ten query channels (10-19) are zero except at the delimiter step,
  where a one-hot names which of the ten leading symbols to recall (uniformly chosen); the label is
  that symbol (eight classes, "1".."8"). The query position is unknown until the delimiter, so the
  model must hold all ten symbols across the T blank steps, and its expected accuracy equals the
  per-symbol copy accuracy of Bai's task; chance is 1/8. ``symbols`` (default 10, Bai's) sets how many
  leading symbols there are (the input is then T + 2 x symbols steps of 10 + symbols channels): fewer
  symbols keep the memory span T and lighten the load, for CPU-sized studies.

Both are exactly class-balanced by construction (class counts differ by at most one): the class of
each example is dealt first and its inputs are drawn given the class. Every class is equally
probable under the unconditional task, so each example's inputs still have Bai et al.'s
distribution (for ``adding``, two independent U(0, 1) marked values).

Generation is vectorised numpy and deterministic: one seed is split by :class:`numpy.random.SeedSequence`
into independent streams for the data, the split and the label noise, so the split does not depend on
``label_noise`` and the inputs depend on neither. The helpers at the end (parameter checks, split and
label noise, :func:`assemble_dataset`) are shared with :mod:`study.datasets.ecg_events`.
"""
from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from study.datasets import Dataset, DatasetSpec, register
from study.datasets.splits import require_every_class, stratified_split
from study.datasets.synthetic import _check_integer, _check_real, _key, flip_labels
from study.errors import BadInput

MINIMUM_PER_CLASS = 3  # one example of every class for each of train, validation and test
REFERENCE = ("Bai, Kolter & Koltun 2018, An empirical evaluation of generic convolutional and recurrent "
             "networks for sequence modeling")

ADDING_DEFAULTS: dict[str, Any] = {
    "length": 200,
    "n_sequences": 2000,
    "bins": 2,
    "seed": 0,
    "validation_fraction": 0.15,
    "test_fraction": 0.15,
    "label_noise": 0.0,
}
ADDING_MINIMUM_LENGTH = 4  # two positions in each half

COPY_SYMBOLS = 10  # leading symbols to remember
COPY_ALPHABET = 8  # symbols 1..8; 0 is the blank and 9 the delimiter
COPY_TOKENS = 10  # token values 0..9, one channel each
COPY_CHANNELS = COPY_TOKENS + COPY_SYMBOLS  # token one-hot, then the query one-hot
COPY_CLASS_NAMES = tuple(str(symbol) for symbol in range(1, COPY_ALPHABET + 1))
COPY_DEFAULTS: dict[str, Any] = {
    "length": 100,
    "n_sequences": 2000,
    "symbols": COPY_SYMBOLS,
    "seed": 0,
    "validation_fraction": 0.15,
    "test_fraction": 0.15,
    "label_noise": 0.0,
}


# --- shared by the generated long-memory datasets (this module and ecg_events) -------------------------


def check_split_parameters(parameters: dict[str, Any]) -> tuple[float, float, float, int]:
    """``validation_fraction``, ``test_fraction``, ``label_noise`` and ``seed``, checked; BadInput names the key."""
    fractions = [_check_real(name, parameters[name], "a fraction in (0, 1)", lambda v: 0 < v < 1)
                 for name in ("validation_fraction", "test_fraction")]
    if sum(fractions) >= 1:
        raise BadInput(f"validation_fraction + test_fraction is {sum(fractions):g}, allowed: a sum below 1, "
                       "leaving training examples", key=_key("test_fraction"))
    label_noise = _check_real("label_noise", parameters["label_noise"], "a fraction in [0, 1)",
                              lambda v: 0 <= v < 1)
    seed = _check_integer("seed", parameters["seed"], 0)
    return fractions[0], fractions[1], label_noise, seed


def check_example_count(name: str, value: Any, num_classes: int) -> int:
    """An example count large enough for every class in every split (classes are dealt evenly)."""
    return _check_integer(name, value, MINIMUM_PER_CLASS * num_classes,
                          f" ({MINIMUM_PER_CLASS} per class for the {num_classes} classes, so every split "
                          "holds every class)")


def seed_streams(seed: int) -> tuple[np.random.SeedSequence, np.random.SeedSequence, np.random.SeedSequence]:
    """Independent (data, split, label noise) streams of one seed."""
    data, split, noise = np.random.SeedSequence(seed).spawn(3)
    return data, split, noise


def balanced_labels(n_examples: int, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """Class indices dealt evenly (counts differ by at most one) in a random order, int64."""
    return rng.permutation(np.arange(n_examples) % num_classes).astype(np.int64)


def assemble_dataset(name: str, labels: np.ndarray, inputs: Callable[[np.ndarray], np.ndarray],
                     class_names: Sequence[str], parameters: dict[str, Any], info: dict[str, Any], *,
                     seed: int, validation_fraction: float, test_fraction: float, label_noise: float,
                     count_name: str) -> Dataset:
    """Split examples stratified by class, corrupt train + validation labels, and build the Dataset.

    ``inputs(indices)`` returns the float32 inputs of those examples, so a dataset can keep a compact
    form and expand only once per split. The split uses the seed's split stream and the label noise its
    noise stream (:func:`seed_streams`): exactly round(label_noise * n) of the n train + validation labels
    are replaced by a different random class; test labels stay true. ``count_name`` is the parameter
    blamed if some split lacks a class (the count checks rule that out).
    """
    _, split_stream, noise_stream = seed_streams(seed)
    split_seed = int(split_stream.generate_state(1)[0])
    indices = stratified_split(labels, {"validation": validation_fraction, "test": test_fraction}, split_seed)
    require_every_class({split: labels[indices[split]] for split in ("train", "validation", "test")},
                        class_names, key=_key(count_name))

    pool = np.concatenate([indices["train"], indices["validation"]])
    noisy, flipped = flip_labels(labels[pool], label_noise, np.random.default_rng(noise_stream),
                                 num_classes=len(class_names))
    observed = labels.copy()
    observed[pool] = noisy
    n_train = len(indices["train"])

    def x(split: str) -> np.ndarray:
        array = inputs(indices[split])
        return array if array.dtype == np.float32 else array.astype(np.float32)

    return Dataset(
        name=name,
        x_train=x("train"), y_train=observed[indices["train"]].astype(np.int64),
        x_val=x("validation"), y_val=observed[indices["validation"]].astype(np.int64),
        x_test=x("test"), y_test=labels[indices["test"]].astype(np.int64),
        class_names=tuple(class_names),
        parameters=dict(parameters),
        info={
            **info,
            "chance_accuracy": 1.0 / len(class_names),
            "label_noise_applied_to": ["train", "validation"],
            "labels_flipped": {"train": int((flipped < n_train).sum()),
                               "validation": int((flipped >= n_train).sum())},
        },
    )


# --- adding ---------------------------------------------------------------------------------------------


def _triangular_quantile(probability: np.ndarray) -> np.ndarray:
    """Inverse CDF of the sum of two independent U(0, 1): F(s) = s²/2 below 1, 1 - (2 - s)²/2 above."""
    probability = np.asarray(probability, dtype=np.float64)
    lower = np.sqrt(2.0 * np.minimum(probability, 0.5))
    upper = 2.0 - np.sqrt(2.0 * (1.0 - np.maximum(probability, 0.5)))
    return np.where(probability <= 0.5, lower, upper)


def adding_bin_edges(bins: int) -> np.ndarray:
    """The ``bins - 1`` inner edges that cut the sum of two U(0, 1) into equally probable bins.

    Closed form from the triangular CDF: edge k is F⁻¹(k / bins); ``bins=2`` gives [1.0] exactly.
    """
    if isinstance(bins, bool) or not isinstance(bins, numbers.Integral) or bins < 2:
        raise ValueError(f"bins must be an integer >= 2, got {bins!r}")
    return _triangular_quantile(np.arange(1, int(bins)) / int(bins))


def adding_sums(x: np.ndarray) -> np.ndarray:
    """The adding problem's answer from the inputs alone: the sum over time of channel 0 * channel 1.

    ``x`` is (examples, length, 2 or more channels); the result is float64 (examples,). The marker is
    0 or 1, so the sum is exactly the two marked values added in float64, whatever the summation order.
    """
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[2] < 2:
        raise ValueError(f"x must be shaped (examples, length, channels >= 2), got shape {x.shape}")
    return np.sum(x[:, :, 0].astype(np.float64) * x[:, :, 1], axis=1)


def adding_bin_of(sums: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Class index of each sum: the number of inner edges at or below it (a sum on an edge goes up)."""
    return np.searchsorted(edges, sums, side="right").astype(np.int64)


def adding_class_names(bins: int) -> tuple[str, ...]:
    """Readable, unique names: ``sum<1.000``/``sum>=1.000`` for two bins, else ``bin0 [0.000, 0.816)`` ..."""
    edges = adding_bin_edges(bins)
    if bins == 2:
        return (f"sum<{edges[0]:.3f}", f"sum>={edges[0]:.3f}")
    bounds = [0.0, *edges.tolist(), 2.0]
    return tuple(f"bin{index} [{bounds[index]:.3f}, {bounds[index + 1]:.3f})" for index in range(bins))


def _marked_pairs(labels: np.ndarray, edges: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Two float32 values in [0, 1) per example whose sum lies in the example's bin, (examples, 2).

    The sum is drawn from the triangular distribution restricted to the bin (inverse CDF), then the
    first value uniformly among those that make that sum with a second value in [0, 1): together an
    exact draw of two independent U(0, 1) given the bin. Pairs that float32 rounding moves out of
    [0, 1) or across a bin edge (about one in ten million) are drawn again, so the stored inputs
    always give the stated class.
    """
    bins = len(edges) + 1
    pairs = np.empty((len(labels), 2), dtype=np.float32)
    pending = np.arange(len(labels))
    while pending.size:
        classes = labels[pending]
        sums = _triangular_quantile(rng.uniform(classes / bins, (classes + 1) / bins))
        first = rng.uniform(np.maximum(0.0, sums - 1.0), np.minimum(1.0, sums))
        candidate = np.stack([first, sums - first], axis=1).astype(np.float32)
        exact_sums = candidate[:, 0].astype(np.float64) + candidate[:, 1]
        accepted = ((candidate >= 0) & (candidate < 1)).all(axis=1) & (adding_bin_of(exact_sums, edges) == classes)
        pairs[pending[accepted]] = candidate[accepted]
        pending = pending[~accepted]
    return pairs


def check_adding(parameters: dict[str, Any]) -> None:
    """Every parameter of ``adding`` (types and ranges), without generating."""
    _check_adding(parameters)


def _check_adding(parameters: dict[str, Any]) -> tuple[int, int, int, float, float, float, int]:
    merged = {**ADDING_DEFAULTS, **parameters}
    length = _check_integer("length", merged["length"], ADDING_MINIMUM_LENGTH,
                            " (at least two positions in each half)")
    bins = _check_integer("bins", merged["bins"], 2)
    n_sequences = check_example_count("n_sequences", merged["n_sequences"], bins)
    validation_fraction, test_fraction, label_noise, seed = check_split_parameters(merged)
    return length, n_sequences, bins, validation_fraction, test_fraction, label_noise, seed


def generate_adding(length: int, n_sequences: int, bins: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs float32 (n_sequences, length, 2) and true class indices int64 of the adding problem.

    The data stream of ``seed`` (:func:`seed_streams`) decides everything, so the same arguments give
    bitwise identical arrays.
    """
    length, n_sequences, bins, *_, seed = _check_adding({"length": length, "n_sequences": n_sequences,
                                                         "bins": bins, "seed": seed})
    data_stream, _, _ = seed_streams(seed)
    rng = np.random.default_rng(data_stream)
    edges = adding_bin_edges(bins)
    labels = balanced_labels(n_sequences, bins, rng)
    half = length // 2
    first_position = rng.integers(0, half, size=n_sequences)
    second_position = rng.integers(half, length, size=n_sequences)
    x = np.zeros((n_sequences, length, 2), dtype=np.float32)
    x[:, :, 0] = rng.random((n_sequences, length), dtype=np.float32)
    pairs = _marked_pairs(labels, edges, rng)
    rows = np.arange(n_sequences)
    x[rows, first_position, 0] = pairs[:, 0]
    x[rows, second_position, 0] = pairs[:, 1]
    x[rows, first_position, 1] = 1.0
    x[rows, second_position, 1] = 1.0
    return x, labels


def load_adding(parameters: dict[str, Any], data_dir: Path) -> Dataset:
    """The adding problem as ``bins``-class classification with fixed stratified splits; nothing is read."""
    del data_dir
    merged = {**ADDING_DEFAULTS, **parameters}
    length, n_sequences, bins, validation_fraction, test_fraction, label_noise, seed = _check_adding(merged)
    x, labels = generate_adding(length, n_sequences, bins, seed)
    edges = adding_bin_edges(bins)
    half = length // 2
    info = {
        "task": "adding problem (Bai et al. 2018) as classification: which equally probable bin of the "
                "triangular distribution on [0, 2) the sum of the two marked values falls in",
        "reference": REFERENCE,
        "input_length": length,
        "channels": ["value: uniform [0, 1)", "marker: 1 at the two summed positions, else 0"],
        "marker_positions": {"first": [0, half - 1], "second": [half, length - 1]},
        "bin_edges": [float(edge) for edge in edges],
        "answer": "sum over time of channel 0 * channel 1 (study.datasets.long_memory.adding_sums)",
        "class_balance": "dealt evenly; each example's two marked values are U(0, 1) given its bin",
    }
    return assemble_dataset("adding", labels, lambda indices: x[indices], adding_class_names(bins), merged,
                            info, seed=seed, validation_fraction=validation_fraction,
                            test_fraction=test_fraction, label_noise=label_noise, count_name="n_sequences")


# --- copy memory ----------------------------------------------------------------------------------------


def check_copy_memory(parameters: dict[str, Any]) -> None:
    """Every parameter of ``copy_memory`` (types and ranges), without generating."""
    _check_copy_memory(parameters)


def _check_copy_memory(parameters: dict[str, Any]) -> tuple[int, int, float, float, float, int, int]:
    merged = {**COPY_DEFAULTS, **parameters}
    symbols = _check_integer("symbols", merged["symbols"], 1, " (leading symbols to remember; Bai et al. use 10)")
    length = _check_integer("length", merged["length"], 1, " (the input holds length + 2 x symbols steps)")
    n_sequences = check_example_count("n_sequences", merged["n_sequences"], COPY_ALPHABET)
    validation_fraction, test_fraction, label_noise, seed = check_split_parameters(merged)
    return length, n_sequences, validation_fraction, test_fraction, label_noise, seed, symbols


def copy_memory_delimiter(length: int, symbols: int = COPY_SYMBOLS) -> int:
    """Index of the delimiter step (the first 9) in an input of ``length + 2 * symbols`` steps."""
    return symbols + length - 1


def generate_copy_memory(length: int, n_sequences: int, seed: int, symbols: int = COPY_SYMBOLS
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The compact copy-memory task: leading symbols int64 (n, symbols) in 1..8, query positions int64 (n,) in
    0..symbols-1 and class indices int64 (n,) (symbol - 1 of the queried position). Expand with
    :func:`copy_memory_inputs`. The data stream of ``seed`` decides everything.
    """
    length, n_sequences, *_, seed, count = _check_copy_memory({"length": length, "n_sequences": n_sequences,
                                                               "seed": seed, "symbols": symbols})
    data_stream, _, _ = seed_streams(seed)
    rng = np.random.default_rng(data_stream)
    labels = balanced_labels(n_sequences, COPY_ALPHABET, rng)
    query = rng.integers(0, count, size=n_sequences)
    symbols = rng.integers(1, COPY_ALPHABET + 1, size=(n_sequences, count))
    symbols[np.arange(n_sequences), query] = labels + 1
    return symbols, query, labels


def copy_memory_inputs(symbols: np.ndarray, query: np.ndarray, length: int) -> np.ndarray:
    """One-hot inputs float32 (n, length + 2s, 10 + s) for s leading symbols (Bai: s = 10, so (n, length + 20,
    20)): token one-hot in channels 0-9 (symbols, blanks 0, delimiter and trailing 9s), the query position's
    one-hot in channels 10 .. 9 + s at the delimiter step only."""
    n_sequences, count = symbols.shape
    total = length + 2 * count
    delimiter = copy_memory_delimiter(length, count)
    x = np.zeros((n_sequences, total, COPY_TOKENS + count), dtype=np.float32)
    rows = np.arange(n_sequences)
    x[rows[:, None], np.arange(count)[None, :], symbols] = 1.0
    x[:, count:delimiter, 0] = 1.0  # blanks
    x[:, delimiter:, COPY_TOKENS - 1] = 1.0  # the delimiter and the ten 9s of the answer phase
    x[rows, delimiter, COPY_TOKENS + query] = 1.0
    return x


def load_copy_memory(parameters: dict[str, Any], data_dir: Path) -> Dataset:
    """The copy memory task as 8-class recall of one queried symbol, with fixed stratified splits."""
    del data_dir
    merged = {**COPY_DEFAULTS, **parameters}
    length, n_sequences, validation_fraction, test_fraction, label_noise, seed, count = _check_copy_memory(merged)
    symbols, query, labels = generate_copy_memory(length, n_sequences, seed, count)
    delimiter = copy_memory_delimiter(length, count)
    info = {
        "task": "copy memory (Bai et al. 2018) as single-label recall: the class is the leading symbol named "
                "by the query at the delimiter step",
        "reference": REFERENCE,
        "input_length": length + 2 * count,
        "channels": {"0-9": "one-hot token: 0 blank, 1-8 symbols, 9 delimiter and answer phase",
                     f"10-{9 + count}": "one-hot query position (which leading symbol to recall), at the "
                                         "delimiter only"},
        "layout": {"symbols": [0, count - 1],
                   "blanks": [count, delimiter - 1] if length > 1 else [],
                   "delimiter": delimiter, "answer_phase": [delimiter + 1, length + 2 * count - 1]},
        "memory_span": f"the {count} symbols must be held for {length} steps until the delimiter",
        "class_balance": "dealt evenly; the other nine symbols uniform in 1-8",
    }
    return assemble_dataset("copy_memory", labels,
                            lambda indices: copy_memory_inputs(symbols[indices], query[indices], length),
                            COPY_CLASS_NAMES, merged, info, seed=seed, validation_fraction=validation_fraction,
                            test_fraction=test_fraction, label_noise=label_noise, count_name="n_sequences")


register("adding", DatasetSpec(
    loader=load_adding,
    defaults=dict(ADDING_DEFAULTS),
    description="The adding problem of Bai et al. 2018 as classification: (length, 2) inputs of uniform values "
                "and a two-position marker; the class is the bin of the marked values' sum (bins=2: sum >= 1); "
                "generated from a seed, no files needed.",
    check=check_adding,
))
register("copy_memory", DatasetSpec(
    loader=load_copy_memory,
    defaults=dict(COPY_DEFAULTS),
    description="The copy memory task of Bai et al. 2018 as single-label recall: ten symbols, length blanks, a "
                "delimiter carrying a query; the class is the queried symbol (8 classes, chance 1/8); "
                "generated from a seed, no files needed.",
    check=check_copy_memory,
))
