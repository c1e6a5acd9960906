"""Train the city's LightGBM model on the run's snapshot and log it to MLflow."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import Context
from airflow.sdk.exceptions import AirflowSkipException

from airflow_ml.hooks.storage_credentials import DEFAULT_AWS_CONN_ID, storage_options
from airflow_ml.links.mlflow_links import MlflowRunLink, run_url
from airflow_ml.operators.base import (
    MlflowBaseOperator,
    airflow_lineage,
    close_abandoned_runs,
    mlflow_errors,
    run_overrides,
)
from airflow_ml.operators.overrides import RunOverrides
from airflow_ml.operators.validate import snapshot_uri


class TrainModelOperator(MlflowBaseOperator):
    """Split the snapshot by time, fit preprocessing on the training rows, train LightGBM, log everything.

    Args:
        snapshot: The snapshot task's XCom or a snapshot URI; templated.
        experiment: MLflow experiment name.
        target: Column to predict.
        features: Feature columns in model order.
        categorical_features: Subset of features that are categories.
        time_column: Column the time-based split follows.
        task: ``regression`` or ``binary``.
        metric: Metric of the template (``rmse``, ``auc``...).
        validation_fraction: Share of the newest rows before the holdout used for early stopping.
        holdout_fraction: Share of the newest rows kept for the gate.
        num_boost_round: Boosting rounds; the run's ``num_boost_round`` Param overrides it.
        early_stopping_rounds: Rounds without improvement before training stops.
        seed: Random seed (training is deterministic).
        num_threads: LightGBM threads (0 for all cores).
        lgbm_params: LightGBM parameters (``params`` is taken by Airflow for the DAG's Params); the run's
            ``learning_rate``, ``num_leaves`` and ``min_data_in_leaf`` Params override them.
        tags: Extra MLflow run tags (city, template...).
        config: The merged city config, logged as an artifact.
        aws_conn_id: Airflow connection (type ``aws``) for a snapshot on ``s3://``.
        class_weight: ``none`` or ``balanced`` (task binary: ``scale_pos_weight`` from the training rows).
        search: The configured search: ``trials``, ``timeout_minutes`` and ``params`` (the ranges,
            ``{param: [low, high]}`` or ``[low, high, "log"]``); None or 0 trials: no search. The run's
            ``search_trials`` (0: no search) and ``search_timeout_minutes`` Params override them.
        warm_start: Also train from the champion's booster and keep the better one on validation.
        model_name: The registered model whose champion a warm start continues (default: ``experiment``).
        fallback_min_rows: With a fallback parent: a snapshot with fewer rows trains nothing; the task records
            the data status on the city's registered model and is skipped (so are register and gate), and
            the city stays served by its champion, or else by ``parent_model``'s.
        parent_model: The city's fallback parent, recorded with the data status.

    Returns (XCom): ``run_id``, ``experiment_id``, ``model_uri``, ``metrics`` and ``warm_start``.
    """

    # Only the XCom: the trigger's overrides are read, typed, from the run's Params (see run_overrides).
    template_fields: Sequence[str] = ("snapshot",)
    operator_extra_links = (MlflowRunLink(),)
    ui_color = "#eaf7ea"

    def __init__(
        self,
        *,
        snapshot: Any,
        experiment: str,
        target: str,
        features: list[str],
        categorical_features: list[str],
        time_column: str,
        task: str = "regression",
        metric: str = "rmse",
        validation_fraction: float = 0.15,
        holdout_fraction: float = 0.15,
        num_boost_round: int = 500,
        early_stopping_rounds: int | None = 50,
        seed: int = 42,
        num_threads: int = 0,
        lgbm_params: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
        config: dict[str, Any] | None = None,
        aws_conn_id: str | None = DEFAULT_AWS_CONN_ID,
        class_weight: str = "none",
        search: dict[str, Any] | None = None,
        warm_start: bool = False,
        model_name: str | None = None,
        fallback_min_rows: int | None = None,
        parent_model: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.snapshot = snapshot
        self.experiment = experiment
        self.target = target
        self.features = features
        self.categorical_features = categorical_features
        self.time_column = time_column
        self.task = task
        self.metric = metric
        self.validation_fraction = validation_fraction
        self.holdout_fraction = holdout_fraction
        self.num_boost_round = num_boost_round
        self.early_stopping_rounds = early_stopping_rounds
        self.seed = seed
        self.num_threads = num_threads
        self.lgbm_params = lgbm_params
        self.tags = tags or {}
        self.config = config
        self.aws_conn_id = aws_conn_id
        self.class_weight = class_weight
        self.search = search or {}
        self.warm_start = warm_start
        self.model_name = model_name or experiment
        self.fallback_min_rows = fallback_min_rows
        self.parent_model = parent_model

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_ml.data.snapshot import load_manifest
        from airflow_ml.ml.pipeline import SplitSettings, train_and_log
        from airflow_ml.ml.train import TrainSpec

        overrides = run_overrides(context)
        self._check_enough_data(context)
        # Typed by the overrides: an integer parameter stays an integer (LightGBM refuses num_leaves=31.0).
        params = {**(self.lgbm_params or {}), **overrides.lgbm_params()}
        spec = TrainSpec(
            features=list(self.features),
            categorical=list(self.categorical_features),
            target=self.target,
            task=self.task,
            metric=self.metric,
            num_boost_round=self.num_boost_round if overrides.num_boost_round is None else overrides.num_boost_round,
            early_stopping_rounds=self.early_stopping_rounds,
            seed=self.seed,
            num_threads=self.num_threads,
            params=params,
            class_weight=self.class_weight,
        )
        split = SplitSettings(self.time_column, self.validation_fraction, self.holdout_fraction)
        uri = snapshot_uri(self.snapshot)
        options = storage_options(uri, aws_conn_id=self.aws_conn_id)
        with mlflow_errors(self.hook, f"training {self.experiment!r}"):
            for run_id in close_abandoned_runs(self.hook.get_conn(), self.experiment, context):
                self.log.warning("marked run %s of an earlier, unfinished try KILLED", run_id)
            result = train_and_log(
                self.hook.get_conn(),
                load_manifest(uri, storage_options=options),
                spec,
                split,
                experiment=self.experiment,
                artifact_root=self.hook.artifact_root,
                tags={**self.tags, **airflow_lineage(context)},
                config=self.config,
                storage_options=options,
                search=self._search_settings(overrides),
                warm_start_from=self.model_name if self.warm_start else None,
            )
        MlflowRunLink.persist(context, run_url(self.hook.tracking_uri, result["experiment_id"], result["run_id"]))
        self.log.info("trained run %s: %s", result["run_id"], result["metrics"])
        return result

    def _check_enough_data(self, context: Context) -> None:
        """Skip training when the snapshot is too small for a model of the city's own (see ``fallback_min_rows``)."""
        if self.fallback_min_rows is None:
            return
        from airflow_ml.ml.fallback import record_data_status

        rows = int(self.snapshot["row_count"]) if isinstance(self.snapshot, dict) else None
        if rows is None:
            raise ValueError(f"snapshot {self.snapshot!r} carries no row_count; pass the snapshot task's XCom")
        enough = record_data_status(
            self.hook.get_conn(),
            self.model_name,
            rows=rows,
            min_rows=self.fallback_min_rows,
            run_id=context["run_id"],
            parent_model=self.parent_model,
        )
        if not enough:
            raise AirflowSkipException(
                f"{rows} rows < fallback.min_rows {self.fallback_min_rows}: no model of {self.model_name!r} is "
                f"trained; it stays served by its champion, or else by its parent {self.parent_model!r} "
                f"(airflow-ml serving tells which)"
            )

    def _search_settings(self, overrides: RunOverrides) -> Any:
        """The search to run, or None: trials and time come from the run's overrides, else from the template."""
        from airflow_ml.ml.search import SearchSettings
        from airflow_ml.templates.training_spec import LightGBMParams

        trials = overrides.search_trials
        if trials is None:
            trials = int(self.search.get("trials") or 0)
        minutes = overrides.search_timeout_minutes
        if minutes is None:
            minutes = float(self.search.get("timeout_minutes") or 10)
        if not trials:
            return None
        ranges = self.search.get("params")
        if not ranges:
            raise ValueError(
                f"search_trials is {int(trials)} but no search ranges are configured; set training.search.params"
            )
        integers = {name for name, info in LightGBMParams.model_fields.items() if info.annotation is int}
        return SearchSettings.from_config(ranges, trials=trials, timeout_minutes=minutes, integers=integers)
