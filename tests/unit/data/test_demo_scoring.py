"""The demo's trips to score and their outcomes (airflow_ml.data.demo_scoring): same trips, one city drifting."""

from __future__ import annotations

import datetime
import itertools
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_ml.data.demo import DEMO_CITIES, batch_days, generate_day
from airflow_ml.data.demo_scoring import (
    DRIFT_FACTOR,
    DRIFTING_CITY,
    drift_start,
    scored_days,
    write_outcomes,
    write_scoring_batch,
)

SCALE = 0.1


def test_the_scored_days_follow_the_later_batch_and_the_drift_starts_on_the_second() -> None:
    days = scored_days()
    assert days[0] == batch_days("later")[-1] + datetime.timedelta(days=1)
    assert [b - a for a, b in itertools.pairwise(days)] == [datetime.timedelta(days=1)] * (len(days) - 1)
    assert drift_start() == days[1]
    assert DRIFTING_CITY in DEMO_CITIES


def test_the_rows_to_score_are_the_days_trips_without_their_outcome(tmp_path: Path) -> None:
    files = write_scoring_batch(tmp_path, cities=["berlin"], scale=SCALE)

    assert [f.relative_to(tmp_path).as_posix() for f in files] == [
        f"raw/to_score/berlin/date={day}/part-0.parquet" for day in scored_days()
    ]
    rows = pd.read_parquet(files[0])
    trips = generate_day("berlin", scored_days()[0], scale=SCALE)
    assert "duration_min" not in rows.columns
    pd.testing.assert_frame_equal(rows, trips.drop(columns=["duration_min"]), check_dtype=False)


def test_the_outcomes_are_the_same_trips_and_only_the_drifting_city_drifts_from_its_day(tmp_path: Path) -> None:
    files = write_outcomes(tmp_path, cities=["berlin", DRIFTING_CITY], scale=SCALE)

    assert len(files) == 2 * len(scored_days())
    for city in ("berlin", DRIFTING_CITY):
        for day in scored_days():
            labels = pd.read_parquet(tmp_path / "raw" / "outcomes" / city / f"date={day}" / "part-0.parquet")
            trips = generate_day(city, day, scale=SCALE)
            assert list(labels.columns) == ["trip_id", "pickup_at", "duration_min"]
            assert labels["trip_id"].tolist() == trips["trip_id"].tolist()
            factor = DRIFT_FACTOR if city == DRIFTING_CITY and day >= drift_start() else 1.0
            expected = (trips["duration_min"] * factor).round(2)
            pd.testing.assert_series_equal(labels["duration_min"], expected, check_names=False)


def test_no_city_drifts_when_asked(tmp_path: Path) -> None:
    write_outcomes(tmp_path, cities=[DRIFTING_CITY], scale=SCALE, drifting=None)
    day = scored_days()[-1]
    labels = pd.read_parquet(tmp_path / "raw" / "outcomes" / DRIFTING_CITY / f"date={day}" / "part-0.parquet")
    assert labels["duration_min"].tolist() == generate_day(DRIFTING_CITY, day, scale=SCALE)["duration_min"].tolist()


@pytest.mark.parametrize(
    ("call", "error", "fragment"),
    [
        (lambda root: write_scoring_batch(root, cities=["paris"]), ValueError, "unknown demo city 'paris'; choose"),
        (lambda root: write_outcomes(root, drifting="paris"), ValueError, "unknown demo city 'paris' to drift"),
        (lambda root: write_outcomes(root, cities="berlin"), TypeError, "not the string 'berlin'"),
        (lambda root: write_scoring_batch(root, scale=0), ValueError, "scale must be a positive finite number"),
    ],
)
def test_bad_arguments_are_refused_naming_the_value(
    tmp_path: Path, call: Any, error: type[Exception], fragment: str
) -> None:
    with pytest.raises(error, match=fragment.replace("(", r"\(")):
        call(tmp_path)
    assert not (tmp_path / "raw").exists()
