"""An ``MlflowClient`` whose REST calls carry its own credentials, without touching ``os.environ``.

MLflow's REST stores read ``MLFLOW_TRACKING_TOKEN`` / ``_USERNAME`` / ``_PASSWORD`` from the process
environment each time they build a request, so one process can only hold one identity that way. A
``RestStore`` takes a ``get_host_creds`` callable instead; this module gives the client tracking and
registry stores built with a callable that returns the connection's credentials, so two clients with
different credentials work side by side.

Artifacts proxied by the server (``mlflow-artifacts:/`` URIs) are not covered: MLflow's HTTP artifact
repository reads the environment directly. Point ``artifact_root`` at object storage (``s3://``) to
keep artifacts off the proxy.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow import MlflowClient


def authenticated_client(
    tracking_uri: str,
    registry_uri: str,
    *,
    token: str | None = None,
    username: str | None = None,
    password: str | None = None,
) -> MlflowClient:
    """A client of ``tracking_uri`` / ``registry_uri``; HTTP(S) stores send the token or basic auth given.

    A token (``Authorization: Bearer``) wins over a username and password. Other URIs (a database, a
    folder) take no credentials and get a plain client.

    Raises:
        ValueError: when only one of username and password is given.
    """
    from mlflow import MlflowClient

    if bool(username) != bool(password):
        raise ValueError(
            "the MLflow connection has a login without a password or a password without a login; "
            "set both for basic auth, or neither"
        )
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)
    if not (token or username):
        return client
    credentials = {"token": token} if token else {"username": username, "password": password}
    tracking_class, registry_class = _client_classes()
    if _is_http(tracking_uri):
        client._tracking_client = tracking_class(tracking_uri, _creds(tracking_uri, credentials))
    if _is_http(registry_uri):
        client._registry_client_lazy = registry_class(  # type: ignore[attr-defined]
            registry_uri, tracking_uri, _creds(registry_uri, credentials)
        )
    return client


def _is_http(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def _creds(uri: str, credentials: dict[str, Any]) -> Any:
    """A ``get_host_creds`` callable: MLflow's defaults for TLS and the like, with these credentials."""
    from mlflow.utils.credentials import get_default_host_creds

    def get_host_creds() -> Any:
        creds = get_default_host_creds(uri)
        creds.token = credentials.get("token")
        creds.username = credentials.get("username")
        creds.password = credentials.get("password")
        return creds

    return get_host_creds


@functools.cache
def _client_classes() -> tuple[type, type]:
    """Tracking and registry clients whose store is a REST store with the given credentials.

    Built on first use so that importing the hook does not import MLflow.
    """
    from mlflow.store.model_registry.rest_store import RestStore as RegistryRestStore
    from mlflow.store.tracking.rest_store import RestStore as TrackingRestStore
    from mlflow.tracking._model_registry.client import ModelRegistryClient
    from mlflow.tracking._tracking_service.client import TrackingServiceClient

    class AuthTrackingClient(TrackingServiceClient):
        def __init__(self, tracking_uri: str, get_host_creds: Any) -> None:
            self._auth_store = TrackingRestStore(get_host_creds)
            super().__init__(tracking_uri)

        @property
        def store(self) -> Any:
            return self._auth_store

    class AuthRegistryClient(ModelRegistryClient):
        def __init__(self, registry_uri: str, tracking_uri: str, get_host_creds: Any) -> None:
            self._auth_store = RegistryRestStore(get_host_creds)
            super().__init__(registry_uri, tracking_uri)

        @property
        def store(self) -> Any:
            return self._auth_store

    return AuthTrackingClient, AuthRegistryClient
