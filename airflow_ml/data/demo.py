"""Deterministic generator of realistic ride-hailing trips for the demo cities.

Used by ``make demo`` and by the tests. One parquet file per city, day and batch:
``<root>/raw/trips/<city>/date=YYYY-MM-DD/part-<batch>.parquet``. Each day of each
city has its own random stream seeded from ``(seed, city index, day ordinal)``, so
a day's rows never depend on which other days were generated.

The trips the demo scores after retraining, and their outcomes, are in :mod:`airflow_ml.data.demo_scoring`.
"""

from __future__ import annotations

import datetime
import os
import pathlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

DEMO_START = datetime.date(2026, 1, 5)
BATCHES = ("initial", "later", "broken")
# batch -> (first day offset from DEMO_START, number of days)
_BATCH_SPANS = {"initial": (0, 60), "later": (60, 14), "broken": (74, 3)}

_TEMPERATURE_NULL_RATE = 0.01
_ZONE_NULL_RATE = 0.003
_BROKEN_NULL_RATE = 0.4
_BROKEN_NEGATIVE_RATE = 0.05
_FIXED_OVERHEAD_MIN = 2.0


@dataclass(frozen=True)
class _CityProfile:
    """Structural parameters of one demo city (independent of the seed)."""

    trips_per_day: int
    zones: tuple[str, ...]  # most central / popular first
    weekly_volume: tuple[float, float, float, float, float, float, float]  # Mon..Sun
    base_speed_kmh: float  # free-flow speed
    congestion: float  # rush-hour slowdown strength
    morning_peak: float  # hour of the morning rush
    evening_peak: float  # hour of the evening rush
    weekend_congestion: float  # share of the weekday congestion on Sat/Sun
    rain_effect: float  # relative slowdown while raining
    rain_prob: float  # probability that it rains at some point of a day
    afternoon_storms: bool  # short afternoon showers instead of any-time rain
    temp_mean: float
    temp_amp: float
    temp_peak_doy: int  # day of year of the warmest day
    temp_day_sd: float  # day-to-day temperature anomaly
    noise_sd: float  # sd of the log-normal multiplicative duration noise
    distance_sd: float  # sd of log(distance)
    drift_per_day: float  # slow, relative slowdown of traffic per day since DEMO_START


# fmt: off
_CITIES: dict[str, _CityProfile] = {
    "berlin": _CityProfile(
        trips_per_day=1200,
        zones=("mitte", "kreuzberg", "friedrichshain", "prenzlauer_berg", "neukoelln",
               "charlottenburg", "schoeneberg", "wedding", "moabit", "tempelhof",
               "steglitz", "spandau"),
        weekly_volume=(0.92, 0.95, 1.0, 1.02, 1.15, 1.1, 0.8),
        base_speed_kmh=30.0, congestion=0.6, morning_peak=8.0, evening_peak=17.5,
        weekend_congestion=0.4, rain_effect=0.12, rain_prob=0.4, afternoon_storms=False,
        temp_mean=10.0, temp_amp=10.0, temp_peak_doy=200, temp_day_sd=3.0,
        noise_sd=0.27, distance_sd=0.55, drift_per_day=0.0008,
    ),
    "lisbon": _CityProfile(
        trips_per_day=800,
        zones=("baixa", "chiado", "alfama", "bairro_alto", "avenidas_novas", "alcantara",
               "belem", "parque_das_nacoes", "benfica", "lumiar"),
        weekly_volume=(0.85, 0.9, 0.95, 1.0, 1.2, 1.25, 0.85),
        base_speed_kmh=21.0, congestion=0.35, morning_peak=9.0, evening_peak=18.5,
        weekend_congestion=0.6, rain_effect=0.3, rain_prob=0.4, afternoon_storms=False,
        temp_mean=17.0, temp_amp=5.5, temp_peak_doy=215, temp_day_sd=2.0,
        noise_sd=0.28, distance_sd=0.5, drift_per_day=0.0005,
    ),
    "sao_paulo": _CityProfile(
        trips_per_day=2000,
        zones=("paulista", "pinheiros", "jardins", "itaim_bibi", "vila_madalena", "centro",
               "bela_vista", "liberdade", "moema", "vila_mariana", "santana", "tatuape",
               "mooca", "butanta", "santo_amaro"),
        weekly_volume=(1.0, 1.02, 1.03, 1.05, 1.12, 0.9, 0.7),
        base_speed_kmh=26.0, congestion=1.1, morning_peak=7.5, evening_peak=18.0,
        weekend_congestion=0.3, rain_effect=0.45, rain_prob=0.55, afternoon_storms=True,
        temp_mean=21.0, temp_amp=3.5, temp_peak_doy=30, temp_day_sd=1.5,
        noise_sd=0.3, distance_sd=0.6, drift_per_day=0.001,
    ),
}
# fmt: on

