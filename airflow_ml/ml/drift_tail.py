"""The p-value of one drift statistic against the city's past values of it (see
:mod:`airflow_ml.ml.drift_calibration`, which judges every statistic of a run with it).

- the empirical p-value ``(1 + #{history >= today}) / (1 + n)``;
- beyond the history's reach (fewer than :data:`TAIL_EXCEEDANCES` past values at or above today's), a gamma
  tail fitted to the history whose shape uncertainty is integrated out (:func:`_gamma_tail`).

Values are judged normalised by their effective sample size (:func:`effective_rows`) when it is known.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

#: Below this many past values at or above today's, the fitted tail gives the p-value.
TAIL_EXCEEDANCES = 5
#: The tail is fitted only with this many past values at least (fewer: the empirical p-value).
MIN_TAIL_FIT = 5
_SQUARED = frozenset({"js_distance", "missing_rate_change"})


def effective_rows(reference: Any, current: Any, overlap: Any = 0) -> float | None:
    """``n1 * n2 / (n1 + n2 - 2 m)``, the effective sample size of a two-sample statistic whose sides share ``m``
    values; None when a count is unknown or the sides differ by no value.

    A share's difference between the sides has variance ``pi (1 - pi) (1/n1 + 1/n2 - 2m / (n1 n2))``: the shared
    values cancel. With ``m = 0`` (independent sides) this is the usual ``n1 * n2 / (n1 + n2)``.
    """
    try:
        n1, n2, m = float(reference), float(current), float(overlap)
    except (TypeError, ValueError):
        return None
    if not all(map(math.isfinite, (n1, n2, m))) or n1 <= 0 or n2 <= 0 or m < 0:
        return None
    m = min(m, n1, n2)
    spread = n1 + n2 - 2 * m
    return n1 * n2 / spread if spread > 0 else None


def p_value(
    value: float,
    history: Sequence[float] | np.ndarray,
    statistic: str,
    *,
    n_eff: float | None = None,
    history_n_eff: Sequence[float] | np.ndarray | None = None,
) -> tuple[float, str]:
    """Today's ``value`` against ``history`` (past values of the same statistic): the p-value and its method.

    Args:
        value: Today's statistic.
        history: The past values of the same statistic.
        statistic: ``psi``, ``js_distance`` or ``missing_rate_change`` (the last two are squared).
        n_eff: Today's effective sample size (see :func:`effective_rows`); with ``history_n_eff``, every value
            is judged multiplied by its own (see the module's docstring).
        history_n_eff: One effective sample size per past value.

    Returns:
        ``(p, "empirical")`` or ``(p, "gamma_tail")`` (see the module's docstring).
    """
    past = _scale(np.asarray(history, dtype=float), statistic)
    today = float(_scale(np.array([value], dtype=float), statistic)[0])
    if n_eff is not None and history_n_eff is not None:
        sizes = np.asarray(history_n_eff, dtype=float)
        if sizes.shape != past.shape:
            raise ValueError(f"{sizes.size} effective sample size(s) for {past.size} past value(s)")
        past, today = past * sizes, today * n_eff
    past = past[np.isfinite(past)]
    n = past.size
    exceed = int(np.sum(past >= today))
    empirical = (1 + exceed) / (1 + n)
    if exceed >= TAIL_EXCEEDANCES or n < MIN_TAIL_FIT:
        return float(empirical), "empirical"
    tail = _gamma_tail(today, past)
    if tail is None:
        return float(empirical), "empirical"
    return float(min(empirical, tail)), "gamma_tail"


def _scale(values: np.ndarray, statistic: str) -> np.ndarray:
    return np.square(values) if statistic in _SQUARED else values


#: The gamma shapes the tail averages over: from a tail far heavier than an exponential's to a near-normal one.
_SHAPES = np.exp(np.linspace(math.log(0.05), math.log(500.0), 160))


def _gamma_tail(value: float, past: np.ndarray) -> float | None:
    """P(a new value >= ``value``) when the past and the new value are gamma with one unknown shape and scale.

    Given the shape ``k``, the scale is integrated out (prior ``1 / scale``): the new value over the past mean
    is F-distributed with ``2k`` and ``2nk`` degrees of freedom. The shape is integrated over its posterior on
    :data:`_SHAPES` (flat prior on ``log k``), whose likelihood, the scale integrated out, depends on the past
    only through ``s = log(mean) - mean(log)``: ``-n k s - n lgamma(k) + lgamma(n k) - n k log n``. A short
    or irregular history thus keeps the heavier tails of small shapes in the average.
    """
    from scipy.special import gammaln
    from scipy.stats import f

    positive = past[past > 0]
    if positive.size < MIN_TAIL_FIT or value <= 0:
        return None
    mean = float(positive.mean())
    s = math.log(mean) - float(np.log(positive).mean())
    if s <= 1e-12:  # a constant history: no spread to measure a tail with
        return None
    n = positive.size
    k = _SHAPES
    log_likelihood = -n * k * s - n * gammaln(k) + gammaln(n * k) - n * k * math.log(n)
    weights = np.exp(log_likelihood - log_likelihood.max())
    kept = weights > 1e-12  # shapes the history rules out add nothing but time
    k, weights = k[kept], weights[kept]
    return float(np.sum(weights * f.sf(value / mean, 2 * k, 2 * n * k)) / weights.sum())
