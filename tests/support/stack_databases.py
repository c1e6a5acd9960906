"""The two PostgreSQL databases of an :class:`~tests.support.stack.AirflowStack`: Airflow's metadata and MLflow's.

Either copies of schemas migrated once per machine on the shared server (:func:`template_databases`), or
fresh databases migrated on the server a DSN names (:func:`private_databases`: a test's own cluster).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import importlib.metadata
import subprocess
import sys
import uuid
from pathlib import Path

from tests.support import REPO
from tests.support.postgres import admin_sql, database_from_template
from tests.support.processes import StackError
from tests.support.stack_config import base_env


def template_databases(exit_stack: contextlib.ExitStack, root: Path, logs_dir: Path) -> tuple[str, str]:
    """Airflow's and MLflow's databases copied from migrated templates (see ``database_from_template``):
    seconds, not minutes. Dropped when ``exit_stack`` closes.

    Returns:
        The SQLAlchemy URLs of the metadata database and of the MLflow store.
    """
    mlflow_url = exit_stack.enter_context(
        database_from_template(
            "mlflow", importlib.metadata.version("mlflow"), lambda url: build_mlflow_schema(url, logs_dir)
        )
    )
    metadata_url = exit_stack.enter_context(
        database_from_template(
            "airflow",
            importlib.metadata.version("apache-airflow"),
            lambda url: build_airflow_schema(url, root / "template-home", logs_dir),
        )
    )
    return metadata_url, mlflow_url


def private_databases(exit_stack: contextlib.ExitStack, dsn: str, root: Path, logs_dir: Path) -> tuple[str, str]:
    """Both databases on the server of ``dsn``, created empty and migrated side by side (a fresh cluster
    has no template); dropped when ``exit_stack`` closes.

    Returns:
        The SQLAlchemy URLs of the metadata database and of the MLflow store.
    """
    plain = dsn.replace("postgresql+psycopg2://", "postgresql://", 1)
    base = plain.split("?", 1)[0].rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg2://", 1)
    urls = {}
    for kind in ("airflow", "mlflow"):
        name = f"airflow_ml_{kind}_{uuid.uuid4().hex[:12]}"
        admin_sql(plain, f'CREATE DATABASE "{name}"')
        # A connection of its own at the end: the test may have restarted the server since.
        exit_stack.callback(admin_sql, plain, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', check=False)
        urls[kind] = f"{base}/{name}"
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        builds = [
            pool.submit(build_airflow_schema, urls["airflow"], root / "template-home", logs_dir),
            pool.submit(build_mlflow_schema, urls["mlflow"], logs_dir),
        ]
        for build in builds:
            build.result()
    return urls["airflow"], urls["mlflow"]


def build_mlflow_schema(url: str, logs_dir: Path) -> None:
    """The store the MLflow server opens: its schema, and the Default experiment with the server's artifact root."""
    code = (
        "import sys; from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore; "
        "SqlAlchemyStore(sys.argv[1], 'mlflow-artifacts:/').engine.dispose()"
    )
    _build_schema("mlflow schema", [sys.executable, "-c", code, url], base_env(), logs_dir / "schema-mlflow.log")


def build_airflow_schema(url: str, home: Path, logs_dir: Path) -> None:
    """``airflow db migrate`` on ``url``, from a scratch AIRFLOW_HOME ``home``."""
    home.mkdir(exist_ok=True)
    env = {**base_env(), "AIRFLOW_HOME": str(home), "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url}
    argv = [sys.executable, "-m", "airflow", "db", "migrate"]
    _build_schema("airflow db migrate", argv, env, logs_dir / "schema-airflow.log")


def _build_schema(what: str, argv: list[str], env: dict[str, str], log: Path) -> None:
    with log.open("a", encoding="utf-8") as out:
        done = subprocess.run(argv, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-40:])
        raise StackError(f"{what} exited with {done.returncode}; {log}:\n{tail}")
