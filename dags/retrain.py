"""One retraining DAG per city file in dag_templates/cities (airflow-ml DAG factory)."""

from __future__ import annotations

from pathlib import Path

from airflow_ml.factory import register_dags

_REPO = Path(__file__).resolve().parent.parent

register_dags(globals(), templates_root=_REPO / "dag_templates", expectations_dir=_REPO / "expectations")
