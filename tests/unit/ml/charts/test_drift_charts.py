"""The drift chart as data: each column's shares on both sides, breached and flagged first (drift_charts)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from airflow_ml.ml.charts.drift_charts import OTHER, drift_distributions, drift_order
from airflow_ml.ml.drift import DriftReport, compare

THRESHOLDS = {
    "psi": {"warn": 0.1, "error": 0.25},
    "js_distance": {"warn": 0.03, "error": 0.3},
    "missing_rate_change": {"warn": 0.05, "error": None},
    "label_psi": {"warn": 0.1, "error": 0.25},
}


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference and current rows: ``distance`` shifted a lot, ``zone`` a little, ``hour`` and the label not."""
    rng = np.random.default_rng(5)
    n = 2000

    def rows(shift: float, zone_p: list[float]) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "hour": rng.integers(0, 24, n),
                "distance": rng.gamma(2.0, 2.0, n) + shift,
                "zone": rng.choice(["a", "b", "c"], n, p=zone_p),
                "minutes": rng.normal(20, 4, n),
            }
        )

    return rows(0.0, [0.5, 0.3, 0.2]), rows(4.0, [0.4, 0.35, 0.25])


@pytest.fixture(scope="module")
def checks(frames: tuple[pd.DataFrame, pd.DataFrame]) -> list[dict]:
    return _compared(*frames).to_dict()["checks"]


def _compared(reference: pd.DataFrame, current: pd.DataFrame) -> DriftReport:
    return compare(
        reference,
        current,
        features=["hour", "distance", "zone"],
        categorical=["zone"],
        target="minutes",
        task="regression",
        thresholds=THRESHOLDS,
    )


def test_breached_columns_come_first_errors_before_warnings(checks: list[dict]) -> None:
    severity = {c["column"]: c["severity"] for c in checks if c["statistic"] != "missing_rate_change"}
    assert severity["distance"] == "error"
    assert severity["zone"] == "warn"

    order = drift_order(checks, flagged={})

    assert order[:2] == ["distance", "zone"]
    assert set(order[2:]) == {"hour", "minutes"}


def test_a_flagged_column_comes_after_the_breached_ones_and_before_the_rest(checks: list[dict]) -> None:
    order = drift_order(checks, flagged={"hour": 0.01})

    assert order == ["distance", "zone", "hour", "minutes"]


def test_each_side_is_a_distribution_on_shared_bins(frames: tuple[pd.DataFrame, pd.DataFrame], checks: list) -> None:
    reference, current = frames

    found = {d.column: d for d in drift_distributions(reference, current, checks, bins=10)}

    distance = found["distance"]
    assert distance.edges is not None
    assert len(distance.edges) == 11
    assert len(distance.reference) == len(distance.current) == len(distance.labels) == 10
    assert sum(distance.reference) == pytest.approx(1.0)
    assert sum(distance.current) == pytest.approx(1.0)
    # The shift shows: the new rows' mean bin lies to the right of the training rows'.
    centres = np.diff(distance.edges) / 2 + distance.edges[:-1]
    assert np.dot(centres, distance.current) > np.dot(centres, distance.reference) + 3
    assert (distance.severity, distance.statistic) == ("error", "psi")
    assert distance.heading.startswith("distance: psi ")
    assert distance.heading.endswith(" ERROR")
    zone = found["zone"]
    assert zone.edges is None
    assert set(zone.labels) == {"a", "b", "c"}
    assert dict(zip(zone.labels, zone.reference, strict=True))["a"] == pytest.approx((reference["zone"] == "a").mean())


def test_rare_categories_are_summed_as_other_and_columns_are_capped() -> None:
    reference = pd.DataFrame({"shop": [f"s{i % 30}" for i in range(300)]})
    current = pd.DataFrame({"shop": [f"s{i % 5}" for i in range(300)]})
    checks = [{"column": "shop", "kind": "categorical", "statistic": "js_distance", "value": 0.6, "severity": "error"}]

    (shop,) = drift_distributions(reference, current, checks, top=4)

    assert shop.labels[-1] == OTHER
    assert len(shop.labels) == 5
    assert sum(shop.reference) == pytest.approx(1.0)
    assert sum(shop.current) == pytest.approx(1.0)
    assert drift_distributions(reference, current, checks, limit=0) == ()


