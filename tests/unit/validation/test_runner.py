"""Unit tests of expectation suites and of validation with real GX Core 1.x (airflow_ml.validation)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from airflow_ml.data.demo import batch_days, generate_day
from airflow_ml.templates.suite_files import load_suite, suite_file
from airflow_ml.validation.runner import SAMPLE_SIZE, Verdict, validate_frame
from tests.support import REPO

EXPECTATIONS = REPO / "expectations"
SUITE_FILE = str(suite_file(EXPECTATIONS, "ride_trips"))


def demo_days(*, broken: bool, count: int = 3) -> pd.DataFrame:
    first = batch_days("broken" if broken else "initial")[0]
    days = [first + dt.timedelta(days=i) for i in range(count)]
    return pd.concat([generate_day("berlin", day, scale=0.2, broken=broken) for day in days], ignore_index=True)


@pytest.fixture(scope="module")
def suite() -> dict:
    return load_suite(EXPECTATIONS, "ride_trips")


@pytest.fixture(scope="module")
def clean() -> pd.DataFrame:
    return demo_days(broken=False)


@pytest.fixture(scope="module")
def broken_verdict(suite: dict) -> Verdict:
    return validate_frame(demo_days(broken=True), suite, suite_file=SUITE_FILE)


def failures_of(verdict: Verdict, expectation: str, column: str | None = None) -> list:
    return [f for f in verdict.failures if f.expectation == expectation and (column is None or f.column == column)]


def test_repo_suite_loads(suite: dict) -> None:
    raw = json.loads(Path(SUITE_FILE).read_text(encoding="utf-8"))

    assert suite["name"] == "ride_trips"
    assert len(suite["expectations"]) == len(raw["expectations"])
    assert all(isinstance(e["type"], str) for e in suite["expectations"])


def test_repo_suite_passes_on_clean_demo_days(suite: dict, clean: pd.DataFrame) -> None:
    min_rows = next(
        e["kwargs"]["min_value"] for e in suite["expectations"] if e["type"] == "expect_table_row_count_to_be_between"
    )
    assert len(clean) >= min_rows

    verdict = validate_frame(clean, suite, suite_file=SUITE_FILE)

    assert verdict.status == "passed", verdict.summary()
    assert verdict.ok
    assert verdict.failures == []
    assert verdict.failed_errors == verdict.failed_warnings == 0
    assert verdict.evaluated == len(suite["expectations"])
    assert verdict.row_count == len(clean)
    assert verdict.summary().startswith("validation PASSED")


def test_repo_suite_fails_on_a_broken_day(broken_verdict: Verdict) -> None:
    assert broken_verdict.status == "failed"
    assert not broken_verdict.ok
    assert broken_verdict.failed_errors >= 2
    assert broken_verdict.failed_errors + broken_verdict.failed_warnings == len(broken_verdict.failures)


def test_broken_summary_names_the_missing_column(broken_verdict: Verdict) -> None:
    missing = failures_of(broken_verdict, "expect_column_to_exist", "distance_km")

    assert len(missing) == 1
    assert missing[0].severity == "error"
    assert "'distance_km'" in broken_verdict.summary()


def test_broken_summary_shows_negative_durations(broken_verdict: Verdict) -> None:
    frame = demo_days(broken=True)
    negatives = frame.loc[frame["duration_min"] < 0.5, "duration_min"]
    (failure,) = failures_of(broken_verdict, "expect_column_values_to_be_between", "duration_min")

    assert failure.unexpected_count == len(negatives)
    assert 0 < len(failure.sample) <= SAMPLE_SIZE
    assert all(value in set(negatives) for value in failure.sample)
    summary = broken_verdict.summary()
    assert "'duration_min'" in summary
    assert repr(failure.sample[0]) in summary
    assert f"{failure.unexpected_count} unexpected" in summary


def test_broken_summary_names_the_suite_file_to_edit(broken_verdict: Verdict) -> None:
    summary = broken_verdict.summary()

    assert summary.startswith("validation FAILED")
    assert SUITE_FILE in summary
    assert "edit" in summary
    assert broken_verdict.suite_file == SUITE_FILE
    assert broken_verdict.suite == "ride_trips"


def test_verdict_is_json_serialisable(broken_verdict: Verdict) -> None:
    data = json.loads(json.dumps(broken_verdict.to_dict()))

    assert data["status"] == "failed"
    assert len(data["failures"]) == len(broken_verdict.failures)


def small_suite(*expectations: dict) -> dict:
    return {"name": "small", "expectations": list(expectations)}


def test_failing_warn_expectation_only_warns() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, None, None]})
    suite = small_suite(
        {"type": "expect_column_to_exist", "kwargs": {"column": "x"}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "x"}, "meta": {"severity": "warn"}},
    )

    verdict = validate_frame(frame, suite, suite_file="small.json")

    assert verdict.status == "warned"
    assert verdict.ok is True
    assert verdict.failed_errors == 0
    assert verdict.failed_warnings == 1
    assert verdict.failures[0].severity == "warn"
    assert verdict.failures[0].unexpected_count == 2
    assert "[warn]" in verdict.summary()


def test_same_expectation_as_error_fails() -> None:
    frame = pd.DataFrame({"x": [1.0, None]})
    suite = small_suite({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "x"}})

    verdict = validate_frame(frame, suite, suite_file="small.json")

    assert verdict.status == "failed"
    assert verdict.failures[0].severity == "error"


def test_expectation_that_could_not_run_says_why(broken_verdict: Verdict) -> None:
    (failure,) = failures_of(broken_verdict, "expect_column_values_to_not_be_null", "distance_km")

    assert failure.error
    assert "could not run" in failure.describe()


def test_gx_gets_only_the_named_columns_unless_the_suite_looks_at_the_whole_table() -> None:
    from airflow_ml.validation.runner import columns_to_validate

    columns = ["trip_id", "a", "b", "c"]
    named = small_suite(
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "b"}},
        {"type": "expect_column_pair_values_a_to_be_greater_than_b", "kwargs": {"column_A": "c", "column_B": "a"}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "missing"}},
    )
    assert columns_to_validate(named, columns) == ["a", "b", "c"]
    whole = small_suite(*named["expectations"], {"type": "expect_table_column_count_to_equal", "kwargs": {"value": 4}})
    assert columns_to_validate(whole, columns) is None
    assert (
        columns_to_validate(small_suite({"type": "expect_table_row_count_to_be_between", "kwargs": {}}), columns)
        is None
    )


def test_a_missing_column_is_still_reported_and_gx_fingerprints_nothing() -> None:
    from great_expectations.execution_engine import pandas_execution_engine

    from airflow_ml.validation.runner import run_suite

    frame = pd.DataFrame({"x": [1.0, 2.0], "other": ["a", "b"]})
    suite = small_suite(
        {"type": "expect_column_to_exist", "kwargs": {"column": "y"}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "x"}},
    )
    threshold = pandas_execution_engine.HASH_THRESHOLD

    verdict, result = run_suite(frame, suite, suite_file="small.json")

    assert [f.column for f in verdict.failures] == ["y"]
    assert "pandas_data_fingerprint" not in json.dumps(result, default=str)
    assert threshold == pandas_execution_engine.HASH_THRESHOLD, "GX's setting is restored"
