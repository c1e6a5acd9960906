"""Slices of the holdout (per zone, per hour band…): both models scored on each, and the regressions judged.

A model may beat the champion overall while getting much worse for one zone or one time of day; the gate
refuses that when a slice with enough rows is worse by more than ``max_slice_regression``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from airflow_ml.ml.gate.records import SliceResult
from airflow_ml.ml.metrics import DIRECTIONS, score

MISSING = "missing"


def slice_labels(values: Any, bins: Sequence[float] | None = None) -> np.ndarray:
    """The slice of each row: its value as text, or with ``bins`` (increasing edges) its interval.

    A value ``v`` lies in ``[a, b)`` for consecutive edges ``a`` and ``b``; the last interval also holds
    its upper edge. Values beyond the edges go to ``outside [first, last]``, missing ones to ``missing``.

    Raises:
        ValueError: when ``bins`` are given for values that are not numbers.
    """
    series = pd.Series(values).reset_index(drop=True)
    missing = series.isna().to_numpy()
    if bins is None:
        labels = series.astype("object").map(str).to_numpy(dtype=object)
        labels[missing] = MISSING
        return labels
    try:
        numbers = pd.to_numeric(series, errors="raise").to_numpy(dtype="float64", na_value=np.nan)
    except (TypeError, ValueError):
        raise ValueError(f"bins {list(bins)} need numbers; column {series.name!r} holds {series.dtype}") from None
    edges = np.asarray(bins, dtype="float64")
    names = np.array(
        [f"[{a:g}, {b:g})" for a, b in itertools.pairwise(edges[:-1])] + [f"[{edges[-2]:g}, {edges[-1]:g}]"],
        dtype=object,
    )
    index = np.clip(np.searchsorted(edges, numbers, side="right") - 1, 0, len(names) - 1)
    labels = names[index]
    outside = (numbers < edges[0]) | (numbers > edges[-1])
    labels[outside] = f"outside [{edges[0]:g}, {edges[-1]:g}]"
    labels[missing] = MISSING
    return labels


def evaluate_slices(
    metric: str,
    y_true: Any,
    challenger_pred: Any,
    champion_pred: Any | None,
    columns: Mapping[str, Any],
    specs: Sequence[Mapping[str, Any]],
    *,
    max_regression: float | None,
    min_rows: int,
) -> tuple[SliceResult, ...]:
    """Score both models on every slice of every ``{"column": ..., "bins": ...}`` in ``specs``.

    A slice is judged when it has ``min_rows`` rows, both scores are finite and ``max_regression`` is
    set; it is breached when the challenger is worse on it than the champion by more than
    ``max_regression`` (relative to the champion's score on the slice, or absolute when that is 0).

    Raises:
        ValueError: when a spec names a column missing from ``columns``.
    """
    y = np.asarray(y_true, dtype="float64")
    challenger = np.asarray(challenger_pred, dtype="float64")
    champion = None if champion_pred is None else np.asarray(champion_pred, dtype="float64")
    results = []
    for spec in specs:
        column = str(spec["column"])
        if column not in columns:
            raise ValueError(f"slice column {column!r} is not in the holdout; it has {sorted(columns)}")
        labels = slice_labels(columns[column], spec.get("bins"))
        for value in sorted(set(labels)):
            rows = labels == value
            ours = _score(metric, y[rows], challenger[rows])
            theirs = None if champion is None else _score(metric, y[rows], champion[rows])
            regression = _regression(metric, ours, theirs)
            judged = int(rows.sum()) >= min_rows and regression is not None and max_regression is not None
            breached = judged and regression is not None and max_regression is not None and regression > max_regression
            results.append(SliceResult(column, str(value), int(rows.sum()), ours, theirs, regression, judged, breached))
    return tuple(results)


def _score(metric: str, y: np.ndarray, p: np.ndarray) -> float | None:
    with np.errstate(all="ignore"):
        value = score(metric, y, p)
    return value if math.isfinite(value) else None


def _regression(metric: str, challenger: float | None, champion: float | None) -> float | None:
    if challenger is None or champion is None:
        return None
    worse = challenger - champion if DIRECTIONS[metric] == "minimize" else champion - challenger
    return worse / abs(champion) if champion != 0 else worse
