"""The monitor DAG, ``<template>.monitor``, run by ``dag.test()``: a real registry, real LightGBM champions.

Three demo cities each have a champion v2 (promoted after v1, so v1 is their previous champion), five days of
predictions in the log and their labels; berlin's labels carry the issue's 30% error. One run of the DAG maps
its task over the three cities: berlin alone is demoted to v1, with its decision recorded beside the log and in
MLflow, and its champion Asset gets the event; the others keep v2. A city whose labels are broken fails alone.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.airflow_runs import asset_events, mapped_task_states
from tests.support.mlflow_stores import wire_mlflow
from tests.support.monitoring_worlds import FIRST_LIVE_DAY, MONITORING, log_days, register_champion, write_labels
from tests.support.worlds import copy_template

pytestmark = pytest.mark.integration
TEMPLATE = "ride_duration_mon"
CITIES = ("berlin", "lisbon", "sao_paulo")
LAST_DAY = FIRST_LIVE_DAY + dt.timedelta(days=4)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, airflow_db: Path, dags_dir: Path) -> Iterator[dict[str, Any]]:
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("monitor_dag")
    copy_template(root, TEMPLATE)
    for city in CITIES:
        text = f"city: {city}\ntemplate: {TEMPLATE}\ndag:\n  retries: 0\n  schedule: null\n{MONITORING}"
        (root / "cities" / f"{city}.yaml").write_text(text, encoding="utf-8")
    (dags_dir / "monitor_world.py").write_text(
        "from airflow_ml.factory.monitor_dags import register_monitor_dags\n"
        f"register_monitor_dags(globals(), templates_root={str(root)!r})\n",
        encoding="utf-8",
    )
    data = root / "data"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_ML_DATA_ROOT", str(data))
        store = wire_mlflow(root / "mlflow", mp)
        client = MlflowClient(tracking_uri=store["tracking_uri"], registry_uri=store["tracking_uri"])
        for city in CITIES:
            champion = register_champion(client, TEMPLATE, city)
            rows = log_days(data, champion, FIRST_LIVE_DAY, 5)
            write_labels(data / "labels" / city, rows, error=0.3 if city == "berlin" else 0.0)
        yield {"root": root, "data": data, "client": client}


def _run(world: dict[str, Any]) -> dict[str, Any]:
    from airflow_ml.factory.monitor_dags import register_monitor_dags

    dag = register_monitor_dags({}, templates_root=world["root"])[f"{TEMPLATE}.monitor"]
    run = dag.test(logical_date=dt.datetime.combine(LAST_DAY, dt.time(), dt.UTC))
    return {
        "state": str(run.state),
        "tasks": mapped_task_states(dag.dag_id, run.run_id, "monitor"),
        "run_id": run.run_id,
    }


def _champions(client: Any) -> dict[str, str]:
    return {city: str(client.get_model_version_by_alias(f"{TEMPLATE}.{city}", "champion").version) for city in CITIES}


def _record(world: dict[str, Any], city: str) -> dict[str, Any]:
    path = world["data"] / "monitoring" / TEMPLATE / city / f"{LAST_DAY}.json"
    return dict(json.loads(path.read_text(encoding="utf-8")))


def test_30_percent_error_in_one_city_s_labels_demotes_that_city_only(world: dict[str, Any]) -> None:
    run = _run(world)

    assert run["state"] == "success"
    assert run["tasks"] == dict.fromkeys(CITIES, "success")
    assert _champions(world["client"]) == {"berlin": "1", "lisbon": "2", "sao_paulo": "2"}
    berlin = _record(world, "berlin")
    assert (berlin["status"], berlin["rollback"]["rolled_back_version"], berlin["rollback"]["by"]) == (
        "demote",
        "2",
        "supervisor",
    )
    assert berlin["supervisor"]["streak"] >= 3
    assert berlin["rollback"]["airflow_run_id"] == run["run_id"]
    assert {_record(world, city)["status"] for city in ("lisbon", "sao_paulo")} == {"healthy"}
    decision = world["client"].download_artifacts(berlin["mlflow_run_ids"][-1], "monitor/decision.json")
    assert json.loads(Path(decision).read_text(encoding="utf-8"))["status"] == "demote"
    (event,) = asset_events(f"x-airflow-ml://champion/{TEMPLATE}.berlin")
    assert (event["extra"]["decision"], event["extra"]["version"], event["dag_id"]) == (
        "demoted",
        "1",
        f"{TEMPLATE}.monitor",
    )
    assert asset_events(f"x-airflow-ml://champion/{TEMPLATE}.lisbon") == []


def test_a_city_whose_labels_are_broken_fails_alone(world: dict[str, Any]) -> None:
    broken = world["data"] / "labels" / "lisbon" / f"date={LAST_DAY}" / "part-0.parquet"
    broken.write_bytes(b"not parquet")

    run = _run(world)

    assert run["tasks"] == {"berlin": "success", "lisbon": "failed", "sao_paulo": "success"}
    assert _champions(world["client"]) == {"berlin": "1", "lisbon": "2", "sao_paulo": "2"}  # nothing more moved
    # berlin's challenger alias still names v2, the demoted version: it is never compared back in.
    assert _record(world, "berlin")["shadow"] == {
        "challenger_version": "2",
        "verdict": None,
        "reason": "v2 is the demoted version",
    }