def test_a_column_missing_on_one_side_and_the_prediction_check_are_left_out(checks: list[dict]) -> None:
    reference = pd.DataFrame({"hour": [1, 2, 3]})
    current = pd.DataFrame({"hour": [1, 2, 4], "new": [1, 1, 1]})
    extra = [
        {"column": "new", "kind": "numeric", "statistic": "psi", "value": None, "severity": "ok"},
        {"column": "prediction", "kind": "prediction", "statistic": "psi", "value": 0.5, "severity": "error"},
    ]

    found = drift_distributions(reference, current, [c for c in checks if c["column"] == "hour"] + extra)

    assert [d.column for d in found] == ["hour"]


def test_category_shares_reproduce_the_js_distance_when_an_int_column_gained_a_null() -> None:
    from airflow_ml.ml.drift import js_distance

    reference = pd.Series([1, 2, 3, 1, 2, 1] * 50)
    current = pd.Series([1.0, 2.0, 3.0, 1.0, np.nan, 3.0] * 50)  # int codes, float because of the null
    checks = [{"column": "code", "kind": "categorical", "statistic": "js_distance", "value": 0.1, "severity": "ok"}]

    (code,) = drift_distributions(pd.DataFrame({"code": reference}), pd.DataFrame({"code": current}), checks)

    assert set(code.labels) == {"1", "2", "3"}
    p, q = np.array(code.reference), np.array(code.current)
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        return float(np.sum(a[a > 0] * np.log2(a[a > 0] / m[a > 0])))

    assert np.sqrt((kl(p) + kl(q)) / 2) == pytest.approx(js_distance(reference, current))


def test_columns_of_different_statistics_rank_by_their_value_over_the_warn_threshold() -> None:
    checks = [
        {"column": "distance", "statistic": "psi", "value": 0.09, "warn": 0.1, "severity": "ok"},  # 0.9 of warn
        {"column": "zone", "statistic": "js_distance", "value": 0.028, "warn": 0.03, "severity": "ok"},  # 0.93
        {"column": "hour", "statistic": "psi", "value": 0.02, "warn": None, "severity": "ok"},  # no threshold
    ]

    assert drift_order(checks, flagged={}) == ["zone", "distance", "hour"]


def test_the_shares_the_comparison_counted_draw_the_same_chart_as_the_frames(
    frames: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    reference, current = frames[0].astype({"zone": "string"}), frames[1].astype({"zone": "string"})
    report = _compared(reference, current)
    checks = report.to_dict()["checks"]

    reused = drift_distributions(reference, current, checks, shares=report.shares)

    assert reused == drift_distributions(reference, current, checks)
    assert drift_distributions(reference, current, checks, shares={"zone": report.shares["zone"][::-1]}) != reused


def test_values_on_an_edge_or_beyond_the_range_fall_in_the_bins_a_search_of_the_edges_finds() -> None:
    rng = np.random.default_rng(11)
    # Integers land on edges of the 0.5-99.5% range, the outliers beyond it, on both sides.
    reference = pd.DataFrame({"x": np.concatenate([rng.integers(0, 7, 5000), [-50.0, 1e9]]).astype(float)})
    current = pd.DataFrame({"x": np.concatenate([rng.integers(2, 9, 3000) * 0.3, [np.inf, np.nan]])})
    checks = [{"column": "x", "kind": "numeric", "statistic": "psi", "value": 0.3, "severity": "error"}]

    (x,) = drift_distributions(reference, current, checks, bins=7)

    edges = np.array(x.edges)
    for side, shares in ((reference["x"], x.reference), (current["x"], x.current)):
        values = side[np.isfinite(side)].to_numpy()
        index = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, edges.size - 2)
        assert shares == tuple(np.bincount(index, minlength=edges.size - 1) / values.size)
