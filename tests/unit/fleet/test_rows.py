"""The fleet view's plain parts: reading a real MLflow registry, joining the facts into rows, the HTML page."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from airflow_ml.fleet.html import render
from airflow_ml.fleet.metadata import CityDag, DriftVerdict, LastRun, verdict_from
from airflow_ml.fleet.model_states import ModelState, read_models
from airflow_ml.fleet.rows import NO_CHAMPION, NO_MODEL, build_rows
from tests.support.mlflow_stores import CountingClient


@pytest.fixture
def client(tmp_path: Path) -> MlflowClient:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _version(client: MlflowClient, name: str, tmp_path: Path, **tags: Any) -> str:
    """Register a version of ``name`` carrying gate tags written as airflow_ml.ml.model_registry.tag_decision does."""
    if not client.search_registered_models(filter_string=f"name = '{name}'"):
        client.create_registered_model(name)
    source = tmp_path / "models" / name
    source.mkdir(parents=True, exist_ok=True)
    version = client.create_model_version(name, str(source))
    for key, value in tags.items():
        client.set_model_version_tag(
            name, version.version, f"gate.{key}", value if isinstance(value, str) else json.dumps(value)
        )
    return str(version.version)


def test_read_models_reports_champion_score_and_last_decision(client: MlflowClient, tmp_path: Path) -> None:
    first = _version(
        client,
        "tpl.a",
        tmp_path,
        decision="promoted",
        reason="first model",
        metric="rmse",
        challenger_score=7.25,
        airflow_run_id="r1",
    )
    client.set_registered_model_alias("tpl.a", "champion", first)
    second = _version(
        client,
        "tpl.a",
        tmp_path,
        decision="kept",
        reason="improvement 0.1% below 0.5%",
        metric="rmse",
        challenger_score=7.3,
    )
    _version(client, "tpl.b", tmp_path)  # registered, never decided
    decided = _version(
        client, "tpl.d", tmp_path, decision="promoted", reason="won", metric="rmse", challenger_score=5.0
    )
    client.set_registered_model_alias("tpl.d", "champion", decided)
    _version(client, "tpl.d", tmp_path)  # newest version still undecided (its run failed at the gate)
    _version(client, "tpl_x.a", tmp_path)  # matches the LIKE pattern 'tpl.%' ('_' is a wildcard) but not wanted

    states = read_models(client, ["tpl.a", "tpl.b", "tpl.c", "tpl.d"])

    assert states["tpl.a"] == ModelState(
        "tpl.a", True, "1", "rmse", 7.25, "kept", "improvement 0.1% below 0.5%", second, None
    )
    assert states["tpl.b"] == ModelState("tpl.b", registered=True)
    assert states["tpl.c"] == ModelState("tpl.c", registered=False)
    d = states["tpl.d"]
    assert (d.champion_version, d.score, d.decision, d.decision_version) == ("1", 5.0, "promoted", "1")
    assert set(states) == {"tpl.a", "tpl.b", "tpl.c", "tpl.d"}


def test_an_unreachable_registry_is_reported_on_each_row_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    dead = MlflowClient(tracking_uri="http://127.0.0.1:9", registry_uri="http://127.0.0.1:9")

    states = read_models(dead, ["tpl.a", "other.b"])

    assert set(states) == {"tpl.a", "other.b"}
    for state in states.values():
        assert state.error is not None
        assert state.error.startswith("registry unreachable: ")
        assert "127.0.0.1:9" in state.error


def _facts() -> tuple[list[CityDag], dict[str, LastRun], dict[str, DriftVerdict], dict[str, ModelState]]:
    when = dt.datetime(2026, 5, 1, 3, 0, tzinfo=dt.UTC)
    dags = [CityDag("tpl.a", "a"), CityDag("tpl.b", "b", paused=True), CityDag("tpl.c", "c"), CityDag("tpl.e", "e")]
    runs = {"tpl.a": LastRun("manual__2026-05-01T03:00:00+00:00", "success", "manual", when, when, when)}
    drifts = {
        "tpl.a": DriftVerdict("manual__2026-05-01T03:00:00+00:00", "warned", "psi of distance_km 0.12 > 0.1", "1")
    }
    models = {
        "tpl.a": ModelState("tpl.a", True, "1", "rmse", 7.25, "promoted", "beat <the> champion", "1", "r1"),
        "tpl.b": ModelState("tpl.b", registered=True),
        "tpl.c": ModelState("tpl.c"),
        "tpl.e": ModelState("tpl.e", error="registry unreachable: ConnectionError: refused"),
    }
    return dags, runs, drifts, models


def test_rows_join_the_facts_and_build_links() -> None:
    rows = {r["dag_id"]: r for r in build_rows(*_facts(), ui_root="/airflow", mlflow_ui="http://mlflow:5000/")}

    a = rows["tpl.a"]
    assert a["last_run"]["state"] == "success"
    assert a["last_run"]["end_date"] == "2026-05-01T03:00:00+00:00"
    assert a["champion"] == {"version": "1", "metric": "rmse", "value": 7.25}
    assert a["champion_note"] is None
    assert a["decision"]["decision"] == "promoted"
    assert a["drift"]["status"] == "warned"
    assert a["links"] == {
        "dag": "/airflow/dags/tpl.a",
        "last_run": "/airflow/dags/tpl.a/runs/manual__2026-05-01T03%3A00%3A00%2B00%3A00",
        "mlflow_model": "http://mlflow:5000/#/models/tpl.a",
        "mlflow_champion": "http://mlflow:5000/#/models/tpl.a/versions/1",
        "mlflow_decision": "http://mlflow:5000/#/models/tpl.a/versions/1",
        "required_actions": None,
    }
    assert rows["tpl.b"]["champion_note"] == NO_CHAMPION
    assert rows["tpl.b"]["paused"] is True
    assert rows["tpl.c"]["champion_note"] == NO_MODEL
    assert rows["tpl.c"]["links"]["mlflow_model"] is None
    assert rows["tpl.c"]["last_run"] is None
    assert rows["tpl.c"]["drift"] is None
    assert (
        rows["tpl.e"]["registry_error"]
        == rows["tpl.e"]["champion_note"]
        == "registry unreachable: ConnectionError: refused"
    )


def test_the_page_has_one_row_per_city_with_escaped_values() -> None:
    from html.parser import HTMLParser

    rows = build_rows(*_facts(), mlflow_ui=None)
    page = render(rows, generated_at="2026-05-01T04:00:00+00:00", user="alice")

    cells: dict[str, dict[str, dict[str, str]]] = {}

    class Cells(HTMLParser):
        row: str | None = None

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found = {k: v or "" for k, v in attrs}
            if tag == "tr" and "fleet-row" in found.get("class", ""):
                self.row = found["data-dag-id"]
                cells[self.row] = {"row": found}
            elif tag == "td" and self.row:
                cells[self.row][found["class"].split()[0]] = found

    Cells().feed(page)
    assert list(cells) == ["tpl.a", "tpl.b", "tpl.c", "tpl.e"]
    assert cells["tpl.a"]["last-run"]["data-state"] == "success"
    assert cells["tpl.a"]["champion"]["data-version"] == "1"
    assert cells["tpl.a"]["metric"] == {
        "class": "metric",
        "data-metric": "rmse",
        "data-value": "7.25",
        "data-sort": "7.25",
    }
    assert cells["tpl.a"]["decision"]["data-decision"] == "promoted"
    assert cells["tpl.a"]["drift"]["data-status"] == "warned"
    assert cells["tpl.c"]["last-run"]["data-state"] == "none"
    assert cells["tpl.c"]["drift"]["data-status"] == "none"
    assert "registry-error" in cells["tpl.e"]["row"]["class"]
    assert "beat &lt;the&gt; champion" in page
    assert "<the>" not in page
    assert NO_MODEL in page
    assert "registry unreachable: ConnectionError: refused" in page
    assert 'href="/dags/tpl.a"' in page
    assert "mlflow-model-link" not in page


def test_an_empty_fleet_says_so() -> None:
    assert 'id="fleet-empty"' in render([], generated_at="now")


def test_the_fleet_costs_one_search_per_template_plus_one_call_per_kept_champion(
    client: MlflowClient, tmp_path: Path
) -> None:
    names = [f"{template}.{city}" for template in ("tpl", "other") for city in ("a", "b", "c")]
    for name in names:
        won = _version(client, name, tmp_path, decision="promoted", reason="won", metric="rmse", challenger_score=1.0)
        client.set_registered_model_alias(name, "champion", won)
    _version(client, "tpl.c", tmp_path, decision="kept", reason="no better", metric="rmse", challenger_score=2.0)
    counting = CountingClient(client)

    states = read_models(counting, names)  # type: ignore[arg-type]

    assert counting.calls == {"search_registered_models": 2, "get_model_version": 1}
    assert states["tpl.c"].champion_version == "1"
    assert states["tpl.c"].score == 1.0
    assert states["tpl.c"].decision == "kept"
    assert all(states[n].decision == "promoted" for n in names if n != "tpl.c")


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            {"run_id": "r", "state": "failed", "drift_verdict": {"status": "failed", "detail": "psi 0.4 > 0.25"}},
            DriftVerdict("r", "failed", "psi 0.4 > 0.25"),
        ),
        (  # a crash, not drift (review L2)
            {"run_id": "r", "state": "failed"},
            DriftVerdict("r", "error", "the drift task failed without a verdict; its log says why"),
        ),
        (  # a run from before the drift_verdict XCom: its return value
            {"run_id": "r", "state": "success", "return_value": {"status": "skipped", "reason": "no champion yet"}},
            DriftVerdict("r", "skipped", "no champion yet"),
        ),
        (
            {
                "run_id": "r",
                "state": "success",
                "return_value": {"status": "passed", "summary": "all fine", "champion_version": 3},
            },
            DriftVerdict("r", "passed", "all fine", "3"),
        ),
        (  # the verdict names the features flagged after the fleet's adjustment
            {"run_id": "r", "state": "success", "drift_verdict": {"status": "warned", "flagged": {"x": 0.01}}},
            DriftVerdict("r", "warned", None, None, {"x": 0.01}),
        ),
        (  # a return value: the record's calibration section
            {"run_id": "r", "state": "success", "return_value": {"status": "passed", "calibration": {"flagged": {}}}},
            DriftVerdict("r", "passed", None, None, {}),
        ),
    ],
)
def test_the_drift_verdict_comes_from_the_xcom_or_the_task_state(entry: dict[str, Any], expected: DriftVerdict) -> None:
    assert verdict_from(entry) == expected


def test_the_drift_cell_lists_the_flagged_features_with_their_q_values() -> None:
    dags, runs, _, models = _facts()
    drifts = {"tpl.a": DriftVerdict("r", "failed", "drift FAILED", "1", {"temp<c>": 0.02, "distance_km": 0.001})}

    rows = build_rows(dags, runs, drifts, models)
    page = render(rows, generated_at="now")

    assert rows[0]["drift"]["flagged"] == [
        {"column": "distance_km", "q_value": 0.001},
        {"column": "temp<c>", "q_value": 0.02},
    ]
    assert '<ul class="flagged"><li data-column="distance_km" data-q="0.001">distance_km q=0.001</li>' in page
    assert '<li data-column="temp&lt;c&gt;" data-q="0.02">temp&lt;c&gt; q=0.02</li></ul>' in page
    assert page.count('class="flagged"') == 1  # only the city with flags


def test_a_city_the_kill_switch_disables_shows_why_on_its_row(client: MlflowClient, tmp_path: Path) -> None:
    from airflow_ml.ml import kill_switch

    champion = _version(client, "tpl.a", tmp_path, decision="promoted", metric="rmse", challenger_score=7.0)
    client.set_registered_model_alias("tpl.a", "champion", champion)
    _version(client, "tpl.b", tmp_path)
    mark = kill_switch.disable(client, "tpl.a", reason="bad <feed>", by="ana")

    states = read_models(client, ["tpl.a", "tpl.b"])
    rows = build_rows([CityDag("tpl.a", "a"), CityDag("tpl.b", "b")], {}, {}, states)
    page = render(rows, generated_at="now")

    assert states["tpl.a"].disabled == mark.to_dict()
    assert states["tpl.b"].disabled is None
    assert rows[0]["disabled"] == {"model_name": "tpl.a", "reason": "bad <feed>", "by": "ana", "at": mark.at}
    assert rows[1]["disabled"] is None
    assert 'class="fleet-row disabled" id="fleet-row-tpl.a"' in page
    assert '<span class="badge bad disabled-badge">disabled</span>' in page
    assert f"bad &lt;feed&gt; (by ana, since {mark.at}; airflow-ml enable serves it again)" in page
    assert page.count("disabled-badge") == 1


def test_a_row_reads_the_model_its_dags_model_tag_names(client: MlflowClient, tmp_path: Path) -> None:
    # registry.name_pattern 'main.ml.{template}_{city}': the DAG tpl.a's model is main.ml.tpl_a (tag model:<name>).
    champion = _version(client, "main.ml.tpl_a", tmp_path, decision="promoted", metric="rmse", challenger_score=7.0)
    client.set_registered_model_alias("main.ml.tpl_a", "champion", champion)
    dags = [CityDag("tpl.a", "a", model="main.ml.tpl_a"), CityDag("tpl.b", "b")]

    states = read_models(client, [dag.model_name for dag in dags])
    rows = build_rows(dags, {}, {}, states)

    assert (rows[0]["model_name"], rows[0]["champion"]["version"]) == ("main.ml.tpl_a", champion)
    assert (rows[1]["model_name"], rows[1]["champion"]) == ("tpl.b", None)  # the default: named as its DAG


def test_a_decisions_run_is_the_registering_run_unless_an_older_version_named_another(
    client: MlflowClient, tmp_path: Path
) -> None:
    new = _version(client, "tpl.a", tmp_path, decision="kept")
    client.set_model_version_tag("tpl.a", new, "airflow.run_id", "scheduled__1")
    old = _version(client, "tpl.b", tmp_path, decision="promoted", airflow_run_id="monitor__2")  # as before 2026-11
    client.set_model_version_tag("tpl.b", old, "airflow.run_id", "scheduled__0")

    states = read_models(client, ["tpl.a", "tpl.b"])

    assert (states["tpl.a"].decision_run_id, states["tpl.b"].decision_run_id) == ("scheduled__1", "monitor__2")
