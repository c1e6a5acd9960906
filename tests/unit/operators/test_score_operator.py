"""ResolveModelOperator and ScoreOperator: settings, template fields, and ``execute`` on a real MLflow store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowSkipException

from airflow_ml.data.prediction_log import read_predictions
from airflow_ml.ml import kill_switch
from airflow_ml.ml.steps.step_settings import ScoringSettings
from airflow_ml.operators.score_operator import SKIPPED_KEY, ResolveModelOperator, ScoreOperator, scoring_time
from tests.support.mlflow_stores import wire_mlflow
from tests.support.scoring import DAY, SCORING_YAML, ModelShelf
from tests.support.task_runs import task_context, templated_yaml
from tests.support.worlds import copy_template

MODEL = "ride_duration.lisbon"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """lisbon's scoring DAG built by the factory, its demo data and a real MLflow store with its champion."""
    from mlflow import MlflowClient

    from airflow_ml.data.demo import write_demo_data
    from airflow_ml.factory.score_dags import register_score_dags

    root = tmp_path_factory.mktemp("score_operator")
    copy_template(root, "ride_duration", extra=SCORING_YAML)
    (root / "cities" / "lisbon.yaml").write_text("city: lisbon\ntemplate: ride_duration\n", encoding="utf-8")
    write_demo_data(root / "data", cities=["lisbon"], batch="initial", scale=0.05)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_ML_DATA_ROOT", str(root / "data"))
        store = wire_mlflow(root / "mlflow", mp)
        client = MlflowClient(tracking_uri=store["tracking_uri"], registry_uri=store["tracking_uri"])
        ModelShelf(client, store["artifact_root"]).register(MODEL, 5, alias="champion")
        dag = register_score_dags({}, templates_root=root)["ride_duration.lisbon.score"]
        yield {"dag": dag, "client": client, "data_root": root / "data"}


def context(world: dict[str, Any], task_id: str) -> dict[str, Any]:
    found = task_context(world["dag"], task_id)
    found["logical_date"] = dt.datetime.combine(DAY, dt.time(), tzinfo=dt.UTC)
    return found


def test_init_takes_the_factorys_scoring_settings_as_one_dict(world: dict[str, Any]) -> None:
    resolve, score = world["dag"].get_task("resolve"), world["dag"].get_task("score")

    assert isinstance(resolve, ResolveModelOperator)
    assert isinstance(score, ScoreOperator)
    settings = ScoringSettings.from_dict(score.settings)
    assert (settings.model_name, settings.source, settings.keep_columns) == (
        MODEL,
        "{data_root}/raw/trips/{city}",
        ["pickup_zone"],
    )
    assert resolve.settings == score.settings
    assert score.upstream_task_ids == {"resolve"}


def test_template_fields_hold_only_the_upstream_xcom(world: dict[str, Any]) -> None:
    assert ResolveModelOperator.template_fields == ()
    assert ScoreOperator.template_fields == ("resolved",)
    assert templated_yaml(world["dag"].get_task("score")) == {}


def test_a_bad_settings_dict_is_refused_naming_the_key(world: dict[str, Any]) -> None:
    task = ResolveModelOperator(task_id="resolve", settings={"modle_name": MODEL})

    with pytest.raises(ValueError, match=r"unknown ScoringSettings key\(s\) \['modle_name'\]"):
        task.execute(context(world, "resolve"))  # type: ignore[arg-type]


def test_execute_resolves_once_then_scores_the_day_with_that_version(world: dict[str, Any]) -> None:
    resolve = world["dag"].get_task("resolve")
    resolved = resolve.execute(context(world, "resolve"))
    score = ScoreOperator(task_id="score", settings=resolve.settings, resolved=resolved)

    payload = score.execute(context(world, "score"))  # type: ignore[arg-type]

    assert (resolved["model_name"], resolved["version"]) == (MODEL, "1")
    assert (payload["status"], payload["day"], payload["model_version"]) == ("scored", DAY.isoformat(), "1")
    log = read_predictions(str(world["data_root"]), "ride_duration", "lisbon", DAY, DAY)
    assert len(log) == payload["row_count"] > 0
    assert payload["stored_rows"] is None  # no scoring.store


def test_the_kill_switch_skips_both_tasks_with_the_reason(world: dict[str, Any]) -> None:
    kill_switch.disable(world["client"], MODEL, reason="wrong currency upstream", by="oncall")
    try:
        resolve_context = context(world, "resolve")
        with pytest.raises(AirflowSkipException, match="wrong currency upstream"):
            world["dag"].get_task("resolve").execute(resolve_context)
        score = ScoreOperator(task_id="score", settings=world["dag"].get_task("score").settings)  # resolves itself
        with pytest.raises(AirflowSkipException, match="kill switch"):
            score.execute(context(world, "score"))  # type: ignore[arg-type]
    finally:
        kill_switch.enable(world["client"], MODEL, by="oncall")
    assert resolve_context["ti"].pushed[SKIPPED_KEY]["status"] == "disabled"


def test_a_run_without_a_logical_date_scores_the_day_it_runs_after(world: dict[str, Any]) -> None:
    found = context(world, "score")
    found["logical_date"] = None
    found["dag_run"].run_after = dt.datetime(2026, 1, 13, 2, 30, tzinfo=dt.UTC)

    assert scoring_time(found) == dt.datetime(2026, 1, 13, 2, 30, tzinfo=dt.UTC)  # type: ignore[arg-type]
