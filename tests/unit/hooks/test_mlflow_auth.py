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
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from mlflow.exceptions import MlflowException

from airflow_ml.hooks.mlflow import MlflowHook
from airflow_ml.hooks.mlflow_auth import authenticated_client
from tests.support import REPO

# The run "r1" keeps its artifacts behind the server's proxy (mlflow-artifacts:/), as `mlflow server
# --serve-artifacts` does; the proxy refuses a request without credentials, and carol may not download.
_ROOT = "0/r1/artifacts"
_ARTIFACTS = {"model/MLmodel": b"flavors: {}\n", "model/data/weights.bin": b"\x00\x01\x02"}
_PROXY = "/api/2.0/mlflow-artifacts/artifacts"
_MLFLOW_CREDENTIALS = ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")


class _Recorder(BaseHTTPRequestHandler):
    seen: list[tuple[str, str | None]] = []
    names: list[tuple[str, str | None]] = []  # the model name each registered-models/get asked for, and by whom

    def _answer(self) -> None:
        auth = self.headers.get("Authorization")
        path, _, query = self.path.partition("?")
        type(self).seen.append((path, auth))
        if auth == _basic("mallory", "guess"):
            return self._refuse(401, b"You are not authenticated.")
        if auth == _basic("bob", "bobs-secret") and "registered-models/alias" in self.path:
            return self._refuse(403, b"Permission denied")
        if path.startswith(_PROXY):
            return self._artifact(path, parse_qs(query), auth)
        body = b"{}"
        if "registered-models/get" in path:
            name = parse_qs(query)["name"][0]
            type(self).names.append((name, auth))
            body = json.dumps({"registered_model": {"name": name}}).encode()
        elif path.endswith("/runs/get"):
            info = {"run_id": "r1", "experiment_id": "0", "artifact_uri": f"mlflow-artifacts:/{_ROOT}"}
            body = json.dumps({"run": {"info": info, "data": {}}}).encode()
        self._send(200, body, "application/json")

    def _artifact(self, path: str, query: dict[str, list[str]], auth: str | None) -> None:
        if auth is None:
            return self._refuse(401, b"You are not authenticated.")
        if self.command == "PUT":  # an upload: read it, keep nothing
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            return self._send(200, b"{}", "application/json")
        if path == _PROXY:  # list a folder: its children's base names
            folder = query["path"][0].removeprefix(_ROOT).strip("/")
            children = {
                name[len(folder) + 1 :].split("/")[0]: "/" in name[len(folder) + 1 :]
                for name in _ARTIFACTS
                if name.startswith(f"{folder}/")
            }
            files = [{"path": child, "is_dir": is_dir} for child, is_dir in sorted(children.items())]
            return self._send(200, json.dumps({"files": files}).encode(), "application/json")
        if auth == _basic("carol", "carols-secret"):
            return self._refuse(403, b"Permission denied")
        content = _ARTIFACTS.get(path.removeprefix(f"{_PROXY}/{_ROOT}/"))
        if content is None:
            return self._refuse(404, b"no such artifact")
        return self._send(200, content, "application/octet-stream")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _refuse(self, status: int, text: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args: object) -> None:  # keep the test output quiet
        pass


@pytest.fixture
def server(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, list[tuple[str, str | None]]]]:
    for name in (*_MLFLOW_CREDENTIALS, "MLFLOW_TRACKING_AUTH", "MLFLOW_TRACKING_AWS_SIGV4"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))  # no ~/.mlflow/credentials of the machine's
    _Recorder.seen = []
    _Recorder.names = []
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
        "HTTP 401 on search_experiments: You are not authenticated. Fix its login and password (see `airflow "
        "connections get`), or ask the MLflow admin to reset the password (MLflow's update-password API)"
    )
    assert refused.value.error_code == "UNAUTHENTICATED"


