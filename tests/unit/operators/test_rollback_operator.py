"""RollbackChampionOperator: its arguments, its template fields, and ``execute`` on a real MLflow registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.definitions.param import ParamValidationError
from airflow.sdk.exceptions import AirflowFailException
from mlflow import MlflowClient

from airflow_ml.factory.rollback import build_rollback_dag
from airflow_ml.ml.model_registry import CHAMPION, PREVIOUS_CHAMPION, promote
from airflow_ml.operators.rollback_operator import RollbackChampionOperator
from tests.support.mlflow_stores import wire_mlflow
from tests.support.task_runs import task_context

MODEL = "ride_duration.berlin"


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    """A real registry (SQLite) wired as ``mlflow_default``, with two versions of MODEL: v2 champion after v1."""
    store = wire_mlflow(tmp_path / "mlflow", monkeypatch)
    client = MlflowClient(tracking_uri=store["tracking_uri"], registry_uri=store["tracking_uri"])
    client.create_registered_model(MODEL)
    for _ in range(2):
        run = client.create_run(client.create_experiment(f"e{_}"))
        version = client.create_model_version(MODEL, f"runs:/{run.info.run_id}/model", run.info.run_id)
        promote(client, MODEL, version.version, {"decision": "promoted", "reason": "test"})
    return client


def test_init_defaults_to_the_runs_params_and_the_champion_alias_outlet() -> None:
    task = build_rollback_dag().get_task("rollback")

    assert isinstance(task, RollbackChampionOperator)
    assert (task.model, task.reason, task.mlflow_conn_id) == (None, None, "mlflow_default")
    assert [type(o).__name__ for o in task.outlets] == ["AssetAlias"]


def test_template_fields_are_the_model_and_the_reason_which_come_from_no_yaml() -> None:
    # Both are typed by the person who triggers a rollback (or set by a DAG author), never read from a city file.
    assert RollbackChampionOperator.template_fields == ("model", "reason")
    assert build_rollback_dag().get_task("rollback").model is None


def test_execute_moves_the_champion_back_and_announces_it(client: MlflowClient) -> None:
    dag = build_rollback_dag()
    context = task_context(dag, "rollback", {"model": MODEL, "reason": "bad predictions"})

    record: dict[str, Any] = dag.get_task("rollback").execute(context)

    assert (str(record["rolled_back_version"]), str(record["restored_version"])) == ("2", "1")
    assert str(client.get_model_version_by_alias(MODEL, CHAMPION).version) == "1"
    assert PREVIOUS_CHAMPION not in client.get_registered_model(MODEL).aliases
    (alias,) = dag.get_task("rollback").outlets
    assert context["outlet_events"][alias].asset_alias_events


def test_a_model_named_by_a_name_pattern_is_accepted_by_the_form_and_rolled_back(client: MlflowClient) -> None:
    # registry.name_pattern 'main.ml.{template}_{city}': the form takes the name the DAG's model: tag shows.
    patterned = "main.ml.ride_duration_berlin"
    client.create_registered_model(patterned)
    for _ in range(2):
        run = client.create_run(client.create_experiment(f"p{_}"))
        version = client.create_model_version(patterned, f"runs:/{run.info.run_id}/model", run.info.run_id)
        promote(client, patterned, version.version, {"decision": "promoted", "reason": "test"})
    dag = build_rollback_dag()

    assert dag.params.get_param("model").resolve(patterned) == patterned
    record = dag.get_task("rollback").execute(task_context(dag, "rollback", {"model": patterned, "reason": "bad"}))

    assert str(record["restored_version"]) == "1"
    assert str(client.get_model_version_by_alias(patterned, CHAMPION).version) == "1"
    assert "main.ml.ride_duration_berlin" in dag.params.get_param("model").description
    for bad in ("main.ml/ride", "ride duration.berlin", "x'; y", "Main.ML.ride", ""):
        with pytest.raises(ParamValidationError):
            dag.params.get_param("model").resolve(bad)


def test_a_model_without_a_previous_champion_is_refused_and_nothing_moves(client: MlflowClient) -> None:
    dag = build_rollback_dag()
    context = {"model": MODEL, "reason": "again"}
    dag.get_task("rollback").execute(task_context(dag, "rollback", context))

    with pytest.raises(AirflowFailException, match="rollback refused, nothing moved"):
        dag.get_task("rollback").execute(task_context(dag, "rollback", context))
    assert str(client.get_model_version_by_alias(MODEL, CHAMPION).version) == "1"


def test_a_rollback_without_a_reason_is_refused() -> None:
    dag = build_rollback_dag()

    with pytest.raises(AirflowFailException, match="needs both Params"):
        dag.get_task("rollback").execute(task_context(dag, "rollback", {"model": MODEL}))
