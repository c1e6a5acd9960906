"""MLflow's and GX's output in a task: records at their level through the root logger, no progress bars."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap

import pytest

from airflow_ml.operators.library_output import MLFLOW_TASK_ENVIRONMENT, library_output_to_task_log


def test_mlflow_imported_before_logs_through_the_root_logger_not_its_stderr_handler() -> None:
    # MLflow gives its logger a stderr handler when imported: in a task, its INFO lines became ERROR lines.
    # A fresh interpreter, so that the handlers this test removes are MLflow's own, as a dag.test() process has.
    script = textwrap.dedent(
        """
        import logging, os, sys
        import mlflow
        before = [type(h).__name__ for h in logging.getLogger("mlflow").handlers]
        from airflow_ml.operators.library_output import MLFLOW_TASK_ENVIRONMENT, library_output_to_task_log
        library_output_to_task_log()
        seen = []
        class Keep(logging.Handler):
            def emit(self, record):
                seen.append((record.name, record.levelname, record.getMessage()))
        logging.getLogger().addHandler(Keep())
        logging.getLogger().setLevel(logging.INFO)
        logging.getLogger("mlflow.store.artifact").info("Downloading artifacts")
        print(before, seen, os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"])
        """
    )
    # Without the switches a task run earlier in this test process (dag.test()) left in its environment.
    env = {k: v for k, v in os.environ.items() if k not in MLFLOW_TASK_ENVIRONMENT}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=True
    )

    assert done.stdout.strip() == (
        "['StreamHandler'] [('mlflow.store.artifact', 'INFO', 'Downloading artifacts')] false"
    ), done.stderr
    assert "Downloading artifacts" not in done.stderr


def test_mlflow_imported_after_configures_no_logger_and_draws_no_progress_bar() -> None:
    from mlflow.environment_variables import MLFLOW_CONFIGURE_LOGGING, MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR

    environ: dict[str, str] = {}

    with pytest.MonkeyPatch.context() as mp:
        library_output_to_task_log(environ)
        for name, value in environ.items():
            mp.setenv(name, value)

        assert MLFLOW_CONFIGURE_LOGGING.get() is False  # read by `import mlflow` in the task
        assert MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.get() is False  # read on each download


def test_the_migrations_chatter_stays_below_warning() -> None:
    alembic = logging.getLogger("alembic")
    level = alembic.level
    try:
        alembic.setLevel(logging.NOTSET)
        library_output_to_task_log({})
        assert alembic.getEffectiveLevel() == logging.WARNING
        assert alembic.propagate
    finally:
        alembic.setLevel(level)
