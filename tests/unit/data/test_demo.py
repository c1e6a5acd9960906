"""Tests for the deterministic demo trip generator (airflow_ml.data.demo)."""

from __future__ import annotations

import datetime
import itertools
import pathlib
import re

import numpy as np
import pandas as pd
import pytest

from airflow_ml.data.demo import (
    BATCHES,
    DEMO_CITIES,
    DEMO_START,
    batch_days,
    generate_day,
    write_demo_data,
)

SCALE = 0.1
EXPECTED_DTYPES = {
    "trip_id": "string",
    "pickup_at": "datetime64[ns]",
    "pickup_hour": "int64",
    "weekday": "int64",
    "pickup_zone": "string",
    "distance_km": "float64",
    "temperature_c": "float64",
    "is_raining": "int64",
    "duration_min": "float64",
}
PATH_RE = re.compile(r"raw/trips/(?P<city>[a-z_]+)/date=(?P<date>\d{4}-\d{2}-\d{2})/part-(?P<batch>\w+)\.parquet$")


@pytest.fixture(scope="module")
def initial(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[pathlib.Path, list[pathlib.Path]]:
    root = tmp_path_factory.mktemp("lake")
    return root, write_demo_data(root, batch="initial", scale=SCALE)


@pytest.fixture(scope="module")
def trips(initial: tuple[pathlib.Path, list[pathlib.Path]]) -> dict[str, pd.DataFrame]:
    _, files = initial
    frames: dict[str, list[pd.DataFrame]] = {city: [] for city in DEMO_CITIES}
    for path in files:
        match = PATH_RE.search(path.as_posix())
        assert match is not None
        frames[match["city"]].append(pd.read_parquet(path))
    return {city: pd.concat(parts, ignore_index=True) for city, parts in frames.items()}


def test_batch_days_are_consecutive_and_disjoint() -> None:
    days = {batch: batch_days(batch) for batch in BATCHES}
    assert [len(days[b]) for b in BATCHES] == [60, 14, 3]
    assert days["initial"][0] == DEMO_START == datetime.date(2026, 1, 5)
    chained = days["initial"] + days["later"] + days["broken"]
    assert chained == [DEMO_START + datetime.timedelta(days=i) for i in range(77)]


def test_layout_of_initial_batch(
    initial: tuple[pathlib.Path, list[pathlib.Path]],
) -> None:
    root, files = initial
    assert len(files) == len(DEMO_CITIES) * 60
    assert sorted(files) == sorted(root.glob("raw/trips/*/date=*/*.parquet"))
    expected_dates = {d.isoformat() for d in batch_days("initial")}
    for city in DEMO_CITIES:
        partitions = sorted((root / "raw" / "trips" / city).iterdir())
        assert {p.name.removeprefix("date=") for p in partitions} == expected_dates
        for part in partitions:
            assert [f.name for f in part.iterdir()] == ["part-initial.parquet"]
    assert not list(root.rglob(".*.tmp"))


def test_file_matches_generate_day(
    initial: tuple[pathlib.Path, list[pathlib.Path]],
) -> None:
    root, _ = initial
    day = DEMO_START + datetime.timedelta(days=17)
    path = root / "raw/trips/lisbon" / f"date={day.isoformat()}" / "part-initial.parquet"
    expected = generate_day("lisbon", day, scale=SCALE)
    pd.testing.assert_frame_equal(pd.read_parquet(path), expected)


def test_columns_dtypes_and_values(trips: dict[str, pd.DataFrame]) -> None:
    for city, df in trips.items():
        assert {c: str(t) for c, t in df.dtypes.items()} == EXPECTED_DTYPES
        assert df["trip_id"].is_unique
        assert df["trip_id"].str.fullmatch(rf"{city}-\d{{4}}-\d{{2}}-\d{{2}}-\d{{6}}").all()
        assert (df["pickup_hour"] == df["pickup_at"].dt.hour).all()
        assert (df["weekday"] == df["pickup_at"].dt.day_of_week).all()
        dates = df["pickup_at"].dt.date
        assert dates.min() == DEMO_START
        assert dates.max() == batch_days("initial")[-1]
        assert set(df["is_raining"].unique()) <= {0, 1}
        assert df["distance_km"].notna().all()
        assert (df["distance_km"] > 0).all()
        assert df["duration_min"].notna().all()
        assert (df["duration_min"] > 0).all()
        zone_shares = df["pickup_zone"].value_counts(normalize=True)
        assert 8 <= len(zone_shares) <= 15
        assert zone_shares.iloc[0] > 2 * zone_shares.iloc[-1]  # non-uniform popularity
    zones = [set(df["pickup_zone"].dropna()) for df in trips.values()]
    assert not zones[0] & zones[1]
    assert not zones[1] & zones[2]


def test_trip_id_matches_partition(
    initial: tuple[pathlib.Path, list[pathlib.Path]],
) -> None:
    _, files = initial
    df = pd.read_parquet(files[5])
    match = PATH_RE.search(files[5].as_posix())
    assert match is not None
    assert df["trip_id"].iloc[0] == f"{match['city']}-{match['date']}-000000"
    assert (df["pickup_at"].dt.strftime("%Y-%m-%d") == match["date"]).all()
    assert df["pickup_at"].is_monotonic_increasing


def test_null_fractions(trips: dict[str, pd.DataFrame]) -> None:
    df = pd.concat(trips.values(), ignore_index=True)
    assert 0.005 < df["temperature_c"].isna().mean() < 0.02
    assert 0.0005 < df["pickup_zone"].isna().mean() < 0.008
    other = df.drop(columns=["temperature_c", "pickup_zone"])
    assert other.notna().all().all()


def test_volume_and_seasonality(trips: dict[str, pd.DataFrame]) -> None:
    per_day = {c: df.groupby(df["pickup_at"].dt.date).size().mean() for c, df in trips.items()}
    assert per_day["lisbon"] < per_day["berlin"] < per_day["sao_paulo"]
    assert per_day["berlin"] == pytest.approx(1200 * SCALE, rel=0.15)
    for df in trips.values():
        by_weekday = df.groupby(df["pickup_at"].dt.date).size().groupby(lambda d: d.weekday()).mean()
        assert by_weekday.max() > 1.2 * by_weekday.min()
        hours = df.loc[df["weekday"] < 5, "pickup_hour"].value_counts()
        rush = hours.reindex([7, 8, 9, 17, 18, 19], fill_value=0).sum()
        night = hours.reindex([1, 2, 3, 4, 5, 6], fill_value=0).sum()
        assert rush > 5 * night


def test_signal(trips: dict[str, pd.DataFrame]) -> None:
    for df in trips.values():
        assert df["distance_km"].corr(df["duration_min"]) > 0.5
        pace = df["duration_min"] / df["distance_km"]
        weekday = df["weekday"] < 5
        rush = pace[weekday & df["pickup_hour"].isin([8, 17, 18])].median()
        night = pace[df["pickup_hour"].isin([1, 2, 3, 4])].median()
        assert rush > 1.1 * night
        assert pace[df["is_raining"] == 1].median() > pace[df["is_raining"] == 0].median()
        # A simple log-linear model already explains a good part but not all variance.
        clean = df.dropna()
        x = pd.get_dummies(clean[["pickup_hour", "pickup_zone"]].astype("str"), dtype=float).assign(
            log_km=np.log(clean["distance_km"]),
            weekend=(clean["weekday"] >= 5).astype(float),
            rain=clean["is_raining"].astype(float),
        )
        y = np.log(clean["duration_min"].to_numpy())
        coef, *_ = np.linalg.lstsq(x.to_numpy(), y, rcond=None)
        r2 = 1 - np.var(y - x.to_numpy() @ coef) / np.var(y)
        assert 0.5 < r2 < 0.95


def test_cities_have_different_dynamics(trips: dict[str, pd.DataFrame]) -> None:
    pace = {c: (df["duration_min"] / df["distance_km"]).median() for c, df in trips.items()}
    values = sorted(pace.values())
    assert all(b > 1.08 * a for a, b in itertools.pairwise(values))

    def rush_ratio(df: pd.DataFrame) -> float:
        p = df["duration_min"] / df["distance_km"]
        weekday = df["weekday"] < 5
        return float(
            p[weekday & df["pickup_hour"].isin([17, 18])].median() / p[df["pickup_hour"].isin([1, 2, 3, 4])].median()
        )

    assert rush_ratio(trips["sao_paulo"]) > rush_ratio(trips["lisbon"]) + 0.2


def test_rain_is_one_episode_per_day(trips: dict[str, pd.DataFrame]) -> None:
    rainy_days = 0
    for df in trips.values():
        for _, day in df.groupby(df["pickup_at"].dt.date):
            rain = day["is_raining"].to_numpy()
            idx = np.flatnonzero(rain)
            if idx.size:
                rainy_days += 1
                assert rain[idx[0] : idx[-1] + 1].all()
    assert rainy_days > 20


def test_generation_is_deterministic(tmp_path: pathlib.Path) -> None:
    day = DEMO_START + datetime.timedelta(days=3)
    first = generate_day("berlin", day, seed=11, scale=SCALE)
    pd.testing.assert_frame_equal(first, generate_day("berlin", day, seed=11, scale=SCALE))
    assert not first.equals(generate_day("berlin", day, seed=12, scale=SCALE))

    a = write_demo_data(tmp_path / "a", batch="later", seed=3, scale=SCALE)
    b = write_demo_data(tmp_path / "b", batch="later", seed=3, scale=SCALE)
    assert [p.relative_to(tmp_path / "a") for p in a] == [p.relative_to(tmp_path / "b") for p in b]
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    before = [p.read_bytes() for p in a]
    again = write_demo_data(tmp_path / "a", batch="later", seed=3, scale=SCALE)  # overwrite
    assert again == a
    assert [p.read_bytes() for p in again] == before
    assert len(list((tmp_path / "a").rglob("*.parquet"))) == len(a) == 14 * len(DEMO_CITIES)


def test_days_do_not_depend_on_other_days(
    initial: tuple[pathlib.Path, list[pathlib.Path]], tmp_path: pathlib.Path
) -> None:
    _, files = initial
    only = write_demo_data(tmp_path, cities=["sao_paulo"], batch="initial", scale=SCALE)
    same = [f for f in files if "/sao_paulo/" in f.as_posix()]
    assert [p.read_bytes() for p in only] == [p.read_bytes() for p in same]


def test_later_batch_continues_initial(tmp_path: pathlib.Path) -> None:
    files = write_demo_data(tmp_path, cities=("lisbon",), batch="later", scale=SCALE)
    assert len(files) == 14
    df = pd.concat([pd.read_parquet(f) for f in files])
    assert {c: str(t) for c, t in df.dtypes.items()} == EXPECTED_DTYPES
    assert df["pickup_at"].min().date() == DEMO_START + datetime.timedelta(days=60)
    assert df["pickup_at"].max().date() == DEMO_START + datetime.timedelta(days=73)


def test_broken_batch(tmp_path: pathlib.Path) -> None:
    files = write_demo_data(tmp_path, batch="broken", scale=0.5)
    assert len(files) == 3 * len(DEMO_CITIES)
    assert all(f.name == "part-broken.parquet" for f in files)
    df = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    assert "distance" in df.columns
    assert "distance_km" not in df.columns
    assert 0.03 < (df["duration_min"] < 0).mean() < 0.08
    assert 0.33 < df["pickup_zone"].isna().mean() < 0.47
    assert 0.33 < df["temperature_c"].isna().mean() < 0.47

    day = batch_days("broken")[0]
    clean = generate_day("berlin", day, scale=SCALE)
    broken = generate_day("berlin", day, scale=SCALE, broken=True)
    assert (clean["distance_km"].to_numpy() == broken["distance"].to_numpy()).all()
    assert (clean["duration_min"].abs() == broken["duration_min"].abs()).all()


def test_unknown_city_and_batch(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match=r"'paris'.*berlin, lisbon, sao_paulo"):
        write_demo_data(tmp_path, cities=["berlin", "paris"])
    with pytest.raises(ValueError, match=r"'nightly'.*initial, later, broken"):
        write_demo_data(tmp_path, batch="nightly")
    with pytest.raises(ValueError, match="'nightly'"):
        batch_days("nightly")
    with pytest.raises(ValueError, match="'Berlin'"):
        generate_day("Berlin", DEMO_START)
    with pytest.raises(ValueError, match="scale"):
        write_demo_data(tmp_path, scale=0)
    with pytest.raises(TypeError):
        write_demo_data(tmp_path, cities="berlin")
    assert not list(tmp_path.iterdir())  # nothing written on bad input
