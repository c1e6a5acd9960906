"""A snapshot's rows split by time on a real LocalCluster (airflow_ml.ml.dask_split): the local path's rows, in its
stable order, whether the partitions need a shuffle (times out of order) or are sorted each in place."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from airflow_ml.ml.dask_split import (
    DaskSplits,
    in_time_order,
    partition_lengths,
    read_rows,
    split_lengths,
    time_split_on_dask,
)
from airflow_ml.ml.train import time_split
from tests.support.dask_clusters import cluster_client
from tests.support.s3_servers import task_s3_options


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with cluster_client() as client:
        yield client


def _same_as_locally(client: Any, path: Path, frame: pd.DataFrame) -> None:
    local = time_split(frame, "t", 0.25, 0.25)
    splits = time_split_on_dask(client, read_rows(str(path), ["t", "x"], None), "t", 0.25, 0.25)
    for name in ("train", "validation", "holdout"):
        ours = client.compute(getattr(splits, name)).result().reset_index(drop=True)
        pd.testing.assert_frame_equal(ours, getattr(local, name).reset_index(drop=True))
    _lengths_as_counted(client, splits)


def _lengths_as_counted(client: Any, splits: DaskSplits) -> None:
    """Each split's partition lengths known from the cut are those the cluster counts (no round trip to count)."""
    for name in ("train", "validation", "holdout"):
        counted = partition_lengths(client, getattr(splits, name))
        assert split_lengths(client, splits, name) == counted, name
        if name in splits.lengths:
            assert splits.lengths[name] == counted, name
    assert {"validation", "holdout"} <= set(splits.lengths)  # never remade: always known


def test_rows_out_of_time_order_are_shuffled_into_the_local_order_of_equal_times(tmp_path: Path, client: Any) -> None:
    times = pd.to_datetime(["2026-01-01"] * 6 + ["2026-01-02"] * 4 + ["2026-01-03"] * 10)
    frame = pd.DataFrame({"t": times, "x": np.arange(20.0)}).sample(frac=1.0, random_state=3)
    path = tmp_path / "rows.parquet"
    frame.to_parquet(path, index=False, row_group_size=7)  # three partitions, ties across them

    _same_as_locally(client, path, frame)
    with pytest.raises(ValueError, match="too few to split"):
        time_split_on_dask(client, read_rows(str(path), ["t", "x"], None), "t", 0.0, 0.99)


def test_rows_read_with_the_s3_options_of_a_connection_are_read_on_the_workers(
    tmp_path: Path, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The training, gate and health tasks pass the provider's options (an aiobotocore session in them), which
    # travel with each partition's task: Dask could neither tokenize nor unpickle the session. A local file: no network.
    frame = pd.DataFrame({"t": pd.date_range("2026-01-01", periods=8, freq="h"), "x": np.arange(8.0)})
    path = tmp_path / "rows.parquet"
    frame.to_parquet(path, index=False, row_group_size=3)

    rows = read_rows(str(path), ["t", "x"], task_s3_options(monkeypatch))

    pd.testing.assert_frame_equal(client.compute(rows).result().reset_index(drop=True), frame)


def test_partitions_in_time_order_are_sorted_each_in_place_into_the_local_order(tmp_path: Path, client: Any) -> None:
    """Three partitions of seven rows, each out of order inside; the times where two of them touch are shared."""
    import dask

    from airflow_ml.ml.dask_split import partition_time_range

    days = [["2026-01-01"] * 3 + ["2026-01-02"] * 4, ["2026-01-02"] * 2 + ["2026-01-03"] * 5, ["2026-01-03"] * 6]
    parts = [
        pd.DataFrame({"t": pd.to_datetime(d), "x": np.arange(len(d)) + 10.0 * i}).sample(frac=1.0, random_state=i)
        for i, d in enumerate(days)
    ]
    frame = pd.concat(parts, ignore_index=True)
    path = tmp_path / "days.parquet"
    frame.to_parquet(path, index=False, row_group_size=7)
    rows = read_rows(str(path), ["t", "x"], None)
    ranges = client.compute([dask.delayed(partition_time_range)(p, "t") for p in rows.to_delayed()], sync=True)
    assert [r[0] for r in ranges] == [7, 7, 6]
    assert in_time_order(ranges)

    _same_as_locally(client, path, frame)


def test_a_missing_time_or_overlapping_partitions_need_the_shuffle() -> None:
    day = pd.Timestamp("2026-01-02")
    assert not in_time_order([(5, day, day, 0), (5, day - pd.Timedelta(hours=1), day, 0)])
    assert not in_time_order([(5, day, day, 1), (5, day, day, 0)])  # a missing time sorts last, wherever it is
    assert in_time_order([(5, day, day, 0), (0, np.nan, np.nan, 0), (5, day, day, 0)])  # an empty partition


def test_an_empty_partition_inside_a_split_is_left_out(client: Any) -> None:
    """An empty row group (or an empty partition out of a shuffle) inside the training rows: no split keeps an
    empty partition (a LightGBM worker given only empty parts fails), and the rows are the local ones."""
    import dask.dataframe as dd

    full = pd.DataFrame({"t": pd.date_range("2026-01-01", periods=20, freq="h"), "x": np.arange(20.0)})
    pieces = [full.iloc[:6], full.iloc[:0], full.iloc[6:].reset_index(drop=True)]
    rows = dd.from_map(lambda i: pieces[i], range(3), meta=pieces[1])

    splits = time_split_on_dask(client, rows, "t", 0.25, 0.25)

    local = time_split(full, "t", 0.25, 0.25)
    for name in ("train", "validation", "holdout"):
        lengths = client.compute(getattr(splits, name).map_partitions(len)).result().tolist()
        assert all(lengths), (name, lengths)
        ours = client.compute(getattr(splits, name)).result().reset_index(drop=True)
        pd.testing.assert_frame_equal(ours, getattr(local, name).reset_index(drop=True))
    _lengths_as_counted(client, splits)


def test_the_training_rows_dealt_to_the_workers_keep_their_known_lengths_unless_remade(client: Any) -> None:
    """Enough partitions to deal as they are: the cut's lengths stand; too few (one file): remade, counted."""
    import dask.dataframe as dd

    full = pd.DataFrame({"t": pd.date_range("2026-01-01", periods=40, freq="h"), "x": np.arange(40.0)})
    many = dd.from_map(lambda i: full.iloc[i * 5 : (i + 1) * 5].reset_index(drop=True), range(8), meta=full.iloc[:0])
    one = dd.from_map(lambda i: full, range(1), meta=full.iloc[:0])

    dealt, remade = (time_split_on_dask(client, rows, "t", 0.1, 0.1) for rows in (many, one))

    assert "train" in dealt.lengths
    assert "train" not in remade.lengths
    for splits in (dealt, remade):
        _lengths_as_counted(client, splits)
