"""``airflow-ml serving <city>``: which model serves a city, and why."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_ml.exceptions import ConfigError, ForeignChampion

if TYPE_CHECKING:
    from mlflow import MlflowClient


def serving_command(args: argparse.Namespace) -> int:
    """Print which model serves ``args.city``; exit 0 when one does, 1 when none does, 2 on bad input."""
    from airflow_ml.ml.fallback import which_model_serves
    from airflow_ml.templates import load_city_configs

    configs, errors = load_city_configs(Path(args.root))
    matches = [c for c in configs if args.city in (c.city, c.dag_id)]
    if not matches:
        known = sorted(c.city for c in configs)
        broken = f"; {len(errors)} city file(s) do not load (airflow-ml lint {args.root})" if errors else ""
        print(
            f"airflow-ml serving: no city {args.city!r} in {args.root}/cities; known: {known}{broken}", file=sys.stderr
        )
        return 2
    if len(matches) > 1:
        ids = [c.dag_id for c in matches]
        print(f"airflow-ml serving: {args.city!r} is a city of several templates; name one of {ids}", file=sys.stderr)
        return 2
    config = matches[0]
    try:
        client = _client(args.tracking_uri, args.conn_id)
        answer = which_model_serves(client, config.model_name, config.parent_model_name)
    except ForeignChampion as exc:
        print(f"airflow-ml serving: {exc}", file=sys.stderr)
        return 2
    except (ConfigError, ValueError, OSError) as exc:
        print(f"airflow-ml serving: cannot read the registry: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"city": config.city, **answer.to_dict()}, indent=2))
    else:
        served = f"{answer.model_name} v{answer.version} ({answer.model_uri})" if answer.model_name else "nothing"
        print(f"{config.city}: {served}\nwhy: {answer.reason}")
    return 0 if answer.model_name else 1


def _client(tracking_uri: str | None, conn_id: str) -> MlflowClient:
    """An explicit MLflow client: the given URI, else the Airflow connection (environment or metadata DB)."""
    if tracking_uri:
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    from airflow_ml.hooks.mlflow import MlflowHook

    return MlflowHook(mlflow_conn_id=conn_id).get_conn()
