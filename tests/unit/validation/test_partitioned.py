"""Validation per partition on a real distributed.LocalCluster, merged, against GX on the whole frame
(airflow_ml.validation.partitioned)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from airflow_ml.validation.partitioned import (
    DISTINCT,
    EXTREME,
    MERGE_CLASSES,
    ROW_COUNT,
    ROWS,
    SAMPLE,
    PartitionedSuiteRefused,
    merge_classes,
    validate_partitions,
)
from airflow_ml.validation.report import render_report
from airflow_ml.validation.runner import run_suite
from tests.support.partition_clusters import local_cluster

PARTS = 4
ROWS_PER_PART = 2_500


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with local_cluster(memory_limit="1GiB") as client:
        yield client


def trips(seed: int = 7) -> pd.DataFrame:
    """Rows whose faults sit unevenly across the partitions: partition 1 holds every null duration (30% of it)."""
    rng = np.random.default_rng(seed)
    rows = PARTS * ROWS_PER_PART
    frame = pd.DataFrame(
        {
            "duration_min": rng.gamma(4.0, 5.0, rows),
            "distance_km": rng.uniform(0, 40, rows),
            "zone": rng.choice(["a1", "b2", "c3", "zz"], rows, p=[0.4, 0.3, 0.29, 0.01]),
            "hour": rng.integers(0, 24, rows),
        }
    )
    second = slice(ROWS_PER_PART, ROWS_PER_PART + int(ROWS_PER_PART * 0.3))
    frame.loc[frame.index[second], "duration_min"] = np.nan
    frame.loc[frame.index[[5, 6_000, 9_999]], "distance_km"] = [-1.0, 500.0, 41.0]
    return frame


def suite_of(*expectations: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {"name": "trips", "expectations": [{"type": t, "kwargs": k} for t, k in expectations]}


#: Every merge class; with trips(), the whole frame passes each but distance's range and the zone set.
SUITE = suite_of(
    ("expect_table_row_count_to_be_between", {"min_value": 8_000}),  # each partition alone has 2,500 rows
    ("expect_column_to_exist", {"column": "zone"}),
    ("expect_table_columns_to_match_set", {"column_set": ["duration_min", "distance_km", "zone", "hour"]}),
    ("expect_column_values_to_not_be_null", {"column": "duration_min", "mostly": 0.9}),  # partition 1: 70% only
    ("expect_column_values_to_be_between", {"column": "distance_km", "min_value": 0, "max_value": 40}),
    ("expect_column_values_to_be_in_set", {"column": "zone", "value_set": ["a1", "b2", "c3"]}),
    ("expect_column_values_to_match_regex", {"column": "zone", "regex": "^[a-z][0-9]$"}),
    ("expect_column_values_to_be_between", {"column": "duration_min", "min_value": 0, "max_value": 200}),
    ("expect_column_max_to_be_between", {"column": "distance_km", "min_value": 0, "max_value": 1_000}),
    ("expect_column_min_to_be_between", {"column": "hour", "min_value": 0, "max_value": 0}),
    ("expect_column_sum_to_be_between", {"column": "hour", "min_value": 1, "max_value": 10_000_000}),
    ("expect_column_mean_to_be_between", {"column": "duration_min", "min_value": 5, "max_value": 40}),
    ("expect_column_unique_value_count_to_be_between", {"column": "zone", "min_value": 1, "max_value": 10}),
    (
        "expect_column_quantile_values_to_be_between",
        {
            "column": "hour",
            "quantile_ranges": {"quantiles": [0.5], "value_ranges": [[5, 18]]},
        },
    ),
)


def dask_frame(frame: pd.DataFrame) -> Any:
    import dask.dataframe as dd

    return dd.from_pandas(frame, npartitions=PARTS, sort=False)


def comparable(item: dict[str, Any]) -> tuple[Any, ...]:
    result = dict(item.get("result") or {})
    return item["success"], result


def test_merged_validation_equals_whole_frame_validation(client: Any) -> None:
    frame = trips()
    whole_verdict, whole = run_suite(frame, SUITE, suite_file="trips.json")

    verdict, merged = validate_partitions(
        dask_frame(frame), SUITE, suite_file="trips.json", sample_rows=len(frame), client=client
    )

    assert verdict.status == whole_verdict.status == "failed"
    assert (verdict.failed_errors, verdict.failed_warnings) == (whole_verdict.failed_errors, 0)
    assert verdict.row_count == len(frame)
    assert [f.expectation for f in verdict.failures] == [f.expectation for f in whole_verdict.failures]
    assert [f.unexpected_count for f in verdict.failures] == [f.unexpected_count for f in whole_verdict.failures]
    for mine, theirs in zip(merged["results"], whole["results"], strict=True):
        assert comparable(mine) == comparable(theirs), mine["expectation_config"]["type"]
    sampled = [i["expectation_config"]["type"] for i in merged["results"] if "airflow_ml_sampled" in i]
    assert sampled == [e["type"] for e in SUITE["expectations"] if MERGE_CLASSES[e["type"]] == SAMPLE]
    assert sum(note.startswith("sampled: ") for note in verdict.notes) == len(sampled)


def test_counts_are_summed_not_judged_per_partition(client: Any) -> None:
    """Partition 1 alone fails ``mostly: 0.9`` and each partition alone fails the row count: the whole passes."""
    frame = trips()
    suite = suite_of(*[(e["type"], e["kwargs"]) for e in SUITE["expectations"][:4]])
    part = frame.iloc[ROWS_PER_PART : 2 * ROWS_PER_PART]
    assert not run_suite(part, suite, suite_file="t")[0].ok

    verdict, merged = validate_partitions(dask_frame(frame), suite, suite_file="t", client=client)

    assert verdict.status == "passed", verdict.summary()
    nulls = merged["results"][3]["result"]
    assert (nulls["unexpected_count"], nulls["element_count"]) == (int(ROWS_PER_PART * 0.3), len(frame))
    assert merged["results"][0]["result"]["observed_value"] == len(frame)


def test_sampled_checks_run_on_a_seeded_sample_and_say_so(client: Any) -> None:
    frame = trips()
    sampled = suite_of(("expect_column_mean_to_be_between", {"column": "distance_km", "min_value": 0, "max_value": 1}))

    runs = [
        validate_partitions(dask_frame(frame), sampled, suite_file="t", sample_rows=500, seed=3, client=client)
        for _ in range(2)
    ]

    (verdict, result), (_, again) = runs
    mark = result["results"][0]["airflow_ml_sampled"]
    assert mark == {"rows": 500, "of": len(frame), "seed": 3}
    observed = result["results"][0]["result"]["observed_value"]
    assert observed == again["results"][0]["result"]["observed_value"]  # same seed, same sample
    assert observed != pytest.approx(frame["distance_km"].mean(), abs=1e-9)  # a sample, not the whole
    assert verdict.status == "failed"
    assert "seeded sample of 500 of 10,000 rows (seed 3)" in verdict.notes[0]
    page = render_report(verdict.to_dict(), result, title="t")
    assert "seeded sample of 500 of 10,000 rows" in page


def test_a_broken_column_fails_the_merged_check_with_its_error(client: Any) -> None:
    frame = trips()
    suite = suite_of(("expect_column_values_to_not_be_null", {"column": "no_such_column"}))

    verdict, _ = validate_partitions(dask_frame(frame), suite, suite_file="t", client=client)
    whole, _ = run_suite(frame, suite, suite_file="t")

    assert verdict.status == whole.status == "failed"
    assert verdict.failures[0].error == whole.failures[0].error
    assert "no_such_column" in (verdict.failures[0].error or "")


def test_every_gx_core_type_has_a_merge_class_or_a_reason_to_be_refused() -> None:
    from great_expectations.expectations.registry import list_registered_expectation_implementations

    from airflow_ml.validation.partitioned import REFUSED

    unknown = set(list_registered_expectation_implementations()) - set(MERGE_CLASSES) - set(REFUSED)

    assert not unknown


def test_merge_classes_refuse_unknown_and_sql_types_naming_where() -> None:
    suite = suite_of(
        ("expect_column_values_to_not_be_null", {"column": "a"}),
        ("expect_query_results_to_match_comparison", {}),
        ("expect_column_values_to_be_shiny", {"column": "a"}),
    )
    suite["expectations"][2]["meta"] = {"source": "trips.json:12"}

    with pytest.raises(PartitionedSuiteRefused) as caught:
        merge_classes(suite)

    message = str(caught.value)
    assert "expectation 2 of suite 'trips': expect_query_results_to_match_comparison: it runs SQL queries" in message
    assert "trips.json:12: expect_column_values_to_be_shiny" in message
    assert "training.engine: local" in message


def test_a_row_condition_turns_an_exact_extreme_into_a_sampled_one() -> None:
    plain = ("expect_column_max_to_be_between", {"column": "a", "max_value": 3})
    conditioned = ("expect_column_max_to_be_between", {"column": "a", "max_value": 3, "row_condition": 'b=="x"',
                                                       "condition_parser": "pandas"})  # fmt: skip
    rows = ("expect_column_values_to_not_be_null", {"column": "a"})
    count = ("expect_table_row_count_to_equal", {"value": 3})

    assert merge_classes(suite_of(plain, conditioned, rows, count)) == [EXTREME, SAMPLE, ROWS, ROW_COUNT]


def test_distinct_value_checks_are_exact_not_sampled(client: Any) -> None:
    """``zz`` is 1% of the rows and one ``rare`` row sits in the last partition: a 50-row sample misses them."""
    frame = trips()
    frame.loc[frame.index[-1], "zone"] = "rare"
    zones = ["a1", "b2", "c3", "zz"]
    suite = suite_of(
        ("expect_column_distinct_values_to_be_in_set", {"column": "zone", "value_set": zones}),
        ("expect_column_distinct_values_to_contain_set", {"column": "zone", "value_set": ["zz", "rare"]}),
        ("expect_column_distinct_values_to_equal_set", {"column": "zone", "value_set": [*zones, "rare"]}),
        ("expect_column_unique_value_count_to_be_between", {"column": "hour", "min_value": 24, "max_value": 24}),
        ("expect_column_unique_value_count_to_be_between", {"column": "zone", "min_value": 5, "max_value": 5}),
    )
    _, whole = run_suite(frame, suite, suite_file="t")

    verdict, merged = validate_partitions(dask_frame(frame), suite, suite_file="t", sample_rows=50, client=client)

    assert merge_classes(suite) == [DISTINCT] * 5
    assert [i["success"] for i in merged["results"]] == [i["success"] for i in whole["results"]] == [
        False, True, True, True, True,
    ]  # fmt: skip
    for mine, theirs in zip(merged["results"], whole["results"], strict=True):
        assert mine["result"]["observed_value"] == theirs["result"]["observed_value"]
        assert "airflow_ml_sampled" not in mine
    assert not any(note.startswith("sampled: ") for note in verdict.notes)


@pytest.mark.parametrize(
    ("kind", "kwargs"),
    [
        ("expect_column_values_to_be_unique", {"column": "id"}),
        ("expect_compound_columns_to_be_unique", {"column_list": ["id", "zone"]}),
        ("expect_column_proportion_of_unique_values_to_be_between", {"column": "id", "min_value": 1.0}),
    ],
)
def test_uniqueness_checks_are_refused_not_judged_on_a_sample(kind: str, kwargs: dict[str, Any]) -> None:
    """A duplicate key pair (rows 3 and 9,000, in two partitions) fails GX on the whole frame; never sampled."""
    frame = trips().assign(id=range(PARTS * ROWS_PER_PART))
    frame.loc[frame.index[9_000], ["id", "zone"]] = [3, frame.loc[frame.index[3], "zone"]]
    suite = suite_of((kind, kwargs))
    assert not run_suite(frame, suite, suite_file="t")[0].ok

    with pytest.raises(PartitionedSuiteRefused, match=rf"{kind}: uniqueness is not judged .* training.engine: local"):
        validate_partitions(dask_frame(frame), suite, suite_file="t", sample_rows=50)


def test_a_distinct_check_with_a_row_condition_is_refused() -> None:
    kwargs = {"column": "zone", "value_set": ["a1"], "row_condition": "hour>3", "condition_parser": "pandas"}
    with pytest.raises(PartitionedSuiteRefused, match=r"with a row_condition: .* drop the condition"):
        merge_classes(suite_of(("expect_column_distinct_values_to_be_in_set", kwargs)))


def test_neighbouring_partitions_checked_together_give_the_one_per_partition_and_whole_frame_results(
    client: Any,
) -> None:
    """Two checks of two partitions each against four checks and GX on the whole frame: the same verdict and
    figures, the first unexpected hours those of partitions 2 then 3 (seven, more than the five kept), the same
    seeded sample."""
    frame = trips()
    hours = [5_100, 5_200, 5_300, 7_600, 7_700, 7_800, 7_900]  # partition 2 (rows 5,000-7,499), then 3
    frame.loc[frame.index[hours], "hour"] = [30, 31, 32, 33, 34, 35, 36]
    suite = suite_of(
        *[(e["type"], e["kwargs"]) for e in SUITE["expectations"]],
        ("expect_column_values_to_be_between", {"column": "hour", "min_value": 0, "max_value": 23}),
        ("expect_column_stdev_to_be_between", {"column": "distance_km", "min_value": 0, "max_value": 5}),
    )
    _, whole = run_suite(frame, suite, suite_file="t")

    def run(rows_per_check: int, sample_rows: int = len(frame)) -> tuple[Any, dict[str, Any]]:
        return validate_partitions(
            dask_frame(frame), suite, suite_file="t", rows_per_check=rows_per_check, client=client,
            sample_rows=sample_rows, seed=5,
        )  # fmt: skip

    runs = {size: run(size) for size in (0, 5_000, 1_000_000)}
    sampled = {size: run(size, sample_rows=700) for size in (0, 5_000)}

    (each, per_part), (grouped, merged) = runs[0], runs[1_000_000]
    assert [r["meta"] for _, r in runs.values()] == [
        {"airflow_ml_partitions": PARTS, "airflow_ml_checks": checks} for checks in (PARTS, 2, 2)
    ]
    assert (grouped.status, grouped.failed_errors, grouped.row_count) == (each.status, each.failed_errors, len(frame))
    assert [(f.expectation, f.unexpected_count, f.sample) for f in grouped.failures] == [
        (f.expectation, f.unexpected_count, f.sample) for f in each.failures
    ]
    for mine, one, theirs in zip(merged["results"], per_part["results"], whole["results"], strict=True):
        assert comparable(mine) == comparable(one) == comparable(theirs), mine["expectation_config"]["type"]
    assert merged["results"][-2]["result"]["partial_unexpected_list"] == [30, 31, 32, 33, 34]
    # The same seed draws the same sample rows whether partitions are checked alone or together.
    stdev = [r["results"][-1]["result"]["observed_value"] for _, r in sampled.values()]
    assert stdev[0] == stdev[1] != pytest.approx(frame["distance_km"].std(), abs=1e-9)
    assert "validated on Dask in 2 check(s) of 4 partition(s)" in grouped.notes[-1]
    assert "validated on Dask in 4 check(s) of 4 partition(s)" in each.notes[-1]


def test_one_partition_is_one_check_and_is_not_counted_first(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # A one-file snapshot is one partition: there is nothing to group, so its rows need no counting pass.
    import dask.dataframe as dd

    from airflow_ml.validation import partitioned

    frame = trips()
    computed: list[int] = []
    real = partitioned._compute

    def counted(tasks: list[Any], on: Any) -> list[Any]:
        computed.append(len(tasks))
        return real(tasks, on)

    monkeypatch.setattr(partitioned, "_compute", counted)
    suite = suite_of(("expect_column_values_to_not_be_null", {"column": "zone"}))

    verdict, merged = validate_partitions(dd.from_pandas(frame, npartitions=1), suite, suite_file="t", client=client)

    assert computed == [1]  # the check alone
    assert verdict.notes[-1].startswith("validated on Dask in 1 check(s) of 1 partition(s)")
    assert merged["results"][0]["result"]["element_count"] == len(frame)


def _engine_imported() -> bool:
    import sys

    return "great_expectations" in sys.modules


def test_warmed_workers_import_gx_before_any_check() -> None:
    import time

    from airflow_ml.validation.partitioned import warm_workers

    with local_cluster(memory_limit="1GiB") as fresh:
        assert not any(fresh.run(_engine_imported).values())

        warm_workers(fresh)  # returns at once; the workers import on their own

        deadline = time.monotonic() + 120
        while not all(fresh.run(_engine_imported).values()) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert all(fresh.run(_engine_imported).values())
