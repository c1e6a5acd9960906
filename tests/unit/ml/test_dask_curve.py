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


@pytest.mark.parametrize(
    ("make", "params"),
    [
        (regression, {}),
        (binary, {}),
        # Linear trees: a leaf's output depends on the row, so the curve falls back to one prediction a round.
        (regression, {"linear_tree": True, "learning_rate": 0.1, "num_leaves": 7}),
        # A tree of one leaf (no split left to make) has one value and every row in leaf 0.
        (regression, {"min_data_in_leaf": 10_000, "learning_rate": 0.1}),
    ],
    ids=["regression", "binary", "linear", "one-leaf"],
)
def test_each_rounds_raw_score_from_leaves_equals_lightgbms_prediction_per_tree(
    trips: pd.DataFrame, make: object, params: dict[str, object]
) -> None:
    import numpy as np

    from airflow_ml.ml.dask_curve import TREES_PER_CALL, _per_round_raw, leaf_values

    spec = make(
        num_boost_round=TREES_PER_CALL + 17, early_stopping_rounds=None, **({"params": params} if params else {})
    )  # type: ignore[operator]
    splits = time_split(trips, "pickup_at", 0.15, 0.15)
    trained = train_model(splits, spec)
    model = trained.booster.model_to_string()
    rows = splits.validation
    features = trained.preprocessor.transform(rows)

    found = [raw.copy() for raw in _per_round_raw(model, trained.preprocessor.to_dict(), rows)]

    expected, raw = [], np.zeros(len(rows))
    for tree in range(trained.booster.current_iteration()):
        raw = raw + trained.booster.predict(features, raw_score=True, start_iteration=tree, num_iteration=1)
        expected.append(raw)
    # Across two blocks of leaves; LightGBM stops at once when no split can be made (the one-leaf case).
    assert len(found) == len(expected) == (1 if "min_data_in_leaf" in params else TREES_PER_CALL + 17)
    np.testing.assert_allclose(found, expected, rtol=1e-12, atol=1e-12)
    assert (leaf_values(model) is None) == bool(params.get("linear_tree"))
