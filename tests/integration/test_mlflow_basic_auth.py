"""The MLflow hook against a real ``mlflow server --app-name basic-auth``: credentials per client, clear refusals.

One server per module (it takes a while to start): SQLite backend and auth stores, proxied artifacts, all
in a temporary folder. Every call goes through :class:`MlflowHook` with connections given as
``AIRFLOW_CONN_*`` environment variables, the way a deployment would give them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd
import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from airflow_ml.hooks.mlflow import MlflowHook
from airflow_ml.ml.model_registry import load_version
from tests.support.services import service_missing

pytestmark = pytest.mark.integration

ADMIN, ADMIN_PASSWORD = "admin", "admin-password-0001"
BOB, BOB_PASSWORD = "bob", "bob-password-00001"
_CREDENTIAL_VARS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")
_START_TIMEOUT_S = 300  # two shared cores: the server alone can take a minute and more to start


class Doubled(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """Predicts twice the column ``x``."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        return model_input["x"] * 2


@dataclass(frozen=True)
class Server:
    uri: str
    artifacts: Path  # a folder the client writes to directly (the connection's artifact_root)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def _stop(process: subprocess.Popen[bytes]) -> None:
    # The server runs uvicorn workers as children: end the session the server was started in.
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A basic-auth MLflow server on a free loopback port, with user ``bob`` (no admin) besides the admin."""
    if importlib.util.find_spec("flask_wtf") is None:
        service_missing("MLflow's basic-auth app needs Flask-WTF; install mlflow[auth]")
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    if not mlflow_bin.exists():
        service_missing(f"no mlflow command beside {sys.executable}")
    root = tmp_path_factory.mktemp("mlflow-auth")
    # Everyone may read, nobody but the admin and a resource's creator may write.
    (root / "auth.ini").write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{root}/auth.db\n"
        f"admin_username = {ADMIN}\n"
        f"admin_password = {ADMIN_PASSWORD}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n",
        encoding="utf-8",
    )
    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k not in _CREDENTIAL_VARS and not k.startswith("MLFLOW_TRACKING")}
    env |= {"MLFLOW_AUTH_CONFIG_PATH": str(root / "auth.ini"), "MLFLOW_FLASK_SERVER_SECRET_KEY": "airflow-ml-tests"}
    log = root / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(mlflow_bin),
                "server",
                "--app-name",
                "basic-auth",
                "--backend-store-uri",
                f"sqlite:///{root}/mlflow.db",
                "--serve-artifacts",
                "--artifacts-destination",
                str(root / "proxied"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"mlflow server exited with {process.returncode} at start; its log:\n{_tail(log)}")
            try:
                if requests.get(f"{uri}/health", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server at {uri} did not answer within {_START_TIMEOUT_S}s; its log:\n{_tail(log)}")
            time.sleep(1)
        created = requests.post(
            f"{uri}/api/2.0/mlflow/users/create",
            json={"username": BOB, "password": BOB_PASSWORD},
            auth=(ADMIN, ADMIN_PASSWORD),
            timeout=30,
        )
        assert created.status_code == 200, created.text
        yield Server(uri=uri, artifacts=root / "client-artifacts")
    finally:
        _stop(process)


@pytest.fixture(autouse=True)
def _no_credentials_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*_CREDENTIAL_VARS, "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(name, raising=False)


def connect(
    monkeypatch: pytest.MonkeyPatch, server: Server, conn_id: str, login: str, password: str, *, proxied: bool = False
) -> MlflowHook:
    """A hook on connection ``conn_id`` (host and port, basic auth).

    Artifacts go straight to a folder (the connection's ``artifact_root``), or with ``proxied`` through the
    server's artifact proxy (``mlflow-artifacts:/``), which checks the credentials too.
    """
    port = server.uri.rsplit(":", 1)[1]
    conn = {
        "conn_type": "mlflow",
        "host": "127.0.0.1",
        "port": int(port),
        "login": login,
        "password": password,
        "extra": {} if proxied else {"artifact_root": f"file://{server.artifacts}"},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    return MlflowHook(mlflow_conn_id=conn_id)


def _model_with_a_version(hook: MlflowHook, name: str) -> str:
    """Create an experiment, log a run with an artifact, register it as ``name`` v1; return the version."""
    client = hook.get_conn()
    location = f"{hook.artifact_root}/{name}" if hook.artifact_root else None
    experiment_id = client.create_experiment(name, artifact_location=location)
    run = client.create_run(experiment_id)
    client.log_param(run.info.run_id, "num_leaves", "31")
    client.log_metric(run.info.run_id, "holdout_auc", 0.81)
    client.log_text(run.info.run_id, "a model", "model/MLmodel")
    client.set_terminated(run.info.run_id)
    client.create_registered_model(name)
    version = client.create_model_version(name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    return str(version.version)


def test_the_admin_logs_registers_and_sets_an_alias(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    hook = connect(monkeypatch, server, "mlflow_admin", ADMIN, ADMIN_PASSWORD)
    assert hook.tracking_uri == server.uri

    version = _model_with_a_version(hook, "auth_admin_model")
    client = hook.get_conn()
    client.set_registered_model_alias("auth_admin_model", "champion", version)

    # A public MlflowClient; its calls carry the credentials (MLflow's request-header plugin), os.environ does not.
    assert isinstance(client, MlflowClient)
    assert not any(name in os.environ for name in _CREDENTIAL_VARS)
    champion = client.get_model_version_by_alias("auth_admin_model", "champion")
    assert champion.version == version
    run = client.get_run(champion.run_id)
    assert run.data.metrics == {"holdout_auc": 0.81}
    assert run.data.params == {"num_leaves": "31"}
    assert [a.path for a in client.list_artifacts(champion.run_id, "model")] == ["model/MLmodel"]
    assert hook.test_connection() == (True, f"MLflow at {server.uri} answered")


def test_a_wrong_password_names_the_connection_the_server_and_the_fix(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = connect(monkeypatch, server, "mlflow_typo", ADMIN, "not-the-password")

    with pytest.raises(MlflowException) as refused:
        hook.get_conn().search_experiments(max_results=1)

    message = refused.value.message
    assert f"MLflow at {server.uri} refused the credentials of Airflow connection 'mlflow_typo'" in message
    assert "user 'admin'" in message
    assert "HTTP 401" in message
    assert "Fix its login and password (see `airflow connections get`)" in message
    assert "not-the-password" not in message  # never echo a secret
    assert refused.value.error_code == "UNAUTHENTICATED"  # callers that test the code still can
    ok, text = hook.test_connection()
    assert not ok
    assert "refused the credentials of Airflow connection 'mlflow_typo'" in text


def test_a_user_without_permission_cannot_move_an_alias_the_admin_can(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = connect(monkeypatch, server, "mlflow_admin", ADMIN, ADMIN_PASSWORD)
    bob = connect(monkeypatch, server, "mlflow_bob", BOB, BOB_PASSWORD)
    version = _model_with_a_version(admin, "auth_guarded_model")

    # Bob may read (default_permission READ) but not write the admin's model.
    assert bob.get_conn().get_registered_model("auth_guarded_model").name == "auth_guarded_model"
    with pytest.raises(MlflowException) as denied:
        bob.get_conn().set_registered_model_alias("auth_guarded_model", "champion", version)
    message = denied.value.message
    assert f"MLflow at {server.uri} denied user 'bob' of Airflow connection 'mlflow_bob'" in message
    assert "permission for set_registered_model_alias" in message
    assert "grant that user EDIT or MANAGE" in message
    assert denied.value.error_code == "PERMISSION_DENIED"

    admin.get_conn().set_registered_model_alias("auth_guarded_model", "champion", version)
    assert admin.get_conn().get_registered_model("auth_guarded_model").aliases == {"champion": version}


def test_two_hooks_keep_their_own_credentials_and_leave_the_environment_alone(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = connect(monkeypatch, server, "mlflow_admin", ADMIN, ADMIN_PASSWORD)
    bob = connect(monkeypatch, server, "mlflow_bob", BOB, BOB_PASSWORD)
    environment = dict(os.environ)  # with both connections in it, before any client exists
    admin_client, bob_client = admin.get_conn(), bob.get_conn()
    version = _model_with_a_version(admin, "auth_pair")

    # Interleaved: each call is judged by the identity of its own client, whatever the other did just before.
    for _ in range(2):
        admin_client.set_registered_model_alias("auth_pair", "challenger", version)
        with pytest.raises(MlflowException, match="denied user 'bob'"):
            bob_client.set_registered_model_alias("auth_pair", "challenger", version)
    # What bob creates is his (the server grants its creator MANAGE): his identity reached the server.
    bob_experiment = bob_client.create_experiment("auth_bobs_experiment")
    bob_client.set_experiment_tag(bob_experiment, "owner", "bob")
    permission = requests.get(
        f"{server.uri}/api/3.0/mlflow/users/permissions/get",
        params={"username": BOB, "resource_type": "experiment", "resource_id": bob_experiment},
        auth=(ADMIN, ADMIN_PASSWORD),
        timeout=30,
    )
    assert permission.status_code == 200, permission.text
    assert permission.json()["permission"] == "MANAGE"

    assert dict(os.environ) == environment
    assert not any(name in os.environ for name in _CREDENTIAL_VARS)


def test_artifacts_through_the_servers_proxy_carry_the_connections_credentials(
    server: Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    hook = connect(monkeypatch, server, "mlflow_proxied", ADMIN, ADMIN_PASSWORD, proxied=True)
    version = _model_with_a_version(hook, "auth_proxied_model")
    client = hook.get_conn()
    model = client.get_model_version("auth_proxied_model", version)
    assert client.get_run(model.run_id).info.artifact_uri.startswith("mlflow-artifacts:/")
    folder = tmp_path / "lineage"
    (folder / "deep").mkdir(parents=True)
    (folder / "manifest.json").write_text('{"rows": 3}', encoding="utf-8")
    (folder / "deep" / "holdout.csv").write_text("y,p\n1,0.9\n", encoding="utf-8")

    for name in ("down", "bob", "typo"):
        (tmp_path / name).mkdir()

    client.log_artifacts(model.run_id, str(folder), "lineage")

    assert [(a.path, a.is_dir) for a in client.list_artifacts(model.run_id, "lineage")] == [
        ("lineage/deep", True),
        ("lineage/manifest.json", False),
    ]
    assert client.list_artifacts(model.run_id, "lineage/manifest.json") == []
    local = Path(client.download_artifacts(model.run_id, "lineage", str(tmp_path / "down")))
    assert (local / "deep" / "holdout.csv").read_text(encoding="utf-8") == "y,p\n1,0.9\n"
    assert (
        Path(client.download_artifacts(model.run_id, "model/MLmodel", str(tmp_path / "down"))).read_text() == "a model"
    )
    # Bob may read the admin's run, so he may download its artifacts: his own credentials reach the proxy.
    bob = connect(monkeypatch, server, "mlflow_bob_proxied", BOB, BOB_PASSWORD, proxied=True).get_conn()
    assert Path(bob.download_artifacts(model.run_id, "model/MLmodel", str(tmp_path / "bob"))).read_text() == "a model"
    # A model loads from a folder downloaded through the proxy with bob's credentials (as the health check does).
    saved = tmp_path / "saved"
    mlflow.pyfunc.save_model(path=str(saved), python_model=Doubled(), pip_requirements=["mlflow"])
    client.log_artifacts(model.run_id, str(saved), "model")  # the version's model folder, now a real model
    loaded = load_version(bob, model)
    assert loaded.predict(pd.DataFrame({"x": [1.0, 2.5]})).tolist() == [2.0, 5.0]
    typo = connect(monkeypatch, server, "mlflow_proxied_typo", BOB, "not-the-password", proxied=True).get_conn()
    with pytest.raises(MlflowException, match="refused the credentials of Airflow connection 'mlflow_proxied_typo'"):
        typo.download_artifacts(model.run_id, "model/MLmodel", str(tmp_path / "typo"))
