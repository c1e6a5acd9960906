"""Training inputs for the ml tests: demo trips with a binary label, LightGBM specs, a snapshot of a frame, and
LightGBM trained on the preprocessor's frames (the reference that ``train_model``'s matrices must reproduce)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    import lightgbm as lgb

    from airflow_ml.ml.search import SearchSettings
    from airflow_ml.ml.serving import Preprocessor
    from airflow_ml.ml.train import Splits, TrainSpec

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


def booster_on_frames(
    splits: Splits, spec: TrainSpec, preprocessor: Preprocessor, init_model: lgb.Booster | None = None
) -> lgb.Booster:
    """LightGBM trained as ``train_model`` trained it before it built its own matrices: on ``transform``'s frames.

    The same parameters, Datasets, early stopping and best iteration, through LightGBM's pandas path (which
    turns the frames into float64 arrays itself): the reference that proves the matrices change no model.
    """
    import lightgbm as lgb

    labels = splits.train[spec.target].to_numpy(dtype="float64")
    params = {**spec.lightgbm_params(), **spec.imbalance_params(labels)}
    train_set = lgb.Dataset(
        preprocessor.transform(splits.train), label=labels, categorical_feature=spec.categorical or "auto"
    )
    valid_set = lgb.Dataset(
        preprocessor.transform(splits.validation),
        label=splits.validation[spec.target].to_numpy(dtype="float64"),
        reference=train_set,
    )
    stopping = [lgb.early_stopping(spec.early_stopping_rounds, verbose=False)] if spec.early_stopping_rounds else []
    booster = lgb.train(
        params,
        train_set,
        num_boost_round=spec.num_boost_round,
        valid_sets=[valid_set],
        valid_names=["validation"],
        callbacks=stopping,
        init_model=init_model,
    )
    if booster.best_iteration > 0:
        booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=booster.best_iteration))
    return booster


def trees(booster: lgb.Booster) -> str:
    """The booster's model text without its ``pandas_categorical`` line: what a booster trained on arrays lacks.

    LightGBM writes that line from the frame it was trained on and reads it only to predict a frame; the
    categories a model predicts with are its preprocessor's.
    """
    lines = booster.model_to_string().splitlines()
    return "\n".join(line for line in lines if not line.startswith("pandas_categorical:"))
