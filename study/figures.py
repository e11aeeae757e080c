"""Figures of a study, drawn from the frames of an :class:`study.statistics.analysis.Analysis`.

Every ``plot_*`` function draws one precomputed frame onto a given matplotlib
``ax`` (with seaborn where it fits) and computes nothing beyond reshaping: no
means, no intervals, no selection of winners. :func:`build_figures` lays the
panels out and returns the figures by name; it writes nothing (study.report
saves them). Every figure of :data:`FIGURE_NAMES` is always returned: a panel
whose data are missing says "not enough data: ..." instead of disappearing.
After them comes one dynamic family: ``why_<explanation>`` (see
:func:`why_figure_names`), one figure per explanation of
:data:`study.config.EXPLANATIONS` that some claim of the study is tagged with,
or that the study measured otherwise (a distance factor: why_receptive_field; a
data factor: why_overfitting), drawn from the analysis' evidence tables
(gradient_profile, distance_profile, receptive_field_profile, data_profile).
Figures are :class:`matplotlib.figure.Figure` objects with the Agg canvas, so no
window, no pyplot state and no display are needed.
"""
from __future__ import annotations

import math
import textwrap
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from study.statistics.classification import CLASSES, CRASHED, DIVERGED, FAILED_TO_TRAIN, FITTING, OVERFITTING  # noqa: E402
from study.statistics.explanations import (DATA_PROFILE_MEASURES, EXPLANATION_DETAILS,  # noqa: E402
                                           GRADIENT_PROFILE_COLUMNS, RECEPTIVE_FIELD_PROFILE_COLUMNS,
                                           WHY_FIGURE_PREFIX, explanation_axes, profile_columns)
from study.statistics.trials import PRIMARY_MEASURES, measure_units  # noqa: E402

if TYPE_CHECKING:  # pragma: no cover
    from study.statistics.analysis import Analysis

#: The figures :func:`build_figures` returns, in order; the first is the headline figure.
FIGURE_NAMES = ("gap_vs_depth", "claim_profiles", "trainability_vs_depth", "slopes", "learning_curves",
                "gap_heatmaps", "nuisance_axes", "best_of_k", "winners")

#: One line per figure, used as its caption in the reports.
FIGURE_CAPTIONS = {
    "claim_profiles": "Each claim's measure (and validation accuracy, what the factor cost) against the claim's "
                      "factor, one line per compared level, one panel per level of the other scientific factors: "
                      "means over tuning trials with their intervals.",
    "gap_vs_depth": "Gap (validation minus train loss) at matched training progress against depth: every tuning "
                    "trial that trained (small points) and each cell's mean with its interval.",
    "trainability_vs_depth": "What happened to the tuning trials of each cell (share of classes), and the share of "
                             "nuisance settings that trained with its Wilson interval.",
    "slopes": "Each architecture's slope per doubling of depth with its interval, one panel per measure.",
    "learning_curves": "Train and validation loss of each cell's tuned winner (band: range over its tuning run "
                       "and repeat seeds).",
    "gap_heatmaps": "Mean gap at matched training progress over depth and the binned dropout and weight decay.",
    "nuisance_axes": "Best validation loss of every tuning trial against each nuisance hyperparameter; stars are "
                     "the cells' winners, shaded zones the edges of the searched range.",
    "best_of_k": "Expected best validation accuracy of k tuned settings drawn from each cell (still rising at the "
                 "last k: the tuning budget had not settled the winner).",
    "winners": "Each cell's tuned winner: the mean over its seeds with an interval that includes the uncertainty "
               "of which setting won the tuning.",
}

#: The caption of a ``why_<explanation>`` figure (the explanation's name fills in).
WHY_CAPTION = ("What the claims tagged with {explanation} measured: each claim's measure against its factor, one line "
               "per compared level (or stratum), means over tuning trials with their 95% intervals.")
#: ... and of why_vanishing_gradients, whose first panel is the gradient profile when gradients were recorded.
WHY_GRADIENT_CAPTION = ("Gradient ratio per cell against depth: mean over tuning trials of log10(first-layer / "
                        "last-hidden-layer kernel gradient norm, median over the epochs) with its 95% interval, one line "
                        "per architecture (dashed: 0, equal norms; below 0 the gradient reaching the first layer is "
                        "smaller, -1 ten times smaller); then each tagged claim's measure against its factor.")


#: ... of why_receptive_field, whose first panels are the distance and receptive-field profiles when the study has them.
WHY_RECEPTIVE_FIELD_CAPTION = (
    "Where the study varies the distance a model must span (event_distance, or the sequence length T): best "
    "validation accuracy per cell against that distance, one panel per architecture, one line per depth, mean over "
    "tuning trials with its 95% interval (dashed: chance, 1/K). Where receptive fields were recorded: each cell's "
    "theoretical receptive field (solid) and mean effective receptive field (dashed, 95% of the input-gradient mass, "
    "with its interval) against depth, in input samples on a log scale, the distances as dotted lines: a model "
    "whose field lies below a distance cannot see both ends of it. Then each tagged claim's measure against its "
    "factor.")
#: ... of why_overfitting, whose first panels are the data profile when the study varies its training data.
WHY_OVERFITTING_CAPTION = (
    "Where the study varies its training data (n_strips, n_sequences, label_noise): the gap at matched progress "
    "(gap_at_target) and at the best epoch (gap_at_best) per cell against that factor, one panel per architecture "
    "and gap, one line per depth, mean over the tuning trials that trained with its 95% interval. Then each tagged "
    "claim's measure against its factor, one line per compared level (or stratum).")


def figure_caption(name: str) -> str:
    """The caption of any figure :func:`build_figures` returns."""
    if name.startswith(WHY_FIGURE_PREFIX):
        explanation = name[len(WHY_FIGURE_PREFIX):]
        special = {"vanishing_gradients": WHY_GRADIENT_CAPTION, "receptive_field": WHY_RECEPTIVE_FIELD_CAPTION,
                   "overfitting": WHY_OVERFITTING_CAPTION}
        return special.get(explanation, WHY_CAPTION.format(explanation=explanation))
    return FIGURE_CAPTIONS.get(name, name.replace("_", " "))


_MEASURE_LABELS = {
    "gap_at_target": "gap at matched progress (nats)",
    "gap_growth_after_target": "gap growth after target (nats/epoch)",
    "gap_at_best": "gap at best epoch (nats)",
    "gap_growth": "gap growth after best epoch (nats/epoch)",
    "best_epoch": "best epoch",
    "overfit_onset": "overfit onset (epoch)",
    "epochs_to_target": "epochs to target",
    "trainable_fraction": "trainable fraction",
    "best_train_loss": "best train loss (nats)",
    "final_gap": "final gap (nats)",
    "test_accuracy": "test accuracy",
    "best_val_accuracy": "best validation accuracy",
    "gradient_ratio": "log10 gradient ratio (first / last hidden)",
    "receptive_field": "receptive field (input samples)",
}
_CLASS_COLOURS = {FITTING: "#2ca02c", OVERFITTING: "#ff7f0e", FAILED_TO_TRAIN: "#9e9e9e", DIVERGED: "#9467bd",
                  CRASHED: "#262626"}
