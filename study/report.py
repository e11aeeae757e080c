"""The Markdown report of a study: a function of the run's tables only.

:func:`build_report` reads ``runs/<study>/epochs.csv``, ``trials.csv`` and
``manifest.json``, recomputes every overfitting measure from the epochs (it does
not trust the measure columns of trials.csv), builds small frames with pure
functions (:func:`isolation_table`, :func:`median_table`,
:func:`boundary_table`, :func:`failed_table`, and :func:`per_class_table` from
``classes.csv`` when the run has one) and writes them as CSV files next to
``report.md``. Nothing else (no clock, no paths, no model) goes in, so a copy
of the run directory anywhere rebuilds the same report.
"""
from __future__ import annotations

import html as html_module
import json
import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from study import tables
from study.errors import BadInput
from study.measures import DEFAULT_ONSET_TOLERANCE, MEASURE_COLUMNS, check_tolerance, measures_table

REPORT_FILE = "report.md"
ISOLATION_FILE = "isolation.csv"
MEDIANS_FILE = "medians.csv"
BOUNDARIES_FILE = "boundaries.csv"
FAILED_FILE = "failed.csv"
PER_CLASS_FILE = "per_class.csv"
HTML_FILE = "report.html"

#: Phase whose trials the isolation and median tables use.
TUNE_PHASE = "tune"

#: A best value within this fraction of a min/max range from an edge sits on a boundary.
BOUNDARY_FRACTION = 0.05

#: classes.csv columns the per-class section needs.
CLASS_REQUIRED_COLUMNS = ["trial_id", "class_name", "precision", "recall", "f1", "support"]

#: trials.csv columns summarising a trial's test scores over classes, shown beside the per-class scores.
TEST_SUMMARY_COLUMNS = ["test_accuracy", "test_macro_f1", "test_balanced_accuracy"]

#: trials.csv columns the report needs besides the scientific and nuisance hyperparameters.
TRIAL_REQUIRED_COLUMNS = ["trial_id", "status", "parameter_count", "test_accuracy"]

_MEDIAN_MEASURES = ["best_epoch", "best_val_loss", "gap_at_best", "final_gap", "gap_growth"]
_RUN_HINT = "run `python -m study run ...` first"


# ---------------------------------------------------------------- the search space


def hyperparameters_with_role(space: dict[str, Any], role: str) -> list[str]:
    """Names of the space's hyperparameters with the given role, in the space's order."""
    return [name for name, spec in space["hyperparameters"].items() if spec.get("role") == role]


def fixed_values(space: dict[str, Any]) -> dict[str, Any]:
    """What the study held fixed: {name: value} for role 'fixed'."""
    fixed = {}
    for name in hyperparameters_with_role(space, "fixed"):
        spec = space["hyperparameters"][name]
        if "value" in spec:
            fixed[name] = spec["value"]
        elif len(spec.get("values", [])) == 1:
            fixed[name] = spec["values"][0]
        else:
            fixed[name] = describe_range(spec)
    return fixed


