"""Processes of a test deployment: start, wait for, stop, kill; and Python code run in a fresh interpreter.

Used by :mod:`tests.support.stack`; importable on its own (e.g. to manage one more server in a test).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.support import REPO


def run_fresh_python(code: str, *args: str, env: Mapping[str, str], cwd: Path, timeout: float = 600) -> Any:
    """Run ``code`` in a fresh interpreter (the repository importable) and return the JSON its last line printed.

    For what this test process cannot show once it has imported a library: what a process imports, or computes,
    on its own. Fails the test with the tail of its stderr when the code fails.
    """
    import json

    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        env={**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


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


def kill_by_environment(name: str, value: str) -> None:
    """SIGKILL every process but this one whose environment sets ``name=value`` (one that left its process group)."""
    marker = f"{name}={value}".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if marker in (proc / "environ").read_bytes().split(b"\0"):
                os.kill(int(proc.name), signal.SIGKILL)


def stop_together(processes: Iterable[ManagedProcess], grace: float = 10) -> None:
    """Stop ``processes`` all at once: SIGTERM, a grace period shared by all, then SIGKILL for what is left.

    A graceful stop of each in turn takes minutes on a loaded machine.
    """
    running = [p for p in processes if p.alive]
    for process in running:
        process.signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in running:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.popen.wait(max(0.1, deadline - time.monotonic()))  # type: ignore[union-attr]
    for process in running:
        process.kill()


class Supervisor:
    """A watcher thread that starts again each of ``names`` that exited, as ``restart: always`` does.

    Args:
        processes: The processes by name (read at each round: a process added later is watched too).
        names: The names to watch.
        restarts: Receives ``(name, exit code, time.time())`` of each restart, in order.
    """

    def __init__(
        self,
        processes: Mapping[str, ManagedProcess],
        names: Sequence[str],
        restarts: list[tuple[str, int | None, float]],
    ) -> None:
        self.processes, self.names, self.restarts = processes, tuple(names), restarts
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start watching (every second)."""
        self._thread = threading.Thread(target=self._watch, name="stack-supervisor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (idempotent); a restart under way finishes first."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None

    def _watch(self) -> None:
        while not self._stopping.wait(1.0):
            for name in self.names:
                process = self.processes.get(name)
                if process is None or process.alive or self._stopping.is_set():
                    continue
                code = process.popen.returncode if process.popen else None
                self.restarts.append((name, code, time.time()))
                with process.log.open("a", encoding="utf-8") as log:
                    log.write(f"\n=== {time.strftime('%H:%M:%S')} supervisor: exited with {code}, starting again\n")
                # What is left of its process group (a task of a dead scheduler) goes with it, as a container's would.
                process.kill()
                process.start()
