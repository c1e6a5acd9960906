"""Warm task processes: the libraries a task imports, imported once by the process whose forks run the tasks.

In Airflow 3 a task runs in a process that the task SDK's supervisor starts with ``os.fork()``
(``airflow.sdk.execution_time.supervisor``; Airflow 3 dropped ``[core] execute_tasks_new_python_interpreter``).
The supervisor runs in a LocalExecutor worker, which the scheduler forked at its start (``multiprocessing``
with the ``fork`` start method, Linux's default before Python 3.14), or in a pool process that
``airflow celery worker`` forked. A module imported by the scheduler or the Celery worker before they fork is
therefore already in every task's ``sys.modules``: pandas, LightGBM, MLflow and GX are imported once per
worker instead of once per task (seconds each time, most of a short task). Not on macOS, where the supervisor starts
each task with fork and exec. On Python 3.14 (``forkserver`` by default) set ``[scheduler] mp_start_method =
fork``, or list :data:`TASK_MODULES` in ``[core] mp_forkserver_preload``.

Airflow imports ``airflow_local_settings`` in every one of its processes as it starts (``settings.initialize``,
before it configures logging or opens any database connection), from ``$AIRFLOW_HOME/config`` or anywhere on
``sys.path``. The deployment's file calls :func:`preload_for_workers`
(``deploy/airflow/settings/airflow_local_settings.py`` is that file)::

    from airflow_ml.worker_preload import preload_for_workers

    preload_for_workers()

``AIRFLOW_ML_PRELOAD`` chooses: ``auto`` (the default) imports in ``airflow scheduler`` when its executors
include the LocalExecutor and in ``airflow celery worker``, nowhere else (the api-server, the DAG processor and
the triggerer run no task); ``off`` imports nothing. A wrong value is an error only in the processes that
fork tasks; elsewhere it is ignored with a warning. A module that fails to import (a broken install, a missing
``libgomp``) is logged as an error and skipped: the process starts cold and the tasks fail with the real error.

Only modules are imported: no client, Python thread, database connection or GX context is created, so forking
afterwards stays safe. The native pools that do start (pyarrow's jemalloc thread, OpenBLAS) register fork
handlers; OpenMP (LightGBM's) does not, so nothing here may call into LightGBM. No Airflow import at module level.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Mapping, Sequence

from airflow_ml.exceptions import ConfigError

log = logging.getLogger(__name__)

PRELOAD_ENV = "AIRFLOW_ML_PRELOAD"
PRELOAD_CHOICES = ("auto", "off")
#: What the tasks of a city's DAGs import: each step module (its libraries at its top), what the steps import
#: inside their functions (GX, MLflow's LightGBM flavour and SQL stores, the charts' matplotlib, S3 through s3fs),
#: and the factory and its operators, which a task process imports to build its DAG (the fleet's rollback and
#: retention DAGs' too; Airflow's SDK is importable by then). tests/integration/test_warm_task_imports.py fails on
#: a costly module a city's run still imports.
#: Imports only: nothing may call into LightGBM or OpenMP here, since libgomp's pool does not survive a fork.
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
    "airflow_ml.hooks.mlflow_auth",
    "airflow_ml.ml.charts.chart_drawing",
    "airflow_ml.ml.charts.drift_charts",
    "airflow_ml.ml.charts.holdout_charts",
    "airflow_ml.ml.gate.bootstrap",
    "airflow_ml.ml.gate.slices",
    "airflow_ml.templates.gx_context_files",
    "great_expectations",
    "great_expectations.render.renderer.inline_renderer",
    "mlflow.lightgbm",
    # MLflow's SQL stores (the embedded default's SQLite, or a database named as the tracking URI): importing them
    # pulls alembic and mako, about half a second in every task that talks to MLflow. A tracking server (REST) needs
    # none of it; imported all the same, they cost the parent that much once.
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.store.model_registry.sqlalchemy_store",
    "matplotlib.figure",
    "matplotlib.backends.backend_agg",
    "pyarrow.dataset",
    "s3fs",
    "airflow_ml.factory",
    "airflow_ml.factory.maintenance",
    "airflow_ml.factory.rollback",
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

    ``airflow scheduler`` does when ``executor`` (``[core] executor``, possibly a comma-separated list, per team
    after ``;``) includes the LocalExecutor; ``airflow celery worker`` always does.
    """
    command = list(argv[1:3])
    if command[:1] == ["scheduler"]:
        # Airflow's forms: "A,B", "module.path.A", "alias:module.path.A", and per team "A;team1=B,C".
        names = [name for team in executor.split(";") for name in team.split("=", 1)[-1].split(",")]
        return any(name.strip().replace(":", ".").rsplit(".", 1)[-1] == "LocalExecutor" for name in names)
    return command == ["celery", "worker"]


