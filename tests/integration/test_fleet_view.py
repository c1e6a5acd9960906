"""The fleet view plugin end to end: a real city run (dag.test(), real MLflow), then Airflow's own api-server app.

The plugin is loaded the way Airflow loads it: ``plugins/`` as the plugins folder, read by Airflow's plugins
manager, mounted by ``create_app()``. Berlin runs once (its first model becomes champion, drift is skipped);
Lisbon, of the same world, never runs.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.support import REPO
from tests.support.worlds import build_dag, city_world

pytestmark = pytest.mark.integration

TEMPLATE = "fleet_view"
BERLIN, LISBON = f"{TEMPLATE}.berlin", f"{TEMPLATE}.lisbon"
PLUGINS = REPO / "plugins"
MLFLOW_UI = "http://mlflow.example:5000"
JSON_URL, HTML_URL = "/airflow-ml/api/fleet", "/airflow-ml/fleet"
JWT_SECRET = "airflow-ml-fleet-tests-" + "y" * 64
#: Berlin's display name, and a scoring section: its scoring DAG carries the fleet's tags too.
BERLIN_EXTRA = (
    "display_name: Berlin Mitte\nscoring:\n  source: '{data_root}/raw/to_score/{city}'\n  key_columns: [trip_id]\n"
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, airflow_db: Path, dags_dir: Path) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("fleet_view")
    with city_world(root, dags_dir, "berlin", template=TEMPLATE, extra=BERLIN_EXTRA) as world:
        # A second city of the same template that never runs: it has a DAG, and no model. Its user tag `scoring`
        # does not make it a scoring DAG: the fleet lists retraining DAGs by the factory's own tag.
        (root / "cities" / "lisbon.yaml").write_text(
            f"city: lisbon\ntemplate: {TEMPLATE}\ndag:\n  retries: 0\n  schedule: null\n  tags: [scoring]\n",
            encoding="utf-8",
        )
        # Berlin's scoring DAG, in the same dags folder: dag.test() writes it to the metadata database too. It
        # carries the fleet's tags (airflow-ml, city:berlin) and must not become a row of its own.
        (dags_dir / f"score_{root.name}.py").write_text(
            "from airflow_ml.factory import register_score_dags\n"
            f"register_score_dags(globals(), templates_root={str(root)!r})\n",
            encoding="utf-8",
        )
        run = world["build"]().test()
        assert str(run.state) == "success", {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("AIRFLOW_ML_MLFLOW_UI_URL", MLFLOW_UI)
            yield {**world, "run_id": run.run_id, "root": root}


def _clear_plugin_caches() -> None:
    from airflow import plugins_manager

    for value in vars(plugins_manager).values():
        if callable(getattr(value, "cache_clear", None)):
            value.cache_clear()


@contextlib.contextmanager
def fleet_api(**env: str) -> Iterator[Any]:
    """Airflow's api-server app, in-process, with ``plugins/`` as its plugins folder and ``env`` set."""
    from airflow import settings
    from airflow.api_fastapi.app import create_app, purge_cached_app
    from fastapi.testclient import TestClient

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(settings, "PLUGINS_FOLDER", str(PLUGINS))
        mp.setenv("AIRFLOW__API_AUTH__JWT_SECRET", JWT_SECRET)
        for key, value in env.items():
            mp.setenv(key, value)
        _clear_plugin_caches()
        purge_cached_app()
        try:
            yield TestClient(create_app())
        finally:
            purge_cached_app()
            _clear_plugin_caches()


