"""``airflow-ml suite infer``: a starter suite inferred from the demo data, checked with real GX."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_ml.cli import main
from airflow_ml.data.demo import write_demo_data
from airflow_ml.data.sample import Sample, read_sample
from airflow_ml.exceptions import DataError
from airflow_ml.validation.infer import infer_suite
from airflow_ml.validation.runner import validate_frame
from airflow_ml.validation.suite_check import check_suite


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Berlin's initial and broken batches, each in its own data root (small scale)."""
    roots = {}
    for batch in ("initial", "broken"):
        root = tmp_path_factory.mktemp(batch)
        write_demo_data(root, cities=["berlin"], batch=batch, scale=0.05)
        roots[batch] = root / "raw" / "trips" / "berlin"
    return roots


@pytest.fixture(scope="module")
def sample(demo: dict[str, Path]) -> Sample:
    return read_sample(str(demo["initial"]))


@pytest.fixture(scope="module")
def suite(sample: Sample) -> dict[str, Any]:
    return infer_suite(sample.frame, name="trips", batch_rows=sample.batch_rows, source=sample.describe())


def _find(suite: dict[str, Any], kind: str, column: str | None = None) -> dict[str, Any]:
    found = [e for e in suite["expectations"] if e["type"] == kind and e["kwargs"].get("column") == column]
    assert len(found) == 1, f"{kind} on {column!r}: {found}"
    return found[0]


def _kinds(suite: dict[str, Any], column: str) -> set[str]:
    return {e["type"] for e in suite["expectations"] if e["kwargs"].get("column") == column}


def test_every_column_is_expected_to_exist_with_its_type(sample: Sample, suite: dict[str, Any]) -> None:
    types = {"trip_id": "str", "pickup_at": "datetime64[ns]", "pickup_hour": "int64", "distance_km": "float64"}
    for column in sample.frame.columns:
        assert _find(suite, "expect_column_to_exist", column)["meta"] == {"severity": "error", "inferred": True}
        type_check = _find(suite, "expect_column_values_to_be_of_type", column)
        assert type_check["severity"] == "critical"
        if column in types:
            assert type_check["kwargs"]["type_"] == types[column]
    assert all(e["meta"]["inferred"] is True for e in suite["expectations"])


def test_a_column_with_nulls_gets_mostly_below_its_observed_non_null_share(
    sample: Sample, suite: dict[str, Any]
) -> None:
    null_share = float(sample.frame["temperature_c"].isna().mean())
    assert 0 < null_share < 0.05  # the demo leaves ~1% of temperatures empty
    expectation = _find(suite, "expect_column_values_to_not_be_null", "temperature_c")
    mostly = expectation["kwargs"]["mostly"]
    assert mostly == math.floor((1 - null_share - 0.02) * 1000) / 1000
    assert expectation["meta"]["observed"]["null_fraction"] == pytest.approx(null_share, abs=1e-6)
    assert expectation["severity"] == "critical"
    # A column without a null must stay without one.
    assert "mostly" not in _find(suite, "expect_column_values_to_not_be_null", "duration_min")["kwargs"]


def test_numeric_ranges_hold_the_data_widened_by_the_margin(sample: Sample, suite: dict[str, Any]) -> None:
    temperature = sample.frame["temperature_c"].dropna()
    low, high = temperature.min(), temperature.max()
    bounds = _find(suite, "expect_column_values_to_be_between", "temperature_c")
    assert low < 0  # negative temperatures: the range may go below zero
    assert bounds["kwargs"]["min_value"] <= low - 0.1 * (high - low) + 1e-9
    assert bounds["kwargs"]["max_value"] >= high + 0.1 * (high - low) - 1e-9
    assert bounds["kwargs"]["max_value"] <= high + 0.12 * (high - low)  # widened by the margin, not more
    assert bounds["severity"] == "warning"
    duration = _find(suite, "expect_column_values_to_be_between", "duration_min")["kwargs"]
    assert duration["min_value"] == 0  # never below zero for a column without negatives
    assert duration["max_value"] >= sample.frame["duration_min"].max()
    # Datetimes get no range: a new day's data is always newer.
    assert _kinds(suite, "pickup_at") == {
        "expect_column_to_exist",
        "expect_column_values_to_be_of_type",
        "expect_column_values_to_not_be_null",
    }


def test_integer_ranges_stay_integers(sample: Sample) -> None:
    suite = infer_suite(sample.frame, name="trips", max_categories=0)
    hours = _find(suite, "expect_column_values_to_be_between", "pickup_hour")["kwargs"]
    assert isinstance(hours["min_value"], int)
    assert isinstance(hours["max_value"], int)
    assert (hours["min_value"], hours["max_value"]) == (0, 26)  # 0..23 widened by 2.3, rounded outwards
    assert "expect_column_values_to_be_in_set" not in _kinds(suite, "pickup_zone")


def test_low_cardinality_columns_get_their_sorted_domain(sample: Sample, suite: dict[str, Any]) -> None:
    zones = _find(suite, "expect_column_values_to_be_in_set", "pickup_zone")
    assert zones["kwargs"]["value_set"] == sorted(sample.frame["pickup_zone"].dropna().unique())
    assert len(zones["kwargs"]["value_set"]) == 12
    assert zones["severity"] == "warning"
    assert _find(suite, "expect_column_values_to_be_in_set", "is_raining")["kwargs"]["value_set"] == [0, 1]
    assert "expect_column_values_to_be_in_set" not in _kinds(suite, "trip_id")  # one value per row


