"""DriftReviewOperator: its arguments, its template fields, and ``execute`` on real history files and MLflow.

What the review computes is tested with its step (tests/unit/ml/steps/test_drift_review_step.py).
"""

from __future__ import annotations

import datetime as dt
import json

from airflow.sdk import DAG

from airflow_ml.ml import drift_history as store
from airflow_ml.ml.steps.step_settings import DriftReviewSettings
from airflow_ml.operators.drift_review_operator import DriftReviewOperator
from tests.support.task_runs import OperatorWorld, task_context

SETTINGS = DriftReviewSettings(template="ride_duration", cities={"lisbon": "ride_duration.lisbon", "oslo": "x"})


def review_dag() -> DAG:
    with DAG("ride_duration.drift_review", schedule=None) as dag:
        DriftReviewOperator(task_id="review", settings=SETTINGS.to_dict())
    return dag


def test_init_keeps_the_settings_and_defaults_to_the_configured_data_root() -> None:
    task = review_dag().get_task("review")

    assert isinstance(task, DriftReviewOperator)
    assert DriftReviewSettings.from_dict(task.settings) == SETTINGS
    assert (task.data_root, task.aws_conn_id, task.mlflow_conn_id) == (None, "aws_default", "mlflow_default")


def test_no_field_is_templated() -> None:
    # The settings come from YAML and are never rendered by Jinja.
    assert DriftReviewOperator.template_fields == ()


def test_execute_stores_the_q_values_in_the_citys_record_and_drift_run(world: OperatorWorld) -> None:
    run_id = world.client.create_run(world.client.create_experiment("review-test")).info.run_id
    folder = world.data_root / "snapshots" / "ride_duration" / "lisbon" / "night-1"
    folder.mkdir(parents=True)
    (folder / "drift.json").write_text("{}", encoding="utf-8")
    recorded_at = dt.datetime.now(dt.UTC).isoformat()  # recent enough to be in the family
    rows = [
        {"snapshot_hash": "h", "snapshot_uri": str(folder), "recorded_at": recorded_at, "column": column,
         "kind": "numeric", "statistic": "psi", "value": 0.5, "p_value": p, "basis": "history", "drift_run_id": run_id}
        for column, p in (("a", 1e-9), ("b", 1e-9), ("c", 0.9))
    ]  # fmt: skip
    store.write_rows(store.history_uri(str(world.data_root), "ride_duration", "lisbon"), rows, "h")
    dag = review_dag()

    result = dag.get_task("review").execute(task_context(dag, "review"))

    assert result["tests"] == 3
    assert sorted(result["cities"]["lisbon"]["flagged"]) == ["a", "b"]
    assert result["without_history"] == ["oslo"]
    assert result["left_out"] == {}
    assert result["problems"] == []
    assert json.loads((folder / "drift.json").read_text())["fleet_review"]["would_stop"] is True
    assert "drift_q_fleet.a.psi" in world.client.get_run(run_id).data.metrics
