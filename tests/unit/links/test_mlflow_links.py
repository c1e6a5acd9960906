"""Where the tasks' MLflow links point: the UI as a browser reaches it."""

from __future__ import annotations

import pytest

from airflow_ml.links.mlflow_links import model_version_url, run_url, ui_base


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
