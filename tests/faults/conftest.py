"""What the fault tests share: a lean city world and real servers a test can stop, kill and restart.

- :func:`lean_world` writes one demo city whose file sets retries (the faults need them) and turns off
  what the faults are not about (drift, health check, bootstrap, slices), so a run stays short.
- :class:`MlflowServer` is ``mlflow server`` as a process of its own (killed with SIGKILL, started again
  on the same port and store).
- :class:`PrivatePostgres` is a PostgreSQL cluster of the test's own (``initdb`` in a temporary folder,
  a free port), so that restarting it disturbs no other test on the machine's shared server.
- :func:`capture` records what a ``dag.test()`` run's failed tries raised.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import REPO, copy_template, service_missing, write_loader
from tests.services.processes import ManagedProcess, free_port, wait_until

#: What every fault world's city turns off: the faults are about the pipeline's plumbing, not the gate's rules.
LEAN = """\
training:
  num_boost_round: 60
gate:
  bootstrap: null
  slices: []
drift:
  enabled: false
health:
  enabled: false
"""


def lean_world(
    root: Path,
    dags_dir: Path,
    city: str,
    *,
    template: str,
    retries: int = 2,
    retry_delay_minutes: float = 0.05,
    scale: float = 0.15,
    data_root: Path | None = None,
) -> Path:
    """A templates folder with one lean demo city, its DAG loader in ``dags_dir`` and its demo data.

    Args:
        root: An empty folder for the world.
        template: Name of the world's copy of ``ride_duration``: the DAG id is ``<template>.<city>``.
        retries: The city's ``dag.retries`` (a fault is survived by Airflow's retries).
        retry_delay_minutes: The city's ``dag.retry_delay_minutes`` (short: the tests wait for retries).
        data_root: Where the demo data goes (``root / "data"`` by default); returned.

    Returns:
        The local data root holding ``raw/trips/<city>``.
    """
    from airflow_ml.data.demo import write_demo_data

    copy_template(root, template)
    (root / "cities" / f"{city}.yaml").write_text(
        f"city: {city}\ntemplate: {template}\ndag:\n  retries: {retries}\n"
        f"  retry_delay_minutes: {retry_delay_minutes}\n  schedule: null\n{LEAN}",
        encoding="utf-8",
    )
    write_loader(dags_dir, f"faults_{template}", root)
    data_root = data_root or root / "data"
    write_demo_data(data_root, cities=[city], batch="initial", scale=scale)
    return data_root


def build_dag(root: Path, dag_id: str) -> Any:
    """A fresh DAG object of the world at ``root`` (``dag.test`` leaves a run's conf in the DAG's params)."""
    from airflow_ml.factory import register_dags

    return register_dags({}, templates_root=root, expectations_dir=REPO / "expectations")[dag_id]


def capture(dag: Any, task_id: str, kind: str, sink: list[str], then: Callable[[], None] | None = None) -> None:
    """Record the exception of each failed try of ``task_id`` in ``sink`` (``kind``: on_retry/on_failure).

    ``then`` runs after recording (e.g. to bring a server back once the failed try is recorded).
    """

    def callback(context: Any) -> None:
        sink.append(f"{type(context.get('exception')).__name__}: {context.get('exception')}")
        if then is not None:
            then()

    setattr(dag.get_task(task_id), f"{kind}_callback", [callback])


class MlflowServer:
    """``mlflow server`` on a free loopback port with proxied artifacts, as a process a test may kill.

    Args:
        root: Folder for the artifacts and the log.
        backend_store_uri: The tracking and registry store (a SQLAlchemy URL).
    """

    def __init__(self, root: Path, backend_store_uri: str) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend_store_uri]
        argv += ["--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1"]
        argv += ["--port", str(self.port), "--workers", "1"]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_TRACKING", "MLFLOW_REGISTRY"))}
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # no GenAI job runner: one process less to start
        self.process = ManagedProcess("mlflow", argv, env, root / "mlflow.log")

    def start(self, timeout: float = 180) -> None:
        """Start the server and wait until it answers ``/health``."""
        self.process.start()
        wait_until(
            lambda: self._alive() and httpx.get(f"{self.url}/health", timeout=5).status_code == 200,
            timeout=timeout,
            what=f"mlflow server did not answer at {self.url}/health",
            diagnose=self.process.tail,
        )

    def _alive(self) -> bool:
        if not self.process.alive:
            raise RuntimeError(f"mlflow server exited\n{self.process.tail()}")
        return True

    def kill(self) -> None:
        """SIGKILL the server (and its workers), as a crash would; the port is closed when this returns."""
        self.process.kill()

    def stop(self) -> None:
        """Stop the server for good."""
        self.process.stop()

    def client(self) -> Any:
        """An ``MlflowClient`` of this server (tracking and registry)."""
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.url, registry_uri=self.url)


def postgres_bin() -> Path | None:
    """The folder of PostgreSQL's server programs (``initdb``, ``pg_ctl``), newest version first."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]), reverse=True)
    if found:
        return Path(found[0]).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


