"""Lists broken city files as this DAG file's import error (Airflow UI, `airflow dags list-import-errors`).

The retrain_shard_*.py files build every valid city's DAG; this file raises only when some city file is
broken, so one bad file never hides the other cities and is never silent either.
"""

from __future__ import annotations

from pathlib import Path

from airflow_ml.factory import report_broken_cities

report_broken_cities(templates_root=Path(__file__).resolve().parent.parent / "dag_templates")
