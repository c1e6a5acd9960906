"""Headless Debian Chromium for the browser tests (tests/services/test_*_browser.py), driven by Playwright.

Never a downloaded browser: ``AIRFLOW_ML_CHROMIUM`` (default ``/usr/bin/chromium``, ``make browser`` installs it).
Screenshots go to ``$AIRFLOW_ML_TEST_ARTIFACTS/ui`` (default ``var/test-artifacts/ui``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.support import REPO
from tests.support.processes import ManagedProcess, StackError, wait_until
from tests.support.services import service_missing

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, ViewportSize

#: The api-servers' admin (SimpleAuthManager), whose password each server's fixture reads.
USER = "admin"
CHROMIUM = Path(os.environ.get("AIRFLOW_ML_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(os.environ.get("AIRFLOW_ML_TEST_ARTIFACTS") or REPO / "var" / "test-artifacts") / "ui"
#: Tall enough that the whole trigger dialog fits: a full-page screenshot does not scroll inside a modal.
VIEWPORT: ViewportSize = {"width": 1280, "height": 2200}
#: Milliseconds a browser step may take; the React UI's first load is slow on a loaded 2-core machine.
STEP_TIMEOUT = 60_000
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def require_browser() -> None:
    """Skip (or, under CI, fail) when Playwright or Chromium is missing, naming the fix."""
    if importlib.util.find_spec("playwright") is None:
        service_missing(f"the playwright Python package is not installed in {sys.prefix}; run `make install`")
    if not os.access(CHROMIUM, os.X_OK):
        service_missing(
            f"Chromium is not installed at {CHROMIUM}; install Debian's package with "
            "`sudo apt-get install -y --no-install-recommends chromium` (or `make browser`), "
            "or point AIRFLOW_ML_CHROMIUM at a Chromium binary"
        )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium driven by Playwright (never a downloaded browser)."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def keep_screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot among the test artifacts and check that it is a non-empty PNG."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC), f"{path} is not a PNG"
    assert len(data) > 10_000, f"{path} is too small ({len(data)} bytes) to show a page"
    return path


def keep_failure_screenshot(page: Page, name: str) -> None:
    """Keep what the browser showed when a step failed; a page too broken to capture adds no second error."""
    with contextlib.suppress(Exception):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def airflow_cli(env: dict[str, str], *args: str) -> None:
    """Run ``airflow <args>`` with ``env``; assert it succeeded, showing its stderr when not."""
    done = subprocess.run(
        [sys.executable, "-m", "airflow", *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"airflow {' '.join(args)} exited with {done.returncode}:\n{done.stderr[-4000:]}"


def api_server_env(home: Path, dags: Path, url: str, password: str) -> dict[str, str]:
    """The environment of a browser test's own api-server: SQLite in ``home``, SimpleAuthManager with
    :data:`USER` and ``password`` (written to ``home/passwords.json``), fresh secrets; not the session's Airflow."""
    (home / "passwords.json").write_text(json.dumps({USER: password}), encoding="utf-8")
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLFLOW_TRACKING"))},
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__API__BASE_URL": url,
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
    }


def wait_for_api_server(api: ManagedProcess, url: str) -> None:
    """Wait until the api-server ``api`` answers its health check at ``url`` (at once an error if it exited)."""

    def healthy() -> bool:
        if not api.alive:
            raise StackError(f"the api-server exited\n{api.tail()}")
        return httpx.get(f"{url}/api/v2/monitor/health", timeout=5).status_code == 200

    wait_until(healthy, timeout=180, what=f"the Airflow api-server did not answer at {url}", diagnose=api.tail)


@contextmanager
def api_server(env: dict[str, str], port: int, log: Path) -> Iterator[ManagedProcess]:
    """An api-server (one worker) on ``port`` in ``env``, healthy when the block starts, stopped when it ends."""
    argv = [sys.executable, "-m", "airflow", "api-server", "--host", "127.0.0.1", "--port", str(port)]
    api = ManagedProcess("api-server", [*argv, "--workers", "1"], env, log)
    api.start()
    try:
        wait_for_api_server(api, f"http://127.0.0.1:{port}")
        yield api
    finally:
        api.stop()