class PrivatePostgres:
    """A PostgreSQL cluster of one test: its own data folder, socket folder and loopback port.

    PostgreSQL refuses to run as root, so when the tests run as root the cluster runs as the ``postgres``
    system user (whom a PostgreSQL installation creates).
    """

    def __init__(self) -> None:
        binaries = postgres_bin()
        if binaries is None:
            service_missing("PostgreSQL's server programs (initdb, pg_ctl) are not installed; install postgresql")
        self.bin = binaries
        self.user: str | None = None
        if os.geteuid() == 0:
            import pwd

            try:
                pwd.getpwnam("postgres")
            except KeyError:
                service_missing("tests run as root and there is no 'postgres' user to run a private PostgreSQL")
            self.user = "postgres"
        # Not under pytest's tmp folder: that one is private to root, the cluster's user must enter it.
        self.folder = Path(tempfile.mkdtemp(prefix="airflow-ml-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "postgres.log"
        self.port = free_port()
        if self.user:
            shutil.chown(self.folder, self.user, self.user)

    def _run(self, *argv: str, timeout: float = 120) -> str:
        done = subprocess.run(
            [str(self.bin / argv[0]), *argv[1:]],
            user=self.user,
            group=self.user,
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(argv)} exited with {done.returncode}: {done.stderr[-2000:]}\n{log}")
        return done.stdout

    def start(self) -> None:
        """initdb (trust authentication, user ``postgres``) on first use, then start and wait for it."""
        if not self.data.exists():
            self._run("initdb", "-A", "trust", "-U", "postgres", "-D", str(self.data), "--no-sync")
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "120", "start")

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every open connection is cut, as a failover or a restart does."""
        # -l again: without it the new server would write to (and hold open) this call's output pipe.
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-m", "fast", "-w", "-t", "120", "restart")

    def stop(self) -> None:
        """Stop the cluster and delete its folder."""
        with contextlib.suppress(Exception):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)

    def postmaster_start(self) -> str:
        """The server's start time (from ``postmaster.pid``): it changes on every restart."""
        return (self.data / "postmaster.pid").read_text().splitlines()[2]

    def create_database(self, name: str) -> str:
        """Create database ``name``; return its SQLAlchemy URL."""
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{name}"


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A started :class:`PrivatePostgres`, stopped and deleted afterwards."""
    cluster = PrivatePostgres()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


S3_KEYS = {"login": "testing-access-key", "password": "testing-secret-key"}


def aws_connection(endpoint: str) -> str:
    """``AIRFLOW_CONN_AWS_DEFAULT`` for an S3-compatible endpoint with the test keys."""
    return json.dumps({"conn_type": "aws", **S3_KEYS, "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"}})


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``check`` every 0.2 s; raise AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout:.0f}s")
