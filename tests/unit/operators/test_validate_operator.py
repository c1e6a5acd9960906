"""ValidateDataOperator: its settings, its template fields, and ``execute`` with GX on a real MLflow store."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_ml.ml.steps.step_settings import ValidationSettings
from airflow_ml.operators.validate_operator import ValidateDataOperator
from tests.support.task_runs import OperatorWorld, templated_yaml


def test_init_takes_the_factorys_validation_settings_as_one_dict(world: OperatorWorld) -> None:
    task = world.task("validate")

    assert isinstance(task, ValidateDataOperator)
    settings = ValidationSettings.from_dict(task.settings)
    assert (settings.suite, settings.city, settings.experiment) == ("ride_trips", "lisbon", "ride_duration.lisbon")
    assert (task.mlflow_conn_id, task.aws_conn_id) == ("mlflow_default", "aws_default")


def test_template_fields_hold_only_the_snapshot_xcom(world: OperatorWorld) -> None:
    assert ValidateDataOperator.template_fields == ("snapshot",)
    assert templated_yaml(world.task("validate")) == {}


def test_a_bad_settings_dict_is_refused_naming_the_key(world: OperatorWorld, snapshot: dict[str, Any]) -> None:
    task = ValidateDataOperator(task_id="validate", snapshot=snapshot, settings={"suit": "trips"})

    with pytest.raises(ValueError, match=r"unknown ValidationSettings key\(s\) \['suit'\]"):
        task.execute(world.context("validate"))  # type: ignore[arg-type]


def test_execute_validates_the_snapshot_and_links_the_report(world: OperatorWorld, snapshot: dict[str, Any]) -> None:
    record, ti = world.run("validate", snapshot=snapshot)

    assert record["status"] in ("passed", "warned"), record
    assert list(ti.pushed) == ["_link_ValidationReportLink"]
    assert world.client.get_experiment_by_name("ride_duration.lisbon") is not None


def test_the_validation_run_has_counts_as_params_and_the_snapshot_as_dataset_input(
    world: OperatorWorld, snapshot: dict[str, Any]
) -> None:
    world.run("validate", snapshot=snapshot)

    experiment = world.client.get_experiment_by_name("ride_duration.lisbon")
    (run, *_) = world.client.search_runs(
        [experiment.experiment_id], "tags.`airflow_ml.step` = 'validation'", order_by=["attributes.start_time DESC"]
    )
    counts = {"validation_expectations", "validation_failed_errors", "validation_failed_warnings", "validation_rows"}
    assert counts <= set(run.data.params)
    assert not counts & set(run.data.metrics)
    assert run.data.params["validation_rows"] == str(snapshot["row_count"])
    (dataset_input,) = run.inputs.dataset_inputs
    assert dataset_input.dataset.digest == snapshot["content_hash"][:12]
    assert {t.key: t.value for t in dataset_input.tags}["mlflow.data.context"] == "validation"
