"""The ``airflow-ml`` command: demo data, template lint, and the end-to-end demo."""

from __future__ import annotations

import argparse
import os
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

    demo = commands.add_parser("demo", help="run every demo city end to end twice and print a summary table")
    demo.add_argument("--templates", default="dag_templates")
    demo.add_argument("--expectations", default="expectations")

    args = parser.parse_args(argv)
    if args.command == "demo-data":
        return _demo_data(args)
    if args.command == "lint":
        return _lint(Path(args.root), Path(args.expectations))
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
