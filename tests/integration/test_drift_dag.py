"""The drift step end to end (dag.test(), real MLflow): skipped on a first run, passed on the same data,
and on shifted data a failed run that stops before training and leaves the champion alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.worlds import city_world

pytestmark = pytest.mark.integration
CITY = "sao_paulo"
MODEL = f"ride_duration.{CITY}"
#: The city's own limit for distance_km, looser than the template's psi.error (0.25): per-city layering.
CITY_DRIFT = "drift:\n  features:\n    distance_km:\n      psi: {error: 1.0}\n"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, airflow_db: Path, dags_dir: Path) -> Iterator[dict[str, Any]]:
    with city_world(tmp_path_factory.mktemp("drift"), dags_dir, CITY, extra=CITY_DRIFT) as world:
        yield world


def _run(world: dict[str, Any], conf: dict[str, Any] | None = None) -> dict[str, Any]:
    from airflow_ml.data.snapshot import snapshot_location

    run = world["build"]().test(run_conf=conf)
    folder = Path(snapshot_location(str(world["data_root"] / "snapshots"), "ride_duration", CITY, run.run_id))
    records = {}
    for name in ("manifest", "drift", "decision"):
        path = folder / f"{name}.json"
        records[name] = json.loads(path.read_text()) if path.exists() else None
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    return {"state": str(run.state), "run_id": run.run_id, "tasks": states, **records}


def _versions(client: Any) -> list[str]:
    return sorted(str(v.version) for v in client.search_model_versions(f"name='{MODEL}'"))


def _champion(client: Any) -> str:
    return str(client.get_model_version_by_alias(MODEL, "champion").version)


@pytest.fixture(scope="module")
def first_run(world: dict[str, Any]) -> dict[str, Any]:
    return _run(world)


@pytest.fixture(scope="module")
def same_data_run(world: dict[str, Any], first_run: dict[str, Any]) -> dict[str, Any]:
    return _run(world)


@pytest.fixture(scope="module")
def shifted_run(world: dict[str, Any], same_data_run: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd

    from airflow_ml.data.demo import batch_days, write_demo_data

    client = world["client"]
    before = {"champion": _champion(client), "versions": _versions(client)}
    # Two newer weeks whose trips are three times as long: the distance feature drifts.
    for path in write_demo_data(world["data_root"], cities=[CITY], batch="later", scale=0.3):
        frame = pd.read_parquet(path)
        frame.assign(distance_km=frame["distance_km"] * 3).to_parquet(path, index=False)
    window = {"window_start": batch_days("later")[0].isoformat()}
    return {**_run(world, window), "before": before}


def test_first_run_skips_drift_with_its_reason_and_makes_a_champion(
    world: dict[str, Any], first_run: dict[str, Any]
) -> None:
    assert first_run["state"] == "success"
    assert first_run["tasks"]["drift"] == "success"
    drift = first_run["drift"]
    assert drift["status"] == "skipped"
    assert "no champion yet (first run)" in drift["reason"]
    assert "mlflow_run_id" not in drift
    assert first_run["decision"]["decision"] == "promoted"
    assert _champion(world["client"]) == "1"


def test_the_champion_version_carries_its_training_snapshot(world: dict[str, Any], first_run: dict[str, Any]) -> None:
    from airflow_ml.ml.lineage import this_citys_champion, training_snapshot

    champion = this_citys_champion(world["client"], MODEL)
    assert champion is not None
    assert training_snapshot(world["client"], champion) == first_run["manifest"]["uri"]
    assert this_citys_champion(world["client"], "ride_duration.nowhere") is None


def test_same_data_passes_with_values_near_zero_logged_to_mlflow(
    world: dict[str, Any], first_run: dict[str, Any], same_data_run: dict[str, Any]
) -> None:
    client = world["client"]
    assert same_data_run["state"] == "success"
    drift = same_data_run["drift"]
    assert drift["status"] == "passed"
    assert drift["champion_version"] == "1"
    assert drift["champion_snapshot_uri"] == first_run["manifest"]["uri"]
    assert drift["champion_snapshot_hash"] == first_run["manifest"]["content_hash"]
    columns = {c["column"] for c in drift["checks"]}
    assert columns == {"distance_km", "pickup_hour", "weekday", "pickup_zone", "temperature_c", "is_raining"} | {
        "duration_min",
        "prediction",  # the champion's predictions on its training rows against this snapshot's
    }
    assert all(c["value"] == pytest.approx(0.0, abs=1e-9) for c in drift["checks"])
    # The same window as the champion's: no new rows, so the whole snapshot was compared, and the record says so.
    assert (drift["compared"]["requested"], drift["compared"]["mode"]) == ("new_rows", "whole_snapshot")
    assert "no partition of this snapshot is newer than the champion's training window" in drift["compared"]["note"]
    run = client.get_run(drift["mlflow_run_id"])
    assert run.info.run_name == "drift"
    assert run.info.experiment_id == client.get_experiment_by_name(MODEL).experiment_id
    assert run.data.metrics["drift.distance_km.psi"] == pytest.approx(0.0, abs=1e-9)
    assert run.data.metrics["drift.pickup_zone.js_distance"] == pytest.approx(0.0, abs=1e-9)
    assert run.data.metrics["drift.duration_min.missing_rate_change"] == 0.0
    tags = run.data.tags
    assert tags["airflow_ml.champion_version"] == "1"
    assert tags["airflow_ml.snapshot_hash"] == same_data_run["manifest"]["content_hash"]
    assert tags["airflow_ml.city"] == CITY
    assert (tags["airflow.dag_id"], tags["airflow.task_id"]) == (MODEL, "drift")
    assert tags["airflow.run_id"] == same_data_run["run_id"]
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["charts", "drift.json"]
    assert [a.path for a in client.list_artifacts(run.info.run_id, "charts")] == ["charts/distributions.png"]
    assert same_data_run["tasks"]["train"] == "success"


def test_shifted_data_fails_at_drift_before_training_and_keeps_the_champion(
    world: dict[str, Any], shifted_run: dict[str, Any]
) -> None:
    client = world["client"]
    assert shifted_run["state"] == "failed"
    tasks = shifted_run["tasks"]
    assert (tasks["validate"], tasks["drift"]) == ("success", "failed")
    assert all(tasks[t] == "upstream_failed" for t in ("train", "register", "gate", "approve")), tasks
    assert shifted_run["decision"] is None
    assert _versions(client) == shifted_run["before"]["versions"]
    assert _champion(client) == shifted_run["before"]["champion"]
    # drift.json beside the snapshot names the feature, its value, the city's limit and where it is set.
    drift = shifted_run["drift"]
    assert drift["status"] == "failed"
    assert "distance_km.psi" in drift["breaches"]
    distance = next(c for c in drift["checks"] if (c["column"], c["statistic"]) == ("distance_km", "psi"))
    assert distance["severity"] == "error"
    assert distance["value"] > distance["error"] == 1.0
    assert distance["warn"] == 0.1  # not set by the city: the template's
    assert distance["setting"] == "drift.features.distance_km.psi"
    assert "distance_km (numeric): psi" in drift["summary"]
    assert "drift.features.distance_km.psi.error" in drift["summary"]
    # Only the new weeks were compared (the template's time column picks them), named with their first day.
    from airflow_ml.data.demo import batch_days

    assert drift["compared"]["mode"] == "new_rows"
    assert drift["compared"]["since"] == batch_days("later")[0].isoformat()
    assert drift["compared"]["rows"] == drift["current_rows"] == shifted_run["manifest"]["row_count"]
    run = client.get_run(drift["mlflow_run_id"])
    assert run.data.tags["airflow_ml.drift"] == "failed"
    assert run.data.metrics["drift.distance_km.psi"] == pytest.approx(distance["value"])


def test_every_run_keeps_the_drift_since_the_previous_snapshot_in_the_citys_history(
    world: dict[str, Any], first_run: dict[str, Any], same_data_run: dict[str, Any], shifted_run: dict[str, Any]
) -> None:
    from airflow_ml.ml import drift_history

    history = drift_history.read_history(drift_history.history_uri(str(world["data_root"]), "ride_duration", CITY))

    # The first two runs took the same snapshot: the rerun replaced its rows. The shifted run is compared with it.
    first, shifted = first_run["manifest"]["content_hash"], shifted_run["manifest"]["content_hash"]
    assert same_data_run["manifest"]["content_hash"] == first
    assert list(dict.fromkeys(history["snapshot_hash"])) == [first, shifted]
    # 6 features and the label, each with its statistic and missing rate; and, once a champion exists, the PSI
    # of its predictions on the previous snapshot against this one.
    assert len(history) == 2 * 7 * 2 + 1
    newest = drift_history.latest_rows(history)
    prediction = newest[newest["column"] == "prediction"].iloc[0]
    assert (prediction["kind"], prediction["statistic"]) == ("prediction", "psi")
    assert prediction["value"] > 0.1  # three times longer trips: the champion predicts longer durations
    assert set(newest["previous_hash"]) == {first}
    distance = newest[(newest["column"] == "distance_km") & (newest["statistic"] == "psi")].iloc[0]
    assert distance["value"] > 1.0
    assert distance["drift_run_id"] == shifted_run["drift"]["mlflow_run_id"]
    # No history yet: the fixed thresholds stopped the run, and the record says so per column.
    calibration = shifted_run["drift"]["calibration"]
    assert calibration["previous_snapshot"]["hash"] == first
    assert {c["basis"] for c in calibration["columns"]} == {"fixed_thresholds"}
    assert any("distance_km: psi" in reason and "fixed threshold" in reason for reason in calibration["stopped_by"])
    assert shifted_run["drift"]["status_fixed_thresholds"] == "failed"


def test_the_nightly_review_dag_reads_the_history_and_stores_its_review(
    world: dict[str, Any], shifted_run: dict[str, Any], dags_dir: Path
) -> None:
    from airflow_ml.factory.drift_review_dags import register_drift_review_dags
    from airflow_ml.ml import drift_history

    root = world["data_root"].parent  # the world's templates folder
    (dags_dir / "drift_review_world.py").write_text(
        "from airflow_ml.factory.drift_review_dags import register_drift_review_dags\n"
        f"register_drift_review_dags(globals(), templates_root={str(root)!r})\n",
        encoding="utf-8",
    )

    run = register_drift_review_dags({}, templates_root=root)["ride_duration.drift_review"].test()

    assert str(run.state) == "success"
    folder = Path(drift_history.history_folder(str(world["data_root"]), "ride_duration"))
    review = json.loads((folder / "review.json").read_text())
    # The city's history is shorter than min_history: no p-value to adjust yet, and the review says so.
    assert (review["tests"], review["without_history"]) == (0, [CITY])
