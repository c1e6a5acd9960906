"""One operator's ``execute`` in a unit test: the factory's task, its inputs resolved, a real MLflow store.

:func:`operator_world` is a tiny demo city (a few hundred rows, few boosting rounds) with its DAG built by the
factory and a real MLflow store (SQLite and local artifacts) wired as ``mlflow_default``. Its
:meth:`OperatorWorld.run` does what the task runner does around ``execute``: it resolves the task's template
fields (the upstream tasks' XComs, given as values) and hands ``execute`` the run's context (run id, DAG run
and conf, the DAG and its Params, the task instance that XComs and links are pushed to).
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.support.mlflow_stores import wire_mlflow
from tests.support.worlds import build_dag, copy_template

#: What the operator worlds' city turns down: a small model, no bootstrap or slices, so each task is quick.
SMALL = """\
training:
  num_boost_round: 8
gate:
  bootstrap: null
  slices: []
"""


#: The run id of every context made here.
RUN_ID = "manual__2026-03-06T00:00:00+00:00"


@dataclass
class PushedXComs:
    """The task instance handed to ``execute``: who it is, and what the task pushes besides its return value."""

    dag_id: str
    task_id: str
    try_number: int = 1
    pushed: dict[str, Any] = field(default_factory=dict)
    #: The downstream tasks the task skipped as it succeeded (``DownstreamTasksSkipped``).
    skipped: list[str] = field(default_factory=list)

    def xcom_push(self, key: str, value: Any) -> None:
        """Keep ``value`` under ``key`` (the links' URLs, the drift verdict)."""
        self.pushed[key] = value


def task_context(dag: Any, task_id: str, conf: dict[str, Any] | None = None, try_number: int = 1) -> dict[str, Any]:
    """The context ``execute`` gets: ``params`` are the DAG's Params under the run's ``conf``; outlet events are
    Airflow's own accessors."""
    from airflow.sdk.execution_time.context import OutletEventAccessors

    conf = conf or {}
    params = {name: dag.params.get_param(name).value for name in dag.params}
    dag_run = SimpleNamespace(conf=conf, run_type="manual", triggering_user_name="tester", consumed_asset_events=[])
    return {
        "run_id": RUN_ID,
        "dag_run": dag_run,
        "dag": dag,
        "params": {**params, **conf},
        "ti": PushedXComs(dag.dag_id, task_id, try_number),
        "task": copy.copy(dag.get_task(task_id)),  # the runner's own copy, where the links keep their URLs
        "logical_date": dt.datetime(2026, 3, 6, tzinfo=dt.UTC),
        "outlet_events": OutletEventAccessors(),
    }


@dataclass
class OperatorWorld:
    """A city's DAG built by the factory, its data root and its MLflow store."""

    dag: Any
    data_root: Path
    store: dict[str, str]
    client: Any

    def task(self, task_id: str) -> Any:
        """A copy of the factory's task (a test may change it without touching the next test's)."""
        return copy.copy(self.dag.get_task(task_id))

    def context(self, task_id: str, conf: dict[str, Any] | None = None, try_number: int = 1) -> dict[str, Any]:
        """The context ``execute`` of ``task_id`` gets in a run of this world's DAG (see :func:`task_context`)."""
        return task_context(self.dag, task_id, conf, try_number)

    def run(self, task_id: str, conf: dict[str, Any] | None = None, **inputs: Any) -> tuple[Any, PushedXComs]:
        """``execute`` of the factory's task with its template fields set to ``inputs``; returns (XCom, ti).

        A task that skips downstream tasks as it succeeds ends ``execute`` with ``DownstreamTasksSkipped``:
        as Airflow's task runner, the run records them (``ti.skipped``) and the task's XCom is what it pushed.
        """
        from airflow.sdk.exceptions import DownstreamTasksSkipped

        task = self.task(task_id)
        for name, value in inputs.items():
            assert name in task.template_fields, f"{task_id}.{name} is no template field"
            setattr(task, name, value)
        context = {**self.context(task_id, conf), "task": task}
        try:
            return task.execute(context), context["ti"]
        except DownstreamTasksSkipped as skip:
            context["ti"].skipped = list(skip.tasks)
            return context["ti"].pushed.get("return_value"), context["ti"]


@contextlib.contextmanager
def operator_world(root: Path, city: str = "lisbon", *, extra: str = SMALL) -> Iterator[OperatorWorld]:
    """A one-city world under ``root`` (see the module's docstring); ``extra`` is YAML appended to the city."""
    from mlflow import MlflowClient

    from airflow_ml.data.demo import write_demo_data

    template = "ride_duration"
    copy_template(root, template)
    (root / "cities" / f"{city}.yaml").write_text(
        f"city: {city}\ntemplate: {template}\ndag:\n  retries: 0\n  schedule: null\n{extra}", encoding="utf-8"
    )
    write_demo_data(root / "data", cities=[city], batch="initial", scale=0.05)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_ML_DATA_ROOT", str(root / "data"))
        store = wire_mlflow(root / "mlflow", mp)
        client = MlflowClient(tracking_uri=store["tracking_uri"], registry_uri=store["tracking_uri"])
        yield OperatorWorld(build_dag(root, f"{template}.{city}"), root / "data", store, client)


def templated_yaml(task: Any) -> dict[str, Any]:
    """The template fields of a factory-built ``task`` that hold something other than an XCom reference or None.

    Issue 11: nothing from YAML is ever rendered by Jinja, so this is empty for every task the factory builds.
    """
    from airflow.sdk.definitions.xcom_arg import XComArg

    return {
        name: getattr(task, name)
        for name in task.template_fields
        if getattr(task, name) is not None and not isinstance(getattr(task, name), XComArg)
    }
