"""The MLflow hook's credentials (token, basic auth) reach the server, per client, without os.environ.

MLflow's basic-auth server app needs Flask-WTF, which is not installed, so the server here is a small
local HTTP server that records each request's Authorization header and answers the two MLflow REST
calls used (search experiments, get a registered model) with minimal valid JSON.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from airflow_ml.hooks.mlflow import MlflowHook
from airflow_ml.hooks.mlflow_auth import authenticated_client


class _Recorder(BaseHTTPRequestHandler):
    seen: list[tuple[str, str | None]] = []

    def _answer(self) -> None:
        type(self).seen.append((self.path.split("?")[0], self.headers.get("Authorization")))
        body = b"{}"
        if "registered-models/get" in self.path:
            body = json.dumps({"registered_model": {"name": "m"}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

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
