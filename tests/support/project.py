"""A user's project folder and the ``airflow-ml`` command run in it as a user's shell would, for the CLI tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from airflow_ml.embedded import embedded_environment
from airflow_ml.operators.library_output import MLFLOW_TASK_ENVIRONMENT
from tests.support import REPO
from tests.support.worlds import copy_template

EMBEDDED_KEYS = sorted(embedded_environment(REPO))


def clean_env(**extra: str) -> dict[str, str]:
    """A user's shell: no Airflow or embedded-default variable set; this checkout's ``airflow_ml`` imported."""
    # Nor MLflow's switches that a task run in this test process (dag.test()) set for its own output.
    keep = {
        k: v
        for k, v in os.environ.items()
        if k not in EMBEDDED_KEYS and not k.startswith("AIRFLOW") and k not in MLFLOW_TASK_ENVIRONMENT
    }
    return {**keep, "PYTHONPATH": str(REPO), **extra}


def airflow_ml(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``airflow-ml <args>`` in ``cwd`` with :func:`clean_env`."""
    return subprocess.run(
        [sys.executable, "-m", "airflow_ml.cli", *args],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def make_project(root: Path, cities: tuple[str, ...] = ("berlin", "lisbon")) -> Path:
    """A project folder: the repository's dags/ and expectations/, the ride_duration template, ``cities``.

    The cities have no retries and no schedule.
    """
    shutil.copytree(REPO / "dags", root / "dags", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "expectations", root / "expectations")
    copy_template(root / "dag_templates", "ride_duration")
    for city in cities:
        (root / "dag_templates" / "cities" / f"{city}.yaml").write_text(
            f"city: {city}\ntemplate: ride_duration\ndag:\n  retries: 0\n  schedule: null\n", encoding="utf-8"
        )
    return root
