"""Tests of study.figures and study.html_report: files written, content drawn, escaping, and a real browser."""
from __future__ import annotations

import base64
import math
import re
import shutil
import subprocess
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from study import analysis, figures, html_report
from study.measures import measures_table

CHROMIUM = Path("/usr/bin/chromium")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EVIL = "<script>alert('x')</script>"


# ---------------------------------------------------------------- hand-made frames


def hand_made_frames() -> dict:
    depths = [1, 2, 4]
    curves = []
    for architecture in ("lstm", "cnn"):
        for depth in depths:
            for epoch in range(1, 6):
                for split, mean in (("train", 1.0 / epoch), ("validation", 0.5 + abs(epoch - 3) * 0.1)):
                    curves.append({"architecture": architecture, "depth": depth, "epoch": epoch, "split": split,
                                   "mean": mean, "low": mean - 0.05, "high": mean + 0.05, "seeds": 3})
    summary = []
    for measure in ("gap_at_best", "gap_growth", "best_epoch", "overfit_onset"):
        for architecture, slope in (("lstm", -2.0), ("cnn", 0.0)):
            for depth in depths:
                mean = 10 + slope * math.log2(depth)
                summary.append({"measure": measure, "architecture": architecture, "depth": depth, "mean": mean,
                                "ci_low": mean - 0.5, "ci_high": mean + 0.5, "units": 3})
    trainability = pd.DataFrame({
        "architecture": ["lstm"] * 3 + ["cnn"] * 3, "depth": depths * 2, "settings": 4,
        "trained": [4, 3, 1, 4, 4, 4], "trainable_fraction": [1.0, 0.75, 0.25, 1.0, 1.0, 1.0],
        "fraction_low": [0.5, 0.3, 0.05, 0.5, 0.5, 0.5], "fraction_high": [1.0, 0.95, 0.7, 1.0, 1.0, 1.0],
        "best_train_loss": [0.1, 0.2, 0.9, 0.1, 0.1, 0.1],
    })
    heatmaps = []
    for hyperparameter, bins in (("dropout", ["0-0.25", "0.25-0.5"]), ("weight_decay", ["0", "1e-06-0.0001"])):
        for architecture in ("lstm", "cnn"):
            for depth in depths:
                for order, label in enumerate(bins):
                    heatmaps.append({"hyperparameter": hyperparameter, "architecture": architecture, "depth": depth,
                                     "bin": label, "bin_order": order - (label == "0"), "mean": 0.1 * depth + order,
                                     "trials": 2})
    values = pd.DataFrame({
        "hyperparameter": ["learning_rate"] * 4 + ["dropout"] * 4,
        "value": [1e-4, 1e-3, 9.5e-3, 1e-2, 0.0, 0.1, 0.3, 0.5],
        "best_val_loss": [0.9, 0.7, 0.5, 1.6, 0.8, 0.6, 0.7, 0.9],
        "architecture": ["lstm", "lstm", "cnn", "lstm", "cnn", "cnn", "lstm", "lstm"],
        "depth": [1, 1, 1, 4, 1, 1, 2, 2],
        "classification": ["fitting", "overfitting", "fitting", "failed to train"] + ["fitting"] * 4,
        "best_in_cell": [False, True, True, False, False, True, True, False],
    })
    edges = pd.DataFrame({"hyperparameter": ["learning_rate", "dropout"], "low": [1e-4, 0.0], "high": [1e-2, 0.5],
                          "log": [True, False], "low_edge": [1e-4 * 100 ** 0.05, 0.025],
                          "high_edge": [1e-2 / 100 ** 0.05, 0.475]})
    return {"learning_curves": pd.DataFrame(curves), "cell_summary": pd.DataFrame(summary),
            "trainability": trainability, "gap_heatmaps": pd.DataFrame(heatmaps), "nuisance_values": values,
            "nuisance_edges": edges, "chance_loss": math.log(5), "train_threshold": math.log(5) / 2}


def new_axes():
    figure = Figure()
    FigureCanvasAgg(figure)
    return figure.subplots()


# ---------------------------------------------------------------- figures


def test_write_figures_writes_valid_png_and_svg(tmp_path):
    paths = figures.write_figures(tmp_path / "figures", **hand_made_frames())
    assert [path.name for path in paths] == [f"{name}.{suffix}" for name in figures.FIGURE_NAMES
                                             for suffix in ("png", "svg")]
    for path in paths:
        assert path.is_file() and path.stat().st_size > 1000
        if path.suffix == ".png":
            assert path.read_bytes().startswith(PNG_SIGNATURE)
            with Image.open(path) as image:
                image.verify()
            with Image.open(path) as image:
                assert image.width > 300 and image.height > 200
        else:
            assert ElementTree.parse(path).getroot().tag.endswith("svg")


