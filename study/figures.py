"""Figures of the depth study, drawn from frames that :mod:`study.analysis` computed.

Every ``plot_*`` function draws one precomputed frame onto a given matplotlib
``ax`` and computes nothing beyond reshaping (no means, no intervals, no
selection); :func:`write_figures` lays the panels out and writes each figure
as PNG and SVG. Figures are built on :class:`matplotlib.figure.Figure` with the
Agg canvas, so no window, no pyplot state and no display are needed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

#: File names (without suffix) of the figures write_figures produces, in order.
FIGURE_NAMES = ("gap_vs_depth", "overfit_onset_vs_depth", "trainability_vs_depth", "learning_curves",
                "gap_heatmaps", "nuisance_axes")

_MEASURE_LABELS = {
    "gap_at_best": "gap at best epoch (val - train loss, nats)",
    "gap_growth": "gap growth after best epoch (nats/epoch)",
    "best_epoch": "best epoch (lowest val loss)",
    "overfit_onset": "overfit onset (epoch)",
    "final_gap": "final gap (nats)",
}
_EDGE_COLOUR = "#d62728"
_STYLE = {"axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 9, "xtick.labelsize": 9,
          "ytick.labelsize": 9}


def architecture_palette(architectures: Sequence[str]) -> dict[str, Any]:
    """One colour-blind-safe colour per architecture, stable for a given set of names."""
    names = sorted({str(name) for name in architectures})
    return dict(zip(names, sns.color_palette("colorblind", max(len(names), 1))))


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
    ax.set_xlabel("depth (layers or blocks, log2 scale)")


def plot_learning_curve(frame: pd.DataFrame, ax: Axes, *, title: str | None = None) -> None:
    """Train and validation loss (inference mode) of one cell: mean line, band = range over seeds.

    ``frame``: rows of :func:`study.analysis.learning_curve_table` for one cell.
    """
    colours = {"train": sns.color_palette("colorblind")[0], "validation": sns.color_palette("colorblind")[3]}
    styles = {"train": "--", "validation": "-"}
    for split in ("train", "validation"):
        rows = frame.loc[frame["split"] == split].sort_values("epoch")
        if rows.empty:
            continue
        ax.plot(rows["epoch"], rows["mean"], styles[split], color=colours[split], label=f"{split} loss", lw=1.6)
        ax.fill_between(rows["epoch"], rows["low"], rows["high"], color=colours[split], alpha=0.2, lw=0)
    if title:
        ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (nats)")
    ax.grid(alpha=0.3)


def plot_measure_by_depth(frame: pd.DataFrame, ax: Axes, *, measure: str,
                          palette: Mapping[str, Any] | None = None) -> None:
    """Mean of one measure per depth and architecture, with its confidence band.

    ``frame``: :func:`study.analysis.cell_summary` (any measures; this one is selected).
    """
    rows = frame.loc[frame["measure"] == measure]
    palette = palette or architecture_palette(rows["architecture"])
    for architecture, group in rows.groupby("architecture", sort=True):
        group = group.sort_values("depth")
        colour = palette.get(architecture)
        ax.plot(group["depth"], group["mean"], "-o", color=colour, label=str(architecture).upper(), lw=1.8, ms=5)
        ax.fill_between(group["depth"], group["ci_low"], group["ci_high"], color=colour, alpha=0.2, lw=0)
    _depth_axis(ax, rows["depth"])
    ax.set_ylabel(_MEASURE_LABELS.get(measure, measure))
    ax.set_title(_MEASURE_LABELS.get(measure, measure).split(" (")[0])
    ax.grid(alpha=0.3)
    if not rows.empty:
        ax.legend(title="architecture")


def plot_trainable_fraction(frame: pd.DataFrame, ax: Axes, *, palette: Mapping[str, Any] | None = None) -> None:
    """Share of tuned settings that trained, per depth, with its Wilson interval as error bars.

    ``frame``: :func:`study.analysis.trainability_table`.
    """
    palette = palette or architecture_palette(frame["architecture"])
    names = sorted(frame["architecture"].astype(str).unique())
    for architecture, group in frame.groupby("architecture", sort=True):
        group = group.sort_values("depth")
        # Shift each architecture a little along the log2 axis so that equal fractions stay visible.
        shift = 2.0 ** (0.04 * (names.index(str(architecture)) - (len(names) - 1) / 2))
        ax.errorbar(group["depth"] * shift, group["trainable_fraction"],
                    # clip float noise: a Wilson bound of 2.8e-17 at 0 of n would give a negative bar length
                    yerr=[(group["trainable_fraction"] - group["fraction_low"]).clip(lower=0),
                          (group["fraction_high"] - group["trainable_fraction"]).clip(lower=0)],
                    fmt="-o", capsize=3, color=palette.get(architecture), label=str(architecture).upper(), lw=1.8)
    _depth_axis(ax, frame["depth"])
    ax.set_ylim(-0.05, 1.05)
    ax.set_ylabel("share of tuned settings that trained")
    ax.set_title("trainable fraction")
    ax.grid(alpha=0.3)
    if not frame.empty:
        ax.legend(title="architecture")


def plot_best_train_loss(frame: pd.DataFrame, ax: Axes, *, palette: Mapping[str, Any] | None = None,
                         chance_loss: float | None = None, train_threshold: float | None = None) -> None:
    """Lowest train loss any tuned setting reached, per depth (``frame``: trainability_table).

    ``chance_loss`` and ``train_threshold`` (the loss a trial must get below to count as
    trained) are drawn as horizontal lines when given."""
    palette = palette or architecture_palette(frame["architecture"])
    for architecture, group in frame.groupby("architecture", sort=True):
        group = group.sort_values("depth")
        ax.plot(group["depth"], group["best_train_loss"], "-o", color=palette.get(architecture),
                label=str(architecture).upper(), lw=1.8)
    if chance_loss is not None and np.isfinite(chance_loss):
        ax.axhline(chance_loss, color="grey", ls=":", label="chance loss")
    if train_threshold is not None and np.isfinite(train_threshold):
        ax.axhline(train_threshold, color=_EDGE_COLOUR, ls="--", lw=1, label="trained below this")
    _depth_axis(ax, frame["depth"])
    ax.set_ylabel("lowest train loss (nats)")
    ax.set_title("best train loss reached")
    ax.grid(alpha=0.3)
    if not frame.empty:
        ax.legend()


def plot_gap_heatmap(frame: pd.DataFrame, ax: Axes, *, title: str = "", vmin: float | None = None,
                     vmax: float | None = None) -> None:
    """Mean gap over depth x binned hyperparameter for one architecture (annotated cells).

    ``frame``: rows of :func:`study.analysis.gap_heatmap_table` for one
    architecture and hyperparameter.
    """
    ordered = frame.sort_values(["bin_order", "depth"])
    columns = list(dict.fromkeys(ordered["bin"]))
    grid = ordered.pivot_table(index="depth", columns="bin", values="mean", aggfunc="first")
    grid = grid.reindex(columns=columns).sort_index()
    grid.index = [f"{depth:g}" for depth in grid.index]
    sns.heatmap(grid, ax=ax, annot=True, fmt=".2f", cmap="viridis", vmin=vmin, vmax=vmax,
                cbar_kws={"label": "mean gap (nats)"}, linewidths=0.5, linecolor="white")
    hyperparameter = str(frame["hyperparameter"].iloc[0]) if not frame.empty else ""
    ax.set_xlabel(f"{hyperparameter} (bin)")
    ax.set_ylabel("depth")
    ax.set_title(title)
    ax.tick_params(axis="x", labelrotation=30)


def plot_nuisance_axis(values: pd.DataFrame, ax: Axes, *, edges: pd.Series | None = None,
                       palette: Mapping[str, Any] | None = None) -> None:
    """Best validation loss of every tuning trial against one nuisance hyperparameter.

    The edge zones of the searched range are shaded, and each cell's winning
    setting is drawn as a large star: stars inside a shaded zone are optima on
    a boundary. Trials that failed to train are crosses.
    ``values``: rows of :func:`study.analysis.nuisance_value_table` for one
    hyperparameter; ``edges``: its row of :func:`study.analysis.search_edges`.
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
    failed = values["classification"] == "failed to train"
    for architecture, group in values.groupby("architecture", sort=True):
        colour = palette.get(architecture)
        trained_rows = group.loc[~failed.loc[group.index]]
        failed_rows = group.loc[failed.loc[group.index]]
        ax.scatter(trained_rows["value"], trained_rows["best_val_loss"], color=colour, s=22, alpha=0.8,
                   label=f"{str(architecture).upper()} trained")
        if not failed_rows.empty:
            ax.scatter(failed_rows["value"], failed_rows["best_val_loss"], color=colour, marker="x", s=30,
                       label=f"{str(architecture).upper()} failed to train")
        winners = group.loc[group["best_in_cell"].astype(bool)] if "best_in_cell" in group.columns else group.iloc[0:0]
        if not winners.empty:
            ax.scatter(winners["value"], winners["best_val_loss"], color=colour, marker="*", s=160,
                       edgecolor="black", linewidth=0.8, label=f"{str(architecture).upper()} best per cell")
    ax.set_xlabel(name)
    ax.set_ylabel("best validation loss (nats)")
    ax.set_title(f"{name}: best val loss vs value")
    ax.grid(alpha=0.3)
    if not values.empty:
        ax.legend(loc="best", fontsize=7, framealpha=0.85)


