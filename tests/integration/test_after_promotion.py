"""After promotion: the champion Asset event, the health check with its automatic rollback, the rollback DAG.

One city's story, in order (each test builds on the registry the previous ones left): a first promotion
emits one event; a kept champion emits none; a forced promotion emits one; the rollback DAG restores the
previous champion and emits an event through the alias; a second rollback is refused; a promotion whose
health check fails is rolled back and emits nothing; a crash between register and gate leaves the champion
untouched and a rerun completes.

The city uses the demo template under another name (``ride_duration_rb``), so its DAG id is its own in the
session's dags folder while the demo data of berlin is used.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import REPO
from tests.support.airflow_runs import task_states
from tests.support.worlds import city_world

pytestmark = pytest.mark.integration
TEMPLATE = "ride_duration_rb"
CITY = "berlin"
MODEL = f"{TEMPLATE}.{CITY}"
ASSET_URI = f"x-airflow-ml://champion/{MODEL}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, airflow_db: Path, dags_dir: Path) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("after_promotion")
    (dags_dir / "rollback_after_promotion.py").write_text(
        "from airflow_ml.factory.rollback import build_rollback_dag\nrollback_dag = build_rollback_dag()\n"
    )
    with city_world(root, dags_dir, CITY, template=TEMPLATE) as world:
        yield {**world, "city_file": root / "cities" / f"{CITY}.yaml"}


def _run(world: dict[str, Any], conf: dict[str, Any] | None = None, dag: Any = None) -> dict[str, Any]:
    from airflow_ml.data.snapshot import snapshot_location

    run = (dag or world["build"]()).test(run_conf=conf or {})
    folder = Path(snapshot_location(str(world["data_root"] / "snapshots"), TEMPLATE, CITY, run.run_id))
    read = {name: folder / f"{name}.json" for name in ("decision", "health")}
    return {
        "run_id": run.run_id,
        "state": str(run.state),
        "tasks": task_states(MODEL, run.run_id),
        **{name: json.loads(path.read_text()) if path.exists() else None for name, path in read.items()},
    }


def _rollback(conf: dict[str, Any]) -> dict[str, Any]:
    from airflow_ml.factory.rollback import ROLLBACK_DAG_ID, build_rollback_dag

    run = build_rollback_dag().test(run_conf=conf)
    return {"run_id": run.run_id, "state": str(run.state), "tasks": task_states(ROLLBACK_DAG_ID, run.run_id)}


def _events() -> list[dict[str, Any]]:
    """The champion Asset's events, oldest first, read from Airflow's metadata database."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id).where(AssetModel.uri == ASSET_URI)
        ).all()
        return [{"extra": dict(e.extra or {}), "dag_id": e.source_dag_id, "run_id": e.source_run_id} for e in rows]


def _alias(client: Any, alias: str) -> str | None:
    from airflow_ml.ml.model_registry import version_by_alias

    version = version_by_alias(client, MODEL, alias)
    return str(version.version) if version is not None else None


def test_a_first_promotion_is_checked_and_emits_one_event(world: dict[str, Any]) -> None:
    run = _run(world)
    assert run["state"] == "success", run["tasks"]
    assert run["decision"]["decision"] == "promoted"
    assert run["tasks"]["health_check"] == "success"
    assert run["health"]["passed"] is True
    assert run["health"]["champion_version"] == "1"
    assert run["health"]["problems"] == []
    assert world["client"].get_model_version(MODEL, "1").tags["health.passed"] == "true"
    events = _events()
    assert len(events) == 1
    assert events[0]["extra"] == {
        "model_name": MODEL,
        "version": "1",
        "previous_version": None,
        "decision": "promoted",
        "run_id": run["run_id"],
    }
    assert events[0]["dag_id"] == MODEL


def test_a_kept_champion_emits_no_event(world: dict[str, Any]) -> None:
    run = _run(world, {"num_boost_round": 1, "num_leaves": 4})  # a weak challenger: the gate keeps v1
    assert run["state"] == "success", run["tasks"]
    assert run["decision"]["decision"] == "kept"
    assert run["tasks"]["health_check"] == "skipped"
    assert run["health"] is None
    assert _alias(world["client"], "champion") == "1"
    assert len(_events()) == 1


def test_rollback_after_two_promotions_restores_the_previous_champion(world: dict[str, Any]) -> None:
    forced = _run(world, {"promotion_mode": "force", "reason": "second promotion, to roll back"})
    assert forced["state"] == "success", forced["tasks"]
    client = world["client"]
    assert (_alias(client, "champion"), _alias(client, "previous-champion")) == ("3", "1")
    assert [e["extra"]["version"] for e in _events()] == ["1", "3"]
    assert _events()[1]["extra"]["previous_version"] == "1"

    run = _rollback({"model": MODEL, "reason": "v3 mispredicts airport trips"})
    assert run["state"] == "success", run["tasks"]
    assert _alias(client, "champion") == "1"
    assert _alias(client, "previous-champion") is None, "v1 was the first champion: nothing before it"
    for version in ("1", "3"):
        tags = client.get_model_version(MODEL, version).tags
        assert tags["rollback.reason"] == "v3 mispredicts airport trips"
        assert tags["rollback.airflow_run_id"] == run["run_id"]
        assert tags["rollback.rolled_back_version"] == "3"
        assert tags["rollback.restored_version"] == "1"
        assert tags["rollback.by"]
        assert tags["rollback.at"]
    restored_run = client.get_model_version(MODEL, "1").run_id
    artifacts = [a.path for a in client.list_artifacts(restored_run, "rollback")]
    assert artifacts == ["rollback/rollback.json"]
    event = _events()[-1]
    assert len(_events()) == 3
    assert event["extra"]["decision"] == "rolled-back"
    assert (event["extra"]["version"], event["extra"]["previous_version"]) == ("1", "3")
    assert event["dag_id"] == "airflow_ml.rollback"


