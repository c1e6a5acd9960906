"""The train step: train the city's model on the run's snapshot and log it to MLflow, with its lineage.

Every figure logged can be traced back to the exact rows through the snapshot's content hash.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from airflow_ml.data.snapshot import Manifest, read_snapshot
from airflow_ml.data.storage import StorageOptions
from airflow_ml.ml import model_registry as registry
from airflow_ml.ml.charts.chart_artifacts import log_holdout_charts
from airflow_ml.ml.fallback import record_data_status
from airflow_ml.ml.search import LIGHTGBM_INTEGER_PARAMS, SearchSettings, search_params
from airflow_ml.ml.serving import predict_raw
from airflow_ml.ml.snapshot_dataset import log_snapshot_input
from airflow_ml.ml.steps.step_settings import SplitSettings, TrainingSettings
from airflow_ml.ml.steps.xcom_payloads import TrainingPayload
from airflow_ml.ml.train import TrainSpec, effective_threads, time_split, train_model
from airflow_ml.ml.training_report import code_version, write_feature_importance
from airflow_ml.ml.warm_start import WARM_START_TAG, warm_start

if TYPE_CHECKING:
    from airflow_ml.ml.dask_settings import ClusterAddress, DaskSettings

log = logging.getLogger(__name__)

HOLDOUT_PREDICTIONS = "holdout_predictions.parquet"


class NotEnoughData(Exception):
    """The snapshot has fewer rows than ``fallback.min_rows``: nothing is trained, the city falls back."""


def train(
    client: MlflowClient,
    manifest: Manifest,
    settings: TrainingSettings,
    *,
    run_id: str,
    artifact_root: str | None = None,
    tags: dict[str, str] | None = None,
    storage_options: StorageOptions | None = None,
    cluster: ClusterAddress | None = None,
) -> TrainingPayload:
    """The train task: check there is enough data for a model of the city's own, then :func:`train_and_log`.

    Args:
        client: The MLflow client.
        manifest: The run's snapshot.
        settings: The city's training settings, the run's overrides applied.
        run_id: The Airflow run, recorded with the data status.
        artifact_root: Artifacts of a new experiment.
        tags: Run tags beside ``settings.tags`` (the Airflow lineage).
        storage_options: Options that open the snapshot (by protocol).
        cluster: With ``engine: dask``, the scheduler of ``training.dask.connection`` (None: a LocalCluster).

    Raises:
        NotEnoughData: with ``settings.fallback_min_rows`` and fewer rows; the data status is recorded on the
            city's registered model.
        ValueError: when ``search`` asks for trials without ranges.
    """
    if settings.fallback_min_rows is not None:
        enough = record_data_status(
            client,
            settings.registered_model,
            rows=manifest.row_count,
            min_rows=settings.fallback_min_rows,
            run_id=run_id,
            parent_model=settings.parent_model,
        )
        if not enough:
            raise NotEnoughData(
                f"{manifest.row_count} rows < fallback.min_rows {settings.fallback_min_rows}: no model of "
                f"{settings.registered_model!r} is trained; it stays served by its champion, or else by its "
                f"parent {settings.parent_model!r} (airflow-ml serving tells which)"
            )
    result = train_and_log(
        client,
        manifest,
        settings.spec,
        settings.split,
        experiment=settings.experiment,
        artifact_root=artifact_root,
        tags={**settings.tags, **(tags or {})},
        config=dict(settings.config) if settings.config is not None else None,
        storage_options=storage_options,
        search=search_settings(settings),
        warm_start_from=settings.registered_model if settings.warm_start else None,
        dask=settings.dask if settings.engine == "dask" else None,
        cluster=cluster,
    )
    return TrainingPayload(**result)  # type: ignore[typeddict-item]


def search_settings(settings: TrainingSettings) -> SearchSettings | None:
    """The parameter search to run, or None (no trials).

    Raises:
        ValueError: when trials are asked for but no ranges are configured.
    """
    search = settings.search
    trials = int(search.get("trials") or 0)
    if not trials:
        return None
    ranges = search.get("params")
    if not ranges:
        raise ValueError(f"search_trials is {trials} but no search ranges are configured; set training.search.params")
    minutes = float(search.get("timeout_minutes") or 10)
    # A hand-written DAG's settings may not name them: LightGBM's own integer parameters then.
    integers = set(search.get("integers") or LIGHTGBM_INTEGER_PARAMS)
    return SearchSettings.from_config(dict(ranges), trials=trials, timeout_minutes=minutes, integers=integers)


def train_and_log(
    client: MlflowClient,
    manifest: Manifest,
    spec: TrainSpec,
    split: SplitSettings,
    *,
    experiment: str,
    artifact_root: str | None = None,
    tags: dict[str, str] | None = None,
    config: dict[str, Any] | None = None,
    storage_options: StorageOptions | None = None,
    search: SearchSettings | None = None,
    warm_start_from: str | None = None,
    dask: DaskSettings | None = None,
    cluster: ClusterAddress | None = None,
) -> dict[str, Any]:
    """Train on the snapshot and log params, metrics, the model and its lineage to a new MLflow run.

    The snapshot is the run's dataset input (:mod:`airflow_ml.ml.snapshot_dataset`); the split's row counts
    (``rows_train``, ``rows_validation``, ``rows_holdout``) are params and ``best_iteration`` a tag; the scores
    are metrics.

    ``storage_options`` (by protocol, see :mod:`airflow_ml.data.storage`) open a snapshot on object storage.
    ``search`` (with trials) first searches the LightGBM parameters, each trial a nested run, and trains
    the final model with the best ones. ``warm_start_from`` names a registered model: a second candidate
    boosts on from its champion, and the better of the two on the validation split is kept (tag
    ``airflow_ml.warm_start``). A ``spec.num_threads`` above the worker's cores is clamped to them, with a
    warning: the run's ``num_threads`` param is what LightGBM ran with (``num_threads_configured`` the spec's).

    Returns:
        ``run_id``, ``experiment_id``, ``model_uri``, the ``metrics`` (the scores, with the counts as numbers
        too), ``warm_start`` (None when off) and ``charts``: the holdout's charts logged under ``holdout/charts/``
        (predicted against actual and the residuals for a regression, ROC and calibration for a binary task).
    """
    threads = effective_threads(spec.num_threads)
    if threads != spec.num_threads:
        log.warning(
            "training.num_threads %d is more than the %d core(s) this worker may use: LightGBM runs %d threads "
            "(recorded as the run's num_threads param)",
            spec.num_threads,
            threads,
            threads,
        )
    if dask is not None and (warm_start_from or (search is not None and search.trials > 0)):
        raise ValueError(
            "engine 'dask' neither searches parameters nor warm starts; run without search_trials (0) and "
            "warm_start, or set training.engine: local"
        )
    if dask is None:
        columns = list(dict.fromkeys([*spec.features, spec.target, split.time_column]))
        # No name holds the frame read: the splits are views of it (or of its sorted copy, and then it is freed).
        splits = time_split(
            read_snapshot(manifest.uri, columns=columns, storage_options=storage_options),
            split.time_column,
            split.validation_fraction,
            split.holdout_fraction,
        )
    experiment_id = registry.get_or_create_experiment(client, experiment, artifact_root)
    run_tags = {
        **(tags or {}),
        "airflow_ml.snapshot_uri": manifest.uri,
        "airflow_ml.snapshot_hash": manifest.content_hash,
        "mlflow.runName": f"{manifest.city} {manifest.run_id}",
        **code_version(),
    }
    run = client.create_run(experiment_id, tags=run_tags)
    run_id = run.info.run_id
    choice = None
    try:
        log_snapshot_input(client, run_id, manifest, "training")
        if dask is not None:
            from airflow_ml.ml.dask_split import snapshot_files
            from airflow_ml.ml.dask_train import train_snapshot_on_dask

            splits, trained = train_snapshot_on_dask(
                snapshot_files(manifest), spec, split, dask, cluster=cluster, storage_options=storage_options
            )
        elif search is not None and search.trials > 0:
            found = search_params(
                client, experiment_id=experiment_id, parent_run_id=run_id, splits=splits, spec=spec, settings=search
            )
            spec = dataclasses.replace(spec, params={**spec.params, **found.best_params})
        if dask is None:
            trained = train_model(splits, spec)
        if warm_start_from:
            outcome = warm_start(client, warm_start_from, splits, spec, trained)
            trained, choice = outcome.model, outcome.choice
            client.set_tag(run_id, WARM_START_TAG, choice[:5000])
            client.log_batch(
                run_id, metrics=[Metric(f"warm_start_{k}_validation", v, 0, 0) for k, v in outcome.scores.items()]
            )
        params = {
            **trained.params,
            "num_boost_round": spec.num_boost_round,
            "early_stopping_rounds": spec.early_stopping_rounds,
            "features": ",".join(spec.features),
            "categorical_features": ",".join(spec.categorical),
            "target": spec.target,
            "validation_fraction": split.validation_fraction,
            "holdout_fraction": split.holdout_fraction,
            "snapshot_hash": manifest.content_hash,
            "class_weight": spec.class_weight,
        }
        if threads != spec.num_threads:
            params["num_threads_configured"] = spec.num_threads
        sizes = {f"rows_{name}": n for name, n in splits.sizes().items()}
        # Counts are params or tags, not metrics: MLflow would draw a one-point chart of each. ``best_iteration``
        # is a tag: the ``best_`` params are the searched parameters.
        params |= sizes
        metrics = {
            **trained.metrics,
            **{k: float(v) for k, v in sizes.items()},
            "best_iteration": float(trained.best_iteration),
        }
        curve = [Metric(f"validation_curve_{spec.metric}", v, 0, step) for step, v in enumerate(trained.learning_curve)]
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, 0, 0) for k, v in trained.metrics.items()] + curve,
            params=[Param(k, str(v)[:6000]) for k, v in params.items()],
            tags=[RunTag("best_iteration", str(trained.best_iteration))],
        )
        with tempfile.TemporaryDirectory(prefix="airflow-ml-run-") as tmp:
            Path(tmp, "manifest.json").write_text(json.dumps(manifest.to_dict(), indent=1), encoding="utf-8")
            if config is not None:
                Path(tmp, "city_config.json").write_text(json.dumps(config, indent=1, default=str), encoding="utf-8")
            # The predictions the holdout metric was scored on: the holdout is not scored a second time.
            predictions = trained.holdout_predictions
            if predictions is None:  # a model trained with score_holdout=False
                predictions = predict_raw(trained.booster, trained.preprocessor, splits.holdout)
            holdout = splits.holdout.assign(prediction=predictions)
            holdout.to_parquet(Path(tmp, HOLDOUT_PREDICTIONS), index=False)
            client.log_artifacts(run_id, tmp, "lineage")
        with tempfile.TemporaryDirectory(prefix="airflow-ml-report-") as tmp:
            write_feature_importance(trained.booster, Path(tmp))
            client.log_artifacts(run_id, tmp, "importance")
        holdout_score = trained.metrics.get(f"holdout_{spec.metric}")
        charts = log_holdout_charts(
            client,
            run_id,
            spec.task,
            holdout[spec.target],
            holdout["prediction"],
            metric=spec.metric,
            score=holdout_score,
        )
        model_uri = registry.log_model(client, run_id, trained, splits.train)
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")
    return {
        "run_id": run_id,
        "experiment_id": experiment_id,
        "model_uri": model_uri,
        "metrics": metrics,
        "warm_start": choice,
        "charts": charts,
    }
