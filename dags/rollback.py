"""The fleet-wide rollback DAG ``airflow_ml.rollback`` (manual): a city's champion back to its previous one."""

from __future__ import annotations

from airflow_ml.factory.rollback import build_rollback_dag

rollback_dag = build_rollback_dag()