def test_write_figures_skips_what_is_not_given(tmp_path):
    frames = hand_made_frames()
    paths = figures.write_figures(tmp_path, trainability=frames["trainability"],
                                  learning_curves=frames["learning_curves"].iloc[0:0])
    assert [path.name for path in paths] == ["trainability_vs_depth.png", "trainability_vs_depth.svg"]


def test_measure_by_depth_draws_the_given_means_on_a_log2_depth_axis():
    ax = new_axes()
    summary = hand_made_frames()["cell_summary"]
    figures.plot_measure_by_depth(summary, ax, measure="best_epoch")
    lines = {line.get_label(): line for line in ax.lines}
    assert set(lines) == {"LSTM", "CNN"}
    assert list(lines["LSTM"].get_xdata()) == [1, 2, 4]
    assert np.allclose(lines["LSTM"].get_ydata(), [10, 8, 6])
    assert ax.get_xscale() == "log"
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["1", "2", "4"]
    assert len(ax.collections) == 2  # one confidence band per architecture


def test_nuisance_axis_shades_both_range_edges_and_marks_winners():
    ax = new_axes()
    frames = hand_made_frames()
    values = frames["nuisance_values"]
    edges = frames["nuisance_edges"].set_index("hyperparameter").loc["learning_rate"]
    figures.plot_nuisance_axis(values.loc[values["hyperparameter"] == "learning_rate"], ax, edges=edges)
    spans = sorted((patch.get_x(), patch.get_x() + patch.get_width()) for patch in ax.patches)
    assert spans[0] == pytest.approx((1e-4, 1e-4 * 100 ** 0.05))
    assert spans[1] == pytest.approx((1e-2 / 100 ** 0.05, 1e-2))
    assert ax.get_xscale() == "log"
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert "LSTM failed to train" in labels and "CNN best per cell" in labels


def test_gap_heatmap_keeps_bin_order_and_annotates_cells():
    ax = new_axes()
    heatmaps = hand_made_frames()["gap_heatmaps"]
    rows = heatmaps.loc[(heatmaps["hyperparameter"] == "weight_decay") & (heatmaps["architecture"] == "lstm")]
    figures.plot_gap_heatmap(rows, ax, title="t")
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["0", "1e-06-0.0001"]
    assert [tick.get_text() for tick in ax.get_yticklabels()] == ["1", "2", "4"]
    assert "1.40" in [text.get_text() for text in ax.texts]  # depth 4, second bin: 0.4 + 1


# ---------------------------------------------------------------- HTML and Markdown


def statement(claim: str, status: str) -> analysis.Statement:
    return analysis.Statement(claim=claim, status=status, measure="best_epoch", direction="negative supports",
                              estimate=-2.0, ci_low=-2.5, ci_high=-1.5, p_value=0.001,
                              explanation=f"because {EVIL} | a pipe")


def hand_made_verdict() -> analysis.Verdict:
    slopes = pd.DataFrame([{"measure": "best_epoch", "question": "overfitting", "primary": True,
                            "supports_if": "negative", "slope_first": -2.0, "slope_second": 0.0, "difference": -2.0,
                            "ci_low": -2.5, "ci_high": -1.5, "p_value": 0.001, "status": "supported"}])
    return analysis.Verdict(
        trainability=statement("deeper LSTMs are harder to train than deeper CNNs", analysis.INCONCLUSIVE),
        overfitting=statement("deeper LSTMs overfit faster than deeper CNNs", analysis.SUPPORTED),
        caveats=(f"cell {EVIL}: best dropout on the lower edge",), held_fixed=("Fixed: width=32.",),
        thresholds=analysis.Thresholds(), first="lstm", second="cnn", confidence=0.95, resamples=2000, seed=0,
        slopes=slopes)


def test_render_html_puts_the_verdict_first_embeds_pngs_and_escapes(tmp_path):
    paths = figures.write_figures(tmp_path, **hand_made_frames())
    tables = {f"table {EVIL}": pd.DataFrame({"architecture": [EVIL, "cnn"], "value": [1.23456, math.nan]})}
    page = html_report.render_html(hand_made_verdict(), tables, paths, title=f"Study {EVIL}")
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert page.index('id="verdict"') < page.index("<img") < page.index('id="tables"')
    assert page.count("<title>Study &lt;script&gt;") == 1
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    pngs = [path for path in paths if path.suffix == ".png"]
    assert len(embedded) == len(pngs)
    assert [base64.b64decode(data) for data in embedded] == [path.read_bytes() for path in pngs]
    assert "1.235" in page and "n/a" in page
    assert 'class="status supported"' in page and 'class="status inconclusive"' in page
    assert "src=\"http" not in page and "href=" not in page  # nothing outside the page


