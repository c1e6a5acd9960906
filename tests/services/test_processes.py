"""The harness's process handling, on tiny Python processes: a dead component is reported with its log, and
stopping one leaves none of its descendants behind (even one that left its process group)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.support.processes import ManagedProcess, StackError, wait_until


def _python(code: str, log: Path) -> ManagedProcess:
    return ManagedProcess("toy", [sys.executable, "-c", code], {"PATH": "/usr/bin:/bin"}, log)


def test_a_component_that_exits_is_reported_at_once_with_its_log(tmp_path: Path) -> None:
    toy = _python("print('listening on nothing', flush=True); raise SystemExit(3)", tmp_path / "toy.log")
    toy.start()

    def ready() -> bool:
        if not toy.alive:
            raise StackError(f"toy exited\n{toy.tail()}")
        return False

    started = time.monotonic()
    with pytest.raises(StackError) as info:
        wait_until(ready, timeout=60, what="toy did not answer", diagnose=toy.tail)

    assert time.monotonic() - started < 30
    assert "toy (exited with 3)" in str(info.value)
    assert "listening on nothing" in str(info.value)


def test_a_timeout_names_the_component_and_the_last_error(tmp_path: Path) -> None:
    def refuse() -> bool:
        raise ConnectionRefusedError("nobody on port 1")

    with pytest.raises(StackError) as info:
        wait_until(refuse, timeout=1, what="the toy server did not answer", diagnose=lambda: "TAIL", poll=0.1)

    message = str(info.value)
    assert message.startswith("the toy server did not answer within 1s")
    assert "ConnectionRefusedError: nobody on port 1" in message
    assert message.endswith("TAIL")


def test_stop_ends_every_descendant_even_one_in_its_own_session(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    child = f"import os, time; os.setsid(); open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(120)"
    parent = _python(
        f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {child!r}]); time.sleep(120)",
        tmp_path / "toy.log",
    )
    parent.start()
    wait_until(
        lambda: pid_file.exists() and pid_file.read_text() != "", timeout=60, what="no child", diagnose=parent.tail
    )
    escaped = psutil.Process(int(pid_file.read_text()))
    assert escaped.is_running()
    assert escaped.ppid() == parent.pid
    assert os.getpgid(escaped.pid) != parent.pid  # out of the group that a killpg of the parent would reach

    parent.stop(timeout=5)

    assert not parent.alive
    _, alive = psutil.wait_procs([escaped], timeout=10)
    assert alive == []