@pytest.fixture(scope="module")
def admin_api(world: dict[str, Any]) -> Iterator[Any]:
    with fleet_api(AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True") as client:
        yield client


@pytest.fixture(scope="module")
def fleet(admin_api: Any) -> dict[str, Any]:
    response = admin_api.get(JSON_URL)
    assert response.status_code == 200, response.text
    return response.json()


def _row(fleet: dict[str, Any], dag_id: str) -> dict[str, Any]:
    rows = {row["dag_id"]: row for row in fleet["rows"]}
    assert dag_id in rows, sorted(rows)
    return rows[dag_id]


def test_create_app_mounts_the_fleet_view_from_the_plugins_folder(admin_api: Any) -> None:
    from starlette.routing import Mount

    mounts = [r for r in admin_api.app.routes if isinstance(r, Mount) and r.path == "/airflow-ml"]
    assert len(mounts) == 1
    plugins = admin_api.get("/api/v2/plugins").json()["plugins"]
    fleet = next(p for p in plugins if p["name"] == "airflow_ml_fleet")
    assert fleet["fastapi_apps"][0]["url_prefix"] == "/airflow-ml"
    assert fleet["external_views"][0]["href"] == HTML_URL


def test_a_city_that_ran_shows_its_run_champion_decision_drift_and_links(
    fleet: dict[str, Any], world: dict[str, Any]
) -> None:
    row = _row(fleet, BERLIN)
    version = world["client"].get_model_version(BERLIN, "1")

    assert row["city"] == "berlin"
    assert row["display_name"] == "Berlin Mitte"  # the DAG's dag_display_name, as the DAG processor stored it
    assert row["template"] == TEMPLATE
    assert row["registry_error"] is None
    assert row["last_run"]["run_id"] == world["run_id"]
    assert row["last_run"]["state"] == "success"
    assert row["last_run"]["end_date"] is not None
    assert row["champion"] == {
        "version": "1",
        "metric": version.tags["gate.metric"],
        "value": float(version.tags["gate.challenger_score"]),
    }
    assert row["champion"]["metric"] == "rmse"
    assert row["decision"]["decision"] == "promoted"
    assert row["decision"]["reason"] == version.tags["gate.reason"]
    assert row["decision"]["version"] == "1"
    assert row["decision"]["run_id"] == world["run_id"]
    assert row["drift"]["status"] == "skipped"
    assert row["drift"]["detail"].startswith("no champion yet")
    assert row["drift"]["run_id"] == world["run_id"]
    assert row["links"]["dag"] == f"/dags/{BERLIN}"
    assert row["links"]["last_run"].startswith(f"/dags/{BERLIN}/runs/")
    assert row["links"]["mlflow_champion"] == f"{MLFLOW_UI}/#/models/{BERLIN}/versions/1"
    assert row["links"]["required_actions"] is None
    assert row["awaiting_approval"] is None
    assert fleet["mlflow_ui"] == MLFLOW_UI
    # The gate's judged score of version 1 is the trend's first point; the run's promotion is last night's.
    assert row["trend"]["metric"] == "rmse"
    assert row["trend"]["points"] == [
        {"version": "1", "holdout": row["champion"]["value"], "live": None, "decision": "promoted"}
    ]
    # The session's metadata database holds other modules' cities too: the counts are the whole fleet's.
    summary, rows = fleet["summary"], fleet["rows"]
    assert summary["cities"] == len(rows)
    ours = [r for r in rows if r["template"] == TEMPLATE]
    assert [r["dag_id"] for r in ours] == [BERLIN, LISBON]
    assert summary["promoted"] >= 1  # berlin, last night
    assert summary["awaiting_approval"] == sum(r["awaiting_approval"] is not None for r in rows)


def test_a_city_that_never_ran_says_it_has_no_champion_yet(fleet: dict[str, Any]) -> None:
    row = _row(fleet, LISBON)

    assert row["last_run"] is None
    assert row["champion"] is None
    assert row["champion_note"].startswith("no champion yet")
    assert row["decision"] is None
    assert row["drift"] is None
    assert row["registry_error"] is None
    assert row["links"]["mlflow_model"] is None  # nothing registered to link to


def test_the_page_is_a_table_with_a_row_per_city(admin_api: Any, fleet: dict[str, Any]) -> None:
    response = admin_api.get(HTML_URL)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == "frame-ancestors 'self'"  # Airflow's UI, no other site
    page = response.text
    assert f'data-dag-id="{BERLIN}"' in page
    assert f'data-dag-id="{LISBON}"' in page
    assert '<td class="champion" data-version="1" data-sort="1">v1</td>' in page
    assert '<a class="city-link" href="/dags/fleet_view.berlin" target="_top">Berlin Mitte</a>' in page
    assert f'<li data-count="promoted"><span class="count">{fleet["summary"]["promoted"]}</span>' in page
    assert 'data-decision="promoted"' in page
    assert 'data-status="skipped"' in page
    assert page.count('class="fleet-row') == len(fleet["rows"])
    assert [r["dag_id"] for r in fleet["rows"] if r["template"] == TEMPLATE] == [BERLIN, LISBON]  # no scoring DAG
    assert f"{BERLIN}.score" not in page
    assert f'<a class="mlflow-champion-link" href="{MLFLOW_UI}/#/models/{BERLIN}/versions/1"' in page
    assert f'<a class="dag-link" href="/dags/{BERLIN}" target="_top">' in page
    index = admin_api.get("/airflow-ml/", follow_redirects=False)
    assert index.status_code == 307
    assert index.headers["location"].endswith(HTML_URL)


def test_an_unreachable_registry_is_shown_on_the_rows_and_the_page_still_answers(
    admin_api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLFLOW_DEFAULT", json.dumps({"conn_type": "mlflow", "host": "127.0.0.1", "port": 9})
    )
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")

    response = admin_api.get(JSON_URL)

    assert response.status_code == 200, response.text
    row = _row(response.json(), BERLIN)
    assert row["registry_error"].startswith("registry unreachable: ")
    assert row["champion"] is None
    assert row["last_run"]["state"] == "success"  # the metadata database's facts are still shown
    assert row["drift"]["status"] == "skipped"


@pytest.fixture(scope="module")
def login_api(world: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The app with real users (SimpleAuthManager), not everyone an admin."""
    passwords = tmp_path_factory.mktemp("fleet_auth") / "passwords.json"
    passwords.write_text(json.dumps({"fleet_viewer": "fleet-secret"}), encoding="utf-8")
    with fleet_api(
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="False",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="fleet_viewer:viewer",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(passwords),
    ) as client:
        yield client


def _token(api: Any) -> str:
    response = api.post("/auth/token", json={"username": "fleet_viewer", "password": "fleet-secret"})
    assert response.status_code == 201, response.text
    return str(response.json()["access_token"])


def test_the_fleet_requires_an_airflow_login(login_api: Any) -> None:
    assert login_api.get(JSON_URL).status_code == 401
    assert login_api.get(JSON_URL, headers={"Authorization": "Bearer not-a-jwt"}).status_code == 403
    page = login_api.get(HTML_URL, follow_redirects=False)
    assert page.status_code == 307
    assert page.headers["location"].startswith("/auth/login?next=")


def test_a_real_token_or_the_ui_cookie_opens_the_fleet(login_api: Any) -> None:
    token = _token(login_api)

    by_header = login_api.get(JSON_URL, headers={"Authorization": f"Bearer {token}"})
    login_api.cookies.set("_token", token)
    try:
        by_cookie = login_api.get(HTML_URL, follow_redirects=False)
    finally:
        login_api.cookies.clear()

    assert by_header.status_code == 200, by_header.text
    assert _row(by_header.json(), BERLIN)["champion"]["version"] == "1"
    assert by_cookie.status_code == 200
    assert "for fleet_viewer" in by_cookie.text
    assert f'data-dag-id="{BERLIN}"' in by_cookie.text


def test_airflow_plugins_lists_the_fleet_view(tmp_path: Path) -> None:
    env = {**os.environ, "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS)}
    airflow = Path(sys.executable).with_name("airflow")

    listed = subprocess.run(
        [str(airflow), "plugins", "--output", "json"], env=env, capture_output=True, text=True, timeout=300
    )

    assert listed.returncode == 0, listed.stderr[-3000:]
    plugins = json.loads(listed.stdout[listed.stdout.index("[") :])
    fleet = next((p for p in plugins if p["name"] == "airflow_ml_fleet"), None)
    assert fleet is not None, listed.stdout[-3000:]
    assert "/airflow-ml" in json.dumps(fleet["fastapi_apps"])
    assert fleet["source"].endswith("fleet_view.py")


class FleetWatcher(threading.Thread):
    """While Lisbon's ``approve`` task really waits for a person, reads the fleet page, then rejects the request."""

    def __init__(self, api: Any, deadline: float = 240) -> None:
        super().__init__(daemon=True)
        self.api, self.deadline = api, deadline
        self.seen: dict[str, Any] | None = None
        self.page: str | None = None
        self.answered = False
        self.problems: list[str] = []  # what went wrong on the way, for the test's failure message
        self.asked_at: float | None = None

    def run(self) -> None:
        end = time.monotonic() + self.deadline
        while time.monotonic() < end and not self.answered:
            try:
                self._look()
            except Exception as exc:  # noqa: BLE001 - kept for the assertion; the thread must go on and answer
                self.problems.append(repr(exc))
            time.sleep(0.5)

    def _look(self) -> None:
        listing = self.api.get(f"/api/v2/dags/{LISBON}/dagRuns/~/hitlDetails", params={"response_received": False})
        if listing.status_code != 200:
            self.problems.append(f"hitlDetails: {listing.status_code} {listing.text[:200]}")
            return
        for detail in listing.json().get("hitl_details", [])[:1]:
            self.asked_at = self.asked_at or time.monotonic()
            try:
                fleet = self.api.get(JSON_URL).json()
                waiting = _row(fleet, LISBON)["awaiting_approval"]
                if waiting is not None or self.seen is None:
                    self.seen, self.page = fleet, self.api.get(HTML_URL).text
            except Exception as exc:  # noqa: BLE001 - the request is answered all the same: the run must end
                self.problems.append(f"fleet: {exc!r}")
                waiting = None
            # Answer once the fleet shows the wait, or 20 s after the request appeared without it.
            if waiting is None and time.monotonic() - self.asked_at < 20:
                return
            ti = detail["task_instance"]
            answer = self.api.patch(
                f"/api/v2/dags/{LISBON}/dagRuns/{ti['dag_run_id']}/taskInstances/{ti['task_id']}/-1/hitlDetails",
                json={"chosen_options": ["Reject"], "params_input": {}},
            )
            self.answered = answer.status_code == 200
            if not self.answered:
                self.problems.append(f"answer: {answer.status_code} {answer.text[:200]}")


def test_a_run_waiting_for_approval_is_counted_and_links_to_required_actions(world: dict[str, Any]) -> None:
    from airflow_ml.data.demo import write_demo_data

    # Last in this module: Lisbon runs now (the tests above see it never ran). Rejected, it gets no champion.
    write_demo_data(world["data_root"], cities=["lisbon"], batch="initial", scale=0.3)
    # An app of its own: the login tests' app turned off "every user an admin" for the module.
    with fleet_api(AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True") as api:
        watcher = FleetWatcher(api)
        watcher.start()
        run = build_dag(world["root"], LISBON).test(run_conf={"promotion_mode": "require_approval"})
        watcher.join(timeout=5)

    assert watcher.answered, watcher.problems
    assert str(run.state) == "success"
    assert watcher.seen is not None
    assert watcher.page is not None
    row = _row(watcher.seen, LISBON)
    assert row["awaiting_approval"] == run.run_id
    link = f"/dags/{LISBON}/runs/{quote(run.run_id, safe='')}/required_actions"
    assert row["links"]["required_actions"] == link
    assert watcher.seen["summary"]["awaiting_approval"] == 1
    assert '<li data-count="awaiting_approval"><span class="count">1</span>' in watcher.page
    assert f'<a class="required-actions-link" href="{html.escape(link)}"' in watcher.page
