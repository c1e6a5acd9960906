"""The holdout charts as data: the fit and residuals, ROC and calibration (airflow_ml.ml.charts.holdout_charts)."""

from __future__ import annotations

import numpy as np
import pytest

from airflow_ml.ml.charts import holdout_charts
from airflow_ml.ml.charts.holdout_charts import binary_fit, calibration_bins, regression_fit, roc_points
from airflow_ml.ml.metrics import score


@pytest.fixture(scope="module")
def probabilities() -> tuple[np.ndarray, np.ndarray]:
    """Labels and rounded probabilities (ties included) of a model better than chance."""
    rng = np.random.default_rng(11)
    y = rng.integers(0, 2, 1500).astype(float)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, y.size), 0, 1).round(2)
    return y, p


def test_roc_points_start_at_zero_end_at_one_and_never_go_down(probabilities: tuple) -> None:
    fpr, tpr, thresholds = roc_points(*probabilities)

    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0)
    assert np.all(np.diff(tpr) >= 0)
    assert np.all(np.diff(thresholds) < 0)  # one point per distinct score, highest first


def test_roc_points_match_scikit_learns_roc_curve(probabilities: tuple) -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    y, p = probabilities

    fpr, tpr, thresholds = roc_points(y, p)
    expected = metrics.roc_curve(y, p, drop_intermediate=False)

    np.testing.assert_allclose(fpr, expected[0])
    np.testing.assert_allclose(tpr, expected[1])
    np.testing.assert_allclose(thresholds[1:], expected[2][1:])


def test_the_area_under_the_drawn_curve_is_the_gates_auc(probabilities: tuple) -> None:
    fit = binary_fit(*probabilities)

    assert fit.auc == pytest.approx(score("auc", *probabilities))
    assert fit.rows == 1500


def test_calibration_bins_match_scikit_learns_calibration_curve(probabilities: tuple) -> None:
    calibration = pytest.importorskip("sklearn.calibration")
    y, p = probabilities

    mean_predicted, fraction, rows = calibration_bins(y, p, bins=10)
    expected_fraction, expected_predicted = calibration.calibration_curve(y, p, n_bins=10, strategy="uniform")

    np.testing.assert_allclose(mean_predicted, expected_predicted)
    np.testing.assert_allclose(fraction, expected_fraction)
    assert rows.sum() == y.size


def test_a_roc_curve_needs_both_classes_and_binary_labels() -> None:
    with pytest.raises(ValueError, match="needs both classes"):
        roc_points([1, 1, 1], [0.2, 0.5, 0.9])
    with pytest.raises(ValueError, match="needs 0/1 labels"):
        roc_points([0, 2, 1], [0.2, 0.5, 0.9])


def test_the_regression_fit_pairs_each_row_with_its_residual_and_samples_big_holdouts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    y = np.arange(10, dtype=float)
    p = y + np.array([1, -1] * 5)

    fit = regression_fit(y, p, metric="rmse", score=1.0)

    assert fit.actual == tuple(y)
    assert fit.predicted == tuple(p)
    assert fit.residuals == tuple(y - p)
    assert fit.span == (0.0, 9.0)
    monkeypatch.setattr(holdout_charts, "MAX_POINTS", 4)
    sampled = regression_fit(y, p, metric="rmse")
    assert sampled.rows == 10
    assert len(sampled.actual) == 4
    assert list(sampled.actual) == sorted(set(sampled.actual))  # distinct rows, in their order
    assert all(y[int(a)] - p[int(a)] == r for a, r in zip(sampled.actual, sampled.residuals, strict=True))


def test_rows_missing_a_value_are_left_out_and_lengths_must_match() -> None:
    fit = regression_fit([1.0, np.nan, 3.0], [1.5, 2.0, np.nan], metric="mae")

    assert fit.actual == (1.0,)
    assert fit.rows == 1
    with pytest.raises(ValueError, match="as many predictions as true values"):
        regression_fit([1.0, 2.0], [1.0], metric="mae")


@pytest.mark.parametrize("rows", [29_991, 71_977])
def test_the_scatter_sample_is_no_stride_through_zones_or_hours(rows: int) -> None:
    # Ten zones per timestamp (and 24 hours per day) repeat with the row number: a fixed stride can hit one.
    zone = np.arange(rows) % 10
    hour = np.arange(rows) % 24

    zones = regression_fit(zone, zone, metric="rmse")
    hours = regression_fit(hour, hour, metric="rmse")

    assert len(zones.actual) == holdout_charts.MAX_POINTS
    assert set(zones.actual) == set(range(10))
    assert set(hours.actual) == set(range(24))
    assert regression_fit(zone, zone, metric="rmse") == zones  # seeded: the same rows every time


def test_a_large_holdouts_curve_keeps_its_corners_and_at_most_2000_points() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    y = (rng.uniform(size=200_000) < 0.3).astype(float)
    p = np.clip(y * 0.2 + rng.uniform(size=y.size), 0, 1)

    fit = binary_fit(y, p)

    assert len(fit.fpr) == len(fit.tpr) == len(fit.thresholds) <= holdout_charts.MAX_ROC_POINTS
    assert (fit.fpr[0], fit.tpr[0], fit.fpr[-1], fit.tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert fit.auc == pytest.approx(score("auc", y, p))  # from every point, not the thinned ones
    small = binary_fit(*[np.array([0, 0, 1, 1, 0, 1, 1, 0]), np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])])
    corners = metrics.roc_curve([0, 0, 1, 1, 0, 1, 1, 0], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    np.testing.assert_allclose(small.fpr, corners[0])  # collinear points dropped, as scikit-learn drops them
    np.testing.assert_allclose(small.tpr, corners[1])
