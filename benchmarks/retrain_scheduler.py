"""The scheduler mode of ``retrain.py``: one city's retrain DAG as production runs it.

A real deployment on the embedded default: ``airflow api-server``, ``airflow scheduler`` (LocalExecutor) and
``airflow dag-processor`` on the world's SQLite metadata database (Airflow 3.3 refuses no executor on SQLite; the
LocalExecutor is its default), each task in a process of its own that the task SDK's supervisor forks in a
LocalExecutor worker. The run is triggered through the REST API once every component is up, and timed from
its creation (``dag_run.created_at``) to its end (``dag_run.end_date``), as the metadata database records them.

``preload`` runs the deployment with ``deploy/airflow/settings`` on PYTHONPATH, the ``airflow_local_settings``
that docker-compose.yaml uses, and ``AIRFLOW_ML_PRELOAD`` set to ``auto`` (warm: the scheduler imports the tasks'
libraries once, before it forks its workers) or ``off`` (cold: every task imports them). The scheduler settings
docker-compose.yaml ships (:data:`SHIPPED`) apply unless the caller leaves them out.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import yaml

REPO = Path(__file__).resolve().parent.parent
SETTINGS = REPO / "deploy" / "airflow" / "settings"
#: Task slots: the LocalExecutor forks this many workers at its start; the retrain DAG runs at most two tasks at once.
PARALLELISM = 4
START_TIMEOUT = 600
#: The settings of docker-compose.yaml's Airflow services that decide how soon a task follows the one before it.
SHIPPED = ("AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME",)
_COMPOSE_DEFAULT = re.compile(r"^\$\{[A-Z_]+:-(?P<value>[^}]*)\}$")


#: Every task of a measured run succeeds but the approval step, which the gate skips when it asks nobody.
EXPECTED_STATES = {"approve": "skipped"}


def unexpected_states(states: list[tuple[str, str]]) -> list[str]:
    """``task (state)`` for each (task id, state) of a run that is not as a winning challenger's run leaves it."""
    return sorted(f"{task} ({state})" for task, state in states if state != EXPECTED_STATES.get(task, "success"))


def shipped_settings(compose: Path = REPO / "docker-compose.yaml") -> dict[str, str]:
    """The values docker-compose.yaml gives the :data:`SHIPPED` settings (``${VAR:-value}`` read as ``value``).

    Raises:
        SystemExit: naming the setting, when the file does not set one of them.
    """
    environment = yaml.safe_load(compose.read_text(encoding="utf-8"))["x-airflow-common"]["environment"]
    settings = {}
    for name in SHIPPED:
        if name not in environment:
            raise SystemExit(f"{compose} sets no {name} in x-airflow-common: update benchmarks/retrain_scheduler.py")
        value = str(environment[name])
        found = _COMPOSE_DEFAULT.match(value)
        settings[name] = found["value"] if found else value
    return settings


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def without_schedule(world: Path, city: str) -> None:
    """Give the world's city file ``schedule: null``: unpaused, the DAG would also start its daily run at once."""
    city_file = world / "cities" / f"{city}.yaml"
    text = city_file.read_text(encoding="utf-8")
    city_file.write_text(text.replace("dag:\n", "dag:\n  schedule: null\n", 1), encoding="utf-8")


def scheduler_env(world: Path, base: dict[str, str], *, preload: bool) -> dict[str, str]:
    """The environment of the deployment's processes (and of the tasks they fork): ``base`` plus the executor,
    the servers' ports and secrets, and the warm-worker setting."""
    port = _free_port()
    python_path = [str(SETTINGS), *filter(None, base.get("PYTHONPATH", "").split(os.pathsep))]
    return {
        **base,
        "PYTHONPATH": os.pathsep.join(python_path),
        "AIRFLOW_ML_PRELOAD": "auto" if preload else "off",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(PARALLELISM),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "300",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "300",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(_free_port()),
        "PYTHONUNBUFFERED": "1",
    }


@contextlib.contextmanager
def deployment(world: Path, env: dict[str, str]) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    """api-server, scheduler and dag-processor running in ``world`` until the block ends; yields them by name.

    Each logs to ``world/<component>.log``; leaving the block stops each process group (SIGTERM, then SIGKILL).
    """
    processes: dict[str, subprocess.Popen[bytes]] = {}
    url = env["AIRFLOW__API__BASE_URL"]
    try:
        for command in (["api-server", "--host", "127.0.0.1", "--port", env["AIRFLOW__API__PORT"]], ["scheduler"]):
            processes[command[0]] = _spawn(world, command, env)
        processes["dag-processor"] = _spawn(world, ["dag-processor"], env)
        _wait(lambda: httpx.get(f"{url}/api/v2/monitor/health", timeout=5).status_code == 200, processes, "api")
        # The execution API builds its routes on first use: before the first task, not inside it.
        httpx.get(f"{url}/execution/health", timeout=START_TIMEOUT)
        yield processes
    finally:
        for process in processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)


