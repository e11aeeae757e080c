"""The text of a report: :func:`report_sections` decides what it says, :func:`render_markdown` writes report.md.

The content is built once, as a list of :class:`Section` objects made of a few
block types (headings, paragraphs, bullet lists, tables, figure references), and
rendered twice: to Markdown here and to HTML by :mod:`study.html_report`, so
both reports always say the same thing. Everything comes from an
:class:`study.statistics.analysis.Analysis` and a :class:`ReportContext` (the
study's name, dataset and tuner, from the manifest); nothing is computed here
beyond reshaping and formatting, and nothing is read or written.

Strings from data or configuration are escaped: in Markdown, ``<``, ``>`` and
``&`` become entities (so a study name cannot inject HTML into a rendered
report.md) and ``|`` is escaped (so it cannot break a table).
"""
from __future__ import annotations

import html
import math
import numbers
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd

from study.config import EXPLANATIONS
from study.figures import FIGURE_NAMES, figure_caption
from study.statistics.classification import CLASSES
from study.statistics.explanations import WHY_FIGURE_PREFIX
from study.statistics.summaries import BOUNDARY_FRACTION, held_fixed, hyperparameters_with_role
from study.statistics.trials import MEASURES, PRIMARY_MEASURES

if TYPE_CHECKING:  # pragma: no cover
    from study.statistics.analysis import Analysis

#: Longest message of a problem trial shown in the report (the CSV keeps it whole).
MESSAGE_LENGTH = 160


# ---------------------------------------------------------------- values


def format_value(value: Any) -> str:
    """One value as text: floats to 4 significant digits, missing values as 'n/a', booleans as yes/no."""
    if value is None or value is pd.NA or value is pd.NaT:
        return "n/a"
    if isinstance(value, (float, np.floating)) and math.isnan(value):
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return f"{float(value):.4g}"
    return str(value)


def format_cell(value: Any) -> str:
    """One Markdown table cell: :func:`format_value` with pipes escaped and on one line."""
    return format_value(value).replace("|", "\\|").replace("\n", " ")


def markdown_text(text: Any) -> str:
    """Text for Markdown: ``<``, ``>``, ``&`` as entities, pipes escaped, one line."""
    return html.escape(format_value(text), quote=False).replace("|", "\\|").replace("\n", " ")


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of a frame (numbers right-aligned, text escaped)."""
    if frame.empty:
        return "(no rows)"
    header = "| " + " | ".join(markdown_text(column) for column in frame.columns) + " |"
    align = []
    for column in frame.columns:
        numeric = pd.api.types.is_numeric_dtype(frame[column]) and not pd.api.types.is_bool_dtype(frame[column])
        align.append("---:" if numeric else "---")
    lines = [header, "| " + " | ".join(align) + " |"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(html.escape(format_cell(value), quote=False) for value in row) + " |")
    return "\n".join(lines)


def interval_text(low: Any, high: Any) -> str:
    return f"[{format_value(low)}, {format_value(high)}]"


# ---------------------------------------------------------------- blocks


@dataclass(frozen=True)
class Span:
    """A piece of inline text: plain, bold (``strong``) or code."""

    text: str
    strong: bool = False
    code: bool = False


def spans(*parts: str | Span) -> tuple[Span, ...]:
    return tuple(part if isinstance(part, Span) else Span(str(part)) for part in parts)


@dataclass(frozen=True)
class Paragraph:
    spans: tuple[Span, ...]


@dataclass(frozen=True)
class Bullets:
    items: tuple[tuple[Span, ...], ...]


@dataclass(frozen=True, eq=False)
class Table:
    frame: pd.DataFrame


@dataclass(frozen=True)
class FigureRef:
    name: str
    caption: str


@dataclass(frozen=True)
class Subheading:
    text: str


Block = Paragraph | Bullets | Table | FigureRef | Subheading


@dataclass(frozen=True)
class Section:
    """One ``##`` section: an id (the HTML anchor), its heading and its blocks."""

    id: str
    heading: str
    blocks: tuple[Block, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class ReportContext:
    """What the report says about the study besides the analysis: its name, dataset, tuner and figures."""

    study: str = "unnamed"
    dataset: str = "unknown"
    content_hash: str = "not recorded"
    tuner: str = "unspecified"
    figures: tuple[str, ...] = FIGURE_NAMES

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any], figures: Sequence[str] = FIGURE_NAMES) -> ReportContext:
        manifest = manifest if isinstance(manifest, Mapping) else {}
        space = manifest.get("space") if isinstance(manifest.get("space"), Mapping) else {}
        dataset = manifest.get("dataset") or space.get("dataset") or {}
        if isinstance(dataset, Mapping):
            name, content_hash = str(dataset.get("name", "unknown")), str(dataset.get("content_hash", "not recorded"))
        else:
            name, content_hash = str(dataset), "not recorded"
        tuner = space.get("tuner") or manifest.get("tuner") or {}
        tuner = tuner if isinstance(tuner, Mapping) else {"name": tuner}
        tuner_name = next((str(tuner[key]) for key in ("name", "type", "algorithm", "kind") if key in tuner),
                          "unspecified")
        details = ", ".join(f"{key}={value}" for key, value in tuner.items()
                            if key not in ("name", "type", "algorithm", "kind")
                            and not isinstance(value, (Mapping, list)))
        return cls(study=str(manifest.get("study") or space.get("name") or "unnamed"), dataset=name,
                   content_hash=content_hash, tuner=tuner_name + (f" ({details})" if details else ""),
                   figures=tuple(figures))

    @property
    def title(self) -> str:
        return f"Study report: {self.study}"


