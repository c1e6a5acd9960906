"""The kill switch (airflow_ml.ml.kill_switch) on a real MLflow registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_ml.ml import kill_switch
from airflow_ml.ml.kill_switch import KillSwitchError, disable, disabled, enable, history, serving_route
from tests.support.mlflow_stores import sqlite_registry

NAME = "ride_duration.lisbon"
OTHER = "ride_duration.berlin"


@pytest.fixture
def client(tmp_path: Any) -> Any:
    return sqlite_registry(tmp_path, NAME, OTHER)


def test_a_disabled_model_says_who_and_why_and_the_other_cities_are_untouched(client: Any) -> None:
    assert disabled(client, NAME) is None

    mark = disable(client, NAME, reason="  overshoots  since the holiday ", by="ana")

    assert disabled(client, NAME) == mark
    assert (mark.reason, mark.by) == ("overshoots since the holiday", "ana")
    assert "overshoots since the holiday" in mark.sentence()
    assert "airflow-ml enable" in mark.sentence()
    assert disabled(client, OTHER) is None


def test_enable_lifts_the_mark_and_the_history_keeps_both_changes(client: Any) -> None:
    disable(client, NAME, reason="bad labels", by="ana")

    lifted = enable(client, NAME, by="bo", reason="labels fixed")

    assert lifted is not None
    assert lifted.reason == "bad labels"
    assert disabled(client, NAME) is None
    assert kill_switch.DISABLED_REASON not in (client.get_registered_model(NAME).tags or {})
    assert [(e["action"], e["by"], e["reason"]) for e in history(client, NAME)] == [
        ("disable", "ana", "bad labels"),
        ("enable", "bo", "labels fixed"),
    ]
    assert enable(client, NAME, by="bo") is None  # nothing to lift: no new history entry
    assert len(history(client, NAME)) == 2


def test_a_model_that_never_trained_can_be_disabled(client: Any) -> None:
    disable(client, "ride_duration.porto", reason="not yet trusted", by="ana")

    assert disabled(client, "ride_duration.porto") is not None
    assert disabled(client, "ride_duration.nowhere") is None


@pytest.mark.parametrize(("reason", "by", "field"), [("", "ana", "reason"), ("why", "  ", "by")])
def test_a_disable_without_reason_or_name_is_refused_and_changes_nothing(
    client: Any, reason: str, by: str, field: str
) -> None:
    with pytest.raises(KillSwitchError, match=f"needs '{field}'"):
        disable(client, NAME, reason=reason, by=by)
    assert disabled(client, NAME) is None
    assert history(client, NAME) == []


def test_the_history_is_bounded_and_survives_a_hand_edited_tag(client: Any) -> None:
    client.set_registered_model_tag(NAME, kill_switch.HISTORY, "{not json")
    for index in range(kill_switch.HISTORY_LENGTH + 3):
        disable(client, NAME, reason=f"r{index}", by="ana")

    entries = history(client, NAME)

    assert len(entries) == kill_switch.HISTORY_LENGTH
    assert entries[-1]["reason"] == f"r{kill_switch.HISTORY_LENGTH + 2}"
    assert disable(client, NAME, reason="x" * 1000, by="ana").reason == "x" * kill_switch.MAX_REASON


def _version(client: Any, folder: Path, name: str, *, trained_for: str) -> str:
    """A version of ``name`` whose training run says it was trained for city ``trained_for`` (no model trained)."""
    experiment = client.get_experiment_by_name(name)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(name)
    tags = {"airflow_ml.template": "ride_duration", "airflow_ml.city": trained_for}
    run_id = client.create_run(experiment_id, tags=tags).info.run_id
    (folder / "model").mkdir(exist_ok=True)
    return str(client.create_model_version(name, str(folder / "model"), run_id=run_id, tags=tags).version)


def test_batch_scoring_and_the_http_server_refuse_a_foreign_champion_with_one_answer(
    client: Any, tmp_path: Path
) -> None:
    from airflow_ml.ml.steps.step_settings import ScoringSettings
    from airflow_ml.scoring import score_step
    from airflow_ml.scoring.http_fleet import ServedCity, read_route

    client.set_registered_model_alias(NAME, "champion", _version(client, tmp_path, NAME, trained_for="porto"))
    settings = ScoringSettings(
        template="ride_duration", city="lisbon", model_name=NAME, source="{data_root}/{city}", features=["x"]
    )
    city = ServedCity("ride_duration", "lisbon", NAME, None, ("x",), str(tmp_path))

    route = serving_route(client, NAME, None)
    resolved = score_step.resolve(client, settings)

    assert (route.source, route.model_name, route.version, route.serves) == ("foreign", None, None, False)
    assert route.reason.startswith(f"{NAME} is not served, its champion is refused: {NAME}: the 'champion' alias")
    assert "which was trained for another city" in route.reason
    assert "airflow_ml.city='porto'" in route.reason
    assert read_route(client, city) == route  # the HTTP server: a 503 with this reason
    assert (resolved["status"], resolved["reason"], resolved["version"]) == ("refused", route.reason, None)


def test_a_disabled_parent_serves_none_of_its_members_on_either_path(client: Any, tmp_path: Path) -> None:
    parent = "ride_duration.global"
    client.create_registered_model(parent)
    client.set_registered_model_alias(parent, "champion", _version(client, tmp_path, parent, trained_for="global"))
    served = serving_route(client, OTHER, parent)
    disable(client, parent, reason="trained on a broken week", by="ana")

    stopped = serving_route(client, OTHER, parent)

    assert (served.source, served.model_name, served.version) == ("parent", parent, "1")
    assert (stopped.source, stopped.model_name, stopped.disabled) == ("disabled", None, disabled(client, parent))
    assert stopped.reason.startswith(f"{OTHER} is served by its parent, but {parent} is disabled by the kill switch")
    assert stopped.to_dict()["disabled"]["reason"] == "trained on a broken week"
