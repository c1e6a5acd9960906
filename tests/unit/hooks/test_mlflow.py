"""Unit tests of the MLflow hook (airflow_ml.hooks.mlflow) and of the provider metadata."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
from pathlib import Path

import pytest

from airflow_ml.get_provider_info import get_provider_info
from airflow_ml.hooks.mlflow import MlflowHook


def set_conn(monkeypatch: pytest.MonkeyPatch, conn_id: str, conn: dict) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


@pytest.fixture(autouse=True)
def _no_global_mlflow_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)


def test_uris_come_from_the_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = {
        "tracking_uri": "http://tracking.example:5000",
        "registry_uri": "http://registry.example:5001",
        "artifact_root": "s3://bucket/mlflow",
    }
    set_conn(monkeypatch, "mlflow_default", {"conn_type": "mlflow", "host": "ignored", "extra": extra})

    hook = MlflowHook()

    assert hook.tracking_uri == extra["tracking_uri"]
    assert hook.registry_uri == extra["registry_uri"]
    assert hook.artifact_root == extra["artifact_root"]


def test_registry_defaults_to_tracking(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(monkeypatch, "mlflow_other", {"conn_type": "mlflow", "extra": {"tracking_uri": "sqlite:///x.db"}})

    hook = MlflowHook(mlflow_conn_id="mlflow_other")

    assert hook.registry_uri == hook.tracking_uri == "sqlite:///x.db"
    assert hook.artifact_root is None


def test_host_and_port_build_an_http_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(monkeypatch, "mlflow_default", {"conn_type": "mlflow", "host": "mlflow", "port": 5000})

    hook = MlflowHook()

    assert hook.tracking_uri == "http://mlflow:5000"
    assert hook.registry_uri == "http://mlflow:5000"


def test_schema_is_the_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(monkeypatch, "mlflow_default", {"conn_type": "mlflow", "host": "mlflow.example", "schema": "https"})

    assert MlflowHook().tracking_uri == "https://mlflow.example"


def test_neither_uri_nor_host_names_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(monkeypatch, "mlflow_empty", {"conn_type": "mlflow"})

    with pytest.raises(ValueError, match="'mlflow_empty'"):
        _ = MlflowHook(mlflow_conn_id="mlflow_empty").tracking_uri


def test_get_conn_is_bound_to_the_connection_and_leaves_the_environment_alone(
    mlflow_store: dict[str, str],
) -> None:
    import mlflow
    from mlflow import MlflowClient

    before = dict(os.environ)
    global_uri = mlflow.get_tracking_uri()

    client = MlflowHook().get_conn()

    assert isinstance(client, MlflowClient)
    assert client.tracking_uri == mlflow_store["tracking_uri"]
    assert client._registry_uri == mlflow_store["tracking_uri"]
    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert "MLFLOW_REGISTRY_URI" not in os.environ
    assert dict(os.environ) == before
    # nor MLflow's process-wide tracking URI
    assert mlflow.get_tracking_uri() == global_uri
    assert mlflow.get_tracking_uri() != mlflow_store["tracking_uri"]


def test_two_hooks_keep_their_own_stores(monkeypatch: pytest.MonkeyPatch) -> None:
    # http stores are built lazily: no server is contacted here
    set_conn(monkeypatch, "mlflow_a", {"conn_type": "mlflow", "host": "a.example", "port": 5000})
    set_conn(monkeypatch, "mlflow_b", {"conn_type": "mlflow", "extra": {"tracking_uri": "http://b.example:5001"}})

    a = MlflowHook(mlflow_conn_id="mlflow_a").get_conn()
    b = MlflowHook(mlflow_conn_id="mlflow_b").get_conn()

    assert a.tracking_uri == "http://a.example:5000"
    assert b.tracking_uri == "http://b.example:5001"


def test_test_connection_against_a_real_sqlite_store(mlflow_store: dict[str, str]) -> None:
    ok, message = MlflowHook().test_connection()

    assert ok is True, message
    assert mlflow_store["tracking_uri"] in message
    assert Path(mlflow_store["tracking_uri"].removeprefix("sqlite:///")).is_file()


def test_test_connection_reports_a_failure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # a tracking URI with an unknown scheme fails fast, without network
    set_conn(monkeypatch, "mlflow_default", {"conn_type": "mlflow", "extra": {"tracking_uri": "nosuchscheme://x"}})

    ok, message = MlflowHook().test_connection()

    assert ok is False
    assert "nosuchscheme://x" in message


def test_hook_class_attributes_match_the_provider_info() -> None:
    conn_type = next(t for t in get_provider_info()["connection-types"] if t["connection-type"] == "mlflow")

    assert conn_type["connection-type"] == MlflowHook.conn_type == "mlflow"
    module, _, name = conn_type["hook-class-name"].rpartition(".")
    assert getattr(importlib.import_module(module), name) is MlflowHook
    assert MlflowHook.default_conn_name == "mlflow_default"
    assert set(conn_type["conn-fields"]) == {"tracking_uri", "registry_uri", "artifact_root", "token"}
    # The token is a secret: Airflow masks conn-fields whose schema has format "password".
    assert conn_type["conn-fields"]["token"]["schema"]["format"] == "password"
    assert "password" not in conn_type["ui-field-behaviour"]["hidden-fields"]


def test_every_listed_module_and_link_imports() -> None:
    info = get_provider_info()
    modules = [m for group in ("hooks", "operators") for entry in info[group] for m in entry["python-modules"]]

    assert modules
    for module in modules:
        importlib.import_module(module)
    from airflow.sdk import BaseOperatorLink

    for dotted in info["extra-links"]:
        module, _, name = dotted.rpartition(".")
        link = getattr(importlib.import_module(module), name)
        assert issubclass(link, BaseOperatorLink)
        assert link().name


def test_provider_info_names_the_package() -> None:
    info = get_provider_info()

    assert info["package-name"] == "airflow-ml"
    assert info["versions"] == [importlib.metadata.version("airflow-ml")]


def test_entry_point_points_at_get_provider_info() -> None:
    dist = importlib.metadata.distribution("airflow-ml")
    (entry_point,) = [ep for ep in dist.entry_points if ep.group == "apache_airflow_provider"]

    assert entry_point.value == "airflow_ml.get_provider_info:get_provider_info"
    assert entry_point.load() is get_provider_info
