"""An ``MlflowClient`` whose requests carry one connection's credentials, through MLflow's public plugin API.

**How.** MLflow reads ``MLFLOW_TRACKING_TOKEN`` / ``_USERNAME`` / ``_PASSWORD`` from the process environment,
so one process could only hold one identity that way. Instead, :func:`authenticated_client` returns a
:class:`ConnectionClient`: a subclass of the public ``mlflow.MlflowClient`` whose every public method runs
inside its connection's identity (a :class:`contextvars.ContextVar`, set for the call and reset after it).
MLflow asks its registered request-header providers for headers before each REST request; ours
(:class:`airflow_ml.hooks.mlflow_headers.ConnectionHeaderProvider`, entry point group
``mlflow.request_header_provider``) answers with the active identity's ``Authorization`` header, and with
nothing outside such a call. Two clients with different credentials therefore work side by side in one
process (threads and asyncio tasks included, each has its own context), nothing is written to
``os.environ``, and a plain ``MlflowClient`` never sends anyone's credentials. Artifacts follow: logging and
listing run in the calling thread; downloads of artifacts the server proxies (``mlflow-artifacts:/``) are
fetched by :mod:`airflow_ml.hooks.mlflow_proxy_download`, because MLflow downloads in worker threads that do
not inherit the context.

**Why this design.** It uses only MLflow's documented extension points (the request-header plugin, subclassing
``MlflowClient``, the artifact service's REST API) and no private attribute or class; the alternatives were
MLflow's ``MLFLOW_TRACKING_AUTH`` auth-provider plugin (chosen by an environment variable, so one identity
per process) or a tracking-store plugin per URI scheme (a store class of MLflow's internals to subclass).

**What an MLflow release could still break** (``tests/integration/test_mlflow_basic_auth.py``, against a
real ``mlflow server --app-name basic-auth``, fails on each):

- MLflow sending a REST request from another thread than the caller's, as it does today for parallel
  downloads (handled above) and asynchronous logging (refused: ``synchronous=False`` is an error, ``None``
  means True). Such a request would go without credentials and be refused, with the clear error below.
- MLflow no longer asking request-header providers, or applying their headers differently. Today its own
  credentials (``MLFLOW_TRACKING_*``, ``~/.mlflow/credentials``) replace the header, so they are refused beside
  a connection's; :func:`authenticated_client` checks through MLflow's ``resolve_request_headers`` that the
  header is sent, and names the fix when the entry point is not installed.
- The artifact service's REST API (``/api/2.0/mlflow-artifacts/artifacts``, version 2.0) changing. Those
  downloads do not send MLflow's workspace header (``MLFLOW_WORKSPACE``), which is not tested.

Only the client's public methods carry the identity; ``mlflow.*`` fluent calls and other clients never do.

A request the server refuses (HTTP 401: wrong credentials, 403: no permission) raises an
``MlflowException`` that names the connection, the server, the user and the fix, instead of MLflow's bare
"failed with error code 401".
"""

from __future__ import annotations

import base64
import configparser
import contextlib
import functools
import inspect
import os
import types
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import ErrorCode

from airflow_ml.hooks.mlflow_headers import ACTIVE_HEADERS
from airflow_ml.hooks.mlflow_proxy_download import download, proxied_root

_HTTP_ERRORS = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED"}
# MLflow's own credentials; MLflow applies them after the providers' headers, so they would win.
_MLFLOW_CREDENTIAL_VARIABLES = (
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_AUTH",
)


