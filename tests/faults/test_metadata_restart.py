"""PostgreSQL restarted mid-run under a real deployment: Airflow's METADATA database and MLflow's store.

The deployment is :class:`~tests.support.stack.AirflowStack` (api-server, scheduler, dag-processor,
LocalExecutor, ``mlflow server``, S3 on moto) with both its Airflow metadata database and MLflow's backend
store on a PostgreSQL cluster of the test's own (:class:`~tests.support.postgres.PrivatePostgres`), so that
restarting it disturbs no other test. Berlin (two retries, three seconds apart) is triggered through the
REST API; once its ``train`` task runs and its MLflow training run is open, the cluster is restarted with
``pg_ctl restart -m fast``: every connection of every component (scheduler, api-server, dag-processor,
MLflow; the test counts them in ``pg_stat_activity`` first) is cut.

What must hold afterwards: the cut fell inside the training try and its MLflow run; the run ends
``success`` (a try may fail on a cut connection and be retried); the api-server answers and the scheduler
reports healthy; the registry holds exactly one version, it is ``champion`` with the run's snapshot hash,
``challenger`` points at it and nothing else dangles, and no training run is left RUNNING.

What the deployment does when a component dies: the stack runs with ``supervise``, which starts again a
component that exits, as the ``restart: always`` of every service in the project's docker-compose.yaml
does. Observed with Airflow 3.3.2 and MLflow 3.17.2: none died on the restart (SQLAlchemy's
``pool_pre_ping``, on by default in both, replaces a cut pooled connection on its next checkout, and the
task SDK's client retries an execution-API call that failed while the server was down); the train try
survived, so the run finished in one try per task; ``supervised restarts`` in the output (``-s``) says
what happened in a given run, and the test accepts either outcome. The last test shows the supervisor at
work: a SIGKILLed scheduler is started again and heartbeats to the same metadata database.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.support.postgres import PrivatePostgres, private_postgres
from tests.support.worlds import LEAN

pytestmark = [pytest.mark.integration, pytest.mark.services]

TEMPLATE = "fault_metadb"
CITY = "berlin"
DAG_ID = f"{TEMPLATE}.{CITY}"
#: Two retries, three seconds apart: a try cut by the restart is retried soon.
RETRIES = "  retries: 2\n  retry_delay_minutes: 0.05\n"
#: A training run of about 11 s on a fast 2-core machine (4,000 small rounds on 36k rows, no early stopping, then
#: the scoring and logging of so many trees), so that the restart, sent within a poll (0.3 s) of the run being seen
#: open, falls inside it: LEAN's 60 rounds on the usual 11k rows lasted 0.67 s and once ended 17 ms before the cut.
#: This narrows the race to a margin of seconds; the first test checks that the cut did fall inside the run.
SLOW_TRAINING = LEAN.replace(
    "training:\n  num_boost_round: 60\n",
    "training:\n  num_boost_round: 4000\n  early_stopping_rounds: null\n"
    "  params:\n    num_leaves: 7\n    learning_rate: 0.01\n",
)
assert SLOW_TRAINING != LEAN, "LEAN's training block changed: update SLOW_TRAINING"
#: Components a supervisor starts again when they exit (docker compose's ``restart: always``).
SUPERVISED = ("scheduler", "dag-processor", "api-server", "mlflow")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, PrivatePostgres]]:
    from tests.support.stack import AirflowStack

    root = tmp_path_factory.mktemp("metadata_restart")
    with private_postgres() as postgres:
        dsn = f"postgresql://postgres@127.0.0.1:{postgres.port}/postgres"
        with AirflowStack(
            root,
            cities=[CITY],
            template=TEMPLATE,
            scale=0.5,
            city_extra=SLOW_TRAINING,
            dag_extra=RETRIES,
            postgres_dsn=dsn,
            supervise=SUPERVISED,
        ) as stack:
            yield stack, postgres


def _answer(call: Callable[[], Any], timeout: float, what: str) -> Any:
    """``call()``'s value once the api-server answers it (it may answer 500, or not at all, while its
    database restarts)."""
    from tests.support.airflow_rest import AirflowRestError

    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            return call()
        except (AirflowRestError, httpx.HTTPError, json.JSONDecodeError) as exc:
            last = f"{type(exc).__name__}: {str(exc)[:300]}"
        time.sleep(1)
    raise AssertionError(f"{what}: no answer within {timeout:.0f}s (last: {last})")


def _train(stack: Any, run_id: str) -> dict[str, Any] | None:
    return next((ti for ti in stack.rest.task_instances(DAG_ID, run_id) if ti["task_id"] == "train"), None)


def _open_training(client: Any, run_id: str) -> Any:
    """The MLflow run of ``train`` of the DAG run ``run_id`` while it is open, else None."""
    ids = [e.experiment_id for e in client.search_experiments()]
    query = f"tags.`airflow.run_id` = '{run_id}' and tags.`airflow.task_id` = 'train' and attributes.status = 'RUNNING'"
    runs = client.search_runs(ids, filter_string=query) if ids else []
    return runs[0] if runs else None


@pytest.fixture(scope="module")
def restarted(deployment: tuple[Any, PrivatePostgres]) -> dict[str, Any]:
    """One berlin run; its PostgreSQL (metadata and MLflow store) restarted while ``train`` trains."""
    stack, postgres = deployment
    client = stack.mlflow_client()
    run_id = stack.rest.trigger(DAG_ID, {})
    deadline = time.monotonic() + 420
    while True:
        train = _train(stack, run_id)
        if train and train["state"] == "running":
            training = _open_training(client, run_id)
            if training is not None:
                break
        if time.monotonic() > deadline or (train and train["state"] in ("success", "failed", "upstream_failed")):
            raise AssertionError(
                f"train never seen training: {train}\n{stack.report(stack.rest.result(DAG_ID, run_id))}"
            )
        time.sleep(0.3)
    held = _connections(postgres)
    before = postgres.postmaster_start()
    cut_at = time.time()
    postgres.restart()
    back_at = time.time()
    after = postgres.postmaster_start()
    _answer(lambda: stack.rest.get("/monitor/health"), 180, "the api-server after the restart")
    answered_at = time.time()

    def finished() -> Any:
        result = stack.rest.result(DAG_ID, run_id)
        return result if result.state in ("success", "failed") else None

    result = None
    deadline = time.monotonic() + 420
    while result is None and time.monotonic() < deadline:
        result = _answer(finished, 180, "the run's state")
        if result is None:
            time.sleep(2)
    result = result or stack.rest.result(DAG_ID, run_id)
    tries = _answer(
        lambda: stack.rest.get(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/train/tries")["task_instances"],
        60,
        "train's tries",
    )
    seen = {
        "train_before": train,
        "held": held,
        "training": training.info.run_id,
        "postmaster": (before, after),
        "cut_at": cut_at,
        "back_at": back_at,
        "answered_at": answered_at,
        "tries": sorted(tries, key=lambda t: t["try_number"]),
        "restarts": list(stack.restarts),
    }
    print(f"\nPostgreSQL restarted in {back_at - cut_at:.1f}s; api-server answered {answered_at - back_at:.1f}s later")
    ended = client.get_run(training.info.run_id).info
    if ended.end_time:
        print(f"the training run lasted {(ended.end_time - ended.start_time) / 1000:.1f}s")
    print(f"train tries: {[(t['try_number'], t['state']) for t in seen['tries']]}")
    print(f"supervised restarts: {seen['restarts'] or 'none'}")
    print(f"connections cut by the restart, by database: {held}")
    return {"stack": stack, "postgres": postgres, "result": result, **seen}


def _connections(postgres: PrivatePostgres) -> dict[str, int]:
    """How many server connections each database of the cluster has right now."""
    import psycopg2

    connection = psycopg2.connect(host="127.0.0.1", port=postgres.port, user="postgres", dbname="postgres")
    with contextlib.closing(connection), connection.cursor() as cursor:
        cursor.execute(
            "SELECT datname, count(*) FROM pg_stat_activity WHERE datname IS NOT NULL "
            "AND pid <> pg_backend_pid() GROUP BY datname"
        )
        return {str(name): int(count) for name, count in cursor.fetchall()}


def test_the_restart_fell_inside_the_training_try(restarted: dict[str, Any]) -> None:
    before, after = restarted["postmaster"]
    assert before != after, "PostgreSQL did not restart"
    running = restarted["train_before"]
    assert running["state"] == "running"
    [cut] = [t for t in restarted["tries"] if t["try_number"] == running["try_number"]]
    started = dt.datetime.fromisoformat(cut["start_date"]).timestamp()
    assert started < restarted["cut_at"], (cut, restarted["cut_at"])
    if cut["end_date"]:
        assert dt.datetime.fromisoformat(cut["end_date"]).timestamp() > restarted["cut_at"], cut
    # The MLflow training run was open when the cluster went down and finished after it came back.
    training = restarted["stack"].mlflow_client().get_run(restarted["training"]).info
    assert training.start_time / 1000 < restarted["cut_at"] < restarted["back_at"] < training.end_time / 1000, training
    # The components held connections to both databases, and the restart cut them all.
    stack = restarted["stack"]
    metadata, mlflow = (url.rsplit("/", 1)[1] for url in (stack.metadata_db_url, stack.mlflow_db_url))
    assert restarted["held"].get(metadata, 0) >= 1, restarted["held"]
    assert restarted["held"].get(mlflow, 0) >= 1, restarted["held"]


def test_the_run_succeeds_after_the_metadata_database_restarts(restarted: dict[str, Any]) -> None:
    stack, result = restarted["stack"], restarted["result"]
    assert result.state == "success", f"{stack.report(result)}\nsupervised restarts: {restarted['restarts']}"
    assert set(result.tasks.values()) <= {"success", "skipped"}, result.tasks
    assert restarted["tries"][-1]["state"] == "success"


def test_the_api_server_and_the_scheduler_recovered(restarted: dict[str, Any]) -> None:
    stack = restarted["stack"]
    health = stack.rest.get("/monitor/health")
    assert health["metadatabase"]["status"] == "healthy", health
    assert health["scheduler"]["status"] == "healthy", health
    assert stack.rest.dag(DAG_ID) is not None
    for name in ("api-server", "scheduler", "dag-processor", "mlflow"):
        assert stack.processes[name].alive, stack.processes[name].tail()
    assert httpx.get(f"{stack.mlflow_url}/health", timeout=10).status_code == 200


def test_the_registry_holds_one_champion_with_the_runs_snapshot_and_nothing_dangles(
    restarted: dict[str, Any],
) -> None:
    from airflow_ml.data.snapshot import MANIFEST, snapshot_location

    stack, result = restarted["stack"], restarted["result"]
    assert result.state == "success", stack.report(result)
    client = stack.mlflow_client()
    versions = client.search_model_versions(f"name='{DAG_ID}'")
    assert [str(v.version) for v in versions] == ["1"], "one run, one version: no duplicate from a retry"
    champion = client.get_model_version_by_alias(DAG_ID, "champion")
    assert str(champion.version) == "1"
    assert champion.tags["airflow.run_id"] == result.run_id
    snapshot = snapshot_location(f"{stack.data_root}/snapshots", TEMPLATE, CITY, result.run_id)
    bucket, key = f"{snapshot}/{MANIFEST}".removeprefix("s3://").split("/", 1)
    manifest = json.loads(stack.s3_client().get_object(Bucket=bucket, Key=key)["Body"].read())
    assert champion.tags["airflow_ml.snapshot_hash"] == manifest["content_hash"]
    aliases = {alias: str(version) for alias, version in client.get_registered_model(DAG_ID).aliases.items()}
    assert aliases == {"champion": "1", "challenger": "1"}, aliases
    assert not [a for a in aliases if a.startswith("challenger/")]
    # One finished training run for the DAG run's registered version; any cut try's run is closed, not RUNNING.
    trainings = client.search_runs(
        [client.get_run(champion.run_id).info.experiment_id],
        filter_string=f"tags.`airflow.run_id` = '{result.run_id}' and tags.`airflow.task_id` = 'train'",
    )
    assert champion.run_id in [r.info.run_id for r in trainings]
    assert not [r.info.run_id for r in trainings if r.info.status == "RUNNING"], trainings


def test_a_scheduler_that_dies_is_started_again_by_the_supervisor_and_reports_healthy(
    restarted: dict[str, Any],
) -> None:
    """What the deployment does when the scheduler does die (here: SIGKILL, as an OOM kill): the supervisor
    (``restart: always``) starts it again and it heartbeats to the same metadata database."""
    stack = restarted["stack"]
    scheduler = stack.processes["scheduler"]
    old_pid, restarts_before = scheduler.pid, len(stack.restarts)

    scheduler.kill()

    def heartbeat() -> float:
        beat = stack.rest.get("/monitor/health")["scheduler"]["latest_scheduler_heartbeat"]
        return dt.datetime.fromisoformat(beat).timestamp() if beat else 0.0

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        # A heartbeat later than the supervisor's restart is the new scheduler's (the old one is dead).
        if len(stack.restarts) > restarts_before and scheduler.alive and heartbeat() > stack.restarts[-1][2]:
            break
        time.sleep(1)
    else:
        raise AssertionError(f"the scheduler did not come back: {stack.restarts}\n{scheduler.tail()}")
    assert scheduler.pid != old_pid
    assert stack.restarts[restarts_before][0] == "scheduler"
    assert stack.rest.get("/monitor/health")["scheduler"]["status"] == "healthy"