DEMO_CITIES: tuple[str, ...] = tuple(_CITIES)


def _profile(city: str) -> _CityProfile:
    try:
        return _CITIES[city]
    except (KeyError, TypeError):
        raise ValueError(f"unknown demo city {city!r}; choose from {', '.join(DEMO_CITIES)}") from None


def _check_params(seed: int, scale: float) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale must be a positive finite number, got {scale!r}")


def batch_days(batch: str) -> list[datetime.date]:
    """Return the days covered by a batch, in order.

    Args:
        batch: One of ``BATCHES``: ``"initial"`` (60 days from ``DEMO_START``),
            ``"later"`` (the next 14 days) or ``"broken"`` (the next 3 days).

    Returns:
        The consecutive dates of the batch.

    Raises:
        ValueError: If ``batch`` is unknown.
    """
    if batch not in _BATCH_SPANS:
        raise ValueError(f"unknown demo batch {batch!r}; choose from {', '.join(BATCHES)}")
    first, count = _BATCH_SPANS[batch]
    return [DEMO_START + datetime.timedelta(days=first + i) for i in range(count)]


def _bump(hours: np.ndarray, center: float, width: float) -> np.ndarray:
    """Gaussian bump over the (circular) hour of day."""
    dist = np.abs(hours - center)
    dist = np.minimum(dist, 24.0 - dist)
    return np.exp(-0.5 * (dist / width) ** 2)


def _hour_weights(p: _CityProfile, weekend: bool) -> np.ndarray:
    """Probability of a pickup in each hour: rush-hour peaks and quiet nights."""
    h = np.arange(24, dtype=np.float64)
    if weekend:  # late start, people going out in the evening, some night life
        bumps = [(0.5, 12.5, 3.0), (0.9, p.evening_peak + 2, 2.5), (0.35, 1.0, 1.5)]
    else:
        bumps = [
            (1.0, p.morning_peak, 1.3),
            (0.45, 13, 2.5),
            (1.2, p.evening_peak, 1.8),
        ]
    w = np.full(24, 0.06 if weekend else 0.04)  # quiet nights
    for amplitude, center, width in bumps:
        w += amplitude * _bump(h, center, width)
    return np.asarray(w / w.sum())


def _congestion(p: _CityProfile, t_hours: np.ndarray, weekend: bool) -> np.ndarray:
    """Relative extra travel time due to traffic at the given times of day."""
    c = _bump(t_hours, p.morning_peak, 1.2) + 0.9 * _bump(t_hours, p.evening_peak, 1.6)
    c += np.where((t_hours >= 7.0) & (t_hours < 21.0), 0.25, 0.0)  # daytime traffic
    return np.asarray(c * p.congestion * (p.weekend_congestion if weekend else 1.0))


