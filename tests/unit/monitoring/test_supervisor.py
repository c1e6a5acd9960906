"""The supervisor's decision on windows of live metrics: the issue's fleets (simulated, seeded) and each rule."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest

from airflow_ml.ml.steps.step_settings import SupervisorSettings
from airflow_ml.monitoring.live_metrics import WindowMetric, window_metrics
from airflow_ml.monitoring.supervisor import breaches, decide, threshold
from tests.support.live_fleets import START, holdout_rmse, live_days

AUTO = SupervisorSettings(mode="auto")  # tolerance 0.2, k 3, n 200: the defaults


def _window(day: int, value: float | None, low: float | None, high: float | None, labels: int = 500) -> WindowMetric:
    first = START + dt.timedelta(days=day)
    return WindowMetric(start=first, end=first, labels=labels, value=value, low=low, high=high)


def _fleet_decisions(seed: int, *, cities: int, days: int, rows: int, errors: dict[int, float]) -> list[str]:
    rng = np.random.default_rng(seed)
    verdicts = []
    for city in range(cities):
        sigma = rng.uniform(2, 6)  # the model misses by 2 to 6 minutes on outcomes of 15 +- 5
        holdout = holdout_rmse(rng, sigma)
        joined = live_days(rng, sigma, days=days, rows_per_day=rows, error=errors.get(city, 0.0))
        end = START + dt.timedelta(days=days - 1)
        windows = window_metrics(joined, "rmse", end=end, window_days=1, windows=days, resamples=200, seed=city)
        verdicts.append(decide(windows, metric="rmse", holdout_score=holdout, settings=AUTO).verdict)
    return verdicts


def test_20_healthy_cities_over_30_windows_give_zero_demotions() -> None:
    verdicts = _fleet_decisions(13, cities=20, days=30, rows=300, errors={})

    assert verdicts == ["healthy"] * 20


def test_20_healthy_cities_judged_every_day_for_30_days_give_zero_demotions() -> None:
    # The monitor runs daily: each day it judges the windows up to that day, so a fleet sees 20 x 30 decisions.
    rng = np.random.default_rng(29)
    verdicts = []
    for city in range(20):
        sigma = rng.uniform(2, 6)
        holdout = holdout_rmse(rng, sigma)
        joined = live_days(rng, sigma, days=30, rows_per_day=300)
        end = START + dt.timedelta(days=29)
        windows = window_metrics(joined, "rmse", end=end, window_days=1, windows=30, resamples=200, seed=city)
        # One-day windows end on each day: the run of day d sees the first d of them.
        verdicts += [
            decide(windows[:d], metric="rmse", holdout_score=holdout, settings=AUTO).verdict for d in range(1, 31)
        ]

    assert len(verdicts) == 600
    assert "demote" not in verdicts
    assert verdicts.count("healthy") == 600


def test_30_percent_error_in_one_city_s_labels_demotes_that_city_only() -> None:
    verdicts = _fleet_decisions(13, cities=5, days=10, rows=300, errors={2: 0.3})

    assert verdicts == ["healthy", "healthy", "demote", "healthy", "healthy"]


def test_no_demotion_below_n_labels_per_window() -> None:
    verdicts = _fleet_decisions(13, cities=5, days=10, rows=150, errors={2: 0.3})  # n is 200

    assert verdicts == ["too_few_labels"] * 5


def test_the_interval_s_bound_must_be_past_the_line_too() -> None:
    line = threshold("rmse", 10.0, 0.2)

    assert line == pytest.approx(12.0)
    assert breaches(_window(0, 13.0, 12.5, 13.5), metric="rmse", line=line, min_labels=200)
    assert not breaches(_window(0, 13.0, 11.5, 14.5), metric="rmse", line=line, min_labels=200)  # noise may explain it
    assert not breaches(_window(0, 13.0, 12.5, 13.5, labels=199), metric="rmse", line=line, min_labels=200)


def test_a_score_to_maximize_breaches_below_the_line() -> None:
    line = threshold("auc", 0.8, 0.1)

    assert line == pytest.approx(0.72)
    assert breaches(_window(0, 0.6, 0.55, 0.65), metric="auc", line=line, min_labels=1)
    assert not breaches(_window(0, 0.9, 0.85, 0.95), metric="auc", line=line, min_labels=1)


def test_k_windows_in_a_row_each_with_n_labels_demote_and_the_record_names_them() -> None:
    bad = [_window(d, 14.0, 13.0, 15.0) for d in range(3)]

    decision = decide(bad, metric="rmse", holdout_score=10.0, settings=AUTO)

    assert (decision.verdict, decision.act, decision.streak, decision.threshold) == ("demote", True, 3, 12.0)
    assert [w["start"] for w in decision.breached] == ["2026-03-01", "2026-03-02", "2026-03-03"]
    assert "rolled back" in decision.reason
    assert decision.to_dict()["rules"]["consecutive_windows"] == 3


def test_a_window_with_too_few_labels_breaks_the_streak_but_windows_still_waiting_do_not() -> None:
    broken = [_window(0, 14.0, 13.0, 15.0), _window(1, 14.0, 13.0, 15.0, labels=50), _window(2, 14.0, 13.0, 15.0)]
    waiting = [*(_window(d, 14.0, 13.0, 15.0) for d in range(3)), _window(3, None, None, None, labels=0)]

    assert decide(broken, metric="rmse", holdout_score=10.0, settings=AUTO).verdict == "healthy"
    assert decide(waiting, metric="rmse", holdout_score=10.0, settings=AUTO).verdict == "demote"


def test_a_recovered_city_is_not_demoted_for_an_old_streak() -> None:
    windows = [*(_window(d, 14.0, 13.0, 15.0) for d in range(3)), _window(3, 10.0, 9.0, 11.0)]

    assert decide(windows, metric="rmse", holdout_score=10.0, settings=AUTO).verdict == "healthy"


def test_mode_alert_finds_the_same_and_acts_on_nothing_and_mode_off_judges_nothing() -> None:
    bad = [_window(d, 14.0, 13.0, 15.0) for d in range(3)]

    alert = decide(bad, metric="rmse", holdout_score=10.0, settings=dataclasses.replace(AUTO, mode="alert"))
    off = decide(bad, metric="rmse", holdout_score=10.0, settings=dataclasses.replace(AUTO, mode="off"))

    assert (alert.verdict, alert.act) == ("alert", False)
    assert "nothing moves" in alert.reason
    assert (off.verdict, off.act) == ("off", False)


def test_a_city_held_by_a_person_gets_an_alert_where_mode_auto_would_demote() -> None:
    bad = [_window(d, 14.0, 13.0, 15.0) for d in range(3)]

    held = decide(bad, metric="rmse", holdout_score=10.0, settings=AUTO, held="disabled: fares audit")

    assert (held.verdict, held.act, held.streak) == ("alert", False, 3)
    assert held.reason.endswith("alert only (disabled: fares audit): nothing moves")


def test_without_a_holdout_score_nothing_is_compared() -> None:
    decision = decide([_window(0, 14.0, 13.0, 15.0)], metric="rmse", holdout_score=None, settings=AUTO)

    assert (decision.verdict, decision.act) == ("no_holdout_score", False)
    assert "gate.challenger_score" in decision.reason
