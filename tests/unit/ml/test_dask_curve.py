"""The round early stopping keeps (airflow_ml.ml.dask_curve) against LightGBM's own early_stopping callback."""

from __future__ import annotations

import pandas as pd
import pytest

from airflow_ml.ml.dask_curve import early_stopping_point
from airflow_ml.ml.train import time_split, train_model
from tests.support.training_data import binary, regression


@pytest.mark.parametrize(("make", "patience"), [(regression, 3), (regression, 10), (binary, 2), (binary, 8)])
def test_the_kept_round_is_the_one_lightgbm_early_stopping_keeps(
    trips: pd.DataFrame, make: object, patience: int
) -> None:
    splits = time_split(trips, "pickup_at", 0.15, 0.15)
    stopped = train_model(splits, make(num_boost_round=120, early_stopping_rounds=patience))  # type: ignore[operator]
    every = train_model(splits, make(num_boost_round=120, early_stopping_rounds=None))  # type: ignore[operator]

    best, ran = early_stopping_point(every.learning_curve, patience, minimize=make is regression)

    assert (best, ran) == (stopped.best_iteration, len(stopped.learning_curve))
    assert every.learning_curve[:ran] == stopped.learning_curve  # deterministic: the same rounds


def test_without_patience_every_round_is_kept() -> None:
    assert early_stopping_point([3.0, 2.0, 2.5], None, minimize=True) == (3, 3)
    assert early_stopping_point([], 5, minimize=True) == (0, 0)
    # Ties are no gain: the first best round stays.
    assert early_stopping_point([0.7, 0.8, 0.8, 0.8], 2, minimize=False) == (2, 4)
