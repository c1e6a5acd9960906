"""The validate step's engine: the suite on the snapshot in this process, or per partition on Dask, with the
same verdict, files and report (airflow_ml.ml.steps.validate_step)."""

from __future__ import annotations

import json
from pathlib import Path

import dask
import pytest

from airflow_ml.data.dask_snapshot import take_partitioned_snapshot
from airflow_ml.data.demo import write_demo_data
from airflow_ml.ml.steps.validate_step import validate
from airflow_ml.ml.steps.validation_settings import ValidationSettings
from airflow_ml.ml.steps.xcom_payloads import REPORT_FILE, VERDICT_FILE
from airflow_ml.templates.suite_files import load_suite, suite_file
from airflow_ml.validation.partitioned import PartitionedSuiteRefused
from tests.support import REPO

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
