"""Training inputs for the ml tests: demo trips with a binary label, LightGBM specs, and a snapshot of a frame."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from airflow_ml.ml.search import SearchSettings
    from airflow_ml.ml.train import TrainSpec

#: The demo trips' feature columns.
FEATURES = ["distance_km", "pickup_hour", "weekday", "pickup_zone", "temperature_c", "is_raining"]


def late_trips(days: int = 8, scale: float = 0.5) -> pd.DataFrame:
    """Lisbon's demo trips of ``days`` days, with ``late``: a binary label, one trip in ten (imbalanced on purpose)."""
    from airflow_ml.data.demo import DEMO_START, generate_day

    dates = [DEMO_START + dt.timedelta(days=i) for i in range(days)]
    frame = pd.concat([generate_day("lisbon", day, scale=scale) for day in dates], ignore_index=True)
    return frame.assign(late=(frame["duration_min"] > frame["duration_min"].quantile(0.9)).astype("int64"))


def regression(**overrides: object) -> TrainSpec:
    """A small, quick ``TrainSpec`` of the trips' duration (``overrides`` replace its fields)."""
    from airflow_ml.ml.train import TrainSpec

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
    """:func:`regression` turned into the binary task of ``late``, scored by AUC."""
    return regression(target="late", task="binary", metric="auc", **overrides)


def snapshot(frame: pd.DataFrame, root: Path, run_id: str) -> object:
    """Write ``frame`` as day partitions under ``root/raw``; take run ``run_id``'s snapshot of them (its manifest)."""
    from airflow_ml.data.snapshot import take_snapshot

    source = root / "raw"
    for day, rows in frame.groupby(frame["pickup_at"].dt.date):
        folder = source / f"date={day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        rows.to_parquet(folder / "part-0.parquet", index=False)
    return take_snapshot(
        f"file://{source}", f"file://{root / 'snapshots'}", template="ride_duration", city="lisbon", run_id=run_id
    )


def search_settings(trials: int = 4) -> SearchSettings:
    """A small search: ``trials`` trials over the learning rate and the number of leaves."""
    from airflow_ml.ml.search import SearchRange, SearchSettings

    return SearchSettings(
        trials=trials,
        timeout_seconds=600,
        ranges={"learning_rate": SearchRange(0.02, 0.3, log=True), "num_leaves": SearchRange(4, 64, integer=True)},
    )
