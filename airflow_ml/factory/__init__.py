"""Build one retraining DAG per city from validated configs. Imports nothing heavy at module level."""

from __future__ import annotations

from airflow_ml.factory.builder import TASK_ORDER, build_dag, register_dags

__all__ = ["TASK_ORDER", "build_dag", "register_dags"]
