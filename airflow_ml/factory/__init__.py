"""Build one retraining DAG per city from validated configs. Imports nothing heavy at module level."""

from __future__ import annotations

from airflow_ml.factory.assets import champion_asset
from airflow_ml.factory.builder import build_dag
from airflow_ml.factory.dag_registration import (
    city_problems,
    register_city_dags,
    register_dags,
    register_monitor_and_drift_review_dags,
    register_parent_dags,
    register_score_dags,
    report_broken_cities,
)
from airflow_ml.factory.sharding import Shard

__all__ = [
    "Shard",
    "build_dag",
    "champion_asset",
    "city_problems",
    "register_city_dags",
    "register_dags",
    "register_monitor_and_drift_review_dags",
    "register_parent_dags",
    "register_score_dags",
    "report_broken_cities",
]
