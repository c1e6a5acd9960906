"""PromotionGateOperator: its settings, its template fields, and ``execute`` on a real MLflow store."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_ml.ml.model_registry import CHAMPION
from airflow_ml.ml.steps.step_settings import GateSettings
from airflow_ml.operators.gate_operator import PromotionGateOperator
from tests.support.task_runs import RUN_ID, OperatorWorld, templated_yaml


def test_init_takes_the_factorys_gate_settings_as_one_dict(world: OperatorWorld) -> None:
    task = world.task("gate")

    assert isinstance(task, PromotionGateOperator)
    settings = GateSettings.from_dict(task.settings)
    assert (settings.model_name, settings.metric, settings.target) == ("ride_duration.lisbon", "rmse", "duration_min")
    assert settings.rules.bootstrap is None
    assert (task.mlflow_conn_id, task.aws_conn_id) == ("mlflow_default", "aws_default")


def test_template_fields_hold_only_the_upstream_xcoms(world: OperatorWorld) -> None:
    assert PromotionGateOperator.template_fields == ("registration", "snapshot")
    assert templated_yaml(world.task("gate")) == {}


def test_a_bad_settings_dict_is_refused_naming_the_key(world: OperatorWorld, snapshot: dict[str, Any]) -> None:
    task = PromotionGateOperator(
        task_id="gate", snapshot=snapshot, registration={"version": "1"}, settings={"modelname": "x"}
    )

    with pytest.raises(ValueError, match=r"unknown GateSettings key\(s\) \['modelname'\]"):
        task.execute(world.context("gate"))  # type: ignore[arg-type]


def test_a_dry_run_records_the_decision_and_moves_nothing(
    world: OperatorWorld, snapshot: dict[str, Any], registration: dict[str, Any]
) -> None:
    record, _ = world.run("gate", {"promotion_mode": "dry_run"}, snapshot=snapshot, registration=registration)

    assert record["challenger_version"] == registration["version"]
    assert CHAMPION not in world.client.get_registered_model("ride_duration.lisbon").aliases


def test_execute_promotes_the_first_model_and_links_it(
    world: OperatorWorld, registration: dict[str, Any], decision: dict[str, Any]
) -> None:
    assert decision["decision"] == "promoted"
    assert decision["challenger_version"] == registration["version"]
    assert (decision["airflow_run_id"], decision["triggered_by_user"]) == (RUN_ID, "tester")
    champion = world.client.get_model_version_by_alias("ride_duration.lisbon", CHAMPION)
    assert str(champion.version) == registration["version"]
