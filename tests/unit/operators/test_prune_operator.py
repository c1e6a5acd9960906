"""PruneSnapshotsOperator: its arguments, its template fields, and ``execute`` on a real MLflow registry.

What is kept and why is tested with the pruning itself (tests/unit/ml/test_snapshot_prune.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airflow_ml.factory.maintenance import build_retention_dag
from airflow_ml.operators.prune_operator import PruneSnapshotsOperator
from tests.support.task_runs import OperatorWorld, task_context


def test_init_keeps_the_templates_root_and_defaults_to_the_configured_data_root() -> None:
    task = build_retention_dag(templates_root="/somewhere").get_task("prune_snapshots")

    assert isinstance(task, PruneSnapshotsOperator)
    assert (task.templates_root, task.data_root, task.aws_conn_id) == ("/somewhere", None, "aws_default")


def test_no_field_is_templated() -> None:
    # The templates root and data root come from configuration, never rendered by Jinja.
    assert PruneSnapshotsOperator.template_fields == ()


def test_execute_keeps_the_registered_snapshot_and_a_dry_run_deletes_nothing(
    world: OperatorWorld, registration: dict[str, Any], snapshot: dict[str, Any]
) -> None:
    dag = build_retention_dag(templates_root=str(world.data_root.parent))
    task = dag.get_task("prune_snapshots")

    dry = task.execute(task_context(dag, "prune_snapshots", {"dry_run": True}))
    done = task.execute(task_context(dag, "prune_snapshots"))

    assert dry == {"kept": 1, "would_delete": 0, "dry_run": True, "problems": []}
    assert done == {"kept": 1, "deleted": 0, "dry_run": False, "problems": []}
    assert registration["version"] == "1"
    assert Path(snapshot["uri"]).is_dir()  # the registered version's snapshot, kept
