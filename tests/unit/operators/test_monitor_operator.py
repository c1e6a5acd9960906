"""MonitorOperator: its arguments, its template fields, and ``execute`` on a real registry with a real champion."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import DAG
from airflow.sdk.exceptions import AirflowFailException
from mlflow import MlflowClient

from airflow_ml.ml.model_registry import CHAMPION
from airflow_ml.ml.steps.step_settings import MonitorSettings
from airflow_ml.operators.monitor_operator import MonitorOperator
from tests.support.mlflow_stores import wire_mlflow
from tests.support.monitoring_worlds import FIRST_LIVE_DAY, log_days, register_champion, settings, write_labels
from tests.support.task_runs import task_context

CITY = "berlin"
SETTINGS = settings("berlin")


def _task(settings: MonitorSettings = SETTINGS, **kwargs: Any) -> tuple[DAG, MonitorOperator]:
    with DAG("ride_duration.monitor", schedule=None) as dag:
        task = MonitorOperator(task_id="monitor", city=CITY, settings={CITY: settings.to_dict()}, **kwargs)
    return dag, task


def _context(dag: DAG) -> dict[str, Any]:
    context = task_context(dag, "monitor")
    context["logical_date"] = dt.datetime.combine(FIRST_LIVE_DAY + dt.timedelta(days=4), dt.time(), dt.UTC)
    return context


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    """berlin's champion v2 (v1 before it) on a real registry wired as ``mlflow_default``; labels 30% off."""
    store = wire_mlflow(tmp_path / "mlflow", monkeypatch)
    monkeypatch.setenv("AIRFLOW_ML_DATA_ROOT", str(tmp_path / "data"))
    client = MlflowClient(tracking_uri=store["tracking_uri"], registry_uri=store["tracking_uri"])
    champion = register_champion(client, "ride_duration", CITY)
    rows = log_days(tmp_path / "data", champion, FIRST_LIVE_DAY, 5)
    write_labels(tmp_path / "data" / "labels" / CITY, rows, error=0.3)
    return client


def test_init_keeps_the_settings_by_city_and_defaults_to_the_champion_alias_outlet() -> None:
    _, task = _task()

    assert (task.city, task.mlflow_conn_id, task.data_root, task.notifiers) == (CITY, "mlflow_default", None, {})
    assert MonitorSettings.from_dict(task.settings[CITY]) == SETTINGS
    assert [type(o).__name__ for o in task.outlets] == ["AssetAlias"]


def test_the_city_s_connections_come_from_its_settings_not_the_task() -> None:
    _, task = _task(dataclasses.replace(SETTINGS, labels_conn_id="labels_s3"))

    assert not hasattr(task, "aws_conn_id")
    assert MonitorSettings.from_dict(task.settings[CITY]).labels_conn_id == "labels_s3"


def test_no_template_fields_since_its_values_come_from_yaml() -> None:
    assert MonitorOperator.template_fields == ()


def test_execute_demotes_announces_and_notifies(world: MlflowClient) -> None:
    heard: list[dict[str, Any]] = []
    dag, task = _task(notifiers={CITY: [lambda context: heard.append(context["monitor"])]})
    context = _context(dag)

    payload = task.execute(context)

    assert (payload["status"], payload["demoted"], payload["restored_version"]) == ("demote", True, "1")
    assert str(world.get_model_version_by_alias(SETTINGS.model_name, CHAMPION).version) == "1"
    (alias,) = task.outlets
    (event,) = context["outlet_events"][alias].asset_alias_events
    assert event.extra["decision"] == "demoted"
    assert (event.extra["version"], event.extra["previous_version"]) == ("1", "2")
    assert [notice["model_name"] for notice in heard] == [SETTINGS.model_name]


def test_a_retry_after_a_failed_guard_write_announces_the_demotion(
    world: MlflowClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.exceptions import MlflowException

    from airflow_ml.ml.demotion_guard import DEMOTED, active_demotion
    from airflow_ml.monitoring.monitor_step import monitor_city
    from tests.support.monitoring_worlds import failing_once

    dag, task = _task()
    context = _context(dag)
    faulty = failing_once(world.tracking_uri, DEMOTED)
    with pytest.raises(MlflowException, match="registry is down"):  # the first try: rolled back, then failed
        monitor_city(
            faulty,
            SETTINGS,
            day=context["logical_date"].date(),
            data_root=str(tmp_path / "data"),
            context={"airflow_run_id": context["run_id"]},
        )

    payload = task.execute(context)  # the retry of the same run

    assert (payload["status"], payload["demoted"], payload["restored_version"]) == ("demote", True, "1")
    assert active_demotion(world, SETTINGS.model_name) is not None
    (event,) = context["outlet_events"][task.outlets[0]].asset_alias_events
    assert (event.extra["decision"], event.extra["version"], event.extra["previous_version"]) == ("demoted", "1", "2")


def test_an_alert_without_notifiers_logs_a_warning_and_moves_nothing(
    world: MlflowClient, capsys: pytest.CaptureFixture[str]
) -> None:
    alert = dataclasses.replace(SETTINGS, supervisor=dataclasses.replace(SETTINGS.supervisor, mode="alert"))
    dag, task = _task(alert)
    context = _context(dag)

    payload = task.execute(context)

    assert (payload["status"], payload["demoted"]) == ("alert", False)
    assert str(world.get_model_version_by_alias(SETTINGS.model_name, CHAMPION).version) == "2"
    assert not context["outlet_events"][task.outlets[0]].asset_alias_events
    shown = capsys.readouterr()
    assert "no notifier is configured" in shown.out + shown.err


def test_a_city_without_settings_fails_naming_the_cities_it_has() -> None:
    dag, task = _task()
    task.city = "porto"

    with pytest.raises(AirflowFailException, match=r"no monitor settings for city 'porto'; it has \['berlin'\]"):
        task.execute(_context(dag))


def test_a_challenger_promoted_on_live_rows_is_announced_with_ids_logged_on_two_days(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_ml.ml.steps.step_settings import ShadowSettings

    store = wire_mlflow(tmp_path / "mlflow", monkeypatch)
    monkeypatch.setenv("AIRFLOW_ML_DATA_ROOT", str(tmp_path / "data"))
    client = MlflowClient(tracking_uri=store["tracking_uri"], registry_uri=store["tracking_uri"])
    weak = register_champion(client, "ride_duration", CITY, promotions=1, rounds=2)
    # 5 trips of each day are scored again the next day by both models: ids logged on two days.
    rows = log_days(tmp_path / "data", weak, FIRST_LIVE_DAY, 5, rescored=5)
    write_labels(tmp_path / "data" / "labels" / CITY, rows)
    strong = register_champion(client, "ride_duration", CITY, promotions=0, challenger=True)
    log_days(tmp_path / "data", strong, FIRST_LIVE_DAY, 5, shadow=True, rescored=5)
    shadow = ShadowSettings(min_labels=500, min_days=5, max_slice_regression=None, resamples=300)
    dag, task = _task(dataclasses.replace(SETTINGS, shadow=shadow, supervisor=settings(CITY, mode="off").supervisor))
    context = _context(dag)

    payload = task.execute(context)

    assert (payload["promoted_version"], payload["demoted"]) == ("2", False)
    (event,) = context["outlet_events"][task.outlets[0]].asset_alias_events
    assert (event.extra["decision"], event.extra["version"], event.extra["previous_version"]) == (
        "promoted-shadow",
        "2",
        "1",
    )