def describe_range(spec: dict[str, Any]) -> str:
    """A hyperparameter's search range as one short string."""
    if "values" in spec:
        return "[" + ", ".join(str(value) for value in spec["values"]) + "]"
    if "min" in spec and "max" in spec:
        text = f"{spec['min']}..{spec['max']}"
        if spec.get("step") is not None:
            text += f" step {spec['step']}"
        if spec.get("log"):
            text += " (log)"
        return text
    if "value" in spec:
        return str(spec["value"])
    return json.dumps(spec, sort_keys=True, default=str)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def boundary_position(value: Any, spec: dict[str, Any]) -> tuple[str, float, bool, str]:
    """Where a value sits in a hyperparameter's range: (kind, position, on_boundary, edge).

    ``values`` lists of numbers: on a boundary when equal to the lowest or highest
    listed value (the first or last of the usual sorted list); position is the
    index in the list scaled to 0..1. Lists of names (e.g. a penalty type) have no
    order, so they never sit on a boundary. ``min``/``max`` ranges: the relative
    position in the range, in log space when ``"log": true``; on a boundary when
    within :data:`BOUNDARY_FRACTION` of either edge. Lists or ranges with a single
    value are never on a boundary (there is nothing to widen towards).
    """
    if "values" in spec:
        listed = list(spec["values"])
        if not listed or not all(_is_number(item) for item in listed) or not _is_number(value):
            return "categorical", math.nan, False, ""
        low, high = min(listed), max(listed)
        matches = [index for index, item in enumerate(listed) if math.isclose(item, value, rel_tol=1e-9, abs_tol=1e-12)]
        position = matches[0] / (len(listed) - 1) if matches and len(listed) > 1 else math.nan
        if low == high:
            return "values", position, False, ""
        if math.isclose(value, low, rel_tol=1e-9, abs_tol=1e-12):
            return "values", position, True, "lower"
        if math.isclose(value, high, rel_tol=1e-9, abs_tol=1e-12):
            return "values", position, True, "upper"
        return "values", position, False, ""
    if "min" in spec and "max" in spec:
        low, high, value = float(spec["min"]), float(spec["max"]), float(value)
        kind = "log range" if spec.get("log") else "range"
        if spec.get("log"):
            if low <= 0 or value <= 0:
                raise ValueError(f"log range {low}..{high} needs positive values, got {value}")
            low, high, value = math.log(low), math.log(high), math.log(value)
        if high <= low:
            return kind, math.nan, False, ""
        position = (value - low) / (high - low)
        if position <= BOUNDARY_FRACTION:
            return kind, position, True, "lower"
        if position >= 1 - BOUNDARY_FRACTION:
            return kind, position, True, "upper"
        return kind, position, False, ""
    return "fixed", math.nan, False, ""


# ---------------------------------------------------------------- pure frames


