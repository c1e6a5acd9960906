"""The drift step's calibration on the default windowing: rolling snapshots whose compared rows overlap.

Each night a city's snapshot is its latest 28 days (``window_days: 28``) and the drift step compares, with the
default ``min_new_days: 7`` and ``min_new_rows: 200``, the previous snapshot with this one's latest 7 days, or
with the whole snapshot when those hold fewer than 200 rows: six of the seven days (or all days but one) are on
both sides. Under no drift the calibrated p-values must still be uniform, whatever the city's size and whether
its weekly rows straddle ``min_new_rows`` (it then switches between the two modes from night to night).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from airflow_ml.data.snapshot import take_snapshot
from airflow_ml.ml.steps.drift_calibration_step import calibrate_run, record_history
from airflow_ml.ml.steps.step_settings import DriftSettings

WINDOW_DAYS = 28
START = dt.date(2026, 1, 1)
SETTINGS = DriftSettings(  # the default windowing: compare new_rows, min_new_days 7, min_new_rows 200
    model_name="ride_duration.any",
    features=["x1", "x2"],
    target="y",
    time_column="ts",
    calibration={"min_history": 20},
)


def write_days(root: Path, city: str, rows_per_day: float, days: int, seed: int) -> Path:
    """``days`` daily partitions of one unchanging distribution (Poisson rows a day, x2 missing 5% of the time)."""
    rng = np.random.default_rng(seed)
    source = root / "raw" / city
    for day in range(days):
        date = START + dt.timedelta(days=day)
        n = max(1, int(rng.poisson(rows_per_day)))
        frame = pd.DataFrame({"x1": rng.normal(0, 1, n), "x2": rng.exponential(1.0, n)})
        frame.loc[rng.random(n) < 0.05, "x2"] = np.nan
        frame["y"] = frame["x1"] + rng.normal(0, 0.5, n)
        frame["ts"] = pd.Timestamp(date) + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s")
        folder = source / f"date={date}"
        folder.mkdir(parents=True)
        frame.to_parquet(folder / "part.parquet")
    return source


def nightly_p_values(root: Path, city: str, rows_per_day: float, nights: int, seed: int) -> pd.DataFrame:
    """Run the real drift calibration every night on the city's rolling snapshot; per night its compare mode and
    calibrated p-values (a night without one: a row with p None)."""
    source = write_days(root, city, rows_per_day, WINDOW_DAYS + nights, seed)
    out = []
    for night in range(nights):
        end = START + dt.timedelta(days=WINDOW_DAYS - 1 + night)
        manifest = take_snapshot(
            str(source),
            str(root / "snapshots"),
            template="ride_duration",
            city=city,
            run_id=f"night-{night}",
            window_days=WINDOW_DAYS,
            end=end,
        )
        now = dt.datetime.combine(end, dt.time(3), dt.UTC)
        run = calibrate_run(manifest, SETTINGS, now=now)
        record_history(run, None)
        mode = run.section["compared"]["mode"] if run.section["compared"] else None
        judged = [e for e in run.entries if e["p_value"] is not None] or [{"p_value": None}]
        out += [{"night": night, "mode": mode, "p": e["p_value"]} for e in judged]
    return pd.DataFrame(out)


def test_no_drift_p_values_are_not_anti_conservative_on_overlapping_rolling_snapshots(tmp_path: Path) -> None:
    # 400 rows a day: always new_rows; 27 a day: the latest 7 days hold about 182 rows, so the city switches
    # between new_rows and whole_snapshot; 8 a day: always the whole snapshot.
    cities = {"large": 400.0, "straddling": 26.0, "small": 8.0}
    found = pd.concat(
        [
            nightly_p_values(tmp_path, city, rows, 100, seed).assign(city=city)
            for seed, (city, rows) in enumerate(cities.items())
        ]
    )

    modes = found.dropna(subset=["mode"]).groupby("city")["mode"].agg(set).to_dict()
    assert modes["large"] == {"new_rows"}
    assert modes["small"] == {"whole_snapshot"}
    assert modes["straddling"] == {"new_rows", "whole_snapshot"}, modes
    found = found.dropna(subset=["p"])
    assert found.groupby("city").size().min() >= 300  # most nights are judged
    by_city = found.groupby("city")["p"]
    shares = by_city.apply(lambda p: float(np.mean(p <= 0.01))).to_dict()
    tiny = by_city.apply(lambda p: float(np.mean(p <= 1e-3))).to_dict()
    # Uniform p-values put 1% at or below 0.01. The tests of one night, and of nights whose windows overlap,
    # are correlated, so the tolerance is wide. Judged as independent samples against a history of both modes,
    # the straddling city's rare new_rows nights stand far out: about 2% of its p-values fall below 0.001.
    for city in cities:
        assert shares[city] <= 0.035, (city, shares)
        assert tiny[city] <= 0.01, (city, tiny)
