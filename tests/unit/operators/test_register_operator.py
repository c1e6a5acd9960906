"""RegisterModelOperator: its arguments, its template fields, and ``execute`` on a real MLflow store."""

from __future__ import annotations

from typing import Any

from airflow_ml.ml.model_registry import CHALLENGER
from airflow_ml.operators.register_operator import RegisterModelOperator
from tests.support.task_runs import OperatorWorld, templated_yaml


def test_init_keeps_the_model_name_and_the_lineage_tags(world: OperatorWorld) -> None:
    task = world.task("register")

    assert isinstance(task, RegisterModelOperator)
    assert task.model_name == "ride_duration.lisbon"
    assert task.tags == {"airflow_ml.city": "lisbon", "airflow_ml.template": "ride_duration"}
    assert RegisterModelOperator(task_id="r", model_name="m", training={}, snapshot={}).tags == {}


def test_template_fields_hold_only_the_upstream_xcoms(world: OperatorWorld) -> None:
    assert RegisterModelOperator.template_fields == ("training", "snapshot")
    assert templated_yaml(world.task("register")) == {}


def test_execute_registers_the_run_as_challenger_once_per_run(
    world: OperatorWorld, snapshot: dict[str, Any], training: dict[str, Any], registration: dict[str, Any]
) -> None:
    again, ti = world.run("register", snapshot=snapshot, training=training)

    assert again == registration  # a retry finds the version of its earlier try
    version = world.client.get_model_version_by_alias("ride_duration.lisbon", CHALLENGER)
    assert str(version.version) == registration["version"]
    assert version.run_id == training["run_id"]
    assert version.tags["airflow_ml.city"] == "lisbon"
    assert list(ti.pushed) == ["_link_MlflowModelVersionLink"]
