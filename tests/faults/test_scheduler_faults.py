"""Faults under a real deployment (tests/support/stack.py): scheduler, dag-processor, api-server and a
LocalExecutor on PostgreSQL, MLflow server, S3 on moto. Two cities, berlin and lisbon.

While the scheduler runs, lisbon's city file is edited into invalid YAML: the import error is listed by
the REST API with its file, line and fix, and berlin keeps running. Berlin is then triggered twice at once
through the REST API, and the worker process of the first run's training is SIGKILLed mid-training: the
second run waits (``max_active_runs=1``) until the first, retried, has finished. A malformed conf is refused
by the real api-server before any run exists.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.worlds import LEAN

pytestmark = [pytest.mark.integration, pytest.mark.services]

TEMPLATE = "fault_sched"
BERLIN, LISBON = f"{TEMPLATE}.berlin", f"{TEMPLATE}.lisbon"
# An editor's slip: line 5 is indented one space too far.
BROKEN_LISBON = f"city: lisbon\ntemplate: {TEMPLATE}\ndag:\n  schedule: null\n   retries: 2\n"
#: Every city's retries: one, soon.
RETRY_ONCE = "  retries: 1\n  retry_delay_minutes: 0.05\n"
#: The first run's training, slowed so that the test sees it running on any machine: the lean city's 60 rounds
#: train in well under the poll's second on a fast one (CI missed the window and waited out its 420 s). A tiny
#: learning rate keeps early stopping from cutting the rounds short.
SLOW_TRAINING = {"num_boost_round": 20_000, "learning_rate": 0.001}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tests.support.stack import AirflowStack

    root = tmp_path_factory.mktemp("scheduler_faults")
    env = {"AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10"}  # an edited city file is seen in seconds
    with AirflowStack(
        root,
        cities=["berlin", "lisbon"],
        template=TEMPLATE,
        scale=0.1,
        city_extra=LEAN,
        dag_extra=RETRY_ONCE,  # a retry for the worker kill to come
        extra_env=env,
    ) as stack:
        yield stack


def _wait(check: Any, timeout: float, what: str, diagnose: Any = None, every: float = 1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"{what} within {timeout:.0f}s\n{diagnose() if diagnose else ''}")


@pytest.fixture(scope="module")
def broken(stack: Any) -> dict[str, Any]:
    """Lisbon's file broken while the scheduler runs (berlin's retry comes from the stack's ``dag_extra``)."""
    cities = stack.templates_root / "cities"
    (stack.dags_dir / "city_errors.py").write_text(
        # Airflow's safe mode only parses files that mention both "airflow" and "dag", as dags/ files do.
        "# DAG file of the broken city files, like dags/retrain_errors.py\n"
        "from airflow_ml.factory import report_broken_cities\n"
        f"report_broken_cities(templates_root={str(stack.templates_root)!r})\n",
        encoding="utf-8",
    )
    (cities / "lisbon.yaml").write_text(BROKEN_LISBON, encoding="utf-8")

    def listed() -> list[dict[str, Any]]:
        return [e for e in stack.rest.import_errors() if e["filename"].endswith("city_errors.py")]

    errors = _wait(listed, 180, "the broken city file was not listed", stack.processes["dag-processor"].tail)
    assert stack.rest.get(f"/dags/{BERLIN}/tasks/train")["retries"] == 1, "the stack's dag_extra gives one retry"
    return {"errors": errors}


def test_a_city_file_broken_while_the_scheduler_runs_is_listed_with_file_line_and_fix(
    stack: Any, broken: dict[str, Any]
) -> None:
    [error] = broken["errors"]
    text = error["stack_trace"]
    assert "lisbon.yaml" in text
    assert "line 5: invalid YAML: mapping values are not allowed" in text, text
    assert "fix the syntax" in text
    assert "berlin.yaml" not in text
    assert stack.rest.dag(BERLIN)["is_stale"] is False


def test_a_malformed_conf_sent_to_the_api_server_is_refused_and_creates_no_run(stack: Any) -> None:
    stack.rest.unpause(BERLIN)
    before = stack.rest.run_count(BERLIN)
    path = f"/dags/{BERLIN}/dagRuns"

    bad_type = stack.rest.request(
        "POST", path, expect=400, json={"logical_date": None, "conf": {"num_boost_round": "lots"}}
    )
    not_a_mapping = stack.rest.request("POST", path, expect=422, json={"logical_date": None, "conf": "fast please"})

    assert "Invalid input for param num_boost_round: 'lots' is not of type" in bad_type.json()["detail"]
    assert "conf" in not_a_mapping.text
    assert stack.rest.run_count(BERLIN) == before


def _task(stack: Any, run_id: str, task_id: str) -> dict[str, Any] | None:
    return next((ti for ti in stack.rest.task_instances(BERLIN, run_id) if ti["task_id"] == task_id), None)


def _kill_task_process(ti_id: str) -> int:
    """SIGKILL the task process of a task instance (its title is ``airflow worker -- <ti id>``), as an OOM kill."""
    marker = f"airflow worker -- {ti_id}".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if (proc / "cmdline").read_bytes().replace(b"\0", b" ").strip().startswith(marker):
                os.kill(int(proc.name), signal.SIGKILL)
                return int(proc.name)
    raise AssertionError(f"no process titled {marker.decode()!r}")


