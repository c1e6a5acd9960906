"""The automatic block length (Politis and White) and the per-row series it is read from."""

from __future__ import annotations

import numpy as np
import pytest

from airflow_ml.ml.gate.block_length import optimal_block_length, row_series
from airflow_ml.ml.metrics import score


def _ar1(phi: float, n: int = 20_000, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty(n)
    out[0] = 0.0
    shocks = rng.normal(0, 1, n)
    for i in range(1, n):
        out[i] = phi * out[i - 1] + shocks[i]
    return out


def test_independent_rows_get_a_block_of_a_row_or_two_and_persistence_a_longer_one() -> None:
    lengths = {phi: optimal_block_length(_ar1(phi)) for phi in (0.0, 0.5, 0.9, 0.98)}

    assert lengths[0.0] <= 2
    assert lengths[0.0] < lengths[0.5] < lengths[0.9] < lengths[0.98]
    # An AR(1)'s optimal circular block, from its autocovariance: (1.5 (2 phi / (1 - phi^2))^2)^(1/3) n^(1/3).
    for phi in (0.5, 0.9):
        theory = (1.5 * (2 * phi / (1 - phi**2)) ** 2) ** (1 / 3) * 20_000 ** (1 / 3)
        assert 0.6 * theory <= lengths[phi] <= 1.5 * theory, (phi, lengths[phi], theory)


def test_the_block_stays_within_its_cap_and_a_constant_or_tiny_series_gets_single_rows() -> None:
    rng = np.random.default_rng(6)
    for n in (30, 200, 5000):  # random walks and a trend never decorrelate: the longest blocks there are
        for series in (np.cumsum(rng.normal(size=n)), np.arange(n, dtype=float)):
            assert 1 < optimal_block_length(series) <= min(3 * np.sqrt(n), n / 3)
    assert optimal_block_length(np.ones(500)) == 1
    assert optimal_block_length(np.arange(5.0)) == 1


@pytest.mark.parametrize("metric", ["rmse", "mae", "mape", "logloss", "auc"])
def test_the_row_series_averages_to_the_metric(metric: str) -> None:
    rng = np.random.default_rng(4)
    if metric in {"auc", "logloss"}:
        y = (rng.random(800) < 0.4).astype(float)
        p = np.round(np.clip(y * 0.3 + rng.random(800) * 0.7, 0.01, 0.99), 2)
    else:
        y = rng.gamma(3.0, 4.0, 800)
        p = y + rng.normal(0, 2, 800)

    series = row_series(metric, y, p)

    mean = {"rmse": lambda s: np.sqrt(s.mean()), "mape": lambda s: s[y != 0].mean()}.get(metric, np.mean)(series)
    if metric == "auc":  # placement values: the positives' mean is the AUC
        mean = series[y == 1].mean()
    assert mean == pytest.approx(score(metric, y, p), rel=1e-9)
