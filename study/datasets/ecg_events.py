"""The generated dataset ``ecg_events``: two short events ``event_distance`` samples apart on an ECG strip.

Every strip is normal sinus rhythm (the ``normal`` class of ``synthetic_ecg``, with its baseline
wander, hum and white noise; :func:`study.datasets.synthetic.render_sinus_strips`) with two brief
events added, each a Gaussian deflection of 0.5-0.7 mV and width (standard deviation) 0.04 s: one
upright and one inverted, with the same energy and footprint, so both are equally visible. The
first event's peak is uniform over the positions where both events fit inside the strip; the second
peak is exactly ``event_distance`` samples later. The class says which comes first:
``upright_first`` or ``inverted_first`` (dealt evenly).

Why the order: every strip holds one event of each shape, so a model that sees the events one at a
time sees the same things in both classes; only their order tells the classes apart, and seeing the
order means spanning ``event_distance`` samples (plus an event's footprint). A model that averages
local features over time, like a CNN with global average pooling whose receptive field is shorter
than the distance, gets the same pooled features in both classes (up to the events' random
positions and amplitudes) and scores chance, 50%, whatever its read-out; a model that sees both
events can score 100%. (An earlier draft asked whether the two shapes were the same: a pooled model
can count upright events there and reach 75% without spanning the distance.)

Event peaks keep ``edge_margin`` samples (default 20) from both ends of the strip. A convolution with
zero padding knows where the strip ends, so a CNN whose receptive field reaches an end from an event
knows roughly where that event is, and when the distance is long the first event always lies early and
the second late: position alone would then tell the order (a pilot 4-layer CNN, receptive field 40,
scored 74% at distance 90 on 140-sample strips with events 6 samples from the ends). With the margin at
least half the receptive field, a CNN sees the padding only where no event is.

Generation is vectorised and deterministic: the seed's data stream (see
:func:`study.datasets.long_memory.seed_streams`) is split into an event stream
(:func:`event_layout`, which can be regenerated without rendering) and a background stream.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from study.datasets import Dataset, DatasetSpec, register
from study.datasets.long_memory import (assemble_dataset, balanced_labels, check_example_count,
                                        check_split_parameters, seed_streams)
from study.datasets.synthetic import _check_integer, _check_real, _key, render_sinus_strips
from study.errors import BadInput

CLASS_NAMES = ("upright_first", "inverted_first")
SHAPE_NAMES = ("upright", "inverted")
SHAPE_SIGNS = np.array([1.0, -1.0])
EVENT_AMPLITUDE = (0.5, 0.7)  # mV, drawn per event
EVENT_WIDTH = 0.04  # seconds, the Gaussian's standard deviation
EVENT_REACH = 3.0  # widths rendered either side of the peak; the cut-off tail is below 1.2% of the peak

DEFAULTS: dict[str, Any] = {
    "n_strips": 1000,
    "length": 140,
    "sampling_rate": 50.0,
    "noise": 0.05,
    "event_distance": 40,
    "edge_margin": 20,
    "label_noise": 0.0,
    "seed": 0,
    "validation_fraction": 0.15,
    "test_fraction": 0.15,
}


def event_half_width(sampling_rate: float) -> int:
    """Samples rendered on each side of an event's peak: EVENT_REACH widths, rounded up."""
    return int(math.ceil(EVENT_REACH * EVENT_WIDTH * float(sampling_rate) - 1e-9))


def event_footprint(sampling_rate: float) -> int:
    """Samples one event occupies: its peak and the half width on both sides."""
    return 2 * event_half_width(sampling_rate) + 1


@dataclass(frozen=True)
class EventLayout:
    """Where the two events of every strip are and what they look like.

    ``centres`` int64 (strips, 2): peak sample of the first and second event (second - first ==
    event_distance); ``shapes`` int64 (strips, 2): 0 upright, 1 inverted; ``amplitudes`` float64
    (strips, 2) in mV (> 0; the shape gives the sign); ``labels`` int64 (strips,): 0 upright first, 1 inverted first.
    """

    centres: np.ndarray
    shapes: np.ndarray
    amplitudes: np.ndarray
    labels: np.ndarray


