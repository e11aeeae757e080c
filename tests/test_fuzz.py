"""Property-based tests (hypothesis): search spaces, command lines and run tables, valid and broken.

For every generated input: no Python traceback, exit status 0 or 2 (1, an
internal failure, fails the test), one line on stderr for bad input, and never a
partial write: the reports directory is either unchanged or holds a complete new
report, and the runs directory of a refused ``run`` is untouched. Nothing here
trains: every generated ``run`` command line carries at least one argument that
is refused before training starts, and :func:`study.runner._search` (where
training begins) is replaced by a guard that fails the test if it is ever
reached. Commands run in-process through :func:`study.cli.main` (a few through a
real ``python -m study`` subprocess) and examples are few (``max_examples``) so
the file runs in well under a minute on two cores.
"""
from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import study.runner
from study import tables
from study.config import load_space
from study.errors import BadInput
from study.report import analyse_run
from tests.conftest import TINY_SPACE, assert_clean_exit, run_cli, run_main, snapshot
from tests.test_report import MANIFEST, write_run

#: FUZZ_EXAMPLES=500 fuzzes longer (by hand, when the readers or the checks change).
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
FAST = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
#: Full report builds write eight figures (seconds each on a loaded 2-core machine): few examples.
FEW = settings(max_examples=max(EXAMPLES // 5, 1), deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: Analysis settings that keep a report build fast (no calibration simulation, the fewest permutations).
QUICK_MANIFEST = {**MANIFEST, "space": {**MANIFEST["space"],
                                       "analysis": {"target_train_loss": 0.35, "permutations": 99,
                                                    "calibration_studies": 0}}}


class WouldTrain(AssertionError):
    """A fuzzed `run` command line got past every check: it would have trained a model."""


@pytest.fixture(scope="module", autouse=True)
def never_train():
    def refuse(*args, **kwargs):
        raise WouldTrain("a generated run command line reached training")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(study.runner, "_search", refuse)
        yield


# ---------------------------------------------------------------- search spaces

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-10**12, max_value=10**12),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=4), st.dictionaries(st.text(max_size=6), SCALARS, max_size=3))
SECTIONS = ["name", "dataset", "tuner", "training", "repeats", "analysis", "hyperparameters"]
FIELDS = {
    "tuner": ["name", "trials_per_cell", "seed", "hyperband_factor", "hyperband_iterations",
              "max_consecutive_failures"],
    "dataset": ["name", "parameters"],
    "repeats": ["seeds"],
    "training": ["train_eval_size", "class_weights"],
    "analysis": ["trained_above_chance", "onset_tolerance", "alpha", "permutations", "target_train_loss"],
    "hyperparameters": ["architecture", "depth", "dropout", "weight_decay", "learning_rate", "width", "epochs",
                        "batch_size", "kernel_size", "recurrent_dropout", "weight_decay_type", "bogus"],
}
SPEC_KEYS = ["role", "value", "values", "min", "max", "step", "log"]


@st.composite
def space_documents(draw) -> str:
    """A search-space YAML text: the tiny valid space, then 0-4 edits, sometimes a torn or garbled text."""
    document = json.loads(json.dumps(TINY_SPACE))
    for _ in range(draw(st.integers(0, 4))):
        section = draw(st.sampled_from(SECTIONS + ["extra_key"]))
        edit = draw(st.sampled_from(["replace", "delete", "field", "spec"]))
        if edit == "replace":
            document[section] = draw(VALUES)
        elif edit == "delete":
            document.pop(section, None)
        elif isinstance(document.get(section), dict) and section in FIELDS:
            field = draw(st.sampled_from(FIELDS[section]))
            if edit == "spec" and section == "hyperparameters" and isinstance(document[section].get(field), dict):
                document[section][field][draw(st.sampled_from(SPEC_KEYS))] = draw(VALUES)
            else:
                document[section][field] = draw(VALUES)
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    garble = draw(st.sampled_from(["none", "none", "truncate", "insert", "duplicate_line"]))
    if garble == "truncate":
        text = text[: draw(st.integers(0, len(text)))]
    elif garble == "insert":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.text(min_size=1, max_size=6)) + text[at:]
    elif garble == "duplicate_line":
        lines = text.splitlines(keepends=True)
        index = draw(st.integers(0, len(lines) - 1))
        lines.insert(index, lines[index])
        text = "".join(lines)
    return text