def preload_for_workers(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    modules: Sequence[str] = TASK_MODULES,
) -> tuple[str, ...]:
    """Import ``modules`` if this process forks task processes and ``AIRFLOW_ML_PRELOAD`` allows it.

    Call it from ``airflow_local_settings.py`` (see the module docstring). It never stops the process for a
    broken library: a module that fails to import is logged as an error and skipped.

    Args:
        argv: The command line (``sys.argv`` by default).
        environ: The environment (``os.environ`` by default); the executor is read from Airflow's configuration.
        modules: What to import (:data:`TASK_MODULES` by default).

    Returns:
        The modules imported (empty when the process runs no task or the setting is ``off``).

    Raises:
        ConfigError: when ``AIRFLOW_ML_PRELOAD`` is wrong and this process forks tasks.
    """
    import sys

    try:
        setting: str | None = preload_setting(environ)
    except ConfigError as error:
        setting, wrong = None, error
    if setting == "off":
        return ()
    from airflow.configuration import conf

    if not forks_tasks(sys.argv if argv is None else argv, conf.get("core", "executor", fallback="")):
        if setting is None:
            # Only the processes that fork tasks read it: a typo must not keep the api-server or the DAG
            # processor from starting.
            log.warning("%s; ignored here, since this process runs no task", "; ".join(wrong.problems))
        return ()
    if setting is None:
        raise wrong
    imported = []
    failed: dict[str, list[str]] = {}  # one error line per cause: a missing libgomp fails every step module
    for name in modules:
        try:
            importlib.import_module(name)
        except (ImportError, OSError) as error:  # OSError: a shared library missing (libgomp.so.1 for LightGBM)
            failed.setdefault(f"{type(error).__name__}: {error}", []).append(name)
        else:
            imported.append(name)
    for cause, names in failed.items():
        log.error(
            "%s=auto could not import %s (%s): this process starts cold and the tasks that need it will fail "
            "with this error; repair the install, or set %s=off",
            PRELOAD_ENV,
            ", ".join(names),
            cause,
            PRELOAD_ENV,
        )
    return tuple(imported)


USER_SETTINGS_MODULE = "airflow_local_settings_user"


def chain_user_settings(namespace: dict[str, object], config_dir: str | os.PathLike[str] | None = None) -> str | None:
    """Load a user's own ``airflow_local_settings.py`` from ``config_dir`` and re-export its names in ``namespace``.

    The deployed settings file is found first on ``PYTHONPATH``, so Airflow never imports the one in
    ``$AIRFLOW_HOME/config``: without this, its cluster policies (``task_policy``, ``dag_policy``, ...) would
    silently stop applying. The user's file is imported as module :data:`USER_SETTINGS_MODULE` and its names
    (its ``__all__``, or every name not starting with ``__``) are copied into ``namespace``, the deployed module's
    globals, where Airflow looks for the policies.

    Args:
        namespace: The globals of the deployed ``airflow_local_settings``.
        config_dir: Where to look (``$AIRFLOW_HOME/config`` by default).

    Returns:
        The path of the file loaded, or None when there is none (or it is the deployed file itself).
    """
    import importlib.util
    import sys
    from pathlib import Path

    if config_dir is None:
        from airflow.configuration import AIRFLOW_HOME

        config_dir = Path(AIRFLOW_HOME) / "config"
    path = Path(config_dir) / "airflow_local_settings.py"
    own = namespace.get("__file__")
    if not path.is_file() or (isinstance(own, str) and Path(own).resolve() == path.resolve()):
        return None
    spec = importlib.util.spec_from_file_location(USER_SETTINGS_MODULE, path)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has a source loader
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules[USER_SETTINGS_MODULE] = module
    spec.loader.exec_module(module)
    exported = getattr(module, "__all__", None)
    names = list(exported) if exported is not None else [n for n in vars(module) if not n.startswith("__")]
    namespace.update({name: getattr(module, name) for name in names})
    log.warning(
        "airflow-ml's airflow_local_settings also loaded your %s (as module %s): its %s apply",
        path,
        USER_SETTINGS_MODULE,
        ", ".join(sorted(names)) or "no names",
    )
    return str(path)
