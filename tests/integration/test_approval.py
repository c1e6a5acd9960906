"""Promotion mode ``require_approval``: a person answers through Airflow's human-in-the-loop REST API.

Real runs (dag.test()) wait in Airflow's "awaiting input" state; a responder thread answers through the
api-server's own app, as the "Required actions" page does.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.airflow_runs import airflow_api
from tests.support.mlflow_stores import logged_decision
from tests.support.worlds import city_world

pytestmark = pytest.mark.integration
CITY = "berlin"
MODEL = f"ride_duration.{CITY}"
ASK = "require_approval"
UI = "http://mlflow.example:5000"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, airflow_db: Path, dags_dir: Path) -> Iterator[dict[str, Any]]:
    with (
        pytest.MonkeyPatch.context() as mp,
        city_world(tmp_path_factory.mktemp("approval"), dags_dir, CITY) as world,
        airflow_api() as api,
    ):
        mp.setenv("AIRFLOW_ML_MLFLOW_UI_URL", UI)  # the MLflow UI a browser reaches: the charts' images come from it
        yield {**world, "api": api}


class Responder(threading.Thread):
    """Answers the first open approval request of the city's DAG, and remembers what it was shown.

    It looks until it has answered or the run has ended (``stop``), never for a fixed time: a run that reaches
    its approval late on a loaded machine would otherwise wait, in dag.test(), for an answer nobody gives.
    """

    def __init__(self, api: Any, option: str) -> None:
        super().__init__(daemon=True)
        self.api, self.option = api, option
        self.stop = threading.Event()
        self.request: dict[str, Any] | None = None
        self.status: int | None = None
        self.seen: list[int | str] = []  # each failed look or answer (status or error), for the failure message

    def run(self) -> None:
        while not self.stop.is_set() and self.request is None:
            try:
                self._look_and_answer()
            except Exception as exc:  # noqa: BLE001 - a thread that dies here leaves dag.test() waiting for ever
                self.seen.append(repr(exc))
            self.stop.wait(0.5)

    def _look_and_answer(self) -> None:
        """Answer the first open request, if any; record each refused look or answer."""
        listing = self.api.get(f"/api/v2/dags/{MODEL}/dagRuns/~/hitlDetails", params={"response_received": False})
        if listing.status_code != 200:
            self.seen.append(listing.status_code)
        for detail in listing.json().get("hitl_details", []) if listing.status_code == 200 else []:
            ti = detail["task_instance"]
            answer = self.api.patch(
                f"/api/v2/dags/{MODEL}/dagRuns/{ti['dag_run_id']}/taskInstances/{ti['task_id']}/-1/hitlDetails",
                json={"chosen_options": [self.option], "params_input": {}},
            )
            self.status = answer.status_code
            # A request seen a moment before its task is deferred is refused: ask again on the next look, as
            # a person would, rather than leave the run waiting for an answer that never comes.
            if answer.status_code == 200:
                self.request = detail
            else:
                self.seen.append(answer.status_code)
            break


def _run(world: dict[str, Any], conf: dict[str, Any], answer: str | None = None) -> dict[str, Any]:
    from airflow_ml.data.snapshot import snapshot_location

    responder = Responder(world["api"], answer) if answer else None
    if responder:
        responder.start()
    try:
        run = world["build"]().test(run_conf=conf)
    finally:
        if responder:
            responder.stop.set()
            responder.join(timeout=5)
    folder = Path(snapshot_location(str(world["data_root"] / "snapshots"), "ride_duration", CITY, run.run_id))
    files = {name: folder / f"{name}.json" for name in ("decision", "approval", "drift")}
    return {
        "state": str(run.state),
        **{name: json.loads(path.read_text()) if path.exists() else None for name, path in files.items()},
        "asked": responder.request if responder else None,
        "status": responder.status if responder else None,
        "failed_statuses": responder.seen if responder else [],
    }


def _champion(client: Any) -> str | None:
    from airflow_ml.ml.model_registry import CHAMPION, version_by_alias

    version = version_by_alias(client, MODEL, CHAMPION)
    return str(version.version) if version is not None else None


@pytest.fixture(scope="module")
def rejected(world: dict[str, Any]) -> dict[str, Any]:
    return _run(world, {"promotion_mode": ASK, "reason": "first model, needs a look"}, answer="Reject")


@pytest.fixture(scope="module")
def approved(world: dict[str, Any], rejected: dict[str, Any]) -> dict[str, Any]:
    return _run(world, {"promotion_mode": ASK}, answer="Approve")


@pytest.fixture(scope="module")
def refused_by_gate(world: dict[str, Any], approved: dict[str, Any]) -> dict[str, Any]:
    # One boosting round: the gate keeps the champion, so nobody is asked.
    return _run(world, {"promotion_mode": ASK, "num_boost_round": 1, "num_leaves": 4})


def test_a_rejected_promotion_keeps_the_champion_and_records_who_rejected(
    world: dict[str, Any], rejected: dict[str, Any]
) -> None:
    assert rejected["state"] == "success"
    assert rejected["status"] == 200
    assert rejected["asked"]["subject"] == f"Promote {MODEL} v1 to champion?"
    assert "no champion yet" in rejected["asked"]["body"]
    assert "first model, needs a look" in rejected["asked"]["body"]
    assert rejected["decision"]["decision"] == "awaiting-approval"
    assert _champion(world["client"]) is None
    tags = world["client"].get_model_version(MODEL, "1").tags
    assert tags["gate.decision"] == "rejected"
    assert tags["gate.reason"] == rejected["approval"]["reason"]
    assert logged_decision(world["client"], MODEL, "1")["approved_by"] == rejected["approval"]["approved_by"] != ""
    assert "challenger" not in world["client"].get_registered_model(MODEL).aliases  # refused: never shadow-scored
    assert rejected["approval"]["reason"].startswith("rejected by ")


def test_an_approved_promotion_makes_the_challenger_champion(world: dict[str, Any], approved: dict[str, Any]) -> None:
    assert approved["state"] == "success"
    assert approved["asked"]["subject"] == f"Promote {MODEL} v2 to champion?"
    assert _champion(world["client"]) == "2"
    tags = world["client"].get_model_version(MODEL, "2").tags
    assert tags["gate.decision"] == "promoted"
    assert tags["gate.reason"].startswith("approved by ")
    assert approved["approval"]["decision"] == "promoted"


def test_nobody_is_asked_when_the_gate_keeps_the_champion(
    world: dict[str, Any], refused_by_gate: dict[str, Any]
) -> None:
    assert refused_by_gate["state"] == "success"
    assert refused_by_gate["decision"]["decision"] == "kept"
    assert refused_by_gate["approval"] is None
    open_requests = world["api"].get(f"/api/v2/dags/{MODEL}/dagRuns/~/hitlDetails", params={"response_received": False})
    assert open_requests.json()["total_entries"] == 0
    assert _champion(world["client"]) == "2"


def test_an_approval_after_the_champion_moved_moves_nothing(
    world: dict[str, Any], refused_by_gate: dict[str, Any]
) -> None:
    from airflow_ml.ml.steps.approve_step import ChampionMovedError, settle_approval

    stale = {**refused_by_gate["decision"], "baseline_version": "1", "decision": "awaiting-approval"}
    with pytest.raises(ChampionMovedError, match="champion moved from v1 to v2"):
        settle_approval(world["client"], stale, approved=True, approver="late reviewer")
    assert _champion(world["client"]) == "2"


def test_the_charts_are_logged_on_their_runs_and_the_approval_screen_shows_the_gates(
    world: dict[str, Any], rejected: dict[str, Any], refused_by_gate: dict[str, Any]
) -> None:
    client = world["client"]
    run_id = client.get_model_version(MODEL, "1").run_id
    charts = rejected["decision"]["charts"]
    assert charts["run_id"] == run_id  # the challenger's own training run, beside gate/decision.json
    assert charts["artifacts"] == ["gate/charts/scores.png", "gate/charts/slices.png"]

    def pngs(run: str, folder: str) -> set[str]:
        return {a.path for a in client.list_artifacts(run, folder) if a.file_size and a.path.endswith(".png")}

    assert pngs(run_id, "gate/charts") == set(charts["artifacts"])
    assert pngs(run_id, "holdout/charts") == {"holdout/charts/predicted_vs_actual.png"}
    body = rejected["asked"]["body"]
    for path in charts["artifacts"]:
        image = f"{UI}/get-artifact?path={path.replace('/', '%2F')}&run_uuid={run_id}"
        page = f"{UI}/#/experiments/{charts['experiment_id']}/runs/{run_id}/artifactPath/{path}"
        assert f"({image})]({page})" in body
    assert "| pickup\\_zone=" in body  # the worst slices as a table
    drift = refused_by_gate["drift"]  # the third run has a champion (v2) to compare with
    assert drift["charts"] == ["charts/distributions.png"]
    assert pngs(drift["mlflow_run_id"], "charts") == {"charts/distributions.png"}