_EDGE_COLOUR = "#d62728"
_STYLE = {"axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 8, "xtick.labelsize": 9,
          "ytick.labelsize": 9}


def measure_label(measure: str) -> str:
    return _MEASURE_LABELS.get(measure, measure.replace("_", " "))


def architecture_palette(architectures: Sequence[str]) -> dict[str, Any]:
    """One colour-blind-safe colour per architecture, stable for a given set of names."""
    names = sorted({str(name) for name in architectures})
    return dict(zip(names, sns.color_palette("colorblind", max(len(names), 1))))


def not_enough_data(ax: Axes, reason: str, *, title: str | None = None) -> None:
    """A text panel in place of a plot: 'not enough data: <reason>'."""
    ax.set_axis_off()
    ax.text(0.5, 0.5, textwrap.fill(f"not enough data: {reason}", 48), ha="center", va="center",
            transform=ax.transAxes, fontsize=10, color="#444444",
            bbox={"boxstyle": "round", "facecolor": "#f5f5f5", "edgecolor": "#bbbbbb"})
    if title:
        ax.set_title(title)


def _depth_axis(ax: Axes, depths: Sequence[float]) -> None:
    """Depth on a log2 axis with a tick at every depth studied."""
    values = sorted({float(depth) for depth in depths if np.isfinite(depth) and depth > 0})
    if not values:
        return
    ax.set_xscale("log", base=2)
    ax.set_xticks(values)
    ax.set_xticklabels([f"{value:g}" for value in values])
    ax.minorticks_off()
    if len(values) == 1:
        ax.set_xlim(values[0] / 1.5, values[0] * 1.5)
    else:
        ax.set_xlim(values[0] / 1.25, values[-1] * 1.25)
    ax.set_xlabel("depth (layers or blocks, log2 scale)")


def _shift(names: Sequence[str], name: str, step: float = 0.05) -> float:
    """A small multiplicative offset along a log2 axis so that architectures at one depth do not overlap."""
    ordered = sorted({str(item) for item in names})
    return 2.0 ** (step * (ordered.index(str(name)) - (len(ordered) - 1) / 2))


def _legend(ax: Axes, **kwargs: Any) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        unique = dict(zip(labels, handles))
        ax.legend(unique.values(), unique.keys(), **kwargs)


# ---------------------------------------------------------------- panels


def plot_gap_vs_depth(units: pd.DataFrame, summary: pd.DataFrame, ax: Axes, *, measure: str = "gap_at_target",
                      palette: Mapping[str, Any] | None = None, target: float | None = None) -> None:
    """The headline panel: a gap measure against depth per architecture.

    ``units``: :func:`study.statistics.trials.measure_units` of the measure (one
    row per tuning trial that counts: architecture, depth, value), drawn as
    small points; ``summary``: the analysis' ``cell_summary`` table (rows of
    this measure: architecture, depth, mean, ci_low, ci_high), drawn as each
    cell's mean with its interval, joined per architecture.
    """
    rows = summary.loc[summary["measure"] == measure] if "measure" in summary.columns else summary.iloc[0:0]
    if units.empty and rows.empty:
        not_enough_data(ax, f"no tuning trial that trained has a {measure} (no trial reached the common "
                            "train-loss target)", title=measure_label(measure))
        return
    names = sorted(set(units["architecture"].astype(str)) | set(rows["architecture"].astype(str)))
    palette = palette or architecture_palette(names)
    if not units.empty:
        shown = units.assign(
            architecture=units["architecture"].astype(str).str.upper(),
            depth=[depth * _shift(names, name, 0.09) for depth, name in zip(units["depth"], units["architecture"])])
        sns.scatterplot(data=shown, x="depth", y="value", hue="architecture", ax=ax, s=18, alpha=0.45,
                        palette={name.upper(): colour for name, colour in palette.items()}, legend=False,
                        linewidth=0)
    for architecture, group in rows.groupby(rows["architecture"].astype(str), sort=True):
        group = group.sort_values("depth")
        x = group["depth"].to_numpy(dtype=float) * _shift(names, architecture, 0.09)
        mean = group["mean"].to_numpy(dtype=float)
        low = np.clip(mean - group["ci_low"].to_numpy(dtype=float), 0, None)
        high = np.clip(group["ci_high"].to_numpy(dtype=float) - mean, 0, None)
        ax.errorbar(x, mean, yerr=[np.nan_to_num(low), np.nan_to_num(high)], fmt="-o", capsize=4, lw=2, ms=7,
                    color=palette.get(architecture), label=f"{architecture.upper()} cell mean and interval")
    ax.axhline(0.0, color="grey", lw=0.8, ls=":")
    _depth_axis(ax, [*units["depth"].tolist(), *rows["depth"].tolist()])
    ax.set_ylabel(measure_label(measure))
    title = "Overfitting at matched training progress"
    if target is not None and math.isfinite(target):
        title += f" (train loss {target:.3g} nats)"
    ax.set_title(title)
    ax.grid(alpha=0.3)
    _legend(ax, title="architecture", loc="best")


def plot_gradient_profile(frame: pd.DataFrame, ax: Axes, *, palette: Mapping[str, Any] | None = None) -> None:
    """Mean gradient ratio per cell against depth with its interval, one line per architecture (and level of
    the other scientific factors), a dashed line at 0 (equal gradient norms at the first and the last hidden
    layer). ``frame``: the analysis' ``gradient_profile`` table."""
    rows = frame.loc[pd.to_numeric(frame["gradient_ratio_mean"], errors="coerce").notna()] if not frame.empty \
        else frame
    if rows.empty:
        not_enough_data(ax, "no tuning trial has a finite gradient ratio (gradients.csv)", title="gradient ratio")
        return
    rows, names, extra = _with_series(rows, ("architecture", "depth", *GRADIENT_PROFILE_COLUMNS))
    if palette and not extra:  # the study's architecture colours, keyed by the upper-case line names
        colours = {name: palette.get(name.lower(), palette.get(name)) for name in names}
    else:
        colours = dict(zip(names, sns.color_palette("colorblind" if len(names) <= 10 else "tab20", len(names))))
    shown = rows.assign(
        x=[float(depth) * _shift(names, name) for depth, name in zip(rows["depth"], rows["series"])],
        mean=rows["gradient_ratio_mean"].astype(float),
        low=(rows["gradient_ratio_mean"].astype(float) - rows["gradient_ratio_low"].astype(float)).clip(lower=0)
        .fillna(0.0),
        high=(rows["gradient_ratio_high"].astype(float) - rows["gradient_ratio_mean"].astype(float)).clip(lower=0)
        .fillna(0.0)).sort_values(["series", "x"])
    sns.lineplot(data=shown, x="x", y="mean", hue="series", hue_order=names, palette=colours, marker="o", ax=ax,
                 errorbar=None, lw=1.8)
    for name, group in shown.groupby("series", sort=True):
        ax.errorbar(group["x"], group["mean"], yerr=[group["low"], group["high"]], fmt="none", capsize=4,
                    color=colours.get(name), lw=1)
    ax.axhline(0.0, color="grey", lw=1, ls="--")
    _depth_axis(ax, rows["depth"])
    ax.set_ylabel(measure_label("gradient_ratio"))
    ax.set_title("gradient ratio per cell (below 0: smaller at the first layer)", fontsize=9)
    ax.grid(alpha=0.3)
    _legend(ax, title="architecture", fontsize=7)


