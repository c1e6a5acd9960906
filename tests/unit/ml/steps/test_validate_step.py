"""The validate step: only the columns the suite names are read and the table's shape is judged on the snapshot's
schema (engine local), or the suite runs per partition on Dask with the same verdict, files and report
(airflow_ml.ml.steps.validate_step)."""

from __future__ import annotations

import json
from pathlib import Path

import dask
import pandas as pd
import pytest

from airflow_ml.data.dask_snapshot import take_partitioned_snapshot
from airflow_ml.data.demo import write_demo_data
from airflow_ml.data.snapshot import take_snapshot
from airflow_ml.ml.steps.validate_step import SuiteInvalid, validate
from airflow_ml.ml.steps.validation_settings import ValidationSettings
from airflow_ml.ml.steps.xcom_payloads import REPORT_FILE, RESULT_FILE, VERDICT_FILE
from airflow_ml.templates.suite_files import load_suite, suite_file
from airflow_ml.validation.partitioned import PartitionedSuiteRefused
from airflow_ml.validation.report import render_report
from airflow_ml.validation.runner import run_suite
from tests.support import REPO

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


EXPECTATIONS = REPO / "expectations"


@pytest.fixture(scope="module")
def uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("root")
    write_demo_data(root, cities=["lisbon"], batch="initial", scale=0.05)
    with dask.config.set(scheduler="synchronous"):
        manifest = take_partitioned_snapshot(
            str(root / "raw/trips/lisbon"), str(root / "snapshots"), template="ride", city="lisbon", run_id="r"
        )
    return manifest.uri


SETTINGS = ValidationSettings(suite="ride_trips", expectations_dir=str(EXPECTATIONS), city="lisbon")


def test_the_dask_engine_gives_the_local_verdict_and_writes_the_same_records(uri: str) -> None:
    suite = load_suite(EXPECTATIONS, "ride_trips")
    path = str(suite_file(EXPECTATIONS, "ride_trips"))
    local = validate(uri, SETTINGS, suite=suite, suite_path=path, notes=["kept"])

    with dask.config.set(scheduler="synchronous"):
        merged = validate(uri, SETTINGS, suite=suite, suite_path=path, notes=["kept"], engine="dask")

    assert merged.verdict.status == local.verdict.status
    assert (merged.verdict.evaluated, merged.verdict.row_count) == (local.verdict.evaluated, local.verdict.row_count)
    assert merged.verdict.notes[0] == "kept"
    assert any("validated on Dask in" in note for note in merged.verdict.notes)
    on_disk = json.loads((Path(uri) / VERDICT_FILE).read_text(encoding="utf-8"))
    assert on_disk == json.loads(json.dumps(merged.record, default=str))
    assert "validated on Dask in" in (Path(uri) / REPORT_FILE).read_text(encoding="utf-8")


def test_the_dask_engine_refuses_a_suite_it_cannot_merge_before_writing(uri: str) -> None:
    suite = {"name": "s", "expectations": [{"type": "expect_table_row_count_to_equal_other_table",
                                            "kwargs": {"other_table_name": "t"}}]}  # fmt: skip

    with pytest.raises(PartitionedSuiteRefused, match="it compares with another table"):
        validate(uri, ValidationSettings(suite=None, expectations_dir=""), suite=suite, suite_path="s", engine="dask")
