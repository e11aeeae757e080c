"""Tests of the generated long-memory datasets ``adding``, ``copy_memory`` and ``ecg_events``: determinism,
the task encoded in the inputs, balanced splits, label noise and parameter checks. No training; fast."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from study.datasets import DATASETS, Dataset, check_parameters, load_dataset
from study.datasets.ecg_events import (SHAPE_NAMES, event_footprint, event_layout, generate_event_strips,
                                       render_events)
from study.datasets.long_memory import (adding_bin_edges, adding_class_names, adding_sums, copy_memory_delimiter,
                                        generate_copy_memory)
from study.datasets.synthetic import flip_labels, render_sinus_strips
from study.errors import BadInput

SMALL = {
    "adding": {"length": 20, "n_sequences": 200, "seed": 3},
    "copy_memory": {"length": 12, "n_sequences": 160, "seed": 3},
    "ecg_events": {"n_strips": 60, "length": 100, "event_distance": 30, "seed": 3},
}


def splits(dataset: Dataset) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(dataset.x_train, dataset.y_train), (dataset.x_val, dataset.y_val), (dataset.x_test, dataset.y_test)]


def all_inputs(dataset: Dataset) -> np.ndarray:
    return np.concatenate([dataset.x_train, dataset.x_val, dataset.x_test])


def all_labels(dataset: Dataset) -> np.ndarray:
    return np.concatenate([dataset.y_train, dataset.y_val, dataset.y_test])


def test_registered_with_the_documented_defaults():
    load_dataset("adding", SMALL["adding"])  # loads the registry
    split = {"seed": 0, "validation_fraction": 0.15, "test_fraction": 0.15, "label_noise": 0.0}
    assert DATASETS["adding"].defaults == {"length": 200, "n_sequences": 2000, "bins": 2, **split}
    assert DATASETS["copy_memory"].defaults == {"length": 100, "n_sequences": 2000, "symbols": 10, **split}
    assert DATASETS["ecg_events"].defaults == {"n_strips": 1000, "length": 140, "sampling_rate": 50.0,
                                               "noise": 0.05, "event_distance": 40, "edge_margin": 20, **split}
    assert all(DATASETS[name].check is not None for name in SMALL)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_same_seed_gives_identical_data_and_another_seed_different_data(name):
    first = load_dataset(name, SMALL[name])
    again = load_dataset(name, SMALL[name])
    other = load_dataset(name, {**SMALL[name], "seed": 4})
    for (x, y), (x_again, y_again) in zip(splits(first), splits(again)):
        assert x.tobytes() == x_again.tobytes() and np.array_equal(y, y_again)
    assert first.content_hash() == again.content_hash()
    assert first.content_hash() != other.content_hash()
    assert not np.array_equal(first.x_train, other.x_train)
    assert first.describe()["parameters"] == {**DATASETS[name].defaults, **SMALL[name]}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_types_shapes_and_classes_balanced_in_every_split(name):
    dataset = load_dataset(name, SMALL[name])
    for x, y in splits(dataset):
        assert x.dtype == np.float32 and x.ndim == 3 and y.dtype == np.int64
        assert x.shape[1:] == dataset.input_shape
    counts = np.bincount(all_labels(dataset), minlength=dataset.num_classes)
    assert counts.max() - counts.min() <= 1
    for split, per_class in dataset.class_counts().items():
        assert min(per_class.values()) >= 1, split
    assert dataset.info["chance_accuracy"] == pytest.approx(1 / dataset.num_classes)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_label_noise_flips_exactly_round_f_n_train_and_validation_labels_and_no_test_label(name):
    clean = load_dataset(name, SMALL[name])
    noisy = load_dataset(name, {**SMALL[name], "label_noise": 0.3})
    for (x, _), (x_noisy, _) in zip(splits(clean), splits(noisy)):
        assert x.tobytes() == x_noisy.tobytes()  # neither inputs nor split depend on label noise
    assert np.array_equal(clean.y_test, noisy.y_test)
    pool = len(clean.y_train) + len(clean.y_val)
    changed = int((clean.y_train != noisy.y_train).sum() + (clean.y_val != noisy.y_val).sum())
    assert changed == round(0.3 * pool)
    flipped = noisy.info["labels_flipped"]
    assert flipped["train"] == int((clean.y_train != noisy.y_train).sum())
    assert flipped["validation"] == int((clean.y_val != noisy.y_val).sum())
    assert clean.info["labels_flipped"] == {"train": 0, "validation": 0}


# --- adding ----------------------------------------------------------------------------------------------


def test_adding_bin_edges_are_the_triangular_quantiles():
    assert adding_bin_edges(2).tolist() == [1.0]
    assert np.allclose(adding_bin_edges(4), [np.sqrt(0.5), 1.0, 2 - np.sqrt(0.5)])
    edges = adding_bin_edges(7)
    cdf = np.where(edges <= 1, edges ** 2 / 2, 1 - (2 - edges) ** 2 / 2)
    assert np.allclose(cdf, np.arange(1, 7) / 7)
    assert adding_class_names(2) == ("sum<1.000", "sum>=1.000")
    names = adding_class_names(5)
    assert len(set(names)) == 5 and names[0].startswith("bin0 [0.000, ") and names[-1].endswith(", 2.000)")
    for bad in (1, 0, 2.0, True, "2"):
        with pytest.raises(ValueError):
            adding_bin_edges(bad)


@pytest.mark.parametrize("length", [20, 7])
def test_adding_has_exactly_two_markers_one_in_each_half(length):
    dataset = load_dataset("adding", {**SMALL["adding"], "length": length})
    x = all_inputs(dataset)
    assert x.shape[1:] == (length, 2)
    marker = x[:, :, 1]
    assert set(np.unique(marker).tolist()) == {0.0, 1.0}
    half = length // 2
    assert (marker[:, :half].sum(axis=1) == 1).all() and (marker[:, half:].sum(axis=1) == 1).all()
    assert ((x[:, :, 0] >= 0) & (x[:, :, 0] < 1)).all()
    assert dataset.info["marker_positions"] == {"first": [0, half - 1], "second": [half, length - 1]}


def test_adding_labels_are_the_bins_of_the_sum_computed_from_the_inputs():
    two = load_dataset("adding", SMALL["adding"])
    assert two.info["bin_edges"] == [1.0]
    for x, y in splits(two):
        assert np.array_equal(y, (adding_sums(x) >= 1).astype(np.int64))
        rows = np.arange(len(x))
        marked = np.sort(np.argsort(-x[:, :, 1], axis=1)[:, :2], axis=1)
        assert np.array_equal(adding_sums(x), x[rows, marked[:, 0], 0].astype(np.float64) + x[rows, marked[:, 1], 0])

    five = load_dataset("adding", {**SMALL["adding"], "bins": 5})
    edges = np.array(five.info["bin_edges"])
    assert np.array_equal(edges, adding_bin_edges(5))
    for x, y in splits(five):
        assert np.array_equal(y, np.searchsorted(edges, adding_sums(x), side="right"))

    # With label noise, exactly the flipped labels disagree with the inputs' answer, none of them in test.
    noisy = load_dataset("adding", {**SMALL["adding"], "bins": 5, "label_noise": 0.25})
    disagree = [int((y != np.searchsorted(edges, adding_sums(x), side="right")).sum()) for x, y in splits(noisy)]
    assert disagree[2] == 0
    assert disagree[0] + disagree[1] == round(0.25 * (len(noisy.y_train) + len(noisy.y_val)))


def test_adding_marked_values_are_uniform_and_their_sum_triangular():
    x = all_inputs(load_dataset("adding", {"length": 8, "n_sequences": 3000, "seed": 1}))
    marked = x[:, :, 0][x[:, :, 1] == 1]
    assert stats.kstest(marked, "uniform").pvalue > 0.01
    assert stats.kstest(adding_sums(x), stats.triang(c=0.5, loc=0, scale=2).cdf).pvalue > 0.01


def test_adding_sums_rejects_inputs_without_two_channels():
    with pytest.raises(ValueError):
        adding_sums(np.zeros((3, 5, 1)))


# --- copy memory -----------------------------------------------------------------------------------------


def test_copy_memory_layout_and_label_is_the_queried_symbol():
    length = SMALL["copy_memory"]["length"]
    dataset = load_dataset("copy_memory", SMALL["copy_memory"])
    delimiter = copy_memory_delimiter(length)
    assert delimiter == length + 9 and dataset.info["layout"]["delimiter"] == delimiter
    assert dataset.input_shape == (length + 20, 20) and dataset.info["input_length"] == length + 20
    assert dataset.class_names == tuple("12345678")
    for x, y in splits(dataset):
        tokens_one_hot, query_one_hot = x[:, :, :10], x[:, :, 10:]
        assert (tokens_one_hot.sum(axis=2) == 1).all()  # exactly one token per step
        tokens = tokens_one_hot.argmax(axis=2)
        assert ((tokens[:, :10] >= 1) & (tokens[:, :10] <= 8)).all()
        assert (tokens[:, 10:delimiter] == 0).all()
        assert (tokens[:, delimiter:] == 9).all() and tokens.shape[1] - delimiter == 11
        assert (query_one_hot.sum(axis=(1, 2)) == 1).all() and (query_one_hot[:, delimiter].sum(axis=1) == 1).all()
        query = query_one_hot[:, delimiter].argmax(axis=1)
        assert np.array_equal(y + 1, tokens[np.arange(len(x)), query])


def test_copy_memory_symbols_and_queries_cover_their_ranges():
    symbols, query, labels = generate_copy_memory(5, 800, 2)
    assert set(np.unique(symbols).tolist()) == set(range(1, 9))
    assert set(np.unique(query).tolist()) == set(range(10))
    assert np.array_equal(symbols[np.arange(800), query], labels + 1)
    assert np.array_equal(np.bincount(labels), [100] * 8)


def test_copy_memory_with_length_one_has_no_blank():
    dataset = load_dataset("copy_memory", {"length": 1, "n_sequences": 24})
    tokens = dataset.x_train[:, :, :10].argmax(axis=2)
    assert dataset.input_shape == (21, 20) and (tokens[:, 10:] == 9).all()


# --- ecg_events ------------------------------------------------------------------------------------------


def test_ecg_events_are_event_distance_apart_one_of_each_shape_and_the_class_is_their_order():
    parameters = SMALL["ecg_events"]
    layout = event_layout(parameters["n_strips"], parameters["length"], 50.0, parameters["event_distance"],
                          parameters["seed"])
    assert (layout.centres[:, 1] - layout.centres[:, 0] == parameters["event_distance"]).all()
    assert (layout.shapes[:, 0] != layout.shapes[:, 1]).all()  # one upright (0), one inverted (1) in every strip
    assert np.array_equal(layout.labels, layout.shapes[:, 0])  # 0: upright first, 1: inverted first
    assert np.array_equal(np.bincount(layout.labels), [30, 30])
    # the bag of events is the same in both classes: their amplitudes and positions do not depend on the class
    for label in range(2):
        assert sorted(layout.shapes[layout.labels == label].sum(axis=1).tolist()) == [1] * 30

    dataset = load_dataset("ecg_events", parameters)
    positions = dataset.info["event_positions"]
    assert positions["distance"] == parameters["event_distance"]
    assert positions["first_peak"][0] <= layout.centres[:, 0].min()
    assert layout.centres[:, 0].max() <= positions["first_peak"][1]
    assert positions["second_peak"][1] - positions["first_peak"][1] == parameters["event_distance"]
    assert positions["second_peak"][1] + positions["edge_margin"] == parameters["length"] - 1
    assert set(dataset.info["shapes"]) == set(SHAPE_NAMES)
    assert dataset.class_names == ("upright_first", "inverted_first")

    # Every example's label is the layout's label of the strip it shows.
    strips, again = generate_event_strips(parameters["n_strips"], parameters["length"], 50.0, 0.05,
                                          parameters["event_distance"], parameters["seed"])
    assert np.array_equal(again.centres, layout.centres) and np.array_equal(again.shapes, layout.shapes)
    row_of = {strip.tobytes(): index for index, strip in enumerate(strips)}
    for x, y in splits(dataset):
        rows = [row_of[example[:, 0].tobytes()] for example in x]
        assert np.array_equal(y, layout.labels[rows])


def test_ecg_events_lie_where_the_layout_says_on_a_background_that_ignores_them():
    n_strips, length, seed = 12, 90, 5
    near, near_layout = generate_event_strips(n_strips, length, 50.0, 0.0, 10, seed, edge_margin=6)
    far, far_layout = generate_event_strips(n_strips, length, 50.0, 0.0, 60, seed, edge_margin=6)
    near_background = near - render_events(near_layout, length, 50.0)
    far_background = far - render_events(far_layout, length, 50.0)
    assert np.allclose(near_background, far_background, atol=1e-5)
    events = render_events(far_layout, length, 50.0)
    rows = np.arange(n_strips)
    for event in range(2):
        peak = events[rows, far_layout.centres[:, event]]
        assert np.array_equal(np.sign(peak), np.where(far_layout.shapes[:, event] == 0, 1.0, -1.0))
        assert (np.abs(peak) >= 0.5 - 1e-6).all()


def test_render_sinus_strips_is_deterministic_float32():
    first = render_sinus_strips(5, 120, 50.0, 0.05, 9)
    assert first.dtype == np.float32 and first.shape == (5, 120)
    assert first.tobytes() == render_sinus_strips(5, 120, 50.0, 0.05, np.random.default_rng(9)).tobytes()
    assert not np.array_equal(first, render_sinus_strips(5, 120, 50.0, 0.05, 10))


# --- flip_labels -----------------------------------------------------------------------------------------


def test_flip_labels_defaults_to_four_classes_and_takes_another_count():
    labels = np.arange(40) % 4
    default = flip_labels(labels, 0.25, np.random.default_rng(1))
    four = flip_labels(labels, 0.25, np.random.default_rng(1), num_classes=4)
    assert all(np.array_equal(a, b) for a, b in zip(default, four))
    binary = np.arange(40) % 2
    noisy, flipped = flip_labels(binary, 0.25, np.random.default_rng(1), num_classes=2)
    assert len(flipped) == 10 and np.array_equal(noisy[flipped], 1 - binary[flipped])
    assert np.array_equal(np.delete(noisy, flipped), np.delete(binary, flipped))
    with pytest.raises(ValueError):
        flip_labels(binary, 0.25, np.random.default_rng(1), num_classes=1)


# --- parameter checks ------------------------------------------------------------------------------------

BAD_PARAMETERS = [
    ("adding", {"length": 3}, "length"),
    ("adding", {"length": 20.0}, "length"),
    ("adding", {"length": "200"}, "length"),
    ("adding", {"bins": 1}, "bins"),
    ("adding", {"bins": True}, "bins"),
    ("adding", {"bins": 10, "n_sequences": 29}, "n_sequences"),
    ("adding", {"n_sequences": 5}, "n_sequences"),
    ("adding", {"seed": -1}, "seed"),
    ("adding", {"seed": 1.5}, "seed"),
    ("adding", {"validation_fraction": 0.0}, "validation_fraction"),
    ("adding", {"test_fraction": 1.0}, "test_fraction"),
    ("adding", {"validation_fraction": 0.5, "test_fraction": 0.5}, "test_fraction"),
    ("adding", {"label_noise": 1.0}, "label_noise"),
    ("adding", {"label_noise": -0.1}, "label_noise"),
    ("adding", {"label_noise": float("nan")}, "label_noise"),
    ("adding", {"width": 3}, "width"),
    ("copy_memory", {"length": 0}, "length"),
    ("copy_memory", {"length": None}, "length"),
    ("copy_memory", {"n_sequences": 23}, "n_sequences"),
    ("copy_memory", {"bins": 2}, "bins"),
    ("copy_memory", {"validation_fraction": "0.1"}, "validation_fraction"),
    ("copy_memory", {"label_noise": [0.1]}, "label_noise"),
    ("ecg_events", {"n_strips": 5}, "n_strips"),
    ("ecg_events", {"sampling_rate": 0}, "sampling_rate"),
    ("ecg_events", {"noise": -0.01}, "noise"),
    ("ecg_events", {"event_distance": 0}, "event_distance"),
    ("ecg_events", {"event_distance": 40.0}, "event_distance"),
    ("ecg_events", {"event_distance": 128}, "event_distance"),
    ("ecg_events", {"length": 80, "event_distance": 70}, "event_distance"),
    ("ecg_events", {"length": 13, "event_distance": 1}, "length"),
    ("ecg_events", {"seed": "0"}, "seed"),
    ("ecg_events", {"test_fraction": 0.9}, "test_fraction"),
    ("ecg_events", {"distance": 40}, "distance"),
]


@pytest.mark.parametrize("name, parameters, bad", BAD_PARAMETERS)
def test_bad_parameters_are_refused_naming_the_key(name, parameters, bad):
    for refuse in (check_parameters, load_dataset):
        with pytest.raises(BadInput) as raised:
            refuse(name, parameters)
        assert raised.value.key == f"dataset.parameters.{bad}"
        assert "allowed" in str(raised.value)
        assert "\n" not in str(raised.value)


def test_event_distance_error_says_what_fits():
    with pytest.raises(BadInput) as raised:
        check_parameters("ecg_events", {"event_distance": 100})
    longest = 140 - 1 - 2 * 20  # both peaks keep edge_margin (20) samples from the ends
    assert f"allowed: an integer from 1 to {longest}" in str(raised.value)
    assert "edge_margin" in str(raised.value) and "length 140" in str(raised.value)
    check_parameters("ecg_events", {"event_distance": longest})  # the longest that fits is accepted
    layout = event_layout(6, 140, 50.0, longest, 0)
    assert (layout.centres[:, 0] == 20).all() and (layout.centres[:, 1] == 119).all()
    # the margin is at least the event's half width, so every event is drawn whole
    footprint = event_footprint(50.0)
    check_parameters("ecg_events", {"edge_margin": 0, "event_distance": 140 - footprint})
    load_dataset("ecg_events", {"n_strips": 6, "edge_margin": 0, "event_distance": 140 - footprint})


def test_copy_memory_with_fewer_symbols_keeps_the_layout_and_the_memory_span():
    dataset = load_dataset("copy_memory", {"length": 7, "n_sequences": 48, "symbols": 3, "seed": 2})
    assert dataset.input_shape == (7 + 2 * 3, 10 + 3)
    for x, y in splits(dataset):
        tokens = x[:, :, :10].argmax(axis=2)
        assert ((tokens[:, :3] >= 1) & (tokens[:, :3] <= 8)).all() and (tokens[:, 3:9] == 0).all()
        assert (tokens[:, 9:] == 9).all() and x[:, 9, 10:].sum(axis=1).tolist() == [1.0] * len(x)
        assert x[:, :9, 10:].sum() == 0 and x[:, 10:, 10:].sum() == 0  # the query only at the delimiter
        queried = x[:, 9, 10:].argmax(axis=1)
        recalled = tokens[np.arange(len(x)), queried] - 1
        assert np.array_equal(recalled, y)  # no label noise: every label is the queried symbol
