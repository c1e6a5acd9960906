"""Retraining DAGs, shard 1 of 2: one DAG per city file in dag_templates/cities (airflow-ml DAG factory).

Cities are spread over the two retrain_shard_*.py files by a stable hash of their id, so that Airflow's
parsing processes share the fleet; every shard file must name the same count (docs/production/scaling.md).
"""

from __future__ import annotations

from pathlib import Path

from airflow_ml.factory import Shard, register_dags

_REPO = Path(__file__).resolve().parent.parent

register_dags(
    globals(), templates_root=_REPO / "dag_templates", expectations_dir=_REPO / "expectations", shard=Shard(1, 2)
)
