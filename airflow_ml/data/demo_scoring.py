"""The demo's loop after retraining: trips to score with each city's champion, then their outcomes, one city drifting.

``make demo`` scores the days after the ``later`` batch (:func:`write_scoring_batch`: the trips without their
duration, under ``raw/to_score/``, the template's ``scoring.source``), then their outcomes arrive
(:func:`write_outcomes`: the same trips' ``duration_min`` under ``raw/outcomes/``, its
``monitoring.labels.source``), with :data:`DRIFTING_CITY`'s trips taking 40% longer from the second scored day
on: the live error its champion's monitor sees grow. The trips are those of :func:`airflow_ml.data.demo.generate_day`
(same seed, same rows), so that each outcome finds its prediction by ``trip_id``.
"""

from __future__ import annotations

import datetime
import os
import pathlib
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from airflow_ml.data.demo import DEMO_CITIES, DEMO_START, generate_day, write_parquet

#: The days scored after retraining: (first day offset from DEMO_START, number of days), after ``later``.
_SCORED_SPAN = (74, 3)
#: The city whose outcomes drift once scored, from which scored day on, and by how much (durations x1.4).
DRIFTING_CITY, DRIFT_FROM_SCORED_DAY, DRIFT_FACTOR = "lisbon", 1, 1.4
_TARGET = ["duration_min"]


def scored_days() -> list[datetime.date]:
    """The days the demo scores with each champion after retraining: the 3 days after the ``later`` batch."""
    first, count = _SCORED_SPAN
    return [DEMO_START + datetime.timedelta(days=first + i) for i in range(count)]


def drift_start() -> datetime.date:
    """The first scored day whose outcomes drift (in :data:`DRIFTING_CITY` only)."""
    return scored_days()[DRIFT_FROM_SCORED_DAY]


def write_scoring_batch(
    root: str | os.PathLike[str], *, cities: Sequence[str] = DEMO_CITIES, seed: int = 7, scale: float = 1.0
) -> list[pathlib.Path]:
    """Write the trips to score on :func:`scored_days`, without their outcome ``duration_min``.

    Files go to ``<root>/raw/to_score/<city>/date=YYYY-MM-DD/part-0.parquet`` (the template's ``scoring.source``).
    Same arguments and errors as :func:`airflow_ml.data.demo.write_demo_data`; returns the files written, by
    city then day.
    """
    return _write_scored(root, "to_score", cities, seed, scale, lambda city, day, frame: frame.drop(columns=_TARGET))


def write_outcomes(
    root: str | os.PathLike[str],
    *,
    cities: Sequence[str] = DEMO_CITIES,
    seed: int = 7,
    scale: float = 1.0,
    drifting: str | None = DRIFTING_CITY,
) -> list[pathlib.Path]:
    """Write the outcomes of the scored trips: ``trip_id``, ``pickup_at`` and ``duration_min`` per trip.

    Files go to ``<root>/raw/outcomes/<city>/date=YYYY-MM-DD/part-0.parquet`` (``monitoring.labels.source``).
    ``drifting``'s trips take :data:`DRIFT_FACTOR` times as long from :func:`drift_start` on (None: no city
    drifts). Otherwise as :func:`write_scoring_batch`.
    """
    if drifting is not None and drifting not in DEMO_CITIES:
        raise ValueError(f"unknown demo city {drifting!r} to drift; choose from {', '.join(DEMO_CITIES)}")

    def outcome(city: str, day: datetime.date, frame: pd.DataFrame) -> pd.DataFrame:
        labels = frame[["trip_id", "pickup_at", *_TARGET]]
        if city == drifting and day >= drift_start():
            labels = labels.assign(duration_min=np.round(labels["duration_min"] * DRIFT_FACTOR, 2))
        return labels

    return _write_scored(root, "outcomes", cities, seed, scale, outcome)


def _write_scored(
    root: str | os.PathLike[str],
    folder: str,
    cities: Sequence[str],
    seed: int,
    scale: float,
    shape: Callable[[str, datetime.date, pd.DataFrame], pd.DataFrame],
) -> list[pathlib.Path]:
    """Write ``shape(city, day, trips)`` of every city and scored day under ``<root>/raw/<folder>/``."""
    if isinstance(cities, str):
        raise TypeError(f"cities must be a sequence of city names, not the string {cities!r}")
    unknown = [city for city in cities if city not in DEMO_CITIES]
    if unknown:
        raise ValueError(f"unknown demo city {unknown[0]!r}; choose from {', '.join(DEMO_CITIES)}")
    written: list[pathlib.Path] = []
    for city in dict.fromkeys(cities):
        for day in scored_days():
            frame = shape(city, day, generate_day(city, day, seed=seed, scale=scale))
            path = pathlib.Path(root) / "raw" / folder / city / f"date={day.isoformat()}" / "part-0.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_parquet(frame, path)
            written.append(path)
    return written
