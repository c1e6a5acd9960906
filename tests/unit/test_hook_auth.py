"""The MLflow hook's credentials (token, basic auth) reach the server, per client, without os.environ.

A fast stand-in for a server: a small local HTTP server that records each request's Authorization header,
answers the MLflow REST calls used with minimal valid JSON, and refuses what a basic-auth server would
(401 for user 'mallory', 403 when 'bob' moves an alias). tests/integration/test_mlflow_basic_auth.py runs
the same hook against a real ``mlflow server --app-name basic-auth``.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from mlflow.exceptions import MlflowException

from airflow_ml.hooks.mlflow import MlflowHook
from airflow_ml.hooks.mlflow_auth import authenticated_client


class _Recorder(BaseHTTPRequestHandler):
    seen: list[tuple[str, str | None]] = []

    def _answer(self) -> None:
        auth = self.headers.get("Authorization")
        type(self).seen.append((self.path.split("?")[0], auth))
        if auth == _basic("mallory", "guess"):
            return self._refuse(401, b"You are not authenticated.")
        if auth == _basic("bob", "bobs-secret") and "registered-models/alias" in self.path:
            return self._refuse(403, b"Permission denied")
        body = b"{}"
        if "registered-models/get" in self.path:
            body = json.dumps({"registered_model": {"name": "m"}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _refuse(self, status: int, text: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:  # keep the test output quiet
        pass


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, list[tuple[str, str | None]]]]:
    for name in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    _Recorder.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", _Recorder.seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_two_hooks_with_different_credentials_do_not_interfere(server, monkeypatch: pytest.MonkeyPatch) -> None:
    uri, seen = server
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLFLOW_TOKEN",
        json.dumps({"conn_type": "mlflow", "extra": {"tracking_uri": uri, "token": "secret-token"}}),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLFLOW_BASIC",
        json.dumps({"conn_type": "mlflow", "login": "alice", "password": "p@ss", "extra": {"tracking_uri": uri}}),
    )
    before = dict(os.environ)

    token_client = MlflowHook("mlflow_token").get_conn()
    basic_client = MlflowHook("mlflow_basic").get_conn()
    token_client.search_experiments(max_results=1)
    basic_client.search_experiments(max_results=1)
    token_client.get_registered_model("m")
    basic_client.get_registered_model("m")

    assert [auth for _, auth in seen] == [
        "Bearer secret-token",
        _basic("alice", "p@ss"),
        "Bearer secret-token",
        _basic("alice", "p@ss"),
    ]
    assert [path for path, _ in seen][2].endswith("/registered-models/get")
    assert dict(os.environ) == before


def test_no_credentials_send_no_header(server, monkeypatch: pytest.MonkeyPatch) -> None:
    uri, seen = server
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_OPEN", json.dumps({"conn_type": "mlflow", "extra": {"tracking_uri": uri}}))

    MlflowHook("mlflow_open").get_conn().search_experiments(max_results=1)

    assert seen == [("/api/2.0/mlflow/experiments/search", None)]


def test_a_token_wins_over_basic_auth(server) -> None:
    uri, seen = server

    authenticated_client(uri, uri, token="t", username="u", password="p").search_experiments(max_results=1)

    assert seen[0][1] == "Bearer t"


def test_a_login_without_password_is_an_error() -> None:
    with pytest.raises(ValueError, match="login without a password"):
        authenticated_client("http://127.0.0.1:1", "http://127.0.0.1:1", username="alice")


def test_refused_credentials_name_the_connection_the_server_and_the_fix(
    server, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri, _ = server
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLFLOW_MALLORY",
        json.dumps({"conn_type": "mlflow", "login": "mallory", "password": "guess", "extra": {"tracking_uri": uri}}),
    )

    with pytest.raises(MlflowException) as refused:
        MlflowHook("mlflow_mallory").get_conn().search_experiments(max_results=1)

    assert refused.value.message == (
        f"MLflow at {uri} refused the credentials of Airflow connection 'mlflow_mallory' (user 'mallory') with "
        "HTTP 401 on SearchExperiments: You are not authenticated. Fix its login and password (see `airflow "
        "connections get`), or ask the MLflow admin to reset the password (MLflow's update-password API)"
    )
    assert refused.value.error_code == "UNAUTHENTICATED"


def test_a_denied_call_names_the_user_and_the_permission_to_grant(server) -> None:
    uri, _ = server
    client = authenticated_client(uri, uri, username="bob", password="bobs-secret", source="connection 'b'")

    with pytest.raises(MlflowException) as denied:
        client.set_registered_model_alias("m", "champion", "1")

    assert denied.value.message.startswith(
        f"MLflow at {uri} denied user 'bob' of connection 'b' permission for SetRegisteredModelAlias (HTTP 403: "
        "Permission denied). Ask the MLflow admin to grant that user EDIT or MANAGE"
    )
    assert denied.value.error_code == "PERMISSION_DENIED"