def test_a_denied_call_names_the_user_and_the_permission_to_grant(server) -> None:
    uri, _ = server
    client = authenticated_client(uri, uri, username="bob", password="bobs-secret", source="connection 'b'")

    with pytest.raises(MlflowException) as denied:
        client.set_registered_model_alias("m", "champion", "1")

    assert denied.value.message.startswith(
        f"MLflow at {uri} denied user 'bob' of connection 'b' permission for set_registered_model_alias (HTTP 403: "
        "Permission denied). Ask the MLflow admin to grant that user EDIT or MANAGE"
    )
    assert denied.value.error_code == "PERMISSION_DENIED"


def test_two_clients_in_two_threads_each_send_their_own_credentials(server) -> None:
    uri, _ = server
    clients = {
        "alice": authenticated_client(uri, uri, username="alice", password="p@ss"),
        "token": authenticated_client(uri, uri, token="secret-token"),
    }
    start = threading.Barrier(2)

    def ask(who: str) -> None:
        start.wait()
        for _ in range(15):
            clients[who].get_registered_model(who)

    threads = [threading.Thread(target=ask, args=(who,)) for who in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    expected = {"alice": _basic("alice", "p@ss"), "token": "Bearer secret-token"}
    assert len(_Recorder.names) == 30
    assert {(name, auth) for name, auth in _Recorder.names} == set(expected.items())


def test_a_plain_client_beside_an_authenticated_one_sends_nothing(server) -> None:
    from mlflow import MlflowClient

    uri, seen = server
    authenticated = authenticated_client(uri, uri, username="alice", password="p@ss")
    plain = MlflowClient(tracking_uri=uri, registry_uri=uri)

    authenticated.get_registered_model("m")
    plain.get_registered_model("m")
    authenticated.search_experiments(max_results=1)
    plain.search_experiments(max_results=1)

    assert [auth for _, auth in seen] == [_basic("alice", "p@ss"), None, _basic("alice", "p@ss"), None]


def test_proxied_artifacts_carry_the_connections_credentials(server, tmp_path: Path) -> None:
    uri, seen = server
    client = authenticated_client(uri, uri, username="alice", password="p@ss", source="connection 'a'")
    (tmp_path / "up").mkdir()
    (tmp_path / "up" / "report.json").write_text("{}", encoding="utf-8")

    client.log_artifacts("r1", str(tmp_path / "up"), "lineage")
    listed = [(f.path, f.is_dir) for f in client.list_artifacts("r1", "model")]
    local = Path(client.download_artifacts("r1", "model", str(tmp_path / "down")))
    single = Path(client.download_artifacts("r1", "model/MLmodel", str(tmp_path / "one")))

    assert listed == [("model/MLmodel", False), ("model/data", True)]
    assert local == tmp_path / "down" / "model"
    assert (local / "MLmodel").read_bytes() == _ARTIFACTS["model/MLmodel"]
    assert (local / "data" / "weights.bin").read_bytes() == _ARTIFACTS["model/data/weights.bin"]
    assert single.read_bytes() == _ARTIFACTS["model/MLmodel"]
    proxied = [(path, auth) for path, auth in seen if path.startswith(_PROXY)]
    assert (f"{_PROXY}/{_ROOT}/lineage/report.json", _basic("alice", "p@ss")) in proxied
    assert (f"{_PROXY}/{_ROOT}/model/data/weights.bin", _basic("alice", "p@ss")) in proxied
    assert {auth for _, auth in proxied} == {_basic("alice", "p@ss")}


def test_a_refused_proxied_download_names_the_user_and_the_call(server, tmp_path: Path) -> None:
    uri, _ = server
    client = authenticated_client(uri, uri, username="carol", password="carols-secret", source="connection 'c'")

    with pytest.raises(MlflowException) as denied:
        client.download_artifacts("r1", "model/MLmodel", str(tmp_path))

    assert denied.value.message.startswith(
        f"MLflow at {uri} denied user 'carol' of connection 'c' permission for download_artifacts (HTTP 403: "
        "Permission denied). Ask the MLflow admin"
    )
    assert not (tmp_path / "model" / "MLmodel").exists()


@pytest.mark.parametrize("variable", [*_MLFLOW_CREDENTIALS, "MLFLOW_TRACKING_AUTH"])
def test_mlflows_own_credentials_beside_a_connections_are_refused(
    server, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    uri, seen = server
    client = authenticated_client(uri, uri, username="alice", password="p@ss", source="Airflow connection 'a'")
    monkeypatch.setenv(variable, "from-the-environment")

    # MLflow would send the environment's credentials in place of the connection's: refused, nothing sent.
    with pytest.raises(ValueError, match=f"Airflow connection 'a' has credentials, but .*{variable}.* unset them"):
        client.search_experiments(max_results=1)
    with pytest.raises(ValueError, match=variable):
        authenticated_client(uri, uri, username="alice", password="p@ss")
    assert seen == []


def test_mlflows_credentials_file_beside_a_connections_is_refused(server) -> None:
    uri, _ = server
    credentials = Path.home() / ".mlflow" / "credentials"
    credentials.parent.mkdir()
    credentials.write_text("[mlflow]\nmlflow_tracking_username = admin\nmlflow_tracking_password = x\n")

    with pytest.raises(ValueError, match=r"\.mlflow/credentials"):
        authenticated_client(uri, uri, token="t")


def test_logging_is_synchronous_so_the_credentials_go_with_it(server, monkeypatch: pytest.MonkeyPatch) -> None:
    uri, seen = server
    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_LOGGING", "true")  # MLflow would log from a thread of its own
    client = authenticated_client(uri, uri, username="alice", password="p@ss", source="connection 'a'")

    assert client.log_metric("r1", "auc", 0.8) is None  # no future: logged now, in this thread
    with pytest.raises(ValueError, match="log_param\\(synchronous=False\\) of connection 'a'"):
        client.log_param("r1", "depth", 3, synchronous=False)

    assert seen == [("/api/2.0/mlflow/runs/log-metric", _basic("alice", "p@ss"))]


def test_an_authenticated_client_is_an_mlflow_client_that_hides_its_secret(server) -> None:
    from mlflow import MlflowClient

    uri, _ = server
    client = authenticated_client(uri, uri, username="alice", password="p@ss")

    assert isinstance(client, MlflowClient)
    assert client.tracking_uri == uri
    assert "p@ss" not in repr(vars(client))


def test_the_header_provider_is_declared_as_an_mlflow_plugin() -> None:
    import tomllib

    from mlflow.tracking.request_header.abstract_request_header_provider import RequestHeaderProvider

    from airflow_ml.hooks.mlflow_headers import ConnectionHeaderProvider

    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    declared = pyproject["project"]["entry-points"]["mlflow.request_header_provider"]

    assert declared == {"airflow_ml": "airflow_ml.hooks.mlflow_headers:ConnectionHeaderProvider"}
    assert issubclass(ConnectionHeaderProvider, RequestHeaderProvider)


def test_mlflow_sends_the_header_only_inside_a_call_and_only_once() -> None:
    from mlflow.tracking.request_header.registry import resolve_request_headers

    from airflow_ml.hooks.mlflow_auth import ConnectionIdentity
    from airflow_ml.hooks.mlflow_headers import ConnectionHeaderProvider

    identity = ConnectionIdentity("connection 'a'", "http://mlflow:5000", "http://mlflow:5000", token="t")
    second_copy = ConnectionHeaderProvider()  # as if the package were installed twice

    with identity.active("a call"):
        inside = resolve_request_headers()
        assert not second_copy.in_context()
    outside = resolve_request_headers()

    assert inside["Authorization"] == "Bearer t"  # one value: MLflow joins the values of several providers
    assert "Authorization" not in outside
