"""The approval screen's charts in a real browser: headless Chromium, a real api-server, a real MLflow server.

The gate's charts are logged to a run of a real ``mlflow server`` (proxied artifacts). A one-task DAG runs
:class:`~airflow_ml.operators.approval_operator.PromotionApprovalOperator` on that decision record with
``airflow dags test``: the task defers and its approval request waits in the api-server's database, as a real
gate's would. The browser logs in, opens the task's *Required Actions* view, and checks that the body's chart
images are loaded from the MLflow server (``naturalWidth > 0``) and that the worst slices' table has its cells.

The browser, its login and screenshots are those of tests/services/test_ui_browser.py.
"""

from __future__ import annotations

import json
import secrets
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_ml.ml.gate.modes import AWAITING_APPROVAL
from tests.support.airflow_rest import AirflowRest
from tests.support.browser import (
    STEP_TIMEOUT,
    USER,
    VIEWPORT,
    airflow_cli,
    api_server_env,
    keep_failure_screenshot,
    keep_screenshot,
    require_browser,
    wait_for_api_server,
)
from tests.support.mlflow_stores import MlflowServer
from tests.support.processes import ManagedProcess, StackError, free_port, wait_until

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = [pytest.mark.integration, pytest.mark.services]

DAG_ID, TASK_ID, MODEL = "approval_browser", "approve", "ride_duration.berlin"
#: A slice value that would break the table or add an image if it were not escaped.
HOSTILE = "a|b ![p](http://127.0.0.1:9/p.png)"


@dataclass(frozen=True)
class ApprovalScreen:
    """The api-server with one approval request waiting, and the MLflow run whose charts its body shows."""

    url: str
    password: str
    rest: AirflowRest
    mlflow_url: str
    chart_run_id: str
    dag_run_id: str


def _record(charts: dict[str, Any] | None = None) -> dict[str, Any]:
    """A gate's decision record that waits for approval, with two slices (one of them hostile)."""
    slices = [
        {"column": "pickup_zone", "value": value, "rows": rows, "challenger_score": score, "champion_score": 4.1,
         "regression": regression, "judged": True, "breached": False}
        for value, rows, score, regression in (("Mitte", 900, 4.0, -0.02), (HOSTILE, 300, 4.3, 0.05))
    ]  # fmt: skip
    return {
        "decision": AWAITING_APPROVAL,
        "reason": "the gate recommends promotion, waiting for approval",
        "gate_reason": "challenger beats the champion by +4.2% (required 0.5%)",
        "metric": "rmse",
        "direction": "minimize",
        "challenger_version": "2",
        "baseline_version": "1",
        "holdout_rows": 1200,
        "challenger_score": 4.1,
        "champion_score": 4.28,
        "improvement": 0.042,
        "min_improvement": 0.005,
        "improvement_mode": "relative",
        "bootstrap": {
            "confidence": 0.95,
            "challenger": [4.0, 4.2],
            "champion": [4.15, 4.4],
            "improvement": [0.01, 0.07],
        },
        "slices": slices,
        "min_slice_rows": 200,
        "max_slice_regression": 0.1,
        "snapshot_hash": "abc123",
        "trigger_reason": "nightly",
        "charts": charts,
    }


def _dag_file(dags: Path, record_file: Path) -> None:
    (dags / f"{DAG_ID}.py").write_text(
        textwrap.dedent(
            f"""
            import json
            import pathlib

            from airflow.sdk import DAG

            from airflow_ml.operators.approval_operator import PromotionApprovalOperator

            with DAG({DAG_ID!r}, schedule=None, catchup=False):
                PromotionApprovalOperator(
                    task_id={TASK_ID!r},
                    model_name={MODEL!r},
                    decision=json.loads(pathlib.Path({str(record_file)!r}).read_text()),
                    snapshot={{}},
                )
            """
        ),
        encoding="utf-8",
    )


