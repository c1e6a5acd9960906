"""The holdout on a Dask cluster (airflow_ml.ml.dask_holdout), against the local path on a real LocalCluster: a
partitioned snapshot splits into its one-file twin's rows, the health check's sample is pandas' own, the level
shares are the gate's, the holdout's rows are checked against logged rows where they lie, and a model loaded from
the registry predicts on worker processes as in this one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from airflow_ml.data.snapshot import read_snapshot
from airflow_ml.ml.dask_holdout import (
    ClusterHoldout,
    ClusterRows,
    columns_read,
    gather,
    level_shares_on_dask,
    predict_on_dask,
    sample_on_dask,
    split_on_dask,
)
from airflow_ml.ml.steps.gate_step import level_shares
from airflow_ml.ml.steps.step_settings import SplitSettings
from airflow_ml.ml.train import Splits, time_split
from tests.support.dask_clusters import cluster_client
from tests.support.training_data import late_trips, snapshot

pytestmark = pytest.mark.slow  # a Dask cluster of worker processes per test: make test-slow

SPLIT = SplitSettings("pickup_at", 0.15, 0.15)


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    """One day's trips a part: a one-file snapshot and a partitioned one of the same raw files."""
    import dask

    from airflow_ml.data.dask_snapshot import take_partitioned_snapshot

    root = tmp_path_factory.mktemp("twins")
    one = snapshot(late_trips(days=6, scale=0.3), root, "one")
    with dask.config.set(scheduler="synchronous"):
        parts = take_partitioned_snapshot(
            str(root / "raw"), str(root / "snapshots"), template="ride_duration", city="lisbon", run_id="parts"
        )
    assert len(parts.parts) == 6
    return one, parts


@pytest.fixture(scope="module")
def local(twins: tuple[Any, Any]) -> Splits:
    return time_split(read_snapshot(twins[0].uri), "pickup_at", 0.15, 0.15)


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with cluster_client() as client:
        yield client


def test_a_partitioned_snapshot_splits_on_the_cluster_into_its_one_file_twins_rows(
    twins: tuple[Any, Any], local: Splits, client: Any
) -> None:
    splits = split_on_dask(client, twins[1], SPLIT)

    assert splits.sizes == local.sizes()
    for name in ("train", "holdout"):
        rows = gather(client, getattr(splits, name), list(local.holdout.columns))
        pd.testing.assert_frame_equal(rows, getattr(local, name).reset_index(drop=True))


def test_the_sample_gathered_is_the_rows_pandas_samples_and_no_more(twins: tuple[Any, Any], client: Any) -> None:
    wide = SplitSettings("pickup_at", 0.15, 0.45)  # a holdout over several partitions
    holdout = split_on_dask(client, twins[1], wide).holdout
    assert holdout.npartitions > 1
    local = time_split(read_snapshot(twins[0].uri), "pickup_at", 0.15, 0.45).holdout

    sample = sample_on_dask(client, holdout, 100, seed=7)

    pd.testing.assert_frame_equal(sample, local.sample(n=100, random_state=7).reset_index(drop=True))
    known = split_on_dask(client, twins[1], wide).lengths["holdout"]  # the cut's lengths: the same rows, uncounted
    pd.testing.assert_frame_equal(sample_on_dask(client, holdout, 100, seed=7, lengths=known), sample)
    every = sample_on_dask(client, holdout, 10**6, seed=0)  # more than the holdout: all of it
    pd.testing.assert_frame_equal(every, local.sample(n=len(local), random_state=0).reset_index(drop=True))