# ---------------------------------------------------------------- sections


def _table(analysis: Analysis, name: str) -> pd.DataFrame | None:
    table = analysis.tables.get(name)
    return table if isinstance(table, pd.DataFrame) else None


def _cell_label(row: pd.Series | Mapping[str, Any], cell: Sequence[str]) -> str:
    return ", ".join(f"{name}={format_value(row[name])}" for name in cell)


def _scientific(analysis: Analysis) -> list[str]:
    return hyperparameters_with_role(analysis.space, "scientific") or ["architecture", "depth"]


def _status_section(analysis: Analysis, context: ReportContext, partial_note: str | None) -> tuple[Block, ...]:
    trials = analysis.trials
    phase = trials["phase"].astype(str) if "phase" in trials.columns else pd.Series("tune", index=trials.index)
    classification = trials["classification"].astype(str)
    tune = classification.loc[phase == "tune"]
    cell_columns = [name for name in _scientific(analysis) if name in trials.columns] or ["architecture", "depth"]
    cells = trials.loc[phase == "tune", cell_columns].drop_duplicates()
    settings = analysis.settings
    blocks: list[Block] = []
    if partial_note:  # its own paragraph, first: the reader must see it before any number
        blocks.append(Paragraph(spans(Span(partial_note, strong=True))))
    question = analysis.space.get("question") if isinstance(analysis.space, Mapping) else None
    if isinstance(question, str) and question.strip():
        blocks.append(Paragraph(spans(Span("Question:", strong=True), f" {question.strip()}")))
    parts: list[str | Span] = [
        "Dataset ", Span(context.dataset, strong=True), " (content hash ", Span(context.content_hash, code=True),
        f"); tuner {context.tuner}; {len(tune)} tuning trial(s) in {len(cells)} cell(s) "
        f"({int((~tune.isin(['crashed', 'diverged'])).sum())} completed, {int((tune == 'diverged').sum())} diverged, "
        f"{int((tune == 'crashed').sum())} crashed), {int((phase == 'repeat').sum())} repeat trial(s); "
        f"tests at alpha = {format_value(settings.alpha)} with {settings.permutations} permutations; "
        f"common train-loss target {format_value(analysis.target_train_loss)} nats; nuisance settings "
        f"{'paired' if analysis.paired else 'not paired'} across cells.",
    ]
    return (*blocks, Paragraph(spans(*parts)))


def _arm_label(statement: Any, arm: Any) -> str:
    if arm.architecture == "all":
        return "All trials:"
    return arm.architecture.upper() if statement.compared == "architecture" else f"{statement.compared} {arm.architecture}"


def _arm_line(statement: Any, arm: Any) -> tuple[Span, ...]:
    return spans(f"{_arm_label(statement, arm)} slope of {statement.measure} {statement.axis}: ",
                 Span(format_value(arm.slope), strong=True),
                 f" {interval_text(arm.low, arm.high)}, p = {format_value(arm.p_value)} "
                 f"({arm.units} units over {arm.depths} levels of {statement.factor})")


