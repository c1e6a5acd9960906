"""Test settings: a private Airflow home on SQLite, a real MLflow store per test, telemetry off.

Airflow reads its configuration when it is first imported, so the environment is set here, before
any test module imports it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="airflow-ml-tests-"))
_DAGS_DIR = _SESSION_DIR / "dags"
_DAGS_DIR.mkdir()

os.environ.update(
    {
        "AIRFLOW_HOME": str(_SESSION_DIR / "airflow"),
        # dag.test() re-parses its dags folder on every call: keep it small (tests write their own loader).
        "AIRFLOW__CORE__DAGS_FOLDER": str(_DAGS_DIR),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_SESSION_DIR}/airflow/airflow.db",
        "GX_ANALYTICS_ENABLED": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "SCARF_NO_ANALYTICS": "true",
    }
)
(_SESSION_DIR / "airflow").mkdir()


@pytest.fixture(scope="session")
def dags_dir() -> Path:
    """The dags folder that Airflow parses in this test session."""
    return _DAGS_DIR


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated Airflow metadata database (SQLite) for dag.test()."""
    from airflow.utils.db import initdb

    initdb()
    return _SESSION_DIR / "airflow" / "airflow.db"


@pytest.fixture
def mlflow_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A real MLflow tracking store and registry (SQLite and local artifacts), wired as ``mlflow_default``."""
    return _wire_mlflow(tmp_path / "mlflow", monkeypatch)


def _wire_mlflow(folder: Path, monkeypatch: pytest.MonkeyPatch, tracking_uri: str | None = None) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    store = {
        "tracking_uri": tracking_uri or f"sqlite:///{folder}/mlflow.db",
        "artifact_root": f"file://{folder}/artifacts",
    }
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_DEFAULT", json.dumps({"conn_type": "mlflow", "extra": store}))
    return store


def write_loader(dags_dir: Path, name: str, templates_root: Path) -> Path:
    """Write a thin DAG file, like dags/retrain.py, that builds the cities of ``templates_root``.

    dag.test() serializes the DAGs it finds in the dags folder, so a test's DAG must be found there too.
    """
    path = dags_dir / f"{name}.py"
    path.write_text(
        "from airflow_ml.factory import register_dags\n"
        f"register_dags(globals(), templates_root={str(templates_root)!r}, "
        f"expectations_dir={str(REPO / 'expectations')!r})\n",
        encoding="utf-8",
    )
    return path


def copy_template(root: Path, template: str, extra: str = "") -> None:
    """Make ``root/templates`` and ``root/cities``, with a copy of the repo's ride_duration template named ``template``.

    ``extra`` (YAML) is appended to the copy.
    """
    (root / "templates").mkdir(parents=True)
    (root / "cities").mkdir()
    text = (REPO / "dag_templates" / "templates" / "ride_duration.yaml").read_text(encoding="utf-8")
    (root / "templates" / f"{template}.yaml").write_text(
        text.replace("template: ride_duration\n", f"template: {template}\n") + extra, encoding="utf-8"
    )


def make_city_world(
    root: Path, dags_dir: Path, city: str, *, scale: float = 0.3, extra: str = "", template: str = "ride_duration"
) -> Path:
    """A templates folder with one demo city (no retries, no schedule), its demo data and its DAG loader.

    ``extra`` is appended to the city file (YAML of what this world's city changes). ``template`` names the
    copy of the ride_duration template, so that a world's DAG ids can differ from another world's.

    Returns:
        The data root, to export as ``AIRFLOW_ML_DATA_ROOT``.
    """
    from airflow_ml.data.demo import write_demo_data

    copy_template(root, template)
    (root / "cities" / f"{city}.yaml").write_text(
        f"city: {city}\ntemplate: {template}\ndag:\n  retries: 0\n  schedule: null\n{extra}", encoding="utf-8"
    )
    write_loader(dags_dir, f"world_{root.name}", root)
    write_demo_data(root / "data", cities=[city], batch="initial", scale=scale)
    return root / "data"


@contextlib.contextmanager
def city_world(
    root: Path, dags_dir: Path, city: str, *, extra: str = "", template: str = "ride_duration"
) -> Iterator[dict[str, Any]]:
    """One demo city's world (see :func:`make_city_world`) with a real MLflow store, wired through the environment.

    Yields ``build`` (a fresh DAG object per call: ``dag.test(run_conf=...)`` leaves the conf in the in-process
    DAG's params, where it would leak into the next run), ``client``, ``data_root`` and ``store``.
    """
    from mlflow import MlflowClient

    from airflow_ml.factory import register_dags

    data_root = make_city_world(root, dags_dir, city, extra=extra, template=template)
    dag_id = f"{template}.{city}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_ML_DATA_ROOT", str(data_root))
        store = _wire_mlflow(root / "mlflow", mp)
        yield {
            "build": lambda: register_dags({}, templates_root=root, expectations_dir=REPO / "expectations")[dag_id],
            "client": MlflowClient(tracking_uri=store["tracking_uri"], registry_uri=store["tracking_uri"]),
            "data_root": data_root,
            "store": store,
        }


def task_states(dag_id: str, run_id: str) -> dict[str, str]:
    """Each task's final state in a run, read from the session's metadata database."""
    return {task_id: str(state) for task_id, state in _task_column(dag_id, run_id, "state").items()}


def try_numbers(dag_id: str, run_id: str) -> dict[str, int]:
    """Each task's try number in a run (1 when the first try was the last)."""
    return {task_id: int(number) for task_id, number in _task_column(dag_id, run_id, "try_number").items()}


def _task_column(dag_id: str, run_id: str, column: str) -> dict[str, Any]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(TaskInstance.task_id, getattr(TaskInstance, column)).where(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id
            )
        ).all()
    return dict(rows)


@contextlib.contextmanager
def airflow_api(*, plugins_folder: Path | None = None) -> Iterator[Any]:
    """Airflow's own REST API (its FastAPI app) in-process, every request an admin's.

    Authentication is not what the tests that use it are about; the metadata database is the session's.
    ``plugins_folder`` (e.g. the repo's ``plugins/``) is loaded as Airflow's plugins folder.
    """
    from airflow import plugins_manager, settings
    from airflow.api_fastapi.app import create_app, purge_cached_app
    from fastapi.testclient import TestClient

    def clear_plugin_caches() -> None:
        for value in vars(plugins_manager).values():
            if callable(getattr(value, "cache_clear", None)):
                value.cache_clear()

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
        mp.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "airflow-ml-tests-" + "x" * 64)
        if plugins_folder is not None:
            mp.setattr(settings, "PLUGINS_FOLDER", str(plugins_folder))
        clear_plugin_caches()
        purge_cached_app()
        try:
            yield TestClient(create_app())
        finally:
            purge_cached_app()
            clear_plugin_caches()


