"""The training step (airflow_ml.ml.steps.train_step): class weights, threads and what a training run logs (real
LightGBM, Optuna and MLflow on SQLite). The search and the warm start have their own modules (tests/unit/ml/)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from mlflow import MlflowClient

from airflow_ml.ml.steps.step_settings import SplitSettings
from airflow_ml.ml.steps.train_step import train_and_log
from airflow_ml.ml.train import time_split, train_model
from tests.support.training_data import binary, regression, search_settings, snapshot

SPLIT = SplitSettings("pickup_at", 0.15, 0.15)


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
    assert {"train_sample_rmse", "validation_rmse", "holdout_rmse"} <= set(run.data.metrics)
    # Counts are params or tags (MLflow charts every metric): the split's rows, the trials, the best iteration.
    counts = {"rows_train", "rows_validation", "rows_holdout", "search_trials"}
    assert counts <= set(run.data.params)
    assert not (counts | {"best_iteration"}) & set(run.data.metrics)
    assert int(run.data.tags["best_iteration"]) == result["metrics"]["best_iteration"] > 0
    assert sum(int(run.data.params[f"rows_{s}"]) for s in ("train", "validation", "holdout")) == manifest.row_count
    assert run.data.params["search_trials"] == "3"
    trials = client.search_runs([run.info.experiment_id], f"tags.`mlflow.parentRunId` = '{run.info.run_id}'")
    assert trials
    assert all("best_iteration" in t.data.tags and not t.data.metrics.keys() - {"validation_rmse"} for t in trials)
    # The snapshot is the run's dataset input (MLflow's Dataset column), described by its manifest.
    (dataset_input,) = run.inputs.dataset_inputs
    dataset = dataset_input.dataset
    assert (dataset.source_type, json.loads(dataset.source)) == ("local", {"uri": manifest.uri})
    assert dataset.digest == manifest.content_hash[:12]
    assert json.loads(dataset.profile) == {
        "num_rows": manifest.row_count,
        "num_columns": len(manifest.columns),
        "content_hash": manifest.content_hash,
        "hash_scheme": manifest.hash_scheme,
    }
    input_tags = {t.key: t.value for t in dataset_input.tags}
    assert input_tags == {
        "mlflow.data.context": "training",
        "airflow_ml.rows": str(manifest.row_count),
        "airflow_ml.snapshot_hash": manifest.content_hash,
    }
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
    assert result["charts"] == ["holdout/charts/predicted_vs_actual.png"]
    assert {f.path for f in client.list_artifacts(result["run_id"], "holdout/charts")} == set(result["charts"])


def test_a_binary_run_logs_its_roc_and_calibration_on_the_holdout(
    client: MlflowClient, trips: pd.DataFrame, tmp_path: Path
) -> None:
    result = train_and_log(client, snapshot(trips, tmp_path, "run1"), binary(), SPLIT, experiment="lisbon-late")

    assert result["charts"] == ["holdout/charts/roc_calibration.png"]
    (logged,) = client.list_artifacts(result["run_id"], "holdout/charts")
    assert logged.path == "holdout/charts/roc_calibration.png"
    assert logged.file_size > 5000


def test_a_chart_that_fails_leaves_the_training_run_finished_with_its_model(
    client: MlflowClient, trips: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_ml.ml.charts import holdout_charts

    def numpy_1(*args: object) -> None:
        raise AttributeError("module 'numpy' has no attribute 'trapezoid'")

    monkeypatch.setattr(holdout_charts, "binary_fit", numpy_1)

    result = train_and_log(client, snapshot(trips, tmp_path, "run1"), binary(), SPLIT, experiment="lisbon-late")

    assert result["charts"] == []
    assert client.get_run(result["run_id"]).info.status == "FINISHED"
    assert "model/MLmodel" in {f.path for f in client.list_artifacts(result["run_id"], "model")}


def test_the_lineage_holds_the_holdout_predictions_the_metric_was_scored_on_without_scoring_it_again(
    client: MlflowClient, trips: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow.pyfunc
    import numpy as np

    from airflow_ml.ml.metrics import score
    from airflow_ml.ml.steps import train_step

    def scored_again(*args: object) -> None:
        raise AssertionError("the train step predicted the holdout a second time")

    monkeypatch.setattr(train_step, "predict_raw", scored_again)
    manifest = snapshot(trips, tmp_path, "run1")

    result = train_and_log(client, manifest, regression(), SPLIT, experiment="lisbon")

    logged = pd.read_parquet(
        client.download_artifacts(result["run_id"], "lineage/holdout_predictions.parquet", str(tmp_path))
    )
    holdout = time_split(trips, "pickup_at", 0.15, 0.15).holdout
    # The file the gate and the health check read: the holdout's rows in the columns training read, then the
    # prediction of the logged model.
    assert list(logged.columns) == [*regression().features, "duration_min", "pickup_at", "prediction"]
    assert len(logged) == len(holdout)
    served = mlflow.pyfunc.load_model(result["model_uri"]).predict(holdout)
    np.testing.assert_array_equal(logged["prediction"].to_numpy(), served)
    assert result["metrics"]["holdout_rmse"] == score("rmse", holdout["duration_min"], served)


def test_a_server_that_cannot_log_the_dataset_input_costs_a_warning_not_the_training_run(
    client: MlflowClient, trips: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    from mlflow.exceptions import MlflowException

    def no_log_inputs(*args: object, **kwargs: object) -> None:  # a tracking server older than MLflow 2.4
        raise MlflowException("API request to endpoint /api/2.0/mlflow/runs/log-inputs failed with error code 404")

    monkeypatch.setattr(client, "log_inputs", no_log_inputs)

    result = train_and_log(client, snapshot(trips, tmp_path, "run1"), binary(), SPLIT, experiment="lisbon-late")

    assert client.get_run(result["run_id"]).info.status == "FINISHED"
    assert "was not logged as a dataset input" in caplog.text


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
