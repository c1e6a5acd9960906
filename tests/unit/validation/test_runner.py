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


def test_gx_gets_the_named_columns_and_judges_table_shape_on_the_columns_without_rows() -> None:
    from airflow_ml.validation.runner import columns_to_validate, plan_columns

    columns = ["trip_id", "a", "b", "c"]
    named = small_suite(
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "b"}},
        {"type": "expect_column_pair_values_a_to_be_greater_than_b", "kwargs": {"column_A": "c", "column_B": "a"}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "missing"}},
    )
    assert columns_to_validate(named, columns) == ["a", "b", "c"]
    whole = small_suite(
        *named["expectations"],
        {"type": "expect_table_column_count_to_equal", "kwargs": {"value": 4}},
        {"type": "expect_column_to_exist", "kwargs": {"column": "trip_id", "column_index": 0}},
    )
    assert plan_columns(whole, columns).columns == ["a", "b", "c"]
    assert plan_columns(whole, columns).on_schema == {3, 4}
    counted = small_suite({"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}})
    assert columns_to_validate(counted, columns) == []  # rows counted without reading a column
    sql_only = small_suite({"type": "unexpected_rows_expectation", "kwargs": {"unexpected_rows_query": "select 1"}})
    assert columns_to_validate(sql_only, columns) is None  # a table-level kind not known to read no column


#: Expectations of every kind the plan tells apart; "junk" is named by none of them.
PRUNING_SUITE = small_suite(
    {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 3}},
    {"type": "expect_table_columns_to_match_set", "kwargs": {"column_set": ["id", "x", "y", "kind", "junk"]}},
    {"type": "expect_table_columns_to_match_ordered_list", "kwargs": {"column_list": ["id", "x", "y", "kind"]}},
    {"type": "expect_table_column_count_to_be_between", "kwargs": {"min_value": 5, "max_value": 5}},
    {"type": "expect_column_to_exist", "kwargs": {"column": "junk", "column_index": 4}},
    {"type": "expect_column_type_to_be", "kwargs": {"column": "x", "type_": "float64"}},
    {"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "min_value": 0, "max_value": 5}},
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "y"}, "meta": {"severity": "warn"}},
    {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "kind", "value_set": ["a", "b"]}},
    {"type": "expect_column_pair_values_a_to_be_greater_than_b", "kwargs": {"column_A": "x", "column_B": "y"}},
    {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["id", "kind"]}},
    {
        "type": "expect_column_values_to_be_between",
        "kwargs": {"column": "y", "max_value": 1, "row_condition": "kind == 'a'", "condition_parser": "pandas"},
    },
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "absent"}},
)


def pruning_frame() -> pd.DataFrame:
    """Referenced columns with failures GX must find, and an unreferenced column that is broken throughout."""
    return pd.DataFrame(
        {
            "id": [1, 2, 3, 4, 4],
            "x": [1.0, 2.0, 9.0, None, 3.0],
            "y": [0.5, None, 2.0, 0.0, 0.5],
            "kind": ["a", "b", "c", "a", "a"],
            "junk": [None, {"nested": [1]}, "text", 7, float("nan")],
        }
    )