@pytest.fixture(scope="module")
def screen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApprovalScreen]:
    """An MLflow server holding the gate's charts and an api-server with the approval request waiting."""
    from airflow_ml.ml.charts.chart_artifacts import log_gate_charts

    require_browser()
    root = tmp_path_factory.mktemp("approval_browser")
    home, dags = root / "airflow", root / "dags"
    home.mkdir()
    dags.mkdir()
    mlflow = MlflowServer(root / "mlflow", f"sqlite:///{root}/mlflow.db")
    mlflow.start()
    processes: list[Any] = [mlflow]
    rest = None
    try:
        client = mlflow.client()
        run_id = client.create_run(client.create_experiment("ride_duration.berlin.trained")).info.run_id
        charts = log_gate_charts(client, run_id, _record())
        assert charts is not None
        assert charts["artifacts"] == ["gate/charts/scores.png", "gate/charts/slices.png"]
        record_file = root / "decision.json"
        record_file.write_text(json.dumps(_record(charts)), encoding="utf-8")
        _dag_file(dags, record_file)

        password = secrets.token_urlsafe(12)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            **api_server_env(home, dags, url, password),
            "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps({"conn_type": "mlflow", "extra": {"tracking_uri": mlflow.url}}),
        }
        airflow_cli(env, "db", "migrate")
        argv = [sys.executable, "-m", "airflow", "api-server", "--host", "127.0.0.1", "--port", str(port)]
        api = ManagedProcess("api-server", [*argv, "--workers", "1"], env, root / "api-server.log")
        api.start()
        processes.append(api)
        airflow_cli(env, "dags", "reserialize")
        # The task runs in `airflow dags test`: it defers, and its request waits (no scheduler, no triggerer).
        asking = ManagedProcess(
            "dags-test", [sys.executable, "-m", "airflow", "dags", "test", DAG_ID], env, root / "dags-test.log"
        )
        asking.start()
        processes.append(asking)

        wait_for_api_server(api, url)
        rest = AirflowRest(url, USER, password)

        def waiting() -> list[dict[str, Any]]:
            if not asking.alive:
                raise StackError(f"airflow dags test exited before asking\n{asking.tail()}")
            found = rest.get(f"/dags/{DAG_ID}/dagRuns/~/hitlDetails", params={"response_received": False})
            return list(found.get("hitl_details", []))

        wait_until(waiting, timeout=240, what="no approval request appeared", diagnose=asking.tail)
        (detail,) = waiting()
        yield ApprovalScreen(url, password, rest, mlflow.url, run_id, detail["task_instance"]["dag_run_id"])
    finally:
        if rest is not None:
            rest.close()
        for process in reversed(processes):
            process.stop()


def test_the_approval_screen_shows_the_gate_charts_served_by_mlflow(browser: Browser, screen: ApprovalScreen) -> None:
    from urllib.parse import quote

    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(STEP_TIMEOUT)
    page = context.new_page()
    try:
        page.goto(
            f"{screen.url}/dags/{DAG_ID}/runs/{quote(screen.dag_run_id, safe='')}/tasks/{TASK_ID}/required_actions"
        )
        page.get_by_label("Username").fill(USER)
        page.get_by_label("Password").fill(screen.password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(lambda url: "/auth/login" not in url)
        images = page.locator(f'img[src^="{screen.mlflow_url}/get-artifact"]')
        images.first.wait_for()
        assert images.count() == 2
        # decode() settles once the image has loaded (or failed: then 0 wide, as a broken image is).
        sizes = images.evaluate_all(
            "(all) => Promise.all(all.map((img) => img.decode()"
            ".then(() => [img.src, img.naturalWidth], () => [img.src, 0])))"
        )
        for src, width in sizes:
            assert screen.chart_run_id in src
            assert width > 0, f"the chart {src} did not load in the browser"
        # The worst slices' table: every row keeps its 6 cells, the hostile value shown as written.
        table = page.locator("table", has_text="challenger worse by")
        rows = table.locator("tbody tr")
        assert rows.count() == 2
        assert [rows.nth(i).locator("td").count() for i in range(2)] == [6, 6]
        shown = rows.nth(0).locator("td").first.inner_text()
        assert shown.replace("\u200b", "") == f"pickup_zone={HOSTILE}"  # a zero-width space keeps it no link
        assert page.locator('img[src^="http://127.0.0.1:9"]').count() == 0
        assert page.locator('a[href^="http://127.0.0.1:9"]').count() == 0
        keep_screenshot(page, "approval-charts")
    except BaseException:
        keep_failure_screenshot(page, "approval-charts-failure")
        raise
    finally:
        context.close()