def _verdict_section(analysis: Analysis) -> Section:
    verdict = analysis.verdict
    if verdict is None:
        return Section("verdict", "Verdict", (
            Paragraph(spans(Span("No verdict:", strong=True), f" {analysis.no_verdict_reason or 'unknown reason'}. "
                            "The tables and figures below describe the study all the same.")),))
    count = len(verdict.statements)
    where = ("declared in the search space's claims: section" if verdict.declared
             else f"the depth question's two default statements ({verdict.first.upper()} against "
                  f"{verdict.second.upper()}, slopes per doubling of depth; the space has no claims: section)")
    blocks: list[Block] = [Paragraph(spans(
        f"{count} claim{'s' if count != 1 else ''}, {where}, each decided by its measure's permutation tests at "
        f"alpha = {format_value(verdict.alpha)}. Error rate across claims: {verdict.family or 'one claim'}."))]
    for statement in verdict.statements:
        blocks.append(Subheading(f"{statement.question.capitalize()}: {statement.claim}"))
        adjusted = (f", p after Holm's adjustment {format_value(statement.adjusted_p_value)}" if count > 1
                    and math.isfinite(statement.adjusted_p_value) else "")
        blocks.append(Paragraph(spans("Status: ", Span(statement.status, strong=True), f" (measure "
                                      f"{statement.measure}{adjusted}). ", statement.reading)))
        items = [spans(Span("Rule:", strong=True), f" {statement.rule}"), _arm_line(statement, statement.first)]
        if not statement.one_arm:
            items += [
                _arm_line(statement, statement.second),
                spans(f"Difference ({_arm_label(statement, statement.first)} minus "
                      f"{_arm_label(statement, statement.second)}): ", Span(format_value(statement.difference),
                                                                            strong=True),
                      f" {interval_text(statement.ci_low, statement.ci_high)}, p = {format_value(statement.p_value)}"),
            ]
        if statement.strata:
            items.append(spans(f"Slopes are read {statement.strata}."))
        items.append(spans(Span("Calibration:", strong=True), f" {statement.calibration_text or 'not measured'}"))
        if statement.status == "inconclusive" and statement.units_needed_text:
            items.append(spans(statement.units_needed_text))  # says itself what would decide it
        blocks.append(Bullets(tuple(items)))
    return Section("verdict", "Verdict", tuple(blocks))


def _interval_cell(mean: Any, low: Any, high: Any, count: Any = None) -> str:
    """'mean [low, high]' ('mean' alone without an interval; 'n/a' without units), with ', n N' when given."""
    if mean is None or pd.isna(mean):
        return "n/a"
    text = format_value(mean) if low is None or pd.isna(low) or high is None or pd.isna(high) \
        else f"{format_value(mean)} {interval_text(low, high)}"
    return text if count is None else f"{text}, n {format_value(count)}"


def _cell_part(table: pd.DataFrame) -> list[str]:
    """The cell columns of a distance or data profile (those before ``factor``) that have a value."""
    columns = list(table.columns)
    before = columns[:columns.index("factor")] if "factor" in columns else []
    return [name for name in before if table[name].notna().any()]


def level_pivot(table: pd.DataFrame, measure: str) -> pd.DataFrame:
    """A distance or data profile of one factor as a short table: one row per cell (architecture, depth, the
    other factors), one column per level of the factor ('<factor> <level>'), each holding the measure's mean
    with its interval and unit count."""
    cell = _cell_part(table)
    factor = str(table["factor"].iloc[0]) if len(table) else "level"
    levels = sorted(table["level"].dropna().unique().tolist(), key=lambda value: (str(type(value)), value))
    columns = [*cell, *(f"{factor} {format_value(level)}" for level in levels)]
    rows = []
    groups = table.groupby(cell, sort=True, dropna=False) if cell else [((), table)]
    for key, group in groups:
        key = key if isinstance(key, tuple) else (key,)
        row: dict[str, Any] = dict(zip(cell, key))
        for level in levels:
            found = group.loc[group["level"] == level]
            if found.empty:
                row[f"{factor} {format_value(level)}"] = "n/a"
                continue
            first = found.iloc[0]
            row[f"{factor} {format_value(level)}"] = _interval_cell(
                first[f"{measure}_mean"], first[f"{measure}_low"], first[f"{measure}_high"], first[f"{measure}_n"])
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def _fields_frame(fields: pd.DataFrame) -> pd.DataFrame:
    """The receptive-field profile as a short table: the cell, the theoretical field and the effective one's
    mean with its interval and count."""
    cell = [name for name in fields.columns if not name.startswith("effective_receptive_field")
            and name != "receptive_field"]
    return pd.DataFrame({
        **{name: fields[name] for name in cell}, "receptive_field": fields["receptive_field"],
        "effective_receptive_field": [_interval_cell(row.effective_receptive_field_mean,
                                                     row.effective_receptive_field_low,
                                                     row.effective_receptive_field_high)
                                      for row in fields.itertuples(index=False)],
        "n": fields["effective_receptive_field_n"]}).reset_index(drop=True)