def check_ecg_events(parameters: dict[str, Any]) -> None:
    """Every parameter of ``ecg_events`` (types and ranges), without generating."""
    _check_ecg_events(parameters)


def _check_ecg_events(parameters: dict[str, Any]) -> tuple[int, int, float, float, int, float, float, float, int]:
    merged = {**DEFAULTS, **parameters}
    n_strips = check_example_count("n_strips", merged["n_strips"], len(CLASS_NAMES))
    sampling_rate = _check_real("sampling_rate", merged["sampling_rate"], "a number > 0 (Hz)", lambda v: v > 0)
    noise = _check_real("noise", merged["noise"], "a number >= 0 (mV)", lambda v: v >= 0)
    footprint = event_footprint(sampling_rate)
    length = _check_integer("length", merged["length"], footprint + 1,
                            f" (two events of {footprint} samples each at {sampling_rate:g} Hz, at least 1 "
                            "sample apart, must fit)")
    _check_integer("edge_margin", merged["edge_margin"], 0)
    edge = peak_edge(merged["edge_margin"], sampling_rate)
    distance = merged["event_distance"]
    longest = length - 1 - 2 * edge
    if longest < 1:
        raise BadInput(f"got {length!r}, allowed: an integer >= {2 * edge + 2} (two event peaks at least 1 sample "
                       f"apart, each {edge} samples from the ends: edge_margin or the event's half width)",
                       key=_key("length"))
    if isinstance(distance, bool) or not isinstance(distance, numbers.Integral) or not 1 <= distance <= longest:
        raise BadInput(f"got {distance!r}, allowed: an integer from 1 to {longest} (event_distance + 2 x {edge} "
                       f"samples kept free at the ends (edge_margin, at least the event's half width at "
                       f"{sampling_rate:g} Hz) must be < length {length})", key=_key("event_distance"))
    validation_fraction, test_fraction, label_noise, seed = check_split_parameters(merged)
    return (n_strips, length, sampling_rate, noise, int(distance), validation_fraction, test_fraction,
            label_noise, seed)


def peak_edge(edge_margin: int, sampling_rate: float) -> int:
    """The fewest samples between an event's peak and either end of the strip: ``edge_margin``, and at least the
    event's half width (so that every event is drawn whole)."""
    return max(int(edge_margin), event_half_width(sampling_rate))


def _streams(seed: int) -> tuple[np.random.SeedSequence, np.random.SeedSequence]:
    """The (event, background) streams of the seed's data stream."""
    data_stream, _, _ = seed_streams(seed)
    event_stream, background_stream = data_stream.spawn(2)
    return event_stream, background_stream


def event_layout(n_strips: int, length: int, sampling_rate: float, event_distance: int, seed: int,
                 edge_margin: int = DEFAULTS["edge_margin"]) -> EventLayout:
    """The events of every strip as :func:`generate_event_strips` places them, without rendering anything."""
    n_strips, length, sampling_rate, _, event_distance, *_, seed = _check_ecg_events({
        "n_strips": n_strips, "length": length, "sampling_rate": sampling_rate,
        "event_distance": event_distance, "seed": seed, "edge_margin": edge_margin})
    rng = np.random.default_rng(_streams(seed)[0])
    labels = balanced_labels(n_strips, len(CLASS_NAMES), rng)
    shapes = np.stack([labels, 1 - labels], axis=1).astype(np.int64)  # one of each shape; the class is the order
    edge = peak_edge(edge_margin, sampling_rate)
    first_centre = rng.integers(edge, length - edge - event_distance, size=n_strips)
    centres = np.stack([first_centre, first_centre + event_distance], axis=1).astype(np.int64)
    amplitudes = rng.uniform(*EVENT_AMPLITUDE, size=(n_strips, 2))
    return EventLayout(centres=centres, shapes=shapes, amplitudes=amplitudes, labels=labels)


