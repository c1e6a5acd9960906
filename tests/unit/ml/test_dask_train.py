"""Training on Dask (airflow_ml.ml.dask_train) against the local path, on a real two-worker LocalCluster.

Tolerance: LightGBM's data-parallel training sums the workers' histograms, but each worker finds the bin
boundaries of its features from its own rows, so split thresholds, and hence some rows' leaves, differ from one
process's model. The split, the preprocessing and the early-stopping rule are exactly the local ones; the holdout
score must be within 3% (relative) of the local model's and the predictions correlated above 0.95 (measured on
these 3,155 rows: 0.6% and 0.993 for the regression, 0.05% and 0.977-0.993 for the binary task, whose
early stopping may pick another round: 10 against 18; the partitions' placement on the workers changes the bins).
"""

from __future__ import annotations

from pathlib import Path

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

from airflow_ml.data.snapshot import read_snapshot
from airflow_ml.ml.dask_curve import early_stopping_point, validation_curve
from airflow_ml.ml.dask_split import read_rows, snapshot_files, time_split_on_dask
from airflow_ml.ml.dask_train import train_snapshot_on_dask
from airflow_ml.ml.metrics import score
from airflow_ml.ml.serving import predict_raw
from airflow_ml.ml.steps.step_settings import SplitSettings
from airflow_ml.ml.train import time_split, train_model, train_sample
from tests.support.dask_clusters import LOCAL_CLUSTER, cluster_client
from tests.support.training_data import binary, late_trips, regression, snapshot

pytestmark = pytest.mark.slow  # a Dask cluster of worker processes per test: make test-slow

SPLIT = SplitSettings("pickup_at", 0.15, 0.15)


@pytest.fixture(scope="module")
def trips_snapshot(tmp_path_factory: pytest.TempPathFactory) -> object:
    return snapshot(late_trips(days=8, scale=0.5), tmp_path_factory.mktemp("dask"), "run-1")


@pytest.mark.parametrize(
    "spec", [regression(num_boost_round=80), binary(num_boost_round=80)], ids=["regression", "binary"]
)
def test_a_dask_model_is_close_to_the_local_one_on_the_same_rows(trips_snapshot: object, spec: object) -> None:
    columns = list(dict.fromkeys([*spec.features, spec.target, SPLIT.time_column]))  # type: ignore[attr-defined]
    splits = time_split(read_snapshot(trips_snapshot.uri, columns=columns), "pickup_at", 0.15, 0.15)  # type: ignore[attr-defined]
    local = train_model(splits, spec)  # type: ignore[arg-type]

    kept, trained = train_snapshot_on_dask(snapshot_files(trips_snapshot), spec, SPLIT, LOCAL_CLUSTER)  # type: ignore[arg-type, attr-defined]

    assert kept.sizes() == splits.sizes()
    pd.testing.assert_frame_equal(kept.holdout, splits.holdout.reset_index(drop=True))  # the very same rows
    assert trained.preprocessor.to_dict() == local.preprocessor.to_dict()  # the exact local fit
    assert trained.params["engine"] == "dask"
    assert trained.params["dask_workers"] == 2
    assert trained.params["dask_early_stopping"] == "on the workers"  # the binary's on LightGBM's own AUC or logloss
    metric = f"holdout_{spec.metric}"  # type: ignore[attr-defined]
    assert trained.metrics[metric] == pytest.approx(local.metrics[metric], rel=0.03)
    ours, theirs = (predict_raw(m.booster, m.preprocessor, splits.holdout) for m in (trained, local))
    assert np.corrcoef(ours, theirs)[0, 1] > 0.95
    if spec.task == "binary":  # type: ignore[attr-defined]
        assert ((ours >= 0) & (ours <= 1)).all()  # DaskLGBMClassifier: probabilities, as the local binary model
    # The booster is cut where LightGBM's early stopping would have stopped on this validation curve.
    best, stopped = early_stopping_point(
        trained.learning_curve, spec.early_stopping_rounds, minimize=spec.task != "binary"
    )  # type: ignore[attr-defined]
    assert trained.best_iteration == best < spec.num_boost_round  # type: ignore[attr-defined]
    assert stopped == len(trained.learning_curve)


