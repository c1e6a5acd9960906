"""The metrics: hand-computed cases, numpy and brute force agree, directions match the template models."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from airflow_ml.ml.metrics import DIRECTIONS, lightgbm_metric, score
from airflow_ml.templates.models import METRICS_BY_TASK


def test_rmse_and_mae_match_numpy() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(size=50)
    p = y + rng.normal(size=50)

    assert score("rmse", y, p) == pytest.approx(np.sqrt(np.mean((y - p) ** 2)))
    assert score("mae", y, p) == pytest.approx(np.mean(np.abs(y - p)))


def test_small_hand_computed_cases() -> None:
    y, p = [1.0, 2.0, 3.0], [1.0, 2.0, 5.0]

    assert score("rmse", y, p) == pytest.approx(np.sqrt(4 / 3))
    assert score("mae", y, p) == pytest.approx(2 / 3)
    # r2 = 1 - SSE/SST = 1 - 4/2
    assert score("r2", y, p) == pytest.approx(-1.0)
    assert score("r2", y, y) == 1.0
    assert score("mape", [2.0, 0.0, 4.0], [1.0, 9.0, 5.0]) == pytest.approx((0.5 + 0.25) / 2)  # zeros skipped


def test_r2_of_the_mean_predictor_is_zero() -> None:
    y = np.array([1.0, 4.0, 2.0, 8.0])

    assert score("r2", y, np.full(4, y.mean())) == pytest.approx(0.0)


def brute_force_auc(y: list[int], p: list[float]) -> float:
    """Probability that a random positive outranks a random negative, ties counting one half."""
    pos = [s for s, label in zip(p, y, strict=True) if label == 1]
    neg = [s for s, label in zip(p, y, strict=True) if label == 0]
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_auc_hand_computed_with_ties() -> None:
    y = [0, 0, 1, 1]
    p = [0.1, 0.4, 0.4, 0.8]
    # pairs (pos, neg): (0.4,0.1)=1, (0.4,0.4)=0.5, (0.8,0.1)=1, (0.8,0.4)=1 -> 3.5 / 4

    assert score("auc", y, p) == pytest.approx(3.5 / 4)


def test_auc_matches_brute_force_on_heavy_ties() -> None:
    rng = np.random.default_rng(11)
    y = rng.integers(0, 2, size=200)
    p = np.round(rng.uniform(size=200) + 0.3 * y, 1)  # few distinct values: many ties

    assert score("auc", y, p) == pytest.approx(brute_force_auc(y.tolist(), p.tolist()))


def test_auc_extremes_and_constant_scores() -> None:
    y = [0, 0, 1, 1, 1]

    assert score("auc", y, [0.1, 0.2, 0.3, 0.4, 0.5]) == 1.0
    assert score("auc", y, [0.5, 0.4, 0.3, 0.2, 0.1]) == 0.0
    assert score("auc", y, [0.3] * 5) == 0.5
    assert np.isnan(score("auc", [1, 1], [0.2, 0.3]))


def test_logloss_hand_computed() -> None:
    assert score("logloss", [1, 0], [0.8, 0.4]) == pytest.approx(-(np.log(0.8) + np.log(0.6)) / 2)


def test_unknown_metric_is_named() -> None:
    with pytest.raises(ValueError, match="'rsme'"):
        score("rsme", [1.0], [1.0])


def test_mismatched_or_empty_arrays_are_refused() -> None:
    with pytest.raises(ValueError, match="equal"):
        score("rmse", [1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="non-empty"):
        score("rmse", [], [])


def test_metric_directions_agree_with_the_template_models() -> None:
    assert set(DIRECTIONS) == set().union(*METRICS_BY_TASK.values())
    for metric in DIRECTIONS:
        assert isinstance(lightgbm_metric(metric), str)
