"""Class weights, the Optuna search, the guarded warm start, threads and what a training run logs (real LightGBM,
Optuna and MLflow on SQLite)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from airflow_ml.data.demo import DEMO_START, generate_day
from airflow_ml.data.snapshot import take_snapshot
from airflow_ml.ml import model_registry as registry
from airflow_ml.ml.search import PARENT_RUN_TAG, SearchRange, SearchSettings, search_params
from airflow_ml.ml.serving import Preprocessor
from airflow_ml.ml.steps.step_settings import SplitSettings
from airflow_ml.ml.steps.train_step import train_and_log
from airflow_ml.ml.train import TrainSpec, time_split, train_model
from airflow_ml.ml.warm_start import WARM_START_TAG, incompatibility

FEATURES = ["distance_km", "pickup_hour", "weekday", "pickup_zone", "temperature_c", "is_raining"]
SPLIT = SplitSettings("pickup_at", 0.15, 0.15)


@pytest.fixture(scope="module")
def trips() -> pd.DataFrame:
    days = [DEMO_START + dt.timedelta(days=i) for i in range(8)]
    frame = pd.concat([generate_day("lisbon", day, scale=0.5) for day in days], ignore_index=True)
    # A binary task from the demo trips: "late" trips, about one in ten, imbalanced on purpose.
    return frame.assign(late=(frame["duration_min"] > frame["duration_min"].quantile(0.9)).astype("int64"))


def regression(**overrides: object) -> TrainSpec:
    values: dict[str, object] = {
        "features": FEATURES,
        "categorical": ["pickup_zone"],
        "target": "duration_min",
        "num_boost_round": 40,
        "early_stopping_rounds": 10,
        "num_threads": 1,
        "params": {"learning_rate": 0.1, "num_leaves": 15, "min_data_in_leaf": 20},
    }
    values.update(overrides)
    return TrainSpec(**values)  # type: ignore[arg-type]


def binary(**overrides: object) -> TrainSpec:
    return regression(target="late", task="binary", metric="auc", **overrides)


def snapshot(frame: pd.DataFrame, root: Path, run_id: str) -> object:
    source = root / "raw"
    for day, rows in frame.groupby(frame["pickup_at"].dt.date):
        folder = source / f"date={day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        rows.to_parquet(folder / "part-0.parquet", index=False)
    return take_snapshot(
        f"file://{source}", f"file://{root / 'snapshots'}", template="ride_duration", city="lisbon", run_id=run_id
    )


@pytest.fixture
def client(mlflow_store: dict[str, str]) -> MlflowClient:
    return MlflowClient(tracking_uri=mlflow_store["tracking_uri"], registry_uri=mlflow_store["tracking_uri"])


# --- class imbalance -----------------------------------------------------------------------------------------


def test_balanced_weight_is_negatives_over_positives_of_the_training_rows(trips: pd.DataFrame) -> None:
    splits = time_split(trips, "pickup_at", 0.15, 0.15)
    labels = splits.train["late"]
    expected = (labels == 0).sum() / (labels == 1).sum()

    plain = train_model(splits, binary())
    balanced = train_model(splits, binary(class_weight="balanced"))

    assert balanced.params["scale_pos_weight"] == pytest.approx(expected)
    assert "scale_pos_weight" not in plain.params
    # Weighing the rare positives up raises the predicted probabilities on unseen rows.
    holdout = splits.holdout
    from airflow_ml.ml.serving import predict_raw

    assert predict_raw(balanced.booster, balanced.preprocessor, holdout).mean() > (
        predict_raw(plain.booster, plain.preprocessor, holdout).mean() + 0.05
    )


def test_balanced_weight_needs_both_classes_and_a_binary_task(trips: pd.DataFrame) -> None:
    splits = time_split(trips.assign(late=0), "pickup_at", 0.15, 0.15)

    with pytest.raises(ValueError, match=r"needs both classes.*0 positive"):
        train_model(splits, binary(class_weight="balanced"))
    with pytest.raises(ValueError, match="needs task 'binary'"):
        regression(class_weight="balanced").imbalance_params([0, 1])


# --- search --------------------------------------------------------------------------------------------------


def search_settings(trials: int = 4) -> SearchSettings:
    return SearchSettings(
        trials=trials,
        timeout_seconds=600,
        ranges={"learning_rate": SearchRange(0.02, 0.3, log=True), "num_leaves": SearchRange(4, 64, integer=True)},
    )


def test_search_logs_nested_trials_and_the_best_params(client: MlflowClient, trips: pd.DataFrame) -> None:
    splits = time_split(trips, "pickup_at", 0.15, 0.15)
    experiment_id = client.create_experiment("search")
    parent = client.create_run(experiment_id).info.run_id

    result = search_params(
        client,
        experiment_id=experiment_id,
        parent_run_id=parent,
        splits=splits,
        spec=regression(),
        settings=search_settings(),
    )

    trials = client.search_runs([experiment_id], f"tags.`{PARENT_RUN_TAG}` = '{parent}'")
    assert result.trials == len(trials) == 4
    scores = {run.data.metrics["validation_rmse"]: run.data.params for run in trials}
    assert "holdout_rmse" not in trials[0].data.metrics  # trials never see the holdout
    assert result.best_value == min(scores)
    best = scores[result.best_value]
    assert isinstance(result.best_params["num_leaves"], int)
    assert best == {k: str(v) for k, v in result.best_params.items()}
    logged = client.get_run(parent).data
    assert logged.params["best_num_leaves"] == str(result.best_params["num_leaves"])
    assert logged.metrics["search_trials"] == 4


def test_search_is_deterministic(client: MlflowClient, trips: pd.DataFrame) -> None:
    splits = time_split(trips, "pickup_at", 0.15, 0.15)
    experiment_id = client.create_experiment("search")
    found = []
    for _ in range(2):
        parent = client.create_run(experiment_id).info.run_id
        found.append(
            search_params(
                client,
                experiment_id=experiment_id,
                parent_run_id=parent,
                splits=splits,
                spec=regression(),
                settings=search_settings(3),
            ).best_params
        )

    assert found[0] == found[1]


def test_train_and_log_uses_the_best_params_and_logs_everything(
    client: MlflowClient, trips: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_ML_CODE_VERSION", "abc1234")
    manifest = snapshot(trips, tmp_path, "run1")

    result = train_and_log(
        client,
        manifest,
        regression(),
        SPLIT,
        experiment="lisbon",
        search=search_settings(3),
        tags={"airflow.dag_id": "d", "airflow.run_id": "r", "airflow.try_number": "1"},
        config={"city": "lisbon"},
    )

    run = client.get_run(result["run_id"])
    best = {k.removeprefix("best_"): v for k, v in run.data.params.items() if k.startswith("best_")}
    assert set(best) == {"learning_rate", "num_leaves"}
    assert run.data.params["num_leaves"] == best["num_leaves"]  # the final model trained with them
    assert {"train_rmse", "validation_rmse", "holdout_rmse"} <= set(run.data.metrics)
    assert run.data.tags["airflow_ml.code_version"] == "abc1234"
    assert run.data.tags["airflow_ml.version"]
    assert run.data.tags["airflow.try_number"] == "1"
    assert run.data.tags["airflow_ml.snapshot_hash"] == manifest.content_hash
    files = {f.path for f in client.list_artifacts(result["run_id"], "importance")}
    assert files == {"importance/feature_importance.png", "importance/feature_importance.csv"}
    png = Path(client.download_artifacts(result["run_id"], "importance/feature_importance.png", str(tmp_path)))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model_files = {f.path for f in client.list_artifacts(result["run_id"], "model")}
    assert {"model/MLmodel", "model/input_example.json"} <= model_files
    assert result["warm_start"] is None


# --- warm start ----------------------------------------------------------------------------------------------


def register_champion(client: MlflowClient, result: dict) -> None:
    version = registry.register_challenger(client, "lisbon", result["model_uri"], result["run_id"], {})
    client.set_registered_model_alias("lisbon", registry.CHAMPION, version.version)


def test_warm_start_without_a_champion_is_skipped(client: MlflowClient, trips: pd.DataFrame, tmp_path: Path) -> None:
    manifest = snapshot(trips, tmp_path, "run1")

    result = train_and_log(client, manifest, regression(), SPLIT, experiment="lisbon", warm_start_from="lisbon")

    assert result["warm_start"] == "skipped: no champion yet"
    assert client.get_run(result["run_id"]).data.tags[WARM_START_TAG] == "skipped: no champion yet"


def test_warm_start_keeps_the_better_candidate_on_validation(
    client: MlflowClient, trips: pd.DataFrame, tmp_path: Path
) -> None:
    manifest = snapshot(trips, tmp_path, "run1")
    # A weak champion (few rounds) leaves room for boosting on; the challenger trains the same way.
    weak = regression(num_boost_round=5, early_stopping_rounds=None)
    register_champion(client, train_and_log(client, manifest, weak, SPLIT, experiment="lisbon"))

    result = train_and_log(client, manifest, weak, SPLIT, experiment="lisbon", warm_start_from="lisbon")

    run = client.get_run(result["run_id"])
    assert result["warm_start"] == run.data.tags[WARM_START_TAG] == "warm"
    metrics = run.data.metrics
    assert metrics["warm_start_warm_validation"] < metrics["warm_start_cold_validation"]
    assert metrics["validation_rmse"] == pytest.approx(metrics["warm_start_warm_validation"])
    assert metrics["best_iteration"] == 10  # five inherited trees and five new ones


def test_warm_start_is_skipped_when_the_features_changed(
    client: MlflowClient, trips: pd.DataFrame, tmp_path: Path
) -> None:
    manifest = snapshot(trips, tmp_path, "run1")
    register_champion(client, train_and_log(client, manifest, regression(), SPLIT, experiment="lisbon"))
    fewer = regression(features=FEATURES[:-1])

    result = train_and_log(client, manifest, fewer, SPLIT, experiment="lisbon", warm_start_from="lisbon")

    assert result["warm_start"].startswith("skipped: champion v1: features changed")


def test_incompatibility_names_changed_categories() -> None:
    old = Preprocessor(["zone", "x"], {"zone": ["a", "b"]})
    new = Preprocessor(["zone", "x"], {"zone": ["a", "b", "c"]})

    assert incompatibility(old, old) is None
    assert incompatibility(old, new) == "categories of 'zone' changed (added ['c'], removed [])"
    assert "binary" in str(incompatibility(old, Preprocessor(["zone", "x"], {"zone": ["a", "b"]}, "binary")))


# --- threads ---------------------------------------------------------------------------------------------------


def test_more_threads_than_cores_are_clamped_logged_and_recorded(
    client: MlflowClient, trips: pd.DataFrame, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # On two cores, 1,024 threads made 20 rounds on 2,000 rows take 24 s instead of 0.015 s.
    cores = len(os.sched_getaffinity(0))
    asked = cores + 62
    manifest = snapshot(trips, tmp_path, "run1")

    with caplog.at_level("WARNING", logger="airflow_ml.ml.steps.train_step"):
        result = train_and_log(client, manifest, regression(num_threads=asked), SPLIT, experiment="lisbon")

    params = client.get_run(result["run_id"]).data.params
    assert params["num_threads"] == str(cores)
    assert params["num_threads_configured"] == str(asked)
    assert f"training.num_threads {asked} is more than the {cores} core(s) this worker may use" in caplog.text
    trained = train_model(time_split(trips, "pickup_at", 0.15, 0.15), regression(num_threads=asked))
    assert trained.params["num_threads"] == cores


def test_threads_within_the_cores_are_kept_as_configured(
    client: MlflowClient, trips: pd.DataFrame, tmp_path: Path
) -> None:
    manifest = snapshot(trips, tmp_path, "run1")

    result = train_and_log(client, manifest, regression(num_threads=1), SPLIT, experiment="lisbon")

    params = client.get_run(result["run_id"]).data.params
    assert params["num_threads"] == "1"
    assert "num_threads_configured" not in params


def test_the_cores_are_the_workers_affinity_not_the_machines() -> None:
    # A worker pinned to one CPU (a container's cpuset) gets one thread, whatever the machine has.
    script = (
        "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})\n"
        "from airflow_ml.ml.train import TrainSpec\n"
        "spec = TrainSpec(features=['a'], categorical=[], target='y', num_threads=8)\n"
        "print(spec.lightgbm_params()['num_threads'], TrainSpec(features=['a'], categorical=[], target='y')"
        ".lightgbm_params()['num_threads'])\n"
    )

    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)

    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["1", "0"]  # 0 keeps LightGBM's own default
