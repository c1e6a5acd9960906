"""The fixtures every tier shares, and the hook that gives the session its own Airflow home.

Helpers live in :mod:`tests.support`; no test imports this file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.airflow_homes import use_session_home
from tests.support.mlflow_stores import wire_mlflow
from tests.support.postgres import fresh_postgres_database


def pytest_configure(config: pytest.Config) -> None:
    """Point Airflow at the session's private home (SQLite) before any test module imports it."""
    use_session_home()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the session's home (Airflow's SQLite, the dags folder): a run leaves no folder in the temp dir."""
    import shutil

    shutil.rmtree(use_session_home(), ignore_errors=True)


@pytest.fixture(scope="session")
def dags_dir() -> Path:
    """The dags folder that Airflow parses in this test session."""
    return use_session_home() / "dags"


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated Airflow metadata database (SQLite) for dag.test()."""
    from airflow.utils.db import initdb

    initdb()
    return use_session_home() / "airflow" / "airflow.db"


@pytest.fixture
def mlflow_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A real MLflow tracking store and registry (SQLite and local artifacts), wired as ``mlflow_default``."""
    return wire_mlflow(tmp_path / "mlflow", monkeypatch)


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards; yields its SQLAlchemy URL."""
    with fresh_postgres_database() as url:
        yield url
