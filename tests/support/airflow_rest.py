"""A small client of a real Airflow api-server's public REST API (``/api/v2``), as a user or the UI uses it.

It authenticates as SimpleAuthManager does (``POST /auth/token`` with a user name and password, then a
bearer JWT) and offers the few calls the service tests need: wait for a DAG to be parsed, trigger a run
with a conf (as the UI's trigger form does), wait for the run and read its task instances.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

FINISHED = ("success", "failed")


class AirflowRestError(AssertionError):
    """An unexpected answer of the REST API; names the call, the status and the body."""


@dataclass(frozen=True)
class RunResult:
    """A DAG run as the REST API reports it once finished (or when the wait gave up).

    Attributes:
        dag_id: The DAG.
        run_id: The run (``dag_run_id``).
        state: The run's state (``success``, ``failed``, or ``running``/``queued`` after a timeout).
        conf: The conf the run was triggered with.
        task_instances: The raw task instance records (``task_id``, ``state``, ``start_date``, ``end_date``, …).
    """

    dag_id: str
    run_id: str
    state: str
    conf: dict[str, Any] = field(default_factory=dict)
    task_instances: list[dict[str, Any]] = field(default_factory=list)

    @property
    def tasks(self) -> dict[str, str | None]:
        """Each task's state, by task id."""
        return {ti["task_id"]: ti["state"] for ti in self.task_instances}

    def interval(self, task_id: str) -> tuple[dt.datetime, dt.datetime]:
        """When ``task_id`` started and ended (timezone-aware).

        Raises:
            AirflowRestError: when the task has no such instance or has not both dates.
        """
        for ti in self.task_instances:
            if ti["task_id"] == task_id:
                if not ti.get("start_date") or not ti.get("end_date"):
                    raise AirflowRestError(f"{self.dag_id} {self.run_id}: task {task_id!r} has not run: {ti}")
                return dt.datetime.fromisoformat(ti["start_date"]), dt.datetime.fromisoformat(ti["end_date"])
        raise AirflowRestError(f"{self.dag_id} {self.run_id} has no task {task_id!r}; it has {sorted(self.tasks)}")


class AirflowRest:
    """An authenticated client of one api-server.

    Args:
        base_url: The api-server, e.g. ``http://127.0.0.1:28080``.
        username: A SimpleAuthManager user.
        password: Its password.
        timeout: Seconds per HTTP request.
    """

    def __init__(self, base_url: str, username: str, password: str, *, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout)
        self.token = self._login()
        self.http.headers["Authorization"] = f"Bearer {self.token}"

    def _login(self) -> str:
        response = self.http.post("/auth/token", json={"username": self.username, "password": self.password})
        if response.status_code != 201:
            raise AirflowRestError(
                f"POST {self.base_url}/auth/token as {self.username!r} answered {response.status_code}: "
                f"{response.text[:500]}"
            )
        return str(response.json()["access_token"])

    def close(self) -> None:
        """Close the HTTP connections."""
        self.http.close()

    def request(self, method: str, path: str, *, expect: int | tuple[int, ...] = 200, **kwargs: Any) -> httpx.Response:
        """Send a request to the api-server and check its status.

        Args:
            method: HTTP method.
            path: Path under ``/api/v2`` (``/dags/x``), or a full path (``/api/``, ``/auth/``, ``/ui/``,
                ``/execution/``).
            expect: The status code(s) that count as success; anything else raises.
            kwargs: Passed to ``httpx.Client.request`` (``json=``, ``params=``).

        Raises:
            AirflowRestError: naming the call, the status and the body when the status is not expected.
        """
        url = path if path.startswith(("/api/", "/auth/", "/ui/", "/execution/")) else f"/api/v2{path}"
        response = self.http.request(method, url, **kwargs)
        wanted = (expect,) if isinstance(expect, int) else expect
        if response.status_code not in wanted:
            raise AirflowRestError(
                f"{method} {self.base_url}{url} answered {response.status_code} (expected {wanted}): "
                f"{response.text[:2000]}"
            )
        return response

    def get(self, path: str, **kwargs: Any) -> Any:
        """GET ``/api/v2`` + ``path`` and return the JSON body."""
        return self.request("GET", path, **kwargs).json()

    def dag(self, dag_id: str) -> dict[str, Any] | None:
        """The DAG's record, or None while the DAG processor has not written it yet."""
        response = self.request("GET", f"/dags/{dag_id}", expect=(200, 404))
        return response.json() if response.status_code == 200 else None

    def import_errors(self) -> list[dict[str, Any]]:
        """The DAG files that failed to import (file name and stack trace)."""
        return list(self.get("/importErrors")["import_errors"])

    def wait_for_dag(self, dag_id: str, *, timeout: float = 180, diagnose: Callable[[], str] | None = None) -> None:
        """Wait until the DAG processor has parsed and stored ``dag_id``.

        Raises:
            TimeoutError: with the import errors and ``diagnose()`` (e.g. a log tail) when it does not appear.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.dag(dag_id) is not None:
                return
            time.sleep(1)
        raise TimeoutError(
            f"DAG {dag_id!r} did not appear in {self.base_url} within {timeout:.0f}s; import errors: "
            f"{self.import_errors()}\n{diagnose() if diagnose else ''}"
        )

    def unpause(self, dag_id: str) -> None:
        """Unpause ``dag_id`` (DAGs are created paused)."""
        self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None, *, unpause: bool = True) -> str:
        """Trigger a run of ``dag_id`` with ``conf`` as the UI's trigger form does (no logical date).

        Returns:
            The new run's id.

        Raises:
            AirflowRestError: when the API refuses the run (a conf that breaks the DAG's Params gives 400).
        """
        if unpause:
            self.unpause(dag_id)
        body = self.request("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}}).json()
        return str(body["dag_run_id"])

    def run_count(self, dag_id: str) -> int:
        """How many runs ``dag_id`` has."""
        return int(self.get(f"/dags/{dag_id}/dagRuns")["total_entries"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """The task instances of one run."""
        return list(self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"])

    def result(self, dag_id: str, run_id: str) -> RunResult:
        """The run's current state and task instances."""
        run = self.get(f"/dags/{dag_id}/dagRuns/{run_id}")
        return RunResult(dag_id, run_id, str(run["state"]), run.get("conf") or {}, self.task_instances(dag_id, run_id))

    def wait(self, dag_id: str, run_id: str, *, timeout: float = 300, poll: float = 2.0) -> RunResult:
        """Wait until the run finishes (``success`` or ``failed``) and return it.

        Returns:
            The run; after ``timeout`` seconds, the run as it is then (its state tells the caller it did
            not finish), so that the test's assertion message can show the task states and logs.
        """
        deadline = time.monotonic() + timeout
        while True:
            run = self.get(f"/dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] in FINISHED or time.monotonic() > deadline:
                return self.result(dag_id, run_id)
            time.sleep(poll)
