"""Rollback in one action: ``champion`` goes back to ``previous-champion``, recorded and announced."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import AssetAlias, Context
from airflow.sdk.exceptions import AirflowFailException

from airflow_ml.operators.base_operator import MlflowBaseOperator, refuse_bad_conf
from airflow_ml.operators.champion_assets import champion_alias, champion_asset_for

ROLLBACK_ARTIFACT = "rollback/rollback.json"


class RollbackChampionOperator(MlflowBaseOperator):
    """Move a model's ``champion`` back to its ``previous-champion``.

    ``previous-champion`` then points one step further back (as recorded when the restored version was
    promoted) or is removed. The rollback is recorded as ``rollback.*`` tags on both versions (reason,
    who, when, the Airflow run id) and as a JSON artifact of the restored version's run, and the model's
    champion Asset gets an event through the task's :class:`~airflow.sdk.AssetAlias` outlet. The task
    fails without retrying, and moves nothing, when the model is unknown (naming close matches) or has no
    previous champion.

    Args:
        model: The registered model (``<template>.<city>``, or the name its template's ``registry.name_pattern``
            gives, as the city DAG's ``model:`` tag shows); templated. None: the run's ``model`` Param.
        reason: Why; required; templated. None: the run's ``reason`` Param.
        outlets: Defaults to the fleet's champion AssetAlias, through which the model's event is emitted.
    """

    template_fields: Sequence[str] = ("model", "reason")
    ui_color = "#fde2cf"

    def __init__(self, *, model: str | None = None, reason: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("outlets", [champion_alias()])
        super().__init__(**kwargs)
        self.model = model
        self.reason = reason

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_ml.exceptions import RollbackRefused
        from airflow_ml.ml import model_registry as registry

        refuse_bad_conf(context)
        params = context["params"]
        name = str(self.model if self.model is not None else params.get("model") or "").strip()
        reason = str(self.reason if self.reason is not None else params.get("reason") or "").strip()
        if not name or not reason:
            raise AirflowFailException("a rollback needs both Params: model (e.g. 'ride_duration.berlin') and reason")
        client = self.hook.get_conn()
        who = getattr(context["dag_run"], "triggering_user_name", None) or "airflow"
        try:
            record = registry.rollback(
                client, name, reason, {"by": str(who), "airflow_run_id": context["run_id"]}, without_previous="refuse"
            )
        except RollbackRefused as exc:
            raise AirflowFailException(f"rollback refused, nothing moved: {exc}") from None
        restored = client.get_model_version(name, record["restored_version"])
        if restored.run_id:
            client.log_dict(restored.run_id, record, ROLLBACK_ARTIFACT)
        for alias in (o for o in self.outlets if isinstance(o, AssetAlias)):
            context["outlet_events"][alias].add(
                champion_asset_for(name),
                extra={
                    "model_name": name,
                    "version": record["restored_version"],
                    "previous_version": record["rolled_back_version"],
                    "decision": "rolled-back",
                    "run_id": context["run_id"],
                },
            )
        self.log.info(
            "%s: champion v%s → v%s (%s)", name, record["rolled_back_version"], record["restored_version"], reason
        )
        return record
