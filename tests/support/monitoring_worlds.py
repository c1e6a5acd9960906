"""Monitored cities for the monitor's tests: a real LightGBM champion, its prediction log and late labels.

- :func:`register_champion` trains a small real model on two weeks of a demo city, logs it to a real MLflow
  registry and promotes it as the gate does (``gate.metric``/``gate.challenger_score`` tags) once or twice, so
  that the champion has a ``previous-champion`` or not.
- :func:`log_days` scores days of the same demo city with it into the prediction log (key ``trip_id``), and
  :func:`write_labels` writes those days' outcomes as label partitions, with an injected error if asked.
- :data:`MONITORING` is the YAML of a city's ``scoring:`` and ``monitoring:`` for these worlds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from tests.support.training_data import FEATURES, regression

#: The first day the champions score: the day after the four weeks they trained on.
FIRST_LIVE_DAY = dt.date(2026, 1, 19)
#: Trips per demo day: berlin about 350, lisbon about 180, sao_paulo about 590.
SCALE = 0.3
#: A city's scoring and monitoring for these worlds (labels in ``{data_root}/labels/<city>``, joined by key).
MONITORING = """\
dataset:
  extra_columns: [trip_id]
scoring:
  source: '{data_root}/incoming/{city}'
  key_columns: [trip_id]
monitoring:
  labels: {source: '{data_root}/labels/{city}'}
  windows: 5
  bootstrap: {resamples: 200, seed: 0}
  supervisor: {mode: auto, tolerance: 0.2, consecutive_windows: 3, min_labels: 100}
"""


@dataclass(frozen=True)
class Champion:
    """A city's registered model with its champion: the versions promoted in order, the last one serving."""

    template: str
    city: str
    versions: list[str]
    holdout_score: float
    trained: Any

    @property
    def model_name(self) -> str:
        """``<template>.<city>``."""
        return f"{self.template}.{self.city}"


def settings(city: str = "berlin", **supervisor: Any) -> Any:
    """The monitor settings of a city of these worlds: 5 daily windows, labels by key, mode auto, n = 100."""
    from airflow_ml.ml.steps.step_settings import MonitorSettings, SupervisorSettings

    return MonitorSettings(
        template="ride_duration",
        city=city,
        model_name=f"ride_duration.{city}",
        metric="rmse",
        target="duration_min",
        predictions_root="{data_root}",
        labels_source="{data_root}/labels/{city}",
        key_columns=["trip_id"],
        windows=5,
        resamples=200,
        supervisor=SupervisorSettings(**{"mode": "auto", "tolerance": 0.2, "min_labels": 100, **supervisor}),
    )


def demo_days(city: str, first: dt.date, days: int) -> pd.DataFrame:
    """``days`` days of the demo city's trips from ``first``."""
    from airflow_ml.data.demo import generate_day

    return pd.concat(
        [generate_day(city, first + dt.timedelta(days=i), scale=SCALE) for i in range(days)], ignore_index=True
    )


def register_champion(
    client: Any, template: str, city: str, *, promotions: int = 2, rounds: int = 40, challenger: bool = False
) -> Champion:
    """Train a real model on the four weeks before :data:`FIRST_LIVE_DAY`; register and promote it ``promotions`` times.

    Each promotion records what the gate records: ``gate.metric`` rmse and ``gate.challenger_score``, the model's
    rmse on the newest 25% of the rows (its holdout: about a week, so that a healthy day's rmse is within 20%
    of it most days), and ``gate.baseline_version``. ``rounds`` are LightGBM's boosting rounds (3: a weak
    model). With ``challenger``, the model is registered once more as the ``challenger`` and not promoted
    (a challenger in shadow): its version is the last of ``versions``.
    """
    from airflow_ml.ml import model_registry as registry
    from airflow_ml.ml.metrics import score
    from airflow_ml.ml.serving import predict_raw
    from airflow_ml.ml.train import time_split, train_model

    name = f"{template}.{city}"
    frame = demo_days(city, FIRST_LIVE_DAY - dt.timedelta(days=28), 28)
    splits = time_split(frame, "pickup_at", 0.15, 0.25)
    trained = train_model(splits, regression(num_boost_round=rounds))
    predicted = predict_raw(trained.booster, trained.preprocessor, splits.holdout)
    holdout = float(score("rmse", splits.holdout["duration_min"], predicted))
    experiment = registry.get_or_create_experiment(client, name)
    run_id = client.create_run(experiment, tags={"airflow_ml.city": city, "airflow_ml.template": template}).info.run_id
    source = registry.log_model(client, run_id, trained, splits.train)
    client.set_terminated(run_id)
    versions: list[str] = []
    for _ in range(promotions):
        lineage = {"airflow_ml.city": city, "airflow_ml.template": template}
        version = str(registry.register_challenger(client, name, source, run_id, lineage).version)
        record = {
            "decision": "promoted",
            "metric": "rmse",
            "challenger_score": holdout,
            "baseline_version": versions[-1] if versions else None,
        }
        registry.promote(client, name, version, record)
        versions.append(version)
    if challenger:
        lineage = {"airflow_ml.city": city, "airflow_ml.template": template}
        versions.append(str(registry.register_challenger(client, name, source, run_id, lineage).version))
    return Champion(template, city, versions, holdout, trained)


