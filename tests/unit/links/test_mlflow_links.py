"""Where the tasks' MLflow links point (the UI as a browser reaches it), and what a task that linked nothing answers."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from airflow_ml.links.mlflow_links import (
    MlflowModelVersionLink,
    MlflowRunLink,
    artifact_file_url,
    chart_locations,
    model_version_url,
    run_url,
    ui_base,
)


def test_a_server_uri_is_its_own_ui(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_ML_MLFLOW_UI_URL", raising=False)

    assert ui_base("http://mlflow.example:5000/") == "http://mlflow.example:5000"
    assert run_url("https://m.example", "3", "abc") == "https://m.example/#/experiments/3/runs/abc"


def test_a_store_without_ui_gives_no_link(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_ML_MLFLOW_UI_URL", raising=False)

    assert ui_base("sqlite:////srv/mlflow.db") is None
    assert model_version_url("sqlite:////srv/mlflow.db", "ride_duration.berlin", "2") is None


def test_the_configured_ui_wins_over_an_internal_server_name(monkeypatch: pytest.MonkeyPatch) -> None:
    # In docker compose the workers reach MLflow as http://mlflow:5000, which a browser cannot resolve.
    monkeypatch.setenv("AIRFLOW_ML_MLFLOW_UI_URL", "http://localhost:5000/")

    assert ui_base("http://mlflow:5000") == "http://localhost:5000"
    assert model_version_url("http://mlflow:5000", "ride_duration.berlin", "2") == (
        "http://localhost:5000/#/models/ride_duration.berlin/versions/2"
    )
    assert ui_base("sqlite:////srv/mlflow.db") == "http://localhost:5000"


def test_a_chart_is_served_by_the_ui_and_opened_on_its_artifact_page(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_ML_MLFLOW_UI_URL", "https://mlflow.example.org/")

    image = artifact_file_url("http://mlflow:5000", "r1", "gate/charts/a b.png")
    pages = chart_locations("http://mlflow:5000", experiment_id="3", run_id="r1", artifacts=["holdout/charts/x.png"])

    assert image == "https://mlflow.example.org/get-artifact?path=gate%2Fcharts%2Fa+b.png&run_uuid=r1"
    assert pages == ["https://mlflow.example.org/#/experiments/3/runs/r1/artifactPath/holdout/charts/x.png"]


def test_without_a_ui_a_chart_is_named_by_its_path_and_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_ML_MLFLOW_UI_URL", raising=False)

    assert artifact_file_url("sqlite:///m.db", "r1", "gate/charts/scores.png") is None
    assert chart_locations("sqlite:///m.db", experiment_id="3", run_id="r1", artifacts=["charts/d.png"]) == [
        "charts/d.png of MLflow run r1"
    ]


def _running_copy(task_id: str) -> tuple[Any, Any]:
    """A declaring operator and the copy a task runner executes (``prepare_for_execution``)."""
    from airflow.sdk import BaseOperator

    class Linking(BaseOperator):
        operator_extra_links = (MlflowRunLink(),)

    declared = Linking(task_id=task_id)
    return declared, declared.prepare_for_execution()


def test_a_task_that_linked_nothing_answers_an_empty_link_without_reading_xcom() -> None:
    # Airflow's runner asks every declared link for its URL when the task ends. Reading the link's XCom back
    # (as get_link did) was a 404 for a task that pushed none (a drift check skipped on a city's first run),
    # logged as "[error] XCom not found ... _link_MlflowRunLink" in a successful task; outside a task
    # process that read cannot even be made.
    _, running = _running_copy("drift")

    assert MlflowRunLink().get_link(running, ti_key=None) == ""  # type: ignore[arg-type]


def test_a_persisted_url_is_pushed_and_answered_by_the_running_copy_only() -> None:
    declared, running = _running_copy("train")
    ti = SimpleNamespace(pushed={}, xcom_push=lambda key, value: ti.pushed.__setitem__(key, value))

    MlflowRunLink.persist({"ti": ti, "task": running}, "http://ui/#/experiments/1/runs/abc")  # type: ignore[arg-type]

    assert ti.pushed == {"_link_MlflowRunLink": "http://ui/#/experiments/1/runs/abc"}
    assert MlflowRunLink().get_link(running, ti_key=None) == "http://ui/#/experiments/1/runs/abc"  # type: ignore[arg-type]
    # The DAG's own operator keeps nothing: the next run of the same DAG object starts with no link.
    assert MlflowRunLink().get_link(declared, ti_key=None) == ""  # type: ignore[arg-type]
    assert MlflowModelVersionLink().get_link(running, ti_key=None) == ""  # type: ignore[arg-type]


def test_credentials_in_the_tracking_uri_never_reach_a_link(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_ML_MLFLOW_UI_URL", raising=False)

    assert ui_base("https://ana:s3cret@mlflow.example:5000/") == "https://mlflow.example:5000"
    monkeypatch.setenv("AIRFLOW_ML_MLFLOW_UI_URL", "http://ana:s3cret@localhost:5000")
    assert ui_base("http://mlflow:5000") == "http://localhost:5000"