def _level_axis(ax: Axes, levels: Sequence[Any], name: str) -> dict[Any, float]:
    """A factor's levels along x: numbers at their values (log2 when all are positive and span a factor of 4
    or more), other levels at 0, 1, ...; a tick at every level. Returns level -> x."""
    ordered = list(dict.fromkeys(levels))
    numbers = pd.to_numeric(pd.Series(ordered, dtype=object), errors="coerce")
    if numbers.notna().all() and len(ordered):
        positions = dict(zip(ordered, numbers.astype(float)))
        values = sorted(set(positions.values()))
        if values[0] > 0 and values[-1] / values[0] >= 4:
            ax.set_xscale("log", base=2)
            ax.minorticks_off()
        ax.set_xticks(values)
        ax.set_xticklabels([f"{value:g}" for value in values])
    else:
        positions = {level: float(index) for index, level in enumerate(ordered)}
        ax.set_xticks(list(positions.values()))
        ax.set_xticklabels([str(level) for level in ordered])
    ax.set_xlabel(name)
    return positions


def _depth_lines(rows: pd.DataFrame, known: Sequence[str]) -> tuple[pd.DataFrame, list[str], dict[str, Any]]:
    """(``rows`` with a ``line`` column, the line names in order, a colour per line): one line per depth (and
    level of every other scientific factor) of a per-cell profile, coloured from shallow to deep."""
    extra = [name for name in _extra_factors(rows, known) if rows[name].notna().any()]
    rows = rows.sort_values(["depth", *extra], kind="stable")
    lines = [f"depth {row['depth']:g}" + (f", {_cell_label(row, extra)}" if extra else "")
             for _, row in rows.iterrows()]
    rows = rows.assign(line=lines)
    names = list(dict.fromkeys(lines))
    return rows, names, dict(zip(names, sns.color_palette("viridis", max(len(names), 1))))


def _profile_lines(rows: pd.DataFrame, ax: Axes, measure: str, known: Sequence[str]) -> dict[Any, float]:
    """One line per depth (and other factor level) of a distance or data profile: ``<measure>_mean`` against
    ``level`` with the interval as bars. Returns the x of each level."""
    _count, mean, low, high = profile_columns(measure)
    positions = _level_axis(ax, rows["level"].tolist(), str(rows["factor"].iloc[0]))
    shown = rows.loc[pd.to_numeric(rows[mean], errors="coerce").notna()]
    shown, names, colours = _depth_lines(shown, known)
    for name in names:
        group = shown.loc[shown["line"] == name]
        x = np.array([positions[level] for level in group["level"]], dtype=float)
        order = np.argsort(x)
        values = group[mean].to_numpy(dtype=float)[order]
        below = np.nan_to_num(np.clip(values - group[low].to_numpy(dtype=float)[order], 0, None))
        above = np.nan_to_num(np.clip(group[high].to_numpy(dtype=float)[order] - values, 0, None))
        ax.errorbar(x[order], values, yerr=[below, above], fmt="-o", capsize=3, lw=1.6, ms=5,
                    color=colours[name], label=name)
    ax.set_ylabel(measure_label(measure))
    ax.grid(alpha=0.3)
    return positions


def plot_distance_profile(rows: pd.DataFrame, ax: Axes, *, chance: float | None = None, title: str = "",
                          measure: str = "best_val_accuracy") -> None:
    """Accuracy against the distance factor for one architecture, one line per depth (and level of the other
    scientific factors) with interval bars, a dashed line at chance. ``rows``: the analysis'
    ``distance_profile`` rows of one architecture."""
    count = profile_columns(measure)[0]
    if rows.empty or not (pd.to_numeric(rows[count], errors="coerce") > 0).any():
        not_enough_data(ax, f"no tuning trial has a {measure}", title=title or measure_label(measure))
        return
    known = ("architecture", "depth", "factor", "level",
             *(name for item in ("best_val_accuracy", "test_accuracy") for name in profile_columns(item)))
    _profile_lines(rows, ax, measure, known)
    ax.set_ylim(-0.02, 1.02)  # accuracy: every architecture's panel on one scale
    ax.set_title(title or f"{measure_label(measure)} against {rows['factor'].iloc[0]}", fontsize=9)
    handles, labels = ax.get_legend_handles_labels()
    if chance is not None and math.isfinite(chance):
        handles.append(ax.axhline(chance, color="grey", lw=1, ls="--"))
        labels.append(f"chance ({chance:.3g})")
    if handles:
        ax.legend(handles, labels, fontsize=7)


def plot_data_profile(rows: pd.DataFrame, ax: Axes, *, measure: str, title: str = "") -> None:
    """A gap measure against a data factor for one architecture, one line per depth (and level of the other
    scientific factors) with interval bars and a dotted line at 0. ``rows``: the analysis' ``data_profile`` rows
    of one factor and architecture."""
    count = profile_columns(measure)[0]
    if rows.empty or count not in rows.columns or not (pd.to_numeric(rows[count], errors="coerce") > 0).any():
        not_enough_data(ax, f"no tuning trial that trained has a {measure}", title=title or measure_label(measure))
        return
    known = ("architecture", "depth", "factor", "level",
             *(name for item in DATA_PROFILE_MEASURES for name in profile_columns(item)))
    _profile_lines(rows, ax, measure, known)
    ax.axhline(0.0, color="grey", lw=0.8, ls=":")
    ax.set_title(title or f"{measure_label(measure)} against {rows['factor'].iloc[0]}", fontsize=9)
    _legend(ax, fontsize=7)