def test_the_validation_curve_on_the_cluster_is_lightgbms_own(trips_snapshot: object) -> None:
    import lightgbm as lgb

    spec = regression(num_boost_round=30, early_stopping_rounds=None)
    splits = time_split(read_snapshot(trips_snapshot.uri), "pickup_at", 0.15, 0.15)  # type: ignore[attr-defined]
    local = train_model(splits, spec)
    assert len(local.learning_curve) == 30

    with cluster_client() as client:
        rows = read_rows(snapshot_files(trips_snapshot), None, None)  # type: ignore[attr-defined]
        split = time_split_on_dask(client, rows, "pickup_at", 0.15, 0.15)
        curve = validation_curve(client, local.booster, local.preprocessor, split.validation, spec)

    # LightGBM accumulates scores in float32-rounded steps: equal to 1e-6, not bit for bit.
    assert curve == pytest.approx(local.learning_curve, rel=1e-6)
    assert isinstance(local.booster, lgb.Booster)


def test_a_search_or_a_warm_start_asked_of_a_dask_run_is_refused_before_any_mlflow_run(
    trips_snapshot: object, client: object
) -> None:
    from airflow_ml.ml.steps.train_step import train_and_log
    from tests.support.training_data import search_settings

    for extra in ({"search": search_settings(2)}, {"warm_start_from": "ride_duration.lisbon"}):
        with pytest.raises(ValueError, match=r"engine 'dask' neither searches parameters nor warm starts"):
            train_and_log(client, trips_snapshot, regression(), SPLIT, experiment="dask", dask=LOCAL_CLUSTER, **extra)  # type: ignore[arg-type]
    assert client.get_experiment_by_name("dask") is None  # type: ignore[attr-defined]


