"""Unit tests of the drift statistics and report, on synthetic data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from airflow_ml.ml.drift import (
    DriftCheck,
    DriftReport,
    category_shares,
    compare,
    js_distance,
    missing_rate_change,
    prediction_check,
    psi,
)

THRESHOLDS = {
    "psi": {"warn": 0.1, "error": 0.25},
    "js_distance": {"warn": 0.1, "error": 0.2},
    "missing_rate_change": {"warn": 0.05, "error": 0.2},
    "label_psi": {"warn": 0.1, "error": 0.25},
    "label_js_distance": {"warn": 0.1, "error": 0.2},
    "features": {},
}
FEATURES = ["distance_km", "zone"]


def frame(n: int = 4000, *, seed: int = 0, scale: float = 1.0, zones: tuple[str, ...] = ("a", "b")) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    distance = rng.lognormal(1.0, 0.5, n) * scale
    return pd.DataFrame(
        {
            "distance_km": distance,
            "zone": pd.array(rng.choice(zones, n), dtype="string"),
            "duration_min": distance * 3 + rng.normal(0, 1, n),
        }
    )


def run(reference: pd.DataFrame, current: pd.DataFrame, thresholds: dict | None = None, **kwargs) -> DriftReport:
    return compare(
        reference,
        current,
        features=kwargs.pop("features", FEATURES),
        categorical=kwargs.pop("categorical", ["zone"]),
        target=kwargs.pop("target", "duration_min"),
        task=kwargs.pop("task", "regression"),
        thresholds=thresholds or THRESHOLDS,
        **kwargs,
    )


def check(report: DriftReport, column: str, statistic: str) -> DriftCheck:
    return next(c for c in report.checks if c.column == column and c.statistic == statistic)


# --- statistics -------------------------------------------------------------------------------------------------


def test_psi_of_identical_data_is_zero_and_of_a_sample_of_it_near_zero() -> None:
    values = frame()["distance_km"]

    assert psi(values, values) == 0.0
    assert psi(values, values.sample(frac=0.5, random_state=1)) < 0.01


def test_psi_of_shifted_data_is_large() -> None:
    reference = frame(seed=0)["distance_km"]

    assert psi(reference, frame(seed=1, scale=3.0)["distance_km"]) > 1.0
    slight, strong = (psi(reference, frame(seed=1, scale=s)["distance_km"]) for s in (1.1, 1.5))
    assert slight < strong


def test_psi_matches_a_hand_computed_value() -> None:
    # Four values, 25 rows each: the reference's quartiles put each value in its own bin (shares 0.25).
    reference = np.repeat([1.0, 2.0, 3.0, 4.0], 25)
    current = np.repeat([1.0, 2.0, 3.0, 4.0], [40, 30, 20, 10])
    expected = sum((q - 0.25) * math.log(q / 0.25) for q in (0.4, 0.3, 0.2, 0.1))

    assert psi(reference, current, bins=4) == pytest.approx(expected)
    assert expected == pytest.approx(0.2282, abs=1e-4)


def test_psi_counts_values_beyond_the_reference_range_and_empty_bins_stay_finite() -> None:
    reference = np.linspace(0, 1, 1000)
    current = np.full(1000, 5.0)  # every value above the reference's maximum: all in the last (open) bin

    value = psi(reference, current)

    assert math.isfinite(value)
    assert value > 5


def test_psi_bins_values_on_a_cut_and_infinities_as_a_search_of_the_cuts_does() -> None:
    rng = np.random.default_rng(8)
    reference = np.concatenate([rng.integers(0, 5, 3000), [np.inf, -np.inf]]).astype(float)  # ties on every cut
    current = np.concatenate([rng.integers(1, 7, 2000), [np.inf, np.inf]]).astype(float)
    cuts = np.unique(np.quantile(reference[np.isfinite(reference)], np.linspace(0.0, 1.0, 11)[1:-1]))

    def shares(values: np.ndarray) -> np.ndarray:
        counts = np.bincount(np.searchsorted(cuts, values, side="left"), minlength=cuts.size + 1)
        return np.clip(counts / values.size, 1e-4, None)

    p, q = shares(reference), shares(current)
    assert psi(reference, current) == float(np.sum((q - p) * np.log(q / p)))  # the very same float


def test_psi_leaves_missing_values_to_the_missing_rate_check() -> None:
    reference = pd.Series(np.linspace(0, 1, 1000))
    current = reference.copy()
    current[::2] = np.nan  # half missing, the other half spread as before

    assert psi(reference, current) < 0.01
    assert missing_rate_change(reference, current) == pytest.approx(0.5)


def test_psi_of_a_side_without_values_is_nan() -> None:
    assert math.isnan(psi([np.nan, np.nan], [1.0, 2.0]))
    assert math.isnan(psi([1.0, 2.0], []))


def test_js_distance_is_zero_for_identical_frequencies_and_one_for_disjoint_categories() -> None:
    assert js_distance(["a", "b", "b"], ["b", "a", "b"]) == pytest.approx(0.0, abs=1e-9)
    assert js_distance(["a", "a"], ["b", "c"]) == pytest.approx(1.0)


def test_js_distance_stays_within_zero_and_one() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        categories = list("abcdef")
        p = rng.choice(categories, 200, p=rng.dirichlet(np.ones(6)))
        q = rng.choice(categories, 200, p=rng.dirichlet(np.ones(6)))
        assert 0.0 <= js_distance(p, q) <= 1.0


def test_js_distance_counts_unseen_categories() -> None:
    reference = ["a"] * 50 + ["b"] * 50
    # Half the current rows are a category the reference never saw: P = (.5, .5, 0), Q = (.25, .25, .5).
    current = ["a"] * 25 + ["b"] * 25 + ["new"] * 50
    p, q = np.array([0.5, 0.5, 0.0]), np.array([0.25, 0.25, 0.5])
    m = (p + q) / 2
    kl = lambda x: sum(xi * math.log2(xi / mi) for xi, mi in zip(x, m, strict=True) if xi > 0)  # noqa: E731

    assert js_distance(reference, current) == pytest.approx(math.sqrt((kl(p) + kl(q)) / 2))
    assert js_distance(reference, current) > 0.4


def test_js_distance_compares_categorical_dtypes_with_different_category_lists() -> None:
    reference = pd.Series(["a", "b"] * 10, dtype="category")
    current = pd.Series(["a", "c"] * 10, dtype="category")

    assert js_distance(reference, current) == pytest.approx(js_distance(["a", "b"] * 10, ["a", "c"] * 10))


@pytest.mark.parametrize("dtype", ["str", "string[python]", "string[pyarrow]"])
def test_a_text_column_counted_in_its_own_dtype_gives_the_shares_of_plain_objects(dtype: str) -> None:
    rng = np.random.default_rng(3)
    values = rng.choice(["a", "b", "c", "d", None], 5000, p=[0.4, 0.3, 0.15, 0.1, 0.05])
    text = pd.Series(values, dtype=dtype)
    plain = pd.Series(values, dtype=object)

    fast, slow = category_shares(text), category_shares(plain)

    assert fast.index.dtype == object
    assert fast.sort_index().equals(slow.sort_index())  # the very same floats, not approximately
    other = pd.Series(rng.choice(["a", "b", "e"], 3000), dtype=dtype)
    assert js_distance(text, other) == js_distance(plain, other.astype(object))
    assert category_shares(pd.Series([None, None], dtype=dtype)).empty


def test_the_report_keeps_the_category_shares_it_compared_out_of_its_record() -> None:
    reference, current = frame(), frame(seed=1)

    report = run(reference, current)

    assert set(report.shares) == {"zone"}  # the JS-distance columns only
    ours, theirs = report.shares["zone"]
    assert ours.equals(category_shares(reference["zone"]))
    assert theirs.equals(category_shares(current["zone"]))
    assert "shares" not in report.to_dict()


def test_missing_rate_change_is_the_absolute_difference() -> None:
    assert missing_rate_change([1, None, 3, 4], [1, 2, 3, 4]) == pytest.approx(0.25)
    assert missing_rate_change([1, 2, 3, 4], [None, None, 3, 4]) == pytest.approx(0.5)
    assert missing_rate_change([1, 2], [3, 4]) == 0.0


# --- the report ---------------------------------------------------------------------------------------------------


def test_identical_snapshots_pass_with_values_near_zero() -> None:
    data = frame()

    report = run(data, data.copy())

    assert report.status == "passed"
    assert all(c.value == pytest.approx(0.0, abs=1e-9) for c in report.checks)
    assert {(c.column, c.statistic) for c in report.checks} == {
        ("distance_km", "psi"),
        ("zone", "js_distance"),
        ("duration_min", "psi"),
        *((column, "missing_rate_change") for column in (*FEATURES, "duration_min")),
    }
    assert check(report, "duration_min", "psi").kind == "label"
    assert check(report, "zone", "js_distance").kind == "categorical"
    assert report.metrics()["drift.distance_km.psi"] == 0.0


def test_a_shifted_feature_fails_and_the_summary_names_it_with_value_threshold_and_setting() -> None:
    reference = frame(seed=0)
    current = frame(seed=1).assign(distance_km=lambda f: f["distance_km"] * 3)

    report = run(reference, current)

    assert report.status == "failed"
    breach = check(report, "distance_km", "psi")
    assert (breach.severity, breach.breached, breach.threshold) == ("error", True, 0.25)
    assert breach.setting == "drift.psi"
    assert check(report, "zone", "js_distance").severity == "ok"
    summary = report.summary()
    assert summary.startswith("drift FAILED")
    line = next(line for line in summary.splitlines() if "distance_km" in line)
    assert f"{breach.value:.4g} > error threshold 0.25" in line
    assert "drift.psi.error" in line
    assert "zone" not in summary  # only breached checks get a line
    assert report.to_dict()["breaches"] == ["distance_km.psi"]


def test_thresholds_decide_the_status() -> None:
    reference = frame(seed=0)
    current = frame(seed=1).assign(distance_km=lambda f: f["distance_km"] * 1.3)
    value = check(run(reference, current), "distance_km", "psi").value
    assert value is not None

    def status(warn: float | None, error: float | None) -> str:
        thresholds = {**THRESHOLDS, "psi": {"warn": warn, "error": error}}
        return str(run(reference, current, thresholds).status)

    assert status(value * 2, value * 3) == "passed"
    assert status(value / 2, value * 2) == "warned"
    assert status(value / 3, value / 2) == "failed"
    assert status(None, None) == "passed"  # null: not checked
    assert status(value / 2, None) == "warned"


def test_a_column_override_replaces_only_the_keys_it_sets() -> None:
    reference = frame(seed=0)
    current = frame(seed=1).assign(distance_km=lambda f: f["distance_km"] * 3)
    thresholds = {**THRESHOLDS, "features": {"distance_km": {"psi": {"error": 100.0}}}}

    report = run(reference, current, thresholds)

    breach = check(report, "distance_km", "psi")
    assert (breach.warn, breach.error) == (0.1, 100.0)
    assert report.status == "warned"
    assert breach.setting == "drift.features.distance_km.psi"
    assert "drift.features.distance_km.psi.warn" in report.summary()


def test_label_uses_its_own_thresholds_and_js_distance_for_a_binary_task() -> None:
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"x": rng.normal(size=2000), "y": rng.choice([0, 1], 2000, p=[0.9, 0.1])})
    current = pd.DataFrame({"x": rng.normal(size=2000), "y": rng.choice([0, 1], 2000, p=[0.4, 0.6])})
    thresholds = {**THRESHOLDS, "label_js_distance": {"warn": 0.05, "error": 0.3}}

    report = run(reference, current, thresholds, features=["x"], categorical=[], target="y", task="binary")

    label = check(report, "y", "js_distance")
    assert (label.kind, label.severity, label.error) == ("label", "error", 0.3)
    assert label.setting == "drift.label_js_distance"
    assert check(report, "x", "psi").severity == "ok"


def test_missing_rate_change_breaches_warn() -> None:
    reference = frame(seed=0)
    current = frame(seed=1)
    current.loc[current.sample(frac=0.1, random_state=0).index, "zone"] = pd.NA

    report = run(reference, current)

    rate = check(report, "zone", "missing_rate_change")
    assert rate.value == pytest.approx(0.1)
    assert rate.severity == "warn"
    assert report.status == "warned"


def test_a_column_missing_from_the_reference_is_skipped_with_a_note() -> None:
    reference = frame(seed=0).drop(columns=["zone"])

    report = run(reference, frame(seed=1))

    skipped = check(report, "zone", "js_distance")
    assert skipped.value is None
    assert skipped.severity == "ok"
    assert "not in the reference snapshot" in skipped.note
    assert "[skipped] zone" in report.summary()
    assert "drift.zone.js_distance" not in report.metrics()


def test_a_non_numeric_feature_not_declared_categorical_is_compared_as_categories() -> None:
    report = run(frame(seed=0), frame(seed=1), categorical=[])

    zone = check(report, "zone", "js_distance")
    assert zone.kind == "numeric"
    assert "compared as categories" in zone.note
    assert zone.value is not None


def test_report_to_dict_is_json_serialisable() -> None:
    import json

    record = run(frame(seed=0), frame(seed=1)).to_dict()

    assert json.loads(json.dumps(record))["status"] == record["status"]
    first = record["checks"][0]
    assert set(first) >= {"column", "kind", "statistic", "value", "threshold", "severity", "breached", "setting"}


def test_the_champions_predictions_are_held_against_drift_prediction_psi() -> None:
    rng = np.random.default_rng(3)
    limits = {"prediction_psi": {"warn": 0.1, "error": 0.25}}

    same = prediction_check(rng.normal(10, 2, 5000), rng.normal(10, 2, 5000), thresholds=limits)
    moved = prediction_check(rng.normal(10, 2, 5000), rng.normal(14, 2, 5000), thresholds=limits)
    missing = prediction_check(None, None, thresholds=limits, note="the champion could not be loaded")

    assert (same.column, same.kind, same.statistic, same.severity) == ("prediction", "prediction", "psi", "ok")
    assert moved.severity == "error"
    assert moved.setting == "drift.prediction_psi"
    assert (missing.value, missing.note) == (None, "the champion could not be loaded")