def _gap_measure(table: pd.DataFrame) -> str:
    """The gap a data profile's short table shows: the verdict's (gap_at_target) where measured, else gap_at_best."""
    count = table.get("gap_at_target_n")
    return "gap_at_target" if count is not None and (pd.to_numeric(count, errors="coerce") > 0).any() \
        else "gap_at_best"


def _why_evidence(analysis: Analysis, explanation: str) -> list[Block]:
    """The tables an explanation's figure is drawn from, as short tables (every number is in their CSV)."""
    blocks: list[Block] = []
    if explanation == "vanishing_gradients":
        gradients = _table(analysis, "gradient_profile")
        if gradients is not None:
            blocks.append(Subheading("Gradient ratio per cell"))
            blocks.append(Paragraph(spans(
                "log10 of the first layer's over the last hidden layer's kernel gradient norm (median over the "
                "training epochs; at_init: before the first update), mean over the cell's tuning trials with a 95% "
                "bootstrap interval; 0: equal norms, -1: ten times smaller at the first layer (vanishing), +1: ten "
                "times larger. A one-layer model has 0 by definition.")))
            blocks.append(Table(gradients))
    elif explanation == "receptive_field":
        distance = _table(analysis, "distance_profile")
        if distance is not None and not distance.empty:
            factor = str(distance["factor"].iloc[0])
            blocks.append(Subheading(f"Accuracy per cell at every {factor}"))
            blocks.append(Paragraph(spans(
                f"Best validation accuracy, mean over the cell's tuning trials with a 95% bootstrap interval and the "
                f"number of trials, at every level of {factor} (the distance a model must span, in input samples); "
                f"chance is {format_value(analysis.chance.balanced_accuracy)}. Test accuracy too in "
                "distance_profile.csv.")))
            blocks.append(Table(level_pivot(distance, "best_val_accuracy")))
        fields = _table(analysis, "receptive_field_profile")
        if fields is not None and not fields.empty:
            blocks.append(Subheading("Theoretical and effective receptive field per cell"))
            blocks.append(Paragraph(spans(
                "receptive_field: input samples the last feature map sees (recurrent models: the whole input); "
                "the value the cell's tuning trials share, else their median. effective_receptive_field: the "
                "fewest input samples holding 95% of the input-gradient mass of one output position at the restored "
                "best epoch (Luo et al. 2016), mean over the tuning trials that have one with a 95% bootstrap "
                "interval; n: how many (0: not recorded).")))
            blocks.append(Table(_fields_frame(fields)))
    elif explanation == "overfitting":
        data = _table(analysis, "data_profile")
        if data is not None and not data.empty:
            for factor in dict.fromkeys(data["factor"].astype(str)):
                rows = data.loc[data["factor"].astype(str) == factor]
                measure = _gap_measure(rows)
                blocks.append(Subheading(f"Gap per cell at every {factor}"))
                blocks.append(Paragraph(spans(
                    f"{measure} (nats), mean over the cell's tuning trials that trained with a 95% bootstrap "
                    f"interval and the number of trials, at every level of {factor}. Every gap and the best "
                    "validation accuracy are in data_profile.csv.")))
                blocks.append(Table(level_pivot(rows.reset_index(drop=True), measure)))
    return blocks