def test_the_train_metric_is_the_local_ones_on_the_same_seeded_sample(
    trips_snapshot: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Named ``train_sample_<metric>`` as locally, scored on the rows ``train_sample`` picks (capped at 1,000 here)."""
    monkeypatch.setattr("airflow_ml.ml.train.TRAIN_SAMPLE_ROWS", 1_000)
    spec = regression(num_boost_round=20)
    columns = list(dict.fromkeys([*spec.features, spec.target, SPLIT.time_column]))
    splits = time_split(read_snapshot(trips_snapshot.uri, columns=columns), "pickup_at", 0.15, 0.15)  # type: ignore[attr-defined]

    _, trained = train_snapshot_on_dask(snapshot_files(trips_snapshot), spec, SPLIT, LOCAL_CLUSTER)  # type: ignore[attr-defined]

    assert sorted(trained.metrics) == sorted(train_model(splits, spec).metrics)
    sample = train_sample(splits.train, spec.seed, rows=1_000)
    assert len(sample) == 1_000 < len(splits.train)
    expected = score(spec.metric, sample[spec.target], predict_raw(trained.booster, trained.preprocessor, sample))
    assert trained.metrics[f"train_sample_{spec.metric}"] == pytest.approx(expected, rel=1e-9)


def test_the_training_inputs_are_learnt_in_one_round_trip_as_the_local_path_learns_them(
    trips_snapshot: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The seeded sample, the first rows (the model's input example), the preprocessor's levels and the class
    balance are the local path's; a null target in the training or the validation rows is refused, naming the
    split."""
    from airflow_ml.ml.dask_train import training_inputs
    from airflow_ml.ml.serving import Preprocessor

    monkeypatch.setattr("airflow_ml.ml.train.TRAIN_SAMPLE_ROWS", 500)
    spec, weighted = regression(), binary(class_weight="balanced")
    columns = list(dict.fromkeys([*spec.features, spec.target, weighted.target, SPLIT.time_column]))
    frame = read_snapshot(trips_snapshot.uri, columns=columns)  # type: ignore[attr-defined]
    local = time_split(frame, "pickup_at", 0.15, 0.15)
    with cluster_client() as client:
        rows = read_rows(snapshot_files(trips_snapshot), columns, None)  # type: ignore[arg-type]
        splits = time_split_on_dask(client, rows, "pickup_at", 0.15, 0.15)

        inputs = training_inputs(client, splits, spec)
        balanced = training_inputs(client, splits, weighted)

        expected = train_sample(local.train, spec.seed, rows=500).reset_index(drop=True)
        pd.testing.assert_frame_equal(inputs.sample, expected)
        pd.testing.assert_frame_equal(inputs.example, local.train.head(5).reset_index(drop=True))
        for found, wanted in ((inputs, spec), (balanced, weighted)):
            fitted = Preprocessor.fit(local.train, wanted.features, wanted.categorical, wanted.task)
            assert found.preprocessor.to_dict() == fitted.to_dict()
        assert "scale_pos_weight" not in inputs.params
        weight = weighted.imbalance_params(local.train[weighted.target])["scale_pos_weight"]
        assert balanced.params["scale_pos_weight"] == pytest.approx(weight, rel=1e-12)
        ordered = pd.concat([local.train, local.validation, local.holdout])  # positions 0..n-1 in time order
        for broken, name in ((local.train.index[7], "train"), (local.validation.index[3], "validation")):
            holed = ordered.copy()
            holed.loc[broken, spec.target] = np.nan
            holed_rows = dd.from_pandas(holed, npartitions=4, sort=False)
            with pytest.raises(ValueError, match=rf"target 'duration_min' has 1 null\(s\) in the {name} split"):
                training_inputs(client, time_split_on_dask(client, holed_rows, "pickup_at", 0.15, 0.15), spec)


@pytest.fixture(scope="module")
def trips_parts(trips_snapshot: object) -> object:
    """A partitioned snapshot (one part per day, as the snapshot task takes it on Dask) of the same raw rows."""
    import dask

    from airflow_ml.data.dask_snapshot import take_partitioned_snapshot

    root = Path(trips_snapshot.uri).parents[3]  # type: ignore[attr-defined]
    with dask.config.set(scheduler="synchronous"):
        return take_partitioned_snapshot(
            str(root / "raw"), str(root / "snapshots"), template="ride_duration", city="lisbon", run_id="parts"
        )


def test_dask_training_reads_a_partitioned_snapshots_parts_and_splits_them_as_locally(
    trips_snapshot: object, trips_parts: object, client: object
) -> None:
    from airflow_ml.ml.steps.train_step import train_and_log

    assert len(trips_parts.parts) == 8  # type: ignore[attr-defined]
    assert not (Path(trips_parts.uri) / "data.parquet").exists()  # type: ignore[attr-defined]
    spec = regression(num_boost_round=20)
    columns = list(dict.fromkeys([*spec.features, spec.target, SPLIT.time_column]))
    local = time_split(read_snapshot(trips_snapshot.uri, columns=columns), "pickup_at", 0.15, 0.15)  # type: ignore[attr-defined]

    kept, _ = train_snapshot_on_dask(snapshot_files(trips_parts), spec, SPLIT, LOCAL_CLUSTER)  # type: ignore[arg-type]

    assert kept.sizes() == local.sizes()
    pd.testing.assert_frame_equal(kept.holdout, local.holdout.reset_index(drop=True))
    # The train step hands the trainer the parts: the run logs the partitioned snapshot's hash and split.
    result = train_and_log(client, trips_parts, spec, SPLIT, experiment="parts", dask=LOCAL_CLUSTER)  # type: ignore[arg-type]
    run = client.get_run(result["run_id"])  # type: ignore[attr-defined]
    assert run.data.params["engine"] == "dask"
    assert run.data.params["snapshot_hash"] == trips_parts.content_hash  # type: ignore[attr-defined]
    assert run.data.params["rows_holdout"] == str(len(local.holdout))


def test_local_training_reads_a_partitioned_snapshot_as_its_one_file_twin(
    trips_snapshot: object, trips_parts: object, client: object
) -> None:
    """A snapshot taken on Dask and trained with ``engine: local`` (the setting changed between tasks) is read part
    by part into the process: the same rows as the one-file snapshot, so the same model."""
    from airflow_ml.ml.steps.train_step import train_and_log

    spec = regression(num_boost_round=20)
    runs = [
        client.get_run(train_and_log(client, m, spec, SPLIT, experiment="twins")["run_id"])  # type: ignore[arg-type, attr-defined]
        for m in (trips_snapshot, trips_parts)
    ]

    one_file, parts = (r.data.metrics for r in runs)
    assert parts == one_file
    assert runs[1].data.params["snapshot_hash"] == trips_parts.content_hash != trips_snapshot.content_hash  # type: ignore[attr-defined]
