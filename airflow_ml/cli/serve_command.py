"""``airflow-ml serve``: the fleet's HTTP server (FastAPI on uvicorn), every city of the templates folder.

The cities come from the YAML (``--root``), the registry from ``--tracking-uri`` or the ``mlflow_default``
connection (as ``airflow-ml serving``), the prediction log's root from each city's ``scoring.output`` (default:
the data root, ``--data-root`` or ``$AIRFLOW_ML_DATA_ROOT``). One process: the model cache is the process's.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_ml.exceptions import ConfigError
from airflow_ml.scoring.request_buffer import DEFAULT_FLUSH_ROWS, DEFAULT_FLUSH_SECONDS, DEFAULT_MAX_ROWS
from airflow_ml.settings import DATA_ROOT_ENV

if TYPE_CHECKING:
    from airflow_ml.scoring.http_fleet import ServedCity
    from airflow_ml.templates.models import CityConfig

#: The server's defaults: what ``airflow-ml serve`` starts with, and what the docs say.
DEFAULT_PORT = 8000
DEFAULT_MAX_MODELS = 32
DEFAULT_ALIAS_TTL = 30.0


def add_serve_parser(commands: argparse._SubParsersAction, at_least: Callable[[float, Any], Any]) -> None:
    """Add ``serve`` to the ``airflow-ml`` command (``at_least`` makes its bounded number types)."""
    serve = commands.add_parser(
        "serve", help="the fleet's HTTP server: POST /v1/models/<template>/<city>:predict with the city's champion"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=at_least(1, int), default=DEFAULT_PORT, help=f"default: {DEFAULT_PORT}")
    serve.add_argument(
        "--max-models",
        type=at_least(1, int),
        default=DEFAULT_MAX_MODELS,
        help=f"loaded models kept in memory at most, least recently used out first (default: {DEFAULT_MAX_MODELS})",
    )
    serve.add_argument(
        "--alias-ttl",
        type=at_least(0, float),
        default=DEFAULT_ALIAS_TTL,
        help="seconds a city's champion, fallback and kill switch are trusted before the registry is read again: "
        f"a moved champion is served at most this long after the move (default: {DEFAULT_ALIAS_TTL:g})",
    )
    serve.add_argument(
        "--root", "--templates-root", default="dag_templates", help="templates folder (default: dag_templates)"
    )
    serve.add_argument(
        "--data-root", default=os.environ.get(DATA_ROOT_ENV), help=f"data root (default: ${DATA_ROOT_ENV})"
    )
    serve.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: the Airflow connection)")
    serve.add_argument("--conn-id", default="mlflow_default", help="Airflow connection of type mlflow")
    serve.add_argument(
        "--log-flush-rows",
        type=at_least(1, int),
        default=DEFAULT_FLUSH_ROWS,
        help="requests' rows are buffered per city and day, and written as one file of the prediction log once "
        f"this many wait (default: {DEFAULT_FLUSH_ROWS})",
    )
    serve.add_argument(
        "--log-flush-seconds",
        type=at_least(0.1, float),
        default=DEFAULT_FLUSH_SECONDS,
        help="...or once the oldest has waited this long (and at shutdown); also the pause before a failed write "
        f"is tried again (default: {DEFAULT_FLUSH_SECONDS:g})",
    )
    serve.add_argument(
        "--log-buffer-rows",
        type=at_least(1, int),
        default=DEFAULT_MAX_ROWS,
        help="the most rows buffered, all cities together, while the log cannot be written; a request that does "
        f"not fit gets --on-log-failure's answer (default: {DEFAULT_MAX_ROWS})",
    )
    serve.add_argument(
        "--on-log-failure",
        default="refuse",
        choices=("refuse", "serve"),
        help="when a request's rows cannot join the prediction log (its buffer is full): refuse (503, nothing "
        "served) or serve (answer with logged: false, log the error, count it in /v1/health) (default: refuse)",
    )


def serve_command(args: argparse.Namespace) -> int:
    """Start the server; returns when it stops (0), or 2 before it starts on bad input."""
    from airflow_ml.templates import load_city_configs

    name = "airflow-ml serve"
    configs, errors = load_city_configs(Path(args.root))
    for error in errors:
        print(f"{name}: warning: {error.file} does not load, its city is not served (airflow-ml lint)", file=sys.stderr)
    if not configs:
        print(f"{name}: no city to serve in {args.root}/cities; give the templates folder with --root", file=sys.stderr)
        return 2
    try:
        fleet = served_cities(configs, args.data_root)
        app = build_app(fleet, args)
    except ConfigError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as exc:
        print(f"{name}: cannot read the registry: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    templates = sorted({city.template for city in fleet})
    print(
        f"{name}: {len(fleet)} cities of {templates} on http://{args.host}:{args.port} (at most {args.max_models} "
        f"models loaded, champions read again after {args.alias_ttl:g} s)",
        file=sys.stderr,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


def build_app(fleet: Sequence[ServedCity], args: argparse.Namespace) -> Any:
    """The FastAPI application of ``fleet`` with the options of ``args``."""
    from airflow_ml.cli.city_lookup import registry_client
    from airflow_ml.ml.model_cache import ModelCache
    from airflow_ml.scoring.http_app import create_app

    if args.log_buffer_rows < args.log_flush_rows:
        raise ConfigError(
            "airflow-ml serve",
            [
                f"--log-buffer-rows {args.log_buffer_rows} is below --log-flush-rows {args.log_flush_rows}: the "
                "buffer must hold at least one flush; raise --log-buffer-rows"
            ],
        )
    client = registry_client(args.tracking_uri, args.conn_id)
    cache = ModelCache(client, max_models=args.max_models, alias_ttl=args.alias_ttl)
    return create_app(
        fleet,
        cache,
        client=client,
        alias_ttl=args.alias_ttl,
        on_log_failure=args.on_log_failure,
        log_flush_rows=args.log_flush_rows,
        log_flush_seconds=args.log_flush_seconds,
        log_buffer_rows=args.log_buffer_rows,
    )


def served_cities(configs: Sequence[CityConfig], data_root: str | None) -> list[ServedCity]:
    """What the server needs of each city: its model, its fallback parent, its features and its prediction log.

    A city without a ``scoring:`` section logs under the data root with the row's features as its id, as
    ``scoring:``'s defaults say.

    Raises:
        ConfigError: when a city's log root needs the data root and none is set.
    """
    from airflow_ml.scoring.http_fleet import ServedCity

    cities = []
    for config in configs:
        scoring = config.scoring
        output = scoring.output if scoring is not None else "{data_root}"
        if "{data_root}" in output and not data_root:
            raise ConfigError(
                DATA_ROOT_ENV,
                [
                    f"{config.dag_id}'s prediction log goes under the data root ({output}): give --data-root or set "
                    f"{DATA_ROOT_ENV}"
                ],
            )
        root = output.format(data_root=(data_root or "").rstrip("/"))  # ScoringSpec.output_root, None allowed
        cities.append(
            ServedCity(
                template=config.template,
                city=config.city,
                model_name=config.model_name,
                parent_model_name=config.parent_model_name,
                features=tuple(config.dataset.features),
                output_root=root,
                key_columns=tuple(scoring.key_columns) if scoring is not None else (),
                keep_columns=tuple(scoring.keep_columns) if scoring is not None else (),
                storage_options=_storage_options(root, scoring.conn_id if scoring is not None else "aws_default"),
                column_kinds=_column_kinds(config),
            )
        )
    return cities


def _column_kinds(config: CityConfig) -> dict[str, str]:
    """Each column's kind in the city's dataset contract (the most specific when several rules name it)."""
    from airflow_ml.factory.dataset_contract import data_contract

    kinds: dict[str, str] = {}
    for rule in data_contract(config).rules:
        if kinds.get(rule.column, "present") == "present":
            kinds[rule.column] = rule.kind
    return kinds


def _storage_options(root: str, conn_id: str) -> dict[str, Any] | None:
    if "://" not in root or root.startswith("file://"):
        return None
    from airflow_ml.hooks.storage_credentials import storage_options

    return dict(storage_options(root, aws_conn_id=conn_id))