@FAST
@given(text=space_documents())
def test_any_search_space_loads_or_is_one_line_of_bad_input(text):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "space.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            space = load_space(path)
        except BadInput as error:
            message = str(error)
            assert message.startswith(str(path)) and message, message
            assert "Traceback" not in message
        else:
            assert space.cells() and space.name


# ---------------------------------------------------------------- `run` command lines

GOOD_OPTIONS = {
    "--seed": ["3"], "--seeds": ["1"], "--trials": ["2"], "--name": ["fuzzed"], "--quiet": [],
    "--tuner": ["random"], "--overwrite": [],
}
#: Arguments that are refused before training starts, whatever else is on the command line.
BAD_OPTIONS = [
    ["--bogus"], ["--trials"], ["--trials", "abc"], ["--trials", "0"], ["--trials", "-3"], ["--trials", "10001"],
    ["--trials", "99999999999999999999999"], ["--epochs", "0"], ["--epochs", "1e3"], ["--epochs", "10001"],
    ["--seeds", "-1"], ["--seeds", "1001"], ["--seed", "-1"], ["--seed", "x"], ["--name", ""], ["--name", "a b"],
    ["--name", "../escape"], ["--name", "x\n"], ["--name", "é"], ["--tuner", "nope"], ["--tuner", ""],
    ["--dataset", "nope"], ["--dataset", "ucr:"], ["--dataset", "ucr:/does/not/exist"],
    ["--data-dir", "/does/not/exist"], ["--runs-dir"], ["-x"], ["--epochs", "5", "--tuner", "grid", "--trials", "2"],
]
SPACE_ARGUMENTS = ["valid", "missing", "directory", "garbled", "empty", "binary"]


@st.composite
def run_command_lines(draw) -> tuple[str, list[str]]:
    """(the space argument's kind, the options): at least one option, or the space itself, is refused."""
    kind = draw(st.sampled_from(SPACE_ARGUMENTS))
    bad = draw(st.sampled_from(BAD_OPTIONS)) if kind == "valid" else draw(st.sampled_from([[], *BAD_OPTIONS]))
    used = {argument for argument in bad if argument.startswith("-")}
    flags = draw(st.lists(st.sampled_from(sorted(set(GOOD_OPTIONS) - used)), unique=True, max_size=3))
    options = [item for flag in flags for item in (flag, *GOOD_OPTIONS[flag])]
    return kind, [*bad, *options] if draw(st.booleans()) else [*options, *bad]


def space_argument(kind: str, directory: Path) -> str:
    path = directory / f"{kind}.yaml"
    if kind == "valid":
        path.write_text(yaml.safe_dump(TINY_SPACE, sort_keys=False), encoding="utf-8")
    elif kind == "directory":
        path.mkdir()
    elif kind == "garbled":
        path.write_text("name: [tiny\nhyperparameters: {", encoding="utf-8")
    elif kind == "empty":
        path.write_text("", encoding="utf-8")
    elif kind == "binary":
        path.write_bytes(b"\xff\xfe\x00garbage\x81")
    return str(path)


@FAST
@given(command=run_command_lines())
def test_refused_run_command_lines_exit_2_and_touch_nothing(command):
    kind, options = command
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        runs = root / "runs"
        existing = runs / "tiny"  # a study already there: a refused command must leave it as it was
        existing.mkdir(parents=True)
        (existing / "manifest.json").write_text('{"study": "tiny"}', encoding="utf-8")
        before = snapshot(runs)
        status, _, stderr = run_main(["run", space_argument(kind, root), "--runs-dir", str(runs), *options])
        assert_clean_exit(status, stderr)
        assert status == 2, stderr
        assert snapshot(runs) == before


