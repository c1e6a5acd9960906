"""The bare-script floor's LightGBM fit, shared by ``retrain.py`` (the floor itself) and ``validate.py`` (training
as the yardstick of the validate task): sort by time, split, categoricals from the train split, early stopping.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class FloorFit:
    """The fitted booster, the parameters it was trained with and the holdout it has not seen."""

    booster: Any
    params: dict[str, Any]
    holdout_x: Any
    holdout_y: Any


def fit_floor(frame: Any, config: Any) -> FloorFit:
    """Fit the city's model on ``frame`` as a bare script would (``config``: the city's validated settings)."""
    import lightgbm as lgb
    import pandas as pd

    ds, tr = config.dataset, config.training
    frame = frame.sort_values(ds.time_column, kind="mergesort", ignore_index=True)
    n = len(frame)
    hold = n - round(n * config.split.holdout_fraction)
    val = hold - round(n * config.split.validation_fraction)
    x = frame[ds.features].copy()
    for c in ds.categorical_features:
        x[c] = pd.Categorical(x[c], categories=sorted(x[c].iloc[:val].dropna().unique()))
    y = frame[ds.target].to_numpy()
    params = {**tr.params.model_dump(), "objective": "regression", "metric": "rmse", "seed": tr.seed, "verbosity": -1}
    train = lgb.Dataset(x.iloc[:val], y[:val])
    booster = lgb.train(
        params,
        train,
        tr.num_boost_round,
        valid_sets=[lgb.Dataset(x.iloc[val:hold], y[val:hold], reference=train)],
        callbacks=[lgb.early_stopping(tr.early_stopping_rounds or 0, verbose=False)],
    )
    return FloorFit(booster, params, x.iloc[hold:], y[hold:])
