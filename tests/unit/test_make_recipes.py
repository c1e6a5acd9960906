"""What ``make demo`` and ``make ui`` show in the terminal: short commands, never the environment they set.

The recipes run against stand-ins for .venv's programs (``BIN`` and ``TOOLS`` pointed at a tmp folder, the install
step up to date), so the terminal's lines are make's own echoes and the stand-ins' one line each.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import REPO

#: A stand-in for a program of .venv/bin: one line naming itself and its arguments; `airflow-ml env` prints exports.
STAND_IN = """#!/bin/sh
if [ "$1" = env ]; then
  echo "export AIRFLOW_HOME='/secret/home'"; echo "export AIRFLOW_CONN_X='{\\"k\\": 1}'"; exit 0
fi
echo "ran $(basename "$0") $*"
"""


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")
def test_make_demo_and_ui_show_short_commands_and_never_the_environment(tmp_path: Path) -> None:
    bin_dir, tools = tmp_path / "bin", tmp_path / "tools"
    for folder, names in ((bin_dir, ("airflow-ml", "mlflow", "airflow")), (tools / "bin", ("uv",))):
        folder.mkdir(parents=True)
        for name in names:
            (folder / name).write_text(STAND_IN, encoding="utf-8")
            (folder / name).chmod(0o755)
    synced = bin_dir / ".synced"  # the install step is up to date: newer than pyproject.toml and uv.lock
    synced.touch()
    newest = max((REPO / name).stat().st_mtime for name in ("pyproject.toml", "uv.lock"))
    os.utime(synced, (newest + 60, newest + 60))

    done = subprocess.run(
        ["make", "--no-print-directory", "demo", "ui", f"BIN={bin_dir}", f"TOOLS={tools}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:4] == [
        "$ airflow-ml lint dag_templates --expectations expectations",
        "ran airflow-ml lint dag_templates --expectations expectations",
        "$ airflow-ml demo",
        "ran airflow-ml demo",
    ]
    assert lines[4].startswith("the demo's results (")
    assert sorted(lines[5:]) == ["ran airflow standalone", "ran mlflow ui --host 127.0.0.1 --port 5000"]
    for line in lines:
        assert not any(word in line for word in ("eval", "export", "/secret/home", "AIRFLOW_CONN", str(bin_dir))), line
