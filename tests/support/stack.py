"""A real Airflow deployment for tests: PostgreSQL, scheduler, dag-processor, api-server, MLflow server, S3.

:class:`AirflowStack` starts, as separate processes with their own logs under the test's tmp folder:

- ``moto`` - S3 in server mode; the city's demo partitions are uploaded to a fresh bucket and the data
  root is ``s3://<bucket>/data`` (``AIRFLOW_CONN_AWS_DEFAULT`` points at it through ``endpoint_url``);
- ``mlflow`` - ``mlflow server`` with a fresh PostgreSQL database as backend store and proxied local
  artifacts (``AIRFLOW_CONN_MLFLOW_DEFAULT`` points at it);
- ``api-server``, ``scheduler`` and ``dag-processor`` - Airflow on a fresh PostgreSQL metadata database,
  LocalExecutor or CeleryExecutor, SimpleAuthManager with an ``admin`` user of a random password;
- ``celery-worker`` (CeleryExecutor) - ``airflow celery worker`` on Redis (a random database number and
  a queue of its own, so stacks of parallel tests never take each other's tasks), results in PostgreSQL;
- ``triggerer`` (optional) - for deferrable tasks such as the approval step of ``require_approval``.

Both databases are copies of schemas migrated once per machine (``airflow db migrate``, MLflow's
migrations; see :func:`~tests.support.postgres.database_from_template`) on the machine's shared server,
or, with ``postgres_dsn``, fresh databases migrated on the server that DSN names (a test's private cluster,
which the test may restart under the stack). With ``supervise``, a watcher restarts a component that exits,
as a process supervisor (docker compose's ``restart: always``) would. Every port is a free loopback
port, every stack has its own AIRFLOW_HOME, and leaving the ``with`` block stops every process and its
descendants (SIGTERM, 10 s of grace, SIGKILL, then any process left with this AIRFLOW_HOME) and drops both
databases. Each process logs to ``<root>/logs/<name>.log``; tasks log under ``<root>/airflow/logs``. Usage::

    with AirflowStack(tmp_path, cities=["berlin"], template="svc_local") as stack:
        run = stack.run(stack.dag_id("berlin"), {"num_boost_round": 20})
        assert run.state == "success", stack.report(run)
        champion = stack.mlflow_client().get_model_version_by_alias("svc_local.berlin", "champion")

A missing service (PostgreSQL, Redis) or program skips the test through ``tests.support.services.service_missing``
(or fails it under ``AIRFLOW_ML_REQUIRE_SERVICES=1``). A component that does not come up in time raises
:class:`StackError` with the tail of its log.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import httpx

from tests.support import REPO
from tests.support.airflow_rest import AirflowRest, RunResult
from tests.support.processes import (
    ManagedProcess,
    StackError,
    Supervisor,
    free_port,
    kill_by_environment,
    stop_together,
    wait_until,
)
from tests.support.s3_servers import s3_client
from tests.support.stack_config import (
    ADMIN_USER,
    airflow_env,
    base_env,
    check_stack_programs,
    forget_celery_queue,
    task_log,
    write_world,
)
from tests.support.stack_databases import private_databases, template_databases

Executor = Literal["LocalExecutor", "CeleryExecutor"]


class AirflowStack:
    """A whole deployment for one test module (see the module docstring); a context manager.

    Args:
        root: An empty folder (a tmp path) for homes, logs, the templates world and artifacts.
        cities: Demo cities (``berlin``, ``lisbon``, ``sao_paulo``), one DAG each.
        template: Name of this world's copy of the ``ride_duration`` template; the DAG ids are
            ``<template>.<city>``, so a distinct name keeps them apart from other tests'.
        executor: ``LocalExecutor`` or ``CeleryExecutor`` (adds a Celery worker on Redis).
        scale: Demo data volume (1.0 is the full demo; 0.1-0.3 keeps runs short).
        city_extra: YAML appended to every city file (what this world's cities change).
        dag_extra: YAML lines placed inside every city file's ``dag:`` block, indented by two spaces (e.g.
            ``"  retries: 2\n  retry_delay_minutes: 0.05\n"``); a key set here replaces the block's default
            (``retries: 0``, ``schedule: null``).
        worker_concurrency: Task slots of the Celery worker.
        triggerer: Also run ``airflow triggerer`` (deferrable tasks: the approval step).
        preload: Whether the scheduler and the Celery worker import the tasks' libraries at start, as
            docker-compose.yaml's do (``deploy/airflow/settings`` on PYTHONPATH, ``AIRFLOW_ML_PRELOAD``): their
            forked task processes inherit them. On a small CI machine, importing pandas, MLflow, GX and
            LightGBM is most of a short task's time.
        extra_env: Environment added to (or overriding) every Airflow process's.
        start_timeout: Seconds each component may take to come up.
        postgres_dsn: A PostgreSQL server for both databases instead of the shared one (``POSTGRES_DSN``):
            any database on it that a superuser may connect to, e.g. ``postgresql://postgres@127.0.0.1:5433/postgres``.
            The stack creates the Airflow metadata and MLflow databases there, migrates them (no template:
            a private cluster is fresh) and drops them when it closes.
        supervise: Names of components (``scheduler``, ``api-server``, ``dag-processor``, ``mlflow``, …)
            that a watcher thread starts again whenever they exit, as ``restart: always`` does; each restart
            is recorded in :attr:`restarts`.

    Attributes (once started):
        env: The environment of the Airflow processes (for ``airflow`` CLI calls, see :meth:`airflow`).
        home: The AIRFLOW_HOME. ``dags_dir``, ``templates_root``: the DAG folder and the templates world.
        api_url, mlflow_url, s3_endpoint: The servers' base URLs.
        bucket, data_root: The S3 bucket and ``AIRFLOW_ML_DATA_ROOT`` (``s3://<bucket>/data``).
        password: The password of the ``admin`` user. rest: an :class:`AirflowRest` logged in as admin.
        processes: The :class:`ManagedProcess` of each component, by name (to stop, kill or restart one).
        metadata_db_url, mlflow_db_url: The SQLAlchemy URLs of the two databases.
        restarts: ``(name, exit code, time.time())`` of each supervised restart, in order.
    """

    def __init__(
        self,
        root: Path,
        *,
        cities: Sequence[str] = ("berlin",),
        template: str = "svc_stack",
        executor: Executor = "LocalExecutor",
        scale: float = 0.15,
        city_extra: str = "",
        dag_extra: str = "",
        worker_concurrency: int = 2,
        triggerer: bool = False,
        preload: bool = True,
        extra_env: Mapping[str, str] | None = None,
        start_timeout: float = 240,
        postgres_dsn: str | None = None,
        supervise: Sequence[str] = (),
    ) -> None:
        self.root = Path(root)
        self.cities = list(cities)
        self.template = template
        self.executor = executor
        self.scale = scale
        self.city_extra = city_extra
        self.dag_extra = dag_extra
        self.worker_concurrency = worker_concurrency
        self.triggerer = triggerer
        self.preload = preload
        self.extra_env = dict(extra_env or {})
        self.start_timeout = start_timeout
        self.postgres_dsn = postgres_dsn
        self.supervise = tuple(supervise)
        self.restarts: list[tuple[str, int | None, float]] = []
        self.home = self.root / "airflow"
        self.dags_dir = self.home / "dags"
        self.templates_root = self.root / "world"
        self.logs_dir = self.root / "logs"
        self.password = secrets.token_urlsafe(12)
        self.processes: dict[str, ManagedProcess] = {}
        self._supervisor = Supervisor(self.processes, self.supervise, self.restarts)
        self.env: dict[str, str] = {}
        self.api_url = self.mlflow_url = self.s3_endpoint = self.bucket = self.data_root = ""
        self.metadata_db_url = self.mlflow_db_url = ""
        self._rest: AirflowRest | None = None
        self._exit = contextlib.ExitStack()

    # -- life cycle ---------------------------------------------------------------------------------------

    def __enter__(self) -> AirflowStack:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop every process, then drop the databases (idempotent)."""
        try:
            self._supervisor.stop()
            self._stop_all()
        finally:
            self._exit.close()  # drops the databases

    def _start(self) -> None:
        check_stack_programs(self.executor)
        for folder in (self.dags_dir, self.logs_dir):
            folder.mkdir(parents=True)
        write_world(
            self.templates_root,
            self.dags_dir,
            cities=self.cities,
            template=self.template,
            city_extra=self.city_extra,
            dag_extra=self.dag_extra,
        )
        if self.postgres_dsn:
            self.metadata_db_url, self.mlflow_db_url = private_databases(
                self._exit, self.postgres_dsn, self.root, self.logs_dir
            )
        else:
            self.metadata_db_url, self.mlflow_db_url = template_databases(self._exit, self.root, self.logs_dir)
        self.s3_endpoint = f"http://127.0.0.1:{free_port()}"
        self.bucket = f"airflow-ml-{uuid.uuid4().hex[:12]}"
        self.data_root = f"s3://{self.bucket}/data"
        # The servers take a minute or more to import and start: start them all, then fill the bucket meanwhile.
        self._start_mlflow()
        self.env = self._airflow_env()
        self._start_airflow()
        self._start_s3()
        self._wait_ready()
        if self.supervise:
            self._supervisor.start()

    def _spawn(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> ManagedProcess:
        process = ManagedProcess(name, argv, env, self.logs_dir / f"{name}.log")
        self.processes[name] = process
        process.start()
        return process

    def _stop_all(self) -> None:
        if self._rest is not None:
            self._rest.close()
            self._rest = None
        stop_together(self.processes.values())
        kill_by_environment("AIRFLOW_HOME", str(self.home))  # a process that left its process group
        forget_celery_queue(self.env)

    # -- the components -----------------------------------------------------------------------------------

    def _start_s3(self) -> None:
        from airflow_ml.data.demo import write_demo_data

        port = self.s3_endpoint.rsplit(":", 1)[1]
        moto = self._spawn("moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", port], base_env())
        lake = self.root / "lake"
        write_demo_data(lake, cities=self.cities, batch="initial", scale=self.scale)
        wait_until(
            lambda: _alive(moto) and httpx.get(f"{self.s3_endpoint}/moto-api/", timeout=5).status_code < 500,
            timeout=self.start_timeout,
            what=f"moto's S3 server did not answer at {self.s3_endpoint}",
            diagnose=moto.tail,
        )
        s3 = self.s3_client()
        s3.create_bucket(Bucket=self.bucket)
        for path in sorted((lake / "raw").rglob("*.parquet")):
            s3.upload_file(str(path), self.bucket, f"data/{path.relative_to(lake).as_posix()}")

    def _start_mlflow(self) -> None:
        port = free_port()
        self.mlflow_url = f"http://127.0.0.1:{port}"
        argv = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", self.mlflow_db_url]
        argv += ["--artifacts-destination", str(self.root / "mlflow-artifacts"), "--host", "127.0.0.1"]
        argv += ["--port", str(port), "--workers", "1"]
        # No job runner: the tests use no server-side jobs, and it is one more process on a small machine.
        self._spawn("mlflow", argv, {**base_env(), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})

    def _airflow_env(self) -> dict[str, str]:
        api_port = free_port()
        self.api_url = f"http://127.0.0.1:{api_port}"
        env = airflow_env(
            home=self.home,
            dags_dir=self.dags_dir,
            executor=self.executor,
            api_port=api_port,
            password=self.password,
            metadata_db_url=self.metadata_db_url,
            data_root=self.data_root,
            s3_endpoint=self.s3_endpoint,
            mlflow_url=self.mlflow_url,
            worker_concurrency=self.worker_concurrency,
            preload=self.preload,
        )
        return {**env, **self.extra_env}

    def _start_airflow(self) -> None:
        airflow = [sys.executable, "-m", "airflow"]
        port = self.env["AIRFLOW__API__PORT"]
        self._spawn("api-server", [*airflow, "api-server", "--host", "127.0.0.1", "--port", port], self.env)
        self._spawn("scheduler", [*airflow, "scheduler"], self.env)
        self._spawn("dag-processor", [*airflow, "dag-processor"], self.env)
        if self.triggerer:
            self._spawn("triggerer", [*airflow, "triggerer"], self.env)
        if self.executor == "CeleryExecutor":
            queue = self.env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"]
            argv = [*airflow, "celery", "worker", "--concurrency", str(self.worker_concurrency), "--queues", queue]
            argv += ["--celery-hostname", f"{queue}@%h", "--skip-serve-logs", "--without-mingle", "--without-gossip"]
            self._spawn("celery-worker", argv, self.env)

    def _wait_ready(self) -> None:
        timeout = self.start_timeout
        mlflow, api = self.processes["mlflow"], self.processes["api-server"]
        wait_until(
            lambda: _alive(mlflow) and httpx.get(f"{self.mlflow_url}/health", timeout=5).status_code == 200,
            timeout=timeout,
            what=f"mlflow server did not answer at {self.mlflow_url}/health",
            diagnose=mlflow.tail,
        )
        wait_until(
            lambda: _alive(api) and httpx.get(f"{self.api_url}/api/v2/monitor/health", timeout=5).status_code == 200,
            timeout=timeout,
            what=f"the Airflow api-server did not answer at {self.api_url}/api/v2/monitor/health",
            diagnose=api.tail,
        )
        self._rest = AirflowRest(self.api_url, ADMIN_USER, self.password)
        # The execution API builds its versioned routes on first use (half a minute on a loaded machine):
        # warm it now, so that the first task does not spend that in its start-up.
        httpx.get(f"{self.api_url}/execution/health", timeout=self.start_timeout)
        components = {"scheduler": "scheduler", "dag_processor": "dag-processor"}
        if self.triggerer:
            components["triggerer"] = "triggerer"
        for key, name in components.items():
            process = self.processes[name]
            wait_until(
                lambda key=key, process=process: (
                    _alive(process) and self._health().get(key, {}).get("status") == "healthy"
                ),
                timeout=timeout,
                what=f"the Airflow {name} did not report healthy at {self.api_url}/api/v2/monitor/health",
                diagnose=process.tail,
            )
        if "celery-worker" in self.processes:
            self.processes["celery-worker"].wait_for_log(" ready.", timeout=timeout)
        for city in self.cities:
            self.rest.wait_for_dag(
                self.dag_id(city), timeout=timeout, diagnose=lambda: self.processes["dag-processor"].tail()
            )

    def _health(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.api_url}/api/v2/monitor/health", timeout=5).json())

    # -- what tests use -----------------------------------------------------------------------------------

    @property
    def rest(self) -> AirflowRest:
        """The REST client, logged in as ``admin``."""
        if self._rest is None:
            raise StackError("the stack is not started: use it as a context manager")
        return self._rest

    def dag_id(self, city: str) -> str:
        """The DAG id (and registered model name) of ``city`` in this world."""
        return f"{self.template}.{city}"

    def run(self, dag_id: str, conf: dict[str, Any] | None = None, *, timeout: float = 300) -> RunResult:
        """Trigger ``dag_id`` with ``conf`` through the REST API and wait for the run (see :meth:`AirflowRest.wait`)."""
        return self.rest.wait(dag_id, self.rest.trigger(dag_id, conf), timeout=timeout)

    def mlflow_client(self) -> Any:
        """An ``MlflowClient`` of the stack's MLflow server (tracking and registry)."""
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.mlflow_url, registry_uri=self.mlflow_url)

    def s3_client(self) -> Any:
        """A boto3 S3 client of the stack's moto server."""
        return s3_client(self.s3_endpoint)

    def airflow(self, *args: str, timeout: float = 120, check: bool = False) -> subprocess.CompletedProcess[str]:
        """Run an ``airflow`` CLI command in the stack's environment (output captured, also appended to logs/cli.log).

        Raises:
            StackError: with the output when ``check`` and the command fails.
        """
        done = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        with (self.logs_dir / "cli.log").open("a", encoding="utf-8") as log:
            log.write(f"=== airflow {' '.join(args)} -> {done.returncode}\n{done.stdout}\n{done.stderr}\n")
        if check and done.returncode != 0:
            raise StackError(f"airflow {' '.join(args)} exited with {done.returncode}:\n{done.stderr[-4000:]}")
        return done

    def task_log(self, dag_id: str, run_id: str, task_id: str, *, chars: int = 6000) -> str:
        """The end of a task's log files (every attempt), read from the stack's log folder."""
        return task_log(self.home, dag_id, run_id, task_id, chars=chars)

    def report(self, result: RunResult) -> str:
        """A readable account of a run for an assertion message: task states, logs of the tasks that did not
        succeed, and the tails of the scheduler's and the worker's logs."""
        lines = [f"{result.dag_id} {result.run_id}: {result.state}; tasks {result.tasks}"]
        for task_id, state in result.tasks.items():
            if state not in ("success", "skipped", None):
                lines.append(self.task_log(result.dag_id, result.run_id, task_id))
        for name in ("scheduler", "celery-worker"):
            if name in self.processes:
                lines.append(self.processes[name].tail(40))
        return "\n".join(lines)


def _alive(process: ManagedProcess) -> bool:
    if not process.alive:
        raise StackError(f"{process.name} exited\n{process.tail()}")
    return True