def plain_gx_results(frame: pd.DataFrame, suite: dict) -> list[dict]:
    """GX's own results for ``suite`` on the whole ``frame``: no pruning, no schema pass (the reference)."""
    import great_expectations as gx

    batch = (
        gx.get_context(mode="ephemeral")
        .data_sources.add_pandas("whole")
        .add_dataframe_asset("rows")
        .add_batch_definition_whole_dataframe("all")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    tagged = [{**e, "meta": {"reference_position": i}} for i, e in enumerate(suite["expectations"])]
    outcome = batch.validate(
        gx.ExpectationSuite(name=suite["name"], expectations=tagged),
        result_format={"result_format": "BASIC", "partial_unexpected_count": 5},
    )
    results = outcome.to_json_dict()["results"]
    return sorted(results, key=lambda r: r["expectation_config"]["meta"]["reference_position"])


def judged(item: dict) -> tuple:
    from airflow_ml.validation.report import exception_message

    return item["success"], item.get("result"), exception_message(item.get("exception_info"))


def test_pruned_validation_judges_every_expectation_as_gx_does_on_the_whole_frame() -> None:
    from airflow_ml.validation.runner import run_suite

    frame = pruning_frame()

    verdict, result = run_suite(frame, PRUNING_SUITE, suite_file="small.json")

    expected = plain_gx_results(frame, PRUNING_SUITE)
    assert [judged(item) for item in result["results"]] == [judged(item) for item in expected]
    assert [item["expectation_config"]["type"] for item in result["results"]] == [
        e["type"] for e in PRUNING_SUITE["expectations"]
    ]
    outcomes = dict(zip(range(len(expected)), (item["success"] for item in expected), strict=True))
    assert [outcomes[1], outcomes[3], outcomes[4]] == [True] * 3, "the column set, count, position saw every column"
    assert not outcomes[2], "the ordered list lacks junk"
    assert (verdict.status, verdict.failed_warnings) == ("failed", 1)
    assert result["statistics"]["evaluated_expectations"] == len(expected)
    assert result["statistics"]["unsuccessful_expectations"] == sum(not s for s in outcomes.values())


def test_the_rows_of_the_named_columns_and_the_schema_give_the_same_verdict_and_report() -> None:
    from airflow_ml.validation.report import render_report
    from airflow_ml.validation.runner import plan_columns, run_suite

    frame = pruning_frame()
    columns = plan_columns(PRUNING_SUITE, list(frame.columns)).columns
    assert columns == ["id", "x", "y", "kind"]

    whole = run_suite(frame, PRUNING_SUITE, suite_file="small.json")
    read = run_suite(frame[columns], PRUNING_SUITE, suite_file="small.json", schema=frame.iloc[:0])

    assert read[0] == whole[0]
    report = render_report(whole[0].to_dict(), whole[1], title="t")
    assert render_report(read[0].to_dict(), read[1], title="t") == report


def test_a_process_renders_each_expectation_once_and_builds_one_gx_context() -> None:
    from airflow_ml.validation import runner

    suite = small_suite({"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "min_value": -7}})
    frame = pd.DataFrame({"x": [1.0, 2.0]})

    first = runner.run_suite(frame, suite, suite_file="s")[1]
    contexts = runner._engine.cache_info().currsize
    second = runner.run_suite(frame, suite, suite_file="s")[1]

    assert runner._engine.cache_info().currsize == contexts == 1
    key = next(k for k in runner._RENDERED if '"min_value": -7' in k)
    assert runner._RENDERED[key], "GX's rendering is kept for the next validation"
    sentence = first["results"][0]["expectation_config"]["rendered_content"]
    assert sentence
    assert sentence == second["results"][0]["expectation_config"]["rendered_content"]


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


def test_the_same_check_described_in_other_words_keeps_its_own_description() -> None:
    from airflow_ml.validation.runner import run_suite

    frame = pd.DataFrame({"x": [1.0, 2.0]})
    check = {"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "min_value": -3}}
    texts = []
    for words in ("Paris fares are never below -3", "Berlin fares are never below -3"):
        result = run_suite(frame, small_suite({**check, "description": words}), suite_file="s")[1]
        texts.append(json.dumps(result["results"][0]["expectation_config"], default=str))

    assert "Paris" in texts[0]
    assert "Berlin" not in texts[0]
    assert "Berlin" in texts[1], "a process's cached rendering is per description"
    assert "Paris" not in texts[1]


def test_a_suite_of_no_expectations_passes_with_nothing_evaluated() -> None:
    from airflow_ml.validation.runner import run_suite

    verdict, result = run_suite(pd.DataFrame({"x": [1.0]}), small_suite(), suite_file="empty.json")

    assert (verdict.status, verdict.evaluated) == ("passed", 0)
    assert result["statistics"]["evaluated_expectations"] == 0
