"""Metrics the gate compares, with the direction in which each improves."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

DIRECTIONS = {
    "rmse": "minimize",
    "mae": "minimize",
    "mape": "minimize",
    "r2": "maximize",
    "auc": "maximize",
    "logloss": "minimize",
}

#: The score of a perfect prediction, the far end of each metric's direction.
PERFECT = {"rmse": 0.0, "mae": 0.0, "mape": 0.0, "r2": 1.0, "auc": 1.0, "logloss": 0.0}

#: Metrics of a binary task, scored on predicted probabilities of the positive class.
BINARY = frozenset({"auc", "logloss"})


def _rmse(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.sqrt(np.mean((y - p) ** 2)))


def _mae(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(np.abs(y - p)))


def _mape(y: np.ndarray, p: np.ndarray) -> float:
    nonzero = y != 0
    return float(np.mean(np.abs((y[nonzero] - p[nonzero]) / y[nonzero])))


def _r2(y: np.ndarray, p: np.ndarray) -> float:
    total = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - float(np.sum((y - p) ** 2)) / total if total > 0 else 0.0


def _logloss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, 1e-15, 1 - 1e-15)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    # Mann-Whitney U with average ranks for ties; no scikit-learn needed.
    order = np.argsort(p, kind="mergesort")
    ranks = np.empty(len(p), dtype="float64")
    sorted_p = p[order]
    _, first, counts = np.unique(sorted_p, return_index=True, return_counts=True)
    average = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(average, counts)
    positives = y == 1
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


_METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "rmse": _rmse,
    "mae": _mae,
    "mape": _mape,
    "r2": _r2,
    "auc": _auc,
    "logloss": _logloss,
}


def score(metric: str, y_true: object, y_pred: object) -> float:
    """Compute ``metric`` for true values and predictions (array-likes of equal length)."""
    if metric not in _METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose from {sorted(_METRICS)}")
    y = np.asarray(y_true, dtype="float64")
    p = np.asarray(y_pred, dtype="float64")
    if y.shape != p.shape or y.size == 0:
        raise ValueError(f"need equal, non-empty arrays to score; got {y.shape} and {p.shape}")
    return _METRICS[metric](y, p)


def skill(metric: str, value: float, reference: float) -> float:
    """How much of the reference's distance to a perfect score ``value`` closes: ``(value - ref) / (perfect - ref)``.

    For an error metric (perfect 0) this is the relative improvement over the reference, ``1 - value / ref``
    (0.05: 5% lower rmse); for r2 and auc (perfect 1) the share of the gap to 1 that is closed. Positive is
    better, 1 is perfect; NaN when the reference is already perfect or either score is not finite.
    """
    gap = PERFECT[metric] - reference
    if gap == 0 or not (math.isfinite(value) and math.isfinite(reference)):
        return math.nan
    return (value - reference) / gap


def lightgbm_metric(metric: str) -> str:
    """The LightGBM ``metric`` parameter used for early stopping on the validation split."""
    return {"rmse": "rmse", "mae": "l1", "mape": "mape", "r2": "l2", "auc": "auc", "logloss": "binary_logloss"}[metric]
