"""Snapshot retention as a task: what ``airflow-ml snapshots prune`` does, on the workers' data root and registry."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import Context

from airflow_ml import settings
from airflow_ml.hooks.storage_credentials import DEFAULT_AWS_CONN_ID, storage_options
from airflow_ml.operators.base_operator import MlflowBaseOperator, refuse_bad_conf


class PruneSnapshotsOperator(MlflowBaseOperator):
    """Delete the snapshots no registered version needs, beyond the newest ``retention.keep_last`` of each DAG.

    Reads every city and fallback parent under ``templates_root`` for its ``retention:`` (a broken file's DAG
    keeps all its snapshots), reads the whole registry (every version's snapshot lineage), then prunes
    ``<data root>/snapshots`` (see :mod:`airflow_ml.data.retention` for the rules). Old-layout snapshots
    (``<data root>/snapshots/<city>/<run>``) are kept and reported; ``airflow-ml snapshots prune
    --prune-old-layout`` deletes them. When the registry cannot be read, or holds no model at all, nothing
    is deleted and the task fails.

    The run's ``template`` Param (empty: every template) and ``dry_run`` Param (log what would be deleted,
    delete nothing) say what to prune; a conf with any other key is refused before any work.

    Args:
        templates_root: The templates folder (``dag_templates``).
        data_root: Root of raw data and snapshots; defaults to ``AIRFLOW_ML_DATA_ROOT``.
        aws_conn_id: Airflow connection (type ``aws``) for an ``s3://`` data root.

    Returns (XCom): ``kept``, ``deleted`` (or ``would_delete`` in a dry run) as counts, and ``problems``.
    """

    template_fields: Sequence[str] = ()
    ui_color = "#eef2e6"

    def __init__(
        self,
        *,
        templates_root: str,
        data_root: str | None = None,
        aws_conn_id: str | None = DEFAULT_AWS_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.templates_root = templates_root
        self.data_root = data_root
        self.aws_conn_id = aws_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from pathlib import Path

        from airflow_ml.ml.snapshot_prune import prune_snapshots
        from airflow_ml.templates.retention_policies import retention_policies

        refuse_bad_conf(context)
        params = context["params"]
        template = str(params.get("template") or "").strip() or None
        dry_run = params.get("dry_run") is True
        policies = retention_policies(Path(self.templates_root), template)
        for error in policies.errors:
            self.log.warning("%s does not load; its DAG's snapshots are all kept", error.file)
        root = f"{settings.data_root(self.data_root)}/snapshots"
        report = prune_snapshots(
            self.hook.get_conn(),
            root,
            keep_last=policies.keep_last,
            kept=policies.kept,
            model_names=policies.model_names,
            # One template: its DAGs and cities; else every snapshot, those of unknown templates too (kept).
            templates=policies.templates if template else None,
            old_layout_cities=policies.cities if template else None,
            dry_run=dry_run,
            storage_options=storage_options(root, aws_conn_id=self.aws_conn_id),
        )
        for line in report.lines():
            self.log.info("%s", line)
        for problem in report.problems:
            self.log.warning("%s", problem)
        kept = sum(v.keep for v in report.verdicts)
        gone = "would_delete" if dry_run else "deleted"
        return {"kept": kept, gone: len(report.verdicts) - kept, "dry_run": dry_run, "problems": report.problems}
