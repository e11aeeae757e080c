"""Reports validate before they write (issue 8, parts 1, 2 and 7).

Every table problem is either one line of bad input naming the file, the line
(the header is line 1), the column and what is wrong, with nothing written, or
(torn last rows, diverged trials, trials without epochs) a report that lists it
under "Data problems". A report of a study that is still running, or that
stopped early, says so at the top. Real files in tmp_path, no mocks.
"""
from __future__ import annotations

import fcntl
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from study import tables
from study.errors import BadInput
from study.markdown import ReportContext, render_markdown
from study.report import RUNNING_NOTE, STOPPED_NOTE, analyse_run, build_report, study_note
from tests.conftest import run_main, snapshot
from tests.test_report import MANIFEST, epoch_rows, trial_rows, write_run

#: Analysis settings that keep the one full build here fast.
QUICK = {**MANIFEST, "space": {**MANIFEST["space"], "analysis": {"target_train_loss": 0.35, "permutations": 99,
                                                                 "calibration_studies": 0}}}


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def set_cell(path: Path, line: int, column: str, value: str) -> None:
    """Write ``value`` into one cell (line numbers as an editor shows them: the header is line 1)."""
    text = lines(path)
    header = text[0].rstrip("\n").split(",")
    cells = text[line - 1].rstrip("\n").split(",")
    cells[header.index(column)] = value
    text[line - 1] = ",".join(cells) + "\n"
    path.write_text("".join(text), encoding="utf-8")


def line_of(path: Path, trial_id: str, epoch: int | None = None) -> int:
    """The line of a trial's row (of its given epoch in epochs.csv)."""
    for number, text in enumerate(lines(path), start=1):
        cells = text.split(",")
        if cells[0] == trial_id and (epoch is None or cells[tables.EPOCH_COLUMNS.index("epoch")] == str(epoch)):
            return number
    raise AssertionError(f"no row of {trial_id}")


def edit_epochs_repeat_cell(run: Path) -> str:
    line = line_of(run / "epochs.csv", "r1", 2)
    set_cell(run / "epochs.csv", line, "val_loss", "abc")
    return rf"epochs\.csv: line {line}, column 'val_loss': 'abc' is not a number$"


def edit_epochs_tune_cell(run: Path) -> str:
    line = line_of(run / "epochs.csv", "t3", 3)
    set_cell(run / "epochs.csv", line, "train_loss", "0.41x")
    return rf"epochs\.csv: line {line}, column 'train_loss': '0\.41x' is not a number$"


def edit_trials_cell(run: Path) -> str:
    set_cell(run / "trials.csv", 3, "best_val_loss", "1;5")
    return r"trials\.csv: line 3, column 'best_val_loss': '1;5' is not a number$"


def edit_duplicate_epoch(run: Path) -> str:
    text = lines(run / "epochs.csv")
    first = line_of(run / "epochs.csv", "t4", 2)
    (run / "epochs.csv").write_text("".join(text + [text[first - 1]]), encoding="utf-8")
    return (rf"epochs\.csv: line {len(text) + 1}, columns 'trial_id', 'phase', 'epoch': tune trial 't4' has "
            rf"epoch 2 twice \(first on line {first}\)$")


def edit_unknown_phase(run: Path) -> str:
    set_cell(run / "epochs.csv", 5, "phase", "warmup")
    return r"epochs\.csv: line 5, column 'phase': 'warmup' is not allowed; allowed: 'tune', 'repeat'$"


def edit_unknown_status(run: Path) -> str:
    set_cell(run / "trials.csv", 4, "status", "done")
    return r"trials\.csv: line 4, column 'status': 'done' is not allowed; allowed: 'completed', 'diverged', 'failed'$"


def edit_missing_column(run: Path) -> str:
    epoch_rows().drop(columns=["val_loss"]).to_csv(run / "epochs.csv", index=False)
    return r"epochs\.csv: lacks column\(s\): val_loss \(the header is line 1\)$"


