"""Run-time settings read from the environment (never at DAG parse time). No Airflow import."""

from __future__ import annotations

import os

from airflow_ml.exceptions import ConfigError

DATA_ROOT_ENV = "AIRFLOW_ML_DATA_ROOT"


def data_root(explicit: str | None = None) -> str:
    """The root URI under which raw data and snapshots live (``file://``, a path, or ``s3://``).

    Raises:
        ConfigError: when neither ``explicit`` nor ``AIRFLOW_ML_DATA_ROOT`` is set.
    """
    root = explicit or os.environ.get(DATA_ROOT_ENV)
    if not root:
        raise ConfigError(
            DATA_ROOT_ENV,
            [f"no data root: set {DATA_ROOT_ENV} for the workers (e.g. /srv/airflow-ml/data or s3://bucket/ml)"],
        )
    return root.rstrip("/")
