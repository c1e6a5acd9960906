"""The ``airflow-ml`` command: demo data, template lint, JSON Schema, city scaffolding, serving and the demo."""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from airflow_ml.cli.snapshots_command import add_snapshots_parser, snapshots_command
from airflow_ml.settings import DATA_ROOT_ENV


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``airflow-ml`` console script; returns the exit code."""
    try:
        code = _run(build_parser().parse_args(argv))
        sys.stdout.flush()  # inside the try: a reader that left (``| head``) fails the flush, not the exit
    except BrokenPipeError:
        # The reader of our output went away, as `airflow-ml schema city | head` does: stop quietly, with the
        # status of a process ended by SIGPIPE, and point stdout at /dev/null so the exit's flush cannot fail.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + 13
    return code


def build_parser() -> argparse.ArgumentParser:
    """The ``airflow-ml`` command line: every subcommand, each option with its help."""
    from airflow_ml import __version__

    parser = argparse.ArgumentParser(prog="airflow-ml", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("demo-data", help="write demo ride-hailing trips, partitioned by city and date")
    data.add_argument("--root", default=os.environ.get(DATA_ROOT_ENV), help=f"data root (default: ${DATA_ROOT_ENV})")
    data.add_argument(
        "--batch",
        default="initial",
        choices=("initial", "later", "broken"),
        help="initial: 60 days; later: the next 14 days; broken: the next 3 days, with data errors (default: initial)",
    )
    data.add_argument("--cities", nargs="+", default=None, help="demo cities (default: all)")
    data.add_argument("--seed", type=int, default=7, help="random seed: same seed, same trips (default: 7)")
    data.add_argument("--scale", type=float, default=1.0, help="multiplier of the trips per day")

    lint = commands.add_parser("lint", help="validate templates, city files and their suites; exit 1 on any error")
    lint.add_argument("root", nargs="?", default="dag_templates", help="templates folder (default: dag_templates)")
    lint.add_argument("--expectations", default="expectations", help="suites folder (default: expectations)")
    lint.add_argument(
        "--format",
        default="text",
        choices=("text", "json", "github"),
        help="text: path:line:col: message; json: one object; github: workflow commands that annotate a pull "
        "request (default: text)",
    )

    schema = commands.add_parser("schema", help="print the JSON Schema of city, group or template files, for editors")
    schema.add_argument(
        "kind", nargs="?", default="city", choices=("city", "group", "template"), help="which files (default: city)"
    )

    new_city = commands.add_parser("new-city", help="scaffold dag_templates/cities/<city>.yaml")
    new_city.add_argument("template", help="template name, e.g. ride_duration")
    new_city.add_argument("city", help="city id, e.g. porto (a readable name gets a suggested id)")
    new_city.add_argument("--root", default="dag_templates", help="templates folder (default: dag_templates)")
    new_city.add_argument("--display-name", default=None, help="readable name shown in the UI (default: the id)")
    new_city.add_argument("--group", default=None, help="a groups/<group>.yaml the city belongs to")

    demo = commands.add_parser(
        "demo", help="reset the demo's own folder var/demo/, run every demo city twice, print a summary table"
    )
    demo.add_argument("--templates", default="dag_templates", help="templates folder (default: dag_templates)")
    demo.add_argument("--expectations", default="expectations", help="suites folder (default: expectations)")

    suite = commands.add_parser("suite", help="work with expectation suites")
    suite_commands = suite.add_subparsers(dest="suite_command", required=True)
    infer = suite_commands.add_parser(
        "infer", help="write a starter GX suite inferred from a data sample (types, nulls, ranges, sets, row count)"
    )
    infer.add_argument(
        "data", nargs="?", default=None, help="a .parquet or .csv file, or a folder of date=YYYY-MM-DD partitions"
    )
    infer.add_argument("-o", "--output", default=None, help="suite file to write (default: print to stdout)")
    infer.add_argument("--name", default=None, help="suite name (default: the output file's stem, or 'inferred')")
    infer.add_argument("--format", default=None, choices=("parquet", "csv"), help="default: file suffix, or parquet")
    infer.add_argument("--sample-rows", type=_at_least(1, int), default=100_000, help="rows sampled (default: 100000)")
    infer.add_argument("--margin", type=_at_least(0, float), default=0.1, help="widen ranges by this share (0.1)")
    infer.add_argument("--max-categories", type=_at_least(0, int), default=50, help="largest value set inferred (50)")
    infer.add_argument("--force", action="store_true", help="overwrite an existing output file")
    from airflow_ml.cli.fleet_suite_command import add_fleet_arguments

    add_fleet_arguments(infer)

    serving = commands.add_parser(
        "serving", help="which model serves a city, and why (its own champion, its fallback parent's, or none)"
    )
    serving.add_argument("city", help="city id or DAG id, e.g. berlin or ride_duration.berlin")
    serving.add_argument("--root", default="dag_templates", help="templates folder (default: dag_templates)")
    serving.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: the Airflow connection)")
    serving.add_argument("--conn-id", default="mlflow_default", help="Airflow connection of type mlflow")
    serving.add_argument("--json", action="store_true", help="print the answer as JSON")

    from airflow_ml.cli import run_commands
    from airflow_ml.cli.kill_switch_command import add_kill_switch_parsers
    from airflow_ml.cli.serve_command import add_serve_parser

    run_commands.add_parsers(commands)
    add_snapshots_parser(commands)
    add_serve_parser(commands, _at_least)
    add_kill_switch_parsers(commands)
    return parser


def _run(args: argparse.Namespace) -> int:
    from airflow_ml.cli import run_commands

    if args.command == "snapshots":
        return snapshots_command(args)
    if args.command in ("run", "status", "env", "demo"):
        return {
            "run": run_commands.run_command,
            "status": run_commands.status_command,
            "env": run_commands.env_command,
            "demo": run_commands.demo_command,
        }[args.command](args)
    if args.command == "serving":
        from airflow_ml.cli.serving_command import serving_command

        return serving_command(args)
    if args.command == "serve":
        from airflow_ml.cli.serve_command import serve_command

        return serve_command(args)
    if args.command in ("disable", "enable"):
        from airflow_ml.cli.kill_switch_command import kill_switch_command

        return kill_switch_command(args)
    if args.command == "demo-data":
        return _demo_data(args)
    if args.command == "lint":
        from airflow_ml.cli.lint_command import lint

        return lint(Path(args.root), Path(args.expectations), args.format)
    if args.command == "schema":
        from airflow_ml.templates.schema import file_schema

        print(json.dumps(file_schema(args.kind), indent=2))
        return 0
    if args.command == "new-city":
        return _new_city(args)
    if args.command == "suite":
        if args.template is not None or args.data is None:
            from airflow_ml.cli.fleet_suite_command import suite_fleet_command

            return suite_fleet_command(args)
        return _suite_infer(args)
    raise AssertionError(f"no handler for {args.command!r}")  # argparse allows only the commands above


def _demo_data(args: argparse.Namespace) -> int:
    from airflow_ml.data.demo import DEMO_CITIES, write_demo_data

    if not args.root:
        print(f"airflow-ml demo-data: give --root or set {DATA_ROOT_ENV}", file=sys.stderr)
        return 2
    try:
        files = write_demo_data(
            args.root, cities=args.cities or DEMO_CITIES, batch=args.batch, seed=args.seed, scale=args.scale
        )
    except ValueError as exc:
        print(f"airflow-ml demo-data: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(files)} partition file(s) of batch {args.batch!r} under {args.root}/raw/trips")
    return 0


def _new_city(args: argparse.Namespace) -> int:
    from airflow_ml.templates import load_city_configs
    from airflow_ml.templates.files import unknown_template
    from airflow_ml.templates.models import CITY_ID_PATTERN, slugify

    root = Path(args.root)
    city = args.city
    if not re.fullmatch(CITY_ID_PATTERN, city):
        print(
            f"airflow-ml new-city: {city!r} is not a valid city id; use {slugify(city)!r} and --display-name",
            file=sys.stderr,
        )
        return 2
    unknown = unknown_template(args.template, root / "templates")
    if unknown:
        print(f"airflow-ml new-city: {unknown}", file=sys.stderr)
        return 2
    path = root / "cities" / f"{city}.yaml"
    if path.exists():
        print(f"airflow-ml new-city: {path} already exists; edit it instead", file=sys.stderr)
        return 2
    lines = [f"city: {city}", f"template: {args.template}", f"display_name: {json.dumps(args.display_name or city)}"]
    if args.group:
        lines.append(f"group: {args.group}")
    lines += [
        "# Only what differs from the template (and group). Examples:",
        "# dag:",
        '#   schedule: "0 3 * * *"',
        "# training:",
        "#   params:",
        "#     num_leaves: 63",
        "# gate:",
        "#   min_improvement: 0.01",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    broken = [e for e in load_city_configs(root)[1] if Path(e.file) == path]
    if broken:
        path.unlink()
        print(f"airflow-ml new-city: {broken[0]}", file=sys.stderr)
        return 1
    print(f"wrote {path}; its data goes under the template's source with city={city!r}")
    return 0


def _at_least(minimum: float, kind: type[int] | type[float]) -> Callable[[str], float]:
    """An argparse type: a number of ``kind`` that is at least ``minimum`` (finite for floats)."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a{'n integer' if kind is int else ' number'}") from None
        if not (value >= minimum and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"{text!r} must be a finite number >= {minimum:g}")
        return value

    return parse


