"""An ``MlflowClient`` whose REST calls carry its own credentials, without touching ``os.environ``.

MLflow's REST stores read ``MLFLOW_TRACKING_TOKEN`` / ``_USERNAME`` / ``_PASSWORD`` from the process
environment each time they build a request, so one process can only hold one identity that way. A
``RestStore`` takes a ``get_host_creds`` callable instead; this module gives the client tracking and
registry stores built with a callable that returns the connection's credentials, so two clients with
different credentials work side by side.

Artifacts follow the same rule: the client's artifact calls (log, list, download) resolve the run through
its own store, and artifacts proxied by the server (``mlflow-artifacts:/``) go through an HTTP artifact
repository that sends the client's credentials. MLflow's own ``list_artifacts``/``download_artifacts``
resolve ``runs:/`` URIs through a store built from the environment, and it caches artifact repositories per
run for the whole process; both are bypassed here so that no identity leaks from one client to another.
Multipart uploads through the proxy are not used (MLflow sends those with the environment's credentials).

A request the server refuses (HTTP 401: wrong credentials, 403: no permission) raises an
``MlflowException`` that names the connection, the server, the user and the fix, instead of MLflow's bare
"failed with error code 401".
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow import MlflowClient

_HTTP_ERRORS = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED"}


def authenticated_client(
    tracking_uri: str,
    registry_uri: str,
    *,
    token: str | None = None,
    username: str | None = None,
    password: str | None = None,
    source: str = "the MLflow connection",
) -> MlflowClient:
    """A client of ``tracking_uri`` / ``registry_uri``; HTTP(S) stores send the token or basic auth given.

    A token (``Authorization: Bearer``) wins over a username and password. Other URIs (a database, a
    folder) take no credentials and get a plain client.

    Args:
        tracking_uri: The tracking server or store.
        registry_uri: The model registry (usually the tracking URI).
        token: A bearer token.
        username: The basic-auth login.
        password: The basic-auth password.
        source: Where the credentials come from, for error messages (``"Airflow connection 'mlflow_default'"``).

    Raises:
        ValueError: when only one of username and password is given.
    """
    from mlflow import MlflowClient

    if bool(username) != bool(password):
        raise ValueError(
            f"{source} has a login without a password or a password without a login; "
            "set both for basic auth, or neither"
        )
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)
    if not (token or username):
        return client
    credentials = {"token": token} if token else {"username": username, "password": password}
    tracking_class, registry_class = _client_classes()
    # MlflowClient keeps its stores in these private attributes (MLflow 2.x and 3.x); the real-server test
    # (tests/integration/test_mlflow_basic_auth.py) fails if a release renames them.
    if _is_http(tracking_uri):
        client._tracking_client = tracking_class(tracking_uri, _Identity(tracking_uri, source, credentials))
    if _is_http(registry_uri):
        client._registry_client_lazy = registry_class(  # type: ignore[attr-defined]
            registry_uri, tracking_uri, _Identity(registry_uri, source, credentials)
        )
    return client


class _Identity:
    """One client's credentials for one server, and the clear errors when the server refuses them."""

    def __init__(self, uri: str, source: str, credentials: dict[str, Any]) -> None:
        self.uri = uri
        self.source = source
        self.credentials = credentials
        self.who = "a bearer token" if credentials.get("token") else f"user {credentials.get('username')!r}"

    def host_creds(self, uri: str) -> Any:
        """MLflow's defaults for ``uri`` (TLS settings and the like) with this identity's credentials."""
        from mlflow.utils.credentials import get_default_host_creds

        creds = get_default_host_creds(uri)
        creds.token = self.credentials.get("token")
        creds.username = self.credentials.get("username")
        creds.password = self.credentials.get("password")
        return creds

    def get_host_creds(self) -> Any:
        """The ``get_host_creds`` callable of a REST store."""
        return self.host_creds(self.uri)

    @contextlib.contextmanager
    def explained(self, call: str) -> Iterator[None]:
        """Raise a clearer error when the server refuses ``call`` (401 or 403); let other errors through."""
        try:
            yield
        except Exception as exc:
            clearer = self.explain(exc, call)
            if clearer is None:
                raise
            raise clearer from exc

    def explain(self, exc: Exception, call: str) -> Exception | None:
        """A clearer error for a refused request, or None when ``exc`` is no refusal."""
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import ErrorCode

        response = getattr(exc, "response", None)  # requests.HTTPError of the artifact proxy
        code = getattr(exc, "error_code", None) or _HTTP_ERRORS.get(getattr(response, "status_code", 0))
        said = getattr(exc, "message", None) or str(exc)
        said = said.split("Response body: ", 1)[-1].split("Response text: ", 1)[-1].strip().strip("'.")[:300]
        if code == "UNAUTHENTICATED":
            fix = "the connection's extra 'token'" if "token" in self.credentials else "its login and password"
            message = (
                f"MLflow at {self.uri} refused the credentials of {self.source} ({self.who}) with HTTP 401 on "
                f"{call}: {said}. Fix {fix} (see `airflow connections get`), or ask the MLflow admin to reset "
                "the password (MLflow's update-password API)"
            )
        elif code == "PERMISSION_DENIED":
            message = (
                f"MLflow at {self.uri} denied {self.who} of {self.source} permission for {call} (HTTP 403: "
                f"{said}). Ask the MLflow admin to grant that user EDIT or MANAGE on the experiment or registered "
                "model (MLflow's auth API: /api/3.0/mlflow/users/permissions/grant), or use a connection whose "
                "user has it"
            )
        else:
            return None
        return MlflowException(message, error_code=ErrorCode.Value(code))