def authenticated_client(
    tracking_uri: str,
    registry_uri: str,
    *,
    token: str | None = None,
    username: str | None = None,
    password: str | None = None,
    source: str = "the MLflow connection",
) -> MlflowClient:
    """A client of ``tracking_uri`` / ``registry_uri``; requests to HTTP(S) servers send the credentials given.

    A token (``Authorization: Bearer``) wins over a username and password. Without credentials, or when
    neither URI is an HTTP(S) server (a database, a folder), a plain ``MlflowClient`` is returned.

    Args:
        tracking_uri: The tracking server or store.
        registry_uri: The model registry (usually the tracking URI).
        token: A bearer token.
        username: The basic-auth login.
        password: The basic-auth password.
        source: Where the credentials come from, for error messages (``"Airflow connection 'mlflow_default'"``).

    Raises:
        ValueError: when only one of username and password is given, or MLflow's own credentials are set
            in the environment too.
        RuntimeError: when MLflow would not send the credentials (the header provider is not installed).
    """
    if bool(username) != bool(password):
        raise ValueError(
            f"{source} has a login without a password or a password without a login; "
            "set both for basic auth, or neither"
        )
    if not (token or username) or not (_is_http(tracking_uri) or _is_http(registry_uri)):
        return MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)
    identity = ConnectionIdentity(source, tracking_uri, registry_uri, token=token, username=username, password=password)
    identity.check_environment()
    identity.check_registered()
    return ConnectionClient(tracking_uri, registry_uri, identity)