def render_events(layout: EventLayout, length: int, sampling_rate: float) -> np.ndarray:
    """The two events of every strip alone, float32 (strips, length) in mV."""
    half_width = event_half_width(sampling_rate)
    offsets = np.arange(-half_width, half_width + 1)
    bump = np.exp(-0.5 * (offsets / (EVENT_WIDTH * sampling_rate)) ** 2)
    n_strips = len(layout.labels)
    rows = np.arange(n_strips)[:, None]
    signal = np.zeros((n_strips, length))
    for event in range(2):  # the two events of all strips at once; no index repeats within one event
        peak = SHAPE_SIGNS[layout.shapes[:, event]] * layout.amplitudes[:, event]
        signal[rows, layout.centres[:, event, None] + offsets] += peak[:, None] * bump
    return signal.astype(np.float32)


def generate_event_strips(n_strips: int, length: int, sampling_rate: float, noise: float, event_distance: int,
                          seed: int, edge_margin: int = DEFAULTS["edge_margin"]) -> tuple[np.ndarray, EventLayout]:
    """Strips float32 (n_strips, length) in mV and their :class:`EventLayout` (whose labels are the classes).

    The background depends on neither ``event_distance`` nor the events, so strips that differ only in
    ``event_distance`` differ only by their events.
    """
    n_strips, length, sampling_rate, noise, event_distance, *_, seed = _check_ecg_events({
        "n_strips": n_strips, "length": length, "sampling_rate": sampling_rate, "noise": noise,
        "event_distance": event_distance, "seed": seed, "edge_margin": edge_margin})
    layout = event_layout(n_strips, length, sampling_rate, event_distance, seed, edge_margin)
    strips = render_sinus_strips(n_strips, length, sampling_rate, noise, _streams(seed)[1])
    strips += render_events(layout, length, sampling_rate)
    return strips, layout


def load_ecg_events(parameters: dict[str, Any], data_dir: Path) -> Dataset:
    """Generate event strips and split them, stratified by class, into fixed train/validation/test sets."""
    del data_dir
    merged = {**DEFAULTS, **parameters}
    (n_strips, length, sampling_rate, noise, event_distance, validation_fraction, test_fraction, label_noise,
     seed) = _check_ecg_events(merged)
    strips, layout = generate_event_strips(n_strips, length, sampling_rate, noise, event_distance, seed,
                                           merged["edge_margin"])
    edge = peak_edge(merged["edge_margin"], sampling_rate)
    info = {
        "task": "two events event_distance samples apart on a sinus-rhythm strip, one upright and one inverted; "
                "the class says which comes first (seeing the order means spanning the distance)",
        "classes": {"upright_first": "the upright event comes first", "inverted_first": "the inverted event comes first"},
        "shapes": {name: f"{'+' if sign > 0 else '-'}Gaussian deflection of {EVENT_AMPLITUDE[0]:g}-"
                         f"{EVENT_AMPLITUDE[1]:g} mV, width (sd) {EVENT_WIDTH:g} s"
                   for name, sign in zip(SHAPE_NAMES, SHAPE_SIGNS)},
        "event_footprint_samples": event_footprint(sampling_rate),
        "event_positions": {"first_peak": [edge, length - 1 - edge - event_distance],
                            "second_peak": [edge + event_distance, length - 1 - edge],
                            "distance": event_distance, "edge_margin": edge},
        "span_needed_samples": event_distance + event_footprint(sampling_rate),
        "chance_accuracy": 0.5,
        "strip_seconds": length / sampling_rate,
    }
    return assemble_dataset("ecg_events", layout.labels, lambda indices: strips[indices, :, None], CLASS_NAMES,
                            merged, info, seed=seed, validation_fraction=validation_fraction,
                            test_fraction=test_fraction, label_noise=label_noise, count_name="n_strips")


register("ecg_events", DatasetSpec(
    loader=load_ecg_events,
    defaults=dict(DEFAULTS),
    description="Synthetic sinus-rhythm ECG strips with two short upright or inverted events event_distance "
                "samples apart, one of each; the class is which comes first (2 classes); "
                "generated from a seed, no files needed.",
    check=check_ecg_events,
))
