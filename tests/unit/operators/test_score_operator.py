"""ScoreOperator: its settings, its template fields, and ``execute`` on a real MLflow store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowSkipException

from airflow_ml.data.prediction_log import read_predictions
from airflow_ml.ml import kill_switch
from airflow_ml.ml.steps.step_settings import ScoringSettings
from airflow_ml.operators.score_operator import ScoreOperator, scoring_time
from tests.support.scoring import DAY, LISBON_MODEL, scoring_context, scoring_operator_world
from tests.support.task_runs import templated_yaml


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with scoring_operator_world(tmp_path_factory.mktemp("score_operator")) as built:
        yield built


def test_init_takes_the_factorys_scoring_settings_as_one_dict(world: dict[str, Any]) -> None:
    resolve, score = world["dag"].get_task("resolve"), world["dag"].get_task("score")

    assert isinstance(score, ScoreOperator)
    settings = ScoringSettings.from_dict(score.settings)
    assert (settings.model_name, settings.source, settings.keep_columns) == (
        LISBON_MODEL,
        "{data_root}/raw/trips/{city}",
        ["pickup_zone"],
    )
    assert resolve.settings == score.settings
    assert score.upstream_task_ids == {"resolve"}


def test_template_fields_hold_only_the_upstream_xcom(world: dict[str, Any]) -> None:
    assert ScoreOperator.template_fields == ("resolved",)
    assert templated_yaml(world["dag"].get_task("score")) == {}


def test_a_bad_settings_dict_is_refused_naming_the_key(world: dict[str, Any]) -> None:
    task = ScoreOperator(task_id="score", settings={"sourc": "x"}, resolved={"status": "serve"})

    with pytest.raises(ValueError, match=r"unknown ScoringSettings key\(s\) \['sourc'\]"):
        task.execute(scoring_context(world["dag"], "score"))  # type: ignore[arg-type]


def test_execute_scores_the_day_with_the_resolved_version(world: dict[str, Any]) -> None:
    dag = world["dag"]
    resolved = dag.get_task("resolve").execute(scoring_context(dag, "resolve"))
    score = ScoreOperator(task_id="score", settings=dag.get_task("score").settings, resolved=resolved)

    payload = score.execute(scoring_context(dag, "score"))  # type: ignore[arg-type]

    assert (payload["status"], payload["day"], payload["model_version"]) == ("scored", DAY.isoformat(), "1")
    log = read_predictions(str(world["data_root"]), "ride_duration", "lisbon", DAY, DAY)
    assert len(log) == payload["row_count"] > 0
    assert set(log["model_version"]) == {"1"}
    assert payload["stored_rows"] is None  # no scoring.store


def test_without_a_resolve_task_it_resolves_itself_with_the_same_skips(world: dict[str, Any]) -> None:
    score = ScoreOperator(task_id="score", settings=world["dag"].get_task("score").settings)
    kill_switch.disable(world["client"], LISBON_MODEL, reason="wrong currency upstream", by="oncall")
    try:
        with pytest.raises(AirflowSkipException, match="kill switch"):
            score.execute(scoring_context(world["dag"], "score"))  # type: ignore[arg-type]
    finally:
        kill_switch.enable(world["client"], LISBON_MODEL, by="oncall")


def test_a_run_without_a_logical_date_scores_the_day_it_runs_after(world: dict[str, Any]) -> None:
    context = scoring_context(world["dag"], "score")
    context["logical_date"] = None
    context["dag_run"].run_after = dt.datetime(2026, 1, 13, 2, 30, tzinfo=dt.UTC)

    assert scoring_time(context) == dt.datetime(2026, 1, 13, 2, 30, tzinfo=dt.UTC)  # type: ignore[arg-type]
