"""The city a command names, and the registry it reads: shared by ``serving``, ``serve``, ``disable`` and ``enable``.

A city is named by its id (``berlin``) when one template has it, or by its DAG id (``ride_duration.berlin``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from airflow_ml.templates.models import CityConfig


class CityNotFound(LookupError):
    """The name matches no city, or the cities of several templates; the message names the known ones or the fix."""


def find_city(root: Path, name: str) -> CityConfig:
    """The city config ``name`` names in the templates folder ``root``.

    Raises:
        CityNotFound: no such city (the known ones named, and how many files do not load), or one id of
            several templates (their DAG ids named).
    """
    from airflow_ml.templates import load_city_configs

    configs, errors = load_city_configs(root)
    matches = [c for c in configs if name in (c.city, c.dag_id)]
    if not matches:
        known = sorted(c.city for c in configs)
        broken = f"; {len(errors)} city file(s) do not load (airflow-ml lint {root})" if errors else ""
        raise CityNotFound(f"no city {name!r} in {root}/cities; known: {known}{broken}")
    if len(matches) > 1:
        ids = [c.dag_id for c in matches]
        raise CityNotFound(f"{name!r} is a city of several templates; name one of {ids}")
    return matches[0]


def registry_client(tracking_uri: str | None, conn_id: str) -> MlflowClient:
    """An explicit MLflow client: the given URI, else the Airflow connection (environment or metadata DB).

    A SQL store checks (and on first use creates) its schema through alembic. MLflow keeps alembic at warnings
    when it configures its logging; with ``MLFLOW_CONFIGURE_LOGGING=false`` alembic's and the store's INFO lines
    ("Context impl SQLiteImpl.", "Creating initial MLflow database tables") reached the command's stdout through
    Airflow's logging, where its answer is read.
    """
    import logging

    for name in ("alembic", "mlflow.store.db"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if tracking_uri:
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    from airflow_ml.hooks.mlflow import MlflowHook

    return MlflowHook(mlflow_conn_id=conn_id).get_conn()
