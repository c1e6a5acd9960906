"""Warm start from the champion (airflow_ml.ml.warm_start): skipped without one or when the features changed;
the better candidate kept."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from airflow_ml.ml import model_registry as registry
from airflow_ml.ml.serving import Preprocessor
from airflow_ml.ml.steps.step_settings import SplitSettings
from airflow_ml.ml.steps.train_step import train_and_log
from airflow_ml.ml.warm_start import WARM_START_TAG, incompatibility
from tests.support.training_data import FEATURES, regression, snapshot

SPLIT = SplitSettings("pickup_at", 0.15, 0.15)


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
    assert run.data.tags["best_iteration"] == "10"  # five inherited trees and five new ones


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
