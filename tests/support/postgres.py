"""PostgreSQL for tests: fresh databases on the machine's shared server, template copies, private clusters.

- :func:`fresh_postgres_database` creates an empty database on the server of :data:`POSTGRES_DSN` and drops
  it afterwards; :func:`database_from_template` copies a migrated schema instead (seconds, not minutes).
- :class:`PrivatePostgres` (and :func:`private_postgres`) is a PostgreSQL cluster of the test's own
  (``initdb`` in a temporary folder, a free port), so that restarting it disturbs no other test.

A server that is not reachable skips the test, or fails it under ``AIRFLOW_ML_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tests.support.processes import StackError, free_port
from tests.support.services import service_missing

#: The machine's shared server (any database a superuser may connect to); ``AIRFLOW_ML_TEST_POSTGRES`` changes it.
POSTGRES_DSN = os.environ.get("AIRFLOW_ML_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def postgres_admin() -> Any:
    """An autocommit psycopg2 connection to the machine's PostgreSQL (skips, or fails in CI, when it is down)."""
    import psycopg2

    try:
        admin = psycopg2.connect(POSTGRES_DSN, connect_timeout=5)
    except psycopg2.OperationalError as exc:
        service_missing(
            f"PostgreSQL at {POSTGRES_DSN} is not reachable ({str(exc).strip()}); start it with "
            "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
        )
        raise  # service_missing skips or fails; this line is never reached
    admin.autocommit = True
    return admin


def airflow_connection(dsn: str = POSTGRES_DSN) -> dict[str, Any]:
    """An Airflow connection of type ``postgres`` to ``dsn``, as ``AIRFLOW_CONN_<ID>`` takes it (in JSON)."""
    import psycopg2

    url = psycopg2.extensions.parse_dsn(dsn)
    return {
        "conn_type": "postgres",
        "host": url.get("host", "127.0.0.1"),
        "port": int(url.get("port", 5432)),
        "login": url.get("user", "postgres"),
        "password": url.get("password"),
        "schema": url.get("dbname", "test"),
    }


def _server_url() -> str:
    """The SQLAlchemy URL of :data:`POSTGRES_DSN`'s server, without a database name."""
    return POSTGRES_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg2://", 1)


@contextlib.contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """Create an empty PostgreSQL database, yield its SQLAlchemy URL, drop it afterwards.

    Skips (or fails, under ``AIRFLOW_ML_REQUIRE_SERVICES=1``) when PostgreSQL is not reachable.
    """
    admin = postgres_admin()
    name = f"airflow_ml_test_{uuid.uuid4().hex[:12]}"
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{_server_url()}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@contextlib.contextmanager
def database_from_template(kind: str, version: str, build: Callable[[str], None]) -> Iterator[str]:
    """A fresh PostgreSQL database copied from a migrated template; yields its SQLAlchemy URL, drops it after.

    Migrating an empty database (Airflow's or MLflow's schema) takes tens of seconds; copying a migrated one
    (``CREATE DATABASE … TEMPLATE``) takes one. The template ``airflow_ml_tpl_<kind>_<version>`` is built
    once per machine by ``build(url)`` (which must leave no connection open), under an advisory lock so that
    parallel tests build it once, and only renamed to its final name when complete. It holds nothing but
    the empty schema; bump ``version`` (e.g. the library's version) whenever the schema may differ.

    Skips (or fails, under ``AIRFLOW_ML_REQUIRE_SERVICES=1``) when PostgreSQL is not reachable.
    """
    template = re.sub(r"[^a-z0-9_]", "_", f"airflow_ml_tpl_{kind}_{version}".lower())[:60]
    name = f"airflow_ml_test_{uuid.uuid4().hex[:12]}"
    base = _server_url()
    admin = postgres_admin()
    try:
        with admin.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(hashtext(%s))", (template,))
            try:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (template,))
                if cursor.fetchone() is None:
                    building = f"{template[:40]}_b{uuid.uuid4().hex[:8]}"
                    cursor.execute(f'CREATE DATABASE "{building}"')
                    try:
                        build(f"{base}/{building}")
                        cursor.execute(f'ALTER DATABASE "{building}" RENAME TO "{template}"')
                    except BaseException:
                        cursor.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
                        raise
                cursor.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            finally:
                cursor.execute("SELECT pg_advisory_unlock(hashtext(%s))", (template,))
        yield f"{base}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def admin_sql(dsn: str, statement: str, *, check: bool = True) -> None:
    """Run one statement outside a transaction on a connection of its own to ``dsn``; with ``check=False``,
    a server that is gone (a test's cluster, stopped) is not an error."""
    import psycopg2

    try:
        connection = psycopg2.connect(dsn, connect_timeout=10)
    except psycopg2.OperationalError as exc:
        if not check:
            return
        raise StackError(f"PostgreSQL at {dsn} is not reachable: {str(exc).strip()}") from exc
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement)
    except psycopg2.Error:
        if check:
            raise
    finally:
        connection.close()


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
