"""The ``mitdb`` and ``cinc2017`` loaders on a few real records and on small records written here with wfdb."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import wfdb
from scipy.signal import resample_poly

from study.datasets import default_data_dir, load_dataset
from study.datasets import physionet
from study.datasets.physionet import AAMI_CLASSES, DS1
from study.errors import BadInput

# Four real records with beats of all four AAMI classes: three DS1, one DS2.
REAL_RECORDS = ["124", "208", "223", "213"]
FS = 360
# The records' own rate and every beat (the defaults resample to 120 Hz and cap classes at 1,500 beats).
FULL = {"resample_to": None, "max_beats_per_class": None}


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Every test caches into its own directory, never the project's."""
    monkeypatch.setenv("STUDY_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def real_data_dir() -> Path:
    data_dir = default_data_dir()
    if not (data_dir / "mitdb").is_dir() or not (data_dir / "cinc2017").is_dir():
        pytest.skip(f"real PhysioNet data not found under {data_dir}")
    return data_dir


def aami_class_of(symbol: str) -> str | None:
    return next((name for name, symbols in AAMI_CLASSES.items() if symbol in symbols), None)


# --------------------------------------------------------------------------- real MIT-BIH


def test_mitdb_real_records_split_inter_patient(real_data_dir):
    dataset = load_dataset("mitdb", {"records": REAL_RECORDS, "validation_records": 1, **FULL}, real_data_dir)
    splits = dataset.info["splits"]
    train, validation, test = (set(splits[name]["records"]) for name in ("train", "validation", "test"))

    assert train | validation | test == set(REAL_RECORDS)
    assert not (train & validation or train & test or validation & test)
    assert test == {"213"} and train | validation <= set(DS1) and len(validation) == 1
    assert dataset.class_names == ("N", "S", "V", "F")
    window = round(0.25 * FS) + round(0.45 * FS)
    for x, y in ((dataset.x_train, dataset.y_train), (dataset.x_val, dataset.y_val), (dataset.x_test, dataset.y_test)):
        assert x.shape == (len(y), window, 1) and x.dtype == np.float32 and y.dtype == np.int64
    # normalise="beat": every window has zero mean and unit standard deviation.
    np.testing.assert_allclose(dataset.x_train[:, :, 0].mean(axis=1), 0, atol=1e-4)
    np.testing.assert_allclose(dataset.x_train[:, :, 0].std(axis=1), 1, atol=1e-3)
    assert dataset.class_counts() == {name: splits[name]["beats"] for name in ("train", "validation", "test")}


def test_mitdb_real_labels_and_windows_follow_the_annotations(real_data_dir):
    dataset = load_dataset("mitdb", {"records": REAL_RECORDS, "validation_records": ["124"], "normalise": "none",
                                     **FULL}, real_data_dir)
    record_path = str(real_data_dir / "mitdb" / "213")
    annotation = wfdb.rdann(record_path, "atr")
    signal = wfdb.rdrecord(record_path, channel_names=["MLII"]).p_signal[:, 0]
    before, after = round(0.25 * FS), round(0.45 * FS)
    beats = [(sample, aami_class_of(symbol)) for sample, symbol in zip(annotation.sample, annotation.symbol)
             if aami_class_of(symbol) not in (None, "Q") and before <= sample <= len(signal) - after]

    expected_labels = [dataset.class_names.index(name) for _, name in beats]
    np.testing.assert_array_equal(dataset.y_test, expected_labels)
    for position in (0, len(beats) // 2, len(beats) - 1):
        sample = beats[position][0]
        np.testing.assert_allclose(dataset.x_test[position, :, 0], signal[sample - before:sample + after],
                                   rtol=1e-6, atol=1e-7)
    assert dataset.info["splits"]["validation"]["records"] == ["124"]
    assert dataset.info["splits"]["test"]["beats"]["F"] == sum(name == "F" for _, name in beats) > 300


def test_mitdb_real_cache_returns_identical_arrays(real_data_dir, private_cache, monkeypatch):
    parameters = {"records": REAL_RECORDS, "validation_records": 1, "resample_to": 180}
    first = load_dataset("mitdb", parameters, real_data_dir)
    assert len(list(private_cache.glob("mitdb-*.npz"))) == 1
    assert first.input_shape == (round(0.25 * 180) + round(0.45 * 180), 1)

    def no_decoding(*args, **kwargs):
        raise AssertionError("a cached dataset was decoded again")

    monkeypatch.setattr(physionet, "_mitdb_record_beats", no_decoding)
    second = load_dataset("mitdb", parameters, real_data_dir)
    assert second.content_hash() == first.content_hash()
    assert second.info == first.info
    # A split parameter is applied after the cache: still no decoding.
    other_validation = load_dataset("mitdb", {**parameters, "validation_records": ["208"]}, real_data_dir)
    assert other_validation.info["splits"]["validation"]["records"] == ["208"]
    # So is the subsample.
    other_cap = load_dataset("mitdb", {**parameters, "max_beats_per_class": 50, "seed": 3}, real_data_dir)
    assert max(other_cap.class_counts()["train"].values()) == 50


def test_mitdb_real_cap_subsamples_train_and_validation_but_never_test(real_data_dir):
    base = {"records": REAL_RECORDS, "validation_records": 1, "resample_to": 120}
    whole = load_dataset("mitdb", {**base, "max_beats_per_class": None}, real_data_dir)
    capped = load_dataset("mitdb", {**base, "max_beats_per_class": 100}, real_data_dir)
    assert capped.input_shape == (30 + 54, 1)

    before, kept = whole.class_counts(), capped.class_counts()
    for split in ("train", "validation"):
        assert kept[split] == {name: min(count, 100) for name, count in before[split].items()}
        assert capped.info["splits"][split]["beats"] == kept[split]
    assert before["train"]["N"] > 1000 and before["train"]["S"] < 100  # the cap bites on N and spares S
    assert kept["test"] == before["test"]
    np.testing.assert_array_equal(capped.x_test, whole.x_test)
    assert capped.info["subsample"] == {
        "max_beats_per_class": 100, "seed": 0, "splits": ["train", "validation"],
        "beats_before": {"train": before["train"], "validation": before["validation"]},
        "beats_kept": {"train": kept["train"], "validation": kept["validation"]},
    }
    # The kept beats are beats of the whole split, in their original (record) order, with their labels.
    whole_rows = {row.tobytes(): index for index, row in enumerate(whole.x_train[:, :, 0])}
    positions = [whole_rows[row.tobytes()] for row in capped.x_train[:, :, 0]]
    assert positions == sorted(positions)
    np.testing.assert_array_equal(whole.y_train[positions], capped.y_train)

    again = load_dataset("mitdb", {**base, "max_beats_per_class": 100}, real_data_dir)
    assert again.content_hash() == capped.content_hash()
    reseeded = load_dataset("mitdb", {**base, "max_beats_per_class": 100, "seed": 1}, real_data_dir)
    assert reseeded.class_counts() == kept
    assert not np.array_equal(reseeded.x_train, capped.x_train)


def test_mitdb_real_missing_class_names_class_and_split(real_data_dir):
    # Of these records only 208 has Q beats, and it stays in training.
    with pytest.raises(BadInput, match=r"class 'Q' has no beats in the validation split"):
        load_dataset("mitdb", {"records": REAL_RECORDS, "validation_records": ["124"], "include_q": True},
                     real_data_dir)


def test_mitdb_real_unknown_lead(real_data_dir):
    with pytest.raises(BadInput, match=r"124\.hea.*lead 'V9' not in the header's signals"):
        load_dataset("mitdb", {"records": REAL_RECORDS, "lead": "V9"}, real_data_dir)


def test_cap_per_class_draws_at_most_cap_of_every_class():
    labels = np.array([0] * 10 + [1] * 3 + [2] * 6 + [0] * 5)
    kept = physionet.cap_per_class(labels, 4, np.random.default_rng(7))
    assert np.bincount(labels[kept]).tolist() == [4, 3, 4]
    assert kept.tolist() == sorted(set(kept.tolist()))  # sorted, no repeats
    assert set(np.flatnonzero(labels == 1)) <= set(kept.tolist())  # a class under the cap keeps every example
    np.testing.assert_array_equal(kept, physionet.cap_per_class(labels, 4, np.random.default_rng(7)))
    assert not np.array_equal(kept, physionet.cap_per_class(labels, 4, np.random.default_rng(8)))


def test_validation_choice_balances_classes_over_whole_records():
    records = ["a", "b", "c", "d"]
    counts = np.array([[100, 0, 5], [100, 10, 5], [100, 10, 0], [100, 0, 0]])
    # One record: only b puts S and V beats in validation while leaving some in training.
    assert physionet.choose_validation_records(counts, records, 1) == ["b"]
    # Two records: {a, c} sends half of every class to validation.
    assert physionet.choose_validation_records(counts, records, 2) == ["a", "c"]


# --------------------------------------------------------------------------- real CinC 2017


def test_cinc2017_real_records_stratified_by_class(real_data_dir):
    parameters = {"records": 40, "duration": 10.0, "sampling_rate": 50}
    dataset = load_dataset("cinc2017", parameters, real_data_dir)
    reference = dict(line.split(",") for line in (real_data_dir / "cinc2017" / "REFERENCE.csv").read_text().split())

    assert dataset.class_names == ("N", "A", "O", "~")
    assert dataset.input_shape == (500, 1)
    splits = dataset.info["splits"]
    all_records = [record for split in splits.values() for record in split["records"]]
    assert len(all_records) == len(set(all_records)) == 40
    for split, labels in (("train", dataset.y_train), ("validation", dataset.y_val), ("test", dataset.y_test)):
        assert [dataset.class_names[label] for label in labels] == [reference[r] for r in splits[split]["records"]]
    assert dataset.class_counts() == {
        "train": {"N": 6, "A": 6, "O": 6, "~": 6},
        "validation": {"N": 2, "A": 2, "O": 2, "~": 2},
        "test": {"N": 2, "A": 2, "O": 2, "~": 2},
    }
    again = load_dataset("cinc2017", {**parameters, "seed": 0}, real_data_dir)
    assert again.content_hash() == dataset.content_hash()
    reshuffled = load_dataset("cinc2017", {**parameters, "seed": 1}, real_data_dir)
    assert reshuffled.info["splits"]["test"]["records"] != splits["test"]["records"]


def test_cinc2017_real_strip_is_the_resampled_record(real_data_dir):
    parameters = {"records": 12, "duration": 10.0, "sampling_rate": 50, "crop": "start", "normalise": "none"}
    dataset = load_dataset("cinc2017", parameters, real_data_dir)
    record = dataset.info["splits"]["train"]["records"][0]
    signal = wfdb.rdrecord(str(real_data_dir / "cinc2017" / record)).p_signal[:, 0]
    assert len(signal) > 10 * 300  # long enough to be cropped, not padded
    np.testing.assert_allclose(dataset.x_train[0, :, 0], resample_poly(signal, 1, 6)[:500], rtol=1e-5, atol=1e-6)

    centred = load_dataset("cinc2017", {**parameters, "crop": "center"}, real_data_dir)
    resampled = resample_poly(signal, 1, 6)
    start = (len(resampled) - 500) // 2
    np.testing.assert_allclose(centred.x_train[0, :, 0], resampled[start:start + 500], rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- small records written here


# One cycle of symbols per record: beats of every class, a rhythm change '+' and noise '~' (skipped).
SYMBOLS = ["N", "L", "A", "J", "V", "E", "F", "Q", "+", "~", "R", "S"]
EXPECTED = {"N": 3, "S": 3, "V": 2, "F": 1}  # Q is skipped unless include_q


def write_mitdb_record(directory: Path, name: str, symbols=SYMBOLS, seconds: float = 10.0) -> None:
    """A two-lead 360 Hz record with one annotation per second and one beat too close to the start."""
    directory.mkdir(parents=True, exist_ok=True)
    length = int(seconds * FS)
    time = np.arange(length) / FS
    signal = np.stack([np.sin(2 * np.pi * 1.2 * time), np.cos(2 * np.pi * 0.7 * time)], axis=1)
    wfdb.wrsamp(name, fs=FS, units=["mV", "mV"], sig_name=["MLII", "V1"], p_signal=signal,
                fmt=["212", "212"], adc_gain=[200.0, 200.0], baseline=[0, 0], write_dir=str(directory))
    samples = [10] + [int(FS * (0.5 + index * (seconds - 1) / len(symbols))) for index in range(len(symbols))]
    wfdb.wrann(name, "atr", np.array(samples), symbol=["N"] + list(symbols), fs=FS, write_dir=str(directory))


@pytest.fixture
def small_mitdb(tmp_path) -> Path:
    for record in ("101", "106", "108", "100"):
        write_mitdb_record(tmp_path / "mitdb", record)
    return tmp_path


SMALL = {"records": ["101", "106", "108", "100"], "validation_records": 1}


def test_mitdb_written_records_map_symbols_to_aami_classes(small_mitdb):
    dataset = load_dataset("mitdb", SMALL, small_mitdb)
    assert dataset.info["splits"]["test"] == {"records": ["100"], "beats": EXPECTED}
    assert dataset.info["splits"]["validation"]["beats"] == EXPECTED
    # Skipped per record: '+', '~' and (without include_q) 'Q'; dropped: the beat at sample 10.
    assert dataset.info["left_out_beats"] == {"skipped_annotations": 4 * 3, "dropped_at_edges": 4,
                                              "dropped_invalid_samples": 0}
    with_q = load_dataset("mitdb", {**SMALL, "include_q": True}, small_mitdb)
    assert with_q.class_names == ("N", "S", "V", "F", "Q")
    assert with_q.info["splits"]["test"]["beats"] == {**EXPECTED, "Q": 1}


def test_mitdb_cache_follows_the_source_files(small_mitdb):
    assert load_dataset("mitdb", SMALL, small_mitdb).info["splits"]["test"]["beats"]["V"] == 2
    write_mitdb_record(small_mitdb / "mitdb", "100", symbols=SYMBOLS + ["V", "V"], seconds=12.0)
    assert load_dataset("mitdb", SMALL, small_mitdb).info["splits"]["test"]["beats"]["V"] == 4


def test_mitdb_truncated_signal_file(small_mitdb):
    with open(small_mitdb / "mitdb" / "106.dat", "r+b") as handle:
        handle.truncate(1000)
    with pytest.raises(BadInput, match=r"106\.dat: header says 3600 samples x 2 signal\(s\).*hold 333"):
        load_dataset("mitdb", SMALL, small_mitdb)


@pytest.mark.parametrize("edit, problem", [
    (lambda text: text.replace(" 2 360 3600", " 2 360 3000", 1), r"header says 3000 samples x 2 signal"),
    (lambda text: text.replace(" 2 360 3600", " 1 360 3600", 1).rsplit("\n", 2)[0] + "\n",
     r"header says 3600 samples x 1 signal\(s\).*hold 7200"),
])
def test_mitdb_header_disagreeing_with_signal_file(small_mitdb, edit, problem):
    header = small_mitdb / "mitdb" / "108.hea"
    header.write_text(edit(header.read_text()))
    with pytest.raises(BadInput, match=r"108\.dat: " + problem):
        load_dataset("mitdb", SMALL, small_mitdb)


def test_mitdb_missing_files(small_mitdb, tmp_path):
    (small_mitdb / "mitdb" / "101.atr").unlink()
    with pytest.raises(BadInput, match=r"101\.atr: annotation file missing"):
        load_dataset("mitdb", SMALL, small_mitdb)
    (small_mitdb / "mitdb" / "106.hea").unlink()
    with pytest.raises(BadInput, match=r"106\.hea: record header missing"):
        load_dataset("mitdb", {**SMALL, "records": ["106", "100"]}, small_mitdb)
    with pytest.raises(BadInput, match=r"mitdb: mitdb data directory not found"):
        load_dataset("mitdb", SMALL, tmp_path / "elsewhere")
    with pytest.raises(BadInput, match=r"record '104' is not one of the 44"):
        load_dataset("mitdb", {"records": ["104", "100"]}, small_mitdb)


def test_mitdb_class_without_beats_in_a_split(small_mitdb):
    write_mitdb_record(small_mitdb / "mitdb", "100", symbols=["N", "A", "V", "N"])
    with pytest.raises(BadInput, match=r"class 'F' has no beats in the test split"):
        load_dataset("mitdb", SMALL, small_mitdb)


def test_mitdb_written_records_cap_training_and_validation_beats(small_mitdb):
    dataset = load_dataset("mitdb", {**SMALL, "max_beats_per_class": 1}, small_mitdb)
    one_each = {name: 1 for name in EXPECTED}
    assert dataset.class_counts() == {"train": one_each, "validation": one_each, "test": EXPECTED}
    assert dataset.info["subsample"]["beats_before"]["train"] == {name: 2 * count for name, count in EXPECTED.items()}
    assert dataset.input_shape == (84, 1)  # default: 120 Hz, 0.25 s + 0.45 s


def test_mitdb_bad_parameters(small_mitdb):
    with pytest.raises(BadInput, match=r"validation_records.*needs 1 to 2 of the 3"):
        load_dataset("mitdb", {**SMALL, "validation_records": 3}, small_mitdb)
    with pytest.raises(BadInput, match=r"record '100' is not among the selected DS1"):
        load_dataset("mitdb", {**SMALL, "validation_records": ["100"]}, small_mitdb)
    with pytest.raises(BadInput, match=r"normalise"):
        load_dataset("mitdb", {**SMALL, "normalise": "record"}, small_mitdb)
    with pytest.raises(BadInput, match=r"window_after.*positive"):
        load_dataset("mitdb", {**SMALL, "window_after": 0}, small_mitdb)
    for cap in (0, 2.5, "10", True):
        with pytest.raises(BadInput, match=r"max_beats_per_class.*positive integer or null"):
            load_dataset("mitdb", {**SMALL, "max_beats_per_class": cap}, small_mitdb)
    with pytest.raises(BadInput, match=r"seed.*non-negative integer"):
        load_dataset("mitdb", {**SMALL, "seed": -1}, small_mitdb)


CINC_LABELS = ["N", "A", "O", "~"] * 3


@pytest.fixture
def small_cinc(tmp_path) -> Path:
    """Twelve single-lead 300 Hz records, three per class, 4 to 15 s long."""
    directory = tmp_path / "cinc2017"
    directory.mkdir()
    lines = []
    for index, label in enumerate(CINC_LABELS, start=1):
        name = f"A{index:05d}"
        time = np.arange(int((4 + index) * 300)) / 300
        signal = (np.sin(2 * np.pi * (1 + index / 10) * time) + 0.1 * index)[:, np.newaxis]
        wfdb.wrsamp(name, fs=300, units=["mV"], sig_name=["ECG"], p_signal=signal, fmt=["16"],
                    adc_gain=[1000.0], baseline=[0], write_dir=str(directory))
        lines.append(f"{name},{label}")
    (directory / "REFERENCE.csv").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_cinc2017_written_records_pad_and_crop(small_cinc):
    dataset = load_dataset("cinc2017", {"duration": 10.0, "sampling_rate": 100}, small_cinc)
    assert dataset.input_shape == (1000, 1)
    assert dataset.class_counts() == {split: {"N": 1, "A": 1, "O": 1, "~": 1}
                                      for split in ("train", "validation", "test")}
    assert dataset.info["padded_records"] == 5  # records A00001..A00005 last 5 to 9 s
    strips = {record: strip for split, x in (("train", dataset.x_train), ("validation", dataset.x_val),
                                              ("test", dataset.x_test))
              for record, strip in zip(dataset.info["splits"][split]["records"], x[:, :, 0])}
    short = strips["A00001"]  # 5 s: 500 standardised samples, then zeros
    np.testing.assert_allclose([short[:500].mean(), short[:500].std()], [0, 1], atol=1e-4)
    assert not short[500:].any()
    assert np.count_nonzero(strips["A00012"]) == 1000  # 16 s, cropped: no padding


def test_cinc2017_unknown_label(small_cinc):
    reference = small_cinc / "cinc2017" / "REFERENCE.csv"
    reference.write_text(reference.read_text().replace("A00003,O", "A00003,X"))
    with pytest.raises(BadInput, match=r"REFERENCE\.csv: line 3: unknown label 'X' for record 'A00003'"):
        load_dataset("cinc2017", {}, small_cinc)


def test_cinc2017_class_without_records_in_a_split(small_cinc):
    reference = small_cinc / "cinc2017" / "REFERENCE.csv"
    lines = reference.read_text().split()
    reference.write_text("\n".join(line for line in lines if line not in ("A00004,~", "A00008,~")) + "\n")
    with pytest.raises(BadInput, match=r"class '~' has no records in the validation split"):
        load_dataset("cinc2017", {}, small_cinc)


def test_cinc2017_broken_files(small_cinc):
    directory = small_cinc / "cinc2017"
    with open(directory / "A00002.dat", "r+b") as handle:
        handle.truncate(100)
    with pytest.raises(BadInput, match=r"A00002\.dat: header says 1800 samples x 1 signal\(s\).*hold 50"):
        load_dataset("cinc2017", {}, small_cinc)
    (directory / "A00002.hea").unlink()
    with pytest.raises(BadInput, match=r"A00002\.hea: record header missing"):
        load_dataset("cinc2017", {}, small_cinc)
    (directory / "REFERENCE.csv").unlink()
    with pytest.raises(BadInput, match=r"REFERENCE\.csv: label file missing"):
        load_dataset("cinc2017", {}, small_cinc)


def test_cinc2017_defaults_keep_the_central_20_seconds_at_25_hz(small_cinc):
    dataset = load_dataset("cinc2017", {}, small_cinc)
    assert dataset.input_shape == (500, 1)
    assert dataset.info["sampling_rate"] == 25
    assert dataset.info["padded_records"] == 12  # the written records last 5 to 16 s