def plot_receptive_fields(profile: pd.DataFrame, ax: Axes, *, distances: Sequence[float] = (),
                          distance_name: str = "", palette: Mapping[str, Any] | None = None) -> None:
    """Each cell's theoretical receptive field (solid) and mean effective receptive field with its interval
    (dashed) against depth, one colour per architecture (and level of the other scientific factors), on a log
    y axis; ``distances`` as dotted horizontal lines. ``profile``: the analysis' ``receptive_field_profile``."""
    title = "receptive field per cell"
    effective = pd.to_numeric(profile.get("effective_receptive_field_mean", pd.Series(dtype=float)),
                              errors="coerce")
    theoretical = pd.to_numeric(profile.get("receptive_field", pd.Series(dtype=float)), errors="coerce")
    if profile.empty or not ((theoretical > 0).any() or (effective > 0).any()):
        not_enough_data(ax, "no tuning trial has a receptive field", title=title)
        return
    rows, names, extra = _with_series(profile, ("architecture", "depth", *RECEPTIVE_FIELD_PROFILE_COLUMNS))
    if palette and not extra:
        colours = {name: palette.get(name.lower(), palette.get(name)) for name in names}
    else:
        colours = dict(zip(names, sns.color_palette("colorblind" if len(names) <= 10 else "tab20", len(names))))
    drawn: set[tuple] = set()
    legend: list[tuple[Any, str]] = []  # in drawing order: each series' theoretical, then its effective field
    for name in names:
        group = rows.loc[rows["series"] == name].sort_values("depth")
        x = group["depth"].to_numpy(dtype=float) * _shift(names, name)
        fields = pd.to_numeric(group["receptive_field"], errors="coerce").to_numpy(dtype=float)
        architecture = str(group["architecture"].iloc[0]).upper()
        points = tuple(zip(group["depth"], fields))
        if np.isfinite(fields).any() and (architecture, points) not in drawn:  # the same field for several levels
            first = not any(seen == architecture for seen, _ in drawn)      # of the other factors: drawn once
            drawn.add((architecture, points))
            (line,) = ax.plot(x, fields, "-s", color=colours[name], lw=1.6, ms=4)
            legend.append((line, f"{architecture if first else name} theoretical"))
        mean = pd.to_numeric(group["effective_receptive_field_mean"], errors="coerce").to_numpy(dtype=float)
        if np.isfinite(mean).any():
            below = np.nan_to_num(np.clip(mean - group["effective_receptive_field_low"].to_numpy(dtype=float), 0,
                                          None))
            above = np.nan_to_num(np.clip(group["effective_receptive_field_high"].to_numpy(dtype=float) - mean, 0,
                                          None))
            legend.append((ax.errorbar(x, mean, yerr=[below, above], fmt="--o", capsize=3, lw=1.2, ms=4,
                                       color=colours[name]), f"{name} effective"))
    for distance in sorted({float(value) for value in distances if np.isfinite(float(value))}):
        ax.axhline(distance, color="#555555", lw=0.9, ls=":")
        ax.annotate(f"{distance_name} {distance:g}".strip(), (0.01, distance), xycoords=("axes fraction", "data"),
                    fontsize=7, color="#555555", va="bottom")
    ax.set_yscale("log")
    _depth_axis(ax, rows["depth"])
    ax.set_ylabel(measure_label("receptive_field"))
    ax.set_title(title + (f" (dotted: {distance_name})" if len(distances) and distance_name else ""), fontsize=9)
    ax.grid(alpha=0.3, which="both")
    if legend:  # many lines: beside the panel, not over it
        ax.legend([handle for handle, _ in legend], [label for _, label in legend], fontsize=7,
                  **({"loc": "upper left", "bbox_to_anchor": (1.01, 1.0)} if len(legend) > 4 else {}))


def plot_class_shares(counts: pd.DataFrame, ax: Axes, *, phase: str = "tune") -> None:
    """Stacked share of each class per cell (``counts``: the analysis' ``classification`` table)."""
    rows = counts.loc[counts["phase"] == phase] if "phase" in counts.columns else counts
    if rows.empty:
        not_enough_data(ax, f"no {phase}-phase trials", title="what happened to each trial")
        return
    rows = rows.sort_values(["architecture", "depth"], kind="stable")
    labels = [f"{str(architecture).upper()}\n{depth:g}" for architecture, depth
              in rows[["architecture", "depth"]].drop_duplicates().itertuples(index=False)]
    shown = rows.assign(cell=[f"{str(architecture).upper()}\n{depth:g}" for architecture, depth
                              in rows[["architecture", "depth"]].itertuples(index=False)])
    present = [name for name in CLASSES if name in set(shown["classification"])]
    sns.histplot(data=shown, x="cell", weights="share", hue="classification", hue_order=present,
                 multiple="stack", discrete=True, shrink=0.8, ax=ax, palette=_CLASS_COLOURS, alpha=0.9,
                 linewidth=0.5, edgecolor="white")
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("cell (architecture, depth)")
    ax.set_ylabel(f"share of {phase} trials")
    ax.set_title("what happened to each trial")
    if ax.get_legend() is not None:
        sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1.0), title="class", frameon=False)


def plot_trainable_fraction(frame: pd.DataFrame, ax: Axes, *, palette: Mapping[str, Any] | None = None) -> None:
    """Share of tuned settings that trained, per depth, with its Wilson interval as error bars.

    ``frame``: the analysis' ``trainability`` table.
    """
    if frame.empty:
        not_enough_data(ax, "no tuning trials", title="trainable fraction")
        return
    # one line per architecture and level of every other scientific factor
    frame, names, extra = _with_series(frame, ("architecture", "depth", "settings", "trained", "trainable_fraction",
                                               "fraction_low", "fraction_high", "failed_to_train", "diverged",
                                               "crashed", "best_train_loss"))
    palette = dict(zip(names, sns.color_palette("colorblind" if len(names) <= 10 else "tab20", len(names)))) \
        if extra else {name: colour for name, colour in (palette or architecture_palette(
            sorted(frame["architecture"].astype(str).unique()))).items()}
    for name, group in frame.groupby("series", sort=True):
        group = group.sort_values("depth")
        colour = palette.get(name, palette.get(str(group["architecture"].iloc[0])))
        ax.errorbar(group["depth"] * _shift(names, name), group["trainable_fraction"],
                    # clip float noise: a Wilson bound of 2.8e-17 at 0 of n would give a negative bar length
                    yerr=[(group["trainable_fraction"] - group["fraction_low"]).clip(lower=0),
                          (group["fraction_high"] - group["trainable_fraction"]).clip(lower=0)],
                    fmt="-o", capsize=3, color=colour, label=name, lw=1.8)
    _depth_axis(ax, frame["depth"])
    ax.set_ylim(-0.05, 1.05)
    ax.set_ylabel("share of tuned settings that trained")
    ax.set_title("trainable fraction (Wilson interval)")
    ax.grid(alpha=0.3)
    _legend(ax, title="architecture")


def plot_slope(row: pd.Series, ax: Axes, *, palette: Mapping[str, Any] | None = None) -> None:
    """One measure's slope per doubling of depth for both architectures, with their intervals.

    ``row``: one row of the verdict's slope table (first, second, slope_first,
    slope_first_low, slope_first_high, p_first, the same for second, status).
    """
    names = [str(row["first"]), str(row["second"])]
    palette = palette or architecture_palette(names)
    slopes = pd.DataFrame({
        "architecture": [name.upper() for name in names],
        "slope": [row["slope_first"], row["slope_second"]],
        "low": [row["slope_first_low"], row["slope_second_low"]],
        "high": [row["slope_first_high"], row["slope_second_high"]],
        "p": [row.get("p_first", math.nan), row.get("p_second", math.nan)],
    }).astype({"slope": float, "low": float, "high": float, "p": float})
    measure = str(row["measure"])
    if not np.isfinite(slopes["slope"]).any():
        not_enough_data(ax, "neither architecture has units at two or more depths", title=measure)
        return
    for position, item in enumerate(slopes.itertuples(index=False)):
        colour = palette.get(names[position])
        if not math.isfinite(item.slope):
            ax.text(0, position, f"{item.architecture}: no slope", va="center", ha="center", fontsize=8)
            continue
        low = item.slope - item.low if math.isfinite(item.low) else 0.0
        high = item.high - item.slope if math.isfinite(item.high) else 0.0
        ax.errorbar([item.slope], [position], xerr=[[max(low, 0.0)], [max(high, 0.0)]], fmt="o", capsize=4,
                    color=colour, ms=7, lw=2)
    ax.axvline(0.0, color="grey", lw=1, ls="--")
    ax.set_yticks(range(len(slopes)))
    ax.set_yticklabels([f"{item.architecture}\np = {item.p:.3g}" if math.isfinite(item.p) else item.architecture
                        for item in slopes.itertuples(index=False)])
    ax.set_ylim(-0.7, len(slopes) - 0.3)
    ax.invert_yaxis()
    ax.set_xlabel(f"slope of {measure} {row.get('axis', 'per doubling of depth')}")
    primary = " (primary)" if bool(row.get("primary", False)) else ""
    ax.set_title(f"{measure}{primary}: {row.get('status', '')}")
    ax.grid(alpha=0.3, axis="x")