# ---------------------------------------------------------------- resuming a study whose tables were damaged

RESUMED_TABLES = {tables.EPOCHS_FILE: tables.EPOCH_COLUMNS, tables.TRIALS_FILE: tables.TRIAL_COLUMNS,
                  tables.CLASSES_FILE: tables.CLASS_COLUMNS}


@st.composite
def damaged_table(draw, columns: list[str]) -> bytes | None:
    """A table file as a kill, an older version or a hand edit may leave it (None: no file)."""
    header = ",".join(columns)
    rows = "".join(",".join(["1"] * len(columns)) + "\r\n" for _ in range(draw(st.integers(0, 3))))
    kind = draw(st.sampled_from(["absent", "good", "torn", "prefix", "prefix_rows", "other", "rows_only", "bytes",
                                 "empty"]))
    cut = draw(st.integers(1, len(header) - 1))
    return {
        "absent": None, "empty": b"", "good": (header + "\r\n" + rows).encode(),
        "torn": header[:cut].encode(), "prefix": (header[:cut] + "\r\n").encode(),
        "prefix_rows": (header[:cut] + "\r\n" + rows).encode(),
        "other": (draw(st.text(min_size=1, max_size=20).filter(lambda text: "\n" not in text and "\r" not in text))
                  + "\r\n" + rows).encode("utf-8", "surrogatepass"),
        "rows_only": rows.encode(), "bytes": draw(st.binary(min_size=1, max_size=20)),
    }[kind]


@pytest.fixture(scope="module")
def previous_manifest(tmp_path_factory) -> str:
    """The manifest of the tiny study as it started (its space and its data's hash), as JSON text."""
    from study.datasets import load_dataset
    from tests.conftest import write_space

    space = load_space(write_space(tmp_path_factory.mktemp("space")))
    dataset = load_dataset(space.dataset.name, dict(space.dataset.parameters))
    return json.dumps({"study": space.name, "space": space.to_dict(), "dataset": dataset.describe(),
                       "finished": None}, default=str)


@FAST
@given(files=st.fixed_dictionaries({name: damaged_table(columns) for name, columns in RESUMED_TABLES.items()}))
def test_a_resumed_study_refuses_damaged_tables_or_continues_under_the_current_headers(previous_manifest, files):
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        space_file = root / "tiny.yaml"
        space_file.write_text(yaml.safe_dump(TINY_SPACE, sort_keys=False), encoding="utf-8")
        run_dir = root / "runs" / "tiny"
        run_dir.mkdir(parents=True)
        (run_dir / tables.MANIFEST_FILE).write_text(previous_manifest, encoding="utf-8")
        for name, content in files.items():
            if content is not None:
                (run_dir / name).write_bytes(content)
        before = snapshot(run_dir)
        try:
            status, _, stderr = run_main(["run", str(space_file), "--runs-dir", str(root / "runs"), "--quiet"])
        except WouldTrain:  # every check passed: the search would start now
            for name, columns in RESUMED_TABLES.items():
                path = run_dir / name
                if path.exists() and path.stat().st_size:
                    text = path.read_bytes().decode("utf-8")
                    assert text.startswith(",".join(columns) + "\r\n"), (name, text[:80])
                    old = before[name].decode("utf-8").splitlines()[1:]  # the rows, repaired or not
                    assert text.splitlines()[1:] == [line for line in old if line], name
            return
        assert_clean_exit(status, stderr)
        assert status == 2 and "use --overwrite" in stderr, stderr
        assert snapshot(run_dir) == before


# ---------------------------------------------------------------- `report` command lines

NAMES = st.one_of(st.sampled_from(["toy-study", "missing", "", "a/b", "..", "-x", "x\n", "é", " "]),
                  st.text(max_size=10))


