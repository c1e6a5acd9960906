"""The thin drawing layer: each chart's data (:mod:`~airflow_ml.ml.charts`) to a PNG, and the PNGs to MLflow.

Matplotlib is imported inside each function and draws on a bare ``Figure`` with the Agg canvas: no pyplot,
no global backend switch, nothing a DAG file's parse imports.
"""

from __future__ import annotations

import functools
import logging
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec

if TYPE_CHECKING:
    from airflow_ml.ml.charts.drift_charts import FeatureDistribution
    from airflow_ml.ml.charts.gate_charts import GateScoresChart, GateSlicesChart
    from airflow_ml.ml.charts.holdout_charts import BinaryFit, RegressionFit

log = logging.getLogger(__name__)
_P = ParamSpec("_P")

CHALLENGER, CHAMPION, NAIVE, REFERENCE, CURRENT = "#4c78a8", "#f58518", "#9d9d9d", "#9d9d9d", "#4c78a8"
_COLORS = {"challenger": CHALLENGER, "champion": CHAMPION, "naive": NAIVE}
_DPI = 90


def _plain_text(draw: Callable[_P, Any]) -> Callable[_P, Any]:
    """Draw with matplotlib's mathtext off: a ``$`` in a slice value or a category is text, never math."""

    @functools.wraps(draw)
    def drawn(*args: _P.args, **kwargs: _P.kwargs) -> Any:
        from matplotlib import rc_context

        with rc_context({"text.parse_math": False}):
            return draw(*args, **kwargs)

    return drawn


def log_charts(client: Any, run_id: str, folder: str, drawings: Mapping[str, Callable[[Path], object]]) -> list[str]:
    """Draw each ``{file name: draw(path)}`` and log them in one call under ``folder`` of the MLflow run.

    A chart that cannot be drawn (any error: its data, matplotlib, the disk) is left out with a warning, and
    so are all of them when MLflow refuses the files: a picture never fails the task it illustrates.

    Returns:
        The artifact paths logged (``folder/name``), in the order given.
    """
    logged = []
    with tempfile.TemporaryDirectory(prefix="airflow-ml-charts-") as tmp:
        for name, draw in drawings.items():
            try:
                draw(Path(tmp, name))
            except Exception as exc:  # noqa: BLE001 - one chart's failure leaves the others
                log.warning("chart %s/%s was not drawn: %s: %s", folder, name, type(exc).__name__, exc)
                continue
            logged.append(f"{folder}/{name}")
        if logged:
            try:
                client.log_artifacts(run_id, tmp, folder)
            except Exception as exc:  # noqa: BLE001 - the run goes on without its pictures
                log.warning("charts %s were not logged to run %s: %s: %s", folder, run_id, type(exc).__name__, exc)
                return []
    return logged


@_plain_text
def draw_gate_scores(chart: GateScoresChart, path: Path) -> Any:
    """Each model a point with its interval as a horizontal bar, challenger on top; below, the paired
    improvement interval the gate judged against its required minimum. Returns the figure."""
    labels = [p.label for p in chart.points]
    gain = chart.improvement
    height = 0.55 * len(chart.points) + 1.3 + (1.5 if gain is not None else 0.0)
    rows, heights = (2, (len(chart.points) + 0.4, 1.0)) if gain is not None else (1, None)
    left = _label_room([*labels, "improvement"], 10)
    figure, panels = _figure(8, height, rows=rows, left=left, heights=heights, gap=0.95)
    axes = panels[0] if gain is not None else panels
    for row, point in enumerate(reversed(chart.points)):
        color = _COLORS.get(point.role, NAIVE)
        if point.interval is not None:
            _interval_row(axes, row, point.score, point.interval, color)
        else:  # the naive baseline: a constant, no interval
            axes.plot(point.score, row, "D", color=color, markersize=8)
        axes.annotate(
            _with_interval(point.score, point.interval),
            (point.score, row),
            xytext=(0, 9),
            textcoords="offset points",
            ha="center",
            fontsize=8,
        )
    axes.set_yticks(range(len(chart.points)), list(reversed(labels)))
    axes.set_ylim(-0.6, len(chart.points) - 0.4)
    axes.set_xlabel(chart.metric)
    figure.suptitle(chart.title, fontsize=9)  # over the whole figure: the label room would clip it
    axes.grid(axis="x", alpha=0.3)
    if gain is not None:
        _draw_improvement(panels[1], gain)
    _save(figure, path)
    return figure


