"""Time-based splits and deterministic LightGBM training on a snapshot."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from airflow_ml.ml.memory_release import release_free_memory
from airflow_ml.ml.metrics import score
from airflow_ml.ml.serving import Preprocessor, predict_raw
from airflow_ml.ml.train_spec import TrainSpec as TrainSpec  # where the core imports it from
from airflow_ml.ml.train_spec import available_cores as available_cores
from airflow_ml.ml.train_spec import effective_threads as effective_threads

log = logging.getLogger(__name__)

#: The most training rows the train metric is scored on (``train_sample_<metric>``): a seeded random sample, all
#: rows when there are fewer. Predicting every training row (681k of 1M) only to report how well the model fits
#: them cost more CPU than any other step of the task; 50,000 rows pin an RMSE down to about half a percent.
TRAIN_SAMPLE_ROWS = 50_000


@dataclass(frozen=True)
class Splits:
    """Rows of one snapshot split by time: the oldest train, newer validate, the newest are the holdout."""

    train: pd.DataFrame
    validation: pd.DataFrame
    holdout: pd.DataFrame

    def sizes(self) -> dict[str, int]:
        """Row count per split."""
        return {"train": len(self.train), "validation": len(self.validation), "holdout": len(self.holdout)}


@dataclass
class TrainedModel:
    """A trained booster with the preprocessor fitted on its training rows, and how it scored."""

    booster: lgb.Booster
    preprocessor: Preprocessor
    metrics: dict[str, float]
    best_iteration: int
    learning_curve: list[float]
    #: The LightGBM parameters the booster was trained with (after class weights and search).
    params: dict[str, Any] = field(default_factory=dict)
    #: The booster's predictions of the holdout rows, in their order (None when the holdout was not scored):
    #: the very values its holdout metric was scored on, reused for the lineage file and the charts.
    holdout_predictions: np.ndarray | None = None


def split_bounds(n: int, validation_fraction: float, holdout_fraction: float) -> tuple[int, int]:
    """Where the validation and the holdout rows start among ``n`` rows in time order (local and Dask alike).

    Raises:
        ValueError: when a split would be empty.
    """
    holdout_start = n - round(n * holdout_fraction)
    validation_start = holdout_start - round(n * validation_fraction)
    if validation_start <= 0 or holdout_start <= validation_start or holdout_start >= n:
        raise ValueError(
            f"{n} rows are too few to split into train/validation/holdout with fractions "
            f"{validation_fraction}/{holdout_fraction}; add data or widen the window"
        )
    return validation_start, holdout_start


def time_split(frame: pd.DataFrame, time_column: str, validation_fraction: float, holdout_fraction: float) -> Splits:
    """Split rows by time; the same snapshot always gives the same splits.

    The splits are views of one frame ordered by time: ``frame`` itself when it already is (a snapshot is written
    in time order), else a sorted copy (stable: rows of equal time keep their order). A caller that drops its
    own reference to ``frame`` then holds its rows once.

    Raises:
        ValueError: when the time column is missing or a split would be empty.
    """
    if time_column not in frame.columns:
        raise ValueError(f"time column {time_column!r} is not in the data; columns are {list(frame.columns)}")
    if frame[time_column].is_monotonic_increasing:
        # What a stable sort would return, without copying every column (reset_index copies on write only).
        ordered = frame.reset_index(drop=True)
    else:
        ordered = frame.sort_values(time_column, kind="mergesort", ignore_index=True)
    n = len(ordered)
    validation_start, holdout_start = split_bounds(n, validation_fraction, holdout_fraction)
    return Splits(
        train=ordered.iloc[:validation_start],
        validation=ordered.iloc[validation_start:holdout_start],
        holdout=ordered.iloc[holdout_start:],
    )


def train_model(
    splits: Splits,
    spec: TrainSpec,
    *,
    init_model: lgb.Booster | None = None,
    preprocessor: Preprocessor | None = None,
    score_holdout: bool = True,
) -> TrainedModel:
    """Fit the preprocessor on the training rows only, then train LightGBM with early stopping on validation.

    Args:
        splits: The time-based splits.
        spec: What decides the model.
        init_model: Continue boosting from this booster (warm start); needs its ``preprocessor``.
        preprocessor: Use this fitted preprocessor instead of fitting one on the training rows.
        score_holdout: False leaves the holdout unscored (search trials must never look at it).

    Raises:
        ValueError: when the target has nulls in the training or validation rows.
    """
    for name, part in (("train", splits.train), ("validation", splits.validation)):
        nulls = int(part[spec.target].isna().sum())
        if nulls:
            raise ValueError(
                f"target {spec.target!r} has {nulls} null(s) in the {name} split; fix the data or its suite"
            )
    if preprocessor is None:
        preprocessor = Preprocessor.fit(splits.train, spec.features, spec.categorical, spec.task)
    else:
        # A champion's preprocessor is of the serving module logged with it, which may predate ``matrix``.
        preprocessor = Preprocessor.from_dict(preprocessor.to_dict())
    labels = splits.train[spec.target].to_numpy(dtype="float64")
    params = {**spec.lightgbm_params(), **spec.imbalance_params(labels)}
    # The matrices are LightGBM's input as it would derive it from ``transform``'s frames, built directly: no
    # frame of the features and no copy of it. No name holds them, so each is freed once its Dataset is built.
    train_set = lgb.Dataset(
        preprocessor.matrix(splits.train),
        label=labels,
        feature_name=preprocessor.features,
        categorical_feature=list(spec.categorical),
        params=params,
        free_raw_data=True,
    )
    if init_model is None:
        # Binned (with the parameters lgb.train would use) and its matrix freed before the validation matrix
        # exists. A warm start cannot: lgb.train scores the raw matrix with the champion for the initial scores.
        train_set.construct()
    valid_set = lgb.Dataset(
        preprocessor.matrix(splits.validation),
        label=splits.validation[spec.target].to_numpy(dtype="float64"),
        feature_name=preprocessor.features,
        reference=train_set,
    )
    curve: dict[str, dict[str, list[float]]] = {}
    callbacks = [lgb.record_evaluation(curve)]
    if spec.early_stopping_rounds:
        callbacks.append(lgb.early_stopping(spec.early_stopping_rounds, verbose=False))
    booster = lgb.train(
        params,
        train_set,
        num_boost_round=spec.num_boost_round,
        valid_sets=[valid_set],
        valid_names=["validation"],
        callbacks=callbacks,
        init_model=init_model,
    )
    if booster.best_iteration > 0:
        # Keep only the trees up to the best iteration so the saved model predicts what was scored.
        booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=booster.best_iteration))
    # The Datasets' bins and LightGBM's training buffers are freed: hand them back before scoring and logging.
    del train_set, valid_set
    release_free_memory()
    sample = train_sample(splits.train, spec.seed)
    metrics = {
        f"train_sample_{spec.metric}": _score(spec.metric, booster, preprocessor, sample, spec.target),
        f"validation_{spec.metric}": _score(spec.metric, booster, preprocessor, splits.validation, spec.target),
    }
    holdout_predictions = None
    if score_holdout:
        holdout_predictions = predict_raw(booster, preprocessor, splits.holdout)
        metrics[f"holdout_{spec.metric}"] = score(spec.metric, splits.holdout[spec.target], holdout_predictions)
    validation_curve = next(iter(curve.get("validation", {}).values()), [])
    return TrainedModel(
        booster=booster,
        preprocessor=preprocessor,
        metrics=metrics,
        best_iteration=int(booster.current_iteration()),
        learning_curve=[float(v) for v in validation_curve],
        params=params,
        holdout_predictions=holdout_predictions,
    )


def train_sample(train: pd.DataFrame, seed: int, rows: int = TRAIN_SAMPLE_ROWS) -> pd.DataFrame:
    """At most ``rows`` training rows, drawn at random with ``seed`` and kept in time order; all when fewer.

    Random, not the first or last rows: the oldest rows of a time-ordered split are not the typical ones.
    """
    if len(train) <= rows:
        return train
    return train.iloc[np.sort(np.random.default_rng(seed).choice(len(train), rows, replace=False))]


def _score(metric: str, booster: lgb.Booster, preprocessor: Preprocessor, part: pd.DataFrame, target: str) -> float:
    return score(metric, part[target], predict_raw(booster, preprocessor, part))
