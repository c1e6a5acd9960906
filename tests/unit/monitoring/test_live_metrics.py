"""The live metric per window: the windows' days, the metric of the rows in each, a seeded bootstrap interval."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from airflow_ml.ml.metrics import score
from airflow_ml.monitoring.label_join import LABEL
from airflow_ml.monitoring.live_metrics import window_bounds, window_metrics
from tests.support.live_fleets import START, live_days


def test_windows_of_window_days_lie_on_a_fixed_grid_the_newest_the_last_complete_one_oldest_first() -> None:
    end = dt.date(2026, 3, 10)  # day 20522 since 1970-01-01: the last day of the window of days 20520..20522

    expected = [(dt.date(2026, 3, 5), dt.date(2026, 3, 7)), (dt.date(2026, 3, 8), dt.date(2026, 3, 10))]
    assert window_bounds(end, window_days=3, windows=2) == expected
    # The next two daily runs fall inside the next window, which is not complete: they name the same windows,
    # so their monitoring runs are the same MLflow runs again.
    for later in (1, 2):
        assert window_bounds(end + dt.timedelta(days=later), window_days=3, windows=2) == expected
    assert window_bounds(end + dt.timedelta(days=3), window_days=3, windows=1) == [
        (dt.date(2026, 3, 11), dt.date(2026, 3, 13))
    ]
    assert window_bounds(end, window_days=1, windows=2) == [(dt.date(2026, 3, 9),) * 2, (end, end)]
    with pytest.raises(ValueError, match="at least 1"):
        window_bounds(end, window_days=0, windows=2)


def test_each_window_scores_its_own_days_with_an_interval_around_the_value() -> None:
    joined = live_days(np.random.default_rng(3), 4.0, days=7, rows_per_day=200)
    end = START + dt.timedelta(days=6)  # 2026-03-07, the last day of the grid's window 2026-03-06..07

    windows = window_metrics(joined, "rmse", end=end, window_days=2, windows=3, resamples=300)

    assert [(w.start, w.labels) for w in windows] == [(START + dt.timedelta(days=1 + 2 * i), 400) for i in range(3)]
    first = joined.iloc[200:600]
    assert windows[0].value == pytest.approx(score("rmse", first[LABEL], first["prediction"]))
    for window in windows:
        assert window.low is not None
        assert window.high is not None
        assert window.low < window.value < window.high
    assert windows == window_metrics(joined, "rmse", end=end, window_days=2, windows=3, resamples=300)


def test_a_window_without_labels_has_no_value_and_says_so() -> None:
    joined = live_days(np.random.default_rng(3), 4.0, days=1, rows_per_day=50)

    before, only = window_metrics(joined, "mae", end=START, window_days=1, windows=2, resamples=100)

    assert (before.labels, before.value, before.low, before.to_dict()["start"]) == (0, None, None, "2026-02-28")
    assert only.labels == 50
    assert only.value is not None