def _why_section(analysis: Analysis, context: ReportContext) -> Section:
    """The five explanations of the depth question: what each predicts and what this study's claims say about
    it, then per explanation its figure and the tables it is drawn from (the gradient ratio, the accuracy at
    every distance and the receptive fields, the gap at every level of a data factor), and every cell's width,
    parameters and receptive field."""
    why = _table(analysis, "why")
    blocks: list[Block] = [Paragraph(spans(
        "Five explanations are offered for why ECG papers stack LSTMs 2-4 deep and CNNs 10-15 deep. A row is "
        "decided from the claims tagged with that explanation (explanation: in the space's claims), whose statuses "
        "are Holm-adjusted across all of this study's claims: supported when every one is supported, contradicted "
        "when one is contradicted and none supported, mixed when some are supported and some contradicted, else "
        "inconclusive; not tested when no claim is tagged with it."))]
    figures: dict[str, str] = {}
    if why is None or why.empty:
        blocks.append(Paragraph(spans("(not computed)")))
    else:
        blocks.append(Table(pd.DataFrame({
            "explanation": why["explanation"], "prediction": why["prediction"], "measure": why["measure"],
            "status": why["status"], "claims": why["evidence"]}).reset_index(drop=True)))
        figures = {str(explanation): str(name) for explanation, name in zip(why["explanation"], why["figure"])
                   if isinstance(name, str) and name}
    for explanation in EXPLANATIONS:
        name = figures.get(explanation)
        if name and name in context.figures:
            blocks.append(FigureRef(name, figure_caption(name)))
        blocks += _why_evidence(analysis, explanation)
    sizes = _table(analysis, "model_sizes")
    blocks.append(Subheading("Width, parameters and receptive field per cell"))
    blocks.append(Paragraph(spans(
        "From the cell's tuning trials: the value they share, or min-max where they differ. parameter_budget > 0: "
        "the width was solved for that parameter count (within 5%); receptive_field: input samples the last "
        "feature map sees (recurrent models: the whole input).")))
    blocks.append(Table(sizes) if sizes is not None else Paragraph(spans("(not computed)")))
    return Section("why", "Why?", tuple(blocks))


def _lines(lines: Sequence[str], empty: str) -> Block:
    return Bullets(tuple(spans(line) for line in lines)) if lines else Paragraph(spans(empty))


def _slopes_frame(slopes: pd.DataFrame) -> pd.DataFrame:
    """The slope table in reading order: the axis, each arm's slope, interval and p, then the difference."""
    if slopes.empty:
        return slopes
    return pd.DataFrame({
        "axis": slopes["axis"] if "axis" in slopes.columns else "per doubling of depth",
        "measure": slopes["measure"], "question": slopes["question"], "primary": slopes["primary"].astype(bool),
        "supports if": slopes.get("supports_if", ""),
        "first": slopes["first"], "first slope": slopes["slope_first"],
        "first interval": [interval_text(low, high) for low, high
                           in zip(slopes["slope_first_low"], slopes["slope_first_high"])],
        "first p": slopes["p_first"],
        "second": slopes["second"], "second slope": slopes["slope_second"],
        "second interval": [interval_text(low, high) for low, high
                            in zip(slopes["slope_second_low"], slopes["slope_second_high"])],
        "second p": slopes["p_second"],
        "difference": slopes["difference"],
        "interval": [interval_text(low, high) for low, high in zip(slopes["ci_low"], slopes["ci_high"])],
        "p": slopes["p_difference"], "status": slopes["status"],
    }).reset_index(drop=True)


def _effects_frame(effects: pd.DataFrame) -> pd.DataFrame:
    """The effects table in reading order, the interval as one column."""
    return pd.DataFrame({
        "factor": effects["factor"], "measure": effects["measure"], "arm": effects["arm"],
        "stratum": effects["stratum"], "slope": effects["slope"], "axis": effects["axis"],
        "interval": [interval_text(low, high) for low, high in zip(effects["slope_low"], effects["slope_high"])],
        "change first to last level": effects["change"],
        "levels": [f"{low} -> {high}" for low, high in zip(effects["from_level"], effects["to_level"])],
        "units": effects["units"],
    }).reset_index(drop=True)


def _classification_frame(counts: pd.DataFrame) -> pd.DataFrame:
    """Class counts per phase and cell, one column per class."""
    if counts.empty:
        return counts
    wide = counts.pivot_table(index=["phase", "architecture", "depth"], columns="classification", values="trials",
                              aggfunc="sum", fill_value=0, sort=False)
    wide = wide.reindex(columns=[name for name in CLASSES if name in wide.columns])
    wide.columns.name = None
    return wide.reset_index()


