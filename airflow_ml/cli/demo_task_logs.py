"""The demo's task logs where the Airflow UI reads them, and a terminal line per task as it finishes.

``make demo`` runs each DAG with ``dag.test()``, which runs every task inside the demo's own process: no
supervisor writes a task's log file, so the UI found none ("Log file not found on worker"). While the demo
runs, :class:`DemoTaskLogs` is one of Airflow's task listeners: when a task starts, everything the process
writes (Airflow's and the libraries' logging, LightGBM's C-level prints) goes to that task try's own file,
``<base_log_folder>/<log_filename_template>`` as the scheduler's workers name it (``dag_id=…/run_id=…/
task_id=…/attempt=N.log``), so ``make ui`` shows it; when the task ends, the line ``city task seconds state``
goes to the terminal, and the output between tasks (``dag.test()``'s own lines) to the demo's log file.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import pluggy

#: Airflow's listener marker (``airflow.listeners.hookimpl``), made here so that importing this module imports no
#: Airflow: :data:`PLAIN_CONSOLE` is set before Airflow is imported.
hookimpl = pluggy.HookimplMarker("airflow")
#: Set before Airflow is imported (it picks its console colours then): the task log files get plain text, not
#: the terminal's colour codes, which the UI's log pane would show as they are.
PLAIN_CONSOLE = {"NO_COLOR": "1"}


class DemoTaskLogs:
    """An Airflow task listener that files each in-process task's output under its try and reports its end.

    Args:
        terminal: Where a line per finished task goes (a stream that fd 1 redirections do not move).
        between: The file for the output between tasks (``dag.test()``'s own lines).
    """

    def __init__(self, *, terminal: TextIO, between: Path) -> None:
        self.terminal = terminal
        self.between = between
        self.started: dict[tuple[str, int], float] = {}
        #: The task log files written, in order (what ``make ui`` shows).
        self.files: list[Path] = []
        self.running: dict[tuple[str, int], Path] = {}
        self.reported: set[tuple[str, int]] = set()

    @hookimpl
    def on_task_instance_running(self, previous_state: Any, task_instance: Any) -> None:
        """Send the process's output to this task try's log file."""
        from airflow.sdk.log import init_log_file
        from airflow.utils.helpers import log_filename_template_renderer

        path = init_log_file(log_filename_template_renderer()(ti=task_instance))
        self.files.append(path)
        self.started[task_instance.task_id, task_instance.map_index] = time.monotonic()
        self.running[task_instance.task_id, task_instance.map_index] = path
        _redirect(path)

    @hookimpl
    def on_task_instance_success(self, previous_state: Any, task_instance: Any) -> None:
        """Report the task's success."""
        self._finished(task_instance, "success")

    @hookimpl
    def on_task_instance_failed(self, previous_state: Any, task_instance: Any, error: Any) -> None:
        """Report the task's failure (or retry)."""
        self._finished(task_instance, str(task_instance.state or "failed"))

    @hookimpl
    def on_task_instance_skipped(self, previous_state: Any, task_instance: Any) -> None:
        """Report that the task skipped itself."""
        self._finished(task_instance, "skipped")

    def report_skipped_unrun(self, run: Any) -> None:
        """A line for each task of ``run`` (a DAG run, or any task instance of it) skipped without running that has
        none yet: the gate skips ``approve`` when nobody is asked and ``health_check`` when the champion stays, and
        no listener call reports them. Called after each task's success, so they follow the task that skipped
        them, and once after the run (the tasks skipped after the last task that ran: a thin city's, say)."""
        from airflow.models.taskinstance import TaskInstance as TI
        from airflow.utils.session import create_session
        from sqlalchemy import select

        of_run = (TI.dag_id == run.dag_id, TI.run_id == run.run_id, TI.state == "skipped")
        with create_session() as session:
            for ti in session.scalars(select(TI).where(*of_run).order_by(TI.end_date, TI.task_id)):
                if (ti.task_id, ti.map_index) not in self.reported:
                    self.reported.add((ti.task_id, ti.map_index))
                    print(task_line(task_city(ti), ti.task_id, 0.0, "skipped"), file=self.terminal, flush=True)

    def _finished(self, task_instance: Any, state: str) -> None:
        _redirect(self.between)
        key = (task_instance.task_id, task_instance.map_index)
        self.reported.add(key)
        seconds = time.monotonic() - self.started.pop(key, time.monotonic())
        path = self.running.pop(key, None)
        print(
            task_line(task_city(task_instance), task_instance.task_id, seconds, state), file=self.terminal, flush=True
        )
        if state not in ("success", "skipped") and path is not None:
            # Why it failed belongs on the terminal too: the traceback is the end of the task's log.
            print(failure_tail(path), file=self.terminal, flush=True)
        if state == "success":
            self.report_skipped_unrun(task_instance)


#: The lines of a failed task's log shown on the terminal (its traceback and what led to it).
FAILURE_TAIL_LINES = 25


def failure_tail(path: Path, lines: int = FAILURE_TAIL_LINES) -> str:
    """The last ``lines`` lines of a failed task's log, indented, under a line naming the whole file."""
    try:
        tail = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    except OSError as exc:
        return f"      (its log {path} could not be read: {exc})"
    return "\n".join([f"      the end of its log ({path}):", *(f"      | {line}" for line in tail)])


def task_city(task_instance: Any) -> str:
    """Whose task it is: the DAG's city (``berlin``, ``berlin.score``), or a mapped task's own (the monitor's
    ``monitor`` task is mapped over the template's cities and renders each map index as its city)."""
    if task_instance.map_index >= 0:
        return str(getattr(task_instance, "rendered_map_index", None) or task_instance.map_index)
    return str(task_instance.dag_id.split(".", 1)[-1])


def task_line(city: str, task_id: str, seconds: float, state: str) -> str:
    """The terminal's line for a finished task: its city, the task, its seconds and its state, in columns."""
    return f"   {city:<18} {task_id:<18} {seconds:6.1f} s  {state}"


@contextmanager
def demo_task_logs(*, terminal: TextIO, between: Path) -> Iterator[DemoTaskLogs]:
    """Within the block, tasks run by ``dag.test()`` log to their own files (see :class:`DemoTaskLogs`).

    Standard output and error (Python and C level alike) go to ``between`` outside the tasks; both are given
    back, and the listener removed, when the block ends.
    """
    from airflow.sdk.listener import get_listener_manager

    listener = DemoTaskLogs(terminal=terminal, between=between)
    manager = get_listener_manager()
    saved = _flushed_copies()
    manager.add_listener(listener)
    try:
        _redirect(between)
        yield listener
    finally:
        manager.pm.unregister(listener)
        _flush()
        for fd, copy in zip((1, 2), saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)


def dag_test_with_task_logs(dag: Any, *, terminal: TextIO, between: Path, **test_args: Any) -> Any:
    """``dag.test(**test_args)`` within :func:`demo_task_logs`, then a line for each task skipped without running.

    Returns:
        The finished DAG run.
    """
    with demo_task_logs(terminal=terminal, between=between) as listener:
        run = dag.test(**test_args)
    listener.report_skipped_unrun(run)
    return run


def terminal_stream(fd: int = 1) -> TextIO:
    """A line-buffered stream on a copy of ``fd`` (standard output, or 2 for standard error): it still reaches
    the terminal while fds 1 and 2 are moved."""
    _flush()
    return os.fdopen(os.dup(fd), "w", buffering=1, encoding="utf-8")


def _flushed_copies() -> tuple[int, int]:
    _flush()
    return os.dup(1), os.dup(2)


def _flush() -> None:
    sys.stdout.flush()
    sys.stderr.flush()


def _redirect(path: Path) -> None:
    """Point fds 1 and 2 at the end of ``path`` (what is buffered goes out first, to where it was meant)."""
    _flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o664)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
    finally:
        os.close(fd)
