"""The embedded dataset ``synthetic_ecg``: single-lead ECG-like rhythm strips in four classes.

Every beat is a sum of Gaussian bumps (P, Q, R, S, an ST bump and T), as in McSharry's
ECGSYN, placed at beat times that follow each class's rhythm:

* ``normal``: sinus rhythm, nearly regular RR intervals, P-QRS-T beats;
* ``af``: irregularly irregular RR intervals, no P waves, a 4-8 Hz fibrillatory ripple;
* ``pvc``: sinus rhythm with premature ventricular beats (early, wide QRS, no P wave,
  inverted T, full compensatory pause); at least one is visible in every strip when the
  strip is long enough to hold one;
* ``st_elevation``: sinus rhythm whose ST segment is raised between S and T.

Heart rate, amplitudes and wave widths vary per strip, the beats start at a random
phase, and ``noise`` sets white noise (its standard deviation in mV) together with the
baseline wander and powerline hum it scales, so ``noise=0`` gives clean strips.

Generation is vectorised: beat times are a padded (strips, slots) array, and each beat
is evaluated only on the samples of a short window around it, then summed into the strips
with :func:`numpy.bincount` in chunks of strips. The cost grows with the number of
samples, not with strips times beats times samples.
"""
from __future__ import annotations

import math
import numbers
from pathlib import Path
from typing import Any

import numpy as np

from study.datasets import Dataset, DatasetSpec, register
from study.errors import BadInput

CLASS_NAMES = ("normal", "af", "pvc", "st_elevation")
CLASS_DESCRIPTIONS = {
    "normal": "normal sinus rhythm: nearly regular RR intervals, P-QRS-T beats",
    "af": "atrial-fibrillation-like: irregularly irregular RR intervals, no P waves, fibrillatory f-wave ripple",
    "pvc": "sinus rhythm with premature ventricular beats: early, wide QRS, no P wave, inverted T, compensatory pause",
    "st_elevation": "sinus rhythm with the ST segment elevated between S and T",
}
NUM_CLASSES = len(CLASS_NAMES)
MINIMUM_STRIPS_PER_CLASS = 3  # one each for train, validation and test

# Beat components, in this order: P, Q, R, S, ST bump, T.
COMPONENTS = ("P", "Q", "R", "S", "ST", "T")
# Per beat kind, (amplitude mV, centre s relative to the R peak at RR = 1 s, width s).
# Sinus values follow ECGSYN's angles and widths converted to seconds at 60 bpm.
SINUS_BEAT = np.array([
    [0.15, -0.194, 0.040],   # P
    [-0.10, -0.042, 0.016],  # Q
    [1.00, 0.000, 0.016],    # R
    [-0.25, 0.042, 0.016],   # S
    [0.00, 0.140, 0.045],    # ST bump (raised only in st_elevation)
    [0.30, 0.278, 0.064],    # T
])
ECTOPIC_BEAT = np.array([
    [0.00, -0.194, 0.040],   # no P wave
    [0.00, -0.042, 0.016],   # no separate Q
    [1.10, 0.000, 0.040],    # wide R
    [-0.35, 0.080, 0.040],   # wide, deep S
    [0.00, 0.140, 0.045],
    [-0.40, 0.300, 0.085],   # inverted, broad T
])
# Components whose centre scales with sqrt(RR) (QT adaptation, as in ECGSYN).
RATE_SCALED = np.array([True, False, False, False, True, True])
BEAT_WINDOW = (-0.45, 0.80)  # seconds around the R peak that hold every bump to > 4 widths
HEART_RATE_BPM = (55.0, 110.0)
SHORTEST_RR = 0.30  # seconds; every RR interval is clipped to at least this
FIRST_BEAT_LEAD = 0.80  # the first beat slot lies this far before the strip start, or further
ECTOPIC_PROBABILITY = 0.25
COUPLING = (0.55, 0.70)  # premature beat at this fraction of RR after the previous beat
AF_RR_FACTOR = (0.65, 1.35)
SINUS_RR_VARIABILITY = 0.03
CHUNK_POINTS = 4_000_000  # beat-window samples evaluated at once, bounding memory

DEFAULTS: dict[str, Any] = {
    "n_strips": 1000,
    "length": 140,
    "sampling_rate": 50.0,
    "noise": 0.05,
    "label_noise": 0.0,
    "seed": 0,
    "validation_fraction": 0.15,
    "test_fraction": 0.15,
}


def _key(name: str) -> str:
    return f"dataset.parameters.{name}"


