"""The ``airflow-ml`` command: demo data, template lint, JSON Schema, city scaffolding and the demo."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from airflow_ml.exceptions import ConfigError
from airflow_ml.settings import DATA_ROOT_ENV


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``airflow-ml`` console script; returns the exit code."""
    parser = argparse.ArgumentParser(prog="airflow-ml", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("demo-data", help="write demo ride-hailing trips, partitioned by city and date")
    data.add_argument("--root", default=os.environ.get(DATA_ROOT_ENV), help=f"data root (default: ${DATA_ROOT_ENV})")
    data.add_argument("--batch", default="initial", choices=("initial", "later", "broken"))
    data.add_argument("--cities", nargs="+", default=None, help="demo cities (default: all)")
    data.add_argument("--seed", type=int, default=7)
    data.add_argument("--scale", type=float, default=1.0, help="multiplier of the trips per day")

    lint = commands.add_parser("lint", help="validate templates, city files and their suites; exit 1 on any error")
    lint.add_argument("root", nargs="?", default="dag_templates", help="templates folder (default: dag_templates)")
    lint.add_argument("--expectations", default="expectations", help="suites folder (default: expectations)")

    schema = commands.add_parser("schema", help="print the JSON Schema of city, group or template files, for editors")
    schema.add_argument("kind", nargs="?", default="city", choices=("city", "group", "template"))

    new_city = commands.add_parser("new-city", help="scaffold dag_templates/cities/<city>.yaml")
    new_city.add_argument("template", help="template name, e.g. ride_duration")
    new_city.add_argument("city", help="city id, e.g. porto (a readable name gets a suggested id)")
    new_city.add_argument("--root", default="dag_templates", help="templates folder (default: dag_templates)")
    new_city.add_argument("--display-name", default=None)
    new_city.add_argument("--group", default=None, help="a groups/<group>.yaml the city belongs to")

    demo = commands.add_parser("demo", help="run every demo city end to end twice and print a summary table")
    demo.add_argument("--templates", default="dag_templates")
    demo.add_argument("--expectations", default="expectations")

    args = parser.parse_args(argv)
    if args.command == "demo-data":
        return _demo_data(args)
    if args.command == "lint":
        return _lint(Path(args.root), Path(args.expectations))
    if args.command == "schema":
        from airflow_ml.templates.schema import file_schema

        print(json.dumps(file_schema(args.kind), indent=2))
        return 0
    if args.command == "new-city":
        return _new_city(args)
    from airflow_ml.demo_run import run_demo

    return run_demo(templates_root=Path(args.templates), expectations_dir=Path(args.expectations))


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
    from airflow_ml.templates.models import CITY_ID_PATTERN, slugify

    root = Path(args.root)
    city = args.city
    if not re.fullmatch(CITY_ID_PATTERN, city):
        print(
            f"airflow-ml new-city: {city!r} is not a valid city id; use {slugify(city)!r} and --display-name",
            file=sys.stderr,
        )
        return 2
    if not (root / "templates" / f"{args.template}.yaml").is_file():
        known = sorted(p.stem for p in (root / "templates").glob("*.yaml"))
        print(
            f"airflow-ml new-city: no template {args.template!r} in {root}/templates (known: {known})", file=sys.stderr
        )
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


def _lint(root: Path, expectations: Path) -> int:
    from airflow_ml.templates import load_city_configs
    from airflow_ml.validation.suites import load_suite

    if not (root / "cities").is_dir():
        print(f"airflow-ml lint: {root}/cities does not exist; give the templates folder", file=sys.stderr)
        return 2
    configs, errors = load_city_configs(root)
    for suite in sorted({c.suite for c in configs}):
        try:
            load_suite(expectations, suite)
        except ConfigError as exc:
            errors.append(exc)
    for error in errors:
        print(error, file=sys.stderr)
    print(f"{len(configs)} city config(s) valid, {len(errors)} file(s) with errors")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
