"""The fleet-wide snapshot retention DAG: one daily task prunes every template's snapshots; no DAG per city.

Parsing it reads no YAML (the task reads the templates when it runs), so it costs nothing per city, and a
broken city file only keeps that city's snapshots.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from airflow.sdk import Param

from airflow_ml.factory.checked_dag import CheckedConfDAG
from airflow_ml.factory.display_names import RETENTION_DISPLAY_NAME
from airflow_ml.factory.params import SCHEMA_DIALECT
from airflow_ml.operators.prune_operator import PruneSnapshotsOperator
from airflow_ml.templates.base import NAME_PATTERN

RETENTION_DAG_ID = "airflow_ml.snapshot_retention"


def build_retention_dag(
    *,
    templates_root: str | Path,
    dag_id: str = RETENTION_DAG_ID,
    schedule: str | None = "30 4 * * *",
    retries: int = 1,
) -> CheckedConfDAG:
    """Build the daily DAG that prunes snapshots as ``airflow-ml snapshots prune`` does.

    Every snapshot a registered model version points at is kept, and the newest ``retention.keep_last`` others
    of each city's DAG; see :class:`~airflow_ml.operators.prune_operator.PruneSnapshotsOperator`. Trigger it by
    hand with ``dry_run`` to see what it would delete, or with ``template`` to prune one template.
    """
    with CheckedConfDAG(
        dag_id=dag_id,
        dag_display_name=RETENTION_DISPLAY_NAME,
        description="Prune the snapshots that no registered model version needs (airflow-ml retention)",
        schedule=schedule,
        start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        catchup=False,
        max_active_runs=1,
        tags=["airflow-ml", "maintenance"],
        default_args={"retries": retries, "retry_delay": dt.timedelta(minutes=10)},
        doc_md=(
            "### Snapshot retention\n\nKeeps every snapshot that a registered model version points at "
            "(`airflow_ml.snapshot_uri`), and the newest `retention.keep_last` others of each city's DAG; "
            "deletes the rest. Prunes nothing, and fails, when the registry cannot be read."
        ),
    ) as dag:
        PruneSnapshotsOperator(
            task_id="prune_snapshots",
            templates_root=str(templates_root),
        )
    # Set after the task exists, as for the city DAGs: the task keeps no private copy of the form.
    dag.params = {  # type: ignore[assignment]  # attrs converts the dict to ParamsDict
        "template": Param(
            None,
            "Only this template's snapshots (empty: every template).",
            schema={
                "type": ["null", "string"],
                "pattern": NAME_PATTERN,
                "title": "Template",
                "$schema": SCHEMA_DIALECT,
            },
        ),
        "dry_run": Param(
            False,
            "Log what would be deleted; delete nothing.",
            schema={"type": "boolean", "title": "Dry run", "$schema": SCHEMA_DIALECT},
        ),
    }
    return dag
