"""A binary-task city end to end (dag.test(), GX, LightGBM, MLflow): promote, then judge auc the right way round.

The world is its own: a ``late_pickup`` template (task binary, metric auc, class_weight balanced) whose
target ``is_slow`` (a trip slower, in minutes per km, than three quarters of the city's trips) is written
into the demo partitions, and a suite ``slow_trips`` in the world's own expectations folder. A weak first
model (one stump) becomes the champion; a full model on the same snapshot must beat it on auc (higher is
better) and take over.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import REPO
from tests.support.city_files import LOOP_SECTIONS

pytestmark = pytest.mark.integration
CITY = "lisbon"
TEMPLATE = "late_pickup"
MODEL = f"{TEMPLATE}.{CITY}"
TARGET = "is_slow"
SLOW_QUANTILE = 0.75
MIN_AUC = 0.58  # a quarter of the trips are positives: balancing has something to do


def _template() -> dict[str, Any]:
    """The repo's ride_duration template turned into a binary use case."""
    text = (REPO / "dag_templates" / "templates" / "ride_duration.yaml").read_text(encoding="utf-8")
    template = yaml.safe_load(text)
    template["description"] = "Will a pickup turn into a slow trip? One LightGBM classifier per city."
    template["suite"] = "slow_trips"
    template["task"] = "binary"
    # duration_min stays in the data (its suite checks it) but must never be a feature: it defines the label.
    template["dataset"] |= {"target": TARGET, "extra_columns": ["duration_min"]}
    template["metric"] = {"name": "auc"}
    template["training"] |= {"class_weight": "balanced", "num_boost_round": 150}
    template["gate"]["bootstrap"] = {"resamples": 200, "confidence": 0.95, "seed": 0}
    # A floor, not a ceiling: the weak first model (holdout auc about 0.62) passes it.
    template["gate"]["min_quality"] = {"min_auc": MIN_AUC}
    template["drift"]["label_js_distance"] = {"warn": 0.1, "error": 0.2}
    template["drift"].pop("label_psi", None)
    for section in LOOP_SECTIONS:  # this world retrains; it neither scores nor monitors
        template.pop(section, None)
    return template


def _suite() -> dict[str, Any]:
    """The demo's trip suite plus the label's own expectations."""
    suite = json.loads((REPO / "expectations" / "ride_trips.json").read_text(encoding="utf-8"))
    suite["name"] = "slow_trips"
    suite["expectations"] += [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": TARGET}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": TARGET, "value_set": [0, 1]}},
    ]
    return suite


def _label_partitions(data_root: Path) -> float:
    """Write ``is_slow`` into every partition of the city; return the pace (minutes per km) threshold used."""
    import pandas as pd

    files = sorted((data_root / "raw" / "trips" / CITY).glob("date=*/*.parquet"))
    frames = {path: pd.read_parquet(path) for path in files}

    def pace(frame: pd.DataFrame) -> pd.Series:
        return frame["duration_min"] / frame["distance_km"].clip(lower=0.1)

    threshold = float(pd.concat(pace(frame) for frame in frames.values()).quantile(SLOW_QUANTILE))
    for path, frame in frames.items():
        frame[TARGET] = (pace(frame) > threshold).astype("int64")
        frame.to_parquet(path, index=False)
    return threshold


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, airflow_db: Path, dags_dir: Path) -> Iterator[dict[str, Any]]:
    from mlflow import MlflowClient

    from airflow_ml.data.demo import write_demo_data
    from airflow_ml.factory import register_dags

    root = tmp_path_factory.mktemp("late_pickup")
    (root / "templates").mkdir()
    (root / "cities").mkdir()
    (root / "expectations").mkdir()
    (root / "templates" / f"{TEMPLATE}.yaml").write_text(yaml.safe_dump(_template(), sort_keys=False), "utf-8")
    (root / "cities" / f"{CITY}.yaml").write_text(
        f"city: {CITY}\ntemplate: {TEMPLATE}\ndag:\n  retries: 0\n  schedule: null\n", encoding="utf-8"
    )
    (root / "expectations" / "slow_trips.json").write_text(json.dumps(_suite(), indent=1), encoding="utf-8")
    # dag.test() serializes the DAGs of the dags folder: this world's loader must build the city there too.
    (dags_dir / f"world_{root.name}.py").write_text(
        "from airflow_ml.factory import register_dags\n"
        f"register_dags(globals(), templates_root={str(root)!r}, expectations_dir={str(root / 'expectations')!r})\n",
        encoding="utf-8",
    )
    data_root = root / "data"
    write_demo_data(data_root, cities=[CITY], batch="initial", scale=0.3)
    threshold = _label_partitions(data_root)
    store = {"tracking_uri": f"sqlite:///{root}/mlflow.db", "artifact_root": f"file://{root}/artifacts"}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_ML_DATA_ROOT", str(data_root))
        mp.setenv("AIRFLOW_CONN_MLFLOW_DEFAULT", json.dumps({"conn_type": "mlflow", "extra": store}))
        yield {
            "build": lambda: register_dags({}, templates_root=root, expectations_dir=root / "expectations")[MODEL],
            "client": MlflowClient(tracking_uri=store["tracking_uri"], registry_uri=store["tracking_uri"]),
            "data_root": data_root,
            "threshold": threshold,
        }