def test_the_holdout_on_the_cluster_is_checked_against_logged_rows_as_a_local_holdout_is(
    twins: tuple[Any, Any], local: Splits, client: Any
) -> None:
    from airflow_ml.ml.logged_holdout import FrameRows

    wide = SplitSettings("pickup_at", 0.15, 0.45)  # a holdout over several partitions
    rows = ClusterRows(client, split_on_dask(client, twins[1], wide).holdout)
    assert rows.rows.npartitions > 1
    here = FrameRows(time_split(read_snapshot(twins[0].uri), "pickup_at", 0.15, 0.45).holdout.reset_index(drop=True))
    key = ["pickup_at", "pickup_zone", "distance_km", "duration_min"]
    logged = here.frame[key].copy()
    logged["distance_km"] = logged["distance_km"].astype("float32").astype("float64")  # not the holdout's values
    tampered = here.frame[key].copy()
    tampered.loc[len(tampered) - 2, "pickup_zone"] = "elsewhere"  # in the last partition

    assert len(rows) == len(here) > 0
    assert rows.differing_row(here.frame[key]) is here.differing_row(here.frame[key]) is None
    assert rows.differing_row(tampered) == here.differing_row(tampered) == len(tampered) - 2
    assert rows.differing_row(logged) == here.differing_row(logged) is not None
    positions = np.array([0, 3, len(here) // 2, len(here) - 1])
    pd.testing.assert_frame_equal(rows.take(positions)[key], here.take(positions)[key].reset_index(drop=True))


def test_a_category_column_on_the_cluster_is_compared_by_its_values(twins: tuple[Any, Any], client: Any) -> None:
    # Dask's meta of a category column knows no categories (each partition has its own): read back in that dtype,
    # every logged value would be missing, and every row would differ.
    from airflow_ml.ml.logged_holdout import FrameRows

    holdout = split_on_dask(client, twins[1], SPLIT).holdout
    rows = ClusterRows(client, holdout.astype({"pickup_zone": "category"}))
    assert isinstance(rows.rows._meta["pickup_zone"].dtype, pd.CategoricalDtype)
    here = FrameRows(time_split(read_snapshot(twins[0].uri), "pickup_at", 0.15, 0.15).holdout.reset_index(drop=True))
    key = ["pickup_at", "pickup_zone", "duration_min"]
    logged = here.frame[key].astype({"pickup_zone": "category"})  # as a parquet round trip of the holdout gives it
    tampered = here.frame[key].copy()
    tampered.loc[3, "pickup_zone"] = "elsewhere"

    assert rows.differing_row(logged) is None
    assert rows.differing_row(here.frame[key]) is None  # the same values as plain text
    assert rows.differing_row(tampered) == 3


def test_the_gates_columns_come_from_the_cluster_as_the_local_split_gives_them(
    twins: tuple[Any, Any], local: Splits, client: Any
) -> None:
    """The holdout's labels and slice columns and the training target, gathered in one round trip; a slice column
    not named up front is gathered on its own."""
    rows = ClusterHoldout(client, split_on_dask(client, twins[1], SPLIT), "duration_min", ["pickup_zone"])

    np.testing.assert_array_equal(rows.labels(), local.holdout["duration_min"].to_numpy())
    np.testing.assert_array_equal(rows.training_target(), local.train["duration_min"].to_numpy())
    for names in (["pickup_zone"], ["pickup_zone", "pickup_hour"], []):
        found = rows.slices(names)
        assert list(found) == names
        for name in names:
            pd.testing.assert_series_equal(found[name], local.holdout[name].reset_index(drop=True))


def test_level_shares_counted_per_partition_are_the_gates(twins: tuple[Any, Any], local: Splits, client: Any) -> None:
    train = split_on_dask(client, twins[1], SPLIT).train
    zones = sorted(local.train["pickup_zone"].dropna().unique())[:2]
    levels = {"pickup_zone": zones, "weekday": ["5", "6"], "not_a_column": ["x"]}

    shares = level_shares_on_dask(client, train, levels)

    assert shares == pytest.approx(level_shares(local.train, levels), rel=1e-12)
    assert set(shares) == {"pickup_zone", "weekday"}
    assert 0 < shares["pickup_zone"] < 1


def test_a_registry_model_predicts_on_worker_processes_as_in_this_process(
    twins: tuple[Any, Any], local: Splits, tmp_path: Path
) -> None:
    """Worker processes cannot import the module MLflow made from the model's code: it travels by value."""
    from distributed import Client
    from mlflow import MlflowClient

    from airflow_ml.ml import model_registry as registry
    from airflow_ml.ml.steps.train_step import train_and_log
    from tests.support.dask_clusters import process_cluster
    from tests.support.training_data import regression

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    store = MlflowClient(tracking_uri=uri, registry_uri=uri)
    result = train_and_log(
        store, twins[0], regression(num_boost_round=10), SPLIT, experiment="e", artifact_root=f"file://{tmp_path}/a"
    )
    version = registry.register_challenger(store, "e", result["model_uri"], result["run_id"], {})
    model = registry.load_version(store, version)
    expected = np.asarray(model.predict(local.holdout[model.metadata.get_input_schema().input_names()]))

    with process_cluster() as cluster, Client(cluster) as client:
        found = predict_on_dask(client, split_on_dask(client, twins[1], SPLIT).holdout, model)
        pids = set(client.run(lambda: __import__("os").getpid()).values())

    assert __import__("os").getpid() not in pids
    np.testing.assert_array_equal(found, expected)
    # What the gate splits for this model: its inputs and the columns it judges, of those the snapshot has.
    read = columns_read([model, None], ["pickup_at", "duration_min", "nowhere"], twins[1].columns)
    assert read == ["pickup_at", "duration_min", *model.metadata.get_input_schema().input_names()]