class ConnectionIdentity:
    """One connection's credentials for its server, and the clear errors when the server refuses them."""

    def __init__(
        self,
        source: str,
        tracking_uri: str,
        registry_uri: str,
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.source = source
        self.server = tracking_uri if registry_uri == tracking_uri else f"{tracking_uri} (registry {registry_uri})"
        self.uses_token = bool(token)
        self.who = "a bearer token" if token else f"user {username!r}"
        if token:
            authorization = f"Bearer {token}"
        else:
            authorization = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self.headers: Mapping[str, str] = types.MappingProxyType({"Authorization": authorization})

    def __repr__(self) -> str:  # never the secret
        return f"ConnectionIdentity({self.source!r}, {self.who})"

    @contextlib.contextmanager
    def active(self, call: str) -> Iterator[None]:
        """Run ``call`` with this identity's header; a refusal of the outermost call gets a clearer error."""
        self.check_environment()
        outermost = ACTIVE_HEADERS.get() is None
        reset = ACTIVE_HEADERS.set(self.headers)
        try:
            yield
        except Exception as exc:
            clearer = self.explain(exc, call) if outermost else None
            if clearer is None:
                raise
            raise clearer from exc
        finally:
            ACTIVE_HEADERS.reset(reset)

    def check_environment(self) -> None:
        """Refuse MLflow's own credentials beside the connection's: MLflow would send its own instead."""
        found = [name for name in _MLFLOW_CREDENTIAL_VARIABLES if os.environ.get(name)]
        if os.environ.get("MLFLOW_TRACKING_AWS_SIGV4", "").lower() in ("true", "1"):
            found.append("MLFLOW_TRACKING_AWS_SIGV4")
        credentials_file = Path.home() / ".mlflow" / "credentials"
        if credentials_file.is_file():
            parser = configparser.ConfigParser()
            parser.read(credentials_file, encoding="utf-8")
            if parser.has_option("mlflow", "mlflow_tracking_username"):
                found.append(str(credentials_file))
        if found:
            raise ValueError(
                f"{self.source} has credentials, but MLflow's own credentials are set too ({', '.join(found)}) "
                "and MLflow would send those instead; unset them: the connection's credentials reach MLflow "
                "and its artifact proxy without them"
            )

    def check_registered(self) -> None:
        """Make sure MLflow sends this identity's header, through its public ``resolve_request_headers``."""
        from mlflow.tracking.request_header.registry import resolve_request_headers

        reset = ACTIVE_HEADERS.set(self.headers)
        try:
            sent = resolve_request_headers().get("Authorization")
        finally:
            ACTIVE_HEADERS.reset(reset)
        if sent != self.headers["Authorization"]:
            problem = (
                "airflow-ml's request header provider is not registered with MLflow"
                if sent is None
                else "another MLflow request header provider sets Authorization too"
            )
            raise RuntimeError(
                f"MLflow would not send the credentials of {self.source}: {problem}. airflow-ml registers "
                "airflow_ml.hooks.mlflow_headers:ConnectionHeaderProvider in the entry point group "
                "'mlflow.request_header_provider'; reinstall airflow-ml (pip install, or uv sync) so that its "
                "metadata has it, and remove other Authorization header plugins"
            )

    def explain(self, exc: Exception, call: str) -> Exception | None:
        """A clearer error for a refused request, or None when ``exc`` is no refusal."""
        response = getattr(exc, "response", None)  # requests.HTTPError of the artifact proxy
        code = getattr(exc, "error_code", None) or _HTTP_ERRORS.get(getattr(response, "status_code", 0))
        said = getattr(exc, "message", None) or str(exc)
        said = said.split("Response body: ", 1)[-1].split("Response text: ", 1)[-1].strip().strip("'.")[:300]
        if code == "UNAUTHENTICATED":
            fix = "the connection's extra 'token'" if self.uses_token else "its login and password"
            message = (
                f"MLflow at {self.server} refused the credentials of {self.source} ({self.who}) with HTTP 401 on "
                f"{call}: {said}. Fix {fix} (see `airflow connections get`), or ask the MLflow admin to reset "
                "the password (MLflow's update-password API)"
            )
        elif code == "PERMISSION_DENIED":
            message = (
                f"MLflow at {self.server} denied {self.who} of {self.source} permission for {call} (HTTP 403: "
                f"{said}). Ask the MLflow admin to grant that user EDIT or MANAGE on the experiment or registered "
                "model (MLflow's auth API: /api/3.0/mlflow/users/permissions/grant), or use a connection whose "
                "user has it"
            )
        else:
            return None
        return MlflowException(message, error_code=ErrorCode.Value(code))


class ConnectionClient(MlflowClient):
    """An ``MlflowClient`` whose public methods run with one connection's identity.

    Args:
        tracking_uri: The tracking server.
        registry_uri: The model registry.
        identity: The connection's credentials.
    """

    def __init__(self, tracking_uri: str, registry_uri: str, identity: ConnectionIdentity) -> None:
        super().__init__(tracking_uri=tracking_uri, registry_uri=registry_uri)
        self.connection_identity = identity

    def download_artifacts(self, run_id: str, path: str, dst_path: str | None = None) -> str:
        """Like ``MlflowClient.download_artifacts``; artifacts the server proxies are fetched in this thread."""
        from mlflow.tracking.request_header.registry import resolve_request_headers

        with self.connection_identity.active("download_artifacts"):
            proxy = proxied_root(self.get_run(run_id).info.artifact_uri, self.tracking_uri)
            if proxy is None:  # a bucket or a folder: MLflow's own download, which needs no MLflow credentials
                return str(super().download_artifacts(run_id, path, dst_path))
            return download(proxy, path, dst_path, resolve_request_headers())


def _with_identity(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` of MlflowClient, run inside the client's identity (and always synchronously)."""
    signature = inspect.signature(method)
    takes_synchronous = "synchronous" in signature.parameters

    @functools.wraps(method)
    def call(self: ConnectionClient, *args: Any, **kwargs: Any) -> Any:
        if takes_synchronous:
            bound = signature.bind(self, *args, **kwargs)
            if bound.arguments.get("synchronous") is False:
                raise ValueError(
                    f"{name}(synchronous=False) of {self.connection_identity.source} would send its request from "
                    "MLflow's background thread, without the connection's credentials; log synchronously"
                )
            bound.arguments["synchronous"] = True
            args, kwargs = bound.args[1:], bound.kwargs
        with self.connection_identity.active(name):
            return method(self, *args, **kwargs)

    return call


for _name in dir(MlflowClient):
    _member = inspect.getattr_static(MlflowClient, _name)
    if not _name.startswith("_") and _name not in vars(ConnectionClient) and isinstance(_member, types.FunctionType):
        setattr(ConnectionClient, _name, _with_identity(_name, _member))


def _is_http(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))
