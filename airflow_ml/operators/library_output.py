"""MLflow's and Great Expectations' output inside a task: their records at their own level, no progress bars.

Airflow files what a task writes to stderr as ERROR lines. MLflow, when imported, gives its loggers a handler of
their own on stderr (so its INFO lines, "Downloading artifacts" among them, show red in a successful task) and
draws tqdm progress bars there while it downloads artifacts. :func:`library_output_to_task_log` undoes both for the
task's process: the libraries' records propagate to the root logger, which the task runner files in the task's log
at the record's level, and the progress bars are off (GX's are turned off where its context is made,
:mod:`airflow_ml.validation.runner`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import MutableMapping

#: MLflow's switches, read when it is imported (logging) and on each download (progress bars).
MLFLOW_TASK_ENVIRONMENT = {"MLFLOW_CONFIGURE_LOGGING": "false", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
#: The loggers that MLflow configures when imported (its own, and the database migrations' at WARNING), and GX's.
LIBRARY_LOGGERS = {"mlflow": None, "alembic": logging.WARNING, "huey": logging.WARNING, "great_expectations": None}


def library_output_to_task_log(environ: MutableMapping[str, str] | None = None) -> None:
    """Send MLflow's and GX's log records to the task's log at their level, and turn MLflow's progress bars off.

    Called before a task's ``execute``: MLflow is then not yet imported in a task process (DAG files never import
    it), so it leaves its loggers alone; when it is imported already (a ``dag.test()`` in a process that used
    MLflow before), its stderr handlers are removed here.

    Args:
        environ: The environment to set MLflow's switches in (``os.environ`` by default).
    """
    (os.environ if environ is None else environ).update(MLFLOW_TASK_ENVIRONMENT)
    for name, floor in LIBRARY_LOGGERS.items():
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True
        if floor is not None and logger.level < floor:
            logger.setLevel(floor)