def _zone_table(city: str, p: _CityProfile) -> tuple[np.ndarray, ...]:
    """Per-zone popularity, median distance (km) and congestion; seed-independent.

    Central zones (listed first) are popular, have short trips and heavy traffic.
    """
    k = len(p.zones)
    rank = np.arange(k, dtype=np.float64) / (k - 1)
    fixed = np.random.default_rng([20260105, DEMO_CITIES.index(city)])
    jitter = fixed.uniform(0.8, 1.2, size=(3, k))
    popularity = (np.arange(k) + 1.0) ** -0.9 * jitter[0]
    median_km = (2.2 + 6.5 * rank) * jitter[1]
    zone_congestion = (1.5 - 0.9 * rank) * jitter[2]
    return popularity / popularity.sum(), median_km, zone_congestion


def generate_day(
    city: str,
    day: datetime.date,
    *,
    seed: int = 7,
    scale: float = 1.0,
    broken: bool = False,
) -> pd.DataFrame:
    """Generate one day of trips for one demo city.

    Args:
        city: One of ``DEMO_CITIES``.
        day: The calendar day; pickups fall within it.
        seed: Base seed; the day's random stream is derived from
            ``(seed, city index, day ordinal)``.
        scale: Multiplier of the city's trip volume.
        broken: Corrupt the data like the ``"broken"`` batch: ``distance_km``
            renamed to ``distance``, ~5% negative ``duration_min`` and ~40%
            nulls in ``pickup_zone`` and ``temperature_c``. The uncorrupted
            values are the same as with ``broken=False``.

    Returns:
        The day's trips, sorted by ``pickup_at``.

    Raises:
        ValueError: For an unknown city, a negative seed or a non-positive scale.
    """
    p = _profile(city)
    _check_params(seed, scale)
    main_seq, corrupt_seq = np.random.SeedSequence([int(seed), DEMO_CITIES.index(city), day.toordinal()]).spawn(2)
    rng = np.random.default_rng(main_seq)
    weekday = day.weekday()
    weekend = weekday >= 5

    # Day-level weather: temperature anomaly and one rain episode.
    doy = day.timetuple().tm_yday
    season = np.cos(2 * np.pi * (doy - p.temp_peak_doy) / 365.25)
    day_temp = p.temp_mean + p.temp_amp * season + rng.normal(0.0, p.temp_day_sd)
    rains_today = bool(rng.random() < p.rain_prob)
    storms = p.afternoon_storms  # short afternoon showers vs. any-time rain
    rain_start = np.clip(rng.normal(15.5, 2), 0, 22) if storms else rng.uniform(0, 22)
    rain_hours = rng.uniform(1, 4 if storms else 10)

    # Volume with weekly seasonality, pickup times with daily seasonality.
    volume = p.trips_per_day * scale * p.weekly_volume[weekday]
    n = max(1, round(volume * rng.lognormal(0.0, 0.05)))
    hours = rng.choice(24, size=n, p=_hour_weights(p, weekend))
    secs = np.sort(hours * 3600 + rng.integers(0, 3600, size=n))
    t_hours = secs / 3600.0

    popularity, median_km, zone_congestion = _zone_table(city, p)
    zone_idx = rng.choice(len(p.zones), size=n, p=popularity)
    distance = rng.lognormal(np.log(median_km[zone_idx]), p.distance_sd)
    distance = np.round(np.maximum(distance, 0.3), 2)
    in_rain_window = (t_hours >= rain_start) & (t_hours < rain_start + rain_hours)
    raining = rains_today & in_rain_window
    diurnal = 3.0 * np.cos(2 * np.pi * (t_hours - 15.0) / 24)  # warmest at 15:00
    temperature = day_temp + diurnal + rng.normal(0, 0.5, n)

    # Target: free-flow time slowed by traffic (hour, weekday, zone), rain, ice, drift.
    speed = p.base_speed_kmh / (1.0 + p.drift_per_day * (day - DEMO_START).days)
    traffic = 1.0 + _congestion(p, t_hours, weekend) * zone_congestion[zone_idx]
    travel = distance / speed * 60.0 * traffic
    travel *= np.where(raining, 1.0 + p.rain_effect, 1.0)
    travel *= np.where(temperature < 0, 1.1, 1.0)  # icy roads
    noise = rng.lognormal(0.0, p.noise_sd, n)
    # Heavy-tailed noise, capped: the platform ends a trip after 4 hours, as real ones do.
    duration = np.round(np.minimum((_FIXED_OVERHEAD_MIN + travel) * noise, 240.0), 2)

    temperature = np.round(temperature, 1)
    temperature[rng.random(n) < _TEMPERATURE_NULL_RATE] = np.nan
    zones = np.asarray(p.zones, dtype=object)[zone_idx]
    zones[rng.random(n) < _ZONE_NULL_RATE] = None
    distance_col = "distance_km"
    if broken:
        bad = np.random.default_rng(corrupt_seq)
        zones[bad.random(n) < _BROKEN_NULL_RATE] = None
        temperature[bad.random(n) < _BROKEN_NULL_RATE] = np.nan
        duration[bad.random(n) < _BROKEN_NEGATIVE_RATE] *= -1.0
        distance_col = "distance"

    stamp = day.isoformat()
    trip_ids = [f"{city}-{stamp}-{i:06d}" for i in range(n)]
    pickup_at = np.datetime64(stamp, "ns") + secs.astype("timedelta64[s]")
    return pd.DataFrame(
        {
            "trip_id": pd.array(trip_ids, dtype="string"),
            "pickup_at": pd.Series(pickup_at, dtype="datetime64[ns]"),
            "pickup_hour": (secs // 3600).astype(np.int64),
            "weekday": np.full(n, weekday, dtype=np.int64),
            "pickup_zone": pd.array(zones, dtype="string"),
            distance_col: distance.astype(np.float64),
            "temperature_c": temperature.astype(np.float64),
            "is_raining": raining.astype(np.int64),
            "duration_min": duration.astype(np.float64),
        }
    )


def write_parquet(frame: pd.DataFrame, path: pathlib.Path) -> None:
    """Write ``frame`` without its index, atomically (temp file + rename)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, compression="snappy")
    os.replace(tmp, path)


def write_demo_data(
    root: str | os.PathLike[str],
    *,
    cities: Sequence[str] = DEMO_CITIES,
    batch: str = "initial",
    seed: int = 7,
    scale: float = 1.0,
) -> list[pathlib.Path]:
    """Write one batch of demo trips, one parquet file per city and day.

    Files go to ``<root>/raw/trips/<city>/date=YYYY-MM-DD/part-<batch>.parquet``.
    Existing files of the same batch are overwritten, so the call is idempotent.

    Args:
        root: Root directory of the data lake.
        cities: Demo cities to write, each one of ``DEMO_CITIES``.
        batch: One of ``BATCHES``; see :func:`batch_days`. The ``"broken"``
            batch is written with ``generate_day(..., broken=True)``.
        seed: Base seed.
        scale: Multiplier of every city's trip volume.

    Returns:
        The files written, ordered by city then day.

    Raises:
        ValueError: For an unknown city or batch (naming it and the valid
            choices), a negative seed or a non-positive scale.
        TypeError: If ``cities`` is a single string instead of a sequence.
    """
    if isinstance(cities, str):
        raise TypeError(f"cities must be a sequence of city names, not the string {cities!r}")
    days = batch_days(batch)
    for city in cities:
        _profile(city)
    _check_params(seed, scale)
    base, broken = pathlib.Path(root) / "raw" / "trips", batch == "broken"
    written: list[pathlib.Path] = []
    for city in dict.fromkeys(cities):
        for day in days:
            frame = generate_day(city, day, seed=seed, scale=scale, broken=broken)
            path = base / city / f"date={day.isoformat()}" / f"part-{batch}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_parquet(frame, path)
            written.append(path)
    return written