@pytest.fixture(scope="module")
def twice(stack: Any, broken: dict[str, Any]) -> dict[str, Any]:
    """Berlin triggered twice at once; the first run's training worker is SIGKILLed while it trains."""
    client = stack.mlflow_client()
    first = stack.rest.trigger(BERLIN, SLOW_TRAINING)
    second = stack.rest.trigger(BERLIN, {"promotion_mode": "force", "reason": "fault test: second trigger"})
    second_states: list[str] = []
    killed: dict[str, Any] = {}

    def training_open() -> Any:
        second_states.append(stack.rest.get(f"/dags/{BERLIN}/dagRuns/{second}")["state"])
        ti = _task(stack, first, "train")
        if not ti or ti["state"] != "running":
            return None
        ids = [e.experiment_id for e in client.search_experiments()]
        query = (
            f"tags.`airflow.run_id` = '{first}' and tags.`airflow.task_id` = 'train' and attributes.status = 'RUNNING'"
        )
        runs = client.search_runs(ids, filter_string=query) if ids else []
        return (ti, runs[0]) if runs else None

    ti, open_run = _wait(
        training_open,
        420,
        "the first run's training was never seen running",
        lambda: stack.report(stack.rest.result(BERLIN, first)),
        every=0.2,
    )
    killed["pid"] = _kill_task_process(ti["id"])
    killed["mlflow_run_id"] = open_run.info.run_id
    while stack.rest.get(f"/dags/{BERLIN}/dagRuns/{first}")["state"] not in ("success", "failed"):
        second_states.append(stack.rest.get(f"/dags/{BERLIN}/dagRuns/{second}")["state"])
        time.sleep(2)
    results = [stack.rest.wait(BERLIN, run_id, timeout=600) for run_id in (first, second)]
    return {
        "first": results[0],
        "second": results[1],
        "second_states": second_states,
        "killed": killed,
        "client": client,
    }


def test_a_worker_killed_during_training_is_retried_and_nothing_dangles(stack: Any, twice: dict[str, Any]) -> None:
    first, client, killed = twice["first"], twice["client"], twice["killed"]
    assert first.state == "success", stack.report(first)
    trains = stack.rest.get(f"/dags/{BERLIN}/dagRuns/{first.run_id}/taskInstances/train/tries")["task_instances"]
    assert [t["state"] for t in sorted(trains, key=lambda t: t["try_number"])] == ["failed", "success"]
    snapshot = stack.rest.get(f"/dags/{BERLIN}/dagRuns/{first.run_id}/taskInstances/snapshot")
    assert snapshot["try_number"] == 1, "the retry reuses the run's snapshot"

    version = client.get_model_version(BERLIN, "1")
    assert version.run_id != killed["mlflow_run_id"], "the killed try's model must never be registered"
    trained = client.get_run(version.run_id)
    assert trained.data.tags["airflow.try_number"] == "2"
    assert trained.data.tags["airflow_ml.snapshot_hash"] == version.tags["airflow_ml.snapshot_hash"]
    killed_run = client.get_run(killed["mlflow_run_id"])
    assert killed_run.data.tags["airflow_ml.snapshot_hash"] == version.tags["airflow_ml.snapshot_hash"]
    assert killed_run.data.tags["airflow.try_number"] == "1"
    # The retry closed the run its killed try left open, so nothing stays RUNNING for ever.
    assert killed_run.info.status == "KILLED"
    assert killed_run.data.tags["airflow_ml.abandoned"] == "its try died unfinished; try 2 retried"
    assert not [v for v in client.search_model_versions(f"name='{BERLIN}'") if v.run_id == killed["mlflow_run_id"]]


def test_two_triggers_of_one_city_run_one_after_the_other_with_consistent_aliases(
    stack: Any, twice: dict[str, Any]
) -> None:
    from airflow_ml.data.snapshot import snapshot_location
    from airflow_ml.ml.model_registry import version_by_alias

    first, second, client = twice["first"], twice["second"], twice["client"]
    assert (first.state, second.state) == ("success", "success"), stack.report(second)
    assert "queued" in twice["second_states"], "the second run must wait while the first one runs"
    assert "running" not in twice["second_states"], twice["second_states"]
    first_end = max(first.interval(t)[1] for t, s in first.tasks.items() if s == "success")
    second_start = min(second.interval(t)[0] for t, s in second.tasks.items() if s == "success")
    assert second_start >= first_end

    aliases = {a: version_by_alias(client, BERLIN, a) for a in ("champion", "previous-champion", "challenger")}
    assert {a: v and str(v.version) for a, v in aliases.items()} == {
        "champion": "2",
        "previous-champion": "1",
        "challenger": "2",
    }
    for version, run in (("1", first), ("2", second)):
        tags = client.get_model_version(BERLIN, version).tags
        assert tags["airflow.run_id"] == run.run_id
        assert tags["airflow_ml.snapshot_uri"] == snapshot_location(
            f"{stack.data_root}/snapshots", TEMPLATE, "berlin", run.run_id
        )
    assert len(client.search_model_versions(f"name='{BERLIN}'")) == 2


def test_the_other_city_kept_running_after_the_breakage(
    stack: Any, broken: dict[str, Any], twice: dict[str, Any]
) -> None:
    # Both berlin runs were triggered after lisbon's file broke (the fixture order guarantees it).
    assert (twice["first"].state, twice["second"].state) == ("success", "success")
    assert stack.rest.dag(BERLIN)["is_stale"] is False
    assert stack.rest.run_count(LISBON) == 0
