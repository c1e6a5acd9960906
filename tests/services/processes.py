"""Processes and databases of a test deployment: start, wait for, stop, kill; template databases.

Used by :mod:`tests.services.harness`; importable on its own (e.g. to manage one more server in a test).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from tests.conftest import POSTGRES_DSN, REPO, postgres_admin

__all__ = ["ManagedProcess", "StackError", "database_from_template", "free_port", "wait_until"]


class StackError(RuntimeError):
    """A component of the stack did not start or answer in time (the message holds its log's tail)."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(
    check: Callable[[], bool], *, timeout: float, what: str, diagnose: Callable[[], str], poll: float = 0.5
) -> None:
    """Poll ``check`` until it is true; raise :class:`StackError` naming ``what`` with ``diagnose()`` after ``timeout``.

    Exceptions of ``check`` (connection refused while a server starts) count as "not yet", but a
    :class:`StackError` (a component exited) is raised at once.
    """
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except StackError:
            raise  # a component died: waiting longer cannot help
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(poll)
    raise StackError(f"{what} within {timeout:.0f}s{f' (last error: {last})' if last else ''}\n{diagnose()}")


class ManagedProcess:
    """One long-running process of the stack, in its own process group, its output appended to ``log``.

    Args:
        name: Short name (``scheduler``), used in messages.
        argv: The command.
        env: Its whole environment.
        log: File that receives stdout and stderr.
    """

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str], log: Path) -> None:
        self.name = name
        self.argv = list(argv)
        # Unbuffered, so that its log is live: tests wait for lines in it while the process runs.
        self.env = {**env, "PYTHONUNBUFFERED": "1"}
        self.log = log
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process (again, after :meth:`stop` or :meth:`kill`)."""
        if self.alive:
            raise StackError(f"{self.name} is already running (pid {self.pid})")
        with self.log.open("ab") as out:
            out.write(f"\n=== {time.strftime('%H:%M:%S')} start: {' '.join(self.argv)}\n".encode())
            out.flush()
            self.popen = subprocess.Popen(
                self.argv, env=self.env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    @property
    def pid(self) -> int | None:
        """The process id (also its process group id), or None before the first start."""
        return self.popen.pid if self.popen else None

    @property
    def alive(self) -> bool:
        """Whether the process runs."""
        return self.popen is not None and self.popen.poll() is None

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the process, every descendant (a task may run in a process group of its own)
        and whatever is left in its process group."""
        if self.popen is None:
            return
        import psutil

        try:
            family = [*psutil.Process(self.popen.pid).children(recursive=True)]
        except psutil.Error:
            family = []
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signum)
        for child in family:
            with contextlib.suppress(psutil.Error):
                child.send_signal(signum)

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM the process group, wait up to ``timeout`` seconds, then SIGKILL whatever is left."""
        if self.popen is None:
            return
        self.signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout)
        self.signal(signal.SIGKILL)  # children that outlived their parent, or a parent that ignored SIGTERM
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(10)

    def kill(self) -> None:
        """SIGKILL the process group at once, as a crash or an OOM kill would."""
        if self.popen is not None:
            self.signal(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(10)

    def restart(self) -> None:
        """Stop, then start again with the same command and environment."""
        self.stop()
        self.start()

    def tail(self, lines: int = 60) -> str:
        """The last ``lines`` lines of the log."""
        if not self.log.exists():
            return f"[{self.name}: no log at {self.log}]"
        text = self.log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
        state = "running" if self.alive else f"exited with {self.popen.returncode if self.popen else None}"
        return f"--- {self.name} ({state}), last {len(text)} lines of {self.log}:\n" + "\n".join(text)

    def wait_for_log(self, text: str, *, timeout: float) -> None:
        """Wait until ``text`` appears in the log; fail at once if the process exits."""

        def seen() -> bool:
            if not self.alive:
                raise StackError(f"{self.name} exited\n{self.tail()}")
            return text in self.log.read_text(encoding="utf-8", errors="replace")

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if seen():
                return
            time.sleep(0.5)
        raise StackError(f"{self.name} did not log {text!r} within {timeout:.0f}s\n{self.tail()}")


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
    base = POSTGRES_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg2://", 1)
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
