"""A demotion that fails half-way is completed by the task's retry: a real MLflow registry (SQLite), real LightGBM.

The fault is a real client whose one write of a registered-model tag raises (the registry down for a moment):
after the rollback moved the alias, the guard's write (or the rollback's own last writes) fail; the retry of the
same Airflow run finds the rollback this supervisor made on this day and completes the guard, the record and
the payload that makes the operator emit the champion Asset event.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from airflow_ml.ml.demotion_guard import DEMOTED, active_demotion
from airflow_ml.ml.model_registry import CHAMPION, CHAMPION_VERSION_TAG, PREVIOUS_CHAMPION, version_by_alias
from airflow_ml.ml.steps.step_settings import MonitorSettings
from airflow_ml.monitoring.demotion import demotion_file
from airflow_ml.monitoring.monitor_step import decision_location, monitor_city
from tests.support import monitoring_worlds as worlds

TEMPLATE, CITY = "ride_duration", "berlin"
LAST_DAY = worlds.FIRST_LIVE_DAY + dt.timedelta(days=4)
SETTINGS = worlds.settings(CITY)
CONTEXT = {"airflow_run_id": "scheduled__2026-01-23", "by": "someone"}


def _uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/mlflow.db"


def _world(tmp_path: Path, *, promotions: int = 2) -> MlflowClient:
    client = MlflowClient(tracking_uri=_uri(tmp_path), registry_uri=_uri(tmp_path))
    champion = worlds.register_champion(client, TEMPLATE, CITY, promotions=promotions)
    worlds.write_labels(
        tmp_path / "labels" / CITY, worlds.log_days(tmp_path, champion, worlds.FIRST_LIVE_DAY, 5), error=0.3
    )
    return client


def _demotion_record(tmp_path: Path, version: str) -> Path:
    return Path(decision_location(str(tmp_path), TEMPLATE, CITY), demotion_file(LAST_DAY.isoformat(), version))


def _fail_once(tmp_path: Path, key: str, settings: MonitorSettings = SETTINGS) -> None:
    """The monitor's first try, on a registry that fails the first write of the tag ``key``."""
    faulty = worlds.failing_once(_uri(tmp_path), key)
    with pytest.raises(MlflowException, match="registry is down"):
        monitor_city(faulty, settings, day=LAST_DAY, data_root=str(tmp_path), context=CONTEXT)


def test_a_retry_after_the_guard_s_write_failed_completes_the_demotion(tmp_path: Path) -> None:
    client = _world(tmp_path)
    _fail_once(tmp_path, DEMOTED)
    assert str(version_by_alias(client, SETTINGS.model_name, CHAMPION).version) == "1"  # type: ignore[union-attr]
    assert active_demotion(client, SETTINGS.model_name) is None
    assert not _demotion_record(tmp_path, "2").exists()

    payload, record = monitor_city(client, SETTINGS, day=LAST_DAY, data_root=str(tmp_path), context=CONTEXT)

    assert (payload["status"], payload["demoted"], payload["champion_version"]) == ("demote", True, "2")
    assert payload["restored_version"] == "1"  # what the operator's champion Asset event announces
    guard = active_demotion(client, SETTINGS.model_name)
    assert guard is not None
    assert (guard.version, guard.requires) == ("2", "require_approval")
    assert record["after_demotion"]["sentence"] == guard.sentence()
    assert "completed now" in record["completed"]
    assert record["rollback"]["rolled_back_version"] == "2"
    assert record["supervisor"]["verdict"] == "demote"  # v2 judged again on its own predictions
    written = json.loads(_demotion_record(tmp_path, "2").read_text(encoding="utf-8"))
    assert (written["status"], written["rollback"]["monitor_day"]) == ("demote", LAST_DAY.isoformat())
    assert str(version_by_alias(client, SETTINGS.model_name, CHAMPION).version) == "1"  # type: ignore[union-attr]


def test_a_retry_after_the_rollback_s_last_writes_failed_completes_the_aliases_too(tmp_path: Path) -> None:
    client = _world(tmp_path)
    _fail_once(tmp_path, CHAMPION_VERSION_TAG)  # after the champion alias moved, before the rest
    aliases = client.get_registered_model(SETTINGS.model_name).aliases
    assert (aliases[CHAMPION], aliases[PREVIOUS_CHAMPION]) == (1, 1)  # half done

    payload, _ = monitor_city(client, SETTINGS, day=LAST_DAY, data_root=str(tmp_path), context=CONTEXT)

    assert (payload["demoted"], payload["restored_version"]) == (True, "1")
    model = client.get_registered_model(SETTINGS.model_name)
    assert PREVIOUS_CHAMPION not in model.aliases  # v1 was the first champion: no previous one
    assert model.aliases[CHAMPION] == 1
    assert model.tags[CHAMPION_VERSION_TAG] == "1"
    assert active_demotion(client, SETTINGS.model_name) is not None
    assert _demotion_record(tmp_path, "2").exists()


def test_a_retry_completes_a_demotion_that_cleared_a_first_champion(tmp_path: Path) -> None:
    client = _world(tmp_path, promotions=1)
    cooldown = dataclasses.replace(
        SETTINGS, supervisor=dataclasses.replace(SETTINGS.supervisor, after_demotion="cooldown")
    )
    _fail_once(tmp_path, DEMOTED, cooldown)
    assert version_by_alias(client, SETTINGS.model_name, CHAMPION) is None

    payload, record = monitor_city(client, cooldown, day=LAST_DAY, data_root=str(tmp_path), context=CONTEXT)

    assert (payload["status"], payload["demoted"], payload["restored_version"]) == ("demote", True, None)
    guard = active_demotion(client, SETTINGS.model_name)
    assert guard is not None
    assert (guard.version, guard.requires, guard.until) == ("1", "cooldown", record["after_demotion"]["until"])


def test_a_finished_demotion_is_not_repeated_by_another_run_of_the_same_day(tmp_path: Path) -> None:
    client = _world(tmp_path)
    monitor_city(client, SETTINGS, day=LAST_DAY, data_root=str(tmp_path), context=CONTEXT)
    guard = active_demotion(client, SETTINGS.model_name)

    payload, record = monitor_city(
        client, SETTINGS, day=LAST_DAY, data_root=str(tmp_path), context={"airflow_run_id": "manual__again"}
    )

    # Another Airflow run judges the restored champion, v1, on its own predictions (none yet).
    assert (payload["status"], payload["champion_version"], payload["demoted"]) == ("too_few_labels", "1", False)
    assert "completed" not in record
    assert active_demotion(client, SETTINGS.model_name) == guard
