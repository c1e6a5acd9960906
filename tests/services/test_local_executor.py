"""A city's DAG on a real deployment (LocalExecutor): triggered through the api-server's REST API with a conf.

The stack (tests/support/stack.py) runs Airflow's scheduler, dag-processor and api-server on a PostgreSQL
metadata database, ``mlflow server`` on PostgreSQL, and S3 through moto in server mode (the data root).
The run is triggered as the UI's trigger form does (``POST /api/v2/dags/{dag_id}/dagRuns`` with a conf), and
the outcome is read where a user would read it: the REST API, the MLflow server's registry, the bucket.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_ml.data.snapshot import MANIFEST, snapshot_location
from tests.support.airflow_rest import RunResult
from tests.support.mlflow_stores import logged_decision
from tests.support.preload_probe import run_preload_probe
from tests.support.stack import AirflowStack

pytestmark = [pytest.mark.integration, pytest.mark.services]

TEMPLATE = "svc_local"
CITY = "lisbon"
DAG_ID = f"{TEMPLATE}.{CITY}"
#: What a user types into the trigger form: a short training, a forced promotion and why.
CONF = {"num_boost_round": 25, "promotion_mode": "force", "reason": "services tier: first model of the city"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    with AirflowStack(tmp_path_factory.mktemp("svc_local"), cities=[CITY], template=TEMPLATE) as stack:
        yield stack


@pytest.fixture(scope="module")
def run(stack: AirflowStack) -> RunResult:
    """The one run of the module, triggered through the REST API with :data:`CONF`."""
    return stack.run(DAG_ID, CONF, timeout=600)


def _s3_json(stack: AirflowStack, uri: str) -> dict[str, Any]:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    return dict(json.loads(stack.s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()))


def test_a_run_triggered_through_the_api_with_a_conf_succeeds(stack: AirflowStack, run: RunResult) -> None:
    assert run.state == "success", stack.report(run)
    assert run.conf == CONF
    assert run.tasks == {
        **dict.fromkeys(["snapshot", "validate", "drift", "train", "register", "gate", "health_check"], "success"),
        "approve": "skipped",  # by the gate: nobody was asked
    }, stack.report(run)


def test_no_task_of_the_successful_run_logs_an_error(stack: AirflowStack, run: RunResult) -> None:
    # Read as the UI's log pane reads it. MLflow's stderr handler and progress bars ("Downloading artifacts")
    # were filed as ERROR lines, and so was the link's XCom that a skipped drift check never pushed.
    assert run.state == "success", stack.report(run)
    ran = [task_id for task_id, state in run.tasks.items() if state != "skipped"]  # a skipped task has no try
    assert len(ran) == len(run.tasks) - 1
    for task_id in ran:
        path = f"/dags/{DAG_ID}/dagRuns/{run.run_id}/taskInstances/{task_id}/logs/1"
        content = stack.rest.get(path, headers={"Accept": "application/json"})["content"]
        events = [line for line in content if isinstance(line, dict) and line.get("timestamp")]
        errors = [line for line in content if str(line.get("level", "")).lower() in ("error", "critical")]

        assert events, (task_id, content)  # the task's own log, not a "not found" notice
        assert not errors, (task_id, errors)
        assert not [line for line in content if "Downloading artifacts" in str(line.get("event"))], task_id


def test_the_registry_holds_the_champion_with_its_lineage(stack: AirflowStack, run: RunResult) -> None:
    assert run.state == "success", stack.report(run)
    client = stack.mlflow_client()

    champion = client.get_model_version_by_alias(DAG_ID, "champion")

    assert champion.version == "1"
    assert client.get_model_version_by_alias(DAG_ID, "challenger").version == "1"
    tags = champion.tags
    snapshot = snapshot_location(f"{stack.data_root}/snapshots", TEMPLATE, CITY, run.run_id)
    manifest = _s3_json(stack, f"{snapshot}/{MANIFEST}")
    assert (tags["airflow_ml.city"], tags["airflow_ml.template"]) == (CITY, TEMPLATE)
    assert (tags["airflow.dag_id"], tags["airflow.run_id"], tags["airflow.task_id"]) == (DAG_ID, run.run_id, "register")
    assert tags["airflow_ml.snapshot_uri"] == snapshot
    assert tags["airflow_ml.snapshot_hash"] == manifest["content_hash"]
    assert manifest["city"] == CITY
    assert manifest["source"] == f"{stack.data_root}/raw/trips/{CITY}"
    assert tags["mlflow_run_id"] == champion.run_id


def test_the_decision_records_the_mode_and_the_trigger_conf(stack: AirflowStack, run: RunResult) -> None:
    assert run.state == "success", stack.report(run)
    client = stack.mlflow_client()
    champion = client.get_model_version_by_alias(DAG_ID, "champion")

    tags = champion.tags

    assert tags["gate.decision"] == "forced"
    assert tags["gate.mode"] == CONF["promotion_mode"]
    assert tags["gate.reason"].startswith(f"forced by the trigger ({CONF['reason']})")
    assert tags["gate.baseline_version"] == "null"  # the city had no champion
    assert f"run `{run.run_id}` of DAG `{DAG_ID}`" in champion.description
    decision = logged_decision(client, DAG_ID, champion.version)  # the trigger is in the record, not in tags
    assert (decision["trigger_reason"], decision["airflow_run_id"]) == (CONF["reason"], run.run_id)
    assert (decision["run_type"], decision["triggered_by_user"]) == ("manual", "admin")
    snapshot = snapshot_location(f"{stack.data_root}/snapshots", TEMPLATE, CITY, run.run_id)
    beside_snapshot = _s3_json(stack, f"{snapshot}/decision.json")
    assert (beside_snapshot["decision"], beside_snapshot["mode"]) == ("forced", "force")
    assert beside_snapshot["trigger_reason"] == CONF["reason"]
    assert beside_snapshot["challenger_version"] == "1"


def test_the_conf_reached_the_training_run(stack: AirflowStack, run: RunResult) -> None:
    assert run.state == "success", stack.report(run)
    client = stack.mlflow_client()
    champion = client.get_model_version_by_alias(DAG_ID, "champion")

    training = client.get_run(champion.run_id)

    assert training.data.params["num_boost_round"] == str(CONF["num_boost_round"])
    assert int(training.data.tags["best_iteration"]) <= CONF["num_boost_round"]
    assert training.data.tags["airflow.run_id"] == run.run_id
    assert training.data.tags["airflow.task_id"] == "train"
    assert client.get_experiment(training.info.experiment_id).name == DAG_ID


def test_a_task_process_starts_with_the_tasks_libraries_already_imported(stack: AirflowStack) -> None:
    # The stack runs as docker-compose.yaml does: airflow_local_settings makes the scheduler import the tasks'
    # libraries before its LocalExecutor forks its workers, whose supervisors fork each task process.
    result = run_preload_probe(stack)

    assert result.state == "success", stack.report(result)
    assert result.tasks == {"inherited": "success"}


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        # The form writes its bounds as exclusive ones (Airflow's number field clamps to minimum/maximum); without
        # the run-conf plugin, which names the inclusive bound, Airflow's own message names the exclusive one.
        (
            {"num_boost_round": 0},
            "Invalid input for param num_boost_round: 0 is less than or equal to the minimum of 0",
        ),
        ({"promotion_mode": "always"}, "Invalid input for param promotion_mode: 'always' is not one of"),
        ({"learning_rate": "fast"}, "Invalid input for param learning_rate: 'fast' is not of type"),
    ],
)
def test_the_api_server_refuses_a_malformed_conf_and_creates_no_run(
    stack: AirflowStack, conf: dict[str, Any], message: str
) -> None:
    before = stack.rest.run_count(DAG_ID)

    response = stack.rest.request(
        "POST", f"/dags/{DAG_ID}/dagRuns", expect=400, json={"logical_date": None, "conf": conf}
    )

    assert response.json()["detail"].startswith(message), response.text
    assert stack.rest.run_count(DAG_ID) == before
