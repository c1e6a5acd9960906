"""Train the city's LightGBM model on the run's snapshot and log it to MLflow."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk import Context
from airflow.sdk.exceptions import AirflowSkipException

from airflow_ml.hooks.storage_credentials import storage_options
from airflow_ml.links.mlflow_links import MlflowRunLink, chart_locations, run_url
from airflow_ml.ml.steps.xcom_payloads import TrainingPayload, snapshot_uri
from airflow_ml.operators.base_operator import (
    SnapshotStepOperator,
    airflow_lineage,
    close_abandoned_runs,
    mlflow_errors,
    run_overrides,
)
from airflow_ml.operators.dask_engine import cluster_address

if TYPE_CHECKING:
    from airflow_ml.ml.steps.step_settings import TrainingSettings
    from airflow_ml.operators.overrides import RunOverrides


class TrainModelOperator(SnapshotStepOperator):
    """Split the snapshot by time, fit preprocessing on the training rows, train LightGBM, log everything.

    The run's Params override the settings: ``num_boost_round``, ``learning_rate``, ``num_leaves`` and
    ``min_data_in_leaf``, ``search_trials`` (0: no search) and ``search_timeout_minutes``. With a fallback
    parent (``fallback_min_rows``), a snapshot with fewer rows trains nothing: the task records the data
    status on the city's registered model and is skipped (so are register and gate), and the city stays
    served by its champion, or else by its parent's (see :mod:`airflow_ml.ml.steps.train_step`). With
    ``training.engine: dask`` the client is made here, at execute: on the cluster of the ``dask`` connection
    named by ``training.dask.connection``, else on a LocalCluster started for the task
    (:mod:`airflow_ml.ml.dask_train`).

    Args:
        snapshot: The snapshot task's XCom (it carries the ``row_count``) or a snapshot URI; templated.
        settings: :meth:`TrainingSettings.to_dict <airflow_ml.ml.steps.step_settings.TrainingSettings.to_dict>`:
            the experiment, the model's spec (columns, task, metric, LightGBM), the time split, the search,
            the warm start, the fallback, run tags and the merged city config (logged as an artifact).
        aws_conn_id: Airflow connection (type ``aws``) for a snapshot on ``s3://``.

    Returns (XCom): ``run_id``, ``experiment_id``, ``model_uri``, ``metrics`` and ``warm_start``.
    """

    operator_extra_links = (MlflowRunLink(),)
    ui_color = "#eaf7ea"

    def execute(self, context: Context) -> TrainingPayload:
        from airflow_ml.data.snapshot import load_manifest
        from airflow_ml.ml.steps.train_step import NotEnoughData, train

        settings = with_overrides(self.settings, run_overrides(context))
        cluster = cluster_address(settings.dask) if settings.engine == "dask" else None
        if cluster is not None:
            self.log.info("training on the Dask cluster at %s", cluster.address)
        uri = snapshot_uri(self.snapshot)
        options = storage_options(uri, aws_conn_id=self.aws_conn_id)
        with mlflow_errors(self.hook, f"training {settings.experiment!r}"):
            for run_id in close_abandoned_runs(self.hook.get_conn(), settings.experiment, context):
                self.log.warning("marked run %s of an earlier, unfinished try KILLED", run_id)
            try:
                result = train(
                    self.hook.get_conn(),
                    load_manifest(uri, storage_options=options),
                    settings,
                    run_id=context["run_id"],
                    artifact_root=self.hook.artifact_root,
                    tags=airflow_lineage(context),
                    storage_options=options,
                    cluster=cluster,
                )
            except NotEnoughData as exc:
                raise AirflowSkipException(str(exc)) from None
        MlflowRunLink.persist(context, run_url(self.hook.tracking_uri, result["experiment_id"], result["run_id"]))
        self.log.info("trained run %s: %s", result["run_id"], result["metrics"])
        run = {"experiment_id": result["experiment_id"], "run_id": result["run_id"]}
        for where in chart_locations(self.hook.tracking_uri, **run, artifacts=result["charts"]):
            self.log.info("holdout chart: %s", where)
        return result


def with_overrides(settings: Mapping[str, Any], overrides: RunOverrides) -> TrainingSettings:
    """The task's training settings with the run's trigger overrides applied (typed: an integer stays one)."""
    from airflow_ml.ml.steps.step_settings import TrainingSettings

    return TrainingSettings.from_dict(settings).with_overrides(
        num_boost_round=overrides.num_boost_round,
        lgbm_params=overrides.lgbm_params(),
        search_trials=overrides.search_trials,
        search_timeout_minutes=overrides.search_timeout_minutes,
    )
