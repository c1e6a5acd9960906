"""Shards (factory/sharding.py): how many shard files a fleet needs, and what a shard past its budget says."""

from __future__ import annotations

import pytest

from airflow_ml.factory.sharding import CITIES_PER_SHARD, Shard, shard_budget_warning, shard_count


@pytest.mark.parametrize(
    ("cities", "files"),
    [
        (0, 2),
        (3, 2),
        (2 * CITIES_PER_SHARD, 2),
        (2 * CITIES_PER_SHARD + 1, 3),
        (10_000, -(-10_000 // CITIES_PER_SHARD)),
    ],
)
def test_a_fleet_gets_one_shard_file_per_cities_per_shard_and_at_least_two(cities: int, files: int) -> None:
    assert shard_count(cities) == files


def test_the_count_keeps_a_10000_city_fleet_s_shard_files_near_their_budget() -> None:
    # Each file holds about CITIES_PER_SHARD cities: the budget the constant's comment derives from the measured cost.
    assert 10_000 / shard_count(10_000) <= CITIES_PER_SHARD


def test_a_shard_within_twice_its_budget_says_nothing() -> None:
    assert shard_budget_warning(Shard(0, 2), 2 * CITIES_PER_SHARD) is None


def test_a_shard_past_twice_its_budget_names_its_load_and_the_count_the_fleet_needs() -> None:
    cities = 2 * CITIES_PER_SHARD + 1

    warning = shard_budget_warning(Shard(1, 2), cities)

    assert warning is not None
    assert f"shard 1 of 2 holds {cities} city files" in warning
    assert f"need {shard_count(2 * cities)} shard files" in warning
    assert "docs/production/scaling.md" in warning
