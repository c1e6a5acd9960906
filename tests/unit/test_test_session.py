"""The test session itself (tests/conftest.py): it runs in an Airflow home of its own and leaves nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support import REPO


def test_a_pytest_run_removes_its_airflow_home_from_the_temp_dir(tmp_path: Path) -> None:
    # One quick test in a fresh interpreter whose temp dir is tmp_path: the session's home is made there.
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
         "tests/unit/test_house_rules.py::test_build_dag_is_under_60_lines"],
        cwd=REPO, env={**os.environ, "TMPDIR": str(tmp_path)}, capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "1 passed" in done.stdout
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("airflow-ml-tests-")) == []