@FAST
@given(name=NAMES, extra=st.lists(st.sampled_from([
    "--compare", "lstm", "cnn", "gru", "--runs-dir", "--reports-dir", "--bogus", "-h", "x"]), max_size=4))
def test_report_command_lines_never_crash(name, extra):
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        (root / "runs").mkdir()
        (root / "afile").write_text("not a directory", encoding="utf-8")
        before = snapshot(root)
        status, _, stderr = run_main(["report", name, "--runs-dir", str(root / "runs"),
                                      "--reports-dir", str(root / "afile" / "reports"), *extra])
        assert_clean_exit(status, stderr)
        assert snapshot(root) == before  # no study there: nothing may be written anywhere


# ---------------------------------------------------------------- run tables

CELLS = st.one_of(st.sampled_from(["abc", "", "nan", "NaN", "inf", "-inf", "1e999", "-1", "0", "1.5", "2", "tune",
                                   "repeat", "completed", "diverged", "failed", "\x00", "é", '"', ",", "x\ny",
                                   "99999999999999999999"]),
                  st.text(max_size=6))
TABLE_FILES = [tables.EPOCHS_FILE, tables.TRIALS_FILE, tables.CLASSES_FILE]
JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8)),
                    lambda children: st.one_of(st.lists(children, max_size=3),
                                               st.dictionaries(st.text(max_size=8), children, max_size=3)),
                    max_leaves=8)


