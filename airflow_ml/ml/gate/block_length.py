"""The block length of the gate's bootstrap, read from the holdout's own autocorrelation (Politis and White).

Rows close in time share the weather, the traffic and the events of their hour, so their errors are correlated;
a bootstrap that draws single rows treats them as independent and gives too narrow an interval. The circular
block bootstrap draws runs of ``block_length`` consecutive rows instead. ``"auto"`` picks the length that
minimises the error of the bootstrap's variance estimate for the per-row series whose mean the gate compares
(:func:`row_series`): the automatic selection of Politis and White (2004) with the correction of Patton, Politis
and White (2009), the flat-top lag window of Politis and Romano (1995).
"""

from __future__ import annotations

import math

import numpy as np

#: Politis and White's constant of the significance band of an autocorrelation, ``c * sqrt(log10(n) / n)``.
_BAND = 2.0


def row_series(metric: str, y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The per-row contribution of predictions ``p`` to ``metric``, whose dependence sets the block length.

    The squared error for rmse and r2, the absolute (percentage) error for mae (mape), the log loss; for auc the
    placement value of DeLong et al.: the share of the other class's rows that the row is ranked correctly
    against (ties count half).
    """
    if metric in ("rmse", "r2"):
        return np.asarray((y - p) ** 2)
    if metric == "mae":
        return np.asarray(np.abs(y - p))
    if metric == "mape":
        return np.abs(np.divide(y - p, y, out=np.zeros_like(y), where=y != 0))
    if metric == "logloss":
        q = np.clip(p, 1e-15, 1 - 1e-15)
        return np.asarray(-(y * np.log(q) + (1 - y) * np.log(1 - q)))
    if metric == "auc":
        positive = y == 1
        pos, neg = np.sort(p[positive]), np.sort(p[~positive])
        if pos.size == 0 or neg.size == 0:
            return np.zeros_like(y)
        below = (np.searchsorted(neg, p, "left") + np.searchsorted(neg, p, "right")) / (2.0 * neg.size)
        above = 1.0 - (np.searchsorted(pos, p, "left") + np.searchsorted(pos, p, "right")) / (2.0 * pos.size)
        return np.where(positive, below, above)
    raise ValueError(f"unknown metric {metric!r}")


def optimal_block_length(series: np.ndarray) -> int:
    """The circular block bootstrap's block length for the mean of ``series`` (rows in time order), at least 1.

    The length of :func:`block_length_choice`, without whether the cap cut it.
    """
    return block_length_choice(series)[0]


def block_length_choice(series: np.ndarray) -> tuple[int, bool]:
    """The circular block bootstrap's block length for the mean of ``series`` (rows in time order), at least 1,
    and whether the cap cut it (the data asked for a longer block: errors that stay alike longer than the cap).

    Politis and White's rule: ``m`` is the first lag from which ``K_N`` autocorrelations in a row lie inside the
    band ``2 sqrt(log10 n / n)``; with the flat-top window over ``2m`` lags, the length is
    ``(2 G^2 / D)^(1/3) n^(1/3)``, rounded up and capped at ``min(3 sqrt(n), n / 3)``. Independent rows give 1
    or 2.
    """
    x = np.asarray(series, dtype="float64")
    n = x.size
    if n < 8:
        return 1, False
    centred = x - x.mean()
    if not np.any(centred):
        return 1, False
    k_n = max(5, math.ceil(math.sqrt(math.log10(n))))
    max_lag = min(n - 1, math.ceil(math.sqrt(n)) + k_n)
    covariance = _autocovariance(centred, max_lag)
    rho = covariance[1:] / covariance[0]
    inside = np.abs(rho) < _BAND * math.sqrt(math.log10(n) / n)
    # The first lag from which k_n autocorrelations in a row are insignificant; else the last significant one.
    runs = np.convolve(inside.astype("int64"), np.ones(k_n, dtype="int64"), mode="valid")
    quiet = np.flatnonzero(runs == k_n)
    if quiet.size:
        m_hat = int(quiet[0]) + 1  # the lag that starts the run, as in Politis and White's code
    else:
        significant = np.flatnonzero(~inside)
        m_hat = int(significant[-1]) + 1 if significant.size else 0
    window = min(2 * m_hat, max_lag)
    if window == 0:
        return 1, False
    lags = np.arange(-window, window + 1)
    flat_top = np.clip(2.0 * (1.0 - np.abs(lags) / window), 0.0, 1.0)
    r = covariance[np.abs(lags)]
    g = float(np.sum(flat_top * np.abs(lags) * r))
    d = 4.0 / 3.0 * float(np.sum(flat_top * r)) ** 2
    if d <= 0 or g == 0:
        return 1, False
    length = (2.0 * g * g / d) ** (1.0 / 3.0) * n ** (1.0 / 3.0)
    cap = min(3.0 * math.sqrt(n), n / 3.0)
    return max(1, math.ceil(min(length, cap))), length > cap


def _autocovariance(centred: np.ndarray, max_lag: int) -> np.ndarray:
    """``sum(x[t] x[t+k]) / n`` for ``k = 0 .. max_lag``, by FFT (O(n log n) whatever the lag)."""
    n = centred.size
    size = 1 << (2 * n - 1).bit_length()
    spectrum = np.fft.rfft(centred, size)
    return np.asarray(np.fft.irfft(spectrum * np.conj(spectrum), size)[: max_lag + 1] / n)
