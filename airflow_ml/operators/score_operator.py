"""Batch scoring with the city's champion: resolve the version once, score the day into the prediction log."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import Context
from airflow.sdk.exceptions import AirflowSkipException

from airflow_ml import settings as runtime
from airflow_ml.hooks.storage_credentials import storage_options
from airflow_ml.operators.base_operator import MlflowBaseOperator, mlflow_errors

if TYPE_CHECKING:
    from airflow_ml.ml.steps.step_settings import ScoringSettings
    from airflow_ml.ml.steps.xcom_payloads import ResolvedModelPayload, ScoringPayload

#: The XCom key under which a skipped task still says why it scored nothing.
SKIPPED_KEY = "skipped"


class _ScoringTask(MlflowBaseOperator):
    """What both tasks of a scoring DAG share: the settings dict, typed on use."""

    def __init__(self, *, settings: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = dict(settings)

    @property
    def scoring_settings(self) -> ScoringSettings:
        """The task's settings, typed."""
        from airflow_ml.ml.steps.step_settings import ScoringSettings

        return ScoringSettings.from_dict(self.settings)

    def _resolve(self, context: Context) -> ResolvedModelPayload:
        from airflow_ml.scoring import score_step

        settings = self.scoring_settings
        with mlflow_errors(self.hook, f"resolving the model that serves {settings.model_name!r}"):
            resolved = score_step.resolve(self.hook.get_conn(), settings)
        if resolved["status"] != score_step.SERVE:
            context["ti"].xcom_push(key=SKIPPED_KEY, value=resolved)
            self.log.warning("not scoring %s.%s: %s", settings.template, settings.city, resolved["reason"])
            raise AirflowSkipException(resolved["reason"])
        return resolved


class ResolveModelOperator(_ScoringTask):
    """The first task of ``<template>.<city>.score``: read the serving version once for the whole run.

    The kill switch on the city's model (or its serving parent's) skips the run; so does a city that no model
    serves yet (:func:`~airflow_ml.ml.fallback.which_model_serves` says why): the task is skipped with the
    reason in its log and under the XCom key ``skipped``. A champion trained for another city fails it.

    Args:
        settings: :meth:`ScoringSettings.to_dict <airflow_ml.ml.steps.step_settings.ScoringSettings.to_dict>`.

    Returns (XCom): :class:`~airflow_ml.ml.steps.xcom_payloads.ResolvedModelPayload`: one concrete version
    (``models:/<name>/<version>``, never the alias) and the challenger to shadow.
    """

    template_fields: Sequence[str] = ()
    ui_color = "#f3e8fa"

    def execute(self, context: Context) -> ResolvedModelPayload:
        resolved = self._resolve(context)
        challenger = (
            f"; shadow: {resolved['challenger_name']} v{resolved['challenger_version']}"
            if resolved["challenger_version"]
            else ""
        )
        self.log.info(
            "scoring with %s v%s%s (%s)", resolved["model_name"], resolved["version"], challenger, resolved["reason"]
        )
        return resolved


class ScoreOperator(_ScoringTask):
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
        if payload["shadow_uri"]:
            self.log.info("shadow: challenger v%s into %s", payload["shadow_version"], payload["shadow_uri"])
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