def _rows(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


def _write_rows(path: Path, rows: list[list[str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)


@st.composite
def corruptions(draw) -> list[tuple]:
    """1-3 edits of a run directory: cells, rows, columns, bytes or the manifest."""
    edits = []
    for _ in range(draw(st.integers(1, 3))):
        target = draw(st.sampled_from([*TABLE_FILES, tables.MANIFEST_FILE]))
        if target == tables.MANIFEST_FILE:
            edit = draw(st.sampled_from(["json", "key", "delete", "truncate", "finished"]))
            key = draw(st.sampled_from(["space", "dataset", "finished", "study", "nothing"]))
            edits.append((target, edit, key, draw(JSON), draw(st.floats(0, 1))))
            continue
        edit = draw(st.sampled_from(["cell", "cell", "cell", "truncate", "drop_column", "duplicate_row",
                                     "delete_row", "short_row", "bytes", "empty", "header_only"]))
        edits.append((target, edit, draw(st.floats(0, 1)), draw(st.floats(0, 1)), draw(CELLS),
                      draw(st.binary(min_size=1, max_size=8))))
    return edits


def apply_corruption(run: Path, edit: tuple) -> None:
    target = run / edit[0]
    if edit[0] == tables.MANIFEST_FILE:
        _, kind, key, value, fraction = edit
        try:
            manifest = json.loads(target.read_text(encoding="utf-8"))
        except ValueError:  # torn or replaced by an earlier edit
            manifest = None
        if not isinstance(manifest, dict) or kind == "json":
            target.write_text(json.dumps(value), encoding="utf-8")
        elif kind == "key":
            manifest[key] = value
            target.write_text(json.dumps(manifest), encoding="utf-8")
        elif kind == "delete":
            manifest.pop(key, None)
            target.write_text(json.dumps(manifest), encoding="utf-8")
        elif kind == "finished":
            manifest["finished"] = None
            target.write_text(json.dumps(manifest), encoding="utf-8")
        else:
            text = target.read_text(encoding="utf-8")
            target.write_text(text[: int(fraction * len(text))], encoding="utf-8")
        return
    _, kind, where, which, cell, data = edit
    if not target.is_file():
        return
    raw = target.read_bytes()
    if kind in ("truncate", "bytes", "empty"):
        at = int(where * len(raw))
        target.write_bytes(raw[:at] if kind == "truncate" else raw[:at] + data + raw[at:] if kind == "bytes" else b"")
        return
    try:
        rows = _rows(target)
    except (UnicodeDecodeError, csv.Error):
        return
    if len(rows) < 2:
        return
    row = 1 + int(where * (len(rows) - 1)) % (len(rows) - 1)
    column = int(which * len(rows[0])) % len(rows[0])
    if kind == "cell" and column < len(rows[row]):
        rows[row][column] = cell
    elif kind == "drop_column":
        rows = [[value for index, value in enumerate(line) if index != column] for line in rows]
    elif kind == "duplicate_row":
        rows.insert(row, list(rows[row]))
    elif kind == "delete_row":
        del rows[row]
    elif kind == "short_row":
        rows[row] = rows[row][: column]
    elif kind == "header_only":
        rows = rows[:1]
    _write_rows(target, rows)


def corrupted_run(root: Path, edits: list[tuple]) -> Path:
    run = write_run(root / "runs" / "toy-study", manifest=QUICK_MANIFEST)
    rows = [["trial_id", "phase", "class_name", "precision", "recall", "f1", "support"],
            ["t1", "tune", "N", "0.9", "0.95", "0.92", "80"], ["t1", "tune", "~", "0.5", "0.25", "0.33", "8"],
            ["t3", "tune", "N", "0.91", "1.0", "0.95", "80"], ["t3", "tune", "~", "0.0", "0.0", "0.0", "8"]]
    _write_rows(run / tables.CLASSES_FILE, rows)
    for edit in edits:
        apply_corruption(run, edit)
    return run


@FAST
@given(edits=corruptions())
def test_corrupted_tables_are_one_line_of_bad_input_or_an_analysis(edits):
    """Reading and analysing (everything but writing the files) never fails but with a BadInput naming a file."""
    with tempfile.TemporaryDirectory() as directory:
        run = corrupted_run(Path(directory), edits)
        try:
            analysis, _ = analyse_run(run)
        except BadInput as error:
            message = str(error)
            assert "\n" not in message, message
            assert message.startswith(str(run)), message
        else:
            assert len(analysis.trials) > 0


@FEW
@given(edits=corruptions())
def test_the_report_command_on_corrupted_tables_replaces_the_report_whole_or_not_at_all(edits):
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        run = corrupted_run(root, edits)
        report_dir = root / "reports" / run.name
        report_dir.mkdir(parents=True)
        (report_dir / "report.md").write_text("the previous report", encoding="utf-8")
        before = snapshot(root / "reports")
        status, stdout, stderr = run_main(["report", run.name, "--runs-dir", str(run.parent),
                                           "--reports-dir", str(root / "reports")])
        assert_clean_exit(status, stderr)
        if status == 2:
            assert snapshot(root / "reports") == before
        else:
            assert sorted(path.name for path in (root / "reports").iterdir()) == ["index.html", "index.md", run.name]  # no leftovers
            assert (report_dir / "report.md").read_text(encoding="utf-8").startswith("# Study report")
            assert (report_dir / "report.html").is_file() and (report_dir / "figures").is_dir()
            assert "report written" in stdout


# ---------------------------------------------------------------- as a user runs it


def test_a_few_real_command_lines_end_in_one_line(tmp_path):
    """A real `python -m study` process: one line on stderr, status 2, no traceback, nothing written."""
    run = write_run(tmp_path / "runs" / "toy-study", manifest=QUICK_MANIFEST)
    epochs = run / tables.EPOCHS_FILE
    epochs.write_text(epochs.read_text(encoding="utf-8").replace(",0.7,", ",0.7x,", 1), encoding="utf-8")
    commands = [
        [],
        ["run", str(tmp_path / "missing.yaml"), "--trials", "2"],
        ["report", "toy-study", "--runs-dir", str(tmp_path / "runs"), "--reports-dir", str(tmp_path / "reports")],
    ]
    for arguments in commands:
        result = run_cli(*arguments, cwd=tmp_path, timeout=120)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "epochs.csv: line 7, column 'val_loss': '0.7x' is not a number" in result.stderr
    assert not (tmp_path / "reports").exists()
