"""A task's log in the Airflow UI, in a real browser: the log of a successful run shows no line at error level.

A small city's DAG runs once with ``airflow-ml run`` on its own Airflow home (``AIRFLOW_HOME`` set): the command
files each task's output where the UI reads it (:mod:`airflow_ml.cli.demo_task_logs`). A real api-server over
that home serves the UI; headless Chromium logs in, opens the validate task's log view
(``/dags/<dag>/runs/<run>/tasks/<task>``, the task instance's default tab in the Airflow 3.3 UI), waits for its
lines and checks that "validation PASSED" is shown and that no line is at error level. The UI renders a line's
level as an upper-case word in its own element (``ERROR``, ``CRITICAL``) before `` - ``; a console line of the
task (plain text, no level field) would show ``[error    ]`` in its text. Both are looked for; a second test
plants an error line in the log file and checks that the same look finds it.

The browser, screenshots and api-server are tests/support/browser.py's.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.support import REPO
from tests.support import browser as ui
from tests.support.browser import airflow_cli, api_server, api_server_env
from tests.support.processes import free_port
from tests.support.worlds import make_city_world

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.integration, pytest.mark.services]

CITY, TEMPLATE = "berlin", "task_log_browser"
DAG_ID = f"{TEMPLATE}.{CITY}"
SMALL = "training:\n  num_boost_round: 8\ngate:\n  bootstrap: null\n  slices: []\n"
#: The error levels' words as the UI shows them (its log levels: debug, info, warning, error, critical).
ERROR_LEVELS = ("ERROR", "CRITICAL")
#: Reads the shown log: the UI's list is virtual (only the lines in view exist), so it scrolls through the list
#: and keeps each line (by its ``data-index``): its text, and the level words rendered in elements of their own.
SHOWN_LOG = """
async (scroller) => {
  const seen = new Map();
  const level = /^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$/;
  const read = () => {
    for (const item of scroller.querySelectorAll('[data-index]')) {
      const levels = [...item.querySelectorAll('*')]
        .filter((e) => e.children.length === 0 && level.test(e.textContent.trim()))
        .map((e) => e.textContent.trim());
      seen.set(Number(item.getAttribute('data-index')), {text: item.innerText, levels});
    }
  };
  const settle = () => new Promise((done) => setTimeout(done, 250));
  scroller.scrollTop = 0;
  await settle();
  read();
  for (let before = -1; scroller.scrollTop !== before; ) {
    before = scroller.scrollTop;
    scroller.scrollTop += scroller.clientHeight / 2;
    await settle();
    read();
  }
  const lines = [...seen.entries()].sort((x, y) => x[0] - y[0]).map((entry) => entry[1]);
  return {text: lines.map((l) => l.text).join('\\n'), levels: lines.flatMap((l) => l.levels), count: lines.length};
}
"""


@dataclass(frozen=True)
class LoggedRun:
    """The api-server over an Airflow home where one run of the city's DAG left its task logs."""

    url: str
    password: str
    run_id: str
    logs: Path


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoggedRun]:
    """A city's run by ``airflow-ml run`` on its own Airflow home, and a real api-server over that home."""
    ui.require_browser()
    root = tmp_path_factory.mktemp("task_log_browser")
    home, dags = root / "airflow", root / "dags"
    dags.mkdir()
    data_root = make_city_world(root / "world", dags, CITY, scale=0.1, extra=SMALL, template=TEMPLATE)
    password = secrets.token_urlsafe(12)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    store = {"tracking_uri": f"sqlite:///{root}/mlflow.db", "artifact_root": f"file://{root}/artifacts"}
    home.mkdir()
    env = {
        **api_server_env(home, dags, url, password),
        "PYTHONPATH": str(REPO),
        "AIRFLOW_ML_DATA_ROOT": str(data_root),
        "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps({"conn_type": "mlflow", "extra": store}),
    }
    airflow_cli(env, "db", "migrate")
    # The user's own Airflow home (AIRFLOW_HOME is set): `airflow-ml run` uses it as it is.
    ran = subprocess.run(
        [str(Path(sys.prefix) / "bin" / "airflow-ml"), "run", DAG_ID],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert ran.returncode == 0, ran.stderr[-4000:]
    run_id = ran.stderr.rsplit("run '", 1)[1].split("'", 1)[0]
    with api_server(env, port, root / "api-server.log"):
        yield LoggedRun(url, password, run_id, home / "logs")


def _shown_log(page: Page, run: LoggedRun, task_id: str, *, waiting_for: str) -> dict[str, Any]:
    """Open the task's log view (logging in first), wait for ``waiting_for`` among its lines, read what it shows."""
    from urllib.parse import quote

    page.goto(f"{run.url}/dags/{DAG_ID}/runs/{quote(run.run_id, safe='')}/tasks/{task_id}")
    page.get_by_label("Username").fill(ui.USER)  # a new browser profile: Airflow's login page first
    page.get_by_label("Password").fill(run.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/auth/login" not in url)
    line = page.get_by_text(waiting_for).first
    line.wait_for()
    shown: dict[str, Any] = page.get_by_test_id("virtual-scroll-container").evaluate(SHOWN_LOG)
    assert shown["count"] > 0, "no log line found by its data-index: has the UI's log list changed?"
    return shown


def _error_lines(shown: dict[str, Any]) -> list[str]:
    """What the shown log has at error level: rendered level words, and console lines' ``[error ]`` fields."""
    levels = [level for level in shown["levels"] if level in ERROR_LEVELS]
    console = [line for line in shown["text"].splitlines() if "[error" in line or "[critical" in line]
    return levels + console


@contextmanager
def _log_page(browser: Browser, screenshot: str) -> Iterator[Page]:
    """A new browser profile's page; a screenshot ``<screenshot>.png`` is kept (``-failure.png`` when it failed)."""
    context = browser.new_context(viewport=ui.VIEWPORT)
    context.set_default_timeout(ui.STEP_TIMEOUT)
    page = context.new_page()
    try:
        yield page
        ui.keep_screenshot(page, screenshot)
    except BaseException:
        ui.keep_failure_screenshot(page, f"{screenshot}-failure")
        raise
    finally:
        context.close()


def test_a_successful_runs_task_log_shows_its_lines_and_none_at_error_level(
    browser: Browser,
    logged_run: LoggedRun,
) -> None:
    with _log_page(browser, "task-log") as page:
        shown = _shown_log(page, logged_run, "validate", waiting_for="validation PASSED")
        assert "validation PASSED" in shown["text"]
        assert "Log file not found" not in shown["text"]
        assert _error_lines(shown) == [], shown["text"][-3000:]


def test_an_error_line_planted_in_the_log_is_seen_at_error_level(browser: Browser, logged_run: LoggedRun) -> None:
    """The check above can fail: the gate task's log with an error line added (as a task's supervisor writes it)."""
    (log_file,) = logged_run.logs.glob(f"dag_id={DAG_ID}/run_id=*/task_id=gate/attempt=*.log")
    planted = {"timestamp": "2026-01-01T00:00:00Z", "level": "error", "event": "planted failure line"}
    with log_file.open("a", encoding="utf-8") as log:
        log.write(json.dumps(planted) + "\n")
    with _log_page(browser, "task-log-planted-error") as page:
        shown = _shown_log(page, logged_run, "gate", waiting_for="planted failure line")
        assert _error_lines(shown) == ["ERROR"], shown["text"][-3000:]
