"""``airflow-ml suite infer --template T``: one suite for every city of a template, and per city what differs.

The cities' data is read where their runs read it (the template's ``dataset.source`` under the data root), sampled
as ``suite infer`` samples one path, and restricted to the columns the template knows. The shared suite is written
as GX JSON (``-o``, default ``expectations/<suite>.json``); a city whose values differ gets the sibling file
``<suite>.<city>.yaml`` that the suite loader merges over it (see :mod:`airflow_ml.validation.fleet_suite`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from airflow_ml.embedded import effective_environment
from airflow_ml.settings import DATA_ROOT_ENV
from airflow_ml.templates.suite_files import SUITE_SUFFIXES

_PREFIX = "airflow-ml suite infer"


def add_fleet_arguments(infer: argparse.ArgumentParser) -> None:
    """Add ``--template``, ``--root`` and ``--data-root`` to ``suite infer``."""
    infer.add_argument(
        "--template", default=None, help="infer one suite for every city of this template (instead of a data path)"
    )
    infer.add_argument("--root", default="dag_templates", help="templates folder, with --template (dag_templates)")
    infer.add_argument(
        "--data-root",
        default=None,
        help=f"with --template (default: ${DATA_ROOT_ENV}, else the embedded default's when AIRFLOW_HOME is unset)",
    )


def suite_fleet_command(args: argparse.Namespace) -> int:
    """Infer and write a template's shared suite and its cities' overrides; 0 when written, 1 or 2 when not."""
    from airflow_ml.templates import load_city_configs
    from airflow_ml.templates.files import unknown_template

    if (args.data is None) == (args.template is None):
        both = "not both" if args.data else "one of them"
        print(f"{_PREFIX}: give a data path or --template <template>, {both}", file=sys.stderr)
        return 2
    root = Path(args.root)
    configs, errors = load_city_configs(root)
    unknown = unknown_template(args.template, root / "templates")
    if unknown:
        print(f"{_PREFIX}: {unknown}", file=sys.stderr)
        return 2
    cities = [c for c in configs if c.template == args.template]
    broken = f"; {len(errors)} city file(s) do not load: airflow-ml lint {root}" if errors else ""
    if not cities:
        print(f"{_PREFIX}: no city of template {args.template!r} in {root}/cities{broken}", file=sys.stderr)
        return 1
    if errors:
        print(f"{_PREFIX}: {len(errors)} city file(s) do not load and are left out: airflow-ml lint {root}")
    named = [c.suite for c in cities if c.suite is not None]  # a city checked by a GX context alone names none
    suite_name = Counter(named).most_common(1)[0][0] if named else None
    for other in [c for c in cities if c.suite != suite_name]:
        shown = f"names suite {other.suite!r}" if other.suite else "is checked by its GX context alone"
        print(f"{_PREFIX}: {other.city} {shown}, not suite {suite_name!r}: left out")
    cities = [c for c in cities if c.suite == suite_name]
    if suite_name is None:  # every city is checked by a GX context alone: infer the suite the template may add
        suite_name = args.template
        print(
            f"{_PREFIX}: no city of {args.template!r} names a suite (each is checked by its GX context alone); "
            f"the suite is inferred from all of them: add 'suite: <its name>' to the template to run it too"
        )
    output = Path(args.output) if args.output else Path("expectations") / f"{suite_name}.json"
    if output.suffix != ".json":
        print(f"{_PREFIX}: {output} must end in .json (the shared suite is GX JSON)", file=sys.stderr)
        return 2
    data_root = args.data_root or os.environ.get(DATA_ROOT_ENV) or effective_environment(Path.cwd()).get(DATA_ROOT_ENV)
    if not data_root:  # a user's own AIRFLOW_HOME: the embedded default's data root is not theirs
        print(f"{_PREFIX}: give --data-root or set {DATA_ROOT_ENV} (AIRFLOW_HOME is set)", file=sys.stderr)
        return 2
    if "://" not in data_root:
        data_root = str(Path(data_root).resolve())
    return _infer_and_write(args, cities, output, args.name or output.stem, data_root)


def _infer_and_write(args: argparse.Namespace, cities: list[Any], output: Path, name: str, data_root: str) -> int:
    from airflow_ml.data.conformance import apply_filters
    from airflow_ml.data.sample import read_sample
    from airflow_ml.exceptions import DataError
    from airflow_ml.factory.dataset_contract import data_contract
    from airflow_ml.validation.fleet_suite import Roles, infer_fleet_suite

    samples, batch_rows, sources, ignored = {}, {}, {}, set()
    for config in cities:
        try:
            sample = read_sample(
                config.source_uri(data_root),
                fmt=config.dataset.format,
                sample_rows=args.sample_rows,
                parse_dates=[config.dataset.time_column],
            )
        except (DataError, ValueError) as exc:
            print(f"{_PREFIX}: {config.city} left out: {exc}", file=sys.stderr)
            continue
        known = config.dataset.known_columns
        frame = sample.frame
        if config.dataset.filters:  # validation judges the rows the snapshot keeps: infer from those too
            try:
                frame, applied = apply_filters(frame, data_contract(config).filters)
            except (DataError, KeyError) as exc:
                print(f"{_PREFIX}: {config.city} left out: its row filters cannot apply: {exc}", file=sys.stderr)
                continue
            dropped = ", ".join(f"{a['filter']}: -{a['dropped']:,}" for a in applied if a["dropped"])
            if dropped:
                print(f"{_PREFIX}: {config.city}: the template's row filters dropped {dropped} sampled rows")
        samples[config.city] = frame[[c for c in frame.columns if c in known]]
        ignored |= set(sample.frame.columns) - known
        batch_rows[config.city] = sample.batch_rows
        sources[config.city] = sample.describe()
    if not samples:
        print(f"{_PREFIX}: no city of {args.template!r} has data under {data_root}; nothing inferred", file=sys.stderr)
        return 1
    dataset = cities[0].dataset
    try:
        fleet = infer_fleet_suite(
            samples,
            name=name,
            roles=Roles(dataset.target, dataset.time_column, tuple(dataset.categorical_features)),
            batch_rows=batch_rows,
            sources=sources,
            margin=args.margin,
            max_categories=args.max_categories,
        )
    except ValueError as exc:
        print(f"{_PREFIX}: {exc}", file=sys.stderr)
        return 1
    files = {output: json.dumps(fleet.suite, indent=2, ensure_ascii=False) + "\n"}
    for city, expectations in sorted(fleet.overrides.items()):
        files[output.with_name(f"{output.stem}.{city}.yaml")] = _override_yaml(
            city, expectations, output, sources[city]
        )
    refused = _refused(files, args.force)
    if refused:
        print(f"{_PREFIX}: " + "; ".join(refused), file=sys.stderr)
        return 1
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for city in sorted(set(samples) - set(fleet.overrides)):
        for stale in _suite_files(output.with_name(f"{output.stem}.{city}")):
            print(f"{_PREFIX}: {stale} still overrides the new suite for {city}, whose values it shares; delete it?")
    print(_summary(output, fleet, samples, ignored, args.template))
    for warning in fleet.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if name != cities[0].suite:
        print(f"note: the template names suite {cities[0].suite!r}: to use this one, set `suite: {name}` in it")
    return 0


def _refused(files: dict[Path, str], force: bool) -> list[str]:
    """Why not to write ``files``: one exists (without ``force``), or another suffix names the same suite."""
    problems = []
    for path in files:
        others = [p for p in _suite_files(path.with_suffix("")) if p != path]
        if others:
            problems.append(f"{others[0]} would define the same suite as {path}; move or delete it first")
        elif path.exists() and not force:
            problems.append(f"{path} already exists; give another -o file or --force")
    return problems


def _suite_files(stem: Path) -> list[Path]:
    return [
        stem.with_name(stem.name + suffix) for suffix in SUITE_SUFFIXES if stem.with_name(stem.name + suffix).exists()
    ]


def _override_yaml(city: str, expectations: list[dict[str, Any]], output: Path, source: dict[str, Any]) -> str:
    """A city's sibling suite file in the suites' YAML form, one mapping per expectation."""
    items = []
    for item in expectations:
        observed = item["meta"].get("observed")
        notes = item["meta"].get("notes", "") + (f" (observed: {json.dumps(observed)})" if observed else "")
        items.append({item["type"]: item["kwargs"], "severity": item["meta"]["severity"], "notes": notes})
    header = (
        f"# Inferred by 'airflow-ml suite infer --template': where {city}'s data differs from {output.name}.\n"
        "# An expectation here replaces the suite's of the same type and column. Review it as you review the suite.\n"
    )
    body = {
        "description": f"{city}'s own values, from {source.get('sampled_rows')} sampled rows of {source.get('path')}",
        "expectations": items,
    }
    return header + yaml.dump(body, Dumper=_NoAliases, sort_keys=False, allow_unicode=True, width=120)


class _NoAliases(yaml.SafeDumper):
    """Suite files may hold no anchors or aliases: the same list twice is written out twice."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _summary(output: Path, fleet: Any, samples: dict[str, Any], ignored: set[str], template: str) -> str:
    lines = [
        f"wrote {output}: {len(fleet.suite['expectations'])} expectation(s) shared by the {len(samples)} "
        f"city(ies) of {template!r} ({', '.join(sorted(samples))})"
    ]
    for city, expectations in sorted(fleet.overrides.items()):
        what = ", ".join(f"{e['kwargs']['column']} ({_kind(e['type'])})" for e in expectations)
        lines.append(f"wrote {output.with_name(f'{output.stem}.{city}.yaml')}: {city}'s own {what}")
    if ignored:
        lines.append(f"not in the suite (the template does not name them): {', '.join(sorted(ignored))}")
    lines.append("review and edit them before a run validates with them; `airflow-ml lint` checks them")
    return "\n".join(lines)


def _kind(expectation_type: str) -> str:
    return "value set" if expectation_type.endswith("_in_set") else "range"