def _suite_infer(args: argparse.Namespace) -> int:
    from airflow_ml.data.sample import read_sample
    from airflow_ml.exceptions import DataError
    from airflow_ml.validation.infer import infer_suite

    output = Path(args.output) if args.output else None
    if output is not None and output.exists() and not args.force:
        print(f"airflow-ml suite infer: {output} already exists; give another -o file or --force", file=sys.stderr)
        return 1
    try:
        sample = read_sample(args.data, fmt=args.format, sample_rows=args.sample_rows)
        suite = infer_suite(
            sample.frame,
            name=args.name or (output.stem if output else "inferred"),
            margin=args.margin,
            max_categories=args.max_categories,
            batch_rows=sample.batch_rows,
            source=sample.describe(),
        )
    except (DataError, ValueError) as exc:
        print(f"airflow-ml suite infer: {exc}", file=sys.stderr)
        return 1
    text = json.dumps(suite, indent=2, ensure_ascii=False) + "\n"
    summary = (
        f"{len(suite['expectations'])} expectation(s) on {sample.frame.shape[1]} column(s), inferred from "
        f"{len(sample.frame)} of {sample.total_rows} row(s) of {args.data}"
    )
    if output is None:
        sys.stdout.write(text)
        print(summary, file=sys.stderr)  # stdout stays pure JSON, ready to redirect
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    print(f"wrote {output}: {summary}; review and edit it before a template names it (suite: {suite['name']})")
    return 0
