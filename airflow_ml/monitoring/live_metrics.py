"""The champion's live metric per window of scored days, with a bootstrap interval.

A window is ``window_days`` days of the prediction log, by the day a row was scored (its partition). Windows
lie on a fixed grid: window ``i`` holds the days whose count since 1970-01-01 divided by ``window_days`` is
``i``, so a window's bounds never depend on the day a monitor runs; the newest window is the last complete one,
the one that ends on the monitor run's day or before it (the days after it wait for their window to end). With
``window_days: 1`` each day is a window and the newest ends on the run's day. Each window's metric is the
template's metric of the labelled predictions in it, and its interval a percentile bootstrap over those rows
(:func:`airflow_ml.ml.gate.bootstrap.paired_bootstrap`, the gate's, with no second model).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from airflow_ml.data.prediction_log import PARTITION_COLUMN
from airflow_ml.ml.gate.bootstrap import paired_bootstrap
from airflow_ml.ml.metrics import score
from airflow_ml.monitoring.label_join import LABEL


@dataclass(frozen=True)
class WindowMetric:
    """One window's live metric.

    Attributes:
        start: The window's first scored day.
        end: Its last (included).
        labels: Labelled predictions in it.
        value: The metric, or None with fewer than 2 labels.
        low: The interval's lower bound, or None.
        high: Its upper bound, or None.
    """

    start: dt.date
    end: dt.date
    labels: int
    value: float | None
    low: float | None
    high: float | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (dates as ISO text)."""
        return {**asdict(self), "start": self.start.isoformat(), "end": self.end.isoformat()}


#: Day 0 of the windows' grid.
GRID_ORIGIN = dt.date(1970, 1, 1)


def window_bounds(end: dt.date, *, window_days: int, windows: int) -> list[tuple[dt.date, dt.date]]:
    """The ``windows`` complete windows of the grid that end on ``end`` or before it, oldest first.

    A window of ``window_days`` days starts on a day whose count since :data:`GRID_ORIGIN` is a multiple of
    ``window_days``, so every run of the monitor (a rerun, the next day's) names the same windows; the newest
    is the last one whose last day is ``end`` or earlier (with ``window_days`` 1: the one of ``end``).
    """
    if window_days < 1 or windows < 1:
        raise ValueError(f"window_days ({window_days}) and windows ({windows}) must be at least 1")
    newest = ((end - GRID_ORIGIN).days + 1) // window_days - 1  # the last window whose last day is ``end`` or before
    bounds = []
    for index in range(newest - windows + 1, newest + 1):
        first = GRID_ORIGIN + dt.timedelta(days=index * window_days)
        bounds.append((first, first + dt.timedelta(days=window_days - 1)))
    return bounds


def window_metrics(
    joined: pd.DataFrame,
    metric: str,
    *,
    end: dt.date,
    window_days: int,
    windows: int,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> list[WindowMetric]:
    """The metric of each window of ``joined`` (rows of :class:`~airflow_ml.monitoring.label_join.JoinedLabels`).

    The same rows and seed give the same intervals; each window draws from its own seed (``seed`` + its
    position), so that windows do not share their noise.
    """
    days = pd.to_datetime(joined[PARTITION_COLUMN]).dt.date if len(joined) else pd.Series([], dtype="object")
    results = []
    for position, (first, last) in enumerate(window_bounds(end, window_days=window_days, windows=windows)):
        inside = joined[((days >= first) & (days <= last)).to_numpy()] if len(joined) else joined
        y, p = inside[LABEL].to_numpy(dtype="float64"), inside["prediction"].to_numpy(dtype="float64")
        value = low = high = None
        if len(inside) >= 2:
            value = _finite(score(metric, y, p))
            # Single rows: a window's joined rows are not in time order, so a block of them would mean nothing.
            interval = paired_bootstrap(
                metric, y, p, None, resamples=resamples, confidence=confidence, seed=seed + position, block_length=1
            ).challenger
            low, high = _finite(interval[0]), _finite(interval[1])
        results.append(WindowMetric(start=first, end=last, labels=len(inside), value=value, low=low, high=high))
    return results


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None
