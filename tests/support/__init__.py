"""Helpers shared by the test tiers; conftest.py files keep only fixtures and hooks, and no test imports them.

Modules by what they hold: ``worlds`` (templates folders, demo cities, DAG loaders), ``airflow_homes`` and
``airflow_runs`` (Airflow), ``postgres``, ``mlflow_stores``, ``s3_servers``, ``services`` (a missing service:
skip or fail), ``processes``, ``stack``, ``stack_config``, ``stack_databases`` and ``airflow_rest`` (a real
deployment), ``city_files`` (config files for the loader's tests), ``project`` and ``documented`` (a user's
project, the docs' commands). docs/testing.md has the map.
"""

from pathlib import Path

#: The repository's root (its dag_templates/, expectations/, dags/...).
REPO = Path(__file__).resolve().parents[2]
