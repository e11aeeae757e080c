"""The ``ucr:<directory>`` loader on tiny .tsv and .ts files written here."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from study.datasets import check_parameters, load_dataset
from study.datasets.splits import stratified_split
from study.errors import BadInput

# Labels 10, 2 and 1: numeric order (1, 2, 10) differs from string order (1, 10, 2).
TRAIN_ROWS = [(label, [float(index), index + 0.5, index + 1.0, index + 2.0])
              for index, label in enumerate(["10", "2", "1"] * 5)]
TEST_ROWS = [("1", [9.0, 8.0, 7.0, 6.0]), ("2", [1.0, 2.0, 3.0, 4.0]), ("10", [0.0, 0.0, 1.0, 1.0])]


def write_tsv(directory: Path, name: str, train=TRAIN_ROWS, test=TEST_ROWS) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for split, rows in (("TRAIN", train), ("TEST", test)):
        lines = ["\t".join([label, *(str(value) for value in values)]) for label, values in rows]
        (directory / f"{name}_{split}.tsv").write_text("\n".join(lines) + "\n")
    return directory


def write_ts(directory: Path, name: str, train, test, labels="1 2 10", extra_header="") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for split, rows in (("TRAIN", train), ("TEST", test)):
        body = "\n".join(",".join(str(value) for value in values) + f":{label}" for label, values in rows)
        (directory / f"{name}_{split}.ts").write_text(
            f"# a comment\n@problemName {name}\n@timeStamps false\n@univariate true\n{extra_header}"
            f"@classLabel true {labels}\n@data\n{body}\n")
    return directory


def test_tsv_labels_sorted_numerically_and_validation_stratified(tmp_path):
    write_tsv(tmp_path / "Toy", "Toy")
    dataset = load_dataset(f"ucr:{tmp_path / 'Toy'}", {"validation_fraction": 0.4, "seed": 3})

    assert dataset.class_names == ("1", "2", "10")
    assert dataset.info["label_mapping"] == {"1": 0, "2": 1, "10": 2}
    assert dataset.info["problem"] == "Toy" and dataset.info["format"] == "tsv"
    assert dataset.class_counts()["validation"] == {"1": 2, "2": 2, "10": 2}
    assert dataset.class_counts()["train"] == {"1": 3, "2": 3, "10": 3}
    # Test split unchanged, in file order; series shaped (examples, length, 1).
    np.testing.assert_array_equal(dataset.y_test, [0, 1, 2])
    np.testing.assert_array_equal(dataset.x_test[:, :, 0], [values for _, values in TEST_ROWS])
    assert dataset.x_train.shape == (9, 4, 1) and dataset.x_train.dtype == np.float32
    # Every training and validation series is one TRAIN row with its own label.
    rows = {tuple(values): label for label, values in TRAIN_ROWS}
    for x, y in ((dataset.x_train, dataset.y_train), (dataset.x_val, dataset.y_val)):
        for series, label in zip(x[:, :, 0], y):
            assert rows[tuple(series.astype(float))] == dataset.class_names[label]
    again = load_dataset(f"ucr:{tmp_path / 'Toy'}", {"validation_fraction": 0.4, "seed": 3})
    assert again.content_hash() == dataset.content_hash()


def test_relative_directory_resolves_against_current_directory(tmp_path, monkeypatch):
    write_tsv(tmp_path / "data" / "Toy", "Toy")
    monkeypatch.chdir(tmp_path)
    dataset = load_dataset("ucr:data/Toy")
    assert dataset.info["directory"] == str(tmp_path / "data" / "Toy")
    assert dataset.name == "ucr:data/Toy"


def test_varying_length_padded_with_last_value_in_both_formats(tmp_path):
    train = [("1", [1, 2, 3]), ("1", [1, 2]), ("2", [5, 6, 7, 8]), ("2", [4]), ("1", [2, 2, 2]), ("2", [3, 3])]
    test = [("1", [7, 8]), ("2", [1, 2, 3, 4, 5])]
    width = 6  # longest series: 5 values, plus the label column

    def nan_padded(rows):
        return [(label, [*values, *["NaN"] * (width - 1 - len(values))]) for label, values in rows]

    tsv = load_dataset(f"ucr:{write_tsv(tmp_path / 'tsv', 'Var', nan_padded(train), nan_padded(test))}",
                       {"validation_fraction": 0.34})
    ts = load_dataset(f"ucr:{write_ts(tmp_path / 'ts', 'Var', train, test, labels='1 2')}",
                      {"validation_fraction": 0.34})
    for dataset in (tsv, ts):
        assert dataset.input_shape == (5, 1)
        np.testing.assert_array_equal(dataset.x_test[:, :, 0], [[7, 8, 8, 8, 8], [1, 2, 3, 4, 5]])
        assert dataset.info["padded_series"] == {"train": 6, "test": 1}
    assert ts.info["format"] == "ts"
    assert ts.content_hash() == tsv.content_hash()


@pytest.mark.parametrize("row, problem", [
    ("1\t0.5\tabc\t2\t3", r"Bad_TRAIN\.tsv: line 2, column 3: 'abc' is not a number"),
    ("1\t0.5\tNaN\t2\t3", r"Bad_TRAIN\.tsv: line 2, column 3: missing value inside the series"),
    ("1\t0.5\t2", r"Bad_TRAIN\.tsv: line 2: 3 columns, but the first row has 5"),
    ("1 0.5 1 2 3", r"Bad_TRAIN\.tsv: line 2: expected a label and values separated by tabs"),
    ("\t0.5\t1\t2\t3", r"Bad_TRAIN\.tsv: line 2: empty class label"),
])
def test_malformed_tsv_rows(tmp_path, row, problem):
    directory = write_tsv(tmp_path / "Bad", "Bad")
    train = directory / "Bad_TRAIN.tsv"
    lines = train.read_text().splitlines()
    lines[1] = row
    train.write_text("\n".join(lines) + "\n")
    with pytest.raises(BadInput, match=problem):
        load_dataset(f"ucr:{directory}")


@pytest.mark.parametrize("row, header, problem", [
    ("1,2,3:7", "", r"line 16: label '7' is not declared by @classLabel \(1, 2, 10\)"),
    ("1,?,3:1", "", r"line 16: missing value '\?' in the series"),
    ("1,NaN,3:1", "", r"line 16: NaN in the series"),
    ("1,2,3:4,5,6:1", "", r"line 16: more than one dimension \(multivariate\)"),
    ("1,2,3", "", r"line 16: no ':<label>' at the end"),
    ("1,x,3:1", "", r"line 16, column 2: 'x' is not a number"),
    ("1,2,3:1", "@univariate false\n", r"line 5: multivariate problems are not supported"),
])
def test_malformed_ts_files(tmp_path, row, header, problem):
    rows = [(label, [1.0, 2.0, 3.0]) for label in ["1", "2", "10"] * 3]
    directory = write_ts(tmp_path / "Bad", "Bad", rows, rows, extra_header=header)
    train = directory / "Bad_TRAIN.ts"
    train.write_text(train.read_text() + row + "\n")  # line 16: after 6 header lines and 9 rows
    with pytest.raises(BadInput, match=r"Bad_TRAIN\.ts: " + problem):
        load_dataset(f"ucr:{directory}")


def test_ts_without_class_labels(tmp_path):
    directory = tmp_path / "NoLabels"
    directory.mkdir()
    for split in ("TRAIN", "TEST"):
        (directory / f"NoLabels_{split}.ts").write_text("@problemName NoLabels\n@data\n1,2,3\n")
    with pytest.raises(BadInput, match=r"NoLabels_TRAIN\.ts: no '@classLabel true <labels>' line before @data"):
        load_dataset(f"ucr:{directory}")


def test_class_too_small_for_validation(tmp_path):
    train = TRAIN_ROWS + [("7", [1.0, 1.0, 1.0, 1.0])]
    directory = write_tsv(tmp_path / "Small", "Small", train, TEST_ROWS + [("7", [2.0, 2.0, 2.0, 2.0])])
    with pytest.raises(BadInput, match=r"Small: class '7' has no examples in the validation split"):
        load_dataset(f"ucr:{directory}")


def test_test_label_unseen_in_training(tmp_path):
    directory = write_tsv(tmp_path / "Unseen", "Unseen", TRAIN_ROWS, TEST_ROWS + [("3", [2.0, 2.0, 2.0, 2.0])])
    with pytest.raises(BadInput, match=r"class '3' has no examples in the train split"):
        load_dataset(f"ucr:{directory}")


def test_directory_and_problem_lookup(tmp_path):
    with pytest.raises(BadInput, match=r"Missing: UCR problem directory not found"):
        load_dataset(f"ucr:{tmp_path / 'Missing'}")
    (tmp_path / "Empty").mkdir()
    with pytest.raises(BadInput, match=r"Empty: no <Problem>_TRAIN\.tsv or <Problem>_TRAIN\.ts file"):
        load_dataset(f"ucr:{tmp_path / 'Empty'}")
    write_tsv(tmp_path / "Two", "First")
    write_tsv(tmp_path / "Two", "Second", test=TEST_ROWS[:2] + [("10", [5.0, 5.0, 5.0, 5.0])])
    with pytest.raises(BadInput, match=r"several problems \(First, Second\)"):
        load_dataset(f"ucr:{tmp_path / 'Two'}")
    second = load_dataset(f"ucr:{tmp_path / 'Two'}", {"problem": "Second"})
    assert second.info["problem"] == "Second" and second.x_test[2, 0, 0] == 5.0
    (tmp_path / "Two" / "First_TEST.tsv").unlink()
    with pytest.raises(BadInput, match=r"missing First_TEST\.tsv beside First_TRAIN\.tsv"):
        load_dataset(f"ucr:{tmp_path / 'Two'}", {"problem": "First"})


def test_parameters_are_checked(tmp_path):
    directory = write_tsv(tmp_path / "Toy", "Toy")
    with pytest.raises(BadInput, match=r"unknown parameter 'folds'"):
        check_parameters(f"ucr:{directory}", {"folds": 3})
    with pytest.raises(BadInput, match=r"validation_fraction.*between 0 and 1"):
        load_dataset(f"ucr:{directory}", {"validation_fraction": 1.0})
    with pytest.raises(BadInput, match=r"ucr needs a directory"):
        load_dataset("ucr")


def test_stratified_split_keeps_class_proportions():
    labels = np.repeat([0, 1, 2], [50, 20, 3])
    parts = stratified_split(labels, {"validation": 0.2, "test": 0.2}, seed=0)
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(len(labels)))
    assert np.bincount(labels[parts["validation"]]).tolist() == [10, 4, 1]
    assert np.bincount(labels[parts["test"]]).tolist() == [10, 4, 1]
    assert np.bincount(labels[parts["train"]]).tolist() == [30, 12, 1]
    same = stratified_split(labels, {"validation": 0.2, "test": 0.2}, seed=0)
    assert all(np.array_equal(parts[split], same[split]) for split in parts)
