"""Paired block bootstrap of the gate's metric: how sure is the challenger's improvement over the champion?

Each resample is built of runs of ``block_length`` consecutive holdout rows (a circular block bootstrap, Politis
and Romano 1992: the holdout, in time order, is read as a circle, so every row is as likely to be drawn as any
other), and both models are scored on the same draw, so the interval is of the *difference* (rows that are hard
for both models cancel out). Rows close in time have correlated errors; resampling runs of them keeps that
correlation in every resample, where drawing single rows (``block_length`` 1, the plain row bootstrap) would
overstate how sure the gate is.

Every metric but auc is a function of a few per-row sums (squared error, absolute error...): the sum over each
possible block is read off a prefix sum once, and a resample's sum is the sum of its drawn blocks' sums, so
nothing of the holdout's size is built per resample. auc, a ranking, weighs every row by how often its resample
holds it (:func:`weighted_scores`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from airflow_ml.ml.gate.block_length import block_length_choice, row_series
from airflow_ml.ml.gate.records import BootstrapResult
from airflow_ml.ml.metrics import DIRECTIONS

#: Values held in memory at once per array (resamples x rows or blocks): about 16 MB of float64.
_CHUNK_CELLS = 2_000_000
#: The most blocks an ``auto`` resample draws (the length is at least the holdout's rows / this).
_MAX_BLOCKS = 10_000


def paired_bootstrap(
    metric: str,
    y_true: Any,
    challenger_pred: Any,
    champion_pred: Any | None,
    *,
    improvement_mode: str = "relative",
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    block_length: int | str = "auto",
) -> BootstrapResult:
    """Percentile intervals of both scores and of the improvement, from the same resamples.

    The rows must be in time order (the gate's holdout is, by its time column). A resample draws
    ``ceil(n / block_length)`` block starts uniformly on the circle of rows, the last block cut short, so it has as
    many rows as the holdout. ``block_length`` 1 is the row bootstrap, draw for draw. ``"auto"`` takes
    :func:`~airflow_ml.ml.gate.block_length.optimal_block_length` of the per-row loss difference of the two models
    (of the challenger's own loss without a champion, or when the two predict alike), at least ``n / 10,000``
    rows (the default, as in the gate's rules and templates); ``block_capped`` records that the cap of
    :func:`~airflow_ml.ml.gate.block_length.block_length_choice` cut the length the data asked for. A length
    above a third of the rows is cut to it (fewer than three blocks cannot vary). The improvement
    is positive when the challenger is better, in the unit of the gate's ``min_improvement``: a fraction of the
    champion's score in that resample when ``relative``. The same inputs and seed give the same intervals.

    Raises:
        ValueError: for fewer than 2 rows, arrays of different lengths, a confidence outside (0, 1), or a block
            length that is neither a whole number from 1 nor ``"auto"``.
    """
    y = np.asarray(y_true, dtype="float64")
    challenger = np.asarray(challenger_pred, dtype="float64")
    champion = None if champion_pred is None else np.asarray(champion_pred, dtype="float64")
    if y.ndim != 1 or y.size < 2 or challenger.shape != y.shape or (champion is not None and champion.shape != y.shape):
        raise ValueError(f"need equal 1-d arrays of at least 2 rows to bootstrap; got {y.shape} and {challenger.shape}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence {confidence!r} must lie strictly between 0 and 1, e.g. 0.95")
    n = y.size
    length, capped = _block_length(metric, y, challenger, champion, block_length)
    rng = np.random.default_rng(seed)
    blocks = -(-n // length)
    # auc weighs every row of every resample; the other metrics add up one sum per drawn block.
    chunk = max(1, min(resamples, _CHUNK_CELLS // (n if metric == "auc" else blocks)))
    models = [challenger] if champion is None else [challenger, champion]
    sums = None if metric == "auc" else [_block_sums(metric, y, p, length) for p in models]
    scores: list[list[np.ndarray]] = [[] for _ in models]
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        starts = rng.integers(0, n, size=(size, blocks))
        if sums is None:
            counts = _row_counts(starts, n, length)
            for i, p in enumerate(models):
                scores[i].append(weighted_scores(metric, y, p, counts))
        else:
            for i, model_sums in enumerate(sums):
                scores[i].append(_resample_scores(metric, model_sums, starts, n))
    tail = (1 - confidence) / 2
    challenger_all = np.concatenate(scores[0])
    result: dict[str, Any] = {"challenger": _interval(challenger_all, tail)}
    if champion is not None:
        champion_all = np.concatenate(scores[1])
        gain = champion_all - challenger_all if DIRECTIONS[metric] == "minimize" else challenger_all - champion_all
        if improvement_mode == "relative":
            scale = np.abs(champion_all)
            gain = np.divide(gain, scale, out=gain.copy(), where=scale != 0)
        result |= {"champion": _interval(champion_all, tail), "improvement": _interval(gain, tail)}
    return BootstrapResult(
        resamples=resamples,
        confidence=confidence,
        seed=seed,
        block_length=length,
        block_auto=block_length == "auto",
        block_capped=capped,
        **result,
    )


def _block_length(
    metric: str, y: np.ndarray, challenger: np.ndarray, champion: np.ndarray | None, asked: Any
) -> tuple[int, bool]:
    """The block length to use: ``asked``, or the automatic one, at most a third of the rows; and whether the
    automatic one hit its cap."""
    capped = False
    if asked == "auto":
        series = row_series(metric, y, challenger)
        if champion is not None:
            difference = series - row_series(metric, y, champion)
            # Identical predictions (a tie) give a constant difference and a zero-width interval at any length:
            # the challenger's own loss then sets it, as without a champion.
            if np.ptp(difference) > 0:
                series = difference
        # At least n / _MAX_BLOCKS rows a block: on independent rows any block much shorter than the holdout is as
        # good as a single row, and a resample then draws at most _MAX_BLOCKS numbers, whatever the holdout's size.
        chosen, capped = block_length_choice(series)
        asked = max(chosen, -(-y.size // _MAX_BLOCKS))
    elif isinstance(asked, bool) or not isinstance(asked, int | np.integer) or asked < 1:
        raise ValueError(f"block_length {asked!r} must be a whole number of rows from 1, or 'auto'")
    return max(1, min(int(asked), y.size // 3)), capped


def _block_sums(metric: str, y: np.ndarray, p: np.ndarray, length: int) -> dict[str, np.ndarray]:
    """Per row series of the metric's sums, each as its sums over every circular block of ``length`` rows and
    over every block of the last block's length (``full`` and ``last`` per series)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric in ("rmse", "mae", "logloss"):
            series = {"loss": row_series(metric, y, p)}
        elif metric == "mape":
            series = {"loss": row_series(metric, y, p), "rows": (y != 0).astype("float64")}
        elif metric == "r2":
            # Centred: the sum of squares about the mean is the same for y shifted by a constant, and
            # sum(y^2) - sum(y)^2 / n of a large-mean target would cancel away its digits.
            centred = y - y.mean()
            series = {"loss": (y - p) ** 2, "y": centred, "y2": centred**2}
        else:
            raise ValueError(f"unknown metric {metric!r}; choose from {sorted(DIRECTIONS)}")
    n = y.size
    last = n - (-(-n // length) - 1) * length
    out = {}
    for name, values in series.items():
        circle = np.concatenate([[0.0], np.cumsum(np.concatenate([values, values[: length - 1]]))])
        out[name] = circle[length : length + n] - circle[:n]
        out[f"{name}_last"] = circle[last : last + n] - circle[:n]
    return out


def _resample_scores(metric: str, sums: dict[str, np.ndarray], starts: np.ndarray, n: int) -> np.ndarray:
    """The metric of each resample (a row of ``starts``: its blocks' first rows, the last block cut short)."""

    def total(name: str) -> np.ndarray:
        return np.asarray(sums[name][starts[:, :-1]].sum(axis=1) + sums[f"{name}_last"][starts[:, -1]])

    with np.errstate(divide="ignore", invalid="ignore"):
        if metric == "rmse":
            return np.asarray(np.sqrt(total("loss") / n))
        if metric in ("mae", "logloss"):
            return total("loss") / n
        if metric == "mape":
            return np.asarray(total("loss") / total("rows"))
        sse, sst = total("loss"), total("y2") - total("y") ** 2 / n
        return np.where(sst > 0, 1.0 - sse / np.where(sst > 0, sst, 1.0), 0.0)


def _row_counts(starts: np.ndarray, n: int, length: int) -> np.ndarray:
    """How often each row is drawn in each resample of ``starts`` (resamples x rows, as float64)."""
    size, blocks = starts.shape
    last = n - (blocks - 1) * length
    offsets = (np.arange(size) * n)[:, None]
    counts = np.zeros((size, n), dtype="int64")
    for columns, width in ((starts[:, :-1], length), (starts[:, -1:], last)):
        begun = np.bincount((columns + offsets).ravel(), minlength=size * n).reshape(size, n)
        if width == 1:
            counts += begun
            continue
        # A row is drawn once per block begun within the width - 1 rows before it (on the circle).
        circle = np.concatenate([np.zeros((size, 1), "int64"), begun[:, n - width + 1 :], begun], axis=1).cumsum(1)
        counts += circle[:, width : width + n] - circle[:, :n]
    return counts.astype("float64")


def weighted_scores(metric: str, y: np.ndarray, p: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``metric`` of predictions ``p`` for each row of ``counts`` (how often each holdout row counts).

    Every row of ``counts`` sums to the number of holdout rows (a resample draws as many rows as the
    holdout has); with a row of ones this equals :func:`airflow_ml.ml.metrics.score`.
    """
    total = float(y.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric == "rmse":
            return np.asarray(np.sqrt(counts @ (y - p) ** 2 / total))
        if metric == "mae":
            return np.asarray(counts @ np.abs(y - p) / total)
        if metric == "mape":
            nonzero = y != 0
            ratio = np.abs(np.divide(y - p, y, out=np.zeros_like(y), where=nonzero))
            return np.asarray(counts @ ratio / (counts @ nonzero.astype("float64")))
        if metric == "logloss":
            q = np.clip(p, 1e-15, 1 - 1e-15)
            return np.asarray(counts @ -(y * np.log(q) + (1 - y) * np.log(1 - q)) / total)
        if metric == "r2":
            sse = counts @ (y - p) ** 2
            centred = y - y.mean()  # as in _block_sums: no cancellation for a large-mean target
            sst = counts @ centred**2 - (counts @ centred) ** 2 / total
            return np.where(sst > 0, 1.0 - sse / np.where(sst > 0, sst, 1.0), 0.0)
        if metric == "auc":
            return _weighted_auc(y, p, counts)
    raise ValueError(f"unknown metric {metric!r}; choose from {sorted(DIRECTIONS)}")


def _weighted_auc(y: np.ndarray, p: np.ndarray, counts: np.ndarray) -> np.ndarray:
    # Mann-Whitney with weights: every positive counts the negatives below it, half of those tied with it.
    order = np.argsort(p, kind="mergesort")
    _, starts = np.unique(p[order], return_index=True)
    positive = (y[order] == 1).astype("float64")
    weights = counts[:, order]
    pos = np.add.reduceat(weights * positive, starts, axis=1)
    neg = np.add.reduceat(weights * (1 - positive), starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    pairs = pos.sum(axis=1) * neg.sum(axis=1)
    wins = (pos * (below + neg / 2)).sum(axis=1)
    return np.where(pairs > 0, wins / np.where(pairs > 0, pairs, 1.0), np.nan)


def _interval(values: np.ndarray, tail: float) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return (float("nan"), float("nan"))
    low, high = np.quantile(finite, [tail, 1 - tail])
    return (float(low), float(high))
