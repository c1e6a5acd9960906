"""Time-based splits and deterministic LightGBM training on a snapshot."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import pandas as pd

from airflow_ml.ml.metrics import score
from airflow_ml.ml.serving import Preprocessor, predict_raw
from airflow_ml.ml.train_spec import TrainSpec as TrainSpec  # where the core imports it from
from airflow_ml.ml.train_spec import available_cores as available_cores
from airflow_ml.ml.train_spec import effective_threads as effective_threads

log = logging.getLogger(__name__)


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


def time_split(frame: pd.DataFrame, time_column: str, validation_fraction: float, holdout_fraction: float) -> Splits:
    """Split rows by time; the same snapshot always gives the same splits.

    Raises:
        ValueError: when the time column is missing or a split would be empty.
    """
    if time_column not in frame.columns:
        raise ValueError(f"time column {time_column!r} is not in the data; columns are {list(frame.columns)}")
    ordered = frame.sort_values(time_column, kind="mergesort", ignore_index=True)
    n = len(ordered)
    holdout_start = n - round(n * holdout_fraction)
    validation_start = holdout_start - round(n * validation_fraction)
    if validation_start <= 0 or holdout_start <= validation_start or holdout_start >= n:
        raise ValueError(
            f"{n} rows are too few to split into train/validation/holdout with fractions "
            f"{validation_fraction}/{holdout_fraction}; add data or widen the window"
        )
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
    labels = splits.train[spec.target].to_numpy(dtype="float64")
    params = {**spec.lightgbm_params(), **spec.imbalance_params(labels)}
    train_set = lgb.Dataset(
        preprocessor.transform(splits.train),
        label=labels,
        categorical_feature=spec.categorical or "auto",
        free_raw_data=True,
    )
    valid_set = lgb.Dataset(
        preprocessor.transform(splits.validation),
        label=splits.validation[spec.target].to_numpy(dtype="float64"),
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
    metrics: dict[str, float] = {}
    parts = [("train", splits.train), ("validation", splits.validation)]
    if score_holdout:
        parts.append(("holdout", splits.holdout))
    for name, part in parts:
        metrics[f"{name}_{spec.metric}"] = score(
            spec.metric, part[spec.target], predict_raw(booster, preprocessor, part)
        )
    validation_curve = next(iter(curve.get("validation", {}).values()), [])
    return TrainedModel(
        booster=booster,
        preprocessor=preprocessor,
        metrics=metrics,
        best_iteration=int(booster.current_iteration()),
        learning_curve=[float(v) for v in validation_curve],
        params=params,
    )
