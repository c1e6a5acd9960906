"""``airflow-ml snapshots prune``: delete the snapshots that no registered version needs, beyond the newest few."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from airflow_ml.cli.city_lookup import registry_client
from airflow_ml.exceptions import ConfigError, DataError
from airflow_ml.settings import DATA_ROOT_ENV


def add_snapshots_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``snapshots prune`` to the ``airflow-ml`` command."""
    snapshots = commands.add_parser("snapshots", help="look after the runs' snapshots under the data root")
    actions = snapshots.add_subparsers(dest="snapshots_command", required=True)
    prune = actions.add_parser(
        "prune",
        help="keep every snapshot a registered model version points at and the newest retention.keep_last others "
        "of each DAG; delete the rest (prints what it keeps and why, and what it deletes)",
    )
    prune.add_argument("--template", default=None, help="only this template's snapshots (default: every template)")
    prune.add_argument("--root", default="dag_templates", help="templates folder (default: dag_templates)")
    prune.add_argument("--dry-run", action="store_true", help="print what would be deleted; delete nothing")
    prune.add_argument(
        "--data-root", default=os.environ.get(DATA_ROOT_ENV), help=f"data root (default: ${DATA_ROOT_ENV})"
    )
    prune.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: the Airflow connection)")
    prune.add_argument("--conn-id", default="mlflow_default", help="Airflow connection of type mlflow")
    prune.add_argument("--aws-conn-id", default="aws_default", help="Airflow connection of type aws, for s3://")
    prune.add_argument(
        "--prune-old-layout",
        action="store_true",
        help="also delete unregistered snapshots of the old layout <data root>/snapshots/<city>/<run> "
        "(kept and reported otherwise)",
    )


def snapshots_command(args: argparse.Namespace) -> int:
    """Run ``snapshots prune``; 0 when done (problems are warned on stderr), 2 when nothing could be pruned."""
    from airflow_ml.ml.snapshot_prune import PruneRefused, prune_snapshots
    from airflow_ml.templates.retention_policies import retention_policies

    name = "airflow-ml snapshots prune"
    if not args.data_root:
        print(f"{name}: give --data-root or set {DATA_ROOT_ENV}", file=sys.stderr)
        return 2
    try:
        policies = retention_policies(Path(args.root), args.template)
    except ConfigError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    for error in policies.errors:
        print(f"{name}: warning: {error.file} does not load; its DAG's snapshots are all kept", file=sys.stderr)
    root = f"{args.data_root.rstrip('/')}/snapshots"
    try:
        report = prune_snapshots(
            registry_client(args.tracking_uri, args.conn_id),
            root,
            keep_last=policies.keep_last,
            kept=policies.kept,
            model_names=policies.model_names,
            # One template: its DAGs and cities; else every snapshot, those of unknown templates too (kept).
            templates=policies.templates if args.template else None,
            old_layout_cities=policies.cities if args.template else None,
            prune_old_layout=args.prune_old_layout,
            dry_run=args.dry_run,
            storage_options=_storage_options(root, args.aws_conn_id),
        )
    except (PruneRefused, DataError) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    print("\n".join(report.lines()))
    for problem in report.problems:
        print(f"{name}: warning: {problem}", file=sys.stderr)
    return 0


def _storage_options(root: str, aws_conn_id: str) -> dict[str, dict[str, object]]:
    if "://" not in root or root.startswith("file://"):
        return {}
    from airflow_ml.hooks.storage_credentials import storage_options

    return storage_options(root, aws_conn_id=aws_conn_id)