def test_row_count_minimum_is_half_the_smallest_partition(sample: Sample, suite: dict[str, Any]) -> None:
    assert len(sample.partition_rows) == 60
    rows = _find(suite, "expect_table_row_count_to_be_between")
    assert rows["kwargs"] == {"min_value": sample.batch_rows // 2}
    assert sample.batch_rows == min(sample.partition_rows.values()) < len(sample.frame)
    assert rows["severity"] == "critical"
    assert infer_suite(sample.frame, name="t")["expectations"][0]["kwargs"] == {"min_value": len(sample.frame) // 2}


def test_the_inferred_suite_passes_on_its_sample_with_real_gx(sample: Sample, suite: dict[str, Any]) -> None:
    assert check_suite(suite) == []  # GX accepts every type and kwarg
    verdict = validate_frame(sample.frame, suite, suite_file="trips.json")
    assert verdict.failures == []
    assert verdict.status == "passed"
    assert verdict.evaluated == len(suite["expectations"])


def test_the_inferred_suite_flags_the_broken_batch(demo: dict[str, Path], suite: dict[str, Any]) -> None:
    broken = read_sample(str(demo["broken"])).frame
    verdict = validate_frame(broken, suite, suite_file="trips.json")
    assert verdict.status == "failed"
    failed = {(f.expectation, f.column, f.severity) for f in verdict.failures}
    assert ("expect_column_to_exist", "distance_km", "error") in failed  # renamed to 'distance'
    assert ("expect_column_values_to_not_be_null", "temperature_c", "error") in failed  # 40% nulls
    assert ("expect_column_values_to_not_be_null", "pickup_zone", "error") in failed
    assert ("expect_column_values_to_be_between", "duration_min", "warn") in failed  # negative durations


def test_the_sample_is_deterministic_and_capped(demo: dict[str, Path]) -> None:
    first = read_sample(str(demo["initial"]), sample_rows=500)
    second = read_sample(str(demo["initial"]), sample_rows=500)
    assert len(first.frame) == 500 < first.total_rows
    pd.testing.assert_frame_equal(first.frame, second.frame)
    assert first.frame["pickup_at"].is_monotonic_increasing  # the source's order is kept


def test_a_csv_file_is_read_by_its_suffix(demo: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "trips.csv"
    read_sample(str(demo["initial"])).frame.head(300).to_csv(path, index=False)
    sample = read_sample(str(path))
    assert (sample.total_rows, sample.partition_rows, sample.batch_rows) == (300, {}, 300)
    suite = infer_suite(sample.frame, name="csv", batch_rows=sample.batch_rows)
    assert validate_frame(sample.frame, suite, suite_file="csv.json").status == "passed"


@pytest.mark.parametrize(
    ("name", "fmt", "message"),
    [
        ("missing", None, "does not exist"),
        ("notes.txt", None, "name it .parquet or .csv, or give --format"),
        ("empty.csv", "csv", "holds no rows"),
    ],
)
def test_unreadable_sources_are_named(tmp_path: Path, name: str, fmt: str | None, message: str) -> None:
    path = tmp_path / name
    if name != "missing":
        path.write_text("a,b\n" if fmt else "hello\n", encoding="utf-8")
    with pytest.raises(DataError, match=message) as raised:
        read_sample(str(path), fmt=fmt)
    assert str(path) in str(raised.value)


def test_bad_settings_are_refused_by_name(sample: Sample) -> None:
    with pytest.raises(ValueError, match=r"margin must be a finite number >= 0.*-0\.5"):
        infer_suite(sample.frame, name="t", margin=-0.5)
    with pytest.raises(ValueError, match="batch_rows must be a positive integer"):
        infer_suite(sample.frame, name="t", batch_rows=0)
    with pytest.raises(ValueError, match="nothing to infer"):
        infer_suite(sample.frame.iloc[:0], name="t")


def test_cli_writes_the_suite_file(demo: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "expectations" / "my_suite.json"
    code = main(["suite", "infer", str(demo["initial"]), "-o", str(output), "--margin", "0.2"])
    assert code == 0, capsys.readouterr().err
    assert f"wrote {output}" in capsys.readouterr().out
    written = json.loads(output.read_text(encoding="utf-8"))
    assert written["name"] == "my_suite"
    assert written["meta"]["inferred"]["settings"]["margin"] == 0.2
    assert written["meta"]["inferred"]["source"]["partitions"] == 60
    frame = read_sample(str(demo["initial"])).frame
    assert validate_frame(frame, written, suite_file=str(output)).status == "passed"
    # A second run does not overwrite the suite the engineer may have edited.
    assert main(["suite", "infer", str(demo["initial"]), "-o", str(output)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["suite", "infer", str(demo["initial"]), "-o", str(output), "--force", "--name", "x"]) == 0
    assert json.loads(output.read_text(encoding="utf-8"))["name"] == "x"


def test_cli_prints_json_to_stdout(demo: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["suite", "infer", str(demo["initial"]), "--sample-rows", "400", "--max-categories", "5"]) == 0
    captured = capsys.readouterr()
    printed = json.loads(captured.out)  # stdout is the suite alone; the summary goes to stderr
    assert printed["name"] == "inferred"
    assert printed["meta"]["inferred"]["sample_rows"] == 400
    assert "expect_column_values_to_be_in_set" not in _kinds(printed, "pickup_zone")  # 12 zones > 5
    assert "inferred from 400 of" in captured.err


def test_cli_names_a_missing_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no" / "such" / "city"
    assert main(["suite", "infer", str(missing)]) == 1
    captured = capsys.readouterr()
    assert str(missing) in captured.err
    assert "does not exist" in captured.err
    assert captured.out == ""


@pytest.mark.parametrize(("flag", "value"), [("--margin", "-1"), ("--sample-rows", "0"), ("--max-categories", "x")])
def test_cli_refuses_bad_settings(flag: str, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["suite", "infer", "anywhere", flag, value])
    assert exited.value.code == 2
    assert f"argument {flag}: {value!r}" in capsys.readouterr().err
