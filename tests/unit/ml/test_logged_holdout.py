"""The gate reuses the challenger's logged holdout predictions only when they are of its very holdout (real
LightGBM models, a real MLflow store on SQLite and local artifacts); otherwise it loads the model and scores it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mlflow import MlflowClient

from airflow_ml.data.snapshot import Manifest, read_snapshot
from airflow_ml.ml import model_registry as registry
from airflow_ml.ml.gate.naive_baseline import NaiveBaseline
from airflow_ml.ml.gate.rules import GateRules
from airflow_ml.ml.health import HOLDOUT_PREDICTIONS_ARTIFACT
from airflow_ml.ml.logged_holdout import logged_holdout
from airflow_ml.ml.metrics import score
from airflow_ml.ml.steps.gate_step import gate
from airflow_ml.ml.steps.step_settings import GateSettings, SplitSettings
from airflow_ml.ml.steps.train_step import train_and_log
from airflow_ml.ml.train import time_split
from tests.support.training_data import late_trips, regression, snapshot

SPLIT = SplitSettings("pickup_at", 0.15, 0.15)
RULES = GateRules(naive_baseline=NaiveBaseline(), bootstrap={"resamples": 200, "confidence": 0.95, "seed": 0})


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("logged_holdout")
    uri = f"sqlite:///{folder}/mlflow.db"
    trips = late_trips(days=6, scale=0.3)
    other = trips.assign(duration_min=trips["duration_min"] * 1.1)  # other rows: another content hash
    return {
        "client": MlflowClient(tracking_uri=uri, registry_uri=uri),
        "artifacts": f"file://{folder / 'artifacts'}",
        "manifest": snapshot(trips, folder / "a", "r1"),
        "other": snapshot(other, folder / "b", "r2"),
    }


def _challenger(world: dict[str, Any], name: str, manifest: Manifest) -> Any:
    """A small real model trained and logged on ``manifest``, registered as the first version of ``name``."""
    client = world["client"]
    result = train_and_log(
        client, manifest, regression(num_boost_round=15), SPLIT, experiment=name, artifact_root=world["artifacts"]
    )
    return registry.register_challenger(client, name, result["model_uri"], result["run_id"], {})


def _run_files(client: MlflowClient, version: Any) -> Path:
    return Path(client.get_run(version.run_id).info.artifact_uri.removeprefix("file://"))


def _holdout(manifest: Manifest, split: SplitSettings = SPLIT) -> Any:
    frame = read_snapshot(manifest.uri)
    return time_split(frame, split.time_column, split.validation_fraction, split.holdout_fraction).holdout


def _scored(client: MlflowClient, version: Any, manifest: Manifest) -> float:
    """The challenger's holdout rmse as the model loaded from the registry predicts it."""
    holdout = _holdout(manifest)
    model = registry.load_version(client, version)
    names = model.metadata.get_input_schema().input_names()
    return score("rmse", holdout["duration_min"].to_numpy(), np.asarray(model.predict(holdout[names])))


def _gate(world: dict[str, Any], name: str, version: Any, manifest: Manifest) -> dict[str, Any]:
    settings = GateSettings(name, "duration_min", "rmse", SPLIT, RULES)
    _, record = gate(world["client"], manifest, settings, challenger_version=str(version.version), mode="dry_run")
    return record


def test_a_challenger_trained_on_the_gates_snapshot_is_judged_on_its_logged_predictions_without_loading_it(
    world: dict[str, Any],
) -> None:
    client, manifest = world["client"], world["manifest"]
    version = _challenger(world, "logged.lisbon", manifest)
    expected = _scored(client, version, manifest)
    # The model's files go: a gate that loaded the challenger from the registry would now fail.
    shutil.rmtree(_run_files(client, version) / registry.MODEL_ARTIFACT_PATH)

    record = _gate(world, "logged.lisbon", version, manifest)

    assert record["challenger_predictions"]["source"] == "logged"
    assert manifest.content_hash in record["challenger_predictions"]["reason"]
    assert record["challenger_score"] == pytest.approx(expected, rel=1e-12)
    assert record["decision"] == "dry-run"


def test_a_challenger_trained_on_another_snapshot_is_loaded_and_scored_and_the_record_says_why(
    world: dict[str, Any],
) -> None:
    client, manifest, other = world["client"], world["manifest"], world["other"]
    version = _challenger(world, "other.lisbon", other)

    record = _gate(world, "other.lisbon", version, manifest)

    assert record["challenger_predictions"] == {
        "source": "scored",
        "reason": f"trained on snapshot {other.content_hash}, the gate's holdout is of {manifest.content_hash}",
    }
    assert record["challenger_score"] == pytest.approx(_scored(client, version, manifest), rel=1e-12)


def test_a_missing_predictions_artifact_falls_back_to_scoring_with_the_same_score(world: dict[str, Any]) -> None:
    client, manifest = world["client"], world["manifest"]
    version = _challenger(world, "missing.lisbon", manifest)
    expected = _scored(client, version, manifest)
    (_run_files(client, version) / HOLDOUT_PREDICTIONS_ARTIFACT).unlink()

    record = _gate(world, "missing.lisbon", version, manifest)

    assert record["challenger_predictions"]["source"] == "scored"
    assert f"{HOLDOUT_PREDICTIONS_ARTIFACT} is missing or unreadable" in record["challenger_predictions"]["reason"]
    assert record["challenger_score"] == pytest.approx(expected, rel=1e-12)


def test_logged_rows_of_another_split_or_with_other_values_are_not_the_holdout(world: dict[str, Any]) -> None:
    client, manifest = world["client"], world["manifest"]
    version = _challenger(world, "split.lisbon", manifest)
    holdout = _holdout(manifest)
    wider = _holdout(manifest, SplitSettings("pickup_at", 0.15, 0.2))
    changed = holdout.assign(duration_min=holdout["duration_min"] + 1.0)

    same = logged_holdout(
        client, version, manifest.content_hash, holdout, target="duration_min", time_column="pickup_at"
    )
    other_split = logged_holdout(
        client, version, manifest.content_hash, wider, target="duration_min", time_column="pickup_at"
    )
    other_values = logged_holdout(
        client, version, manifest.content_hash, changed, target="duration_min", time_column="pickup_at"
    )

    assert same.predictions is not None
    assert len(same.predictions) == len(holdout)
    assert other_split.predictions is None
    assert other_split.reason == f"{len(holdout)} logged holdout rows, the gate's holdout has {len(wider)}"
    assert other_values.predictions is None
    assert other_values.reason == "the logged holdout's 'duration_min' differs from the gate's holdout"
