"""The first task of a scoring DAG: read the version that serves the city once, for the whole run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import Context
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_ml.operators.base_operator import MlflowBaseOperator, mlflow_errors

if TYPE_CHECKING:
    from airflow_ml.ml.steps.step_settings import ScoringSettings
    from airflow_ml.ml.steps.xcom_payloads import ResolvedModelPayload

#: The XCom key under which a skipped task still says why it scored nothing.
SKIPPED_KEY = "skipped"


class ScoringTask(MlflowBaseOperator):
    """What both tasks of a scoring DAG share: the settings dict, typed on use, and the resolution with its skips."""

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
        if resolved["status"] == score_step.REFUSED:  # another city's champion: a person must fix its alias
            self.log.error("not scoring %s.%s: %s", settings.template, settings.city, resolved["reason"])
            raise AirflowFailException(resolved["reason"])
        if resolved["status"] != score_step.SERVE:
            context["ti"].xcom_push(key=SKIPPED_KEY, value=resolved)
            self.log.warning("not scoring %s.%s: %s", settings.template, settings.city, resolved["reason"])
            raise AirflowSkipException(resolved["reason"])
        return resolved


class ResolveModelOperator(ScoringTask):
    """The first task of ``<template>.<city>.score``: read the serving version once for the whole run.

    The kill switch on the city's model (or its serving parent's) skips the run; so does a city that no model
    serves yet (:func:`~airflow_ml.ml.fallback.which_model_serves` says why): the task is skipped with the
    reason in its log and under the XCom key ``skipped``. A champion trained for another city fails it, without
    retries, naming the lineage problem (the HTTP server refuses that city with the same sentence).

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