def _is_http(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


@functools.cache
def _client_classes() -> tuple[type, type]:
    """Tracking and registry clients whose store is a REST store with the given credentials.

    Built on first use so that importing the hook does not import MLflow.
    """
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
    from mlflow.store.artifact.http_artifact_repo import HttpArtifactRepository
    from mlflow.store.model_registry.rest_store import RestStore as RegistryRestStore
    from mlflow.store.tracking.rest_store import RestStore as TrackingRestStore
    from mlflow.tracking._model_registry.client import ModelRegistryClient
    from mlflow.tracking._tracking_service.client import TrackingServiceClient

    class ExplainRefusals:
        """Mixed into a REST store: a refused request raises :meth:`_Identity.explain`'s clearer error."""

        _identity: _Identity

        def _call_endpoint(self, api: Any, *args: Any, **kwargs: Any) -> Any:
            with self._identity.explained(getattr(api, "__name__", str(api))):
                return super()._call_endpoint(api, *args, **kwargs)  # type: ignore[misc]

    class AuthTrackingStore(ExplainRefusals, TrackingRestStore):  # type: ignore[misc]  # MLflow's own mixins clash
        def __init__(self, identity: _Identity) -> None:
            super().__init__(identity.get_host_creds)
            self._identity = identity

    class AuthRegistryStore(ExplainRefusals, RegistryRestStore):
        def __init__(self, identity: _Identity) -> None:
            super().__init__(identity.get_host_creds)
            self._identity = identity

    class AuthHttpArtifactRepository(HttpArtifactRepository):
        """The server's artifact proxy, called with one identity's credentials."""

        def __init__(self, artifact_uri: str, tracking_uri: str, identity: _Identity) -> None:
            super().__init__(artifact_uri, tracking_uri)
            self._identity = identity

        @property
        def _host_creds(self) -> Any:
            return self._identity.host_creds(self.artifact_uri)

        def _is_multipart_upload_enabled(self) -> bool:
            return False  # MLflow's multipart calls take the environment's credentials

        def list_artifacts(self, path: str | None = None) -> list[Any]:
            import posixpath

            from mlflow.entities import FileInfo
            from mlflow.utils.rest_utils import augmented_raise_for_status, http_request

            endpoint = "/mlflow-artifacts/artifacts"
            base, _, root = self.artifact_uri.partition(endpoint)
            folder = posixpath.join(root.lstrip("/"), path) if path else root.lstrip("/")
            response = http_request(self._identity.host_creds(base), endpoint, "GET", params={"path": folder})
            augmented_raise_for_status(response)
            infos = [
                FileInfo(
                    posixpath.join(path, f["path"]) if path else f["path"],
                    f["is_dir"],
                    int(f["file_size"]) if "file_size" in f else None,
                )
                for f in response.json().get("files", [])
                if ".." not in f["path"].split("/") and not f["path"].startswith("/")
            ]
            # Like every artifact repository: listing a file (not a folder) gives nothing.
            if (
                path
                and len(infos) == 1
                and not infos[0].is_dir
                and infos[0].path == posixpath.join(path, posixpath.basename(path))
            ):
                return []
            return sorted(infos, key=lambda info: info.path)

    class AuthTrackingClient(TrackingServiceClient):
        def __init__(self, tracking_uri: str, identity: _Identity) -> None:
            self._auth_store = AuthTrackingStore(identity)
            self._identity = identity
            super().__init__(tracking_uri)

        @property
        def store(self) -> Any:
            return self._auth_store

        def _get_artifact_repo(self, resource_id: str, *, resource: str = "run") -> Any:
            # Not MLflow's per-process cache: a repository built for one identity must never serve another.
            if resource == "run":
                location = self.get_run(resource_id).info.artifact_uri
            else:
                location = self.get_logged_model(resource_id).artifact_location
            repo = get_artifact_repository(location, tracking_uri=self.tracking_uri)
            if isinstance(repo, HttpArtifactRepository):
                return AuthHttpArtifactRepository(repo.artifact_uri, self.tracking_uri, self._identity)
            return repo

        def log_artifact(self, run_id: str, local_path: str, artifact_path: str | None = None) -> None:
            with self._identity.explained("log_artifact"):
                super().log_artifact(run_id, local_path, artifact_path)

        def log_artifacts(self, run_id: str, local_dir: str, artifact_path: str | None = None) -> None:
            with self._identity.explained("log_artifacts"):
                super().log_artifacts(run_id, local_dir, artifact_path)

        def list_artifacts(self, run_id: str, path: str | None = None) -> list[Any]:
            with self._identity.explained("list_artifacts"):
                return list(self._get_artifact_repo(run_id).list_artifacts(path))

        def download_artifacts(self, run_id: str, path: str, dst_path: str | None = None) -> str:
            with self._identity.explained("download_artifacts"):
                return str(self._get_artifact_repo(run_id).download_artifacts(path, dst_path=dst_path))

    class AuthRegistryClient(ModelRegistryClient):
        def __init__(self, registry_uri: str, tracking_uri: str, identity: _Identity) -> None:
            self._auth_store = AuthRegistryStore(identity)
            super().__init__(registry_uri, tracking_uri)

        @property
        def store(self) -> Any:
            return self._auth_store

    return AuthTrackingClient, AuthRegistryClient
