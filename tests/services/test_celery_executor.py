"""Two cities at once on a real CeleryExecutor deployment: a Celery worker (concurrency 2) on Redis.

The stack (tests/support/stack.py) is the LocalExecutor one with ``airflow celery worker`` added: the
scheduler sends each task to a queue of the stack's own on a Redis broker, the worker runs it, results go
to PostgreSQL. Both cities' DAGs are triggered together through the REST API; some task of one city must
run while a task of the other runs (the task instances' start and end dates), which only a worker running
two tasks at once can do, and each city must end with its own champion. (Any pair of tasks, not the two
``train`` tasks alone: on small data a train task takes two seconds, and which tasks meet depends on the
machine's load.)
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from airflow_ml.data.snapshot import snapshot_location
from tests.support.airflow_rest import RunResult
from tests.support.mlflow_stores import logged_decision
from tests.support.preload_probe import run_preload_probe
from tests.support.processes import wait_until
from tests.support.stack import AirflowStack

pytestmark = [pytest.mark.integration, pytest.mark.services]

TEMPLATE = "svc_celery"
CITIES = ("berlin", "lisbon")
CONF = {"num_boost_round": 40, "reason": "services tier: two cities on one Celery worker"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    root = tmp_path_factory.mktemp("svc_celery")
    with AirflowStack(root, cities=CITIES, template=TEMPLATE, executor="CeleryExecutor", worker_concurrency=2) as stack:
        yield stack


@pytest.fixture(scope="module")
def runs(stack: AirflowStack) -> dict[str, RunResult]:
    """Both cities triggered back to back, then waited for: city → finished run."""
    started = {city: stack.rest.trigger(stack.dag_id(city), CONF) for city in CITIES}
    return {city: stack.rest.wait(stack.dag_id(city), run_id, timeout=900) for city, run_id in started.items()}


def test_both_cities_succeed_on_the_celery_worker(stack: AirflowStack, runs: dict[str, RunResult]) -> None:
    queue = stack.env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"]
    for run in runs.values():
        assert run.state == "success", stack.report(run)
        # Every task succeeded but the approval, which the gate skipped (nobody was asked).
        assert run.tasks == {**dict.fromkeys(run.tasks, "success"), "approve": "skipped"}, stack.report(run)
        # Every task was queued on the stack's own Celery queue, so the Celery worker ran each one that ran.
        assert {ti["queue"] for ti in run.task_instances} == {queue}
    # ... and the worker's log shows every one of them as a Celery task that succeeded. Celery logs that line
    # after the task has reported its state to Airflow, so the last one may still be on its way.
    worker = stack.processes["celery-worker"]
    expected = sum(ti["state"] != "skipped" for run in runs.values() for ti in run.task_instances)  # each run

    def succeeded() -> int:
        text = worker.log.read_text(errors="replace")
        return len(re.findall(r"Task execute_workload\[[0-9a-f-]+\] succeeded", text))

    wait_until(lambda: succeeded() >= expected, timeout=60, what="the worker's log", diagnose=worker.tail)
    assert succeeded() == expected, worker.tail()


def test_the_two_cities_run_at_the_same_time_on_one_worker(stack: AirflowStack, runs: dict[str, RunResult]) -> None:
    for run in runs.values():
        assert run.state == "success", stack.report(run)
    first, second = (
        {task: runs[city].interval(task) for task, state in runs[city].tasks.items() if state == "success"}
        for city in CITIES
    )
    overlapping = [
        (a, b)
        for a, (a_start, a_end) in first.items()
        for b, (b_start, b_end) in second.items()
        if a_start < b_end and b_start < a_end
    ]
    ran = {
        city: {t: f"{s:%T.%f}-{e:%T.%f}" for t, (s, e) in tasks.items()}
        for city, tasks in zip(CITIES, (first, second), strict=True)
    }
    assert overlapping, f"no task of {CITIES[0]} ran while one of {CITIES[1]} ran: {ran}"


def test_each_city_has_its_own_champion(stack: AirflowStack, runs: dict[str, RunResult]) -> None:
    client = stack.mlflow_client()
    training_runs = set()
    for city, run in runs.items():
        assert run.state == "success", stack.report(run)
        model = stack.dag_id(city)

        champion = client.get_model_version_by_alias(model, "champion")

        assert champion.version == "1"
        assert champion.tags["airflow_ml.city"] == city
        assert champion.tags["airflow.run_id"] == run.run_id
        assert champion.tags["gate.decision"] == "promoted"
        assert logged_decision(client, model, champion.version)["trigger_reason"] == CONF["reason"]
        assert champion.tags["airflow_ml.snapshot_uri"] == snapshot_location(
            f"{stack.data_root}/snapshots", TEMPLATE, city, run.run_id
        )
        assert client.get_run(champion.run_id).data.params["num_boost_round"] == str(CONF["num_boost_round"])
        training_runs.add(champion.run_id)
    assert len(training_runs) == len(CITIES)


def test_a_task_process_on_the_celery_worker_starts_with_the_tasks_libraries_already_imported(
    stack: AirflowStack,
) -> None:
    # As docker-compose.yaml's worker: airflow_local_settings makes `airflow celery worker` import them before
    # its pool forks; with the CeleryExecutor the scheduler imports nothing more.
    result = run_preload_probe(stack)

    assert result.state == "success", stack.report(result)
    assert result.tasks == {"inherited": "success"}
