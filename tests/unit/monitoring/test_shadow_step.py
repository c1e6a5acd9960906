"""The monitor's shadow phase on a real registry: real LightGBM models, the prediction log and its shadow log."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from mlflow import MlflowClient

from airflow_ml.ml.demotion_guard import active_demotion, record_demotion
from airflow_ml.ml.kill_switch import disable
from airflow_ml.ml.model_registry import CHAMPION, version_by_alias
from airflow_ml.ml.steps.step_settings import ShadowSettings
from airflow_ml.monitoring.monitor_step import monitor_city
from tests.support.monitoring_worlds import FIRST_LIVE_DAY, log_days, register_champion, settings, write_labels

DAYS = 8
LAST_DAY = FIRST_LIVE_DAY + dt.timedelta(days=DAYS - 1)
#: The supervisor off (this is about the challenger), the shadow rule with a week of evidence.
SETTINGS = dataclasses.replace(
    settings("berlin", mode="off"),
    windows=DAYS,
    shadow=ShadowSettings(min_labels=1000, min_days=7, max_slice_regression=None, resamples=300),
)


@pytest.fixture
def client(tmp_path: Path) -> MlflowClient:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _shadow_world(client: MlflowClient, root: Path, *, champion_rounds: int, rescored: int = 0) -> None:
    """berlin's champion (v1, ``champion_rounds`` rounds) and a challenger in shadow (v2 of a 40-round model).

    ``rescored`` rows of each day are scored again the next day by both (their ids logged on two days).
    """
    champion = register_champion(client, "ride_duration", "berlin", promotions=1, rounds=champion_rounds)
    rows = log_days(root, champion, FIRST_LIVE_DAY, DAYS, rescored=rescored)
    write_labels(root / "labels" / "berlin", rows)
    challenger = register_champion(client, "ride_duration", "berlin", promotions=0, challenger=True)
    log_days(root, challenger, FIRST_LIVE_DAY, DAYS, shadow=True, rescored=rescored)


def test_a_clearly_better_challenger_in_shadow_is_promoted_on_a_week_of_live_rows(
    client: MlflowClient, tmp_path: Path
) -> None:
    _shadow_world(client, tmp_path, champion_rounds=2)

    payload, record = monitor_city(client, SETTINGS, day=LAST_DAY, data_root=str(tmp_path))

    assert payload["promoted_version"] == "2"
    assert str(version_by_alias(client, SETTINGS.model_name, CHAMPION).version) == "2"  # type: ignore[union-attr]
    verdict = record["shadow"]["verdict"]
    assert (verdict["promote"], verdict["days"]) == (True, DAYS)
    assert record["shadow"]["promotion"]["mode"] == "shadow"


def test_an_identical_challenger_in_shadow_is_not_promoted(client: MlflowClient, tmp_path: Path) -> None:
    _shadow_world(client, tmp_path, champion_rounds=40)

    payload, record = monitor_city(client, SETTINGS, day=LAST_DAY, data_root=str(tmp_path))

    assert payload["promoted_version"] is None
    assert payload["shadow"] == record["shadow"]["verdict"]["reason"]
    assert record["shadow"]["verdict"]["promote"] is False
    assert str(version_by_alias(client, SETTINGS.model_name, CHAMPION).version) == "1"  # type: ignore[union-attr]


def test_without_a_challenger_there_is_no_shadow_phase(client: MlflowClient, tmp_path: Path) -> None:
    champion = register_champion(client, "ride_duration", "berlin", promotions=1)
    write_labels(tmp_path / "labels" / "berlin", log_days(tmp_path, champion, FIRST_LIVE_DAY, 2))

    payload, record = monitor_city(client, SETTINGS, day=LAST_DAY, data_root=str(tmp_path))

    assert (payload["shadow"], payload["promoted_version"], record["shadow"]) == (None, None, None)


def test_an_id_logged_on_two_days_is_compared_once_on_its_first_logged_row(
    client: MlflowClient, tmp_path: Path
) -> None:
    _shadow_world(client, tmp_path, champion_rounds=2, rescored=5)

    payload, record = monitor_city(client, SETTINGS, day=LAST_DAY, data_root=str(tmp_path))

    verdict = record["shadow"]["verdict"]
    assert verdict is not None
    # Every labelled id once: the champion's joined rows are its first logged ones, the challenger's of the same day.
    assert verdict["labels"] == record["join"]["labels_joined"]
    assert (verdict["promote"], payload["promoted_version"]) == (True, "2")


@pytest.mark.parametrize("requires", ["require_approval", "cooldown"])
def test_a_demotion_that_needs_approval_or_a_cooldown_keeps_a_better_challenger_in_shadow_and_says_why(
    client: MlflowClient, tmp_path: Path, requires: str
) -> None:
    _shadow_world(client, tmp_path, champion_rounds=2)
    until = dt.datetime.now(dt.UTC) + dt.timedelta(days=5)
    record_demotion(
        client, SETTINGS.model_name, version="7", reason="live rmse 31% above holdout", requires=requires, until=until
    )

    payload, record = monitor_city(client, SETTINGS, day=LAST_DAY, data_root=str(tmp_path))

    shadow = record["shadow"]
    assert shadow["verdict"]["promote"] is True  # the live comparison alone would promote
    assert payload["promoted_version"] is None
    assert str(version_by_alias(client, SETTINGS.model_name, CHAMPION).version) == "1"  # type: ignore[union-attr]
    assert shadow["after_demotion"].startswith(f"after_demotion: {requires} until")
    assert payload["shadow"] == shadow["promotion_refused"]
    expected = "needs approval" if requires == "require_approval" else "no promotion before then"
    assert expected in shadow["promotion_refused"]


def test_a_demotion_that_requires_shadow_is_met_by_the_live_comparison(client: MlflowClient, tmp_path: Path) -> None:
    _shadow_world(client, tmp_path, champion_rounds=2)
    record_demotion(
        client, SETTINGS.model_name, version="7", reason="live rmse 31% above holdout", requires="shadow", until=None
    )

    payload, record = monitor_city(client, SETTINGS, day=LAST_DAY, data_root=str(tmp_path))

    assert payload["promoted_version"] == "2"
    assert record["shadow"]["promotion"]["after_demotion"].endswith("met by the live comparison")
    assert active_demotion(client, SETTINGS.model_name) is None  # cleared by the promotion


def test_a_city_disabled_by_the_kill_switch_is_compared_but_never_promoted(
    client: MlflowClient, tmp_path: Path
) -> None:
    _shadow_world(client, tmp_path, champion_rounds=2)
    disable(client, SETTINGS.model_name, reason="audit of the fares", by="ops")

    payload, record = monitor_city(client, SETTINGS, day=LAST_DAY, data_root=str(tmp_path))

    assert record["shadow"]["verdict"]["promote"] is True
    assert payload["promoted_version"] is None
    assert payload["shadow"].endswith(
        "disabled: audit of the fares: a person has taken control of the city, so nothing is promoted on live rows"
    )
    assert str(version_by_alias(client, SETTINGS.model_name, CHAMPION).version) == "1"  # type: ignore[union-attr]
