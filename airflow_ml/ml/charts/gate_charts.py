"""The gate's two charts as data: the three scores with their bootstrap intervals, and both models per slice.

Pure Python over the decision record (``GateDecision.to_dict()`` plus the gate step's keys, or the JSON of
``gate/decision.json``): what is drawn is what was decided on, number for number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_ml.ml.markdown_cells import md_cell

#: Artifact folder of the gate's charts on the challenger's training run (beside ``gate/decision.json``).
GATE_CHARTS_FOLDER = "gate/charts"
GATE_SCORES_PNG = "scores.png"
GATE_SLICES_PNG = "slices.png"
#: The most slices one chart (and the approval screen's table) shows: the worst ones.
MAX_SLICES = 30


@dataclass(frozen=True)
class ScorePoint:
    """One model's holdout score and, when bootstrapped, its interval (``low``, ``high``)."""

    role: str  # challenger, champion or naive
    label: str
    score: float
    interval: tuple[float, float] | None


@dataclass(frozen=True)
class ImprovementPoint:
    """The challenger's improvement over the champion, its paired interval (the one the gate judged), the bar.

    ``mode`` is ``relative`` (a fraction of the champion's score) or ``absolute``; positive is better.
    """

    value: float
    interval: tuple[float, float] | None
    required: float | None
    mode: str


@dataclass(frozen=True)
class GateScoresChart:
    """Challenger, champion and naive baseline on the same holdout, each a point with its interval.

    ``improvement`` is the paired improvement (None without a champion): each model's own interval may
    overlap the other's while the improvement's, where rows hard for both cancel out, clears the bar.
    """

    metric: str
    direction: str
    holdout_rows: int | None
    confidence: float | None
    points: tuple[ScorePoint, ...]
    improvement: ImprovementPoint | None = None

    @property
    def title(self) -> str:
        """What the chart shows, with the metric's direction and the interval's confidence."""
        better = "lower" if self.direction == "minimize" else "higher"
        interval = f", {self.confidence:.0%} bootstrap intervals per model" if self.confidence else ""
        rows = f" ({self.holdout_rows} rows)" if self.holdout_rows else ""
        return f"{self.metric} on the holdout{rows}: {better} is better{interval}"


@dataclass(frozen=True)
class SliceBar:
    """Both models' scores on one slice; ``regression`` > 0 means the challenger is worse there."""

    name: str
    rows: int
    challenger: float | None
    champion: float | None
    regression: float | None
    judged: bool
    breached: bool


@dataclass(frozen=True)
class GateSlicesChart:
    """The slices, breached ones first, then the worst regressions; ``left_off`` counts those not shown."""

    metric: str
    max_regression: float | None
    bars: tuple[SliceBar, ...]
    left_off: int


def gate_scores(record: Mapping[str, Any]) -> GateScoresChart:
    """The scores chart of a decision record: its scores and bootstrap intervals, unchanged."""
    boot = record.get("bootstrap") or {}
    points = [
        ScorePoint(
            "challenger",
            f"challenger v{record.get('challenger_version', '?')}",
            float(record["challenger_score"]),
            _pair(boot.get("challenger")),
        )
    ]
    champion = record.get("champion_score")
    if champion is not None and math.isfinite(float(champion)):
        whose = record.get("baseline_version")
        parent = record.get("parent_baseline") or {}
        label = f"champion v{whose}" if whose is not None else f"parent champion v{parent.get('version', '?')}"
        points.append(ScorePoint("champion", label, float(champion), _pair(boot.get("champion"))))
    naive = record.get("naive_baseline")
    if naive:
        label = f"naive baseline (training {naive['statistic']})"
        points.append(ScorePoint("naive", label, float(naive["score"]), None))
    gain = record.get("improvement")
    required = record.get("min_improvement")
    improvement = (
        ImprovementPoint(
            value=float(gain),
            interval=_pair(boot.get("improvement")),
            required=float(required) if required is not None else None,
            mode=str(record.get("improvement_mode") or "relative"),
        )
        if gain is not None and math.isfinite(float(gain))
        else None
    )
    return GateScoresChart(
        metric=str(record.get("metric") or (naive or {}).get("metric") or "score"),
        direction=str(record.get("direction", "minimize")),
        holdout_rows=record.get("holdout_rows"),
        confidence=float(boot["confidence"]) if boot else None,
        points=tuple(points),
        improvement=improvement,
    )


def gate_slices(record: Mapping[str, Any], *, limit: int = MAX_SLICES) -> GateSlicesChart | None:
    """The slices chart of a decision record, or None when the gate had no slices.

    Breached slices come first, then the judged ones by regression (worst first), then the rest; at most
    ``limit`` are kept.
    """
    slices = record.get("slices") or []
    if not slices:
        return None
    bars = [
        SliceBar(
            name=f"{s['column']}={s['value']}",
            rows=int(s["rows"]),
            challenger=s.get("challenger_score"),
            champion=s.get("champion_score"),
            regression=s.get("regression"),
            judged=bool(s.get("judged")),
            breached=bool(s.get("breached")),
        )
        for s in slices
    ]
    bars.sort(key=_worst_first)
    return GateSlicesChart(
        metric=str(record.get("metric") or "score"),
        max_regression=record.get("max_slice_regression"),
        bars=tuple(bars[:limit]),
        left_off=max(0, len(bars) - limit),
    )


def slice_table(chart: GateSlicesChart, *, rows: int = 10) -> str:
    """A short markdown table of the chart's first ``rows`` slices (the worst), for the approval screen.

    Each slice's name (a value of the holdout's data) and the metric are escaped: literal text in one cell.
    """
    metric = md_cell(chart.metric)
    lines = [
        f"| slice | rows | challenger {metric} | champion {metric} | challenger worse by | |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for bar in chart.bars[:rows]:
        verdict = "**breached**" if bar.breached else ("judged" if bar.judged else "too few rows to judge")
        lines.append(
            f"| {md_cell(bar.name)} | {bar.rows} | {_num(bar.challenger)} | {_num(bar.champion)} | "
            f"{'-' if bar.regression is None else f'{bar.regression:+.1%}'} | {verdict} |"
        )
    more = len(chart.bars) - rows + chart.left_off
    if more > 0:
        lines.append(f"| {more} more slice(s): see the chart and gate/decision.json | | | | | |")
    return "\n".join(lines)


def _worst_first(bar: SliceBar) -> tuple[int, float, str]:
    rank = 0 if bar.breached else 1 if bar.judged else 2
    known = bar.regression is not None and math.isfinite(bar.regression)  # a NaN (from JSON) sorts as unknown
    return rank, -(float(bar.regression) if known else -math.inf), bar.name  # type: ignore[arg-type]


def _pair(value: Any) -> tuple[float, float] | None:
    return None if value is None else (float(value[0]), float(value[1]))


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