def _best_of_k_frame(best_of_k: pd.DataFrame) -> pd.DataFrame:
    """Per cell: expected best validation accuracy of one setting (k = 1) and of all n settings (k = n)."""
    if best_of_k.empty:
        return best_of_k
    cell = [column for column in best_of_k.columns if column not in ("k", "expected_best", "settings")]
    first = best_of_k.loc[best_of_k["k"] == 1, [*cell, "settings", "expected_best"]]
    last = best_of_k.loc[best_of_k["k"] == best_of_k["settings"], [*cell, "expected_best"]]
    table = first.rename(columns={"expected_best": "best of k=1"}).merge(
        last.rename(columns={"expected_best": "best of k=n"}), on=cell, how="left")
    return table.rename(columns={"settings": "n (settings)"}).reset_index(drop=True)


def _boundary_block(boundaries: pd.DataFrame | None, cell: Sequence[str]) -> Block:
    if boundaries is None or boundaries.empty:
        return Paragraph(spans("none"))
    on_edge = boundaries.loc[boundaries["on_boundary"].astype(bool)]
    if on_edge.empty:
        return Paragraph(spans("none"))
    present = [name for name in cell if name in on_edge.columns]
    return Bullets(tuple(spans(
        f"{_cell_label(row, present)}: best {row['hyperparameter']} = {format_value(row['value'])} is on the "
        f"{row['edge']} edge of {row['search_range']} (trial {row['trial_id']}); widen the range before trusting "
        "this cell") for _, row in on_edge.iterrows()))


def _per_class_blocks(per_class: pd.DataFrame) -> tuple[Block, ...]:
    intro = Paragraph(spans(
        "Test split scores of each cell's tuned winner at its best epoch (from classes.csv and trials.csv). "
        "Macro-F1 is the unweighted mean of the class F1 scores and balanced accuracy the mean of the class recalls, "
        "so a rare class counts as much as a common one; accuracy alone rewards predicting the majority class."))
    if per_class.empty:
        return intro, Paragraph(spans("classes.csv has no rows for the tuned winners."))
    cell = list(per_class.columns[:per_class.columns.get_loc("trial_id")])
    summary_columns = [column for column in ("test_accuracy", "test_macro_f1", "test_balanced_accuracy")
                       if column in per_class.columns]
    summary = per_class[[*cell, "trial_id", *summary_columns]].drop_duplicates("trial_id").reset_index(drop=True)
    scores = per_class[[*cell, "trial_id", "class_name", "precision", "recall", "f1", "support"]]
    return intro, Table(summary), Table(scores)


def _how_to_read(analysis: Analysis) -> tuple[Block, ...]:
    settings = analysis.settings
    measures = [spans(Span(definition.name, code=True),
                      f" ({definition.question}{', primary' if PRIMARY_MEASURES.get(definition.question) == definition.name else ''}"
                      f"{', units: tuning trials that trained' if definition.trained_only else ', units: every tuning trial'}"
                      f"; {'a negative' if definition.supports_sign < 0 else 'a positive'} slope supports the "
                      f"statement): {definition.meaning}.")
                for definition in MEASURES]
    return (
        Paragraph(spans(
            "Each cell is one combination of the scientific hyperparameters; within a cell the nuisance "
            "hyperparameters were tuned with the same budget. Train and validation losses are both pure data losses "
            "evaluated in inference mode (no dropout, no weight penalty), so the gap = validation loss - train loss "
            "is the true generalisation gap. Every slope is an ordinary least-squares slope along a claim's factor "
            "(against log2(depth) for the depth statements, i.e. the change per doubling of depth), read within "
            "each level of the other scientific factors; its units are tuning trials (one per nuisance setting), "
            "never repeat seeds of one setting. The signs below are those of the default depth statements; a "
            "declared claim states its own direction.")),
        Subheading("Measures"),
        Bullets(tuple(measures)),
        Subheading("Classes of trials"),
        Bullets((
            spans(Span("crashed", strong=True), ": the trial raised an exception or has no epoch rows."),
            spans(Span("diverged", strong=True), ": a loss became NaN or infinite; its finite epochs are kept for "
                  "the curves, but it counts against trainability and is left out of the overfitting measures."),
            spans(Span("failed to train", strong=True), ": its best train balanced accuracy never exceeded "
                  f"1/K + {format_value(settings.trained_above_chance)} (chance + the threshold)."),
            spans(Span("overfitting", strong=True), ": trained, and at its last epoch the validation loss is more "
                  f"than {format_value(settings.onset_tolerance)} nats above its minimum while the train loss fell "
                  f"more than {format_value(settings.train_fall_fraction)} (relative) below its value at the best "
                  "validation epoch."),
            spans(Span("fitting", strong=True), ": trained and not overfitting by its last epoch."),
        )),
        Subheading("Tables"),
        Bullets((
            spans(Span("Isolation", strong=True), ": each cell's tuned winner, the completed tuning trial with the "
                  "lowest validation loss (ties to the lower trial id); the same trial the runner retrained with "
                  "fresh seeds, whose curves the learning-curve figure shows. overfit_onset there is the observed "
                  "onset (n/a: it never overfitted)."),
            spans(Span("Winners", strong=True), ": the winner's mean over its seeds; the interval resamples the "
                  "cell's tuning trials and re-picks the winner each time, so it includes the uncertainty of which "
                  "setting won. winner_share is how often the retrained setting won again."),
            spans(Span("Best of k", strong=True), ": the expected best validation accuracy of k settings drawn from "
                  "the cell's tuning trials (Dodge et al. 2019); a large gain from k=1 to k=n says the result "
                  "depends on the tuning budget."),
            spans(Span("Medians", strong=True), ": over the completed tuning trials of a cell (neither crashed nor "
                  "diverged); median_overfit_onset over those that overfitted, onset_fraction the share that did."),
            spans(Span("Boundary warnings", strong=True), ": the winner's value of a nuisance hyperparameter is the "
                  f"lowest or highest listed value, or within {BOUNDARY_FRACTION:.0%} of a min/max range from an edge "
                  "(in log space for log ranges); unordered choices never warn."),
            spans(Span("Kendall tau", strong=True), ": granulated Kendall tau between depth and the gap at matched "
                  "progress, averaged over groups of trials that differ in depth alone (Jiang et al. 2019)."),
            spans("Test scores are reported for reference only; nothing was selected on them."),
        )),
    )