# ---------------------------------------------------------------- writing


def _new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, out_dir: Path, name: str, dpi: int) -> list[Path]:
    png, svg = out_dir / f"{name}.png", out_dir / f"{name}.svg"
    figure.savefig(png, format="png", dpi=dpi, metadata={"Software": None})
    figure.savefig(svg, format="svg", metadata={"Date": None})
    return [png, svg]


def _grid(count: int, columns: int) -> tuple[int, int]:
    columns = max(1, min(columns, count))
    return int(np.ceil(count / columns)), columns


def write_figures(
    out_dir: Path, *, learning_curves: pd.DataFrame | None = None, cell_summary: pd.DataFrame | None = None,
    trainability: pd.DataFrame | None = None, gap_heatmaps: pd.DataFrame | None = None,
    nuisance_values: pd.DataFrame | None = None, nuisance_edges: pd.DataFrame | None = None,
    chance_loss: float | None = None, train_threshold: float | None = None, dpi: int = 110,
) -> list[Path]:
    """Write every figure whose frame is given (and not empty) as PNG and SVG; return the paths.

    The keyword arguments are the ``figure_frames`` of :func:`study.analysis.analyse`.
    Figures: gap_vs_depth (the isolation plot: gap at best and gap growth),
    overfit_onset_vs_depth (best epoch and onset), trainability_vs_depth,
    learning_curves (one panel per cell), gap_heatmaps (depth x dropout and
    depth x weight decay), nuisance_axes (one panel per nuisance hyperparameter).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    architectures: list[str] = []
    for frame in (learning_curves, cell_summary, trainability, gap_heatmaps, nuisance_values):
        if frame is not None and "architecture" in frame.columns:
            architectures += [str(name) for name in frame["architecture"].unique()]
    palette = architecture_palette(architectures)
    written: list[Path] = []

    with matplotlib.rc_context(_STYLE):
        for name, measures in (("gap_vs_depth", ("gap_at_best", "gap_growth")),
                               ("overfit_onset_vs_depth", ("best_epoch", "overfit_onset"))):
            if cell_summary is None:
                continue
            present = [measure for measure in measures if (cell_summary["measure"] == measure).any()]
            if not present:
                continue
            figure = _new_figure(5.2 * len(present), 4.0)
            axes = figure.subplots(1, len(present), squeeze=False)[0]
            for ax, measure in zip(axes, present):
                plot_measure_by_depth(cell_summary, ax, measure=measure, palette=palette)
            written += _save(figure, out_dir, name, dpi)

        if trainability is not None and not trainability.empty:
            figure = _new_figure(10.4, 4.0)
            left, right = figure.subplots(1, 2)
            plot_trainable_fraction(trainability, left, palette=palette)
            plot_best_train_loss(trainability, right, palette=palette, chance_loss=chance_loss,
                                 train_threshold=train_threshold)
            written += _save(figure, out_dir, "trainability_vs_depth", dpi)

        if learning_curves is not None and not learning_curves.empty:
            names = sorted(learning_curves["architecture"].astype(str).unique())
            depths = sorted(learning_curves["depth"].unique())
            figure = _new_figure(3.2 * len(depths), 2.8 * len(names))
            axes = figure.subplots(len(names), len(depths), squeeze=False, sharey=True)
            for row, architecture in enumerate(names):
                for column, depth in enumerate(depths):
                    ax = axes[row][column]
                    cell = learning_curves.loc[(learning_curves["architecture"].astype(str) == architecture)
                                               & (learning_curves["depth"] == depth)]
                    if cell.empty:
                        ax.set_axis_off()
                        ax.text(0.5, 0.5, "no trials", ha="center", va="center", transform=ax.transAxes)
                        continue
                    seeds = int(cell["seeds"].max())
                    plot_learning_curve(cell, ax, title=f"{architecture.upper()} depth {depth:g} ({seeds} seeds)")
            axes[0][0].legend(loc="upper right")
            figure.suptitle("Learning curves of each cell's best setting (band: range over seeds)")
            written += _save(figure, out_dir, "learning_curves", dpi)

        if gap_heatmaps is not None and not gap_heatmaps.empty:
            hyperparameters = list(dict.fromkeys(gap_heatmaps["hyperparameter"]))
            names = sorted(gap_heatmaps["architecture"].astype(str).unique())
            figure = _new_figure(4.6 * len(names), 3.6 * len(hyperparameters))
            axes = figure.subplots(len(hyperparameters), len(names), squeeze=False)
            vmin, vmax = float(gap_heatmaps["mean"].min()), float(gap_heatmaps["mean"].max())
            for row, hyperparameter in enumerate(hyperparameters):
                for column, architecture in enumerate(names):
                    ax = axes[row][column]
                    rows = gap_heatmaps.loc[(gap_heatmaps["hyperparameter"] == hyperparameter)
                                            & (gap_heatmaps["architecture"].astype(str) == architecture)]
                    if rows.empty:
                        ax.set_axis_off()
                        continue
                    plot_gap_heatmap(rows, ax, title=f"{architecture.upper()}: gap over depth x {hyperparameter}",
                                     vmin=vmin, vmax=vmax)
            written += _save(figure, out_dir, "gap_heatmaps", dpi)

        if nuisance_values is not None and not nuisance_values.empty:
            hyperparameters = list(dict.fromkeys(nuisance_values["hyperparameter"]))
            rows_count, columns = _grid(len(hyperparameters), 3)
            figure = _new_figure(4.6 * columns, 3.8 * rows_count)
            axes = figure.subplots(rows_count, columns, squeeze=False).ravel()
            edges = nuisance_edges.set_index("hyperparameter") if nuisance_edges is not None else pd.DataFrame()
            for ax, hyperparameter in zip(axes, hyperparameters):
                edge = edges.loc[hyperparameter] if hyperparameter in edges.index else None
                plot_nuisance_axis(nuisance_values.loc[nuisance_values["hyperparameter"] == hyperparameter], ax,
                                   edges=edge, palette=palette)
            for ax in axes[len(hyperparameters):]:
                ax.set_axis_off()
            written += _save(figure, out_dir, "nuisance_axes", dpi)
    return written