REQUIRE_SERVICES = os.environ.get("AIRFLOW_ML_REQUIRE_SERVICES") == "1"


def service_missing(reason: str) -> None:
    """Skip a test whose service is missing, or fail it in CI (``AIRFLOW_ML_REQUIRE_SERVICES=1``)."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason}; AIRFLOW_ML_REQUIRE_SERVICES=1 makes a missing service a failure", pytrace=False)
    pytest.skip(reason)


POSTGRES_DSN = os.environ.get("AIRFLOW_ML_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards; yields its SQLAlchemy URL."""
    with fresh_postgres_database() as url:
        yield url


def worker_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a process that plays one Airflow worker: its own home, dags folder and SQLite."""
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        **extra,
    }


def make_worker_home(home: Path, loader: str) -> None:
    """Create a worker's Airflow home with ``loader`` as its only DAG file, and migrate its database."""
    import subprocess
    import sys

    (home / "dags").mkdir(parents=True)
    (home / "dags" / "cities.py").write_text(loader, encoding="utf-8")
    migrated = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=worker_env(home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert migrated.returncode == 0, migrated.stderr[-3000:]


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


@contextlib.contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """Create an empty PostgreSQL database, yield its SQLAlchemy URL, drop it afterwards.

    Skips (or fails, under ``AIRFLOW_ML_REQUIRE_SERVICES=1``) when PostgreSQL is not reachable.
    """
    import uuid

    admin = postgres_admin()
    name = f"airflow_ml_test_{uuid.uuid4().hex[:12]}"
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg2://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def postgres_admin() -> Any:
    """An autocommit psycopg2 connection to the machine's PostgreSQL (skips, or fails in CI, when it is down)."""
    import psycopg2

    try:
        admin = psycopg2.connect(POSTGRES_DSN, connect_timeout=5)
    except psycopg2.OperationalError as exc:
        service_missing(
            f"PostgreSQL at {POSTGRES_DSN} is not reachable ({str(exc).strip()}); start it with "
            "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
        )
        raise  # service_missing skips or fails; this line is never reached
    admin.autocommit = True
    return admin
