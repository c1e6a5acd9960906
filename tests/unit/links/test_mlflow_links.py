"""Where the tasks' MLflow links point: the UI as a browser reaches it."""

from __future__ import annotations

import pytest

from airflow_ml.links.mlflow_links import artifact_file_url, chart_locations, model_version_url, run_url, ui_base


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