def report_sections(analysis: Analysis, context: ReportContext, *,
                    partial_note: str | None = None) -> list[Section]:
    """Every section of the report, in order (the title is ``context.title``)."""
    cell = _scientific(analysis)
    verdict = analysis.verdict
    fixed = list(verdict.held_fixed) if verdict is not None else held_fixed(analysis.trials, analysis.space)
    caveats = list(verdict.caveats) if verdict is not None else []
    sections = [
        Section("status", "Status", _status_section(analysis, context, partial_note)),
        _verdict_section(analysis),
        _why_section(analysis, context),
        Section("held-fixed", "What was held fixed", (_lines(fixed, "nothing"),)),
        Section("caveats", "Caveats", (_lines(caveats, "none found" if verdict is not None
                                              else "none (no verdict)"),)),
        Section("data-problems", "Data problems", (_lines(list(analysis.data_problems), "none"),)),
    ]

    def table_section(section_id: str, heading: str, frame: pd.DataFrame | None, *intro: str,
                      missing: str = "(not computed)") -> Section:
        blocks: list[Block] = [Paragraph(spans(text)) for text in intro]
        blocks.append(Table(frame) if frame is not None else Paragraph(spans(missing)))
        return Section(section_id, heading, tuple(blocks))

    slopes = _table(analysis, "slopes")
    isolation = _table(analysis, "isolation")
    medians = _table(analysis, "medians")
    isolation_blocks: list[Block] = [
        Paragraph(spans("The completed tuning trial with the lowest validation loss in each cell.")),
        Table(isolation) if isolation is not None else Paragraph(spans("(not computed)"))]
    if isolation is not None and medians is not None and not medians.empty:
        present = [name for name in cell if name in medians.columns and name in isolation.columns]
        won = set(map(tuple, isolation[present].astype(str).to_numpy().tolist())) if present else set()
        missing = [row for _, row in medians.iterrows() if tuple(row[present].astype(str)) not in won]
        if missing:
            isolation_blocks.append(Paragraph(spans("Cells without a completed tuning trial: " + "; ".join(
                _cell_label(row, present) for row in missing) + ".")))
    problems = _table(analysis, "problem_trials")
    if problems is not None and "message" in problems.columns:
        problems = problems.assign(message=problems["message"].astype(str).str.slice(0, MESSAGE_LENGTH))
    counts = _table(analysis, "classification")
    best_of_k = _table(analysis, "best_of_k")
    effects = _table(analysis, "factor_effects")
    profile = _table(analysis, "factor_profile")
    sections += [
        table_section("effects", "What each claim's factor did",
                      _effects_frame(effects) if effects is not None and not effects.empty else None,
                      "Per claim axis, measure, compared level and level of the other scientific factors: the slope "
                      "along the factor with a 95% bootstrap interval (for a regulariser, a negative gap slope is the "
                      "gap closed per unit of strength), and the change of the mean from the first to the last "
                      "level. best_val_accuracy shows what the factor cost or gained in validation accuracy. Units "
                      "are tuning trials. The means at every level are in factor_profile.csv and the claim_profiles "
                      "figure.", missing="(no claim)"),
        table_section("profile", "Each claim's measure at every level of its factor",
                      profile if profile is not None and not profile.empty else None, missing="(no claim)"),
        table_section("thresholds", "Thresholds", _table(analysis, "thresholds")),
        table_section("slopes", "Slopes along each claim's axis",
                      _slopes_frame(slopes) if slopes is not None else None,
                      "Every measure with both arms' slopes along each claim's axis, their intervals and one-arm "
                      "permutation p-values, and the difference of slopes with its interval and p-value (statuses at "
                      "the unadjusted alpha). Only a claim's own (primary) measure decides it."),
        table_section("trainability", "Trainability per cell", _table(analysis, "trainability"),
                      "Tuning settings per cell, how many trained, the trainable fraction with its Wilson interval, "
                      "and the lowest train loss any setting reached."),
        table_section("classification", "What happened to the trials",
                      _classification_frame(counts) if counts is not None else None,
                      "Trials per phase, cell and class (tuning: one per nuisance setting)."),
        Section("isolation", "Isolation: each cell's tuned winner", tuple(isolation_blocks)),
        table_section("winners", "Tuned winners with selection-aware intervals", _table(analysis, "winners")),
        table_section("best-of-k", "Expected best of k settings",
                      _best_of_k_frame(best_of_k) if best_of_k is not None else None,
                      "Expected best validation accuracy of one setting and of all n tuned settings per cell "
                      "(every k in best_of_k.csv and the best_of_k figure)."),
        table_section("medians", "Medians over the completed tuning trials per cell", medians),
        Section("boundaries", "Boundary warnings", (_boundary_block(_table(analysis, "boundaries"), cell),)),
        table_section("problem-trials", "Problem trials (crashed or diverged)", problems,
                      f"Messages cut at {MESSAGE_LENGTH} characters (problem_trials.csv has them whole)."),
    ]
    per_class = _table(analysis, "per_class")
    if per_class is not None:
        sections.append(Section("per-class", "Per-class test scores", _per_class_blocks(per_class)))
    sections += [
        table_section("kendall-tau", "Kendall tau", _table(analysis, "kendall_tau")),
        Section("figures", "Figures", tuple(FigureRef(name, figure_caption(name)) for name in context.figures
                                            if not name.startswith(WHY_FIGURE_PREFIX))),  # in the Why? section
        Section("how-to-read", "How to read this", _how_to_read(analysis)),
    ]
    return sections


