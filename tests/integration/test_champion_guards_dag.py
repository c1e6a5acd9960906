"""The gate's guards end to end (dag.test(), GX, LightGBM, MLflow): a useless first model is refused by the
naive baseline, and a champion trained for another city stops the run before training.

Each world copies the repo's template under its own name, so its DAG and model never clash with other modules'.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.worlds import city_world

pytestmark = pytest.mark.integration
CITY = "lisbon"


def _run(world: dict[str, Any], conf: dict[str, Any] | None = None) -> dict[str, Any]:
    from airflow_ml.data.snapshot import snapshot_location

    run = world["build"]().test(run_conf=conf)
    template = run.dag_id.split(".", 1)[0]
    folder = Path(snapshot_location(str(world["data_root"] / "snapshots"), template, CITY, run.run_id))
    records = {}
    for name in ("drift", "decision"):
        path = folder / f"{name}.json"
        records[name] = json.loads(path.read_text()) if path.exists() else None
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    return {"state": str(run.state), "tasks": states, **records}


def _champion(client: Any, model: str) -> str | None:
    from airflow_ml.ml.model_registry import CHAMPION, version_by_alias

    found = version_by_alias(client, model, CHAMPION)
    return None if found is None else str(found.version)


@pytest.fixture(scope="module")
def noise(tmp_path_factory: pytest.TempPathFactory, airflow_db: Path, dags_dir: Path) -> Iterator[dict[str, Any]]:
    """A city whose target was shuffled across all its rows: the features say nothing about it any more."""
    import numpy as np
    import pandas as pd

    with city_world(tmp_path_factory.mktemp("noise"), dags_dir, CITY, template="naive_gate") as world:
        files = sorted((world["data_root"] / "raw" / "trips" / CITY).glob("date=*/*.parquet"))
        frames = [pd.read_parquet(path) for path in files]
        target = pd.concat(frames)["duration_min"].to_numpy()
        shuffled = np.random.default_rng(0).permutation(target)
        start = 0
        for path, frame in zip(files, frames, strict=True):
            frame.assign(duration_min=shuffled[start : start + len(frame)]).to_parquet(path, index=False)
            start += len(frame)
        # One deep tree at full learning rate fits the noise of the training rows, and only that.
        conf = {"learning_rate": 1.0, "num_leaves": 1024, "min_data_in_leaf": 1, "reason": "a model of noise"}
        yield {**world, "run": _run(world, conf)}


def test_a_first_model_no_better_than_the_training_mean_is_refused_and_no_champion_is_set(
    noise: dict[str, Any],
) -> None:
    client, run = noise["client"], noise["run"]
    model = f"naive_gate.{CITY}"
    assert run["state"] == "success", run["tasks"]
    assert run["tasks"]["health_check"] == "skipped"  # nothing was promoted
    decision = run["decision"]
    assert decision["decision"] == "kept"
    assert decision["refused_by"] == "naive_baseline"
    assert decision["baseline_version"] is None  # a first model: no champion to compare with
    naive = decision["naive_baseline"]
    assert (naive["metric"], naive["statistic"], naive["min_skill"], naive["passed"]) == ("rmse", "mean", 0.0, False)
    assert naive["skill"] < -0.1  # clearly worse than predicting the training mean
    assert decision["challenger_score"] >= naive["score"]
    assert decision["reason"].startswith(f"challenger rmse {decision['challenger_score']:.4g} is not better than")
    assert "the naive baseline (training mean" in decision["reason"]
    assert _champion(client, model) is None
    tags = client.get_model_version(model, decision["challenger_version"]).tags
    assert tags["gate.decision"] == "kept"
    assert json.loads(tags["gate.naive_baseline"]) == {k: v for k, v in naive.items() if k != "training_rows"}


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory, airflow_db: Path, dags_dir: Path) -> Iterator[dict[str, Any]]:
    """A city whose 'champion' alias was pointed, by hand, at a version trained for porto."""
    root = tmp_path_factory.mktemp("foreign")
    with city_world(root, dags_dir, CITY, template="lineage_gate") as world:
        client, model = world["client"], f"lineage_gate.{CITY}"
        porto = {"airflow_ml.template": "lineage_gate", "airflow_ml.city": "porto"}
        client.create_registered_model(model)
        run_id = client.create_run(client.create_experiment(model), tags=porto).info.run_id
        (root / "porto_model").mkdir()
        version = client.create_model_version(model, str(root / "porto_model"), run_id=run_id, tags=porto)
        client.set_registered_model_alias(model, "champion", version.version)
        yield {**world, "model": model, "version": str(version.version), "run": _run(world)}


def test_a_champion_of_another_city_stops_the_run_at_drift_and_stays_where_it_was(foreign: dict[str, Any]) -> None:
    client, run, model = foreign["client"], foreign["run"], foreign["model"]
    assert run["state"] == "failed"
    assert run["tasks"]["drift"] == "failed"
    assert run["tasks"]["train"] == "upstream_failed"  # nothing trained, registered or judged
    drift = run["drift"]
    assert drift["status"] == "failed"
    assert drift["refused_by"] == "champion_lineage"
    assert drift["reason"].startswith(f"{model}: the 'champion' alias points at v{foreign['version']}")
    assert "airflow_ml.city='porto'" in drift["reason"]
    assert "airflow_ml.city='lisbon'" in drift["reason"]
    assert "remove the alias" in drift["reason"]  # the fix: none of its versions is this city's
    assert _champion(client, model) == foreign["version"]
    assert [str(v.version) for v in client.search_model_versions(f"name='{model}'")] == [foreign["version"]]
