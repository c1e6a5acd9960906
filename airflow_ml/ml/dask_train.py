"""``training.engine: dask``: the same model as :func:`airflow_ml.ml.train.train_model`, trained by ``lightgbm.dask``.

The snapshot's rows are read and split on the cluster (:mod:`airflow_ml.ml.dask_split`: exactly the local path's
training, validation and holdout rows) and stay there. What matches the local path, and how:

- **Preprocessing**: :meth:`Preprocessor.fit <airflow_ml.ml.serving.Preprocessor.fit>` learns only each
  categorical column's levels, which depend only on the column's distinct values; the cluster computes those
  (``drop_duplicates``) and the very same ``fit`` runs on them, so the categories equal the local fit's exactly.
- **Early stopping**: ``lightgbm.dask`` 4.7 does not support it. Each worker gets a copy of the validation rows,
  computes the metric alike to the last bit, and LightGBM's ``early_stopping`` callback stops them all at the
  same round (:mod:`airflow_ml.ml.dask_early_stopping`); above ``training.dask.early_stopping_rows`` validation
  rows every round is trained and the booster cut at the round that callback would pick
  (:mod:`airflow_ml.ml.dask_curve`).
- **Model**: ``.to_local()``'s booster with the preprocessor: the same pyfunc as the local path logs.

LightGBM's distributed histograms differ from one process's (each worker bins its own rows' sample), so the
model is close to, not equal to, the local one. While LightGBM trains, the workers hold the model's inputs
(the transformed features and the labels of the training rows), not the raw training rows: those are released
once the inputs, the seeded sample the train metric is scored on and the model's input example are taken. The
driver holds the holdout (for the lineage artifact and the charts), that sample, and two float64 per row of a
split while scoring it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from airflow_ml.data.storage import StorageOptions
from airflow_ml.ml.dask_client import dask_client, run_guarded
from airflow_ml.ml.dask_curve import MINIMIZED, early_stopping_point, validation_curve
from airflow_ml.ml.dask_early_stopping import (
    early_stopping_callbacks,
    evaluated_curve,
    stops_on_workers,
    worker_metric,
)
from airflow_ml.ml.dask_holdout import concatenated, rows_at_tasks
from airflow_ml.ml.dask_settings import ClusterAddress, DaskSettings
from airflow_ml.ml.dask_split import DaskSplits, SplitLike, read_rows, split_lengths, time_split_on_dask
from airflow_ml.ml.metrics import lightgbm_metric, score
from airflow_ml.ml.train_spec import TrainSpec

if TYPE_CHECKING:
    import dask.dataframe as dd
    import numpy as np
    import pandas as pd
    from distributed import Client

    from airflow_ml.ml.serving import Preprocessor
    from airflow_ml.ml.train import Splits, TrainedModel

log = logging.getLogger(__name__)


def _refuse_missing_features(train: dd.DataFrame, spec: TrainSpec) -> None:
    missing = [name for name in spec.features if name not in train.columns]
    if missing:
        raise ValueError(f"input is missing feature column(s) {missing}; it has {list(train.columns)}")


def _distinct_levels(train: dd.DataFrame, spec: TrainSpec) -> list[dd.Series]:
    # Reduced to one partition on the workers, by a tree: the default (a partition per input) shuffles the column
    # between them (2.7-3.2 s at 1M rows against 0.6-0.9 s).
    return [train[name].drop_duplicates(split_out=1) for name in spec.categorical]


def _preprocessor(spec: TrainSpec, distinct: Sequence[pd.Series]) -> Preprocessor:
    """The preprocessor :meth:`Preprocessor.fit` learns from the training rows, from their distinct values."""
    from airflow_ml.ml.serving import Preprocessor

    categories: dict[str, list[str]] = {}
    for name, values in zip(spec.categorical, distinct, strict=True):
        frame = values.to_frame(name).reset_index(drop=True)
        categories[name] = Preprocessor.fit(frame, [name], [name], spec.task).categories[name]
    return Preprocessor(spec.features, categories, spec.task)


@dataclass(frozen=True)
class TrainingInputs:
    """What LightGBM and the train metric need of the training rows, once the raw rows may go.

    Attributes:
        preprocessor: Fitted on the training rows' distinct levels.
        features: The transformed training rows, persisted on the workers that held the raw ones.
        labels: Their target as float64, persisted alike.
        sample: The seeded sample of raw training rows the train metric is scored on (``train_sample``'s).
        example: The first training rows (the model's input example and signature).
        params: LightGBM's parameters, class weights included.
    """

    preprocessor: Preprocessor
    features: dd.DataFrame
    labels: dd.Series
    sample: pd.DataFrame
    example: pd.DataFrame
    params: dict[str, Any]


def training_inputs(client: Client, splits: DaskSplits, spec: TrainSpec) -> TrainingInputs:
    """Check the training and validation rows' target, fit the preprocessor and make LightGBM's inputs from the
    training rows of ``splits``.

    What is learnt from the rows (null targets, the categorical levels, the seeded sample, the first rows, the
    class balance) comes back in one round trip; then the inputs are made and persisted where the rows lie.

    Raises:
        ValueError: when a feature column is missing, or the target has nulls in the training or validation rows.
    """
    from distributed import wait

    train = splits.train
    assert train is not None
    _refuse_missing_features(train, spec)
    labels = train[spec.target].astype("float64")
    weighted = spec.class_weight != "none"
    lengths = split_lengths(client, splits, "train")
    # Two graphs sent at once and gathered together (one list of both kinds would be reordered by Dask, which
    # computes the frames' expressions first): one round trip.
    of_frames = client.compute(
        [
            *(rows[spec.target].isna().sum() for rows in (train, splits.validation)),
            train.head(5, npartitions=min(3, train.npartitions), compute=False),  # the model's input example
            *([labels] if weighted else []),
            *_distinct_levels(train, spec),
        ]
    )
    of_sample = client.compute(rows_at_tasks(train, _train_sample(lengths, spec.seed), lengths))
    found, picked = client.gather([of_frames, of_sample])
    nulls, example, sample = found[:2], found[2].reset_index(drop=True), concatenated(picked, train._meta)
    weights, levels = (found[3], found[4:]) if weighted else (None, found[3:])
    for name, count in zip(("train", "validation"), nulls, strict=True):
        if count:
            raise ValueError(
                f"target {spec.target!r} has {int(count)} null(s) in the {name} split; fix the data or its suite"
            )
    preprocessor = _preprocessor(spec, levels)
    imbalance = spec.imbalance_params(weights) if weighted else {}
    features = train.map_partitions(preprocessor.transform, meta=preprocessor.transform(train._meta))
    features, labels = client.persist([features, labels])
    wait([features, labels])
    return TrainingInputs(preprocessor, features, labels, sample, example, {**spec.lightgbm_params(), **imbalance})


def train_model_on_dask(
    client: Client, inputs: TrainingInputs, splits: DaskSplits, spec: TrainSpec, settings: DaskSettings
) -> TrainedModel:
    """Train like :func:`airflow_ml.ml.train.train_model` with ``lightgbm.dask``; returns the local booster.

    ``splits`` needs no training rows (``inputs`` holds what is needed of them, and :func:`training_inputs` has
    checked the validation rows' target): its validation rows draw the early-stopping curve, and the validation
    and holdout rows are scored (in one round trip).
    """
    import lightgbm as lgb

    from airflow_ml.ml.serving import predict_raw
    from airflow_ml.ml.train import TrainedModel

    preprocessor, params = inputs.preprocessor, inputs.params
    network: dict[str, Any] = {"time_out": settings.network_timeout_minutes}
    if settings.listen_port is not None:
        network["local_listen_port"] = settings.listen_port
    model_class = lgb.DaskLGBMClassifier if spec.task == "binary" else lgb.DaskLGBMRegressor
    # lightgbm.dask gives each worker as many threads as it has: num_threads would only be warned about.
    fit_params = {k: v for k, v in params.items() if k != "num_threads"}
    callbacks: list[Any] = []
    why_not = (
        stops_on_workers(splits.sizes["validation"], settings.early_stopping_rows)
        if spec.early_stopping_rounds
        else "no early_stopping_rounds"
    )
    evaluate = worker_metric(lightgbm_metric(spec.metric), client.nthreads().values()) if why_not is None else None
    if evaluate is not None:
        fit_params["metric"] = "None"  # only the workers' own computation of it: LightGBM's could round apart
    estimator = model_class(client=client, n_estimators=spec.num_boost_round, **fit_params, **network)
    if why_not is None and spec.early_stopping_rounds:
        features = splits.validation.map_partitions(preprocessor.transform, meta=inputs.features._meta)
        labels = splits.validation[spec.target].astype("float64")
        callbacks = early_stopping_callbacks(client, features, labels, spec.early_stopping_rounds)
        log.info("lightgbm.dask: up to %d rounds, stopping early on every worker", spec.num_boost_round)
    else:
        log.info("lightgbm.dask: %d rounds, cut afterwards (%s)", spec.num_boost_round, why_not)
    estimator.fit(
        inputs.features,
        inputs.labels,
        categorical_feature=spec.categorical or "auto",
        callbacks=callbacks or None,
        eval_metric=evaluate,
    )
    on_workers = bool(callbacks)
    del callbacks  # the workers' copies of the validation rows are released with it
    local = estimator.to_local()
    booster = local.booster_
    if on_workers:
        curve = evaluated_curve(local)
    else:
        curve = validation_curve(client, booster, preprocessor, splits.validation, spec)
    best, stopped = early_stopping_point(
        curve, spec.early_stopping_rounds, minimize=lightgbm_metric(spec.metric) in MINIMIZED
    )
    if spec.early_stopping_rounds and best < booster.current_iteration():
        booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    # The local path's train metric, on the same seeded sample of training rows (positions in time order).
    sample = inputs.sample
    metrics = {
        f"train_sample_{spec.metric}": score(
            spec.metric, sample[spec.target].to_numpy(dtype="float64"), predict_raw(booster, preprocessor, sample)
        ),
        **{
            f"{name}_{spec.metric}": score(spec.metric, *pair)
            for name, pair in _labels_and_predictions(
                client, {"validation": splits.validation, "holdout": splits.holdout}, booster, preprocessor, spec.target
            ).items()
        },
    }
    return TrainedModel(
        booster=booster,
        preprocessor=preprocessor,
        metrics=metrics,
        best_iteration=int(booster.current_iteration()),
        learning_curve=[float(v) for v in curve[:stopped]],
        params={
            **params,
            **network,
            "engine": "dask",
            "dask_workers": len(client.nthreads()),
            "dask_early_stopping": "on the workers" if on_workers else f"after every round: {why_not}",
        },
    )


def _train_sample(lengths: list[int], seed: int) -> np.ndarray:
    """The positions :func:`airflow_ml.ml.train.train_sample` picks of the training rows (partitions of
    ``lengths`` rows).

    The partitions hold the training rows in time order, so the local path's seeded positions over the whole
    split pick the very same rows; only those (at most ``TRAIN_SAMPLE_ROWS``) are gathered.
    """
    import numpy as np

    from airflow_ml.ml.train import TRAIN_SAMPLE_ROWS

    total = sum(lengths)
    if total <= TRAIN_SAMPLE_ROWS:
        return np.arange(total)
    return np.sort(np.random.default_rng(seed).choice(total, TRAIN_SAMPLE_ROWS, replace=False))


def _labels_and_predictions(
    client: Client, splits: dict[str, dd.DataFrame], booster: Any, preprocessor: Preprocessor, target: str
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The labels and predictions of each of ``splits``, each partition predicted on its worker, in one round trip."""
    import dask
    import numpy as np

    from airflow_ml.ml.serving import predict_raw

    def pair(part: Any) -> tuple[np.ndarray, np.ndarray]:
        return part[target].to_numpy(dtype="float64"), predict_raw(booster, preprocessor, part)

    # One flat list (a dict would be one task gathering every pair on one worker first), cut back per split.
    tasks = {name: [dask.delayed(pair)(p) for p in rows.to_delayed()] for name, rows in splits.items()}
    found = iter(client.compute([task for parts in tasks.values() for task in parts], sync=True))
    pairs = {name: [next(found) for _ in parts] for name, parts in tasks.items()}
    return {
        name: (np.concatenate([y for y, _ in some]), np.concatenate([p for _, p in some]))
        for name, some in pairs.items()
    }


@dataclass(frozen=True)
class SampledSplits:
    """What the train step keeps of Dask splits: the first training rows (the model's input example), the holdout
    (its predictions artifact and charts) and every split's row count."""

    train: Any
    holdout: Any
    row_counts: dict[str, int] = field(default_factory=dict)

    def sizes(self) -> dict[str, int]:
        """Row count per split (of the whole snapshot, not of what is kept here)."""
        return dict(self.row_counts)


def train_snapshot_on_dask(
    paths: str | Sequence[str],
    spec: TrainSpec,
    split: SplitLike,
    settings: DaskSettings,
    *,
    cluster: ClusterAddress | None = None,
    storage_options: StorageOptions | None = None,
) -> tuple[Splits, TrainedModel]:
    """Read, split and train on the cluster at ``cluster`` (a LocalCluster sized by ``settings`` when None).

    Returns:
        The splits the train step logs from (the holdout and the first training rows in this process) and the
        trained model.

    Raises:
        DaskClusterError: when the cluster is unreachable or loses a worker.
        ValueError: as :func:`airflow_ml.ml.train.time_split` and :func:`~airflow_ml.ml.train.train_model`.
    """
    columns = list(dict.fromkeys([*spec.features, spec.target, split.time_column]))
    with dask_client(settings, cluster) as client:

        def work() -> tuple[Splits, TrainedModel]:
            frame = read_rows(paths, columns, storage_options)
            splits = time_split_on_dask(
                client, frame, split.time_column, split.validation_fraction, split.holdout_fraction
            )
            inputs = training_inputs(client, splits, spec)
            splits = replace(splits, train=None)  # the raw training rows are freed: LightGBM needs only the inputs
            trained = train_model_on_dask(client, inputs, splits, spec, settings)
            holdout = client.compute(splits.holdout).result().reset_index(drop=True)
            kept = SampledSplits(train=inputs.example, holdout=holdout, row_counts=splits.sizes)
            return kept, trained  # type: ignore[return-value]

        return run_guarded(client, work, what="training on Dask")
