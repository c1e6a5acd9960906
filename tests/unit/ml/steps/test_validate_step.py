"""The validate step reads only the columns the suite names and judges the table's shape on the snapshot's schema."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from airflow_ml.data.snapshot import take_snapshot
from airflow_ml.ml.steps.step_settings import ValidationSettings
from airflow_ml.ml.steps.validate_step import SuiteInvalid, validate
from airflow_ml.ml.steps.xcom_payloads import REPORT_FILE, RESULT_FILE, VERDICT_FILE
from airflow_ml.validation.report import render_report
from airflow_ml.validation.runner import run_suite

COLUMNS = ["id", "x", "kind", "junk"]
SUITE = {
    "name": "step",
    "expectations": [
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 2}},
        {"type": "expect_table_columns_to_match_set", "kwargs": {"column_set": COLUMNS}},
        {"type": "expect_table_column_count_to_equal", "kwargs": {"value": 4}},
        {"type": "expect_column_to_exist", "kwargs": {"column": "junk", "column_index": 3}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "min_value": 0, "max_value": 5}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "kind", "value_set": ["a"]}},
    ],
}


@pytest.fixture
def snapshot(tmp_path: Path) -> str:
    """A snapshot whose unreferenced column ``junk`` is broken (nulls, text among numbers' places)."""
    source = tmp_path / "raw" / "date=2026-01-05"
    source.mkdir(parents=True)
    frame = pd.DataFrame(
        {"id": [1, 2, 3], "x": [1.0, 9.0, None], "kind": ["a", "b", "a"], "junk": [None, "??", "-1e999"]}
    )
    frame.to_parquet(source / "part.parquet", index=False)
    return take_snapshot(str(source.parent), str(tmp_path / "snapshots"), template="t", city="c", run_id="r").uri


def settings(tmp_path: Path) -> ValidationSettings:
    return ValidationSettings(suite="step", expectations_dir=str(tmp_path), known_columns=COLUMNS)


def test_the_step_judges_as_gx_does_on_the_whole_snapshot(tmp_path: Path, snapshot: str) -> None:
    found = validate(snapshot, settings(tmp_path), suite=SUITE, suite_path="step.json")

    whole = pd.read_parquet(Path(snapshot) / "data.parquet")
    verdict, result = run_suite(whole, SUITE, suite_file="step.json")
    assert found.verdict == verdict
    assert found.verdict.status == "failed"
    assert [(f.expectation, f.column) for f in found.verdict.failures] == [
        ("expect_column_values_to_be_between", "x"),
        ("expect_column_values_to_be_in_set", "kind"),
    ], "the column set, count and position saw every column of the snapshot"
    written = json.loads((Path(snapshot) / RESULT_FILE).read_text())
    assert [item["success"] for item in written["results"]] == [item["success"] for item in result["results"]]
    assert json.loads((Path(snapshot) / VERDICT_FILE).read_text()) == found.record
    report = render_report(found.record, written, title=f"Validation of {snapshot}")
    assert (Path(snapshot) / REPORT_FILE).read_text() == report
    assert report == render_report(verdict.to_dict(), result, title=f"Validation of {snapshot}")


def test_a_suite_that_only_counts_rows_reads_no_column(tmp_path: Path, snapshot: str) -> None:
    suite = {"name": "step", "expectations": [SUITE["expectations"][0]]}

    found = validate(snapshot, settings(tmp_path), suite=suite, suite_path="step.json")

    assert found.verdict.status == "passed"
    assert found.verdict.row_count == 3


def test_a_broken_suite_is_refused_before_anything_is_read(tmp_path: Path, snapshot: str) -> None:
    suite = {"name": "step", "expectations": [{"type": "expect_column_values_to_be_shiny", "kwargs": {}}]}

    with pytest.raises(SuiteInvalid, match="expect_column_values_to_be_shiny"):
        validate(snapshot, settings(tmp_path), suite=suite, suite_path="step.json")
    assert not (Path(snapshot) / VERDICT_FILE).exists()