def _spawn(world: Path, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    with (world / f"{command[0]}.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "airflow", *command],
            env=env,
            cwd=world,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait(check: object, processes: dict[str, subprocess.Popen[bytes]], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        dead = [name for name, process in processes.items() if process.poll() is not None]
        if dead:
            raise SystemExit(f"{', '.join(dead)} exited while waiting for {what}; see its log in the world")
        with contextlib.suppress(Exception):
            if check():  # type: ignore[operator]
                return
        time.sleep(0.5)
    raise SystemExit(f"timed out waiting for {what}")


def _query(world: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(world / "airflow" / "airflow.db", timeout=30)) as db:
        return db.execute(sql, params).fetchall()


def _when(value: object) -> float:
    moment = datetime.fromisoformat(str(value))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def measure_scheduled(world: Path, env: dict[str, str], dag_id: str) -> dict[str, float]:
    """Bring the deployment up, trigger ``dag_id`` once every component is ready, wait for the run's end.

    Returns the run's seconds from creation to end (``run``), the sum of its tasks' durations (``tasks``),
    the seconds in which no task of the run was running (``idle``: between the run's creation and its
    first task, between tasks, after the last one) and the CPU seconds of the scheduler's own process
    from the trigger until the run's end is seen (``scheduler_cpu``: its loop, not the workers and tasks it
    forks). Stops, naming them, when a task did not succeed (:data:`EXPECTED_STATES` aside).
    """
    started = time.time()
    url = env["AIRFLOW__API__BASE_URL"]
    with deployment(world, env) as processes:
        _wait(_scheduler_and_dag_ready(world, dag_id, started), processes, f"the scheduler and a parse of {dag_id}")
        httpx.patch(f"{url}/api/v2/dags/{dag_id}", json={"is_paused": False}, timeout=60).raise_for_status()
        scheduler_cpu = _cpu_seconds(processes["scheduler"].pid)
        response = httpx.post(f"{url}/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None}, timeout=60)
        response.raise_for_status()
        run_id = response.json()["dag_run_id"]
        sql = "SELECT state, created_at, end_date FROM dag_run WHERE dag_id = ? AND run_id = ?"
        _wait(lambda: _query(world, sql, dag_id, run_id)[0][0] in ("success", "failed"), processes, f"run {run_id}")
        scheduler_cpu = _cpu_seconds(processes["scheduler"].pid) - scheduler_cpu
        state, created, ended = _query(world, sql, dag_id, run_id)[0]
        tasks = _query(
            world,
            "SELECT task_id, state, scheduled_dttm, queued_dttm, start_date, end_date FROM task_instance"
            " WHERE dag_id = ? AND run_id = ? ORDER BY start_date",
            dag_id,
            run_id,
        )
    failed = unexpected_states([(str(task), str(task_state)) for task, task_state, *_ in tasks])
    if state != "success" or failed:
        shown = ", ".join(failed) or "none"
        raise SystemExit(f"scheduled run ended {state}; not as expected: {shown}; logs in {world}")
    _print_timeline(_when(created), tasks)
    spans = sorted((_when(start), _when(end)) for *_, start, end in tasks)
    return {
        "run": _when(ended) - _when(created),
        "tasks": sum(end - start for start, end in spans),
        "idle": _when(ended) - _when(created) - _union(spans),
        "scheduler_cpu": scheduler_cpu,
    }


def _cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of process ``pid`` itself (``/proc/<pid>/stat``; its children not counted)."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _print_timeline(created: float, tasks: list[tuple[object, ...]]) -> None:
    """Each task's scheduled, queued, started and ended moments, in seconds after the run's creation (stderr)."""
    print(f"    {'task':<14} {'scheduled':>9} {'queued':>7} {'started':>8} {'ended':>7}", file=sys.stderr)
    for task, _, *moments in tasks:
        at = " ".join(
            f"{_when(m) - created:>{w}.1f}" if m else f"{'-':>{w}}" for m, w in zip(moments, (9, 7, 8, 7), strict=True)
        )
        print(f"    {task!s:<14} {at}", file=sys.stderr, flush=True)


def _scheduler_and_dag_ready(world: Path, dag_id: str, since: float) -> object:
    def ready() -> bool:
        beats = _query(world, "SELECT latest_heartbeat FROM job WHERE job_type = 'SchedulerJob' AND state = 'running'")
        parsed = _query(world, "SELECT last_parsed_time FROM dag WHERE dag_id = ?", dag_id)
        return any(_when(beat) > since for (beat,) in beats) and bool(parsed) and _when(parsed[0][0]) > since

    return ready


def _union(spans: list[tuple[float, float]]) -> float:
    """Seconds covered by at least one of ``spans`` (sorted by start)."""
    covered, reach = 0.0, float("-inf")
    for start, end in spans:
        if end > reach:
            covered += end - max(start, reach)
            reach = end
    return covered
