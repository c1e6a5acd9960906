"""A warm worker's task imports nothing heavy of its own: what a city's run imports is in TASK_MODULES.

airflow_ml/worker_preload.py imports :data:`~airflow_ml.worker_preload.TASK_MODULES` in the process whose forks run
the tasks; a module a task still imports lazily is paid again in every task process. A fresh interpreter imports
TASK_MODULES, then runs a city's DAG twice with ``dag.test()`` (a weak champion, then a challenger that beats it, so
that every task runs: drift and the gate load the champion, the health check runs) on the embedded default
(SQLite MLflow store, local artifacts), and reports what the runs imported beyond it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.mlflow_stores import wire_mlflow
from tests.support.processes import run_fresh_python
from tests.support.worlds import make_city_world

pytestmark = pytest.mark.integration
CITY = "lisbon"
TEMPLATE = "warm_imports"
#: Modules whose first import costs a task process time: these libraries, and MLflow's SQL stores (alembic and mako
#: come with them, about half a second). Their own lazy parts (a few milliseconds each) are left out; every module
#: of airflow_ml is checked.
COSTLY = (
    *("great_expectations", "lightgbm", "sklearn", "scipy", "matplotlib", "dask", "distributed", "s3fs"),
    *("alembic", "mako", "mlflow.pyfunc", "mlflow.lightgbm"),
    *("mlflow.store.tracking.sqlalchemy_store", "mlflow.store.model_registry.sqlalchemy_store"),
)
RUNS = """\
import importlib, json, sys
from pathlib import Path

from airflow_ml.worker_preload import TASK_MODULES

for name in TASK_MODULES:
    importlib.import_module(name)
before = set(sys.modules)
from tests.support.worlds import build_dag

states = []
for conf in ({{"num_boost_round": 20}}, {{}}):
    run = build_dag(Path({root!r}), {dag_id!r}).test(run_conf=conf)
    states.append({{ti.task_id: str(ti.state) for ti in run.get_task_instances()}})
print(json.dumps({{"states": states, "new": sorted(set(sys.modules) - before)}}))
"""


def test_a_warm_task_process_imports_no_heavy_module_of_its_own(
    tmp_path: Path, airflow_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A dags folder of its own: dag.test() parses every file of its dags folder, and the session's holds other
    # tests' DAG files, whose imports a task process (which parses only its own DAG's file) never makes.
    dags = tmp_path / "dags"
    dags.mkdir()
    root = tmp_path / "world"
    data_root = make_city_world(root, dags, CITY, template=TEMPLATE)
    wire_mlflow(tmp_path / "mlflow", monkeypatch)
    env = {**os.environ, "AIRFLOW_ML_DATA_ROOT": str(data_root), "AIRFLOW__CORE__DAGS_FOLDER": str(dags)}

    found = run_fresh_python(RUNS.format(root=str(root), dag_id=f"{TEMPLATE}.{CITY}"), env=env, cwd=tmp_path)

    # Each run's challenger was promoted (the first had no champion, the second beat the weak one): every task ran
    # but the approval, which nobody is asked.
    promoted = {
        **dict.fromkeys(("snapshot", "validate", "drift", "train", "register", "gate", "health_check"), "success"),
        "approve": "skipped",
    }
    assert found["states"] == [promoted, promoted]
    imported = [name for name in found["new"] if name.startswith("airflow_ml.") or name in COSTLY]
    assert imported == [], f"add to TASK_MODULES what a task imported: {', '.join(imported)}"
