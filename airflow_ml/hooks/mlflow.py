"""The ``mlflow`` connection type: an Airflow connection that gives an explicit ``MlflowClient``."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    from mlflow import MlflowClient


class MlflowHook(BaseHook):
    """Connects to an MLflow tracking server and model registry.

    The connection's extras ``tracking_uri``, ``registry_uri`` and ``artifact_root`` win; without a
    ``tracking_uri`` the URI is built from the scheme, host and port (``http://mlflow:5000``).
    An HTTP(S) server may need credentials: the extra ``token`` (sent as ``Authorization: Bearer``) or
    the connection's login and password (basic auth); a token wins over a login.
    The hook never writes ``os.environ`` or MLflow's global URIs: each call of the client it gives sends
    this connection's credentials (MLflow's request-header plugin, see :mod:`airflow_ml.hooks.mlflow_auth`),
    artifacts through the server's proxy included, so two hooks with different credentials (or several
    cities) share a process safely. A server that refuses them (HTTP 401 or 403) raises an error naming this
    connection, the server, the user and the fix.

    Args:
        mlflow_conn_id: The Airflow connection of type ``mlflow``.
    """

    conn_name_attr = "mlflow_conn_id"
    default_conn_name = "mlflow_default"
    conn_type = "mlflow"
    hook_name = "MLflow"

    def __init__(self, mlflow_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mlflow_conn_id = mlflow_conn_id

    @cached_property
    def _settings(self) -> dict[str, str | None]:
        conn = self.get_connection(self.mlflow_conn_id)
        extra = conn.extra_dejson
        tracking_uri = extra.get("tracking_uri")
        if not tracking_uri:
            if not conn.host:
                raise ValueError(
                    f"connection {self.mlflow_conn_id!r} has neither a tracking_uri extra nor a host; "
                    "set one, e.g. AIRFLOW_CONN_MLFLOW_DEFAULT="
                    '\'{"conn_type": "mlflow", "host": "mlflow", "port": 5000}\''
                )
            port = f":{conn.port}" if conn.port else ""
            tracking_uri = f"{conn.schema or 'http'}://{conn.host}{port}"
        return {
            "tracking_uri": tracking_uri,
            "registry_uri": extra.get("registry_uri") or tracking_uri,
            "artifact_root": extra.get("artifact_root") or None,
            "token": extra.get("token") or None,
            "username": conn.login or None,
            "password": conn.password or None,
        }

    @property
    def tracking_uri(self) -> str:
        """The tracking URI of the connection."""
        return str(self._settings["tracking_uri"])

    @property
    def registry_uri(self) -> str:
        """The model registry URI (the tracking URI unless set apart)."""
        return str(self._settings["registry_uri"])

    @property
    def artifact_root(self) -> str | None:
        """Where new experiments put their artifacts, or None to let the tracking server decide."""
        return self._settings["artifact_root"]

    def get_conn(self) -> MlflowClient:
        """A client bound to this connection's tracking and registry URIs, and to its credentials if any."""
        from airflow_ml.hooks.mlflow_auth import authenticated_client

        settings = self._settings
        return authenticated_client(
            self.tracking_uri,
            self.registry_uri,
            token=settings["token"],
            username=settings["username"],
            password=settings["password"],
            source=f"Airflow connection {self.mlflow_conn_id!r}",
        )

    def test_connection(self) -> tuple[bool, str]:
        """Check that the tracking store answers (used by the UI's *Test* button)."""
        try:
            self.get_conn().search_experiments(max_results=1)
        except Exception as exc:  # noqa: BLE001 - report any failure to the UI
            return False, f"MLflow at {self.tracking_uri} did not answer: {exc}"
        return True, f"MLflow at {self.tracking_uri} answered"