def _run(world: dict[str, Any], conf: dict[str, Any] | None = None) -> dict[str, Any]:
    from airflow_ml.data.snapshot import snapshot_location

    run = world["build"]().test(run_conf=conf)
    folder = Path(snapshot_location(str(world["data_root"] / "snapshots"), TEMPLATE, CITY, run.run_id))
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    found = {}
    for name in ("decision", "health", "drift"):
        path = folder / f"{name}.json"
        found[name] = json.loads(path.read_text()) if path.exists() else None
    return {"state": str(run.state), "tasks": states, "folder": folder, **found}


@pytest.fixture(scope="module")
def weak_first(world: dict[str, Any]) -> dict[str, Any]:
    return _run(world, {"num_boost_round": 1, "num_leaves": 2, "reason": "binary test: weak champion"})


@pytest.fixture(scope="module")
def full_second(world: dict[str, Any], weak_first: dict[str, Any]) -> dict[str, Any]:
    return _run(world)


def _champion(client: Any) -> Any:
    return client.get_model_version_by_alias(MODEL, "champion")


def test_a_first_binary_model_is_promoted_without_a_champion(world: dict[str, Any], weak_first: dict[str, Any]) -> None:
    assert weak_first["state"] == "success", weak_first["tasks"]
    decision = weak_first["decision"]
    assert decision["decision"] == "promoted"
    assert decision["metric"] == "auc"
    assert decision["baseline_version"] is None
    assert decision["direction"] == "maximize"
    assert decision["min_quality"] == {"min_auc": MIN_AUC}
    assert decision["champion_score"] is None
    assert 0.5 < decision["challenger_score"] < 1.0  # even one stump ranks slow trips above the others
    assert decision["trigger_reason"] == "binary test: weak champion"
    champion = _champion(world["client"])
    assert str(champion.version) == decision["challenger_version"] == "1"
    assert champion.tags["gate.decision"] == "promoted"
    assert champion.tags["gate.metric"] == "auc"


def test_a_better_auc_wins_because_higher_is_better(world: dict[str, Any], full_second: dict[str, Any]) -> None:
    client = world["client"]
    assert full_second["state"] == "success", full_second["tasks"]
    decision = full_second["decision"]
    assert decision["metric"] == "auc"
    assert decision["baseline_version"] == "1"
    assert decision["direction"] == "maximize"
    assert decision["challenger_score"] > decision["champion_score"] * 1.02  # auc went up...
    assert decision["improvement"] > decision["min_improvement"] > 0  # ...which counts as a gain...
    assert decision["bootstrap"]["improvement"][0] > 0  # ...and not by chance
    assert decision["decision"] == "promoted", decision["reason"]
    champion = _champion(client)
    assert str(champion.version) == decision["challenger_version"] == "2"
    assert str(client.get_model_version_by_alias(MODEL, "previous-champion").version) == "1"
    assert champion.tags["gate.decision"] == "promoted"
    assert champion.tags["gate.baseline_version"] == "1"
    assert float(champion.tags["gate.challenger_score"]) == pytest.approx(decision["challenger_score"])
    assert float(champion.tags["gate.champion_score"]) == pytest.approx(decision["champion_score"])