def edit_empty_file(run: Path) -> str:
    (run / "epochs.csv").write_bytes(b"")
    return r"epochs\.csv: is empty"


def edit_header_only(run: Path) -> str:
    (run / "trials.csv").write_text(lines(run / "trials.csv")[0], encoding="utf-8")
    return r"trials\.csv: has a header but no rows yet"


def edit_torn_header(run: Path) -> str:
    (run / "epochs.csv").write_text("trial_id,pha", encoding="utf-8")
    return r"epochs\.csv: holds only a torn first line"


def edit_manifest_not_object(run: Path) -> str:
    (run / "manifest.json").write_text("[1, 2, 3]", encoding="utf-8")
    return r"manifest\.json: is not a JSON object \(it holds a list\)$"


def edit_manifest_not_utf8(run: Path) -> str:
    (run / "manifest.json").write_bytes(b'{"study": "\xff"}')
    return r"manifest\.json: not valid JSON \(byte 11 is not UTF-8 text\)$"


def edit_manifest_bad_range(run: Path) -> str:
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    manifest["space"]["hyperparameters"]["weight_decay"]["min"] = "tiny"
    (run / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return r"manifest\.json: key 'space\.hyperparameters\.weight_decay\.min': expected a finite number, got 'tiny'$"


def edit_manifest_bad_counts(run: Path) -> str:
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    manifest["dataset"]["class_counts"] = 5
    (run / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return r"manifest\.json: key 'dataset\.class_counts': expected a mapping, got 5$"


def edit_too_many_fields(run: Path) -> str:
    text = lines(run / "epochs.csv")
    text[3] = text[3].rstrip("\n") + ",extra\n"
    (run / "epochs.csv").write_text("".join(text), encoding="utf-8")
    width = len(tables.EPOCH_COLUMNS)
    return rf"epochs\.csv: line 4: {width + 1} fields, but the header \(line 1\) has {width}$"


def edit_short_row_inside(run: Path) -> str:
    text = lines(run / "epochs.csv")
    text[4] = ",".join(text[4].split(",")[:5]) + "\n"
    (run / "epochs.csv").write_text("".join(text), encoding="utf-8")
    return rf"epochs\.csv: line 5: 5 fields, but the header \(line 1\) has {len(tables.EPOCH_COLUMNS)}$"


def edit_fractional_epoch(run: Path) -> str:
    set_cell(run / "epochs.csv", 6, "epoch", "2.5")
    return r"epochs\.csv: line 6, column 'epoch': '2\.5' is not a whole number >= 1 and <= 10000$"


def edit_empty_depth(run: Path) -> str:
    set_cell(run / "epochs.csv", 2, "depth", "")
    return r"epochs\.csv: line 2, column 'depth': is empty; a number is needed$"


def edit_infinite_hyperparameter(run: Path) -> str:
    set_cell(run / "epochs.csv", 9, "dropout", "inf")
    return r"epochs\.csv: line 9, column 'dropout': 'inf' is not a finite number$"


def edit_unclosed_quote(run: Path) -> str:
    text = lines(run / "trials.csv")
    text[2] = '"' + text[2]
    (run / "trials.csv").write_text("".join(text), encoding="utf-8")
    return rf"trials\.csv: lines 3-{len(text)}: not a valid CSV row \(unexpected end of data\)$"


def edit_classes_cell(run: Path) -> str:
    (run / "classes.csv").write_text("trial_id,phase,class_name,precision,recall,f1,support\n"
                                     "t1,tune,N,0.9,0.95,0.92,80\nt1,tune,~,0.5,high,0.33,8\n", encoding="utf-8")
    return r"classes\.csv: line 3, column 'recall': 'high' is not a number$"


def edit_classes_duplicate(run: Path) -> str:
    (run / "classes.csv").write_text("trial_id,phase,class_name,precision,recall,f1,support\n"
                                     "t1,tune,N,0.9,0.95,0.92,80\nt1,tune,N,0.5,0.2,0.33,8\n", encoding="utf-8")
    return r"classes\.csv: lists class 'N' of tuning trial 't1' more than once \(line 3, first on line 2\)$"


BAD_TABLES = [edit_epochs_repeat_cell, edit_epochs_tune_cell, edit_trials_cell, edit_duplicate_epoch,
              edit_unknown_phase, edit_unknown_status, edit_missing_column, edit_empty_file, edit_header_only,
              edit_torn_header, edit_manifest_not_object, edit_manifest_not_utf8, edit_manifest_bad_range,
              edit_manifest_bad_counts, edit_too_many_fields, edit_short_row_inside, edit_fractional_epoch,
              edit_empty_depth, edit_infinite_hyperparameter, edit_unclosed_quote, edit_classes_cell,
              edit_classes_duplicate]


@pytest.mark.parametrize("edit", BAD_TABLES, ids=[edit.__name__[5:] for edit in BAD_TABLES])
def test_a_bad_table_is_one_line_naming_file_line_and_column_and_nothing_is_written(tmp_path, edit):
    run = write_run(tmp_path / "runs" / "toy-study", manifest=QUICK)
    expected = edit(run)
    reports = tmp_path / "reports"
    (reports / "toy-study").mkdir(parents=True)
    (reports / "toy-study" / "report.md").write_text("the previous report", encoding="utf-8")
    before = snapshot(tmp_path)

    status, stdout, stderr = run_main(["report", "toy-study", "--runs-dir", str(run.parent),
                                       "--reports-dir", str(reports)])
    assert status == 2 and stdout == "", stderr
    assert len(stderr.splitlines()) == 1 and "Traceback" not in stderr
    message = stderr.strip().removeprefix("study: error: ")
    assert message.startswith(str(run) + "/"), message
    assert re.search(expected, message), message
    assert snapshot(tmp_path) == before  # nothing written: no report, no temporary directory, no lock file


def test_the_issues_repeat_row_crash_is_now_bad_input(tmp_path):
    """The reported crash: a non-numeric loss in a repeat-phase row, after the isolation table was written."""
    run = write_run(tmp_path / "run", manifest=QUICK)
    edit_epochs_repeat_cell(run)
    with pytest.raises(BadInput, match=r"epochs\.csv: line \d+, column 'val_loss': 'abc' is not a number"):
        build_report(run, tmp_path / "report")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["run"]


def test_torn_rows_diverged_and_epochless_trials_build_a_report_that_lists_them(tmp_path):
    """Problems a user can live with: the report builds (here while the study is still running) and says so."""
    epochs = epoch_rows()
    epochs.loc[(epochs["trial_id"] == "t2") & (epochs["epoch"] == 4), "val_loss"] = float("inf")
    trials = trial_rows()
    no_epochs = trials.loc[trials["trial_id"] == "t3"].assign(trial_id="t8")
    trials = pd.concat([trials.iloc[:-1], no_epochs, trials.iloc[-1:]], ignore_index=True)
    run = write_run(tmp_path / "runs" / "toy-study", epochs, trials, manifest={**QUICK, "finished": None})
    epochs_text = (run / "epochs.csv").read_text(encoding="utf-8")
    (run / "epochs.csv").write_text(epochs_text[:-7], encoding="utf-8")  # the last row torn mid-number
    trial_lines = lines(run / "trials.csv")
    trial_lines[-1] = "r1,repeat,compl\n"  # the last row cut to 3 fields
    (run / "trials.csv").write_text("".join(trial_lines), encoding="utf-8")
    epoch_count = len(epochs_text.splitlines())

    with open(tmp_path / "runs" / ".toy-study.lock", "a") as lock:  # as the runner holds it while it runs
        fcntl.flock(lock, fcntl.LOCK_EX)
        status, stdout, stderr = run_main(["report", "toy-study", "--runs-dir", str(tmp_path / "runs"),
                                           "--reports-dir", str(tmp_path / "reports")])
    assert status == 0, stderr
    text = (tmp_path / "reports" / "toy-study" / "report.md").read_text(encoding="utf-8")
    assert text.index(f"**{RUNNING_NOTE}**") < text.index("## Verdict")
    problems = text.split("## Data problems")[1].split("\n## ")[0]
    expected = [
        f"epochs.csv: line {epoch_count} is torn (it has no line end",
        f"trials.csv: line {len(trial_lines)} is torn (3 of {len(tables.TRIAL_COLUMNS)} fields",
        "1 trial(s) have epoch rows but no trials.csv row (still running or cut off), left out: repeat r1",
        "1 trial(s) in trials.csv have no epoch rows, counted as crashed: t8",
        "2 trial(s) diverged (a NaN or infinite loss): tune t2 at epoch 4, tune t6 at epoch 3",
    ]
    for line in expected:
        assert line in problems, problems
    assert problems.index(expected[0]) < problems.index(expected[2])  # problems found while reading come first
    assert sorted(path.name for path in (tmp_path / "reports").iterdir()) == ["index.html", "index.md", "toy-study"]


def test_the_note_at_the_top_comes_from_the_lock_and_the_manifest(tmp_path):
    runs = tmp_path / "runs"
    finished = write_run(runs / "done", manifest=QUICK)
    stopped = write_run(runs / "stopped", manifest={**QUICK, "finished": None})
    unrecorded = write_run(runs / "old", manifest={key: value for key, value in QUICK.items() if key != "finished"})
    before = snapshot(runs)
    assert study_note(finished, QUICK) is None
    assert study_note(stopped, {**QUICK, "finished": None}) == STOPPED_NOTE
    assert study_note(unrecorded, {}) == STOPPED_NOTE
    assert snapshot(runs) == before  # no lock file is created by looking

    lock_path = runs / ".done.lock"
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        assert study_note(finished, QUICK) == RUNNING_NOTE
        assert study_note(finished, QUICK, runs_dir=tmp_path) is None  # another runs directory: another lock
    assert study_note(finished, QUICK) is None  # released: the note looked without keeping the lock

    analysis, note = analyse_run(stopped)
    assert note == STOPPED_NOTE
    page = render_markdown(analysis, ReportContext.from_manifest(analysis.manifest), partial_note=note)
    assert page.index(f"**{STOPPED_NOTE}**") < page.index("## Verdict")


def test_a_report_never_replaces_its_own_study(tmp_path):
    run = write_run(tmp_path / "runs" / "toy-study", manifest=QUICK)
    before = snapshot(tmp_path)
    for reports in (tmp_path / "runs", tmp_path / "runs" / "toy-study" / ".."):
        status, _, stderr = run_main(["report", "toy-study", "--runs-dir", str(tmp_path / "runs"),
                                      "--reports-dir", str(reports)])
        assert status == 2 and "the report would replace the study" in stderr, stderr
    with pytest.raises(BadInput, match="a folder holding the study"):
        build_report(run, tmp_path)
    assert snapshot(tmp_path) == before


def test_a_reports_directory_that_cannot_be_made_is_bad_input(tmp_path):
    write_run(tmp_path / "runs" / "toy-study", manifest=QUICK)
    (tmp_path / "afile").write_text("", encoding="utf-8")
    status, _, stderr = run_main(["report", "toy-study", "--runs-dir", str(tmp_path / "runs"),
                                  "--reports-dir", str(tmp_path / "afile" / "reports")])
    assert status == 2 and len(stderr.splitlines()) == 1, stderr
    assert "afile/reports: cannot create the report there" in stderr


def test_the_command_line_says_bad_arguments_in_one_line():
    status, _, stderr = run_main([])
    assert status == 2 and stderr.strip().endswith("(see python -m study --help)"), stderr
    status, _, stderr = run_main(["report"])
    assert status == 2 and stderr.strip().endswith("(see python -m study report --help)"), stderr
