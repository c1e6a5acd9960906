"""The champion's live metric per window of scored days, with a bootstrap interval.

A window is ``window_days`` days of the prediction log, by the day a row was scored (its partition); the
newest window ends on the monitor run's day. Each window's metric is the template's metric of the labelled
predictions in it, and its interval a percentile bootstrap over those rows
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


def window_bounds(end: dt.date, *, window_days: int, windows: int) -> list[tuple[dt.date, dt.date]]:
    """The ``windows`` windows of ``window_days`` days ending on ``end``, oldest first."""
    if window_days < 1 or windows < 1:
        raise ValueError(f"window_days ({window_days}) and windows ({windows}) must be at least 1")
    bounds = []
    for back in range(windows - 1, -1, -1):
        last = end - dt.timedelta(days=back * window_days)
        bounds.append((last - dt.timedelta(days=window_days - 1), last))
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
            interval = paired_bootstrap(
                metric, y, p, None, resamples=resamples, confidence=confidence, seed=seed + position
            ).challenger
            low, high = _finite(interval[0]), _finite(interval[1])
        results.append(WindowMetric(start=first, end=last, labels=len(inside), value=value, low=low, high=high))
    return results


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None
