"""Which neighbouring partitions one check validates (airflow_ml.validation.partition_groups)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from airflow_ml.validation import partition_groups
from airflow_ml.validation.partition_groups import check_group, group_partitions, plan_groups
from tests.support.partition_clusters import local_cluster


def rows_of(groups: list[range], part_rows: list[int]) -> list[int]:
    return [sum(part_rows[i] for i in run) for run in groups]


def covers_in_order(groups: list[range], count: int) -> bool:
    return [i for run in groups for i in run] == list(range(count)) and all(len(run) for run in groups)


def test_sixty_days_make_as_many_checks_as_workers_or_as_the_rows_need_in_a_multiple_of_them() -> None:
    small, large = [16_666] * 60, [83_333] * 60

    assert group_partitions(small, max_rows=1_000_000, min_groups=2) == [range(0, 30), range(30, 60)]
    # 5M rows at 1M a check: five checks, rounded up to six so that neither of two workers waits for the other.
    assert group_partitions(large, max_rows=1_000_000, min_groups=2) == [range(i, i + 10) for i in range(0, 60, 10)]
    assert group_partitions(small, max_rows=1_000_000) == [range(0, 60)]


@pytest.mark.parametrize("max_rows", [None, 0])
def test_no_bound_checks_each_partition_alone(max_rows: int | None) -> None:
    assert group_partitions([5, 7, 9], max_rows=max_rows, min_groups=2) == [range(0, 1), range(1, 2), range(2, 3)]


@pytest.mark.parametrize("seed", range(20))
def test_checks_cover_every_partition_in_order_within_the_bound_and_never_split_one(seed: int) -> None:
    rng = np.random.default_rng(seed)
    part_rows = rng.integers(0, 1_000, rng.integers(1, 80)).tolist()
    max_rows, workers = int(rng.integers(1, 5_000)), int(rng.integers(1, 5))

    groups = group_partitions(part_rows, max_rows=max_rows, min_groups=workers)

    assert covers_in_order(groups, len(part_rows))
    assert all(rows <= max_rows or len(run) == 1 for run, rows in zip(groups, rows_of(groups, part_rows), strict=True))
    assert len(groups) >= min(workers, len(part_rows))


def test_a_partition_larger_than_the_bound_is_a_check_alone_and_there_are_as_many_checks_as_workers() -> None:
    assert group_partitions([10, 10, 80], max_rows=1_000, min_groups=3) == [range(0, 1), range(1, 2), range(2, 3)]
    groups = group_partitions([300, 20, 20, 20, 300], max_rows=100)
    assert covers_in_order(groups, 5)
    assert [range(0, 1), range(4, 5)] == [groups[0], groups[-1]]
    assert all(r <= 100 for r in rows_of(groups[1:-1], [300, 20, 20, 20, 300]))


def frame_of(parts: int, rows: int) -> Any:
    import dask.dataframe as dd

    values = np.random.default_rng(0).normal(size=parts * rows)
    return dd.from_pandas(pd.DataFrame({"a": values, "b": ["x"] * len(values)}), npartitions=parts)


def compute(tasks: list[Any], client: Any) -> list[Any]:
    return list(client.gather(client.compute(tasks))) if client is not None else [t.compute() for t in tasks]


def test_without_a_cluster_only_the_rows_bound_a_check() -> None:
    frame = frame_of(8, 100)
    plan = {
        size: plan_groups(frame, [100] * 8, rows_per_check=size, client=None, compute=compute)
        for size in (None, 300, 10_000)
    }

    assert plan == {None: [range(i, i + 1) for i in range(8)], 300: [range(0, 3), range(3, 5), range(5, 8)],
                    10_000: [range(0, 8)]}  # fmt: skip


def test_on_a_cluster_every_worker_gets_a_check_and_a_worker_s_room_bounds_it(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = frame_of(8, 100)
    with local_cluster(workers=2, memory_limit="1GiB") as client:
        rooms = client.run(partition_groups.worker_room)
        roomy = plan_groups(frame, [100] * 8, rows_per_check=10_000, client=client, compute=compute)
        monkeypatch.setattr(partition_groups, "ROOM_SHARE", 1e-12)  # a room of less than one row: a row a check
        tight = plan_groups(frame, [100] * 8, rows_per_check=10_000, client=client, compute=compute)

    assert all(threads == 1 and 0 < room < 1024**3 for threads, room in rooms.values())
    assert roomy == [range(0, 4), range(4, 8)]
    assert tight == [range(i, i + 1) for i in range(8)]


def test_a_check_of_two_partitions_finds_what_each_alone_finds_and_draws_the_same_sample() -> None:
    rng = np.random.default_rng(2)
    parts = [
        pd.DataFrame({"a": rng.normal(size=50), "b": rng.integers(0, 9, 50), "wide": ["w" * 40] * 50}) for _ in range(2)
    ]
    parts[1].loc[[3, 7], "b"] = 99
    suite = {"name": "s", "expectations": [
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "b", "min_value": 0, "max_value": 9}},
        {"type": "expect_table_columns_to_match_set", "kwargs": {"column_set": ["a", "b", "wide"]}},
    ]}  # fmt: skip

    def check(numbers: list[int], counts: list[int]) -> dict[str, Any]:
        return check_group([parts[n] for n in numbers], numbers, suite, {0: ("a", "max")}, counts, ["a"], 4)

    together, alone = check([0, 1], [5, 6]), [check([0], [5]), check([1], [6])]

    assert together["rows"] == 100
    assert together["items"][0]["result"]["unexpected_count"] == 2
    assert together["items"][0]["result"]["partial_unexpected_list"] == [99, 99]
    assert together["items"][1]["success"]  # the table's columns: every one, though only a and b were concatenated
    assert together["partials"][0].tolist() == [max(a["partials"][0].iloc[0] for a in alone)]
    pd.testing.assert_frame_equal(together["sample"], pd.concat([a["sample"] for a in alone], ignore_index=True))


def test_a_skewed_frame_joins_its_small_partitions_into_one_check_beside_its_huge_one() -> None:
    # 59 days of 16k rows and one of 5M: the small ones fit in one check; each alone would pay GX's fixed cost.
    part_rows = [16_000] * 59 + [5_000_000]

    assert group_partitions(part_rows, max_rows=1_000_000, min_groups=2) == [range(0, 59), range(59, 60)]
    # Still as many checks as workers when the partitions allow it.
    assert len(group_partitions([10] * 6, max_rows=1_000, min_groups=3)) == 3


def test_a_check_of_empty_partitions_reports_no_extreme_instead_of_failing() -> None:
    # An integer column has no NaN: the min of no value is left out, not cast (the merge takes the others').
    empty = pd.DataFrame({"b": pd.Series([], dtype="int64")})
    suite: dict[str, Any] = {"name": "s", "expectations": []}

    found = check_group([empty, empty], [0, 1], suite, {0: ("b", "min"), 1: ("b", "sum")}, [0, 0], [], 0)

    assert found["rows"] == 0
    assert found["partials"][0].empty
    assert found["partials"][0].dtype == "int64"
    assert found["partials"][1].tolist() == [0]
