"""The drift step's core against a real MLflow store: the champion's lineage, skips that say why, the MLflow run."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from airflow_ml.data.snapshot import Manifest, take_snapshot
from airflow_ml.ml.lineage import this_citys_champion, training_snapshot
from airflow_ml.ml.steps.drift_step import NO_CHAMPION, check_drift
from airflow_ml.ml.steps.step_settings import DriftSettings

THRESHOLDS = {"psi": {"warn": 0.1, "error": 0.25}, "missing_rate_change": {"warn": 0.05, "error": 0.2}}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One real SQLite store for the module (creating one costs seconds); each test has its own model."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"


@pytest.fixture
def client(store: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=store, registry_uri=store)


@pytest.fixture
def model(request: pytest.FixtureRequest) -> str:
    """A registered-model name of this test's own."""
    return f"ride_duration.{request.node.name.removeprefix('test_')[:40]}"


def snapshot(tmp_path: Path, run_id: str, *, scale: float = 1.0) -> Manifest:
    rng = np.random.default_rng(0)
    partition = tmp_path / "raw" / run_id / "date=2026-01-05"
    partition.mkdir(parents=True)
    x = rng.lognormal(1, 0.5, 2000) * scale
    pd.DataFrame({"x": x, "y": x * 2 + rng.normal(0, 1, 2000)}).to_parquet(partition / "part.parquet")
    return take_snapshot(
        str(partition.parent), str(tmp_path / "snapshots"), template="ride_duration", city="oslo", run_id=run_id
    )


def make_champion(client: Any, model: str, tmp_path: Path, tags: dict[str, str]) -> str:
    client.create_registered_model(model)
    run_id = client.create_run(client.create_experiment(f"{model}.trained"), tags=tags).info.run_id
    source = tmp_path / "model"
    source.mkdir()
    version = client.create_model_version(model, str(source), run_id=run_id, tags=tags)
    client.set_registered_model_alias(model, "champion", version.version)
    return str(version.version)


def check(client: Any, model: str, manifest: Manifest) -> dict[str, Any]:
    return check_drift(
        client, manifest, DriftSettings(model_name=model, features=["x"], target="y", thresholds=THRESHOLDS)
    )


def test_no_champion_skips_with_the_first_run_reason(client: Any, model: str, tmp_path: Path) -> None:
    record = check(client, model, snapshot(tmp_path, "now"))

    assert (record["status"], record["reason"]) == ("skipped", NO_CHAMPION)
    assert "first run" in record["reason"]
    assert this_citys_champion(client, model) is None
    assert client.get_experiment_by_name(model) is None  # nothing logged


def test_a_champion_without_lineage_is_skipped_and_says_so(client: Any, model: str, tmp_path: Path) -> None:
    make_champion(client, model, tmp_path, tags={})

    record = check(client, model, snapshot(tmp_path, "now"))

    assert record["status"] == "skipped"
    assert "carries no snapshot lineage" in record["reason"]


def test_an_unreadable_champion_snapshot_is_skipped_with_its_uri(client: Any, model: str, tmp_path: Path) -> None:
    old = snapshot(tmp_path, "old")
    make_champion(client, model, tmp_path, tags={"airflow_ml.snapshot_uri": old.uri})
    shutil.rmtree(old.uri.removeprefix("file://"))

    record = check(client, model, snapshot(tmp_path, "now"))

    assert record["status"] == "skipped"
    assert record["champion_version"] == "1"
    assert old.uri in record["reason"]
    assert "cannot be read" in record["reason"]


def test_lineage_falls_back_to_the_training_runs_tag(client: Any, model: str, tmp_path: Path) -> None:
    old = snapshot(tmp_path, "old")
    version = make_champion(client, model, tmp_path, tags={})
    run_id = client.get_model_version(model, version).run_id
    client.set_tag(run_id, "airflow_ml.snapshot_uri", old.uri)

    champion = this_citys_champion(client, model)
    assert champion is not None
    assert training_snapshot(client, champion) == old.uri


def test_a_shift_is_logged_as_a_drift_run_with_metrics_tags_and_the_record(
    client: Any, model: str, tmp_path: Path
) -> None:
    old = snapshot(tmp_path, "old")
    make_champion(client, model, tmp_path, tags={"airflow_ml.snapshot_uri": old.uri})
    now = snapshot(tmp_path, "now", scale=3.0)

    record = check(client, model, now)

    assert record["status"] == "failed"
    assert record["breaches"][0] == "x.psi"
    run = client.get_run(record["mlflow_run_id"])
    assert run.info.run_name == "drift"
    assert run.data.tags["airflow_ml.drift"] == "failed"
    assert run.data.tags["airflow_ml.champion_snapshot_hash"] == old.content_hash
    assert run.data.tags["airflow_ml.snapshot_hash"] == now.content_hash
    assert run.data.metrics["drift.x.psi"] > 1
    assert run.info.status == "FINISHED"
    logged = Path(client.download_artifacts(run.info.run_id, "drift.json", str(tmp_path / "dl")))
    assert '"status": "failed"' in logged.read_text()
