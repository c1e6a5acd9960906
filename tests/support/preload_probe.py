"""A DAG whose one task fails unless its process started with the tasks' libraries already imported.

The DAG file imports none of them, so a task finds them in ``sys.modules`` only if the process that forked it
(a LocalExecutor worker, a Celery pool process) had imported them: what ``AIRFLOW_ML_PRELOAD`` does
(airflow_ml/worker_preload.py). Used by the services tests of both executors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.support.airflow_rest import RunResult
    from tests.support.stack import AirflowStack

PROBE_DAG = "svc_preload_probe"
HEAVY = ("pandas", "lightgbm", "mlflow", "great_expectations", "airflow_ml.ml.steps.train_step", "airflow_ml.factory")
_PROBE = f"""\
import sys

from airflow.sdk import dag, task

HEAVY = {HEAVY!r}


@dag(dag_id={PROBE_DAG!r}, schedule=None)
def probe():
    @task
    def inherited():
        missing = [name for name in HEAVY if name not in sys.modules]
        if missing:
            raise RuntimeError(f"the task process started without {{missing}}")

    inherited()


probe()
"""


def run_preload_probe(stack: AirflowStack, *, timeout: float = 300) -> RunResult:
    """Add the probe's DAG file to the running ``stack``, wait for its parse, run it and return the run."""
    (stack.dags_dir / "preload_probe.py").write_text(_PROBE, encoding="utf-8")
    stack.rest.wait_for_dag(PROBE_DAG, timeout=timeout)
    return stack.run(PROBE_DAG, timeout=timeout)