def test_a_rollback_without_a_previous_champion_is_refused(world: dict[str, Any]) -> None:
    from airflow_ml.exceptions import RollbackRefused
    from airflow_ml.ml.model_registry import rollback

    run = _rollback({"model": MODEL, "reason": "once more"})
    assert run["state"] == "failed"
    assert run["tasks"]["rollback"] == "failed"
    assert _alias(world["client"], "champion") == "1"
    assert len(_events()) == 3
    with pytest.raises(RollbackRefused, match="has no 'previous-champion' alias: v1 was its first champion"):
        rollback(world["client"], MODEL, "once more")


def test_a_rollback_of_an_unknown_model_names_close_matches(world: dict[str, Any]) -> None:
    from airflow_ml.exceptions import RollbackRefused
    from airflow_ml.ml.model_registry import rollback

    with pytest.raises(RollbackRefused, match=r"model 'ride_duration_rb\.berlln' is not in the registry; did you mean"):
        rollback(world["client"], "ride_duration_rb.berlln", "typo")
    with pytest.raises(RollbackRefused, match="needs a reason"):
        rollback(world["client"], MODEL, "  ")
    run = _rollback({"model": "ride_duration_rb.berlln", "reason": "typo"})
    assert run["state"] == "failed"
    assert _alias(world["client"], "champion") == "1"


def test_the_rollback_form_requires_a_model_id_and_a_reason() -> None:
    from airflow.sdk.definitions.param import ParamValidationError

    from airflow_ml.factory.rollback import build_rollback_dag

    form = build_rollback_dag().params
    assert form.get_param("model").resolve(MODEL) == MODEL
    assert form.get_param("reason").resolve("bad model") == "bad model"
    bad = (("model", "Berlin!"), ("model", "ride duration.berlin"), ("model", None), ("reason", ""), ("reason", None))
    for field, value in bad:
        with pytest.raises(ParamValidationError):
            form.get_param(field).resolve(value)


def test_a_failed_health_check_rolls_back_and_emits_nothing(world: dict[str, Any]) -> None:
    # Thresholds no real model meets on a 10-row sample: its mean and quantiles differ from the whole holdout's.
    original = world["city_file"].read_text()
    world["city_file"].write_text(
        original + "health:\n  sample_rows: 10\n  max_mean_shift: 0\n  max_quantile_shift: 0\n"
    )
    try:
        run = _run(world, {"promotion_mode": "force", "reason": "promote, then fail the check"})
    finally:
        world["city_file"].write_text(original)
    client = world["client"]
    assert run["state"] == "failed"
    assert run["tasks"]["gate"] == "success"
    assert run["tasks"]["health_check"] == "failed"
    assert run["health"]["passed"] is False
    assert any(p.startswith("distribution: ") for p in run["health"]["problems"]), run["health"]
    assert run["health"]["rollback"]["restored_version"] == "1"
    assert run["health"]["rollback"]["rolled_back_version"] == "4"
    assert _alias(client, "champion") == "1"
    tags = client.get_model_version(MODEL, "4").tags
    assert tags["health.passed"] == "false"
    assert tags["rollback.by"] == "health_check"
    assert tags["rollback.reason"].startswith("health check failed: distribution: ")
    assert len(_events()) == 3, "a promotion rolled back by its health check is never announced"


def test_a_crash_between_register_and_gate_keeps_the_champion_and_a_rerun_completes(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = {"conn_type": "mlflow", "extra": {"tracking_uri": "http://127.0.0.1:9"}}
    live = os.environ["AIRFLOW_CONN_MLFLOW_DEFAULT"]

    def lose_mlflow(context: Any) -> None:
        # The tracking server goes away right after registration: the gate cannot reach it.
        os.environ["AIRFLOW_CONN_MLFLOW_DEFAULT"] = json.dumps(dead)

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    dag = world["build"]()
    dag.get_task("register").on_success_callback = [lose_mlflow]
    try:
        crashed = _run(world, {"promotion_mode": "force", "reason": "crash after register"}, dag=dag)
    finally:
        os.environ["AIRFLOW_CONN_MLFLOW_DEFAULT"] = live
    client = world["client"]
    assert crashed["state"] == "failed"
    assert crashed["tasks"]["register"] == "success"
    assert crashed["tasks"]["gate"] == "failed"
    assert crashed["decision"] is None
    assert _alias(client, "champion") == "1"
    assert _alias(client, "challenger") == "5"
    assert not any(k.startswith("gate.") for k in client.get_model_version(MODEL, "5").tags)

    rerun = _run(world, {"promotion_mode": "force", "reason": "rerun after the crash"})
    assert rerun["state"] == "success", rerun["tasks"]
    assert _alias(client, "champion") == "6"
    assert _alias(client, "previous-champion") == "1"
    assert len(_events()) == 4


def test_the_champion_asset_helper_names_the_citys_asset() -> None:
    from airflow_ml.factory import champion_asset
    from airflow_ml.templates.loader import load_city_configs

    configs, errors = load_city_configs(REPO / "dag_templates")
    assert not errors
    asset = champion_asset(configs[0])
    assert asset.uri == f"x-airflow-ml://champion/{configs[0].model_name}"
    assert asset.name == f"{configs[0].dag_id}.champion"
