"""Tests of the embedded dataset ``synthetic_ecg``: determinism, splits, label noise, validation,
and that the classes really differ in rhythm and beat shape."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.signal import find_peaks, peak_widths

from study.datasets import DATASETS, load_dataset
from study.datasets.synthetic import CLASS_NAMES, generate_strips, load_synthetic_ecg
from study.errors import BadInput

NORMAL, AF, PVC, ST_ELEVATION = range(4)
CLEAN_RATE = 250.0  # Hz; fine enough to measure QRS widths on noise-free strips
R_PEAK_HEIGHT = 0.55  # mV; above every P, T and ST bump, below every R peak


def r_peaks(strip: np.ndarray, sampling_rate: float = CLEAN_RATE) -> np.ndarray:
    """Sample indices of the R peaks of a noise-free strip."""
    peaks, _ = find_peaks(strip, height=R_PEAK_HEIGHT, distance=int(0.25 * sampling_rate))
    return peaks


@pytest.fixture(scope="module")
def long_clean_strips() -> tuple[np.ndarray, np.ndarray]:
    """Noise-free 20 s strips at 250 Hz, 15 of each class."""
    return generate_strips(60, 5000, CLEAN_RATE, 0.0, 0.0, 11)


def small_parameters(**overrides) -> dict:
    return {"n_strips": 120, "seed": 5, **overrides}


def test_registered_with_the_documented_defaults():
    load_dataset("synthetic_ecg", {"n_strips": 12})  # loads the registry
    spec = DATASETS["synthetic_ecg"]
    assert spec.loader is load_synthetic_ecg
    assert spec.defaults == {"n_strips": 1000, "length": 140, "sampling_rate": 50.0, "noise": 0.05,
                             "label_noise": 0.0, "seed": 0, "validation_fraction": 0.15, "test_fraction": 0.15}


def test_same_seed_gives_identical_data_and_another_seed_different_data():
    first_x, first_y = generate_strips(40, 200, 50.0, 0.05, 0.1, 3)
    again_x, again_y = generate_strips(40, 200, 50.0, 0.05, 0.1, 3)
    other_x, other_y = generate_strips(40, 200, 50.0, 0.05, 0.1, 4)
    assert first_x.tobytes() == again_x.tobytes()
    assert np.array_equal(first_y, again_y)
    assert not np.allclose(first_x, other_x)
    assert not np.array_equal(first_y, other_y)

    dataset = load_dataset("synthetic_ecg", small_parameters())
    assert dataset.content_hash() == load_dataset("synthetic_ecg", small_parameters()).content_hash()
    assert dataset.content_hash() != load_dataset("synthetic_ecg", small_parameters(seed=6)).content_hash()


def test_shapes_dtypes_and_balanced_classes():
    strips, labels = generate_strips(40, 140, 50.0, 0.05, 0.0, 0)
    assert strips.shape == (40, 140) and strips.dtype == np.float32
    assert labels.shape == (40,) and labels.dtype == np.int64
    assert np.bincount(labels, minlength=4).tolist() == [10, 10, 10, 10]
    assert np.all(np.isfinite(strips))
    assert 0.5 < strips.max() < 3.0  # mV-like scale: R peaks around 1 mV

    dataset = load_dataset("synthetic_ecg", small_parameters(length=100))
    assert dataset.class_names == CLASS_NAMES == ("normal", "af", "pvc", "st_elevation")
    for x, y in ((dataset.x_train, dataset.y_train), (dataset.x_val, dataset.y_val),
                 (dataset.x_test, dataset.y_test)):
        assert x.dtype == np.float32 and x.shape == (len(y), 100, 1)
        assert y.dtype == np.int64
    assert len(dataset.y_train) + len(dataset.y_val) + len(dataset.y_test) == 120
    assert dataset.describe()["label_noise_applied_to"] == ["train", "validation"]
    assert set(dataset.info["classes"]) == set(CLASS_NAMES)


@pytest.mark.parametrize("n_strips", [12, 13, 200])
def test_every_class_is_in_every_split_with_stratified_sizes(n_strips):
    dataset = load_dataset("synthetic_ecg", {"n_strips": n_strips, "seed": 2})
    counts = dataset.class_counts()
    for split in ("train", "validation", "test"):
        assert all(count >= 1 for count in counts[split].values()), (split, counts)
    if n_strips == 200:  # 50 per class: round(0.15 * 50) = 8 in validation and test
        assert counts["test"] == {name: 8 for name in CLASS_NAMES}
        assert counts["validation"] == {name: 8 for name in CLASS_NAMES}
        assert counts["train"] == {name: 34 for name in CLASS_NAMES}


def test_split_follows_the_seed_not_the_label_noise():
    clean = load_dataset("synthetic_ecg", small_parameters())
    noisy = load_dataset("synthetic_ecg", small_parameters(label_noise=0.3))
    for attribute in ("x_train", "x_val", "x_test", "y_test"):
        assert np.array_equal(getattr(clean, attribute), getattr(noisy, attribute)), attribute


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5])
def test_label_noise_flips_exactly_the_expected_count_in_train_and_validation_only(fraction):
    clean = load_dataset("synthetic_ecg", small_parameters())
    noisy = load_dataset("synthetic_ecg", small_parameters(label_noise=fraction))
    clean_labels = np.concatenate([clean.y_train, clean.y_val])
    noisy_labels = np.concatenate([noisy.y_train, noisy.y_val])
    assert int(np.sum(clean_labels != noisy_labels)) == round(fraction * len(clean_labels))
    assert np.array_equal(clean.y_test, noisy.y_test)
    assert sum(noisy.info["labels_flipped"].values()) == round(fraction * len(clean_labels))
    assert noisy_labels.min() >= 0 and noisy_labels.max() <= 3


def test_generate_strips_label_noise_changes_labels_only():
    clean_x, clean_y = generate_strips(100, 64, 50.0, 0.05, 0.0, 9)
    noisy_x, noisy_y = generate_strips(100, 64, 50.0, 0.05, 0.37, 9)
    assert np.array_equal(clean_x, noisy_x)
    assert int(np.sum(clean_y != noisy_y)) == round(0.37 * 100)


@pytest.mark.parametrize("name, value", [
    ("n_strips", 11), ("n_strips", 100.0), ("n_strips", True), ("n_strips", "100"),
    ("length", 15), ("length", False),
    ("sampling_rate", 0), ("sampling_rate", -50.0), ("sampling_rate", float("nan")), ("sampling_rate", True),
    ("noise", -0.01), ("noise", float("inf")),
    ("label_noise", 1.0), ("label_noise", -0.1),
    ("seed", -1), ("seed", 1.5), ("seed", True),
    ("validation_fraction", 0.0), ("test_fraction", 1.0), ("test_fraction", "0.2"),
])
def test_bad_parameters_raise_bad_input_naming_the_key(name, value):
    with pytest.raises(BadInput) as caught:
        load_dataset("synthetic_ecg", {"n_strips": 40, name: value})
    assert caught.value.key == f"dataset.parameters.{name}"
    assert "allowed" in str(caught.value)


def test_bad_generation_parameters_raise_bad_input_from_generate_strips():
    with pytest.raises(BadInput) as caught:
        generate_strips(40, 10, 50.0, 0.05, 0.0, 0)
    assert caught.value.key == "dataset.parameters.length"


def test_fractions_that_leave_no_training_strips_are_rejected():
    with pytest.raises(BadInput) as caught:
        load_synthetic_ecg({"n_strips": 40, "validation_fraction": 0.6, "test_fraction": 0.5}, Path("."))
    assert caught.value.key == "dataset.parameters.test_fraction"
    with pytest.raises(BadInput):  # 4 strips per class: 2 + 2 leave none to train on
        load_synthetic_ecg({"n_strips": 16, "validation_fraction": 0.45, "test_fraction": 0.45}, Path("."))


def test_noise_sets_the_white_noise_level():
    clean, _ = generate_strips(200, 400, 50.0, 0.0, 0.0, 1)
    noisy, _ = generate_strips(200, 400, 50.0, 0.1, 0.0, 1)
    residual = (noisy - clean).astype(np.float64)
    # Baseline wander is slow, so sample-to-sample differences measure the white noise.
    estimated = np.diff(residual, axis=1).std() / np.sqrt(2)
    assert estimated == pytest.approx(0.1, rel=0.05)
    assert np.abs(residual.mean(axis=1)).max() > 0.01  # wander shifts strips away from zero


def test_af_rr_intervals_vary_much_more_than_sinus_rhythm(long_clean_strips):
    strips, labels = long_clean_strips
    variation = {}
    for label in (NORMAL, AF, ST_ELEVATION):
        intervals = [np.diff(r_peaks(strip)) for strip in strips[labels == label]]
        variation[label] = np.array([rr.std() / rr.mean() for rr in intervals])
    assert variation[AF].min() > 2 * max(variation[NORMAL].max(), variation[ST_ELEVATION].max())
    assert variation[NORMAL].max() < 0.06


def test_beats_start_at_a_random_phase(long_clean_strips):
    strips, _ = long_clean_strips
    first_peak_seconds = np.array([r_peaks(strip)[0] for strip in strips]) / CLEAN_RATE
    assert first_peak_seconds.std() > 0.15


def test_pvc_strips_have_premature_beats_followed_by_compensatory_pauses(long_clean_strips):
    strips, labels = long_clean_strips
    for strip in strips[labels == PVC]:
        intervals = np.diff(r_peaks(strip))
        typical = np.median(intervals)
        early = np.flatnonzero(intervals[:-1] < 0.75 * typical)
        assert len(early) >= 1
        # The beat after the premature one keeps the sinus timing: short + long is about two RR.
        pairs = (intervals[early] + intervals[early + 1]) / typical
        assert np.all(np.abs(pairs - 2) < 0.25), pairs
    for strip in strips[labels == NORMAL]:
        intervals = np.diff(r_peaks(strip))
        assert intervals.min() > 0.85 * np.median(intervals)


def test_pvc_qrs_is_wider_even_in_default_length_strips():
    strips, labels = generate_strips(80, 700, CLEAN_RATE, 0.0, 0.0, 4)  # 2.8 s, like the default
    widest = np.array([peak_widths(strip, r_peaks(strip), rel_height=0.5)[0].max() / CLEAN_RATE
                       for strip in strips])
    assert widest[labels == PVC].min() > 1.5 * widest[labels != PVC].max()
    assert widest[labels != PVC].max() < 0.06  # seconds at half height: narrow sinus QRS


def test_st_segment_is_elevated_only_in_st_elevation_strips(long_clean_strips):
    strips, labels = long_clean_strips
    start, stop = int(0.08 * CLEAN_RATE), int(0.14 * CLEAN_RATE)

    def st_level(strip: np.ndarray) -> float:
        return float(np.median([strip[peak + start:peak + stop].mean() for peak in r_peaks(strip)[:-1]]))

    elevated = np.array([st_level(strip) for strip in strips[labels == ST_ELEVATION]])
    normal = np.array([st_level(strip) for strip in strips[labels == NORMAL]])
    assert np.median(elevated) - np.median(normal) > 0.1
    assert elevated.min() > 0.05


def test_every_default_length_strip_shows_at_least_two_beats():
    strips, labels = generate_strips(200, 700, CLEAN_RATE, 0.0, 0.0, 8)
    counts = np.array([len(r_peaks(strip)) for strip in strips])
    assert counts.min() >= 2


def test_chunked_rendering_gives_the_same_strips(monkeypatch):
    import study.datasets.synthetic as synthetic

    whole, _ = generate_strips(60, 300, 50.0, 0.05, 0.0, 2)
    monkeypatch.setattr(synthetic, "CHUNK_POINTS", 100)  # many chunks of one or two strips
    chunked, _ = generate_strips(60, 300, 50.0, 0.05, 0.0, 2)
    assert np.array_equal(whole, chunked)
