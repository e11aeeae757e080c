"""Tables on resume, and the run and download commands on bad input (issue 8, parts 4 and 7).

An existing epochs.csv, trials.csv or classes.csv is checked against the current
columns before a study resumes: a torn header is repaired when the rows are
intact, any other difference refuses the study in one line and leaves it as it
was; RowWriter never appends under a missing or different header. Nothing here
trains: every run_study call is refused before its search starts.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from study import download, tables
from study.config import load_space
from study.datasets import load_dataset
from study.errors import BadInput
from study.recording import RowWriter, TableMismatch
from study.runner import check_table_header, keep_rows, repair_table_header, run_study
from study.tables import CLASS_COLUMNS, EPOCH_COLUMNS, TRIAL_COLUMNS
from tests.conftest import run_main, snapshot, write_space

HEADER = ",".join(EPOCH_COLUMNS)
ROW = ",".join(["3", "tune", "lstm", "1", "4", "5", "0.1", "0.0", "0.001", "l2", "0.01", "0.0", "3", "32", "0", "7", "1",
                *["0.5"] * 11])


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


# ---------------------------------------------------------------- header checks


def test_a_matching_missing_or_empty_table_needs_no_repair(tmp_path):
    assert not check_table_header(tmp_path / "absent.csv", EPOCH_COLUMNS)
    assert not check_table_header(write(tmp_path / "empty.csv", ""), EPOCH_COLUMNS)
    assert not check_table_header(write(tmp_path / "good.csv", f"{HEADER}\r\n{ROW}\r\n"), EPOCH_COLUMNS)


@pytest.mark.parametrize("text", [
    HEADER[:17],                               # killed while the header was written: a partial first line
    HEADER,                                    # ... or its line end
    HEADER + "\r",
    HEADER[: HEADER.index(",epoch,") + 1],     # cut on a comma
    HEADER[:40] + "\r\n",                      # a strict prefix of the header, then nothing
    HEADER[:40] + "\r\n" + f"{ROW}\r\n{ROW}\r\n",  # a header cut short over complete rows
])
def test_a_torn_header_is_repaired_keeping_the_rows(tmp_path, text):
    path = write(tmp_path / "epochs.csv", text)
    assert check_table_header(path, EPOCH_COLUMNS)
    repair_table_header(path, EPOCH_COLUMNS)
    rows = text.count(ROW)
    assert path.read_bytes() == (f"{HEADER}\r\n" + f"{ROW}\r\n" * rows).encode("utf-8")
    assert not check_table_header(path, EPOCH_COLUMNS)


@pytest.mark.parametrize("text, found", [
    (HEADER.replace(",seed,", ",seeds,") + "\r\n" + ROW + "\r\n", "trial_id,phase"),  # another column
    (",".join(c for c in TRIAL_COLUMNS if c != "setting") + "\r\n", "trial_id,phase,status"),  # older columns
    (f"{ROW}\r\n{ROW}\r\n", "3,tune,lstm"),  # rows without a header
    (HEADER[:40] + "\r\n" + "1,2,3\r\n", "trial_id"),  # a torn header over rows that are not intact
    ("garbage", "garbage"),  # a partial first line that is no part of the header
])
def test_any_other_header_refuses_the_study_in_one_line(tmp_path, text, found):
    path = write(tmp_path / "trials.csv", text)
    columns = TRIAL_COLUMNS if "status" in text else EPOCH_COLUMNS
    with pytest.raises(BadInput) as error:
        check_table_header(path, columns)
    message = str(error.value)
    assert message.startswith(f"{path}: its header does not match the current columns (found '{found}")
    assert message.endswith("use --overwrite to start afresh or --name for a new study") and "\n" not in message
    assert path.read_bytes() == text.encode("utf-8")


def test_a_table_that_is_not_text_refuses_the_study(tmp_path):
    path = tmp_path / "classes.csv"
    path.write_bytes(b"trial_id,\xff\xfe\r\n")
    with pytest.raises(BadInput, match=r"classes\.csv: its header does not match the current columns \(found "
                                       r"'trial_id,\ufffd\ufffd'\)"):
        check_table_header(path, CLASS_COLUMNS)


def test_rows_that_are_not_text_refuse_the_study(tmp_path):
    path = write(tmp_path / "epochs.csv", f"{HEADER}\r\n{ROW}\r\n")
    with open(path, "ab") as handle:
        handle.write(b"3,tune,\xff\r\n")
    with pytest.raises(BadInput, match=r"epochs\.csv: line 3 is not UTF-8 text; use --overwrite"):
        check_table_header(path, EPOCH_COLUMNS)


def test_a_character_split_by_a_kill_in_the_torn_last_row_is_no_problem(tmp_path):
    """A kill may cut a message mid-character: the torn row is dropped on resume, never decoded."""
    row = ",".join(["1"] * (len(TRIAL_COLUMNS) - 1)) + ",diverg\u00e9"
    path = tmp_path / "trials.csv"
    path.write_bytes((",".join(TRIAL_COLUMNS) + "\r\n" + row + "\r\n").encode() + row.encode()[:-1])
    assert not check_table_header(path, TRIAL_COLUMNS)
    keep_rows(path, {"1"})  # what a resume does first
    assert path.read_bytes() == (",".join(TRIAL_COLUMNS) + "\r\n" + row + "\r\n").encode()


# ---------------------------------------------------------------- run_study refuses before it writes


@pytest.fixture
def previous_study(tmp_path):
    """(space, dataset, runs dir) of a study that ran before: its manifest and tables, written by hand."""
    space = load_space(write_space(tmp_path))
    dataset = load_dataset(space.dataset.name, dict(space.dataset.parameters))
    runs = tmp_path / "runs"
    run_dir = runs / space.name
    run_dir.mkdir(parents=True)
    manifest = {"study": space.name, "space": json.loads(json.dumps(space.to_dict(), default=str)),
                "dataset": dataset.describe(), "started": "2026-01-01T00:00:00+00:00", "finished": None}
    (run_dir / tables.MANIFEST_FILE).write_text(json.dumps(manifest, default=str), encoding="utf-8")
    write(run_dir / tables.EPOCHS_FILE, f"{HEADER}\r\n{ROW}\r\n")
    write(run_dir / tables.TRIALS_FILE, ",".join(TRIAL_COLUMNS) + "\r\n")
    return space, dataset, runs


def test_a_changed_header_refuses_the_resume_and_repairs_nothing(previous_study):
    space, dataset, runs = previous_study
    run_dir = runs / space.name
    write(run_dir / tables.EPOCHS_FILE, HEADER[:30])  # repairable, but only once every table passed
    write(run_dir / tables.CLASSES_FILE, "trial_id,phase,class,precision\r\n")
    before = snapshot(run_dir)
    with pytest.raises(BadInput, match=r"classes\.csv: its header does not match the current columns .*"
                                       r"use --overwrite to start afresh or --name for a new study$"):
        run_study(space, runs_dir=runs, dataset=dataset, verbose=False)
    assert snapshot(run_dir) == before


@pytest.mark.parametrize("manifest, message", [
    ("{not json", r"manifest\.json: cannot read the study's manifest \(not valid JSON\); use --overwrite"),
    ("[1, 2]", r"manifest\.json: is not a study manifest"),
    ('{"space": {}, "dataset": {}}', r"manifest\.json: is not a study manifest"),
])
def test_a_broken_manifest_refuses_the_resume_in_one_line(previous_study, manifest, message):
    space, dataset, runs = previous_study
    (runs / space.name / tables.MANIFEST_FILE).write_text(manifest, encoding="utf-8")
    before = snapshot(runs / space.name)
    with pytest.raises(BadInput, match=message):
        run_study(space, runs_dir=runs, dataset=dataset, verbose=False)
    assert snapshot(runs / space.name) == before


def test_a_run_directory_that_is_a_file_is_not_a_study(previous_study, tmp_path):
    space, dataset, _ = previous_study
    runs = tmp_path / "other-runs"
    runs.mkdir()
    (runs / space.name).write_text("not a study", encoding="utf-8")
    with pytest.raises(BadInput, match="exists but is not a study"):
        run_study(space, runs_dir=runs, dataset=dataset, verbose=False)
    assert (runs / space.name).read_text(encoding="utf-8") == "not a study"


def test_runs_dir_that_cannot_hold_studies_is_one_line_of_bad_input(tmp_path):
    space_file = write_space(tmp_path)
    (tmp_path / "afile").write_text("", encoding="utf-8")
    status, _, stderr = run_main(["run", str(space_file), "--runs-dir", str(tmp_path / "afile"), "--quiet"])
    assert status == 2 and len(stderr.splitlines()) == 1 and "Traceback" not in stderr, stderr
    assert f"{tmp_path / 'afile'}: key '--runs-dir': cannot keep studies there" in stderr
    assert (tmp_path / "afile").read_text(encoding="utf-8") == ""


# ---------------------------------------------------------------- RowWriter


def test_row_writer_writes_its_header_once_and_appends_under_it(tmp_path):
    path = tmp_path / "classes.csv"
    writer = RowWriter(path, CLASS_COLUMNS)
    writer.append([{"trial_id": "1", "phase": "tune", "class_name": "N", "precision": 0.5}])
    writer.append([{"trial_id": "2", "phase": "tune", "class_name": "N", "precision": float("nan")}])
    assert path.read_bytes() == (b"trial_id,phase,class_name,precision,recall,f1,support\r\n"
                                 b"1,tune,N,0.5,,,\r\n2,tune,N,,,,\r\n")
    write(path, "")
    writer.append([{"trial_id": "3"}])  # an empty file gets the header first
    assert path.read_text(encoding="utf-8").splitlines() == [",".join(CLASS_COLUMNS), "3,,,,,,"]


@pytest.mark.parametrize("text", [
    "trial_id,phase,class\r\n1,tune,N\r\n",                # a different header
    "1,tune,N,0.5,0.5,0.5,3\r\n",                          # rows without a header
    "trial_id,phase,class_name,precision,recall,f1,support\r\n1,tune,N,0.5",  # a torn last row
])
def test_row_writer_never_appends_under_a_missing_or_different_header(tmp_path, text):
    path = write(tmp_path / "classes.csv", text)
    with pytest.raises(TableMismatch, match=r"classes\.csv: its (header|last line)"):
        RowWriter(path, CLASS_COLUMNS).append([{"trial_id": "2", "phase": "tune", "class_name": "N"}])
    assert path.read_bytes() == text.encode("utf-8")


# ---------------------------------------------------------------- python -m study.download


def test_download_without_wfdb_says_what_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "wfdb", None)  # import wfdb fails, as where it is not installed
    assert download.main(["mitdb", "--data-dir", str(tmp_path / "data")]) == 2
    error = capsys.readouterr().err
    assert error == "error: downloading mitdb needs the optional package wfdb: pip install wfdb==4.3.1\n"
    assert not (tmp_path / "data").exists()


def test_download_into_a_data_dir_that_is_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "afile").write_text("", encoding="utf-8")
    assert download.main(["cinc2017", "--data-dir", str(tmp_path / "afile")]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: cannot create {tmp_path / 'afile' / 'cinc2017'}: ") and error.count("\n") == 1
