"""The loop, closed: the scoring DAG logs a champion's predictions, labels arrive, the monitor DAG demotes it.

One demo city with a real LightGBM champion v2 (v1 before it). Its ``<template>.berlin.score`` DAG scores five
days of incoming rows into the prediction log (``dag.test()`` per day); the days' outcomes then arrive 30% off;
``<template>.monitor`` joins them to what scoring logged (prediction ids recomputed from ``trip_id``) and the
supervisor rolls berlin back to v1, recording the demotion the gate reads before the next promotion.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.airflow_runs import mapped_task_states, task_states
from tests.support.mlflow_stores import wire_mlflow
from tests.support.monitoring_worlds import FIRST_LIVE_DAY, MONITORING, demo_days, register_champion, write_labels
from tests.support.worlds import copy_template

pytestmark = pytest.mark.integration
TEMPLATE = "ride_duration_loop"
CITY = "berlin"
DAYS = [FIRST_LIVE_DAY + dt.timedelta(days=i) for i in range(5)]


def _at(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), dt.UTC)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, airflow_db: Path, dags_dir: Path) -> Iterator[dict[str, Any]]:
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("monitoring_loop")
    copy_template(root, TEMPLATE)
    text = f"city: {CITY}\ntemplate: {TEMPLATE}\ndag:\n  retries: 0\n  schedule: null\n{MONITORING}"
    (root / "cities" / f"{CITY}.yaml").write_text(text, encoding="utf-8")
    (dags_dir / "monitoring_loop.py").write_text(
        "from airflow_ml.factory import register_score_dags\n"
        "from airflow_ml.factory.monitor_dags import register_monitor_dags\n"
        f"register_score_dags(globals(), templates_root={str(root)!r})\n"
        f"register_monitor_dags(globals(), templates_root={str(root)!r})\n",
        encoding="utf-8",
    )
    data = root / "data"
    for day in DAYS:  # the rows to score arrive, without their outcome
        folder = data / "incoming" / CITY / f"date={day}"
        folder.mkdir(parents=True)
        demo_days(CITY, day, 1).drop(columns=["duration_min"]).to_parquet(folder / "part-0.parquet", index=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_ML_DATA_ROOT", str(data))
        store = wire_mlflow(root / "mlflow", mp)
        client = MlflowClient(tracking_uri=store["tracking_uri"], registry_uri=store["tracking_uri"])
        register_champion(client, TEMPLATE, CITY)
        yield {"root": root, "data": data, "client": client}


def test_scored_predictions_whose_labels_go_30_percent_off_get_the_champion_demoted(world: dict[str, Any]) -> None:
    from airflow_ml.data.prediction_log import read_predictions
    from airflow_ml.factory import register_score_dags
    from airflow_ml.factory.monitor_dags import register_monitor_dags
    from airflow_ml.ml.demotion_guard import active_demotion

    for day in DAYS:
        score = register_score_dags({}, templates_root=world["root"])[f"{TEMPLATE}.{CITY}.score"]
        run = score.test(run_after=_at(day), logical_date=_at(day))
        assert str(run.state) == "success", task_states(score.dag_id, run.run_id)
    logged = read_predictions(str(world["data"]), TEMPLATE, CITY, DAYS[0], DAYS[-1])
    assert set(logged["model_version"]) == {"2"}
    write_labels(world["data"] / "labels" / CITY, demo_days(CITY, DAYS[0], len(DAYS)), error=0.3)

    monitor = register_monitor_dags({}, templates_root=world["root"])[f"{TEMPLATE}.monitor"]
    run = monitor.test(logical_date=_at(DAYS[-1]))

    assert mapped_task_states(monitor.dag_id, run.run_id, "monitor") == {CITY: "success"}
    client = world["client"]
    assert str(client.get_model_version_by_alias(f"{TEMPLATE}.{CITY}", "champion").version) == "1"
    guard = active_demotion(client, f"{TEMPLATE}.{CITY}")
    assert guard is not None
    assert (guard.version, guard.requires) == ("2", "require_approval")
    # Every prediction scoring logged on the newest day found its label: the ids agree.
    labelled = client.get_model_version(f"{TEMPLATE}.{CITY}", "2").tags
    assert labelled["monitor.verdict"] == "demote"
    assert int(labelled["monitor.live_labels"]) == len(logged[logged["partition_date"] == DAYS[-1]])
