"""Batch scoring with the city's champion: resolve the version once, score the day into the prediction log."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import Context
from airflow.sdk.exceptions import AirflowSkipException

from airflow_ml import settings as runtime
from airflow_ml.hooks.storage_credentials import storage_options
from airflow_ml.operators.base_operator import mlflow_errors
from airflow_ml.operators.resolve_operator import ScoringTask

if TYPE_CHECKING:
    from airflow_ml.ml.steps.step_settings import ScoringSettings
    from airflow_ml.ml.steps.xcom_payloads import ScoringPayload


class ScoreOperator(ScoringTask):
    """Score the run's day of the city's rows with one model version, into the prediction log (and its table).

    The day is the run's logical date (or, for a run triggered by a data Asset, the day it runs after); every
    row is stamped with the version, the run id, the input's content hash and that date, so a rerun of the
    day replaces its partition with the same bytes. With ``settings.store_conn_id`` the rows are also upserted
    into the PostgreSQL table by ``prediction_id`` (:class:`~airflow_ml.hooks.prediction_store.PredictionStoreHook`).

    Args:
        settings: :meth:`ScoringSettings.to_dict <airflow_ml.ml.steps.step_settings.ScoringSettings.to_dict>`.
        resolved: The resolve task's XCom (templated). None: this task resolves the version itself (a
            hand-written DAG with one task), with the same skips.
        data_root: Fills ``{data_root}`` in the source and the output; defaults to ``AIRFLOW_ML_DATA_ROOT``.

    Returns (XCom): :class:`~airflow_ml.ml.steps.xcom_payloads.ScoringPayload`.
    """

    template_fields: Sequence[str] = ("resolved",)
    ui_color = "#efe3f7"

    def __init__(self, *, resolved: Any = None, data_root: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.resolved = resolved
        self.data_root = data_root

    def execute(self, context: Context) -> ScoringPayload:
        from airflow_ml.scoring import score_step

        settings = self.scoring_settings
        resolved = self.resolved if self.resolved is not None else self._resolve(context)
        when = scoring_time(context)
        root = runtime.data_root(self.data_root)
        options = storage_options(settings.source, settings.output_root(root), root, aws_conn_id=settings.conn_id)
        with mlflow_errors(self.hook, f"loading {resolved['model_name']!r} v{resolved['version']}"):
            try:
                scored = score_step.score(
                    self.hook.get_conn(),
                    settings,
                    resolved,
                    day=when.date(),
                    run_id=context["run_id"],
                    scored_at=when,
                    data_root=root,
                    storage_options=options,
                )
            except score_step.ScoringDisabled as stopped:
                self.log.warning("not scoring %s.%s: %s", settings.template, settings.city, stopped)
                raise AirflowSkipException(str(stopped)) from None
        payload = scored.payload
        self.log.info(
            "scored %d row(s) of %s with %s v%s into %s (input hash %s)",
            payload["row_count"],
            payload["day"],
            payload["model_name"],
            payload["model_version"],
            payload["uri"],
            payload["input_hash"],
        )
        if payload["widened_columns"]:
            self.log.info("integer column(s) %s widened to the double the signature reads", payload["widened_columns"])
        if payload["shadow_uri"]:
            self.log.info("shadow: challenger v%s into %s", payload["shadow_version"], payload["shadow_uri"])
        if payload["shadow_refused"]:
            self.log.warning("shadow: the challenger was not scored: %s", payload["shadow_refused"])
        if settings.store_conn_id:
            payload["stored_rows"] = self._store(settings, scored)
        return payload

    def _store(self, settings: ScoringSettings, scored: Any) -> int:
        from airflow_ml.hooks.prediction_store import PredictionStoreHook

        hook = PredictionStoreHook(settings.store_conn_id or "", table=settings.store_table)
        hook.create_table()
        count = hook.upsert(
            scored.logged_rows(), template=settings.template, city=settings.city, day=scored.context.scored_at.date()
        )
        self.log.info("upserted %d row(s) into %s (connection %r)", count, hook.table, settings.store_conn_id)
        return count


def scoring_time(context: Context) -> dt.datetime:
    """The run's logical date (UTC), or for a run without one (an Asset-triggered run) the time it runs after."""
    when = context.get("logical_date") or context["dag_run"].run_after
    return when.astimezone(dt.UTC)
