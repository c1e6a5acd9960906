"""monitor_city on a real MLflow registry (SQLite) with a real LightGBM champion, its prediction log and its labels."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from airflow_ml.fleet.model_states import read_models
from airflow_ml.ml.demotion_guard import active_demotion
from airflow_ml.ml.kill_switch import disable
from airflow_ml.ml.model_registry import CHAMPION, PREVIOUS_CHAMPION, version_by_alias
from airflow_ml.monitoring.monitor_step import DECISION_ARTIFACT, decision_location, monitor_city
from tests.support.monitoring_worlds import (
    FIRST_LIVE_DAY,
    Champion,
    log_days,
    register_champion,
    settings,
    write_labels,
)

TEMPLATE, CITY = "ride_duration", "berlin"
LAST_DAY = FIRST_LIVE_DAY + dt.timedelta(days=4)
SETTINGS = settings("berlin")


@pytest.fixture
def client(tmp_path: Path) -> MlflowClient:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _world(client: MlflowClient, root: Path, *, error: float, promotions: int = 2) -> Champion:
    champion = register_champion(client, TEMPLATE, CITY, promotions=promotions)
    rows = log_days(root, champion, FIRST_LIVE_DAY, 5)
    write_labels(root / "labels" / CITY, rows, error=error)
    return champion


def _champion(client: MlflowClient) -> str | None:
    found = version_by_alias(client, SETTINGS.model_name, CHAMPION)
    return None if found is None else str(found.version)


def test_30_percent_error_in_the_labels_demotes_to_the_previous_champion_and_records_why(
    client: MlflowClient, tmp_path: Path
) -> None:
    _world(client, tmp_path, error=0.3)

    payload, record = monitor_city(
        client, SETTINGS, day=LAST_DAY, data_root=str(tmp_path), context={"by": "someone", "airflow_run_id": "r1"}
    )

    assert (payload["status"], payload["demoted"], payload["restored_version"]) == ("demote", True, "1")
    assert _champion(client) == "1"
    assert PREVIOUS_CHAMPION not in client.get_registered_model(SETTINGS.model_name).aliases
    assert record["rollback"]["rolled_back_version"] == "2"
    assert record["supervisor"]["streak"] >= 3
    assert len(record["supervisor"]["breached"]) == record["supervisor"]["streak"]
    until = dt.datetime.fromisoformat(record["after_demotion"]["until"])
    assert record["after_demotion"]["requires"] == "require_approval"
    assert dt.timedelta(days=6) < until - dt.datetime.now(dt.UTC) <= dt.timedelta(days=7)  # cooldown_days from now
    guard = active_demotion(client, SETTINGS.model_name)  # what the gate reads before the next promotion
    assert guard is not None
    assert (guard.version, guard.requires) == ("2", "require_approval")
    assert record["after_demotion"]["sentence"] == guard.sentence()
    assert record["serving_after"]["version"] == "1"
    assert "rolled back" in payload["reason"]
    written = json.loads(Path(payload["record_uri"].removeprefix("file://")).read_text(encoding="utf-8"))
    assert written["status"] == "demote"
    assert written["windows"] == record["windows"]
    assert Path(decision_location(str(tmp_path), TEMPLATE, CITY), f"{LAST_DAY}.json").exists()
    newest_run = record["mlflow_run_ids"][-1]
    assert DECISION_ARTIFACT in [f.path for f in client.list_artifacts(newest_run, "monitor")]
    demoted = client.get_model_version(SETTINGS.model_name, "2")
    assert demoted.tags["monitor.verdict"] == "demote"
    assert demoted.tags["rollback.by"] == "supervisor"


def test_a_champion_promoted_while_the_monitor_judged_the_old_one_is_not_demoted(
    client: MlflowClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_ml.monitoring import monitor_step

    _world(client, tmp_path, error=0.3)
    judge = monitor_step.decide

    def judged_while_a_retrain_promotes(*args: object, **kwargs: object) -> object:
        decision = judge(*args, **kwargs)  # type: ignore[arg-type]
        client.set_registered_model_alias(SETTINGS.model_name, CHAMPION, "1")  # another run's promotion, meanwhile
        return decision

    monkeypatch.setattr(monitor_step, "decide", judged_while_a_retrain_promotes)

    payload, record = monitor_city(client, SETTINGS, day=LAST_DAY, data_root=str(tmp_path))

    assert payload["status"] == "champion_moved"
    assert "judged v2" in payload["reason"]
    assert "champion is v1" in payload["reason"]
    assert _champion(client) == "1"
    assert "rollback" not in record
    assert active_demotion(client, SETTINGS.model_name) is None


def test_healthy_labels_keep_the_champion_with_a_monitoring_run_per_window(
    client: MlflowClient, tmp_path: Path
) -> None:
    _world(client, tmp_path, error=0.0)

    payload, record = monitor_city(client, SETTINGS, day=LAST_DAY, data_root=str(tmp_path))

    assert (payload["status"], payload["demoted"]) == ("healthy", False)
    assert _champion(client) == "2"
    assert payload["labels"] == record["join"]["labels_joined"] > 500
    assert record["join"]["unmatched_labels"] == 0
    assert len(record["mlflow_run_ids"]) == 5
    run = client.get_run(record["mlflow_run_ids"][0])
    assert {"live_rmse", "live_rmse_low", "live_rmse_high", "labels", "holdout_rmse"} <= set(run.data.metrics)
    assert run.data.tags["airflow_ml.monitor.window"] == f"{FIRST_LIVE_DAY}..{FIRST_LIVE_DAY}"
    assert client.get_model_version(SETTINGS.model_name, "2").tags["monitor.verdict"] == "healthy"
    live = read_models(client, [SETTINGS.model_name])[SETTINGS.model_name].live  # what the fleet view shows
    assert live is not None
    assert (live["verdict"], live["labels"]) == ("healthy", record["windows"][-1]["labels"])
    assert live["value"] == pytest.approx(payload["live_score"], rel=1e-5)
    assert live["previous"] == pytest.approx(record["windows"][-2]["value"], rel=1e-5)

    _, again = monitor_city(client, SETTINGS, day=LAST_DAY, data_root=str(tmp_path))
    assert again["mlflow_run_ids"] == record["mlflow_run_ids"]  # the same window's run, logged again


def test_windows_of_several_days_reuse_their_runs_on_the_next_days_and_every_page_is_read(
    client: MlflowClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_ml.monitoring import monitor_step

    _world(client, tmp_path, error=0.0)
    two_day = dataclasses.replace(SETTINGS, window_days=2, windows=2)
    monkeypatch.setattr(monitor_step, "RUNS_PAGE", 1)  # a page per run: the search reads them all
    experiment = client.get_experiment_by_name(SETTINGS.model_name).experiment_id  # type: ignore[union-attr]

    # 2026-01-19..23 are logged; the grid's two-day windows are 01-19..20, 01-21..22, 01-23..24.
    _, first = monitor_city(client, two_day, day=LAST_DAY - dt.timedelta(days=1), data_root=str(tmp_path))
    _, next_day = monitor_city(client, two_day, day=LAST_DAY, data_root=str(tmp_path))

    assert [(w["start"], w["end"]) for w in first["windows"]] == [
        ("2026-01-19", "2026-01-20"),
        ("2026-01-21", "2026-01-22"),
    ]
    assert next_day["windows"] == first["windows"]  # 01-23 waits for its window to end
    assert next_day["mlflow_run_ids"] == first["mlflow_run_ids"]
    assert len(client.search_runs([experiment], "tags.`airflow_ml.step` = 'monitor'")) == 2


def test_mode_alert_records_the_finding_and_moves_nothing(client: MlflowClient, tmp_path: Path) -> None:
    _world(client, tmp_path, error=0.3)
    alert = dataclasses.replace(SETTINGS, supervisor=dataclasses.replace(SETTINGS.supervisor, mode="alert"))

    payload, record = monitor_city(client, alert, day=LAST_DAY, data_root=str(tmp_path))

    assert (payload["status"], payload["demoted"]) == ("alert", False)
    assert "nothing moves" in payload["reason"]
    assert _champion(client) == "2"
    assert "rollback" not in record


def test_a_city_disabled_by_the_kill_switch_has_its_live_metrics_recorded_and_is_never_demoted(
    client: MlflowClient, tmp_path: Path
) -> None:
    _world(client, tmp_path, error=0.3)
    disable(client, SETTINGS.model_name, reason="fares audit", by="ops")

    payload, record = monitor_city(client, SETTINGS, day=LAST_DAY, data_root=str(tmp_path))

    assert (payload["status"], payload["demoted"], payload["disabled"]) == ("alert", False, "disabled: fares audit")
    assert record["disabled"] == "disabled: fares audit"
    assert "alert only (disabled: fares audit): nothing moves" in payload["reason"]
    assert record["supervisor"]["verdict"] == "alert"
    assert _champion(client) == "2"
    assert active_demotion(client, SETTINGS.model_name) is None
    assert len(record["mlflow_run_ids"]) == 5  # the live metrics are recorded all the same
    assert payload["live_score"] is not None


def test_no_demotion_below_n_labels_per_window(client: MlflowClient, tmp_path: Path) -> None:
    _world(client, tmp_path, error=0.3)
    strict = dataclasses.replace(SETTINGS, supervisor=dataclasses.replace(SETTINGS.supervisor, min_labels=5000))

    payload, _ = monitor_city(client, strict, day=LAST_DAY, data_root=str(tmp_path))

    assert payload["status"] == "too_few_labels"
    assert "no window has 5000 labels" in payload["reason"]
    assert _champion(client) == "2"


def test_a_first_champion_is_cleared_so_the_fallback_serves_and_a_cooldown_is_recorded(
    client: MlflowClient, tmp_path: Path
) -> None:
    _world(client, tmp_path, error=0.3, promotions=1)
    cooldown = dataclasses.replace(
        SETTINGS, supervisor=dataclasses.replace(SETTINGS.supervisor, after_demotion="cooldown")
    )

    payload, record = monitor_city(client, cooldown, day=LAST_DAY, data_root=str(tmp_path))

    assert (payload["demoted"], payload["restored_version"]) == (True, None)
    assert _champion(client) is None
    assert record["serving_after"]["source"] == "none"  # no fallback parent in this world
    assert "fallback.parent" in record["serving_after"]["reason"]
    guard = active_demotion(client, SETTINGS.model_name)
    assert guard is not None
    assert (guard.requires, guard.until) == ("cooldown", record["after_demotion"]["until"])
    assert not guard.active(dt.datetime.now(dt.UTC) + dt.timedelta(days=8))


def test_after_a_demotion_the_restored_champion_is_judged_on_its_own_predictions_only(
    client: MlflowClient, tmp_path: Path
) -> None:
    _world(client, tmp_path, error=0.3)
    monitor_city(client, SETTINGS, day=LAST_DAY, data_root=str(tmp_path))

    payload, record = monitor_city(client, SETTINGS, day=LAST_DAY, data_root=str(tmp_path))

    # v2 made every logged prediction: v1, restored, has none yet, so nothing demotes it on v2's evidence.
    assert (payload["status"], payload["champion_version"], payload["labels"]) == ("too_few_labels", "1", 0)
    assert record["join"]["unmatched_labels"] == record["join"]["labels_read"]
    assert _champion(client) == "1"
    # The day's record is the latest run's; the demotion's own record stays.
    folder = Path(decision_location(str(tmp_path), TEMPLATE, CITY))
    assert json.loads((folder / f"{LAST_DAY}.json").read_text(encoding="utf-8"))["status"] == "too_few_labels"
    assert json.loads((folder / f"demotion-{LAST_DAY}-v2.json").read_text(encoding="utf-8"))["status"] == "demote"


def test_a_city_without_a_champion_is_recorded_and_nothing_is_judged(client: MlflowClient, tmp_path: Path) -> None:
    payload, record = monitor_city(client, SETTINGS, day=LAST_DAY, data_root=str(tmp_path))

    assert payload["status"] == "no_champion"
    assert "no registered model yet" in payload["reason"]
    assert record["serving"]["source"] == "none"
