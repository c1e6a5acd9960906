"""Airflow's local settings for airflow-ml's workers: warm task processes (docs/production/scaling.md).

Airflow imports this module in each of its processes as it starts: docker-compose.yaml puts this folder on
PYTHONPATH. The scheduler (LocalExecutor) and the Celery worker import the tasks' libraries once, and every
task process they fork starts with them imported; AIRFLOW_ML_PRELOAD=off turns it off. If you keep local
settings of your own (cluster policies), add these two lines to your file instead.
"""

from airflow_ml.worker_preload import preload_for_workers

preload_for_workers()
