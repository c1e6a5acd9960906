"""Airflow's local settings for airflow-ml's workers: warm task processes (docs/production/scaling.md).

Airflow imports this module in each of its processes as it starts: docker-compose.yaml puts this folder on
PYTHONPATH. The scheduler (LocalExecutor) and the Celery worker import the tasks' libraries once, and every
task process they fork starts with them imported; AIRFLOW_ML_PRELOAD=off turns it off.

This file is found before $AIRFLOW_HOME/config/airflow_local_settings.py (compose's ./config), which Airflow would
then never import: so when that file exists, it is loaded too (as module airflow_local_settings_user) and its
names, your cluster policies among them, are re-exported from here. A log line names it.
"""

from airflow_ml.worker_preload import chain_user_settings, preload_for_workers

preload_for_workers()
chain_user_settings(globals())
