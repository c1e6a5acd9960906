"""Shards (factory/sharding.py): how many shard and report files a fleet needs, and what one past its budget says."""

from __future__ import annotations

import pytest

from airflow_ml.factory.sharding import (
    CITIES_PER_REPORT,
    CITIES_PER_SHARD,
    Shard,
    report_budget_warning,
    report_count,
    shard_budget_warning,
    shard_count,
)


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


@pytest.mark.parametrize(("cities", "files"), [(0, 1), (4_000, 1), (4_001, 2), (10_000, 3), (20_000, 5)])
def test_a_fleet_gets_one_report_file_per_4000_cities_and_at_least_one(cities: int, files: int) -> None:
    assert CITIES_PER_REPORT == 4_000
    assert report_count(cities) == files


def test_a_report_within_its_share_says_nothing_and_one_past_it_names_the_count_and_the_fix() -> None:
    assert report_budget_warning(Shard(), 4_000) is None

    whole = report_budget_warning(Shard(), 10_000)  # the shipped whole-fleet retrain_errors.py
    split = report_budget_warning(Shard(1, 2), 4_100)

    assert whole is not None
    assert "(shard 0 of 1) reads 10000 city files, more than 4000" in whole
    assert "about 10000 cities need 3 report files" in whole
    assert "retrain_errors_<i>.py each calling report_broken_cities(..., shard=Shard(i, count))" in whole
    assert split is not None
    assert "about 8200 cities need 3 report files" in split
