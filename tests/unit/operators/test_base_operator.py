"""The operators' bases: the MLflow connection and its lazy hook, the settings dict, the template fields; and an
MLflow server that does not answer becomes one clear error naming the URL, the task's action and the fix.

``execute`` is each concrete operator's (one test module each, beside this one).
"""

from __future__ import annotations

import json
import socket

import pytest

from airflow_ml.exceptions import MlflowUnreachable
from airflow_ml.hooks.mlflow import MlflowHook
from airflow_ml.operators.base_operator import MlflowBaseOperator, SnapshotStepOperator, mlflow_errors


def test_the_hook_is_built_at_execute_time_from_the_connection_id(monkeypatch: pytest.MonkeyPatch) -> None:
    task = MlflowBaseOperator(task_id="t", mlflow_conn_id="mlflow_other")
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_OTHER", json.dumps({"conn_type": "mlflow", "host": "https://ml.example"}))

    assert MlflowBaseOperator(task_id="t").mlflow_conn_id == "mlflow_default"
    assert "hook" not in vars(task)  # nothing is looked up while a DAG file is parsed
    assert task.hook.mlflow_conn_id == "mlflow_other"


def test_a_step_operator_copies_its_settings_and_templates_only_the_snapshot() -> None:
    settings = {"model_name": "ride_duration.berlin"}
    task = SnapshotStepOperator(task_id="t", snapshot="file:///s", settings=settings)
    settings["model_name"] = "changed"

    assert task.settings == {"model_name": "ride_duration.berlin"}
    assert SnapshotStepOperator.template_fields == ("snapshot",)
    assert task.aws_conn_id == "aws_default"


@pytest.fixture
def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_refused_connection_names_the_server_the_action_and_the_connection(
    closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # MLflow's own retries would only slow this down
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLFLOW_DOWN", json.dumps({"conn_type": "mlflow", "host": "127.0.0.1", "port": closed_port})
    )
    hook = MlflowHook(mlflow_conn_id="mlflow_down")

    with pytest.raises(MlflowUnreachable) as info, mlflow_errors(hook, "registering model 'rides.lisbon'"):
        hook.get_conn().search_experiments()

    message = str(info.value)
    assert f"http://127.0.0.1:{closed_port}" in message
    assert "unreachable while registering model 'rides.lisbon' (connection refused)" in message
    assert "connection 'mlflow_down'" in message
    assert "Airflow retries it" in message
    assert isinstance(info.value, ConnectionError)  # callers that catch network errors still do


def test_other_errors_pass_through_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_ANY", json.dumps({"conn_type": "mlflow", "host": "mlflow", "port": 5000}))
    hook = MlflowHook(mlflow_conn_id="mlflow_any")

    with pytest.raises(ValueError, match="not a network problem"), mlflow_errors(hook, "training"):
        raise ValueError("not a network problem")