def plot_learning_curve(frame: pd.DataFrame, ax: Axes, *, title: str | None = None) -> None:
    """Train and validation loss (inference mode) of one cell's winner: mean line, band = range over runs.

    ``frame``: the rows of the analysis' ``learning_curves`` table for one cell.
    """
    colours = {"train": sns.color_palette("colorblind")[0], "validation": sns.color_palette("colorblind")[3]}
    styles = {"train": "--", "validation": "-"}
    for split in ("train", "validation"):
        rows = frame.loc[frame["split"] == split].sort_values("epoch")
        if rows.empty:
            continue
        sns.lineplot(data=rows, x="epoch", y="mean", ax=ax, color=colours[split], linestyle=styles[split],
                     label=f"{split} loss", lw=1.6, errorbar=None)
        ax.fill_between(rows["epoch"], rows["low"], rows["high"], color=colours[split], alpha=0.2, lw=0)
    if title:
        ax.set_title(title, fontsize=9)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (nats)")
    ax.grid(alpha=0.3)
    legend = ax.get_legend()
    if legend is not None:
        legend.remove()


def plot_gap_heatmap(frame: pd.DataFrame, ax: Axes, *, title: str = "", vmin: float | None = None,
                     vmax: float | None = None) -> None:
    """Mean gap over depth x binned hyperparameter for one architecture (annotated cells).

    ``frame``: the rows of the analysis' ``gap_heatmaps`` table for one
    architecture and hyperparameter.
    """
    ordered = frame.sort_values(["bin_order", "depth"])
    columns = list(dict.fromkeys(ordered["bin"]))
    grid = ordered.pivot_table(index="depth", columns="bin", values="mean", aggfunc="first")
    grid = grid.reindex(columns=columns).sort_index()
    grid.index = [f"{depth:g}" for depth in grid.index]
    measure = str(frame["measure"].iloc[0]) if "measure" in frame.columns and not frame.empty else "gap"
    sns.heatmap(grid, ax=ax, annot=True, fmt=".2f", cmap="viridis", vmin=vmin, vmax=vmax,
                cbar_kws={"label": f"mean {measure_label(measure)}"}, linewidths=0.5, linecolor="white")
    hyperparameter = str(frame["hyperparameter"].iloc[0]) if not frame.empty else ""
    ax.set_xlabel(f"{hyperparameter} (bin)")
    ax.set_ylabel("depth")
    ax.set_title(title)
    ax.tick_params(axis="x", labelrotation=30)


def plot_nuisance_axis(values: pd.DataFrame, ax: Axes, *, edges: pd.Series | None = None,
                       palette: Mapping[str, Any] | None = None) -> None:
    """Best validation loss of every tuning trial against one nuisance hyperparameter.

    The edge zones of the searched range are shaded, and each cell's winner is
    drawn as a large star: stars inside a shaded zone are optima on a boundary.
    Trials that did not train are crosses. ``values``: the rows of the
    analysis' ``nuisance_values`` table for one hyperparameter; ``edges``: its
    row of the ``nuisance_edges`` table.
    """
    palette = palette or architecture_palette(values["architecture"])
    name = str(values["hyperparameter"].iloc[0]) if not values.empty else ""
    if edges is not None:
        if bool(edges["log"]):
            ax.set_xscale("log")
        ax.axvspan(edges["low"], edges["low_edge"], color=_EDGE_COLOUR, alpha=0.15, lw=0, label="range edge (boundary)")
        ax.axvspan(edges["high_edge"], edges["high"], color=_EDGE_COLOUR, alpha=0.15, lw=0)
        for position in (edges["low"], edges["high"]):
            ax.axvline(position, color=_EDGE_COLOUR, lw=1, ls="--")
    trained = values["classification"].isin([FITTING, OVERFITTING])
    for architecture, group in values.groupby(values["architecture"].astype(str), sort=True):
        colour = palette.get(architecture)
        label = architecture.upper()
        trained_rows = group.loc[trained.loc[group.index]]
        other_rows = group.loc[~trained.loc[group.index]]
        ax.scatter(trained_rows["value"], trained_rows["best_val_loss"], color=colour, s=22, alpha=0.8,
                   label=f"{label} trained")
        if not other_rows.empty:
            ax.scatter(other_rows["value"], other_rows["best_val_loss"], color=colour, marker="x", s=30,
                       label=f"{label} did not train")
        winners = group.loc[group["best_in_cell"].astype(bool)]
        if not winners.empty:
            ax.scatter(winners["value"], winners["best_val_loss"], color=colour, marker="*", s=160,
                       edgecolor="black", linewidth=0.8, label=f"{label} best per cell")
    ax.set_xlabel(name)
    ax.set_ylabel("best validation loss (nats)")
    ax.set_title(f"{name}: best val loss vs value")
    ax.grid(alpha=0.3)
    _legend(ax, loc="best", fontsize=7, framealpha=0.85)


def _extra_factors(frame: pd.DataFrame, known: Sequence[str]) -> list[str]:
    """Columns of a per-cell table beyond architecture, depth and its own: the other scientific factors."""
    return [column for column in frame.columns if column not in known]


def _cell_label(row: pd.Series, factors: Sequence[str]) -> str:
    return ", ".join(f"{name} {row[name]}" for name in factors)


def _with_series(frame: pd.DataFrame, known: Sequence[str], *, open_: str = " (",
                 close: str = ")") -> tuple[pd.DataFrame, list[str], list[str]]:
    """(``frame`` with a ``series`` column, the sorted series names, the extra factors): one series per
    architecture (upper case) and level of every other scientific factor of a per-cell table."""
    extra = _extra_factors(frame, known)
    series = frame["architecture"].astype(str).str.upper() if "architecture" in frame.columns \
        else pd.Series("all", index=frame.index)
    if extra:
        series = series + open_ + frame.apply(lambda row: _cell_label(row, extra), axis=1) + close
    frame = frame.assign(series=series.to_numpy())
    return frame, sorted(frame["series"].unique()), extra


