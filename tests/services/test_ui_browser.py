"""The Airflow UI in a real browser: headless Chromium (Debian's ``chromium``) against a real ``airflow api-server``.

One api-server (SimpleAuthManager, SQLite metadata database, ``plugins/`` as its plugins folder) serves a
templates world with one demo city, serialized with ``airflow db migrate`` and ``airflow dags reserialize``:
the trigger form needs no scheduler, so none runs and triggered runs stay queued. The browser logs in
through Airflow's own login page, opens the city's trigger form and checks that every Param renders as its
type; the fleet view plugin is checked behind the same login and inside Airflow's navigation.

Every test keeps full-page screenshots in ``$AIRFLOW_ML_TEST_ARTIFACTS/ui`` (default ``var/test-artifacts/ui``),
and a ``<test>-failure.png`` when it fails. The tests.support.stack deployment (scheduler, DAG processor, MLflow
server, S3) is more than a form needs, so only its process and REST helpers are reused here.
"""

from __future__ import annotations

import json
import re
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_ml.factory.display_names import retrain_display_name
from airflow_ml.templates.training_spec import LightGBMParams
from tests.support import REPO
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
from tests.support.processes import ManagedProcess, free_port
from tests.support.worlds import make_city_world

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Locator, Page

    from airflow_ml.templates import CityConfig

pytestmark = [pytest.mark.integration, pytest.mark.services]

CITY, TEMPLATE = "berlin", "ui_browser"
DAG_ID = f"{TEMPLATE}.{CITY}"
#: The fleet beside Berlin: São Paulo (a display name, three judged versions, a promotion last night) and
#: Lisbon of another template (a failed run, one refused version).
SAO_PAULO, LISBON = f"{TEMPLATE}.sao_paulo", "ui_browser_other.lisbon"
#: The fleet's MLflow links point at this path of the api-server (no MLflow UI runs here).
MLFLOW_UI_PATH = "/mlflow-ui"
#: The form's bound on Leaves per tree: the template's (both come from the same model).
MAX_LEAVES = LightGBMParams.model_json_schema()["properties"]["num_leaves"]["maximum"]


@dataclass(frozen=True)
class UiServer:
    """The api-server under test: its URL, the admin's password, a REST client, and the city's config."""

    url: str
    password: str
    rest: AirflowRest
    config: CityConfig


def add_fleet_cities(world: Path) -> None:
    """São Paulo beside Berlin, and Lisbon in a second template (a copy of the first): three rows to sort and filter."""
    text = (world / "templates" / f"{TEMPLATE}.yaml").read_text(encoding="utf-8")
    other = LISBON.split(".")[0]
    (world / "templates" / f"{other}.yaml").write_text(
        text.replace(f"template: {TEMPLATE}\n", f"template: {other}\n"), encoding="utf-8"
    )
    city = "city: {city}\ntemplate: {template}\n{extra}dag:\n  retries: 0\n  schedule: null\n"
    (world / "cities" / "sao_paulo.yaml").write_text(
        city.format(city="sao_paulo", template=TEMPLATE, extra="display_name: São Paulo\n"), encoding="utf-8"
    )
    (world / "cities" / "lisbon.yaml").write_text(
        city.format(city="lisbon", template=other, extra=""), encoding="utf-8"
    )