# ---------------------------------------------------------------- Markdown


def _markdown_spans(parts: Sequence[Span]) -> str:
    out = []
    for part in parts:
        if part.code:
            out.append(f"`{part.text.replace('`', '')}`")
        elif part.strong:
            out.append(f"**{markdown_text(part.text)}**")
        else:
            out.append(markdown_text(part.text))
    return "".join(out)


def _markdown_block(block: Block) -> str:
    if isinstance(block, Paragraph):
        return _markdown_spans(block.spans)
    if isinstance(block, Bullets):
        return "\n".join(f"- {_markdown_spans(item)}" for item in block.items)
    if isinstance(block, Table):
        return markdown_table(block.frame)
    if isinstance(block, FigureRef):
        return f"![{block.name}](figures/{block.name}.png)\n\n{markdown_text(block.caption)}"
    if isinstance(block, Subheading):
        return f"### {markdown_text(block.text)}"
    raise TypeError(f"unknown block {block!r}")


def render_markdown(analysis: Analysis, context: ReportContext, *, partial_note: str | None = None) -> str:
    """The whole text of report.md."""
    lines = [f"# {markdown_text(context.title)}", ""]
    for section in report_sections(analysis, context, partial_note=partial_note):
        if section.id != "status":
            lines += [f"## {markdown_text(section.heading)}", ""]
        for block in section.blocks:
            lines += [_markdown_block(block), ""]
    return "\n".join(lines)
