"""Shards (factory/sharding.py): how many shard files a fleet needs, and what a shard past its budget says."""

from __future__ import annotations

import pytest

from airflow_ml.factory.sharding import CITIES_PER_SHARD, Shard, shard_budget_warning, shard_count


@pytest.mark.parametrize(
    ("cities", "files"),
    [(0, 2), (3, 2), (1_000, 2), (1_001, 3), (3_000, 6), (10_000, 20)],  # the table of docs/production/scaling.md
)
def test_a_fleet_gets_one_shard_file_per_500_cities_and_at_least_two(cities: int, files: int) -> None:
    assert shard_count(cities) == files


def test_the_cities_of_a_10000_city_fleet_are_spread_over_its_shard_files_within_their_budget() -> None:
    # The hash spreads real ids evenly: no file of the count shard_count gives holds much more than its share.
    fleet = [f"city_{n:05d}" for n in range(10_000)]
    count = shard_count(len(fleet))

    loads = [sum(Shard(index, count).holds(city) for city in fleet) for index in range(count)]

    assert sum(loads) == len(fleet)
    assert count == 20
    assert max(loads) <= 1.1 * CITIES_PER_SHARD


def test_a_shard_within_its_share_says_nothing() -> None:
    assert shard_budget_warning(Shard(0, 2), 500) is None


def test_a_shard_past_its_share_names_its_load_and_the_count_the_fleet_needs() -> None:
    # Two files of 510 cities: a fleet of 1,020, past the 1,000 the docs give two files.
    warning = shard_budget_warning(Shard(1, 2), 510)

    assert warning is not None
    assert "shard 1 of 2 holds 510 city files, more than 500" in warning
    assert "about 1020 cities need 3 shard files" in warning
    assert "docs/production/scaling.md" in warning