def _check_integer(name: str, value: Any, minimum: int, why: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise BadInput(f"got {value!r}, allowed: an integer >= {minimum}{why}", key=_key(name))
    return int(value)


def _check_real(name: str, value: Any, allowed: str, accept) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or not accept(float(value)):
        raise BadInput(f"got {value!r}, allowed: {allowed}", key=_key(name))
    return float(value)


def check_strip_parameters(n_strips: Any, length: Any, sampling_rate: Any, noise: Any,
                           label_noise: Any, seed: Any) -> tuple[int, int, float, float, float, int]:
    """Validate generation parameters, raising BadInput that names the key and what is allowed."""
    return (
        _check_integer("n_strips", n_strips, MINIMUM_STRIPS_PER_CLASS * NUM_CLASSES,
                       f" (at least {MINIMUM_STRIPS_PER_CLASS} strips of each of the {NUM_CLASSES} classes,"
                       " so every split holds every class)"),
        _check_integer("length", length, 16),
        _check_real("sampling_rate", sampling_rate, "a number > 0 (Hz)", lambda v: v > 0),
        _check_real("noise", noise, "a number >= 0 (mV)", lambda v: v >= 0),
        _check_real("label_noise", label_noise, "a fraction in [0, 1)", lambda v: 0 <= v < 1),
        _check_integer("seed", seed, 0),
    )


def flip_labels(labels: np.ndarray, fraction: float, rng: np.random.Generator, *,
                num_classes: int = NUM_CLASSES) -> tuple[np.ndarray, np.ndarray]:
    """Replace exactly round(fraction * n) labels by a different random class of ``num_classes``.

    Returns the noisy labels and the indices that were flipped. ``num_classes`` defaults to the four
    classes of ``synthetic_ecg``; other generated datasets pass their own count.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2 (a flipped label needs another class), "
                         f"got {num_classes!r}")
    count = round(fraction * len(labels))
    flipped = np.sort(rng.choice(len(labels), size=count, replace=False))
    noisy = labels.copy()
    noisy[flipped] = (labels[flipped] + rng.integers(1, num_classes, size=count)) % num_classes
    return noisy, flipped


def _beat_times(labels: np.ndarray, duration: float, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Beat times (strips, slots) in seconds, which beats are ectopic, and each strip's mean RR."""
    n_strips = len(labels)
    mean_rr = 60.0 / rng.uniform(*HEART_RATE_BPM, size=n_strips)
    phase = rng.uniform(size=n_strips)
    slots = int(math.ceil((duration + BEAT_WINDOW[1] + FIRST_BEAT_LEAD + 60.0 / HEART_RATE_BPM[0])
                          / SHORTEST_RR)) + 2
    sinus_jitter = rng.normal(0.0, SINUS_RR_VARIABILITY, size=(n_strips, slots))
    af_factor = rng.uniform(*AF_RR_FACTOR, size=(n_strips, slots))
    ectopic_draw = rng.uniform(size=(n_strips, slots))
    coupling = rng.uniform(*COUPLING, size=(n_strips, slots))
    forced_draw = rng.uniform(size=n_strips)

    is_af = (labels == 1)[:, None]
    rr = mean_rr[:, None] * np.where(is_af, af_factor, 1.0 + np.clip(sinus_jitter, -0.1, 0.1))
    rr = np.maximum(rr, SHORTEST_RR)
    start = -FIRST_BEAT_LEAD - phase * mean_rr
    times = start[:, None] + np.concatenate([np.zeros((n_strips, 1)), np.cumsum(rr[:, :-1], axis=1)], axis=1)

    # Premature ventricular beats: slot k moves to previous beat + coupling * RR, and the next
    # beat keeps its time, which leaves a full compensatory pause. Never two in a row.
    early_times = np.empty_like(times)
    early_times[:, 0] = -np.inf
    early_times[:, 1:] = times[:, :-1] + coupling[:, 1:] * rr[:, :-1]
    visible = (early_times >= 0.1) & (early_times <= duration - 0.15)
    candidates = visible.sum(axis=1)
    pick = np.floor(forced_draw * candidates)
    forced_slot = np.argmax(np.cumsum(visible, axis=1) > pick[:, None], axis=1)
    forced = np.zeros_like(visible)
    forced[np.arange(n_strips), forced_slot] = candidates > 0
    ectopic = ectopic_draw < ECTOPIC_PROBABILITY
    ectopic[:, 0] = False
    ectopic[:, 1:] &= ~ectopic[:, :-1]
    near_forced = forced.copy()
    near_forced[:, 1:] |= forced[:, :-1]
    near_forced[:, :-1] |= forced[:, 1:]
    ectopic = ((ectopic & ~near_forced) | forced) & (labels == 2)[:, None]
    times = np.where(ectopic, early_times, times)
    return times, ectopic, mean_rr


def _beat_parameters(labels: np.ndarray, ectopic: np.ndarray, mean_rr: np.ndarray, rng: np.random.Generator
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Amplitude, centre and width of every component of every beat slot, each (strips, slots, components)."""
    n_strips, slots = ectopic.shape
    components = len(COMPONENTS)
    gain = rng.uniform(0.8, 1.25, size=n_strips)
    beat_gain = 1.0 + np.clip(rng.normal(0.0, 0.04, size=(n_strips, slots)), -0.12, 0.12)
    amplitude_jitter = rng.uniform(0.85, 1.15, size=(n_strips, components))
    width_jitter = rng.uniform(0.9, 1.1, size=(n_strips, components))
    st_amplitude = rng.uniform(0.12, 0.30, size=n_strips)

    sinus = np.broadcast_to(SINUS_BEAT, (n_strips, components, 3)).copy()
    sinus[labels == 1, 0, 0] = 0.0  # AF: no P wave
    sinus[:, 4, 0] = np.where(labels == 3, st_amplitude, 0.0)
    sinus[:, :, 0] *= amplitude_jitter * gain[:, None]
    sinus[:, :, 2] *= width_jitter
    ectopic_beat = np.broadcast_to(ECTOPIC_BEAT, (n_strips, components, 3)).copy()
    ectopic_beat[:, :, 0] *= amplitude_jitter * gain[:, None]
    ectopic_beat[:, :, 2] *= width_jitter
    rate_scale = np.where(RATE_SCALED, np.sqrt(mean_rr)[:, None], 1.0)  # (strips, components)
    sinus[:, :, 1] *= rate_scale
    ectopic_beat[:, :, 1] *= rate_scale

    chosen = np.where(ectopic[:, :, None, None], ectopic_beat[:, None], sinus[:, None])  # (strips, slots, comp, 3)
    amplitude = chosen[..., 0] * beat_gain[:, :, None]
    return amplitude, chosen[..., 1], chosen[..., 2]


def _render_beats(times: np.ndarray, amplitude: np.ndarray, centre: np.ndarray, width: np.ndarray,
                  length: int, sampling_rate: float) -> np.ndarray:
    """Sum every beat's Gaussian bumps into (strips, length), evaluating each beat only near its R peak."""
    n_strips = times.shape[0]
    duration = length / sampling_rate
    in_view = (times >= -BEAT_WINDOW[1]) & (times <= duration - BEAT_WINDOW[0])
    strip_of_beat, slot_of_beat = np.nonzero(in_view)  # ordered by strip
    beat_times = times[strip_of_beat, slot_of_beat]
    beat_amplitude = amplitude[strip_of_beat, slot_of_beat]
    beat_centre = centre[strip_of_beat, slot_of_beat]
    beat_width = width[strip_of_beat, slot_of_beat]
    window = np.arange(int(math.ceil((BEAT_WINDOW[1] - BEAT_WINDOW[0]) * sampling_rate)) + 1)
    first_sample = np.ceil((beat_times + BEAT_WINDOW[0]) * sampling_rate).astype(np.int64)

    signal = np.zeros(n_strips * length)
    beats_per_chunk = max(1, CHUNK_POINTS // len(window))
    strip_starts = np.searchsorted(strip_of_beat, np.arange(n_strips + 1))
    strip_low = 0
    while strip_low < n_strips:
        # Whole strips per chunk, so each chunk adds into its own slice of the output.
        strip_high = int(np.searchsorted(strip_starts, strip_starts[strip_low] + beats_per_chunk, side="right")) - 1
        strip_high = min(n_strips, max(strip_high, strip_low + 1))
        beats = slice(strip_starts[strip_low], strip_starts[strip_high])
        samples = first_sample[beats, None] + window  # (beats, window)
        # Offsets from the R peak are small, so float32 keeps ample precision at half the cost.
        offset = (samples / sampling_rate - beat_times[beats, None]).astype(np.float32)
        values = np.zeros(samples.shape, dtype=np.float32)
        bump = np.empty_like(values)
        for component in range(len(COMPONENTS)):
            np.subtract(offset, beat_centre[beats, component, None].astype(np.float32), out=bump)
            bump *= (np.sqrt(0.5) / beat_width[beats, component, None]).astype(np.float32)
            np.square(bump, out=bump)
            np.negative(bump, out=bump)
            np.exp(bump, out=bump)
            bump *= beat_amplitude[beats, component, None].astype(np.float32)
            values += bump
        inside = (samples >= 0) & (samples < length)
        flat = (strip_of_beat[beats, None] - strip_low) * length + samples
        chunk_size = (strip_high - strip_low) * length
        signal[strip_low * length: strip_high * length] = np.bincount(
            flat[inside], weights=values[inside], minlength=chunk_size)
        strip_low = strip_high
    return signal.reshape(n_strips, length)


def _sinusoids(time: np.ndarray, frequency: np.ndarray, amplitude: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """Sum over the last axis of per-strip sinusoids on the time grid: (strips, length)."""
    total = np.zeros((frequency.shape[0], time.shape[0]))
    for index in range(frequency.shape[1]):
        total += amplitude[:, index, None] * np.sin(
            2 * np.pi * frequency[:, index, None] * time + phase[:, index, None])
    return total


def _add_wander_and_noise(strips: np.ndarray, sampling_rate: float, noise: float,
                          rng: np.random.Generator) -> np.ndarray:
    """Add baseline wander, powerline hum and white noise, all scaled by ``noise``; returns float32 strips.

    The random draws are made whatever ``noise`` is, so the stream stays aligned for every noise level.
    """
    n_strips, length = strips.shape
    time = np.arange(length) / sampling_rate
    # Baseline wander (0.15-0.5 Hz) and powerline hum, both scaled by the noise level; hum is
    # left out where the sampling rate cannot represent it (an ECG front end filters it first).
    wander = (rng.uniform(0.15, 0.5, size=(n_strips, 2)), noise * rng.uniform(0.5, 2.0, size=(n_strips, 2)),
              rng.uniform(0, 2 * np.pi, size=(n_strips, 2)))
    mains = np.where(rng.uniform(size=n_strips) < 0.5, 50.0, 60.0)
    hum_amplitude = noise * rng.uniform(0.0, 0.5, size=n_strips) * (mains < sampling_rate / 2)
    hum_phase = rng.uniform(0, 2 * np.pi, size=n_strips)
    if noise > 0:
        strips += _sinusoids(time, *wander)
        hummed = hum_amplitude > 0
        if hummed.any():
            strips[hummed] += _sinusoids(time, mains[hummed, None], hum_amplitude[hummed, None],
                                         hum_phase[hummed, None])
    strips = strips.astype(np.float32)
    strips += np.float32(noise) * rng.standard_normal((n_strips, length), dtype=np.float32)
    return strips


def render_sinus_strips(n_strips: int, length: int, sampling_rate: float, noise: float,
                        rng_or_seed: np.random.Generator | np.random.SeedSequence | int) -> np.ndarray:
    """Normal-sinus-rhythm strips, float32 (n_strips, length) in mV, with the wander and noise of ``noise``.

    The ``normal`` class of :func:`generate_strips` rendered alone, as a background for datasets that
    insert their own events (``ecg_events``). The same generator state or seed gives identical strips.
    """
    n_strips = _check_integer("n_strips", n_strips, 1)
    length = _check_integer("length", length, 1)
    sampling_rate = _check_real("sampling_rate", sampling_rate, "a number > 0 (Hz)", lambda v: v > 0)
    noise = _check_real("noise", noise, "a number >= 0 (mV)", lambda v: v >= 0)
    rng = np.random.default_rng(rng_or_seed)
    labels = np.zeros(n_strips, dtype=np.int64)  # every strip normal sinus rhythm
    times, ectopic, mean_rr = _beat_times(labels, length / sampling_rate, rng)
    amplitude, centre, width = _beat_parameters(labels, ectopic, mean_rr, rng)
    strips = _render_beats(times, amplitude, centre, width, length, sampling_rate)
    return _add_wander_and_noise(strips, sampling_rate, noise, rng)


def generate_strips(n_strips: int, length: int, sampling_rate: float, noise: float, label_noise: float,
                    seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Generate balanced ECG-like strips, float32 (n_strips, length) in mV, with int64 labels.

    ``label_noise`` replaces exactly round(label_noise * n_strips) labels by a different class;
    the strips themselves do not depend on it. The same seed gives bitwise identical output.
    """
    n_strips, length, sampling_rate, noise, label_noise, seed = check_strip_parameters(
        n_strips, length, sampling_rate, noise, label_noise, seed)
    signal_seed, label_seed = np.random.SeedSequence(seed).spawn(2)
    rng = np.random.default_rng(signal_seed)
    labels = rng.permutation(np.arange(n_strips) % NUM_CLASSES).astype(np.int64)
    duration = length / sampling_rate
    time = np.arange(length) / sampling_rate

    times, ectopic, mean_rr = _beat_times(labels, duration, rng)
    amplitude, centre, width = _beat_parameters(labels, ectopic, mean_rr, rng)
    strips = _render_beats(times, amplitude, centre, width, length, sampling_rate)

    # Fibrillatory waves for AF strips: two 4-8 Hz sinusoids of 0.02-0.06 mV each.
    is_af = labels == 1
    af_count = int(is_af.sum())
    strips[is_af] += _sinusoids(time, rng.uniform(4.0, 8.0, size=(af_count, 2)),
                                rng.uniform(0.02, 0.06, size=(af_count, 2)),
                                rng.uniform(0, 2 * np.pi, size=(af_count, 2)))
    strips = _add_wander_and_noise(strips, sampling_rate, noise, rng)

    if label_noise > 0:
        labels, _ = flip_labels(labels, label_noise, np.random.default_rng(label_seed))
    return strips, labels


def _check_fraction(parameters: dict[str, Any], name: str) -> float:
    return _check_real(name, parameters[name], "a fraction in (0, 1)", lambda v: 0 < v < 1)


def load_synthetic_ecg(parameters: dict[str, Any], data_dir: Path) -> Dataset:
    """Generate strips and split them, stratified by class, into fixed train/validation/test sets.

    Label noise is applied to train and validation labels only, so the test set measures
    accuracy against the true classes. ``data_dir`` is unused (nothing is read from disk).
    """
    del data_dir
    merged = {**DEFAULTS, **parameters}
    validation_fraction = _check_fraction(merged, "validation_fraction")
    test_fraction = _check_fraction(merged, "test_fraction")
    if validation_fraction + test_fraction >= 1:
        raise BadInput(f"validation_fraction + test_fraction is {validation_fraction + test_fraction:g}, "
                       "allowed: a sum below 1, leaving training examples", key=_key("test_fraction"))
    n_strips, length, sampling_rate, noise, label_noise, seed = check_strip_parameters(
        merged["n_strips"], merged["length"], merged["sampling_rate"], merged["noise"],
        merged["label_noise"], merged["seed"])
    strips, labels = generate_strips(n_strips, length, sampling_rate, noise, 0.0, seed)

    _, split_seed, noise_seed = np.random.SeedSequence(seed).spawn(3)
    split_rng = np.random.default_rng(split_seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "validation": [], "test": []}
    for class_index, class_name in enumerate(CLASS_NAMES):
        members = split_rng.permutation(np.flatnonzero(labels == class_index))
        n_validation = max(1, round(validation_fraction * len(members)))
        n_test = max(1, round(test_fraction * len(members)))
        if len(members) - n_validation - n_test < 1:
            raise BadInput(f"validation_fraction {validation_fraction:g} and test_fraction {test_fraction:g} leave "
                           f"no training strips of class {class_name!r} ({len(members)} strips), allowed: smaller "
                           "fractions or more n_strips", key=_key("test_fraction"))
        parts["test"].append(members[:n_test])
        parts["validation"].append(members[n_test:n_test + n_validation])
        parts["train"].append(members[n_test + n_validation:])
    indices = {split: np.sort(np.concatenate(chunks)) for split, chunks in parts.items()}

    # Label noise on train and validation together, decided by its own stream of the seed.
    noisy_pool = np.concatenate([indices["train"], indices["validation"]])
    noisy_labels, flipped = flip_labels(labels[noisy_pool], label_noise, np.random.default_rng(noise_seed))
    observed = labels.copy()
    observed[noisy_pool] = noisy_labels
    n_train = len(indices["train"])

    def x(split: str) -> np.ndarray:
        return strips[indices[split], :, None]

    return Dataset(
        name="synthetic_ecg",
        x_train=x("train"), y_train=observed[indices["train"]],
        x_val=x("validation"), y_val=observed[indices["validation"]],
        x_test=x("test"), y_test=labels[indices["test"]],
        class_names=CLASS_NAMES,
        parameters=dict(merged),
        info={
            "classes": dict(CLASS_DESCRIPTIONS),
            "label_noise_applied_to": ["train", "validation"],
            "labels_flipped": {"train": int((flipped < n_train).sum()),
                               "validation": int((flipped >= n_train).sum())},
            "strip_seconds": length / sampling_rate,
        },
    )


register("synthetic_ecg", DatasetSpec(
    loader=load_synthetic_ecg,
    defaults=dict(DEFAULTS),
    description="Synthetic single-lead ECG-like strips (sum-of-Gaussians beats, ECGSYN-like) in four classes: "
                "normal sinus rhythm, AF-like irregular rhythm, premature ventricular beats, ST elevation; "
                "generated from a seed, no files needed.",
))
