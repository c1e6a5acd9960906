"""Airflow homes for tests: the session's own (SQLite, a small dags folder) and a worker process's.

Airflow reads its configuration when it is first imported, so :func:`use_session_home` must run before any
test module imports it: the root ``tests/conftest.py`` calls it in ``pytest_configure``.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import tempfile
from pathlib import Path


@functools.cache
def use_session_home() -> Path:
    """Create the test session's folder and point Airflow at it (once); return the folder.

    It holds ``airflow/`` (AIRFLOW_HOME, with ``airflow.db``) and ``dags/`` (the dags folder: dag.test()
    re-parses it on every call, so it holds only the loaders tests write). Telemetry is turned off.
    """
    session = Path(tempfile.mkdtemp(prefix="airflow-ml-tests-"))
    (session / "dags").mkdir()
    (session / "airflow").mkdir()
    os.environ.update(
        {
            "AIRFLOW_HOME": str(session / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(session / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # No 30 s cut on importing a DAG file: pytest-timeout bounds each test, and on a loaded machine the cut
            # made a parse of the session's dags folder miss DAGs (a KeyError far from its cause).
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "0",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{session}/airflow/airflow.db",
            "GX_ANALYTICS_ENABLED": "false",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "1",
            "SCARF_NO_ANALYTICS": "true",
        }
    )
    return session


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