def _draw_improvement(axes: Any, gain: Any) -> None:
    """The paired improvement (positive: the challenger is better) with its interval and the required bar."""
    if gain.interval is not None:
        _interval_row(axes, 0, gain.value, gain.interval, CHALLENGER)
    else:
        axes.plot(gain.value, 0, "o", color=CHALLENGER, markersize=8)
    axes.axvline(0.0, color=NAIVE, linewidth=1)
    if gain.required is not None:
        axes.axvline(gain.required, color="#d62728", linestyle="--", linewidth=1, label=f"required {gain.required:.4g}")
        axes.legend(loc="best", fontsize=7)
    axes.annotate(
        _with_interval(gain.value, gain.interval),
        (gain.value, 0),
        xytext=(0, 9),
        textcoords="offset points",
        ha="center",
        fontsize=8,
    )
    axes.set_yticks([0], ["improvement"])
    axes.set_ylim(-0.6, 0.8)
    unit = "fraction of the champion's score" if gain.mode == "relative" else "metric units"
    axes.set_xlabel(f"challenger's improvement ({unit}; positive is better)", fontsize=8)
    axes.set_title("the paired interval the gate judged (rows hard for both models cancel)", fontsize=9)
    axes.grid(axis="x", alpha=0.3)


def _interval_row(axes: Any, row: float, score: float, interval: tuple[float, float], color: str) -> None:
    """The interval as a bar with end caps from its own bounds, the point drawn apart (it may lie outside)."""
    low, high = interval
    axes.hlines(row, low, high, color=color, linewidth=2)
    axes.plot([low, high], [row, row], "|", color=color, markersize=12, markeredgewidth=2)
    axes.plot(score, row, "o", color=color, markersize=8)


def _with_interval(score: float, interval: tuple[float, float] | None) -> str:
    return f"{score:.4g}" + (f" [{interval[0]:.4g}, {interval[1]:.4g}]" if interval is not None else "")


@_plain_text
def draw_gate_slices(chart: GateSlicesChart, path: Path) -> Any:
    """Per slice, the challenger's and the champion's score side by side; breached slices marked in red.

    Returns the figure.
    """
    import numpy as np

    bars = list(reversed(chart.bars))  # the worst on top
    labels = [f"{b.name} ({b.rows})" + (" BREACHED" if b.breached else "") for b in bars]
    figure, axes = _figure(9, 0.32 * len(bars) + 1.3, left=_label_room(labels, 8))
    rows = np.arange(len(bars))
    ours = [b.challenger if b.challenger is not None else np.nan for b in bars]
    theirs = [b.champion if b.champion is not None else np.nan for b in bars]
    axes.barh(rows + 0.2, ours, height=0.38, color=CHALLENGER, label="challenger")
    axes.barh(rows - 0.2, theirs, height=0.38, color=CHAMPION, label="champion")
    axes.set_yticks(rows, labels, fontsize=8)
    for tick, bar in zip(axes.get_yticklabels(), bars, strict=True):
        if bar.breached:
            tick.set_color("#d62728")
    limit = f"; a judged slice may be at most {chart.max_regression:.0%} worse" if chart.max_regression else ""
    more = f"; {chart.left_off} more not shown" if chart.left_off else ""
    axes.set_title(f"{chart.metric} per slice (rows){limit}{more}", fontsize=10)
    axes.set_xlabel(chart.metric)
    axes.legend(loc="lower right", fontsize=8)
    axes.grid(axis="x", alpha=0.3)
    _save(figure, path)
    return figure


