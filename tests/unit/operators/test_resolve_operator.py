"""ResolveModelOperator: its settings, its template fields, and ``execute`` on a real MLflow store."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowSkipException

from airflow_ml.ml import kill_switch
from airflow_ml.ml.steps.step_settings import ScoringSettings
from airflow_ml.operators.resolve_operator import SKIPPED_KEY, ResolveModelOperator
from tests.support.scoring import LISBON_MODEL, scoring_context, scoring_operator_world
from tests.support.task_runs import templated_yaml


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with scoring_operator_world(tmp_path_factory.mktemp("resolve_operator")) as built:
        yield built


def test_init_takes_the_factorys_scoring_settings_as_one_dict(world: dict[str, Any]) -> None:
    task = world["dag"].get_task("resolve")

    assert isinstance(task, ResolveModelOperator)
    settings = ScoringSettings.from_dict(task.settings)
    assert (settings.model_name, settings.parent_model, settings.shadow) == (LISBON_MODEL, None, True)


def test_template_fields_are_none_nothing_from_yaml_is_rendered(world: dict[str, Any]) -> None:
    assert ResolveModelOperator.template_fields == ()
    assert templated_yaml(world["dag"].get_task("resolve")) == {}


def test_a_bad_settings_dict_is_refused_naming_the_key(world: dict[str, Any]) -> None:
    task = ResolveModelOperator(task_id="resolve", settings={"modle_name": LISBON_MODEL})

    with pytest.raises(ValueError, match=r"unknown ScoringSettings key\(s\) \['modle_name'\]"):
        task.execute(scoring_context(world["dag"], "resolve"))  # type: ignore[arg-type]


def test_execute_resolves_the_champion_to_one_version(world: dict[str, Any]) -> None:
    resolved = world["dag"].get_task("resolve").execute(scoring_context(world["dag"], "resolve"))

    assert (resolved["status"], resolved["model_name"], resolved["version"]) == ("serve", LISBON_MODEL, "1")
    assert resolved["source"] == "own"
    assert resolved["challenger_version"] is None


def test_the_kill_switch_skips_the_task_with_the_reason(world: dict[str, Any]) -> None:
    kill_switch.disable(world["client"], LISBON_MODEL, reason="wrong currency upstream", by="oncall")
    context = scoring_context(world["dag"], "resolve")
    try:
        with pytest.raises(AirflowSkipException, match="wrong currency upstream"):
            world["dag"].get_task("resolve").execute(context)
    finally:
        kill_switch.enable(world["client"], LISBON_MODEL, by="oncall")

    assert context["ti"].pushed[SKIPPED_KEY]["status"] == "disabled"
    assert "oncall" in context["ti"].pushed[SKIPPED_KEY]["reason"]


def test_a_champion_trained_for_another_city_fails_the_task_naming_its_lineage(world: dict[str, Any]) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    client = world["client"]
    own = client.get_model_version(LISBON_MODEL, "1")
    porto = {"airflow_ml.template": "ride_duration", "airflow_ml.city": "porto"}
    foreign = client.create_model_version(LISBON_MODEL, own.source, run_id=own.run_id, tags=porto).version
    client.set_registered_model_alias(LISBON_MODEL, "champion", foreign)
    context = scoring_context(world["dag"], "resolve")
    try:
        with pytest.raises(AirflowFailException, match="which was trained for another city") as caught:
            world["dag"].get_task("resolve").execute(context)
    finally:
        client.set_registered_model_alias(LISBON_MODEL, "champion", "1")

    assert "airflow_ml.city='porto'" in str(caught.value)
    assert SKIPPED_KEY not in context["ti"].pushed  # refused, not skipped: a person must fix the alias
