"""The drift chart as data: per feature, the champion's training distribution against the compared rows.

A numeric column becomes a histogram on shared bins (shares of each side's rows, so that sides of different
sizes compare), a categorical one the shares of its most frequent categories. Columns come breached first
(``error``, then ``warn``), then flagged by the calibration, then the rest, each group by its statistic.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from airflow_ml.ml.drift import category_shares

DRIFT_CHARTS_FOLDER = "charts"
DRIFT_PNG = "distributions.png"
#: Histogram bins of a numeric column, and the most categories shown (the rest are summed as "other").
NUMERIC_BINS = 20
TOP_CATEGORIES = 12
#: The most columns drawn: the first ones in the order above.
MAX_COLUMNS = 12
OTHER = "(other)"
_RANK = {"error": 0, "warn": 1}


@dataclass(frozen=True)
class FeatureDistribution:
    """One column on both sides: ``labels`` name the bins (or categories), the shares sum to 1 per side.

    ``edges`` are the numeric bins' edges (None for categories); ``severity`` is the worst of the column's
    checks (``error``, ``warn`` or ``ok``), ``statistic``/``value`` its distribution check.
    """

    column: str
    kind: str
    labels: tuple[str, ...]
    edges: tuple[float, ...] | None
    reference: tuple[float, ...]
    current: tuple[float, ...]
    severity: str
    flagged: bool
    statistic: str
    value: float | None

    @property
    def heading(self) -> str:
        """The panel's title: the column, its statistic, and why it is first."""
        shown = "n/a" if self.value is None else f"{self.value:.3g}"
        why = {"error": " ERROR", "warn": " warn"}.get(self.severity, "")
        return f"{self.column}: {self.statistic} {shown}{why}{' flagged' if self.flagged else ''}"


def drift_order(checks: Sequence[Mapping[str, Any]], flagged: Mapping[str, Any]) -> list[str]:
    """The columns of ``checks`` (drift.json's), breached first (error, warn), then flagged, then the rest.

    Within each group, the largest statistic relative to its warn threshold comes first: a PSI and a JS
    distance are on different scales.
    """
    worst: dict[str, tuple[int, float]] = {}
    for check in checks:
        column = str(check["column"])
        rank = _RANK.get(str(check.get("severity")), 3)
        if rank == 3 and column in flagged:
            rank = 2
        value = check.get("value") if check.get("statistic") != "missing_rate_change" else None
        score = -_against_warn(value, check.get("warn"))
        before = worst.get(column, (3, 0.0))
        worst[column] = (min(before[0], rank), min(before[1], score))
    return sorted(worst, key=lambda c: (*worst[c], c))


def _against_warn(value: Any, warn: Any) -> float:
    """A statistic over its warn threshold (PSI and JS distance differ in scale); the value alone without one."""
    if value is None or not math.isfinite(float(value)):
        return 0.0
    return float(value) / float(warn) if warn is not None and float(warn) > 0 else float(value)


def drift_distributions(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    checks: Sequence[Mapping[str, Any]],
    *,
    flagged: Mapping[str, Any] | None = None,
    shares: Mapping[str, tuple[pd.Series, pd.Series]] | None = None,
    bins: int = NUMERIC_BINS,
    top: int = TOP_CATEGORIES,
    limit: int = MAX_COLUMNS,
) -> tuple[FeatureDistribution, ...]:
    """The distributions of the columns that ``checks`` judged, in :func:`drift_order`, at most ``limit``.

    Columns missing on either side (a new column, say) and the champion's predictions (not a column of the
    frames) are left out. A check's ``kind`` decides the picture: ``categorical`` (or a column compared by
    JS distance) gets category shares, the others a histogram. ``shares`` are the category shares the
    comparison already counted (``DriftReport.shares``, see :func:`airflow_ml.ml.drift.category_shares`);
    a column without them is counted here.
    """
    flagged, shares = flagged or {}, shares or {}
    by_column: dict[str, list[Mapping[str, Any]]] = {}
    for check in checks:
        by_column.setdefault(str(check["column"]), []).append(check)
    found: list[FeatureDistribution] = []
    for column in drift_order(checks, flagged):
        if len(found) >= limit:
            break
        if column not in reference.columns or column not in current.columns:
            continue
        own = by_column[column]
        main = next((c for c in own if c.get("statistic") != "missing_rate_change"), own[0])
        as_categories = main.get("statistic") == "js_distance"
        if as_categories:
            counted = shares.get(column) or (category_shares(reference[column]), category_shares(current[column]))
            labels, edges, ours, theirs = _category_shares(*counted, top)
        else:
            labels, edges, ours, theirs = _histogram(reference[column], current[column], bins)
        severities = {str(c.get("severity")) for c in own}
        severity = "error" if "error" in severities else "warn" if "warn" in severities else "ok"
        found.append(
            FeatureDistribution(
                column=column,
                kind=str(main.get("kind")),
                labels=labels,
                edges=edges,
                reference=ours,
                current=theirs,
                severity=severity,
                flagged=column in flagged,
                statistic=str(main.get("statistic")),
                value=main.get("value"),
            )
        )
    return tuple(found)


def _histogram(
    reference: pd.Series, current: pd.Series, bins: int
) -> tuple[tuple[str, ...], tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """Shares per equal-width bin over both sides' 0.5-99.5% range; values beyond it count in the end bins.

    Bins are closed on the left, the last one on both sides: ``np.histogram``'s, whose equal-width bins
    cost a division per value where a search through the edges costs several comparisons.
    """
    ours = pd.to_numeric(reference, errors="coerce").dropna().to_numpy(dtype="float64")
    theirs = pd.to_numeric(current, errors="coerce").dropna().to_numpy(dtype="float64")
    both = np.concatenate([ours, theirs])
    both = both[np.isfinite(both)]
    if both.size == 0:
        return (), (), (), ()
    low, high = (float(v) for v in np.quantile(both, [0.005, 0.995]))
    if high <= low:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, bins + 1)
    labels = tuple(f"[{a:.3g}, {b:.3g})" for a, b in itertools.pairwise(edges))
    return labels, tuple(float(e) for e in edges), _bin_shares(ours, edges), _bin_shares(theirs, edges)


def _bin_shares(values: np.ndarray, edges: np.ndarray) -> tuple[float, ...]:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return tuple(0.0 for _ in edges[1:])
    counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges.size - 1, range=(edges[0], edges[-1]))
    return tuple(float(c) for c in counts / values.size)


def _category_shares(
    ours: pd.Series, theirs: pd.Series, top: int
) -> tuple[tuple[str, ...], None, tuple[float, ...], tuple[float, ...]]:
    """Shares of the ``top`` most frequent categories of both sides together, the rest as ``(other)``.

    Categories are compared as ``drift.js_distance`` compares them (plain objects: ``1 == 1.0``, so an int
    column that gained a null on one side keeps its categories); only the labels become text.
    """
    together = ours.add(theirs, fill_value=0.0).sort_values(ascending=False, kind="mergesort")
    kept = list(together.index[:top])
    labels = [*kept, OTHER] if len(together) > top else kept

    def shares(side: pd.Series) -> tuple[float, ...]:
        values = [float(side.get(c, 0.0)) for c in kept]
        return (*values, max(0.0, 1.0 - sum(values))) if len(labels) > len(kept) else tuple(values)

    return tuple(_label(c) for c in labels), None, shares(ours), shares(theirs)


def _label(category: Any) -> str:
    """A category as text; an integral float (an int column with a null) as the integer: ``1.0`` -> ``1``."""
    if isinstance(category, float | np.floating) and float(category).is_integer():
        return str(int(category))
    return str(category)
