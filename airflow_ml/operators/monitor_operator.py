"""Watch one city's champion once labels arrive: the monitor DAG's mapped task, one instance per city."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import AssetAlias, Context
from airflow.sdk.exceptions import AirflowFailException

from airflow_ml import settings as run_settings
from airflow_ml.hooks.storage_credentials import storage_options
from airflow_ml.operators.base_operator import MlflowBaseOperator, airflow_lineage, airflow_run_url, mlflow_errors
from airflow_ml.operators.champion_assets import champion_alias, champion_asset_for

if TYPE_CHECKING:
    from airflow_ml.ml.steps.xcom_payloads import MonitorPayload

#: Verdicts a person hears of: the supervisor demoted the champion, or would have (mode alert).
NOTIFIED = ("demote", "alert")


class MonitorOperator(MlflowBaseOperator):
    """Join a city's labels to its prediction log, compute the live metric per window, let the supervisor decide.

    Calls :func:`airflow_ml.monitoring.monitor_step.monitor_city` for the run's day (its logical date, or when
    it was triggered). A demotion, or a challenger in shadow promoted on live rows, emits the city's champion
    Asset event (``decision`` ``demoted`` or ``promoted-shadow``) through the
    :class:`~airflow.sdk.AssetAlias` outlet; a demotion or an alert calls the city's notifiers (with the
    payload as ``monitor`` in the context) or, without any, logs a warning; the decision record is written
    either way.

    Args:
        city: The city watched (the DAG maps this task over the template's cities).
        settings: Each city's :class:`~airflow_ml.ml.steps.step_settings.MonitorSettings` as a dict, by city.
        notifiers: Callables taking a context, by city (the factory builds them from ``dag.on_failure``).
        data_root: Fills ``{data_root}``; defaults to ``AIRFLOW_ML_DATA_ROOT``. The Airflow connections (type
            ``aws``) of a prediction log or labels on ``s3://`` are the city's settings'.
        outlets: Defaults to the fleet's champion AssetAlias.
    """

    # Nothing from YAML is rendered; the city id is a validated name handed in by the mapping.
    template_fields: Sequence[str] = ()
    ui_color = "#e2f0d9"

    def __init__(
        self,
        *,
        city: str,
        settings: Mapping[str, Mapping[str, Any]],
        notifiers: Mapping[str, Sequence[Callable[..., Any]]] | None = None,
        data_root: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("outlets", [champion_alias()])
        super().__init__(**kwargs)
        self.city = city
        self.settings = dict(settings)
        self.notifiers = dict(notifiers or {})
        self.data_root = data_root

    def execute(self, context: Context) -> MonitorPayload:
        from airflow_ml.ml.steps.step_settings import MonitorSettings
        from airflow_ml.monitoring.monitor_step import monitor_city

        if self.city not in self.settings:
            raise AirflowFailException(f"no monitor settings for city {self.city!r}; it has {sorted(self.settings)}")
        city_settings = MonitorSettings.from_dict(self.settings[self.city])
        root = run_settings.data_root(self.data_root)
        moment = context.get("logical_date") or context["dag_run"].run_after
        with mlflow_errors(self.hook, f"monitoring {city_settings.model_name!r}"):
            payload, _record = monitor_city(
                self.hook.get_conn(),
                city_settings,
                day=moment.date(),
                data_root=root,
                context={
                    "airflow_run_id": context["run_id"],
                    "airflow_run_url": airflow_run_url(context),
                    **_lineage(context),
                },
                artifact_root=self.hook.artifact_root,
                storage_options=storage_options(
                    city_settings.predictions_uri(root), aws_conn_id=city_settings.predictions_conn_id
                ),
                label_storage_options=storage_options(
                    city_settings.labels_uri(root), aws_conn_id=city_settings.labels_conn_id
                ),
            )
        name = payload["model_name"]
        self.log.info("%s: %s (%s); record %s", name, payload["status"], payload["reason"], payload["record_uri"])
        if payload["disabled"]:
            self.log.info("%s is %s: live metrics recorded, the supervisor only alerts", name, payload["disabled"])
        if payload["demoted"]:
            self._announce(context, payload, version=payload["restored_version"], decision="demoted")
        if payload["promoted_version"]:
            self.log.info(
                "%s: challenger v%s promoted on live rows (%s)", name, payload["promoted_version"], payload["shadow"]
            )
            self._announce(context, payload, version=payload["promoted_version"], decision="promoted-shadow")
        if payload["status"] in NOTIFIED:
            self._notify(context, payload)
        return payload

    def _announce(self, context: Context, payload: MonitorPayload, *, version: str | None, decision: str) -> None:
        for alias in (o for o in self.outlets if isinstance(o, AssetAlias)):
            context["outlet_events"][alias].add(
                champion_asset_for(payload["model_name"]),
                extra={
                    "model_name": payload["model_name"],
                    "version": version,
                    "previous_version": payload["champion_version"],
                    "decision": decision,
                    "run_id": context["run_id"],
                },
            )

    def _notify(self, context: Context, payload: MonitorPayload) -> None:
        notifiers = self.notifiers.get(self.city) or ()
        if not notifiers:
            self.log.warning(
                "supervisor %s for %s and no notifier is configured (dag.on_failure): %s; record %s",
                payload["status"],
                payload["model_name"],
                payload["reason"],
                payload["record_uri"],
            )
            return
        for notifier in notifiers:
            notifier({**context, "monitor": payload})


def _lineage(context: Context) -> dict[str, str]:
    return {key.replace(".", "_"): value for key, value in airflow_lineage(context).items()}
