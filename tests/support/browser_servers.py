"""A real ``airflow api-server`` for the browser tests: SimpleAuthManager, SQLite, its own Airflow home.

tests/services/test_task_log_browser.py starts its server here; test_ui_browser.py and test_approval_browser.py
build the same environment inline.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support import REPO
from tests.support.processes import ManagedProcess, StackError, wait_until


def api_server_env(home: Path, dags: Path, *, url: str, user: str, password: str) -> dict[str, str]:
    """The environment of an Airflow home at ``home`` (created) whose api-server answers at ``url``.

    The test session's own Airflow and MLflow variables are left out; ``user`` logs in with ``password``.
    """
    home.mkdir(parents=True, exist_ok=True)
    (home / "passwords.json").write_text(json.dumps({user: password}), encoding="utf-8")
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLFLOW_TRACKING"))},
        "PYTHONPATH": str(REPO),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{user}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__API__BASE_URL": url,
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
    }


def airflow_cli(env: dict[str, str], *args: str) -> None:
    """Run ``airflow <args>`` in ``env``; a failure shows its standard error."""
    done = subprocess.run(
        [sys.executable, "-m", "airflow", *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"airflow {' '.join(args)} exited with {done.returncode}:\n{done.stderr[-4000:]}"


@contextmanager
def api_server(env: dict[str, str], port: int, log: Path) -> Iterator[ManagedProcess]:
    """An api-server (one worker) on ``port`` in ``env``, healthy when the block starts, stopped when it ends."""
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "airflow", "api-server", "--host", "127.0.0.1", "--port", str(port)]
    api = ManagedProcess("api-server", [*argv, "--workers", "1"], env, log)
    api.start()
    try:

        def healthy() -> bool:
            if not api.alive:
                raise StackError(f"the api-server exited\n{api.tail()}")
            return httpx.get(f"{url}/api/v2/monitor/health", timeout=5).status_code == 200

        wait_until(healthy, timeout=180, what=f"the api-server did not answer at {url}", diagnose=api.tail)
        yield api
    finally:
        api.stop()