def plot_best_of_k(frame: pd.DataFrame, ax: Axes, *, title: str = "") -> None:
    """Expected best validation accuracy of k settings, one line per depth (and level of any other scientific
    factor) (``frame``: the rows of the analysis' ``best_of_k`` table for one architecture)."""
    extra = _extra_factors(frame, ("architecture", "depth", "k", "expected_best", "settings"))
    frame = frame.sort_values(["depth", *extra], kind="stable")
    labels = [f"{row['depth']:g}" + (f", {_cell_label(row, extra)}" if extra else "") for _, row in frame.iterrows()]
    shown = frame.assign(depth=labels)
    order = list(dict.fromkeys(labels))
    sns.lineplot(data=shown, x="k", y="expected_best", hue="depth", hue_order=order, marker="o", ax=ax,
                 palette="viridis", errorbar=None)
    ax.set_xlabel("k (tuned settings drawn)")
    ax.set_ylabel("expected best validation accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if frame["k"].max() <= 12:
        ax.set_xticks(sorted(frame["k"].unique()))
    legend = ax.get_legend()
    if legend is not None:
        legend.set_title("depth")


def plot_winners(frame: pd.DataFrame, ax: Axes, *, measure: str, palette: Mapping[str, Any] | None = None) -> None:
    """Each cell winner's mean of one measure over its seeds with its selection-aware interval
    (``frame``: the analysis' ``winners`` table; rows of ``measure`` are drawn)."""
    rows = frame.loc[frame["measure"] == measure]
    rows, names, extra = _with_series(rows, ("architecture", "depth", "measure", "trial_id", "mean", "ci_low",
                                             "ci_high", "seeds", "winner_share"))
    palette = palette if palette and not extra else dict(zip(names, sns.color_palette("colorblind" if len(names) <= 10
                                                                                       else "tab20", len(names))))
    for name, group in rows.groupby("series", sort=True):
        group = group.sort_values("depth")
        mean = group["mean"].to_numpy(dtype=float)
        low = np.nan_to_num(np.clip(mean - group["ci_low"].to_numpy(dtype=float), 0, None))
        high = np.nan_to_num(np.clip(group["ci_high"].to_numpy(dtype=float) - mean, 0, None))
        colour = palette.get(name, palette.get(str(group["architecture"].iloc[0])))
        ax.errorbar(group["depth"].to_numpy(dtype=float) * _shift(names, name), mean, yerr=[low, high],
                    fmt="-o", capsize=4, color=colour, label=name, lw=1.8)
    _depth_axis(ax, rows["depth"])
    ax.set_ylabel(measure_label(measure))
    ax.set_title(f"tuned winners: {measure}")
    ax.grid(alpha=0.3)
    _legend(ax, title="architecture")


# ---------------------------------------------------------------- layout


def _new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _panels(count: int, panel_width: float, panel_height: float, columns: int = 3) -> tuple[Figure, list[Axes]]:
    """A figure with ``count`` panels in rows of at most ``columns``; the grid's spare axes are switched off."""
    columns = max(1, min(columns, count))
    rows = int(np.ceil(count / columns))
    figure = _new_figure(panel_width * columns, panel_height * rows)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax in axes[count:]:
        ax.set_axis_off()
    return figure, list(axes[:count])


def _single(reason: str, title: str, size: tuple[float, float] = (6.4, 3.6)) -> Figure:
    figure = _new_figure(*size)
    not_enough_data(figure.subplots(), reason, title=title)
    return figure


def _table(analysis: Analysis, name: str) -> pd.DataFrame:
    table = analysis.tables.get(name)
    return table if isinstance(table, pd.DataFrame) else pd.DataFrame()


def gap_vs_depth_figure(analysis: Analysis, palette: Mapping[str, Any]) -> Figure:
    measure = PRIMARY_MEASURES["overfitting"]
    figure = _new_figure(7.5, 4.6)
    ax = figure.subplots()
    units = measure_units(analysis.trials, measure) if measure in analysis.trials.columns \
        else pd.DataFrame(columns=["architecture", "depth", "value"])
    summary = _table(analysis, "cell_summary")
    plot_gap_vs_depth(units, summary if not summary.empty else pd.DataFrame(columns=["measure"]), ax,
                      measure=measure, palette=palette, target=analysis.target_train_loss)
    return figure


def trainability_figure(analysis: Analysis, palette: Mapping[str, Any]) -> Figure:
    figure = _new_figure(11.5, 4.2)
    left, right = figure.subplots(1, 2, width_ratios=[1.3, 1])
    counts = _table(analysis, "classification")
    if counts.empty:
        not_enough_data(left, "no trials were classified", title="what happened to each trial")
    else:
        plot_class_shares(counts, left)
    plot_trainable_fraction(_table(analysis, "trainability"), right, palette=palette)
    return figure


def slopes_figure(analysis: Analysis, palette: Mapping[str, Any]) -> Figure:
    verdict = analysis.verdict
    slopes = verdict.slopes if verdict is not None else None
    if slopes is None or slopes.empty:
        reason = (analysis.no_verdict_reason if verdict is None else None) or "no measure has slopes"
        return _single(str(reason), "slopes per doubling of depth")
    if "axis_id" in slopes.columns:  # the first claim's axis: one panel per measure along it
        slopes = slopes.loc[slopes["axis_id"] == slopes["axis_id"].iloc[0]]
    axis = str(slopes["axis"].iloc[0]) if "axis" in slopes.columns else "per doubling of depth"
    figure, axes = _panels(len(slopes), 4.3, 2.5)
    for ax, (_, row) in zip(axes, slopes.iterrows()):
        plot_slope(row, ax, palette=palette)
    figure.suptitle(f"Slope {axis} ({str(slopes['first'].iloc[0]).upper()} and {str(slopes['second'].iloc[0]).upper()}; "
                    "bars: intervals; p: one-arm permutation test)")
    return figure


def plot_profile(rows: pd.DataFrame, ax: Axes, *, palette: Mapping[str, Any], title: str, hue: str = "arm") -> None:
    """One panel of a claim's profile: mean of one measure per factor level and line (``hue``: the compared
    level, or the stratum of a one-arm claim), with interval bars.

    ``rows``: rows of the factor_profile table for one measure (and stratum, when ``hue`` is the arm).
    """
    if rows.empty:
        not_enough_data(ax, "no units at these levels", title=title)
        return
    shown = rows.assign(low=(rows["mean"] - rows["ci_low"]).clip(lower=0).fillna(0.0),
                        high=(rows["ci_high"] - rows["mean"]).clip(lower=0).fillna(0.0),
                        line=rows[hue].astype(str))
    sns.lineplot(data=shown, x="x", y="mean", hue="line", palette=palette, marker="o", ax=ax, errorbar=None)
    for line, group in shown.groupby("line", sort=True):
        ax.errorbar(group["x"], group["mean"], yerr=[group["low"], group["high"]], fmt="none", capsize=3,
                    color=palette.get(line), lw=1)
    ticks = rows.drop_duplicates("x").sort_values("x")
    ax.set_xticks(ticks["x"].tolist())
    ax.set_xticklabels([str(level) for level in ticks["level"]])
    ax.set_title(title, fontsize=9)
    ax.set_ylabel(str(rows["measure"].iloc[0]))
    ax.grid(alpha=0.3)
    _legend(ax, title=None)


def _profile_panels(profile: pd.DataFrame) -> tuple[list[tuple[pd.DataFrame, str, str, str]], dict[str, Any]]:
    """The panels of factor_profile rows: (rows, title, hue, factor) per claim axis, measure and (for a
    two-arm axis) stratum, and one palette for them all."""
    one_arm = profile.groupby("axis_id")["arm"].transform(lambda arms: bool((arms.astype(str) == "all").all()))
    profile = profile.assign(one_arm_axis=one_arm.astype(bool),
                             panel_stratum=np.where(one_arm.astype(bool), "", profile["stratum"].astype(str)))
    panels = profile[["axis_id", "factor", "measure", "panel_stratum", "one_arm_axis"]].drop_duplicates()
    arms = sorted(set(profile.loc[~profile["one_arm_axis"], "arm"].astype(str)))
    strata = sorted(set(profile.loc[profile["one_arm_axis"], "stratum"].astype(str)) - set(arms))
    palette = {**dict(zip(strata, sns.color_palette("colorblind" if len(strata) <= 10 else "tab20",
                                                  max(len(strata), 1)))),
               **architecture_palette(arms)}
    result = []
    for panel in panels.itertuples(index=False):
        rows = profile.loc[(profile["axis_id"] == panel.axis_id) & (profile["measure"] == panel.measure)
                           & (profile["panel_stratum"] == panel.panel_stratum)]
        where = f" ({panel.panel_stratum})" if panel.panel_stratum else ""
        result.append((rows, f"{panel.measure} vs {panel.factor}{where}",
                       "stratum" if panel.one_arm_axis else "arm", str(panel.factor)))
    return result, palette


def claim_profiles_figure(analysis: Analysis) -> Figure:
    profile = _table(analysis, "factor_profile")
    if profile.empty:
        reason = analysis.no_verdict_reason or "no claim has units at two levels of its factor"
        return _single(str(reason), "claim profiles")
    panels, palette = _profile_panels(profile)
    figure, axes = _panels(len(panels), 4.0, 3.0)
    for ax, (rows, title, hue, factor) in zip(axes, panels):
        plot_profile(rows, ax, palette=palette, title=title, hue=hue)
        ax.set_xlabel(factor)
    figure.suptitle("Claims: each measure against its factor (bars: 95% intervals over tuning trials)")
    return figure


def why_figure_names(analysis: Analysis) -> tuple[str, ...]:
    """The ``why_<explanation>`` figures of a study: one per explanation its why table gives a figure."""
    why = _table(analysis, "why")
    if why.empty or "figure" not in why.columns:
        return ()
    return tuple(str(name) for name in why["figure"] if isinstance(name, str) and name)


def _architectures(table: pd.DataFrame) -> list[str]:
    return sorted(table["architecture"].astype(str).unique()) if "architecture" in table.columns else ["all"]


def _of_architecture(table: pd.DataFrame, architecture: str) -> pd.DataFrame:
    return table.loc[table["architecture"].astype(str) == architecture] if "architecture" in table.columns \
        else table


def _evidence_panels(analysis: Analysis, explanation: str, palette: Mapping[str, Any]
                     ) -> tuple[list[Callable[[Axes], None]], int, list[list[int]]]:
    """The panels an explanation's figure draws before its claims' profiles, the columns of its grid, and the
    groups of panels (by position) that share one y scale: vanishing_gradients the gradient profile;
    receptive_field accuracy against the distance factor per architecture and the receptive fields against
    depth; overfitting each gap against each data factor per architecture (one y scale per gap and factor).
    Only the panels whose table the analysis has."""
    panels: list[Callable[[Axes], None]] = []
    shared: list[list[int]] = []
    if explanation == "vanishing_gradients":
        gradients = _table(analysis, "gradient_profile")
        if not gradients.empty:
            panels.append(lambda ax: plot_gradient_profile(gradients, ax, palette=palette))
        return panels, 3, shared
    if explanation == "receptive_field":
        distance = _table(analysis, "distance_profile")
        fields = _table(analysis, "receptive_field_profile")
        chance = analysis.chance.balanced_accuracy  # 1/K
        name = str(distance["factor"].iloc[0]) if not distance.empty else ""
        for architecture in (_architectures(distance) if not distance.empty else []):
            rows = _of_architecture(distance, architecture)
            panels.append(lambda ax, rows=rows, architecture=architecture: plot_distance_profile(
                rows, ax, chance=chance, title=f"{architecture.upper()}: accuracy against {name}"))
        if not fields.empty:
            levels = pd.to_numeric(distance["level"], errors="coerce").dropna().unique() if not distance.empty \
                else []
            panels.append(lambda ax: plot_receptive_fields(fields, ax, distances=list(levels), distance_name=name,
                                                           palette=palette))
        return panels, len(panels) if len(panels) == 4 else 3, shared  # 3 architectures and the fields: one row
    if explanation == "overfitting":
        data = _table(analysis, "data_profile")
        if data.empty:
            return panels, 3, shared
        names = _architectures(data)
        for factor in dict.fromkeys(data["factor"].astype(str)):
            rows = data.loc[data["factor"].astype(str) == factor]
            for measure in ("gap_at_target", "gap_at_best"):
                count = profile_columns(measure)[0]
                if count not in rows.columns or not (pd.to_numeric(rows[count], errors="coerce") > 0).any():
                    if measure == "gap_at_target":
                        continue  # not measured here: the gap at the best epoch stands alone
                shared.append(list(range(len(panels), len(panels) + len(names))))
                for architecture in names:
                    shown = _of_architecture(rows, architecture)
                    panels.append(lambda ax, shown=shown, measure=measure, architecture=architecture, factor=factor:
                                  plot_data_profile(shown, ax, measure=measure,
                                                    title=f"{architecture.upper()}: {measure} against {factor}"))
        return panels, len(names) if 2 <= len(names) <= 4 else 3, shared
    return panels, 3, shared


def _share_y(axes: Sequence[Axes]) -> None:
    """One y range for panels drawn apart (those with data: a 'not enough data' panel has no axis)."""
    drawn = [ax for ax in axes if ax.axison and ax.has_data()]
    if len(drawn) > 1:
        low = min(ax.get_ylim()[0] for ax in drawn)
        high = max(ax.get_ylim()[1] for ax in drawn)
        for ax in drawn:
            ax.set_ylim(low, high)


def why_figure(analysis: Analysis, explanation: str, palette: Mapping[str, Any]) -> Figure:
    """One explanation's figure: its evidence panels first (:func:`_evidence_panels`: the gradient profile of
    vanishing_gradients when gradients.csv was recorded, the distance and receptive-field profiles of
    receptive_field, the data profile of overfitting), then the profile of every claim tagged with it (its
    measure against its factor; a gradient_ratio claim along depth is the gradient panel already)."""
    evidence, columns, shared = _evidence_panels(analysis, explanation, palette)
    with_gradients = explanation == "vanishing_gradients" and bool(evidence)
    profile = _table(analysis, "factor_profile")
    panels: list[tuple[pd.DataFrame, str, str, str]] = []
    palette_rows: dict[str, Any] = {}
    if not profile.empty:
        keep = pd.Series(False, index=profile.index)
        for axis_id, measure in explanation_axes(analysis.claims).get(explanation, []):
            rows = (profile["axis_id"] == axis_id) & (profile["measure"] == measure)
            if with_gradients and measure == "gradient_ratio" and (profile.loc[rows, "factor"] == "depth").all():
                continue  # the gradient panel shows it per cell
            keep |= rows
        if keep.any():
            panels, palette_rows = _profile_panels(profile.loc[keep])
    count = len(panels) + len(evidence)
    question = EXPLANATION_DETAILS[explanation].question if explanation in EXPLANATION_DETAILS else ""
    title = f"Why? {explanation}: {question}" if question else f"Why? {explanation}"
    if count == 0:
        missing = {"vanishing_gradients": " (and no gradients.csv)",
                   "receptive_field": " (and no distance factor or receptive field was recorded)",
                   "overfitting": " (and no data factor is scientific)"}.get(explanation, "")
        return _single("no claim tagged with it has units at two levels of its factor" + missing, title,
                       size=(7.5, 3.6))
    figure, axes = _panels(count, 5.0 if columns <= 3 else 4.2, 3.4, columns=columns)
    for ax, draw in zip(axes, evidence):
        draw(ax)
    for group in shared:
        _share_y([axes[index] for index in group])
    for ax, (rows, panel_title, hue, factor) in zip(axes[len(evidence):], panels):
        plot_profile(rows, ax, palette=palette_rows, title=panel_title, hue=hue)
        ax.set_xlabel(factor)
    width = (5.0 if columns <= 3 else 4.2) * min(count, columns)
    figure.suptitle("\n".join(textwrap.wrap(title, int(width * 13))), fontsize=10)
    return figure


def learning_curves_figure(analysis: Analysis) -> Figure:
    curves = _table(analysis, "learning_curves")
    if curves.empty:
        return _single("no cell has a completed tuning trial with a finite validation loss", "learning curves")
    # one row of panels per architecture and level of every other scientific factor
    curves, names, _extra = _with_series(curves, ("architecture", "depth", "trial_id", "epoch", "split", "mean", "low",
                                                  "high", "seeds"), open_=", ", close="")
    depths = sorted(curves["depth"].unique())
    figure = _new_figure(3.2 * len(depths), 2.8 * len(names) + 0.4)
    axes = figure.subplots(len(names), len(depths), squeeze=False, sharey=True)
    for row, name in enumerate(names):
        for column, depth in enumerate(depths):
            ax = axes[row][column]
            cell = curves.loc[(curves["series"] == name) & (curves["depth"] == depth)]
            title = f"{name} depth {depth:g}"
            if cell.empty:
                not_enough_data(ax, "no completed tuning trial", title=title)
                continue
            runs = int(cell["seeds"].max())
            plot_learning_curve(cell, ax, title=f"{title}: trial {cell['trial_id'].iloc[0]} ({runs} run(s))")
    first = next((ax for ax in axes.ravel() if ax.lines), None)
    if first is not None:
        first.legend(loc="upper right")
    figure.suptitle("Learning curves of each cell's tuned winner (band: range over its runs)")
    return figure


def gap_heatmaps_figure(analysis: Analysis) -> Figure:
    heatmaps = _table(analysis, "gap_heatmaps")
    if heatmaps.empty:
        return _single("no tuning trial that trained has a gap at matched progress and a dropout or weight decay "
                       "value", "gap heatmaps")
    hyperparameters = list(dict.fromkeys(heatmaps["hyperparameter"]))
    names = sorted(heatmaps["architecture"].astype(str).unique())
    figure = _new_figure(4.6 * len(names), 3.6 * len(hyperparameters))
    # seaborn draws the whole figure once per annotated heatmap (to pick text colours): without the
    # layout engine meanwhile, those draws are cheap; the layout is done once when the figure is saved.
    figure.set_layout_engine("none")
    axes = figure.subplots(len(hyperparameters), len(names), squeeze=False)
    vmin, vmax = float(heatmaps["mean"].min()), float(heatmaps["mean"].max())
    for row, hyperparameter in enumerate(hyperparameters):
        for column, architecture in enumerate(names):
            ax = axes[row][column]
            rows = heatmaps.loc[(heatmaps["hyperparameter"] == hyperparameter)
                                & (heatmaps["architecture"].astype(str) == architecture)]
            title = f"{architecture.upper()}: gap over depth x {hyperparameter}"
            if rows.empty:
                not_enough_data(ax, "no trained trial", title=title)
                continue
            plot_gap_heatmap(rows, ax, title=title, vmin=vmin, vmax=vmax)
    figure.set_layout_engine("constrained")
    return figure


def nuisance_axes_figure(analysis: Analysis, palette: Mapping[str, Any]) -> Figure:
    values = _table(analysis, "nuisance_values")
    if values.empty:
        return _single("no numeric nuisance hyperparameter was tuned", "nuisance axes")
    edges = _table(analysis, "nuisance_edges")
    edges = edges.set_index("hyperparameter") if not edges.empty else pd.DataFrame()
    hyperparameters = list(dict.fromkeys(values["hyperparameter"]))
    figure, axes = _panels(len(hyperparameters), 4.6, 3.8)
    for ax, hyperparameter in zip(axes, hyperparameters):
        edge = edges.loc[hyperparameter] if hyperparameter in edges.index else None
        plot_nuisance_axis(values.loc[values["hyperparameter"] == hyperparameter], ax, edges=edge, palette=palette)
    return figure


def best_of_k_figure(analysis: Analysis) -> Figure:
    table = _table(analysis, "best_of_k")
    if table.empty:
        return _single("no tuning trial has a finite validation accuracy", "expected best of k")
    names = sorted(table["architecture"].astype(str).unique())
    figure = _new_figure(4.8 * len(names), 3.8)
    axes = figure.subplots(1, len(names), squeeze=False, sharey=True)[0]
    for ax, architecture in zip(axes, names):
        plot_best_of_k(table.loc[table["architecture"].astype(str) == architecture], ax,
                       title=f"{architecture.upper()}: expected best of k settings")
    return figure


def winners_figure(analysis: Analysis, palette: Mapping[str, Any]) -> Figure:
    table = _table(analysis, "winners")
    if table.empty:
        return _single("no cell winner has seeds with a finite measure (no repeat phase yet?)", "tuned winners")
    measures = list(dict.fromkeys(table["measure"]))
    figure, axes = _panels(len(measures), 4.6, 3.6)
    for ax, measure in zip(axes, measures):
        plot_winners(table, ax, measure=measure, palette=palette)
    figure.suptitle("Each cell's tuned winner (mean over seeds; interval includes which setting won the tuning)")
    return figure


def build_figures(analysis: Analysis) -> dict[str, Figure]:
    """Every figure of :data:`FIGURE_NAMES`, then the study's ``why_<explanation>`` figures, by name, drawn from
    the analysis' frames (nothing is written)."""
    architectures = analysis.trials["architecture"].astype(str).unique() if "architecture" in analysis.trials \
        else []
    palette = architecture_palette(architectures)
    with matplotlib.rc_context(_STYLE):
        figures = {
            "claim_profiles": claim_profiles_figure(analysis),
            "gap_vs_depth": gap_vs_depth_figure(analysis, palette),
            "trainability_vs_depth": trainability_figure(analysis, palette),
            "slopes": slopes_figure(analysis, palette),
            "learning_curves": learning_curves_figure(analysis),
            "gap_heatmaps": gap_heatmaps_figure(analysis),
            "nuisance_axes": nuisance_axes_figure(analysis, palette),
            "best_of_k": best_of_k_figure(analysis),
            "winners": winners_figure(analysis, palette),
        }
        ordered = {name: figures[name] for name in FIGURE_NAMES}
        for name in why_figure_names(analysis):
            ordered[name] = why_figure(analysis, name[len(WHY_FIGURE_PREFIX):], palette)
    return ordered