def log_days(
    root: Path, champion: Champion, first: dt.date, days: int, *, shadow: bool = False, rescored: int = 0
) -> pd.DataFrame:
    """Score ``days`` days from ``first`` with the champion into the prediction log under ``root``; the rows scored.

    With ``shadow``, the model of ``champion`` is a challenger in shadow: its last version writes the shadow log.
    ``rescored`` rows of each day are scored again the next day (the same trip, so the same prediction id, logged
    on two days); the rows returned are each day's own.
    """
    from airflow_ml.data.prediction_log import LogColumns, ScoringContext, write_predictions
    from airflow_ml.ml.serving import predict_raw

    scored: list[pd.DataFrame] = []
    for offset in range(days):
        day = first + dt.timedelta(days=offset)
        own = demo_days(champion.city, day, 1)
        rows = pd.concat([own, scored[-1].head(rescored)], ignore_index=True) if rescored and scored else own
        context = ScoringContext(
            template=champion.template,
            city=champion.city,
            model_name=champion.model_name,
            model_version=champion.versions[-1],
            scoring_run_id=f"scheduled__{day.isoformat()}",
            input_hash="0" * 64,
            scored_at=dt.datetime.combine(day, dt.time(), dt.UTC),
        )
        predictions = predict_raw(champion.trained.booster, champion.trained.preprocessor, rows[FEATURES])
        write_predictions(str(root), day, rows, predictions, context, LogColumns(key=("trip_id",)), shadow=shadow)
        scored.append(own)
    return pd.concat(scored, ignore_index=True)


def write_labels(folder: Path, rows: pd.DataFrame, *, error: float = 0.0) -> None:
    """Write the outcomes of ``rows`` (trip_id, duration_min) as label partitions by pickup day under ``folder``.

    ``error`` scales every outcome by ``1 + error`` (0.3: the 30% error the issue injects).
    """
    labels = rows[["trip_id", "pickup_at", "duration_min"]].assign(duration_min=rows["duration_min"] * (1 + error))
    for day, part in labels.groupby(labels["pickup_at"].dt.date):
        target = folder / f"date={day.isoformat()}"
        target.mkdir(parents=True, exist_ok=True)
        part.to_parquet(target / "part-0.parquet", index=False)


def failing_once(tracking_uri: str, key_prefix: str) -> Any:
    """A real ``MlflowClient`` on ``tracking_uri`` whose first write of a registered-model tag starting with
    ``key_prefix`` raises, as a registry that is down for a moment would (a fault, not a mock: every other call,
    and that one retried, is MLflow's own)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import TEMPORARILY_UNAVAILABLE

    class FailingOnce(MlflowClient):
        armed = True

        def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
            if self.armed and key.startswith(key_prefix):
                self.armed = False
                raise MlflowException(f"the registry is down (injected, writing {key})", TEMPORARILY_UNAVAILABLE)
            super().set_registered_model_tag(name, key, value)

    return FailingOnce(tracking_uri=tracking_uri, registry_uri=tracking_uri)
