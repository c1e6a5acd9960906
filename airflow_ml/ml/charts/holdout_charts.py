"""The holdout's fit as data: predicted against actual and the residuals (regression), ROC and calibration (binary).

Computed from the holdout rows' true values and the trained model's predictions, the same ones the holdout
metric is scored on. No scikit-learn: the ROC points are those of ``sklearn.metrics.roc_curve`` with
``drop_intermediate=False`` (the chart keeps their corners, at most 2,000; the AUC uses them all), the
calibration bins those of ``sklearn.calibration.calibration_curve`` with ``strategy="uniform"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

HOLDOUT_CHARTS_FOLDER = "holdout/charts"
FIT_PNG = "predicted_vs_actual.png"
ROC_PNG = "roc_calibration.png"
#: The most points a scatter draws (a seeded random sample of the rows: drawing stays fast).
MAX_POINTS = 3000
CALIBRATION_BINS = 10
#: The most ROC points kept for the chart (the AUC is computed on all of them).
MAX_ROC_POINTS = 2000


@dataclass(frozen=True)
class RegressionFit:
    """Predicted against actual; ``residuals`` are actual minus predicted, of the same (sampled) rows."""

    actual: tuple[float, ...]
    predicted: tuple[float, ...]
    residuals: tuple[float, ...]
    rows: int
    metric: str
    score: float | None

    @property
    def span(self) -> tuple[float, float]:
        """The range of both axes, for the identity line."""
        both = self.actual + self.predicted
        return (min(both), max(both)) if both else (0.0, 1.0)


@dataclass(frozen=True)
class BinaryFit:
    """ROC points (false and true positive rates by decreasing threshold) and the calibration bins."""

    fpr: tuple[float, ...]
    tpr: tuple[float, ...]
    thresholds: tuple[float, ...]
    auc: float | None
    mean_predicted: tuple[float, ...]
    fraction_positive: tuple[float, ...]
    bin_rows: tuple[int, ...]
    rows: int


def regression_fit(y_true: Any, y_pred: Any, *, metric: str, score: float | None = None) -> RegressionFit:
    """Predicted against actual of the holdout, at most :data:`MAX_POINTS` rows (a seeded random sample, in order)."""
    y, p = _pairs(y_true, y_pred)
    keep = _sample(y.size)
    return RegressionFit(
        actual=tuple(y[keep].tolist()),
        predicted=tuple(p[keep].tolist()),
        residuals=tuple((y[keep] - p[keep]).tolist()),
        rows=int(y.size),
        metric=metric,
        score=score,
    )


def roc_points(y_true: Any, y_score: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False and true positive rates at each distinct score, highest first, from (0, 0) to (1, 1).

    Raises:
        ValueError: when the labels are not all 0 or 1, or one class is absent (no curve exists).
    """
    y, p = _pairs(y_true, y_score)
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("a ROC curve needs 0/1 labels; the holdout's target has other values")
    positives = float(y.sum())
    negatives = float(y.size - positives)
    if positives == 0 or negatives == 0:
        raise ValueError("a ROC curve needs both classes on the holdout; it has only one")
    order = np.argsort(-p, kind="mergesort")
    p, y = p[order], y[order]
    last_of_each = np.r_[np.flatnonzero(np.diff(p)), y.size - 1]
    tps = np.cumsum(y)[last_of_each]
    fps = (last_of_each + 1) - tps
    fpr = np.r_[0.0, fps / negatives]
    tpr = np.r_[0.0, tps / positives]
    thresholds = np.r_[np.inf, p[last_of_each]]
    return fpr, tpr, thresholds


def calibration_bins(y_true: Any, y_prob: Any, *, bins: int = CALIBRATION_BINS) -> tuple[np.ndarray, ...]:
    """Per non-empty uniform bin of the predicted probability: its mean prediction, positive rate and rows."""
    y, p = _pairs(y_true, y_prob)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.searchsorted(edges[1:-1], p)  # a probability on an edge goes to the lower bin, as scikit-learn does
    rows = np.bincount(index, minlength=bins)
    sums = np.bincount(index, weights=p, minlength=bins)
    hits = np.bincount(index, weights=y, minlength=bins)
    full = rows > 0
    return sums[full] / rows[full], hits[full] / rows[full], rows[full]


def binary_fit(y_true: Any, y_prob: Any) -> BinaryFit:
    """The ROC curve and the calibration of a binary model's holdout probabilities."""
    fpr, tpr, thresholds = roc_points(y_true, y_prob)
    auc = _area(fpr, tpr)  # on every point, before the curve is thinned for drawing
    kept = _corners(fpr, tpr)
    mean_predicted, fraction, rows = calibration_bins(y_true, y_prob)
    return BinaryFit(
        fpr=tuple(fpr[kept].tolist()),
        tpr=tuple(tpr[kept].tolist()),
        thresholds=tuple(thresholds[kept].tolist()),
        auc=auc,
        mean_predicted=tuple(mean_predicted.tolist()),
        fraction_positive=tuple(fraction.tolist()),
        bin_rows=tuple(int(r) for r in rows),
        rows=int(rows.sum()),
    )


def _corners(fpr: np.ndarray, tpr: np.ndarray, most: int = MAX_ROC_POINTS) -> np.ndarray:
    """The points the curve needs: its corners (collinear points dropped, as scikit-learn's
    ``drop_intermediate`` does), at most ``most`` of them (then evenly spaced, both ends kept)."""
    if fpr.size <= 2:
        return np.arange(fpr.size)
    bends = np.flatnonzero(np.logical_or(np.diff(fpr, 2), np.diff(tpr, 2))) + 1
    kept = np.r_[0, bends, fpr.size - 1]
    if kept.size > most:
        kept = kept[np.unique(np.linspace(0, kept.size - 1, most).round().astype(int))]
    return kept


def _area(x: np.ndarray, y: np.ndarray) -> float:
    """The trapezoidal area under ``y(x)``, spelt out: ``np.trapezoid`` needs NumPy 2, ``np.trapz`` is gone in it."""
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))


def _pairs(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    """Both as float arrays, the rows where either is missing left out."""
    y = np.asarray(y_true, dtype="float64").ravel()
    p = np.asarray(y_pred, dtype="float64").ravel()
    if y.shape != p.shape:
        raise ValueError(f"need as many predictions as true values; got {p.size} and {y.size}")
    known = np.isfinite(y) & np.isfinite(p)
    return y[known], p[known]


def _sample(rows: int) -> np.ndarray:
    if rows <= MAX_POINTS:
        return np.arange(rows)
    # Random, not evenly spaced: rows ordered by time repeat zones and hours, and a fixed stride can hit one
    # zone or one hour only. Seeded: the same holdout draws the same picture.
    return np.sort(np.random.default_rng(0).choice(rows, MAX_POINTS, replace=False))
