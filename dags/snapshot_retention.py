"""The daily snapshot retention DAG ``airflow_ml.snapshot_retention``: snapshots no registered version needs go.

It keeps, for every city, each snapshot a registered model version points at and the newest
``retention.keep_last`` others (docs/guides/data.md, "Retention"); the task reads dag_templates when it runs.
"""

from __future__ import annotations

from pathlib import Path

from airflow_ml.factory.maintenance import build_retention_dag

_REPO = Path(__file__).resolve().parent.parent

retention_dag = build_retention_dag(templates_root=_REPO / "dag_templates")
