"""``airflow-ml disable <city> --reason ...`` and ``airflow-ml enable <city>``: the kill switch from the shell.

The mark goes on the city's registered model (:mod:`airflow_ml.ml.kill_switch`), with who and why: batch scoring
skips the city, the HTTP server answers 503 with the reason (within its ``--alias-ttl``), the fleet view and
``airflow-ml serving`` show it. Nothing else moves: ``enable`` serves the same champion again.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from airflow_ml.cli.city_lookup import CityNotFound, find_city, registry_client
from airflow_ml.exceptions import ConfigError


def os_user() -> str:
    """Who runs the command, as the operating system knows them (``$USER`` or the uid when it has no name)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container's uid without a passwd entry
        return os.environ.get("USER") or f"uid {os.getuid()}"


def add_kill_switch_parsers(commands: argparse._SubParsersAction) -> None:
    """Add ``disable`` and ``enable`` to the ``airflow-ml`` command."""
    disable = commands.add_parser(
        "disable", help="kill switch: mark a city's model as not to be served (HTTP 503, batch scoring skips it)"
    )
    enable = commands.add_parser("enable", help="lift the kill switch: the city's champion serves again")
    for parser, reason_help in (
        (disable, "why it must not serve (kept in the record and shown by the server)"),
        (enable, "why it may serve again (kept in the record)"),
    ):
        parser.add_argument("city", help="city id or DAG id, e.g. berlin or ride_duration.berlin")
        parser.add_argument("--reason", required=parser is disable, default="", help=reason_help)
        parser.add_argument("--by", default=None, help="who does it (default: the OS user)")
        parser.add_argument("--root", default="dag_templates", help="templates folder (default: dag_templates)")
        parser.add_argument(
            "--tracking-uri", default=None, help="MLflow tracking URI (default: the Airflow connection)"
        )
        parser.add_argument("--conn-id", default="mlflow_default", help="Airflow connection of type mlflow")


def kill_switch_command(args: argparse.Namespace) -> int:
    """Run ``disable`` or ``enable``; 0 when done (or nothing to do), 2 on bad input or an unreachable registry."""
    from airflow_ml.ml import kill_switch

    name = f"airflow-ml {args.command}"
    try:
        config = find_city(Path(args.root), args.city)
    except CityNotFound as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    by = args.by if args.by is not None else os_user()
    model = config.model_name
    try:
        client = registry_client(args.tracking_uri, args.conn_id)
        if args.command == "disable":
            before = kill_switch.disabled(client, model)
            mark = kill_switch.disable(client, model, reason=args.reason, by=by)
            was = f" (it was already disabled by {before.by}: {before.reason})" if before is not None else ""
            print(
                f"disabled {model}{was}: {mark.reason} (by {mark.by}, at {mark.at}). The HTTP server answers 503 "
                f"within its --alias-ttl and batch scoring skips it; `airflow-ml enable {config.city}` serves it again"
            )
            return 0
        lifted = kill_switch.enable(client, model, by=by, reason=args.reason)
    except kill_switch.KillSwitchError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    except (ConfigError, ValueError, OSError) as exc:
        print(f"{name}: cannot reach the registry: {exc}", file=sys.stderr)
        return 2
    if lifted is None:
        print(f"{model} was not disabled: nothing changed")
    else:
        print(
            f"enabled {model}: it was disabled since {lifted.at} by {lifted.by}: {lifted.reason}. Its champion "
            "serves again (the HTTP server within its --alias-ttl)"
        )
    return 0