def test_verdict_markdown_lists_statements_measures_and_caveats():
    text = html_report.verdict_markdown(hand_made_verdict())
    assert text.startswith("## Verdict")
    assert "| deeper LSTMs overfit faster than deeper CNNs | **supported** | best_epoch | -2 | [-2.5, -1.5] |" in text
    assert "| overfitting | best_epoch | yes | negative |" in text
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "\\| a pipe" in text
    assert "train_drop_fraction=0.5" in text


# ---------------------------------------------------------------- the whole page in a real browser


def small_study() -> pd.DataFrame:
    rows = []
    count = 0
    for architecture in ("lstm", "cnn"):
        for depth in (1, 2, 4):
            for phase, seeds in (("repeat", 3), ("tune", 2)):
                for seed in range(seeds):
                    best = int((12 - 2 * math.log2(depth) if architecture == "lstm" else 10) + seed)
                    fails = phase == "tune" and architecture == "lstm" and depth == 4 and seed == 1
                    for epoch in range(1, 16):
                        train = math.log(5) if fails else 1.5 * math.exp(-0.3 * epoch) + 0.02
                        val = math.log(5) if fails else 0.6 + 0.08 * abs(epoch - best)
                        rows.append({"trial_id": f"{phase}-{count}", "phase": phase, "architecture": architecture,
                                     "depth": depth, "dropout": 0.1 * (seed + 1), "weight_decay": 1e-4,
                                     "learning_rate": 1e-3, "seed": seed, "epoch": epoch, "train_loss": train,
                                     "val_loss": val, "val_accuracy": 0.5})
                    count += 1
    return pd.DataFrame(rows)


CHECK_SCRIPT = """<script>
window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.images);
  var decoded = images.filter(function (image) { return image.complete && image.naturalWidth > 0; }).length;
  var verdict = document.getElementById('verdict');
  var box = verdict ? verdict.getBoundingClientRect() : null;
  var style = verdict ? window.getComputedStyle(verdict) : null;
  var visible = !!verdict && box.height > 0 && box.width > 0 && box.top >= 0 && box.top < window.innerHeight
    && style.visibility !== 'hidden' && style.display !== 'none'
    && /overfit faster/.test(verdict.innerText);
  var first = !!verdict && images.length > 0
    && !!(verdict.compareDocumentPosition(images[0]) & Node.DOCUMENT_POSITION_FOLLOWING);
  document.body.setAttribute('data-check',
    'images=' + decoded + '/' + images.length + ';verdict=' + (visible ? 'visible' : 'hidden')
    + ';first=' + (first ? 'verdict' : 'not-verdict'));
});
</script>"""


def chromium(arguments: list[str], profile: Path) -> subprocess.CompletedProcess:
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--hide-scrollbars", f"--user-data-dir={profile}", "--window-size=1280,1600", *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(not CHROMIUM.is_file(), reason="headless browser check needs /usr/bin/chromium: "
                    "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium")
def test_report_opens_in_headless_chromium_with_every_image_decoded(tmp_path):
    epochs = small_study()
    result = analysis.analyse(epochs, measures_table(epochs), num_classes=5, resamples=200)
    paths = figures.write_figures(tmp_path / "figures", **result.figure_frames)
    page = html_report.render_html(result.verdict, result.tables, paths, title=f"small study {EVIL}")
    report = tmp_path / "report.html"
    report.write_text(page, encoding="utf-8")
    # The report itself has no script; a copy gets the check, which writes its answer into the DOM.
    checked = tmp_path / "checked.html"
    checked.write_text(page.replace("</body>", CHECK_SCRIPT + "</body>"), encoding="utf-8")

    dump = chromium(["--virtual-time-budget=10000", "--dump-dom", checked.as_uri()], tmp_path / "profile-dom")
    match = re.search(r'data-check="([^"]*)"', dump.stdout)
    assert match, f"no check result in the DOM; chromium said: {dump.stderr[-2000:]}"
    images = sum(1 for path in paths if path.suffix == ".png")
    assert match.group(1) == f"images={images}/{images};verdict=visible;first=verdict"
    assert "&lt;script&gt;alert" in dump.stdout  # the escaped title is text, not a script

    screenshot = tmp_path / "report.png"
    shot = chromium([f"--screenshot={screenshot}", report.as_uri()], tmp_path / "profile-shot")
    assert screenshot.is_file(), f"no screenshot; chromium said: {shot.stderr[-2000:]}"
    with Image.open(screenshot) as image:
        assert image.size == (1280, 1600)
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
        assert colours is None or len(colours) > 50  # a rendered page, not a blank one
    shutil.rmtree(tmp_path / "profile-dom", ignore_errors=True)
    shutil.rmtree(tmp_path / "profile-shot", ignore_errors=True)
