"""Warm task processes: the libraries a task imports, imported once by the process whose forks run the tasks.

In Airflow 3 a task runs in a process that the task SDK's supervisor starts with ``os.fork()``
(``airflow.sdk.execution_time.supervisor``; Airflow 3 dropped ``[core] execute_tasks_new_python_interpreter``).
The supervisor runs in a LocalExecutor worker, which the scheduler forked at its start (``multiprocessing``
with the ``fork`` start method, Linux's default before Python 3.14), or in a pool process that
``airflow celery worker`` forked. A module imported by the scheduler or the Celery worker before they fork is
therefore already in every task's ``sys.modules``: pandas, LightGBM, MLflow and GX are imported once per
worker instead of once per task (seconds each time, most of a short task).

Airflow imports ``airflow_local_settings`` in every one of its processes as it starts (``settings.initialize``,
before it configures logging or opens any database connection), from ``$AIRFLOW_HOME/config`` or anywhere on
``sys.path``. The deployment's file calls :func:`preload_for_workers` (``deploy/airflow/airflow_local_settings.py``
is that file)::

    from airflow_ml.worker_preload import preload_for_workers

    preload_for_workers()

``AIRFLOW_ML_PRELOAD`` chooses: ``auto`` (the default) imports in ``airflow scheduler`` when its executors
include the LocalExecutor and in ``airflow celery worker``, nowhere else (the api-server, the DAG processor and
the triggerer run no task); ``off`` imports nothing. Only modules are imported: no client, thread, database
connection or GX context is created, so forking afterwards stays safe. No Airflow import at module level.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping, Sequence

from airflow_ml.exceptions import ConfigError

PRELOAD_ENV = "AIRFLOW_ML_PRELOAD"
PRELOAD_CHOICES = ("auto", "off")
#: What the tasks of a city's DAGs import: each step module (its libraries at its top), what the steps import
#: inside their functions (GX, MLflow's LightGBM flavour, the charts' matplotlib, S3 through s3fs), and the factory
#: and its operators, which a task process imports to build its DAG (Airflow's SDK is importable by then).
TASK_MODULES = (
    "airflow_ml.ml.steps.snapshot_step",
    "airflow_ml.ml.steps.validate_step",
    "airflow_ml.ml.steps.drift_step",
    "airflow_ml.ml.steps.drift_calibration_step",
    "airflow_ml.ml.steps.drift_review_step",
    "airflow_ml.ml.steps.train_step",
    "airflow_ml.ml.steps.register_step",
    "airflow_ml.ml.steps.gate_step",
    "airflow_ml.ml.steps.approve_step",
    "airflow_ml.ml.steps.health_step",
    "airflow_ml.scoring.score_step",
    "great_expectations",
    "mlflow.lightgbm",
    "matplotlib.figure",
    "matplotlib.backends.backend_agg",
    "pyarrow.dataset",
    "s3fs",
    "airflow_ml.factory",
)


def preload_setting(environ: Mapping[str, str] | None = None) -> str:
    """The value of ``AIRFLOW_ML_PRELOAD`` (``auto`` when unset).

    Raises:
        ConfigError: when it is set to anything but ``auto`` or ``off``.
    """
    value = (os.environ if environ is None else environ).get(PRELOAD_ENV, "auto").strip().lower() or "auto"
    if value not in PRELOAD_CHOICES:
        raise ConfigError(
            PRELOAD_ENV,
            [f"{PRELOAD_ENV}={value!r} is not one of {', '.join(PRELOAD_CHOICES)}: set auto (the default) or off"],
        )
    return value


def forks_tasks(argv: Sequence[str], executor: str) -> bool:
    """Whether the Airflow process of command line ``argv`` forks the task processes.

    ``airflow scheduler`` does when ``executor`` (``[core] executor``, possibly a comma-separated list)
    includes the LocalExecutor; ``airflow celery worker`` always does.
    """
    command = list(argv[1:3])
    if command[:1] == ["scheduler"]:
        return any(name.strip().rsplit(".", 1)[-1] == "LocalExecutor" for name in executor.split(","))
    return command == ["celery", "worker"]


def preload_for_workers(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Import :data:`TASK_MODULES` if this process forks task processes and ``AIRFLOW_ML_PRELOAD`` allows it.

    Call it from ``airflow_local_settings.py`` (see the module docstring).

    Args:
        argv: The command line (``sys.argv`` by default).
        environ: The environment (``os.environ`` by default); the executor is read from Airflow's configuration.

    Returns:
        The modules imported (empty when the process runs no task or the setting is ``off``).
    """
    import sys

    if preload_setting(environ) == "off":
        return ()
    from airflow.configuration import conf

    if not forks_tasks(sys.argv if argv is None else argv, conf.get("core", "executor", fallback="")):
        return ()
    for name in TASK_MODULES:
        importlib.import_module(name)
    return TASK_MODULES
