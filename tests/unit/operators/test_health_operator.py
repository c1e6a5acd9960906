"""ChampionHealthCheckOperator: its settings, its template fields, and ``execute`` on a real MLflow store."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowSkipException

from airflow_ml.ml.steps.step_settings import HealthSettings
from airflow_ml.operators.health_operator import ChampionHealthCheckOperator
from tests.support.task_runs import OperatorWorld, templated_yaml


def test_init_takes_the_factorys_health_settings_as_one_dict(world: OperatorWorld) -> None:
    task = world.task("health_check")

    assert isinstance(task, ChampionHealthCheckOperator)
    settings = HealthSettings.from_dict(task.settings)
    assert settings.model_name == "ride_duration.lisbon"
    assert settings.split.to_dict() == world.task("gate").settings["split"]
    assert task.outlets  # the champion's Asset, announced when the check passes


def test_template_fields_hold_only_the_upstream_xcoms(world: OperatorWorld) -> None:
    assert ChampionHealthCheckOperator.template_fields == ("registration", "snapshot")
    assert templated_yaml(world.task("health_check")) == {}


def test_a_bad_settings_dict_is_refused_naming_the_key(world: OperatorWorld, snapshot: dict[str, Any]) -> None:
    task = ChampionHealthCheckOperator(
        task_id="health_check", snapshot=snapshot, registration={"version": "1"}, settings={"enabld": True}
    )

    with pytest.raises(ValueError, match=r"unknown HealthSettings key\(s\) \['enabld'\]"):
        task.execute(world.context("health_check"))  # type: ignore[arg-type]


def test_a_challenger_that_did_not_become_champion_is_skipped(
    world: OperatorWorld, snapshot: dict[str, Any], registration: dict[str, Any]
) -> None:
    with pytest.raises(AirflowSkipException):
        world.run("health_check", snapshot=snapshot, registration=registration)


def test_a_run_that_registered_nothing_is_skipped_before_the_registry_is_read(
    world: OperatorWorld, snapshot: dict[str, Any]
) -> None:
    # The factory's trigger rule starts no process after a skipped gate (a thin city served by its parent);
    # a DAG that starts the task anyway (a hand-written one, another rule) gets a skip from it, not a failure.
    assert world.task("health_check").trigger_rule == "none_failed_min_one_success"

    with pytest.raises(AirflowSkipException, match="nothing was registered in this run"):
        world.run("health_check", snapshot=snapshot, registration=None)


def test_execute_checks_the_new_champion(
    world: OperatorWorld, snapshot: dict[str, Any], registration: dict[str, Any], decision: dict[str, Any]
) -> None:
    record, _ = world.run("health_check", snapshot=snapshot, registration=registration)

    assert decision["decision"] == "promoted"
    assert record["passed"] is True, record["problems"]
    assert str(record["champion_version"]) == registration["version"]
