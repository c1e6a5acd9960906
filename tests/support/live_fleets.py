"""Simulated fleets for the supervisor's tests: labelled predictions per day, healthy or with an injected error.

Each city has its own noise level; a day's outcomes are ``15 + N(0, 5)`` minutes and the model's predictions miss
them by ``N(0, sigma)``, a little more or less from day to day. The holdout score at promotion is the rmse of
the same process on 2000 rows. Everything comes from one seeded generator: the same seed, the same fleet.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from airflow_ml.data.prediction_log import PARTITION_COLUMN
from airflow_ml.monitoring.label_join import LABEL

#: The first simulated day.
START = dt.date(2026, 3, 1)


def holdout_rmse(rng: np.random.Generator, sigma: float, rows: int = 2000) -> float:
    """The rmse of the city's model on a holdout of ``rows`` rows (its score at promotion)."""
    return float(np.sqrt(np.mean(rng.normal(0, sigma, rows) ** 2)))


def live_days(
    rng: np.random.Generator, sigma: float, *, days: int, rows_per_day: int, error: float = 0.0
) -> pd.DataFrame:
    """``days`` days of joined rows (day, prediction, label) from :data:`START`; labels scaled by ``1 + error``."""
    frames = []
    for offset in range(days):
        truth = 15 + rng.normal(0, 5, rows_per_day)
        prediction = truth + rng.normal(0, sigma * rng.uniform(0.9, 1.1), rows_per_day)
        day = START + dt.timedelta(days=offset)
        frames.append(pd.DataFrame({PARTITION_COLUMN: day, "prediction": prediction, LABEL: truth * (1 + error)}))
    return pd.concat(frames, ignore_index=True)
