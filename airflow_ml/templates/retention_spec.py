"""How many snapshots a DAG keeps beyond those the registry needs (``retention:``); the fleet's policies are in
:mod:`airflow_ml.templates.retention_policies`."""

from __future__ import annotations

from pydantic import Field

from airflow_ml.templates.base import Strict


class RetentionSpec(Strict):
    """Snapshot retention of a city's (or a fallback parent's) DAG.

    Every snapshot that a registered model version points at (its ``airflow_ml.snapshot_uri`` tag, or its
    training run's) is kept whatever these settings say; of the others, the newest ``keep_last`` are kept and
    the rest are deleted by ``airflow-ml snapshots prune`` and the daily ``airflow_ml.snapshot_retention`` DAG.
    """

    enabled: bool = Field(
        default=True, strict=True, description="false keeps every snapshot of the DAG (nothing is pruned)."
    )
    keep_last: int = Field(
        default=10,
        ge=1,
        le=10_000,
        strict=True,
        description="Snapshots kept beyond those a registered version points at: the newest N of the DAG's others.",
    )
