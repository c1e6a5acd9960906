"""Early stopping on the workers (airflow_ml.ml.dask_early_stopping), on a real two-worker LocalCluster.

Each worker judges a copy of every validation row: the curve LightGBM evaluated on the workers must be the one the
cluster computes afterwards for the whole validation split (to LightGBM's float32-rounded scores, 1e-6), and
training must stop ``early_stopping_rounds`` after the best round.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from airflow_ml.ml.dask_curve import early_stopping_point, validation_curve
from airflow_ml.ml.dask_early_stopping import stops_on_workers, worker_metric
from airflow_ml.ml.dask_split import read_rows, snapshot_files, time_split_on_dask
from airflow_ml.ml.dask_train import train_snapshot_on_dask
from airflow_ml.ml.steps.step_settings import SplitSettings
from tests.support.dask_clusters import LOCAL_CLUSTER, cluster_client
from tests.support.training_data import late_trips, regression, snapshot

SPLIT = SplitSettings("pickup_at", 0.15, 0.15)


@pytest.fixture(scope="module")
def trips_snapshot(tmp_path_factory: pytest.TempPathFactory) -> object:
    return snapshot(late_trips(days=8, scale=0.5), tmp_path_factory.mktemp("dask"), "run-1")


def test_the_workers_stop_early_up_to_the_rows_each_may_hold() -> None:
    assert stops_on_workers(1_000, 1_000) is None
    assert "1001 validation rows exceed training.dask.early_stopping_rows (1000)" in (
        stops_on_workers(1_001, 1_000) or ""
    )
    assert "exceed" in (stops_on_workers(1, 0) or "")  # 0: never on the workers


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        ("rmse", lambda y, p: np.sqrt(np.mean((y - p) ** 2))),
        ("l2", lambda y, p: np.mean((y - p) ** 2)),
        ("l1", lambda y, p: np.mean(np.abs(y - p))),
        ("mape", lambda y, p: np.mean(np.abs(y - p) / np.maximum(1, np.abs(y)))),
    ],
)
def test_the_workers_metric_is_lightgbms_mean_over_rows(metric: str, expected: object) -> None:
    rng = np.random.default_rng(1)
    y, p = rng.normal(10, 3, 5_000), rng.normal(10, 3, 5_000)
    evaluate = worker_metric(metric, [2, 2])

    assert evaluate is not None
    name, value, higher_is_better = evaluate(y, p)
    assert (name, higher_is_better) == (metric, False)
    assert value == pytest.approx(expected(y, p), rel=1e-12)  # type: ignore[operator]
    assert evaluate(y, p)[1] == value  # the same rows give the same bits


def test_the_workers_logloss_clips_as_lightgbm_and_lightgbms_own_metric_serves_where_it_is_alike() -> None:
    evaluate = worker_metric("binary_logloss", [4, 1])
    assert evaluate is not None
    y, p = np.array([1.0, 0.0, 1.0, 0.0]), np.array([0.9, 0.2, 1.0, 0.0])  # certain and right: clipped, finite
    expected = -np.mean([np.log(0.9), np.log(0.8), np.log(1 - 1e-15), np.log(1 - 1e-15)])
    assert evaluate(y, p)[1] == pytest.approx(expected, rel=1e-12)
    assert worker_metric("auc", [2, 2]) is None  # a count over sorted scores: alike whatever the threads
    assert worker_metric("rmse", [1, 1]) is None  # one thread a worker: LightGBM's sum runs in one order
    with pytest.raises(ValueError, match=r"no early-stopping metric 'ndcg' on Dask"):
        worker_metric("ndcg", [2])


#: Two workers of two threads each: LightGBM's own metric, summed in per-thread parts, could round apart on them.
THREADED = dataclasses.replace(
    LOCAL_CLUSTER, local_cluster=dataclasses.replace(LOCAL_CLUSTER.local_cluster, threads_per_worker=2)
)


@pytest.mark.slow  # a Dask cluster of worker processes: make test-slow
@pytest.mark.parametrize("cluster", [LOCAL_CLUSTER, THREADED], ids=["one-thread", "two-threads"])
def test_every_worker_judges_the_whole_validation_split_and_training_stops_there(
    trips_snapshot: object, cluster: object
) -> None:
    spec = regression(num_boost_round=400, early_stopping_rounds=10)

    _, trained = train_snapshot_on_dask(snapshot_files(trips_snapshot), spec, SPLIT, cluster)  # type: ignore[arg-type, attr-defined]

    assert trained.params["dask_early_stopping"] == "on the workers"
    best, stopped = early_stopping_point(trained.learning_curve, 10, minimize=True)
    # The workers stopped 10 rounds after the best one: the curve has only the rounds trained.
    assert trained.best_iteration == best
    assert stopped == len(trained.learning_curve) == best + 10 < 400
    with cluster_client() as client:
        rows = read_rows(snapshot_files(trips_snapshot), None, None)  # type: ignore[attr-defined]
        split = time_split_on_dask(client, rows, "pickup_at", 0.15, 0.15)
        whole = validation_curve(client, trained.booster, trained.preprocessor, split.validation, spec)
    # What each worker evaluated is the whole split's curve (a worker judging its own parts would differ).
    assert whole == pytest.approx(trained.learning_curve[:best], rel=1e-6)


@pytest.mark.slow
def test_above_early_stopping_rows_every_round_is_trained_and_cut_at_the_same_rule(trips_snapshot: object) -> None:
    spec = regression(num_boost_round=120, early_stopping_rounds=10)
    settings = dataclasses.replace(LOCAL_CLUSTER, early_stopping_rows=100)

    _, trained = train_snapshot_on_dask(snapshot_files(trips_snapshot), spec, SPLIT, settings)  # type: ignore[arg-type, attr-defined]

    assert trained.params["dask_early_stopping"].startswith("after every round: ")
    assert "exceed training.dask.early_stopping_rows (100)" in trained.params["dask_early_stopping"]
    best, stopped = early_stopping_point(trained.learning_curve, 10, minimize=True)
    assert trained.best_iteration == best
    assert stopped == len(trained.learning_curve) == best + 10 < 120
