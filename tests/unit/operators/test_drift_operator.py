"""DriftCheckOperator: its settings, its template fields, and ``execute`` on a real MLflow store."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_ml.ml.steps.drift_step import NO_CHAMPION
from airflow_ml.ml.steps.step_settings import DriftSettings
from airflow_ml.ml.steps.xcom_payloads import DRIFT_VERDICT_KEY
from airflow_ml.operators.drift_operator import DriftCheckOperator
from tests.support.task_runs import OperatorWorld, templated_yaml


def test_init_takes_the_factorys_drift_settings_as_one_dict(world: OperatorWorld) -> None:
    task = world.task("drift")

    assert isinstance(task, DriftCheckOperator)
    settings = DriftSettings.from_dict(task.settings)
    assert settings.model_name == "ride_duration.lisbon"
    assert "distance_km" in settings.features
    assert (task.mlflow_conn_id, task.aws_conn_id) == ("mlflow_default", "aws_default")


def test_template_fields_hold_only_the_snapshot_xcom(world: OperatorWorld) -> None:
    assert DriftCheckOperator.template_fields == ("snapshot",)
    assert templated_yaml(world.task("drift")) == {}


def test_a_bad_settings_dict_is_refused_naming_the_key(world: OperatorWorld, snapshot: dict[str, Any]) -> None:
    task = DriftCheckOperator(task_id="drift", snapshot=snapshot, settings={"bin": 10})

    with pytest.raises(ValueError, match=r"unknown DriftSettings key\(s\) \['bin'\]"):
        task.execute(world.context("drift"))  # type: ignore[arg-type]


def test_a_first_run_has_no_champion_and_skips_with_a_verdict(world: OperatorWorld, snapshot: dict[str, Any]) -> None:
    record, ti = world.run("drift", snapshot=snapshot)

    assert (record["status"], record["reason"]) == ("skipped", NO_CHAMPION)
    assert ti.pushed[DRIFT_VERDICT_KEY]["status"] == "skipped"


def test_execute_compares_the_snapshot_with_the_champions(
    world: OperatorWorld, snapshot: dict[str, Any], decision: dict[str, Any]
) -> None:
    record, ti = world.run("drift", snapshot=snapshot)

    assert decision["decision"] == "promoted"
    assert record["status"] == "passed", record["summary"]  # the champion's own snapshot: nothing moved
    assert world.client.get_run(record["mlflow_run_id"]).data.tags["airflow.task_id"] == "drift"
    assert set(ti.pushed) == {DRIFT_VERDICT_KEY, "_link_MlflowRunLink"}


def test_a_check_that_is_off_needs_no_mlflow_connection(world: OperatorWorld, snapshot: dict[str, Any]) -> None:
    task = world.task("drift")
    task.settings = {**task.settings, "enabled": False}
    task.mlflow_conn_id = "no_such_connection"
    task.snapshot = snapshot

    record = task.execute(world.context("drift"))

    assert record["status"] == "skipped"
    assert "drift.enabled: false" in record["reason"]