@_plain_text
def draw_drift(distributions: Sequence[FeatureDistribution], path: Path, *, title: str) -> Any:
    """One small panel per column: the champion's training snapshot's shares against the compared rows'.

    A column that cannot be drawn (no value on either side, say) gets a panel that says so; the others are
    drawn. Returns the figure.
    """
    import numpy as np

    if not distributions:
        raise ValueError("no column to draw")
    columns = min(3, len(distributions))
    lines = -(-len(distributions) // columns)
    figure, grid = _figure(
        4.2 * columns, 2.6 * lines + 0.7, rows=lines, columns=columns, top=0.7, gap=0.9, panels=len(distributions)
    )
    panels = np.atleast_1d(grid).ravel()
    for axes, feature in zip(panels, distributions, strict=True):
        try:
            _drift_panel(axes, feature)
        except Exception as exc:  # noqa: BLE001 - one column's panel never drops the others
            log.warning("drift chart: the panel of %s was not drawn: %s: %s", feature.column, type(exc).__name__, exc)
            axes.clear()
            _empty_panel(axes, f"not drawn: {type(exc).__name__}")
        color = {"error": "#d62728", "warn": "#b8860b"}.get(feature.severity, "black")
        axes.set_title(feature.heading, fontsize=9, color=color)
    panels[0].legend(fontsize=7)
    figure.suptitle(title, fontsize=10)
    _save(figure, path)
    return figure


def _drift_panel(axes: Any, feature: FeatureDistribution) -> None:
    import numpy as np

    if not feature.labels:
        _empty_panel(axes, "no non-missing value to draw")
        return
    if feature.edges is not None:
        # One filled outline, not a bar per bin: the same picture, a twentieth of the artists to draw.
        axes.stairs(
            feature.reference,
            feature.edges,
            fill=True,
            color=REFERENCE,
            alpha=0.6,
            label="champion's training snapshot",
        )
        axes.step(
            feature.edges,
            (*feature.current, feature.current[-1]),
            where="post",
            color=CURRENT,
            linewidth=1.6,
            label="this run's rows",
        )
    else:
        where = np.arange(len(feature.labels))
        axes.bar(where - 0.2, feature.reference, width=0.4, color=REFERENCE, label="champion's training snapshot")
        axes.bar(where + 0.2, feature.current, width=0.4, color=CURRENT, label="this run's rows")
        axes.set_xticks(where, feature.labels, rotation=45, ha="right", fontsize=7)
    axes.set_ylabel("share of non-missing rows", fontsize=8)
    axes.tick_params(labelsize=7)
    axes.locator_params(axis="y", nbins=4)  # fewer ticks: most of a panel's drawing time is its ticks


def _empty_panel(axes: Any, text: str) -> None:
    axes.text(0.5, 0.5, text, ha="center", va="center", fontsize=8, transform=axes.transAxes)
    axes.set_xticks([])
    axes.set_yticks([])


@_plain_text
def draw_regression_fit(fit: RegressionFit, path: Path) -> Any:
    """Left: predicted against actual with the identity line; right: residuals against predicted (the figure)."""
    figure, (left, right) = _figure(10, 4.2, columns=2, gap=0.9)
    low, high = fit.span
    left.scatter(fit.actual, fit.predicted, s=5, alpha=0.4, color=CHALLENGER, rasterized=True)
    left.plot([low, high], [low, high], color="black", linewidth=1, label="predicted = actual")
    left.set_xlabel("actual")
    left.set_ylabel("predicted")
    score = f", {fit.metric} {fit.score:.4g}" if fit.score is not None else ""
    sampled = f", {len(fit.actual)} drawn" if len(fit.actual) < fit.rows else ""
    left.set_title(f"holdout: {fit.rows} rows{sampled}{score}", fontsize=10)
    left.legend(fontsize=8)
    right.scatter(fit.predicted, fit.residuals, s=5, alpha=0.4, color=CHALLENGER, rasterized=True)
    right.axhline(0, color="black", linewidth=1)
    right.set_xlabel("predicted")
    right.set_ylabel("actual - predicted")
    right.set_title("residuals", fontsize=10)
    _save(figure, path)
    return figure


@_plain_text
def draw_binary_fit(fit: BinaryFit, path: Path) -> Any:
    """Left: the ROC curve; right: the calibration curve (mean predicted probability against positive rate).

    Returns the figure.
    """
    figure, (left, right) = _figure(10, 4.2, columns=2, gap=0.9)
    left.plot(fit.fpr, fit.tpr, color=CHALLENGER, linewidth=1.6)
    left.plot([0, 1], [0, 1], color=NAIVE, linestyle="--", linewidth=1, label="chance")
    left.set_xlabel("false positive rate")
    left.set_ylabel("true positive rate")
    auc = f", AUC {fit.auc:.4g}" if fit.auc is not None else ""
    left.set_title(f"ROC on the holdout ({fit.rows} rows{auc})", fontsize=10)
    left.legend(fontsize=8)
    right.plot([0, 1], [0, 1], color=NAIVE, linestyle="--", linewidth=1, label="perfectly calibrated")
    right.plot(fit.mean_predicted, fit.fraction_positive, "o-", color=CHALLENGER, label="model")
    right.set_xlabel("mean predicted probability (per bin)")
    right.set_ylabel("share of positives")
    right.set_title("calibration", fontsize=10)
    right.legend(fontsize=8)
    _save(figure, path)
    return figure


def _figure(
    width: float,
    height: float,
    *,
    rows: int = 1,
    columns: int = 1,
    left: float = 0.7,
    bottom: float = 0.6,
    top: float = 0.45,
    gap: float = 0.6,
    heights: Sequence[float] | None = None,
    panels: int | None = None,
) -> tuple[Any, Any]:
    """A bare Agg figure with its axes; the margins (inches) are fixed: a layout engine would double the cost.

    With ``panels``, only the first ``panels`` cells of the grid get axes (a list, row by row): an axes costs
    as much to make as to draw, so a hidden one is not made at all.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)  # Agg, explicitly: no display, no global backend
    panel_width = (width - left - 0.25 - gap * (columns - 1)) / columns
    panel_height = (height - bottom - top - gap * (rows - 1)) / rows
    figure.subplots_adjust(
        left=left / width,
        right=1 - 0.25 / width,
        bottom=bottom / height,
        top=1 - top / height,
        wspace=gap / panel_width,
        hspace=gap / panel_height,
    )
    ratios = {"height_ratios": list(heights)} if heights is not None else None
    if panels is not None:
        grid = figure.add_gridspec(rows, columns, **(ratios or {}))
        return figure, [figure.add_subplot(grid[i // columns, i % columns]) for i in range(panels)]
    return figure, figure.subplots(rows, columns, squeeze=True, gridspec_kw=ratios)


def _label_room(labels: Sequence[str], points: float) -> float:
    """Inches left of the axes for tick labels of that font size: about 0.6 of the size per character."""
    return min(5.0, 0.3 + max(map(len, labels), default=0) * points * 0.6 / 72)


def _save(figure: Any, path: Path) -> None:
    figure.savefig(path, dpi=_DPI)
