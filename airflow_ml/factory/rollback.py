"""The fleet-wide rollback DAG: one manual DAG for every city, so rollback costs no DAG per city."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Param

from airflow_ml.factory.checked_dag import CheckedConfDAG
from airflow_ml.factory.display_names import ROLLBACK_DISPLAY_NAME
from airflow_ml.factory.params import SCHEMA_DIALECT
from airflow_ml.operators.overrides import NO_CONTROL_PATTERN, REASON_MAX_LENGTH
from airflow_ml.operators.rollback_operator import RollbackChampionOperator

ROLLBACK_DAG_ID = "airflow_ml.rollback"
#: A registered model's name, whatever its template's ``registry.name_pattern``: ``ride_duration.berlin``,
#: ``main.ml.ride_duration_berlin``; the characters a pattern may give (no quote, space or slash), up to 256.
MODEL_PATTERN = r"^[a-z0-9][a-z0-9_.\-]{0,255}$"


def build_rollback_dag(dag_id: str = ROLLBACK_DAG_ID) -> CheckedConfDAG:
    """Build the manual DAG that moves a model's ``champion`` back to its ``previous-champion``.

    Trigger it with ``model`` (the city's registered model: ``<template>.<city>``, its DAG id, unless its
    template's ``registry.name_pattern`` names it, as its DAG's ``model:<name>`` tag shows) and a ``reason``; see
    :class:`~airflow_ml.operators.rollback_operator.RollbackChampionOperator` for what it records and emits.
    """
    with CheckedConfDAG(
        dag_id=dag_id,
        dag_display_name=ROLLBACK_DISPLAY_NAME,
        description="Roll a city's champion back to its previous champion (airflow-ml)",
        schedule=None,
        start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        catchup=False,
        tags=["airflow-ml", "rollback"],
        default_args={"retries": 0},
        doc_md=(
            "### Roll back a champion\n\nMoves `champion` of the model named in **model** back to its "
            "`previous-champion`, records who, why and when as `rollback.*` version tags and a JSON artifact, "
            "and emits the model's champion Asset event. Refused (nothing moves) when there is no previous champion."
        ),
    ) as dag:
        RollbackChampionOperator(task_id="rollback")  # model and reason: the run's Params
    # Set after the task exists, as for the city DAGs: the task keeps no private copy of the form.
    dag.params = {  # type: ignore[assignment]  # attrs converts the dict to ParamsDict
        "model": Param(
            None,
            "The registered model to roll back, as the city DAG's model:<name> tag shows: '<template>.<city>' "
            "(e.g. 'ride_duration.berlin'), or the name its template's registry.name_pattern gives "
            "(e.g. 'main.ml.ride_duration_berlin').",
            schema={"type": "string", "pattern": MODEL_PATTERN, "title": "Model", "$schema": SCHEMA_DIALECT},
        ),
        "reason": Param(
            None,
            "Why the champion goes back; recorded on both versions.",
            schema={
                "type": "string",
                "minLength": 1,
                "maxLength": REASON_MAX_LENGTH,
                "pattern": NO_CONTROL_PATTERN,
                "title": "Reason",
                "$schema": SCHEMA_DIALECT,
            },
        ),
    }
    return dag
