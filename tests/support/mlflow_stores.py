"""MLflow for tests: a real store wired as the ``mlflow_default`` connection, a shared registry, a real server.

- :func:`wire_mlflow` points ``mlflow_default`` at a store (SQLite and local artifacts by default).
- :func:`shared_registry` is a PostgreSQL store that several worker processes share.
- :class:`MlflowServer` is ``mlflow server`` as a process of its own (killed with SIGKILL, started again on the
  same port and store).
- :func:`sqlite_registry` is a client of a fresh SQLite registry holding a few empty registered models.
- :func:`logged_decision` reads the gate's ``gate/decision.json`` of a version (its tags hold only a summary).
- :func:`register_version` registers a version with its tags as the tasks write them.
- :class:`CountingClient` wraps a real client and counts the calls made through it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.postgres import fresh_postgres_database
from tests.support.processes import ManagedProcess, free_port, wait_until


def wire_mlflow(folder: Path, monkeypatch: pytest.MonkeyPatch, tracking_uri: str | None = None) -> dict[str, str]:
    """Set ``AIRFLOW_CONN_MLFLOW_DEFAULT`` (through ``monkeypatch``) to a real MLflow store in ``folder``.

    Args:
        folder: Created if missing; holds ``mlflow.db`` (unless ``tracking_uri`` is given) and ``artifacts/``.
        monkeypatch: Undoes the setting at its end (a test's fixture, or a ``MonkeyPatch.context()``).
        tracking_uri: Another tracking and registry store (e.g. PostgreSQL) instead of SQLite in ``folder``.

    Returns:
        The connection's extra: ``tracking_uri`` and ``artifact_root``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    store = {
        "tracking_uri": tracking_uri or f"sqlite:///{folder}/mlflow.db",
        "artifact_root": f"file://{folder}/artifacts",
    }
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_DEFAULT", json.dumps({"conn_type": "mlflow", "extra": store}))
    return store


def sqlite_registry(folder: Path, *models: str) -> Any:
    """A client of a fresh SQLite store in ``folder`` with the registered models ``models`` (no versions)."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{folder}/mlflow.db"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    for name in models:
        client.create_registered_model(name)
    return client


@contextlib.contextmanager
def shared_registry() -> Iterator[str]:
    """A fresh PostgreSQL MLflow store that several worker processes share; yields its URL.

    The registry's tables exist before the fleet runs (a tracking server creates them at start): two
    workers' first connections must not both create MLflow's schema in an empty database.
    """
    from mlflow import MlflowClient

    with fresh_postgres_database() as url:
        MlflowClient(tracking_uri=url, registry_uri=url).search_experiments()
        yield url


class MlflowServer:
    """``mlflow server`` on a free loopback port with proxied artifacts, as a process a test may kill.

    Args:
        root: Folder for the artifacts and the log.
        backend_store_uri: The tracking and registry store (a SQLAlchemy URL).
    """

    def __init__(self, root: Path, backend_store_uri: str) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend_store_uri]
        argv += ["--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1"]
        argv += ["--port", str(self.port), "--workers", "1"]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_TRACKING", "MLFLOW_REGISTRY"))}
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # no GenAI job runner: one process less to start
        self.process = ManagedProcess("mlflow", argv, env, root / "mlflow.log")

    def start(self, timeout: float = 180) -> None:
        """Start the server and wait until it answers ``/health``."""
        self.process.start()
        wait_until(
            lambda: self._alive() and httpx.get(f"{self.url}/health", timeout=5).status_code == 200,
            timeout=timeout,
            what=f"mlflow server did not answer at {self.url}/health",
            diagnose=self.process.tail,
        )

    def _alive(self) -> bool:
        if not self.process.alive:
            raise RuntimeError(f"mlflow server exited\n{self.process.tail()}")
        return True

    def kill(self) -> None:
        """SIGKILL the server (and its workers), as a crash would; the port is closed when this returns."""
        self.process.kill()

    def stop(self) -> None:
        """Stop the server for good."""
        self.process.stop()

    def client(self) -> Any:
        """An ``MlflowClient`` of this server (tracking and registry)."""
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.url, registry_uri=self.url)


def logged_decision(client: Any, name: str, version: str) -> dict[str, Any]:
    """The decision record (``gate/decision.json``) logged on the training run of ``name`` v``version``."""
    import tempfile

    from airflow_ml.ml.model_registry import DECISION_ARTIFACT

    run_id = client.get_model_version(name, str(version)).run_id
    with tempfile.TemporaryDirectory(prefix="airflow-ml-test-decision-") as tmp:
        path = client.download_artifacts(run_id, DECISION_ARTIFACT, tmp)
        return dict(json.loads(Path(path).read_text(encoding="utf-8")))


def register_version(client: Any, name: str, folder: Path, tags: dict[str, Any]) -> str:
    """A new version of ``name`` (registered first if need be) carrying ``tags``, a non-text value as JSON text."""
    if not client.search_registered_models(filter_string=f"name = '{name}'"):
        client.create_registered_model(name)
    source = folder / "models" / name
    source.mkdir(parents=True, exist_ok=True)
    text = {key: value if isinstance(value, str) else json.dumps(value) for key, value in tags.items()}
    return str(client.create_model_version(name, str(source), tags=text).version)


class CountingClient:
    """A real ``MlflowClient`` that counts the registry calls made through it (``calls``: method name to count;
    ``arguments``: method name to the positional arguments of each call). Attributes pass through uncounted."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: dict[str, int] = {}
        self.arguments: dict[str, list[tuple[Any, ...]]] = {}

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if not callable(method):
            return method

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            self.arguments.setdefault(name, []).append(args)
            return method(*args, **kwargs)

        return counted

    def model_loads(self) -> int:
        """How many models were downloaded to be loaded (``download_artifacts`` of anything but a ``lineage/`` file,
        as :func:`airflow_ml.ml.model_cache.load_pyfunc` fetches a version logged in its run)."""
        return sum(1 for args in self.arguments.get("download_artifacts", []) if not str(args[1]).startswith("lineage"))
