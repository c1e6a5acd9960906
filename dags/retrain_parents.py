"""Fallback parents' DAGs: a group's or a template's model trained on the union of its cities' data.

Built only for the parents that some city names in ``fallback.parent``; a city whose run has too little
data is served by its parent's champion (``airflow-ml serving <city>`` tells which model serves a city).
"""

from __future__ import annotations

from pathlib import Path

from airflow_ml.factory import register_parent_dags

_REPO = Path(__file__).resolve().parent.parent

register_parent_dags(globals(), templates_root=_REPO / "dag_templates", expectations_dir=_REPO / "expectations")
