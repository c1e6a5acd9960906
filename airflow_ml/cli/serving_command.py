"""``airflow-ml serving <city>``: which model serves a city, and why (and whether the kill switch stops it)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from airflow_ml.cli.city_lookup import CityNotFound, find_city, registry_client
from airflow_ml.exceptions import ConfigError, ForeignChampion


def serving_command(args: argparse.Namespace) -> int:
    """Print which model serves ``args.city``; exit 0 if one does, 1 if none does or it is disabled, 2 on bad input."""
    from airflow_ml.ml.fallback import which_model_serves
    from airflow_ml.ml.kill_switch import disabled

    try:
        config = find_city(Path(args.root), args.city)
    except CityNotFound as exc:
        print(f"airflow-ml serving: {exc}", file=sys.stderr)
        return 2
    try:
        client = registry_client(args.tracking_uri, args.conn_id)
        answer = which_model_serves(client, config.model_name, config.parent_model_name)
        mark = disabled(client, config.model_name)
    except ForeignChampion as exc:
        print(f"airflow-ml serving: {exc}", file=sys.stderr)
        return 2
    except (ConfigError, ValueError, OSError) as exc:
        print(f"airflow-ml serving: cannot read the registry: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"city": config.city, **answer.to_dict(), "disabled": mark and mark.to_dict()}, indent=2))
    else:
        served = f"{answer.model_name} v{answer.version} ({answer.model_uri})" if answer.model_name else "nothing"
        if mark is not None:
            print(f"{config.city}: nothing: disabled by the kill switch (otherwise {served})\nwhy: {mark.sentence()}")
        else:
            print(f"{config.city}: {served}\nwhy: {answer.reason}")
    return 0 if answer.model_name and mark is None else 1
