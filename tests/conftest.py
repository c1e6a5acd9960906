"""Test settings: a private Airflow home on SQLite, a real MLflow store per test, telemetry off.

Airflow reads its configuration when it is first imported, so the environment is set here, before
any test module imports it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

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


def _wire_mlflow(folder: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    store = {"tracking_uri": f"sqlite:///{folder}/mlflow.db", "artifact_root": f"file://{folder}/artifacts"}
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