def fill_registry(uri: str, models: Path) -> None:
    """São Paulo's three judged versions (the third champion; the monitor measured the second live), Lisbon's one."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    judged = {SAO_PAULO: [(7.5, "promoted"), (7.1, "promoted"), (6.8, "promoted")], LISBON: [(4.2, "kept")]}
    for name, versions in judged.items():
        client.create_registered_model(name)
        (models / name).mkdir(parents=True)
        for score, decision in versions:
            version = client.create_model_version(name, str(models / name)).version
            tags = {"gate.metric": "rmse", "gate.challenger_score": str(score), "gate.decision": decision}
            for key, value in tags.items():
                client.set_model_version_tag(name, version, key, value)
    client.set_registered_model_alias(SAO_PAULO, "champion", "3")
    client.set_model_version_tag(SAO_PAULO, "2", "monitor.live_rmse", "7.9")


def finish_fleet_runs(rest: AirflowRest, uri: str) -> None:
    """A run of São Paulo that succeeded and promoted version 3 (its gate's tag names it), one of Lisbon that failed."""
    from mlflow import MlflowClient

    for dag_id, state in ((SAO_PAULO, "success"), (LISBON, "failed")):
        run_id = rest.trigger(dag_id, unpause=False)
        rest.request("PATCH", f"/dags/{dag_id}/dagRuns/{run_id}", json={"state": state})
        if dag_id == SAO_PAULO:
            client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            client.set_model_version_tag(SAO_PAULO, "3", "gate.airflow_run_id", run_id)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiServer]:
    """A real api-server with the city's DAG serialized in its database and the fleet view plugin loaded."""
    from airflow_ml.templates import load_city_configs

    require_browser()  # before the slow start: a machine without Chromium skips at once
    root = tmp_path_factory.mktemp("ui_browser")
    home, dags = root / "airflow", root / "dags"
    home.mkdir()
    dags.mkdir()
    make_city_world(root / "world", dags, CITY, scale=0.1, template=TEMPLATE)
    add_fleet_cities(root / "world")
    configs, errors = load_city_configs(root / "world")
    assert not errors, errors
    (config,) = (c for c in configs if c.dag_id == DAG_ID)
    fill_registry(f"sqlite:///{root}/mlflow.db", root / "models")
    password = secrets.token_urlsafe(12)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **api_server_env(home, dags, url, password),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW_ML_DATA_ROOT": str(root / "world" / "data"),
        # Where the fleet's MLflow links lead: no MLflow server runs, the links only need to open somewhere.
        "AIRFLOW_ML_MLFLOW_UI_URL": f"{url}{MLFLOW_UI_PATH}",
        # The fleet view reads this registry (fill_registry): Berlin's row shows "no champion yet".
        "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps(
            {"conn_type": "mlflow", "extra": {"tracking_uri": f"sqlite:///{root}/mlflow.db"}}
        ),
    }
    airflow_cli(env, "db", "migrate")
    argv = [sys.executable, "-m", "airflow", "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    api = ManagedProcess("api-server", argv, env, root / "api-server.log")
    api.start()
    rest = None
    try:
        # The DAG processor's work, done once while the api-server starts (no scheduler is needed for the UI).
        airflow_cli(env, "dags", "reserialize")

        wait_for_api_server(api, url)
        rest = AirflowRest(url, USER, password)
        assert rest.dag(DAG_ID) is not None, f"{DAG_ID} is not in the api-server's database; {rest.import_errors()}"
        finish_fleet_runs(rest, f"sqlite:///{root}/mlflow.db")
        yield UiServer(url, password, rest, config)
    finally:
        if rest is not None:
            rest.close()
        api.stop()


@pytest.fixture(scope="module")
def admin(browser: Browser, server: UiServer) -> Iterator[BrowserContext]:
    """A browser profile of an admin who logged in once through SimpleAuthManager's real login form.

    The tests' pages share it, and so its cache: the UI's JavaScript is fetched and compiled once.
    """
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(STEP_TIMEOUT)
    page = context.new_page()
    try:
        page.goto(f"{server.url}/")
        log_in(page, server)
        page.get_by_role("button", name="Browse").wait_for()  # the logged-in UI's navigation
    except BaseException:
        keep_failure_screenshot(page, "login-failure")
        context.close()
        raise
    page.close()
    yield context
    context.close()


@pytest.fixture
def page(request: pytest.FixtureRequest, admin: BrowserContext) -> Iterator[Page]:
    """A new page of the logged-in admin; when its test fails, a ``<test>-failure.png`` is kept among the artifacts."""
    new_page = admin.new_page()
    # The call phase's report is logged before teardown: a failed call has raised the session's count.
    failed_before = request.session.testsfailed
    yield new_page
    if request.session.testsfailed > failed_before:
        keep_failure_screenshot(new_page, f"{request.node.name}-failure")
    new_page.close()


def log_in(page: Page, server: UiServer) -> None:
    """Fill SimpleAuthManager's login form on ``page`` (which must show it) and wait until it lets us in."""
    page.wait_for_url(re.compile(r"/auth/login"))
    page.get_by_label("Username").fill(USER)
    page.get_by_label("Password").fill(server.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/auth/login" not in url)


def sections() -> tuple[str, ...]:
    """The form's sections in order (an accordion: one open at a time, the first when the form opens)."""
    from airflow_ml.factory.params import PROMOTION_SECTION, TRAINING_SECTION, WINDOW_SECTION

    return TRAINING_SECTION, WINDOW_SECTION, PROMOTION_SECTION


def open_trigger_form(page: Page, server: UiServer) -> Locator:
    """Open the city's DAG page, press *Trigger* and return the dialog, its first section open."""
    page.goto(f"{server.url}/dags/{DAG_ID}")
    page.get_by_role("button", name="Trigger Dag").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text(f"Trigger Dag - {retrain_display_name(server.config)}").wait_for()  # the DAG's display name
    dialog.locator(f'[id$=":content:{sections()[0]}"]').wait_for()  # the form opens on its first section
    field(dialog, "Reason")  # the last Param: the whole form is there
    return dialog


def field(dialog: Locator, title: str) -> Locator:
    """The form row (label, input, help text) whose label is ``title`` (a required field's label ends in ``*``),
    its section opened first, as a user opens it.

    Rows are found by their label, inputs inside them: the form's text and date inputs are not tied to
    their labels (the label's ``for`` names another id), so ``get_by_label`` cannot find them.
    """
    label = dialog.page.locator('label[data-part="label"]', has_text=re.compile(rf"^\s*{re.escape(title)}\s*\*?\s*$"))
    row = dialog.get_by_role("group").filter(has=label)
    for section in sections():
        content = dialog.locator(f'[id$=":content:{section}"]')
        if content.filter(has=label).count():  # the section holding the row, open or closed
            # Its state, not its visibility: a section still sliding shut is visible for a moment.
            trigger = dialog.get_by_role("button", name=section, exact=True)
            if trigger.get_attribute("aria-expanded") != "true":
                trigger.click()
            content.wait_for(state="visible")
            break
    row.wait_for()
    return row


def labels(dialog: Locator) -> list[str]:
    """The labels of the form's Params (its sections, not the dialog's other options) in order, without the
    required marker."""
    found = []
    for section in sections():
        texts = dialog.locator(f'[id$=":content:{section}"] label[data-part="label"]').all_text_contents()
        found += [text.rstrip("*").strip() for text in texts]
    return found


def run_ids(server: UiServer) -> set[str]:
    """The ids of the DAG's runs."""
    return {run["dag_run_id"] for run in server.rest.get(f"/dags/{DAG_ID}/dagRuns")["dag_runs"]}


def submit(page: Page, server: UiServer) -> dict[str, Any]:
    """Press the dialog's *Trigger* and return the conf of the one run it created (read through the REST API)."""
    before = run_ids(server)
    page.get_by_test_id("trigger-dag-submit").click()
    # Airflow's toaster may render the same toast twice (two nodes, one id): wait for the first.
    page.get_by_text("Dag run has been successfully triggered").first.wait_for()
    new = run_ids(server) - before
    assert len(new) == 1, f"expected one new run of {DAG_ID}, got {sorted(new)}"
    return dict(server.rest.get(f"/dags/{DAG_ID}/dagRuns/{new.pop()}")["conf"])


def test_the_trigger_form_renders_every_param_as_its_type(page: Page, server: UiServer) -> None:
    from playwright.sync_api import expect

    from airflow_ml.factory.params import trigger_params
    from airflow_ml.ml.gate.modes import MODES

    params = trigger_params(server.config)
    section = open_trigger_form(page, server)

    # Every Param is there, in order, under its title (not its key).
    assert labels(section) == [param.schema["title"] for param in params.values()]

    # Numbers: spin buttons, empty, their bounds stated in the help text beside the configured value.
    for key in ("num_boost_round", "num_leaves", "min_data_in_leaf", "search_trials"):
        title = params[key].schema["title"]
        number = field(section, title).get_by_role("spinbutton")
        assert number.get_attribute("name") == f"element_{key}"
        assert number.input_value() == "", f"{title} must start empty (None keeps the configured value)"
    rounds = server.config.training.num_boost_round
    help_text = field(section, "Boosting rounds").inner_text()
    assert f"Override the configured {rounds} rounds" in help_text
    assert "1 to 100,000" in help_text

    # Dates: native date pickers, empty by default.
    for key in ("window_start", "window_end"):
        date = field(section, params[key].schema["title"]).locator("input")
        assert (date.get_attribute("type"), date.get_attribute("name")) == ("date", f"element_{key}")
        assert date.input_value() == ""

    # The enum: a select showing the default, offering exactly the gate's modes.
    mode = field(section, "Promotion mode")
    chosen = mode.locator('input[name="element_promotion_mode"]')
    assert chosen.input_value() == "auto"
    mode.get_by_role("combobox").click()
    labels_shown = params["promotion_mode"].schema["values_display"]
    expect(page.get_by_role("option")).to_have_text([labels_shown[m] for m in MODES])
    page.get_by_role("option", name=labels_shown["dry_run"]).click()
    expect(chosen).to_have_value("dry_run")

    # Free text: a plain text input limited to the Param's maxLength.
    reason = field(section, "Reason").locator("input")
    assert reason.get_attribute("type") in (None, "text")
    assert reason.get_attribute("maxlength") == str(params["reason"].schema["maxLength"])

    keep_screenshot(page, "trigger-form")


def test_a_run_triggered_from_the_form_carries_typed_values_within_bounds(page: Page, server: UiServer) -> None:
    from playwright.sync_api import expect

    from airflow_ml.factory.params import MODE_LABELS

    section = open_trigger_form(page, server)
    rounds = field(section, "Boosting rounds").get_by_role("spinbutton")
    leaves = field(section, "Leaves per tree").get_by_role("spinbutton")
    rounds.fill("0")  # below the minimum of 1
    leaves.fill(str(MAX_LEAVES + 1))  # above the maximum, which is the template's
    field(section, "Learning rate").get_by_role("spinbutton").fill("0.05")
    # Never clamped when the field loses focus: what was typed stays...
    expect(rounds).to_have_value("0")
    expect(leaves).to_have_value(str(MAX_LEAVES + 1))
    field(section, "First day of data").locator("input").fill("2026-01-05")
    field(section, "Promotion mode").get_by_role("combobox").click()
    page.get_by_role("option", name=MODE_LABELS["dry_run"]).click()
    field(section, "Reason").locator("input").fill("browser test")
    # ...and the run is refused naming the bound, instead of running with another value.
    before = run_ids(server)
    page.get_by_test_id("trigger-dag-submit").click()
    expect(page.get_by_role("dialog")).to_contain_text(f"num_leaves={MAX_LEAVES + 1}")
    assert run_ids(server) == before, "an out-of-bounds conf must create no run"
    keep_screenshot(page, "trigger-form-refused")
    field(section, "Boosting rounds").get_by_role("spinbutton").fill("1")
    field(section, "Leaves per tree").get_by_role("spinbutton").fill(str(MAX_LEAVES))
    keep_screenshot(page, "trigger-form-filled")

    conf = submit(page, server)

    assert conf == {
        "num_boost_round": 1,
        "learning_rate": 0.05,
        "num_leaves": MAX_LEAVES,
        "min_data_in_leaf": None,
        "search_trials": None,
        "search_timeout_minutes": None,
        "window_start": "2026-01-05",
        "window_end": None,
        "promotion_mode": "dry_run",
        "reason": "browser test",
    }


def test_the_form_can_be_submitted_with_its_defaults(page: Page, server: UiServer) -> None:
    """Every Param has a default meaning "keep the configured value", so *Trigger* works without typing."""
    from playwright.sync_api import expect

    section = open_trigger_form(page, server)
    rows = {title: field(section, title) for title in labels(section)}
    values = {
        title: row.locator("input").evaluate_all("inputs => inputs.map(i => i.value)") for title, row in rows.items()
    }
    missing = [
        title for title, row in rows.items() if row.locator("[data-required]").count() and not any(values[title])
    ]
    expect(
        page.get_by_test_id("trigger-dag-submit"),
        f"the trigger form of {DAG_ID} cannot be submitted with its defaults: {missing} must be filled in (Airflow's "
        'form requires a value for every Param whose schema "type" lacks "null"; an optional one needs it)',
    ).to_be_enabled(timeout=10_000)

    conf = submit(page, server)

    assert conf.pop("promotion_mode") == "auto"
    assert conf.pop("reason") in ("", None)
    assert conf == dict.fromkeys(conf, None), "every other Param must default to None (the configured value)"


def test_the_fleet_view_lists_the_city_behind_airflows_login(browser: Browser, server: UiServer) -> None:
    context = browser.new_context(viewport=VIEWPORT)  # not logged in
    context.set_default_timeout(STEP_TIMEOUT)
    page = context.new_page()
    try:
        page.goto(f"{server.url}/airflow-ml/fleet")
        log_in(page, server)
        page.wait_for_url(f"{server.url}/airflow-ml/fleet")

        row = page.locator(f'tr.fleet-row[data-dag-id="{DAG_ID}"]')
        assert row.get_attribute("data-city") == CITY
        city = row.locator("td.city a.city-link")
        assert city.inner_text() == CITY
        assert city.get_attribute("href") == f"/dags/{DAG_ID}"
        assert row.locator("td.links a.dag-link").get_attribute("href") == f"/dags/{DAG_ID}"
        assert row.locator("td.champion").inner_text().startswith("no champion yet")
        runs = server.rest.get(f"/dags/{DAG_ID}/dagRuns", params={"order_by": "-run_after", "limit": 1})["dag_runs"]
        assert row.locator("td.last-run").get_attribute("data-state") == (runs[0]["state"] if runs else "none")
        keep_screenshot(page, "fleet-view")

        city.click()  # the row leads to the city's DAG in the Airflow UI (whose page the other tests check)
        page.wait_for_url(f"{server.url}/dags/{DAG_ID}", wait_until="commit")
    except BaseException:
        keep_failure_screenshot(page, "fleet-view-failure")
        raise
    finally:
        context.close()


def test_the_fleet_view_is_in_airflows_navigation(page: Page, server: UiServer) -> None:
    from playwright.sync_api import expect

    page.goto(f"{server.url}/")
    page.get_by_role("button", name="Browse").click()
    page.get_by_role("menuitem", name="Fleet").click()
    page.wait_for_url(f"{server.url}/plugin/airflow-ml-fleet")

    row = page.frame_locator("iframe").locator(f'tr.fleet-row[data-dag-id="{DAG_ID}"]')
    assert row.locator("td.city a.city-link").inner_text() == CITY
    keep_screenshot(page, "fleet-in-airflow-ui")

    # Airflow sandboxes the iframe without allow-top-navigation: the page's script moves the UI itself.
    row.locator("td.city a.city-link").click()
    page.wait_for_url(f"{server.url}/dags/{DAG_ID}")
    expect(page.locator("iframe")).to_have_count(0)  # the UI's router drew the DAG page (not only a new URL)
    page.go_back()  # the UI's history holds the fleet, as after any navigation inside Airflow
    # A change within the same document; the UI keeps the frame's own path after its plugin's.
    expect(page).to_have_url(re.compile(rf"^{re.escape(server.url)}/plugin/airflow-ml-fleet(/|$)"))
    frame = page.frame_locator("iframe")
    frame.locator(f'tr.fleet-row[data-dag-id="{DAG_ID}"] td.links a.dag-link').click()
    page.wait_for_url(f"{server.url}/dags/{DAG_ID}")
    expect(page.locator("iframe")).to_have_count(0)

    # The MLflow links open a tab of their own (the sandbox allows no popup from the frame itself).
    page.go_back()
    expect(page).to_have_url(re.compile(rf"^{re.escape(server.url)}/plugin/airflow-ml-fleet(/|$)"))
    fleet_url = page.url
    champion = frame.locator(f'tr.fleet-row[data-dag-id="{SAO_PAULO}"] td.links a.mlflow-champion-link')
    with page.context.expect_page() as opened:
        champion.click()
    tab = opened.value
    try:
        assert tab.url == f"{server.url}{MLFLOW_UI_PATH}/#/models/{SAO_PAULO}/versions/3"
    finally:
        tab.close()
    assert page.url == fleet_url  # the UI stays where it was


def test_the_dag_list_shows_each_citys_display_name(page: Page, server: UiServer) -> None:
    from playwright.sync_api import expect

    page.goto(f"{server.url}/dags")

    expect(page.get_by_role("link", name="São Paulo · ui_browser", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="berlin · ui_browser", exact=True)).to_be_visible()  # no display_name: the id


def fleet_rows(frame: Page | Any) -> list[str]:
    """The DAG ids of the fleet's visible rows, top to bottom."""
    return list(frame.locator("tr.fleet-row:visible").evaluate_all("rows => rows.map(r => r.dataset.dagId)"))


def test_the_fleet_view_counts_sorts_filters_and_draws_trends(page: Page, server: UiServer) -> None:
    from playwright.sync_api import expect

    page.goto(f"{server.url}/airflow-ml/fleet")
    counts = {
        name: page.locator(f'#fleet-counts li[data-count="{name}"] .count').inner_text()
        for name in ("cities", "promoted", "kept", "failed", "drifting", "awaiting_approval")
    }
    assert counts == {
        "cities": "3",
        "promoted": "1",
        "kept": "0",
        "failed": "1",
        "drifting": "0",
        "awaiting_approval": "0",
    }

    sao_paulo = page.locator(f'tr.fleet-row[data-dag-id="{SAO_PAULO}"]')
    assert sao_paulo.locator("td.city a.city-link").inner_text() == "São Paulo"
    ran = sao_paulo.locator("td.last-run time")
    assert re.fullmatch(r"just now|\d+ min ago", ran.inner_text()), ran.inner_text()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", ran.get_attribute("title") or "")
    trend = sao_paulo.locator("td.trend svg.trend")
    assert (trend.get_attribute("data-versions"), trend.get_attribute("data-live")) == ("3", "1")
    assert trend.locator("polyline.trend-holdout").count() == 1
    assert trend.locator("polyline.trend-live").count() == 1
    assert "v2: 7.1 (live 7.9)" in (trend.get_attribute("aria-label") or "")
    assert trend.bounding_box() is not None  # drawn, not only present

    # Sorting: by the readable name (São Paulo after Lisbon), then the other way round.
    by_city = page.locator('th button[data-sort="city"]')
    by_city.click()
    assert fleet_rows(page) == [DAG_ID, LISBON, SAO_PAULO]
    expect(page.locator('th:has(button[data-sort="city"])')).to_have_attribute("aria-sort", "ascending")
    by_city.click()
    assert fleet_rows(page) == [SAO_PAULO, LISBON, DAG_ID]
    page.locator('th button[data-sort="metric"]').click()  # only São Paulo has a champion: first, the rest after
    assert fleet_rows(page)[0] == SAO_PAULO

    # Filtering: by template, then by decision; the drift filter offers what the rows hold.
    page.locator("#filter-template").select_option(LISBON.split(".")[0])
    assert fleet_rows(page) == [LISBON]
    expect(page.locator("#fleet-shown")).to_have_text("1 of 3 shown")
    page.locator("#filter-template").select_option("")
    page.locator("#filter-decision").select_option("promoted")
    assert fleet_rows(page) == [SAO_PAULO]
    page.locator("#filter-decision").select_option("")
    assert sorted(fleet_rows(page)) == sorted([DAG_ID, LISBON, SAO_PAULO])
    assert page.locator("#filter-drift option").evaluate_all("options => options.map(o => o.value)") == ["", "none"]
    keep_screenshot(page, "fleet-view-sorted")


def _fleet_colours(page: Page, server: UiServer, mode: str) -> dict[str, Any]:
    """Open the fleet in Airflow's UI with the colour mode ``mode`` chosen, and read the page's colours."""
    page.goto(f"{server.url}/")
    page.evaluate("mode => localStorage.setItem('theme', mode)", mode)
    page.goto(f"{server.url}/plugin/airflow-ml-fleet")
    frame = page.frame_locator("iframe")
    frame.locator(f'tr.fleet-row[data-dag-id="{SAO_PAULO}"] svg.trend').wait_for()
    page.wait_for_function("mode => document.documentElement.classList.contains(mode)", arg=mode)
    from airflow_ml.fleet.page_static import PARENT_TOKENS

    colours = frame.locator("html").evaluate(
        """(html, tokens) => {
            const css = (selector, property) => getComputedStyle(html.ownerDocument.querySelector(selector))[property];
            return {
                mode: html.className, body: css("body", "backgroundColor"), text: css("body", "color"),
                header: css("th", "backgroundColor"), trend: css("polyline.trend-holdout", "stroke"),
                copied: Object.fromEntries(Object.entries(tokens).map(([ours, theirs]) => [
                    ours, [html.style.getPropertyValue(ours),
                           getComputedStyle(window.parent.document.documentElement).getPropertyValue(theirs).trim()]])),
            };
        }""",
        PARENT_TOKENS,
    )
    keep_screenshot(page, f"fleet-{mode}")
    return dict(colours)


def test_the_fleet_view_follows_airflows_light_and_dark_themes(page: Page, server: UiServer) -> None:
    from playwright.sync_api import expect

    try:
        light = _fleet_colours(page, server, "light")
        dark = _fleet_colours(page, server, "dark")

        assert (light["mode"], dark["mode"]) == ("light", "dark")
        for part in ("body", "text", "header", "trend"):
            assert light[part] != dark[part], f"the fleet's {part} colour is the same in both themes: {light[part]}"
        # Embedded, the page takes Airflow's own colours and font (its Chakra variables): it reads as part of the UI.
        for colours in (light, dark):
            assert colours["copied"], colours
            for ours, (copied, airflows) in colours["copied"].items():
                assert copied == airflows != "", f"{colours['mode']}: {ours} is {copied!r}, Airflow's {airflows!r}"

        # A change of mode in the UI (next-themes swaps the class of its <html>) reaches the page at once.
        page.evaluate("document.documentElement.classList.replace('dark', 'light')")
        embedded = page.frame_locator("iframe")
        expect(embedded.locator("html")).to_have_class(re.compile(r"\blight\b"))
        expect(embedded.locator("body")).to_have_css("background-color", light["body"])

        # Opened alone, the page follows the mode stored by the UI.
        page.goto(f"{server.url}/airflow-ml/fleet")
        assert page.locator("html").get_attribute("data-theme") == "dark"
    finally:
        page.evaluate("localStorage.removeItem('theme')")  # the other tests' pages keep the default