def test_the_label_drift_of_a_binary_target_is_a_js_distance(full_second: dict[str, Any]) -> None:
    drift = full_second["drift"]
    assert full_second["tasks"]["drift"] == "success"
    assert drift["status"] == "passed"
    assert drift["champion_version"] == "1"
    label = {c["statistic"]: c for c in drift["checks"] if c["column"] == TARGET}
    assert "js_distance" in label
    assert "psi" not in label
    assert label["js_distance"]["value"] == pytest.approx(0.0, abs=1e-9)  # the same snapshot: no drift


def test_the_health_check_judged_probabilities(world: dict[str, Any], full_second: dict[str, Any]) -> None:
    import numpy as np

    from airflow_ml.data.snapshot import read_snapshot
    from airflow_ml.ml import model_registry as registry

    client = world["client"]
    health = full_second["health"]
    assert full_second["tasks"]["health_check"] == "success"
    assert health["passed"] is True, health["problems"]
    assert health["champion_version"] == "2"
    assert 0.0 < health["mean"] < 1.0
    assert 0.0 < health["reference_mean"] < 1.0
    champion = _champion(client)
    assert champion.tags["health.passed"] == "true"
    # What serving gets: probabilities, not labels and not raw scores.
    model = registry.load_version(client, champion)
    holdout = read_snapshot(str(full_second["folder"])).tail(500)
    predictions = np.asarray(model.predict(holdout[model.metadata.get_input_schema().input_names()]))
    assert predictions.min() >= 0.0
    assert predictions.max() <= 1.0
    assert len(np.unique(predictions.round(6))) > 20


def test_balanced_class_weight_reaches_lightgbm(world: dict[str, Any], full_second: dict[str, Any]) -> None:
    from airflow_ml.data.snapshot import read_snapshot
    from airflow_ml.ml.train import time_split

    client = world["client"]
    run = client.get_run(_champion(client).run_id)
    params, metrics = run.data.params, run.data.metrics
    assert params["objective"] == "binary"
    assert params["metric"] == "auc"
    assert params["class_weight"] == "balanced"
    # Negatives per positive of the training rows alone (the oldest 70% of the snapshot): about 3 here.
    train = time_split(read_snapshot(str(full_second["folder"])), "pickup_at", 0.15, 0.15).train[TARGET]
    assert float(params["scale_pos_weight"]) == pytest.approx((train == 0).sum() / (train == 1).sum())
    assert 2.5 < float(params["scale_pos_weight"]) < 3.5
    assert params["target"] == TARGET
    assert "duration_min" not in params["features"].split(",")
    assert 0.5 < metrics["holdout_auc"] < 1.0


def test_a_binary_run_draws_roc_and_calibration_on_its_holdout(world: dict[str, Any], full_second: dict) -> None:
    client = world["client"]
    run_id = client.get_model_version(MODEL, full_second["decision"]["challenger_version"]).run_id

    holdout = {a.path for a in client.list_artifacts(run_id, "holdout/charts")}
    gate = {a.path for a in client.list_artifacts(run_id, "gate/charts")}
    drift = {a.path for a in client.list_artifacts(full_second["drift"]["mlflow_run_id"], "charts")}

    assert holdout == {"holdout/charts/roc_calibration.png"}
    assert gate == set(full_second["decision"]["charts"]["artifacts"])
    assert "gate/charts/scores.png" in gate
    assert drift == {"charts/distributions.png"}