def tune_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of the tuning phase (all rows when the table has no phase column)."""
    if "phase" not in frame.columns:
        return frame
    return frame.loc[frame["phase"] == TUNE_PHASE]


def _sort_cells(frame: pd.DataFrame, space: dict[str, Any], columns: list[str]) -> pd.DataFrame:
    """Sort rows by the given hyperparameters in the order the space lists their values."""

    def order(series: pd.Series) -> pd.Series:
        spec = space["hyperparameters"].get(series.name, {})
        if "values" not in spec:
            return series
        rank = {value: index for index, value in enumerate(spec["values"])}
        return series.map(lambda value: rank.get(value, len(rank)))

    if not columns or frame.empty:
        return frame.reset_index(drop=True)
    return frame.sort_values(columns, key=order, kind="stable").reset_index(drop=True)


def tune_trials(measures: pd.DataFrame, trials: pd.DataFrame) -> pd.DataFrame:
    """Tuning trials from trials.csv joined with measures recomputed from the epochs.

    The measure columns of trials.csv are dropped, so the report relies on the
    epochs only; trials.csv supplies status, hyperparameters, parameter count and
    test metrics. Trials without epoch rows get missing measures.
    """
    trial_rows = tune_rows(trials)
    trial_rows = trial_rows.drop(columns=[column for column in MEASURE_COLUMNS if column in trial_rows.columns])
    if trial_rows["trial_id"].duplicated().any():
        duplicated = trial_rows.loc[trial_rows["trial_id"].duplicated(), "trial_id"].iloc[0]
        raise ValueError(f"trials.csv lists tuning trial {duplicated!r} more than once")
    measure_rows = tune_rows(measures)[["trial_id", *MEASURE_COLUMNS]]
    return trial_rows.merge(measure_rows, on="trial_id", how="left", validate="one_to_one")


def isolation_table(measures: pd.DataFrame, trials: pd.DataFrame, space: dict[str, Any]) -> pd.DataFrame:
    """Per cell (combination of scientific values): the best completed tuning trial.

    "Best" is the lowest best_val_loss, i.e. the nuisances tuned away; ties go to
    the lower trial id. One row per cell that has a completed trial with a finite
    validation loss, with its nuisance values, parameter count, measures and test
    accuracy.
    """
    scientific = hyperparameters_with_role(space, "scientific")
    nuisance = hyperparameters_with_role(space, "nuisance")
    joined = tune_trials(measures, trials)
    candidates = joined.loc[(joined["status"] == tables.COMPLETED) & joined["best_val_loss"].notna()]
    winners = candidates.sort_values([*scientific, "best_val_loss", "trial_id"], kind="stable")
    winners = winners.drop_duplicates(scientific, keep="first")
    columns = [*scientific, "trial_id", *nuisance, "parameter_count", *MEASURE_COLUMNS, "test_accuracy"]
    return _sort_cells(winners[columns], space, scientific)


def median_table(measures: pd.DataFrame, trials: pd.DataFrame, space: dict[str, Any]) -> pd.DataFrame:
    """Per cell: completed and failed tuning trials and medians over the completed ones.

    ``median_overfit_onset`` is the median over trials that have an onset;
    ``onset_fraction`` the share of completed trials (with a finite validation
    loss) that have one. Every cell seen in the tuning trials gets a row, also one
    whose trials all failed.
    """
    scientific = hyperparameters_with_role(space, "scientific")
    joined = tune_trials(measures, trials)
    cells = joined[scientific].drop_duplicates()
    completed = joined.loc[joined["status"] == tables.COMPLETED].copy()
    completed["has_onset"] = completed["overfit_onset"].notna().astype(float)
    completed["measured"] = completed["best_epoch"].notna()
    for column in [*_MEDIAN_MEASURES, "overfit_onset", "test_accuracy"]:
        completed[column] = pd.to_numeric(completed[column]).astype(float)
    grouped = completed.groupby(scientific, sort=False, dropna=False)
    medians = grouped[[*_MEDIAN_MEASURES, "overfit_onset", "test_accuracy"]].median()
    medians.columns = [f"median_{column}" for column in medians.columns]
    medians["completed_trials"] = grouped.size()
    measured = completed.loc[completed["measured"]].groupby(scientific, sort=False, dropna=False)["has_onset"]
    medians["onset_fraction"] = measured.mean()
    failed = joined.loc[joined["status"] == tables.FAILED].groupby(scientific, sort=False, dropna=False).size()
    table = cells.merge(medians.reset_index(), on=scientific, how="left")
    table = table.merge(failed.rename("failed_trials").reset_index(), on=scientific, how="left")
    for column in ["completed_trials", "failed_trials"]:
        table[column] = table[column].fillna(0).astype(np.int64)
    columns = [
        *scientific, "completed_trials", "failed_trials",
        *(f"median_{column}" for column in _MEDIAN_MEASURES),
        "median_overfit_onset", "onset_fraction", "median_test_accuracy",
    ]
    return _sort_cells(table[columns], space, scientific)


def boundary_table(isolation: pd.DataFrame, space: dict[str, Any]) -> pd.DataFrame:
    """Per cell and nuisance hyperparameter: the best trial's value and whether it is on an edge.

    A best value on the edge of its search range means the tuner may have wanted
    to go further, so the cell's winner (and the comparison between cells) is
    suspect until the range is widened. Hyperparameters that do not apply to a
    cell (a missing value, e.g. kernel size of an LSTM) are left out.
    """
    scientific = hyperparameters_with_role(space, "scientific")
    rows = []
    for _, winner in isolation.iterrows():
        for name in hyperparameters_with_role(space, "nuisance"):
            value = winner[name]
            if pd.isna(value):
                continue
            if isinstance(value, np.generic):
                value = value.item()
            spec = space["hyperparameters"][name]
            kind, position, on_boundary, edge = boundary_position(value, spec)
            rows.append({
                **{column: winner[column] for column in scientific},
                "trial_id": winner["trial_id"], "hyperparameter": name, "value": value,
                "search_range": describe_range(spec), "kind": kind, "position": position,
                "on_boundary": on_boundary, "edge": edge,
            })
    columns = [*scientific, "trial_id", "hyperparameter", "value", "search_range", "kind", "position", "on_boundary", "edge"]
    return pd.DataFrame(rows, columns=columns)


def failed_table(trials: pd.DataFrame, space: dict[str, Any]) -> pd.DataFrame:
    """Failed tuning trials with their cell and message."""
    scientific = hyperparameters_with_role(space, "scientific")
    trial_rows = tune_rows(trials)
    failed = trial_rows.loc[trial_rows["status"] == tables.FAILED]
    message = failed["message"] if "message" in failed.columns else pd.Series("", index=failed.index)
    table = failed[[*scientific, "trial_id"]].assign(message=message.fillna("").astype(str))
    return _sort_cells(table.sort_values("trial_id", kind="stable"), space, scientific)


def per_class_table(isolation: pd.DataFrame, classes: pd.DataFrame, trials: pd.DataFrame,
                    space: dict[str, Any], class_names: list[str] | None = None) -> pd.DataFrame:
    """Per cell and class: the test precision, recall, F1 and support of the cell's isolation winner.

    ``classes`` is classes.csv (one row per trial and class, tuning rows used);
    ``trials`` supplies each winner's test accuracy, macro-F1 and balanced
    accuracy (missing when an older trials.csv lacks them). Rows follow the
    isolation table's cell order and, within a cell, ``class_names`` (else the
    order of classes.csv). A winner without classes.csv rows gets no rows.
    """
    scientific = hyperparameters_with_role(space, "scientific")
    class_rows = tune_rows(classes)
    columns = [*scientific, "trial_id", "class_name", "precision", "recall", "f1", "support", *TEST_SUMMARY_COLUMNS]
    if isolation.empty:
        return pd.DataFrame(columns=columns)
    if class_rows[["trial_id", "class_name"]].duplicated().any():
        trial_id, class_name = class_rows.loc[class_rows[["trial_id", "class_name"]].duplicated(),
                                              ["trial_id", "class_name"]].iloc[0]
        raise ValueError(f"classes.csv lists class {class_name!r} of tuning trial {trial_id!r} more than once")
    summary = tune_rows(trials).reindex(columns=["trial_id", *TEST_SUMMARY_COLUMNS])
    winners = isolation[[*scientific, "trial_id"]].reset_index(names="cell_order")
    table = winners.merge(class_rows[CLASS_REQUIRED_COLUMNS], on="trial_id", how="inner", validate="one_to_many")
    table = table.merge(summary, on="trial_id", how="left", validate="many_to_one")
    order = list(class_names or []) + [name for name in dict.fromkeys(class_rows["class_name"])
                                       if name not in (class_names or [])]
    table["class_order"] = table["class_name"].map({name: index for index, name in enumerate(order)})
    table = table.sort_values(["cell_order", "class_order"], kind="stable")
    return table[columns].reset_index(drop=True)


@dataclass(frozen=True)
class ReportFrames:
    """The frames a report is made of; figures and verdicts reuse them."""

    measures: pd.DataFrame
    isolation: pd.DataFrame
    medians: pd.DataFrame
    boundaries: pd.DataFrame
    failed: pd.DataFrame


def report_frames(
    epochs: pd.DataFrame, trials: pd.DataFrame, space: dict[str, Any],
    *, tolerance: float = DEFAULT_ONSET_TOLERANCE,
) -> ReportFrames:
    """Compute every frame of the report from the tables (pure)."""
    measures = measures_table(tune_rows(epochs), tolerance)
    isolation = isolation_table(measures, trials, space)
    return ReportFrames(
        measures=measures,
        isolation=isolation,
        medians=median_table(measures, trials, space),
        boundaries=boundary_table(isolation, space),
        failed=failed_table(trials, space),
    )


# ---------------------------------------------------------------- rendering


def format_cell(value: Any) -> str:
    """One table cell: floats to 4 significant digits, missing values as 'n/a'."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return f"{float(value):.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of a frame (numbers right-aligned)."""
    if frame.empty:
        return "(no rows)"
    header = "| " + " | ".join(str(column) for column in frame.columns) + " |"
    align = []
    for column in frame.columns:
        numeric = pd.api.types.is_numeric_dtype(frame[column]) and not pd.api.types.is_bool_dtype(frame[column])
        align.append("---:" if numeric else "---")
    lines = [header, "| " + " | ".join(align) + " |"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(format_cell(value) for value in row) + " |")
    return "\n".join(lines)


def _cell_label(row: pd.Series, scientific: list[str]) -> str:
    return ", ".join(f"{name}={format_cell(row[name])}" for name in scientific)


def _tuner_settings(manifest: dict[str, Any]) -> dict[str, Any]:
    tuner = manifest.get("space", {}).get("tuner") or manifest.get("tuner") or {}
    return tuner if isinstance(tuner, dict) else {"name": tuner}


def render_per_class(per_class: pd.DataFrame, scientific: list[str]) -> list[str]:
    """Lines of the "Per-class test scores" section: a summary per cell, then one row per (cell, class)."""
    lines = ["## Per-class test scores", "",
             "Test split scores of each cell's isolation winner at its best epoch (from classes.csv and "
             "trials.csv). Macro-F1 is the unweighted mean of the class F1 scores and balanced accuracy the mean "
             "of the class recalls, so a rare class counts as much as a common one; accuracy alone rewards "
             "predicting the majority class.", ""]
    if per_class.empty:
        return lines + ["classes.csv has no rows for the isolation winners.", ""]
    summary = per_class[[*scientific, "trial_id", *TEST_SUMMARY_COLUMNS]].drop_duplicates("trial_id")
    scores = per_class[[*scientific, "trial_id", "class_name", "precision", "recall", "f1", "support"]]
    return lines + [markdown_table(summary.reset_index(drop=True)), "", markdown_table(scores), ""]


def render_report(manifest: dict[str, Any], frames: ReportFrames, trials: pd.DataFrame, tolerance: float,
                  per_class: pd.DataFrame | None = None) -> str:
    """The text of report.md; ``per_class`` (from :func:`per_class_table`) adds the per-class section."""
    space = manifest["space"]
    scientific = hyperparameters_with_role(space, "scientific")
    study_name = manifest.get("study", "unnamed")
    dataset = manifest.get("dataset") or space.get("dataset") or {}
    dataset_name = dataset.get("name", "unknown") if isinstance(dataset, dict) else str(dataset)
    content_hash = dataset.get("content_hash", "not recorded") if isinstance(dataset, dict) else "not recorded"

    tuner = _tuner_settings(manifest)
    tuner_name = next((str(tuner[key]) for key in ("name", "type", "algorithm", "kind") if key in tuner), "unspecified")
    settings = ", ".join(
        f"{key}={value}" for key, value in tuner.items()
        if key not in ("name", "type", "algorithm", "kind") and not isinstance(value, (dict, list))
    )
    tune_trial_rows = tune_rows(trials)
    completed = int((tune_trial_rows["status"] == tables.COMPLETED).sum())
    failed_count = int((tune_trial_rows["status"] == tables.FAILED).sum())
    max_epochs = frames.measures["epochs_run"].max() if not frames.measures.empty else 0
    budget = f"max_trials={tuner['max_trials']}; " if "max_trials" in tuner else ""
    budget += (
        f"{len(tune_trial_rows)} tuning trials recorded ({completed} completed, {failed_count} failed), "
        f"at most {format_cell(max_epochs)} epochs per trial"
    )

    lines = [f"# Study report: {study_name}", ""]
    lines.append(f"- **Dataset:** {dataset_name} (content hash `{content_hash}`)")
    lines.append(f"- **Tuner:** {tuner_name}" + (f" ({settings})" if settings else ""))
    lines.append(f"- **Budget:** {budget}")
    fixed = fixed_values(space)
    fixed_text = ", ".join(f"{name}={value}" for name, value in fixed.items()) if fixed else "nothing"
    lines.append(f"- **Held fixed:** {fixed_text}")
    lines.append(f"- **Scientific hyperparameters (cells):** {', '.join(scientific)}; "
                 f"nuisance hyperparameters tuned: {', '.join(hyperparameters_with_role(space, 'nuisance')) or 'none'}")
    lines.append(f"- **Overfitting onset tolerance:** {format_cell(tolerance)} nats")
    lines += ["", "## Isolation: best tuned trial per cell", "", markdown_table(frames.isolation), ""]
    missing = frames.medians.loc[frames.medians["completed_trials"] == 0]
    if not missing.empty:
        labels = "; ".join(_cell_label(row, scientific) for _, row in missing.iterrows())
        lines += [f"Cells without a completed trial: {labels}", ""]
    if per_class is not None:
        lines += render_per_class(per_class, scientific)
    lines += ["## Medians over completed tuning trials per cell", "", markdown_table(frames.medians), ""]

    lines += ["## Boundary warnings", ""]
    on_edge = frames.boundaries.loc[frames.boundaries["on_boundary"].astype(bool)] if not frames.boundaries.empty else frames.boundaries
    if on_edge.empty:
        lines.append("none")
    else:
        for _, row in on_edge.iterrows():
            lines.append(
                f"- {_cell_label(row, scientific)}: best {row['hyperparameter']} = {format_cell(row['value'])} "
                f"is on the {row['edge']} edge of {row['search_range']} (trial {row['trial_id']}); "
                "widen the range before trusting this cell"
            )
    lines.append("")

    lines += ["## Failed trials", "", f"{failed_count} failed tuning trial(s)."]
    if not frames.failed.empty:
        per_cell = frames.medians.loc[frames.medians["failed_trials"] > 0]
        lines.append("Per cell: " + "; ".join(
            f"{_cell_label(row, scientific)}: {row['failed_trials']}" for _, row in per_cell.iterrows()
        ) + ".")
        lines += ["", markdown_table(frames.failed.assign(message=frames.failed["message"].str.slice(0, 160)))]
    lines.append("")

    lines += [
        "## How to read this",
        "",
        "Each cell is one combination of the scientific hyperparameters; within a cell the nuisance "
        "hyperparameters were tuned, and the isolation table shows the trial with the lowest validation loss. "
        "Train and validation losses are both pure data losses evaluated in inference mode (no dropout, no weight "
        "penalty), so the *gap* = validation loss - train loss is the true generalisation gap. "
        "*best_epoch* is the epoch with the lowest validation loss (*best_val_loss*, with *best_val_accuracy* "
        "at that epoch); *gap_at_best* is the gap there and *final_gap* the gap at the last epoch run. "
        "*gap_growth* is the least-squares slope of the gap per epoch from the best epoch to the last "
        "(positive: the model keeps memorising after validation stopped improving; n/a with fewer than two epochs). "
        f"*overfit_onset* is the first epoch after the best from which the validation loss stays more than "
        f"{format_cell(tolerance)} nats above its minimum until the end (n/a: it never did). "
        "Medians are over completed tuning trials of a cell; *median_overfit_onset* over those with an onset, "
        "*onset_fraction* is the share of trials with one. A boundary warning means the best value of a nuisance "
        f"hyperparameter is the lowest or highest listed value, or within {BOUNDARY_FRACTION:.0%} of a min/max range "
        "from an edge (in log space for log ranges); unordered choices never warn. Test accuracy is reported for "
        "reference only; nothing was selected on it.",
        "",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------- files


def _load_run(run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Read the three tables, turning every problem into a one-line BadInput."""
    if not run_dir.is_dir():
        raise BadInput(f"no study at {run_dir}: {_RUN_HINT}")
    for name in (tables.EPOCHS_FILE, tables.TRIALS_FILE, tables.MANIFEST_FILE):
        if not (run_dir / name).is_file():
            raise BadInput(f"no {name} in {run_dir}: the study is incomplete; {_RUN_HINT}")
    try:
        manifest = tables.read_manifest(run_dir)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BadInput(f"not valid JSON ({error})", source=str(run_dir / tables.MANIFEST_FILE)) from None
    readers = ((tables.EPOCHS_FILE, tables.read_epochs), (tables.TRIALS_FILE, tables.read_trials))
    frames = []
    for name, reader in readers:
        try:
            frames.append(reader(run_dir))
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as error:
            raise BadInput(f"cannot read the table ({str(error).splitlines()[0]})", source=str(run_dir / name)) from None
    return frames[0], frames[1], manifest


def _check_inputs(run_dir: Path, trials: pd.DataFrame, manifest: dict[str, Any]) -> None:
    manifest_path = str(run_dir / tables.MANIFEST_FILE)
    space = manifest.get("space") if isinstance(manifest, dict) else None
    if not isinstance(space, dict) or not isinstance(space.get("hyperparameters"), dict):
        raise BadInput("has no search space with hyperparameters", source=manifest_path, key="space")
    if not hyperparameters_with_role(space, "scientific"):
        raise BadInput("the search space has no scientific hyperparameter, so there are no cells to compare",
                       source=manifest_path, key="space")
    needed = [*TRIAL_REQUIRED_COLUMNS, *hyperparameters_with_role(space, "scientific"),
              *hyperparameters_with_role(space, "nuisance")]
    missing = [column for column in needed if column not in trials.columns]
    if missing:
        raise BadInput(f"lacks column(s): {', '.join(missing)}", source=str(run_dir / tables.TRIALS_FILE))


def _per_class(run_dir: Path, isolation: pd.DataFrame, trials: pd.DataFrame,
               manifest: dict[str, Any]) -> pd.DataFrame | None:
    """The per-class table from classes.csv, or None when the run has none (runs older than classes.csv)."""
    path = run_dir / tables.CLASSES_FILE
    if not path.is_file():
        return None
    try:
        classes = tables.read_classes(run_dir)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as error:
        raise BadInput(f"cannot read the table ({str(error).splitlines()[0]})", source=str(path)) from None
    missing = [column for column in CLASS_REQUIRED_COLUMNS if column not in classes.columns]
    if missing:
        raise BadInput(f"lacks column(s): {', '.join(missing)}", source=str(path))
    dataset = manifest.get("dataset")
    class_names = dataset.get("class_names") if isinstance(dataset, dict) else None
    try:
        return per_class_table(isolation, classes, trials, manifest["space"],
                               [str(name) for name in class_names] if isinstance(class_names, list) else None)
    except ValueError as error:
        raise BadInput(str(error), source=str(path)) from None


def build_report(run_dir: Path, report_dir: Path, *, tolerance: float = DEFAULT_ONSET_TOLERANCE,
                 compare: tuple[str, str] = ("lstm", "cnn")) -> Path:
    """Write report.md and its CSV tables for the study in run_dir; return report.md's path."""
    run_dir, report_dir = Path(run_dir), Path(report_dir)
    try:
        tolerance = check_tolerance(tolerance)
    except ValueError as error:
        raise BadInput(str(error), key="tolerance") from None
    epochs, trials, manifest = _load_run(run_dir)
    _check_inputs(run_dir, trials, manifest)
    try:
        frames = report_frames(epochs, trials, manifest["space"], tolerance=tolerance)
    except ValueError as error:
        raise BadInput(str(error), source=str(run_dir)) from None
    report_dir.mkdir(parents=True, exist_ok=True)
    frames.isolation.to_csv(report_dir / ISOLATION_FILE, index=False)
    frames.medians.to_csv(report_dir / MEDIANS_FILE, index=False)
    frames.boundaries.to_csv(report_dir / BOUNDARIES_FILE, index=False)
    frames.failed.to_csv(report_dir / FAILED_FILE, index=False)
    per_class = _per_class(run_dir, frames.isolation, trials, manifest)
    if per_class is not None:
        per_class.to_csv(report_dir / PER_CLASS_FILE, index=False)
    else:
        (report_dir / PER_CLASS_FILE).unlink(missing_ok=True)  # left by a build of a run that had classes.csv
    body = render_report(manifest, frames, trials, tolerance, per_class)
    verdict_text = _verdict_and_figures(epochs, trials, manifest, frames, tolerance, report_dir, compare)
    title, _, rest = body.partition("\n")
    report_path = report_dir / REPORT_FILE
    report_path.write_text(f"{title}\n\n{verdict_text}\n## What was run\n{rest}", encoding="utf-8")
    return report_path


def _verdict_and_figures(epochs: pd.DataFrame, trials: pd.DataFrame, manifest: dict[str, Any],
                         frames: ReportFrames, tolerance: float, report_dir: Path,
                         compare: tuple[str, str] = ("lstm", "cnn")) -> str:
    """The verdict (Markdown), with figures and report.html written beside report.md.

    A study that does not compare LSTMs with CNNs across depths gets figures and
    an HTML page but no verdict, and says why.
    """
    from study.analysis import analyse, chance_loss_from_manifest
    from study.figures import write_figures
    from study.html_report import render_html, verdict_markdown

    space = manifest["space"]
    title = f"Study {manifest.get('study', 'unnamed')}"
    all_measures = measures_table(epochs, tolerance=tolerance)
    try:
        num_classes, chance = chance_loss_from_manifest(manifest)
        analysis = analyse(epochs, all_measures, num_classes=num_classes, space=space, boundary=frames.boundaries,
                           trial_status=trials, chance_loss=chance, first=compare[0], second=compare[1])
    except BadInput as error:
        note = f"## Verdict\n\nNo verdict: {error}.\n"
        (report_dir / HTML_FILE).write_text(
            f"<!doctype html><meta charset='utf-8'><title>{html_module.escape(title)}</title>"
            f"<h1>{html_module.escape(title)}</h1><p>{html_module.escape(note)}</p>", encoding="utf-8")
        return note
    for name, table in analysis.tables.items():
        table.to_csv(report_dir / f"{name}.csv", index=False)
    figures = write_figures(report_dir / "figures", **analysis.figure_frames)
    (report_dir / HTML_FILE).write_text(render_html(analysis.verdict, analysis.tables, figures, title),
                                        encoding="utf-8")
    links = "\n".join(f"![{path.stem}](figures/{path.name})" for path in figures if path.suffix == ".png")
    return f"{verdict_markdown(analysis.verdict)}\n\n## Figures\n\n{links}\n"
