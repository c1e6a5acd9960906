"""A real registry to serve from: small LightGBM models trained on demo trips, registered as training does.

Used by the HTTP server's tests (tests/unit/scoring/) and the ``airflow-ml serve`` command's.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd

from tests.support.training_data import FEATURES, regression, snapshot

TEMPLATE = "ride_duration"


def demo_rows(city: str = "lisbon", days: int = 4, scale: float = 0.3) -> pd.DataFrame:
    """``days`` days of the demo's trips of ``city``."""
    from airflow_ml.data.demo import DEMO_START, generate_day

    frames = [generate_day(city, DEMO_START + dt.timedelta(days=i), scale=scale) for i in range(days)]
    return pd.concat(frames, ignore_index=True)


def client_of(tracking_uri: str) -> Any:
    """An ``MlflowClient`` of ``tracking_uri`` (tracking and registry)."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def register_trained(
    client: Any,
    folder: Path,
    name: str,
    rows: pd.DataFrame,
    *,
    rounds: int = 40,
    champion: bool = True,
    artifact_root: str | None = None,
) -> str:
    """Train a small real model of ``rows`` (``rounds`` boosting rounds), register it as ``name``; its version.

    The version carries the factory's lineage tags (template and city from ``name``), and becomes the champion
    when ``champion``. Its artifacts go under ``artifact_root`` (default: ``folder/artifacts``).
    """
    from airflow_ml.ml import model_registry as registry
    from airflow_ml.ml.lineage import model_lineage
    from airflow_ml.ml.steps.step_settings import SplitSettings
    from airflow_ml.ml.steps.train_step import train_and_log

    manifest = snapshot(rows, folder / f"{name}-{rounds}", run_id=f"run-{rounds}")
    spec = regression(num_boost_round=rounds, early_stopping_rounds=None)
    lineage = model_lineage(name)
    result = train_and_log(
        client,
        manifest,
        spec,
        SplitSettings("pickup_at", 0.15, 0.15),
        experiment=name,
        tags=lineage,
        artifact_root=artifact_root or f"file://{folder}/artifacts",
    )
    version = str(registry.register_challenger(client, name, result["model_uri"], result["run_id"], lineage).version)
    if champion:
        client.set_registered_model_alias(name, registry.CHAMPION, version)
    return version


def feature_rows(rows: pd.DataFrame, count: int) -> list[dict[str, Any]]:
    """The first ``count`` rows' features as JSON objects (what a client sends)."""
    import json

    return json.loads(rows[FEATURES].head(count).to_json(orient="records"))


def serve_champion(tracking_uri: str, model: str, rows: pd.DataFrame) -> Any:
    """Predict ``rows`` as a consumer would: ``models:/<model>@champion`` from the store at ``tracking_uri``."""
    import mlflow.pyfunc

    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        return mlflow.pyfunc.load_model(f"models:/{model}@champion").predict(rows)
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])


def champion_holdout(client: Any, tracking_uri: str, model: str, folder: Path) -> tuple[pd.DataFrame, Any]:
    """The champion's training-time holdout predictions (``lineage/holdout_predictions.parquet``) and what
    ``models:/<model>@champion`` predicts for the same raw rows."""
    champion = client.get_model_version_by_alias(model, "champion")
    logged = client.download_artifacts(champion.run_id, "lineage/holdout_predictions.parquet", str(folder))
    holdout = pd.read_parquet(logged)
    return holdout, serve_champion(tracking_uri, model, holdout.drop(columns=["prediction"]))
