"""Expectation suites as files that data engineers own: GX Core 1.x JSON, or a shorter YAML form.

A template names its suite (``suite: ride_trips``); the suite is ``expectations/ride_trips.json`` or
``expectations/ride_trips.yaml`` (spelled so: ``ride_trips.yml`` is reported, not read). A city adds or
overrides expectations in a sibling file ``expectations/ride_trips.<city>.yaml`` (or ``.json``) and in its
city file's ``expectations:`` list, in that order. An expectation overrides another when both have the same
type and the same column(s); any other expectation is added. The YAML form, one mapping per expectation::

    description: Ride-hailing trips, one row per trip.
    expectations:
      - expect_table_row_count_to_be_between: {min_value: 500}
      - expect_column_values_to_be_between: {column: duration_min, min_value: 0.5, max_value: 600}
        severity: warn          # error (the default) stops the run; warn is recorded and the run goes on
        notes: trips over 10 hours are data errors

The GX form (``{"type": ..., "kwargs": {...}, "meta": {"severity": ...}}``) is accepted in both files.
Both are read with the YAML files' refusals: no key twice in one mapping, no Jinja, no anchors (YAML).
Every expectation remembers where it came from (``meta.source``: file and line), so that a failure names
the file to edit. Whether GX knows the type and its arguments is checked by ``airflow_ml.validation``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow_ml.exceptions import ConfigError, Problem, show_value
from airflow_ml.templates.bounded_read import UnreadableFile, read_bounded
from airflow_ml.templates.files import SUITE_SUFFIXES, misspelled_suite
from airflow_ml.templates.json_lines import load_json_checked
from airflow_ml.templates.yaml_lines import Path_, YamlFileError, load_yaml_with_lines

SEVERITIES = ("error", "warn")
#: GX's own ``severity`` of an expectation (``FailureSeverity``) for each of ours, so that GX's tools read a warn
#: as a warning; GX's ``info`` is recorded and never stops a run, as a warn.
GX_SEVERITY = {"error": "critical", "warn": "warning"}
_FROM_GX_SEVERITY = {"critical": "error", "warning": "warn", "info": "warn"}
_ITEM_KEYS = {"severity", "notes"}
#: GX's keys of an expectation; ``expectation_context`` (GX's description of it) is read and dropped.
_GX_KEYS = {
    "type",
    "kwargs",
    "meta",
    "severity",
    "id",
    "rendered_content",
    "notes",
    "description",
    "expectation_context",
}
_COLUMN_KEYS = ("column", "column_A", "column_B", "column_list")


def suite_file(expectations_dir: str | Path, name: str, *, required: bool = True) -> Path | None:
    """The file of suite ``name`` (``<name>.yaml`` or ``<name>.json``), or None if optional and absent.

    Raises:
        ConfigError: when a required suite is missing, two files claim the same name, or the file is spelled
            otherwise (``<name>.yml``, ``<name>.JSON``: never silently skipped).
    """
    folder = Path(expectations_dir)
    found = [folder / f"{name}{suffix}" for suffix in SUITE_SUFFIXES if (folder / f"{name}{suffix}").is_file()]
    if len(found) > 1:
        names = [p.name for p in found]
        raise ConfigError(str(found[0]), [f"suite {name!r} is defined by {names}; keep one of them"])
    if found:
        return found[0]
    misspelled = misspelled_suite(folder, name)
    if misspelled is not None:
        raise misspelled
    if not required:
        return None
    known = sorted({p.name.split(".")[0] for p in folder.glob("*") if p.suffix in SUITE_SUFFIXES})
    raise ConfigError(
        str(folder / f"{name}.json"),
        [f"suite {name!r} not found in {folder}; add {name}.yaml or {name}.json there (known: {known})"],
    )


def load_suite(
    expectations_dir: str | Path,
    name: str,
    *,
    city: str | None = None,
    overrides: Sequence[Mapping[str, Any]] = (),
    overrides_source: str = "the city file",
    overrides_lines: Mapping[Path_, int] | None = None,
) -> dict[str, Any]:
    """Suite ``name`` as a GX Core 1.x suite dict, with the city's sibling file and overrides applied.

    ``overrides_source`` names the file the overrides come from, and ``overrides_lines`` the line of each
    (``("expectations", index)``), when known.

    Returns:
        ``{"name", "meta", "expectations": [{"type", "kwargs", "meta": {"severity", "source", ...}}]}``.

    Raises:
        ConfigError: naming the file and line of each malformed expectation.
    """
    path = suite_file(expectations_dir, name)
    assert path is not None  # required=True raises instead
    meta, expectations = read_suite_file(path)
    if city is not None:
        sibling = suite_file(expectations_dir, f"{name}.{city}", required=False)
        if sibling is not None:
            expectations = merge_expectations(expectations, read_suite_file(sibling)[1])
    if overrides:
        expectations = merge_expectations(
            expectations, parse_expectations(overrides, overrides_source, overrides_lines or {})
        )
    return {"name": name, "meta": meta, "expectations": expectations}


#: The most bytes a suite file may hold, YAML or JSON: as much as a GX store record (``gx_context_files``), since
#: a suite may list many values (``expect_column_values_to_be_in_set``); a FIFO or a device is never opened.
MAX_SUITE_BYTES = 20 * 1024 * 1024


def read_suite_file(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The meta and the expectations (GX form) of one suite file, YAML or JSON."""
    lines: dict[Path_, int] = {}
    if path.suffix == ".json":
        try:
            data, problems = load_json_checked(read_bounded(path, MAX_SUITE_BYTES).decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ConfigError(str(path), [f"byte {exc.start} is not UTF-8; save the file as UTF-8 text"]) from None
        except UnreadableFile as exc:
            raise ConfigError(str(path), exc.problems) from None
        if problems:
            raise ConfigError(str(path), problems)
    else:
        try:
            data, lines = load_yaml_with_lines(path, max_bytes=MAX_SUITE_BYTES)
        except YamlFileError as exc:
            raise ConfigError(str(path), exc.problems) from None
    if not isinstance(data, dict) or not isinstance(data.get("expectations"), list):
        raise ConfigError(str(path), ["a suite is a mapping with a list under 'expectations'"])
    if not data["expectations"]:
        fix = (
            "list the expectations it adds or overrides, or delete the file"
            if "." in path.stem
            else "list at least one expectation (e.g. '- expect_table_row_count_to_be_between: {min_value: 1}'), "
            "or name another suite in the template"
        )
        problem = f"expectations: the list is empty, so this suite would check nothing; {fix}"
        raise ConfigError(str(path), [Problem(problem, line=lines.get(("expectations",)))])
    unknown = sorted(set(data) - {"name", "description", "meta", "expectations", "id", "notes"})
    if unknown:
        raise ConfigError(str(path), [f"unknown top-level key(s) {unknown}; a suite has description and expectations"])
    meta = data.get("meta") or {}
    if not isinstance(meta, Mapping):
        problem = f"meta: must be a mapping such as '{{owner: data-team}}', got {show_value(meta)}"
        raise ConfigError(str(path), [Problem(problem, line=lines.get(("meta",)))])
    meta = dict(meta)
    if data.get("description"):
        meta["description"] = data["description"]
    return meta, parse_expectations(data["expectations"], str(path), lines)


def parse_expectations(
    items: Iterable[Any],
    source: str,
    lines: Mapping[Path_, int],
    prefix: Path_ = ("expectations",),
    *,
    gx_written: bool = False,
) -> list[dict[str, Any]]:
    """Turn expectations in either form into GX form, each with ``meta.severity`` and ``meta.source``.

    ``gx_written``: the items come from a GX context, whose ``meta`` is the team's own: the severity is
    GX's top-level ``severity`` alone, and a ``meta.severity`` there (say "high") is not read as ours.

    Raises:
        ConfigError: naming ``source`` and the line (when known) of every malformed item.
    """
    parsed, problems = [], []
    for index, item in enumerate(items):
        line = lines.get((*prefix, index))
        where = f"line {line}" if line is not None else f"{prefix[-1]}[{index}]"
        try:
            parsed.append(
                _parse_item(item, f"{source}:{line}" if line is not None else f"{source} {where}", gx_written)
            )
        except (ValueError, TypeError) as exc:  # TypeError: a value of a type no check foresaw
            problems.append(f"{where}: {exc}")
    if problems:
        raise ConfigError(source, problems)
    return parsed


def merge_expectations(base: list[dict[str, Any]], changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Apply ``changes`` over ``base``: same type and column(s) replaces in place; anything else is added."""
    merged = list(base)
    positions = {expectation_key(e): i for i, e in enumerate(merged)}
    for change in changes:
        key = expectation_key(change)
        if key in positions:
            merged[positions[key]] = change
        else:
            positions[key] = len(merged)
            merged.append(change)
    return merged


def expectation_key(expectation: Mapping[str, Any]) -> tuple[str, str]:
    """What identifies an expectation for overrides: its type and the column(s) it looks at."""
    kwargs = expectation.get("kwargs") or {}
    columns = [_canonical(kwargs[k]) for k in _COLUMN_KEYS if k in kwargs]
    return str(expectation["type"]), ",".join(columns)


def _canonical(value: Any) -> str:
    """One text per value, whatever YAML built: a date, or a mapping with keys of mixed types."""
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(value)


def _parse_item(item: Any, source: str, gx_written: bool = False) -> dict[str, Any]:
    if not isinstance(item, Mapping):
        raise ValueError(f"an expectation is a mapping, got {show_value(item)}")
    if "type" in item:  # the GX form
        extra = sorted(map(str, set(item) - _GX_KEYS))
        if extra:
            shown = show_value(extra, quote=False)
            raise ValueError(f"unknown key(s) {shown} beside 'type'; the GX form has type, kwargs and meta")
        kind, kwargs, meta = item["type"], item.get("kwargs") or {}, item.get("meta") or {}
        if not isinstance(meta, Mapping):
            raise ValueError(f"meta must be a mapping such as {{severity: warn}}, got {show_value(meta)}")
        meta = dict(meta)
        if gx_written:
            meta.pop("severity", None)
        if "severity" in item:  # GX's own field: critical, warning or info
            meta["severity"] = _ours(item["severity"], meta.get("severity"), kind)
    elif "kwargs" in item or "meta" in item:
        raise ValueError("the GX form needs a 'type' such as 'expect_column_to_exist' beside 'kwargs'")
    else:  # the YAML form: one expect_* key, plus severity and notes
        names = [k for k in item if k not in _ITEM_KEYS]
        if len(names) != 1 or not str(names[0]).startswith("expect_"):
            raise ValueError(
                f"name exactly one expectation such as 'expect_column_values_to_not_be_null: {{column: x}}' "
                f"(got keys {show_value(sorted(map(str, item)), quote=False)}); other keys may only be "
                f"{sorted(_ITEM_KEYS)}"
            )
        kind, kwargs = names[0], item[names[0]] or {}
        meta = {k: item[k] for k in _ITEM_KEYS if k in item}
    if not isinstance(kind, str) or not kind.startswith("expect_"):
        raise ValueError(f"type {show_value(kind)} is not an expectation type (they start with 'expect_')")
    if not isinstance(kwargs, Mapping):
        name = show_value(kind, quote=False)
        raise ValueError(f"{name}: the arguments must be a mapping such as {{column: x}}, got {show_value(kwargs)}")
    severity = meta.get("severity", "error")
    if isinstance(severity, str) and severity in _FROM_GX_SEVERITY:  # GX's names in the YAML form or in meta
        severity = _FROM_GX_SEVERITY[severity]
    if not isinstance(severity, str) or severity not in SEVERITIES:
        name = show_value(kind, quote=False)
        known = [*SEVERITIES, *_FROM_GX_SEVERITY]
        raise ValueError(f"{name}: severity {show_value(severity)} is not one of {known}")
    return {
        "type": kind,
        "kwargs": dict(kwargs),
        "severity": GX_SEVERITY[severity],
        "meta": {**meta, "severity": severity, "source": source},
    }


def _ours(gx_severity: Any, meta_severity: Any, kind: Any) -> str:
    """The project's severity of GX's ``severity`` field, which must agree with ``meta.severity`` when both are set."""
    name = show_value(kind, quote=False)
    if not isinstance(gx_severity, str) or gx_severity not in _FROM_GX_SEVERITY:
        raise ValueError(f"{name}: severity {show_value(gx_severity)} is not one of GX's {list(_FROM_GX_SEVERITY)}")
    ours = _FROM_GX_SEVERITY[gx_severity]
    if meta_severity is not None and _FROM_GX_SEVERITY.get(meta_severity, meta_severity) != ours:
        raise ValueError(
            f"{name}: severity {gx_severity!r} and meta.severity {show_value(meta_severity)} disagree; keep one of them"
        )
    return ours


def target_null_warning(suite: Mapping[str, Any], target: str, *, filtered: bool = False) -> str | None:
    """A warning when neither the suite nor a row filter keeps rows with a null target out of training.

    Real data has such rows (an outcome never observed). Without an ``error``-severity
    ``expect_column_values_to_not_be_null`` on the target (with no ``mostly`` below 1 and no
    ``row_condition``), they reach training, which refuses them after the slow steps. A ``mostly`` that is
    not a number is never compared: GX judges it (lint prints its problem), and the check counts as weak.

    Args:
        suite: The suite in GX form (:func:`load_suite`).
        target: The dataset's target column.
        filtered: Whether a ``not_null`` row filter on the target drops them at snapshot time.

    Returns:
        The warning, or None when the target cannot be null in training.
    """
    if filtered:
        return None
    weak = _target_null_checks(suite, target)
    if weak is None:
        return None
    found = "its not-null check has " + "; ".join(how for _, how in weak) if weak else "it has no not-null check on it"
    return (
        f"suite {suite.get('name')!r} lets the target {target!r} be null ({found}); a null target stops the run "
        f"in train, after validation: add '- expect_column_values_to_not_be_null: {{column: {target}}}' to the "
        f"suite, or drop such rows at snapshot time with 'filters: [{{column: {target}, op: not_null}}]' under "
        "dataset (the manifest counts them)"
    )


def weak_target_check_source(suite: Mapping[str, Any], target: str) -> str | None:
    """Where the first not-null check on ``target`` that lets nulls through was written (its ``meta.source``).

    None when the suite has no such check (no not-null check at all, or one that keeps nulls out).
    """
    weak = _target_null_checks(suite, target)
    return weak[0][0] if weak else None


def _target_null_checks(suite: Mapping[str, Any], target: str) -> list[tuple[str | None, str]] | None:
    """The not-null checks on ``target`` that let nulls through (source, how); None if one keeps them out."""
    weak: list[tuple[str | None, str]] = []
    for expectation in suite.get("expectations", []):
        kwargs = expectation.get("kwargs") or {}
        if expectation.get("type") != "expect_column_values_to_not_be_null" or kwargs.get("column") != target:
            continue
        severity = (expectation.get("meta") or {}).get("severity", "error")
        mostly = kwargs.get("mostly")
        number = isinstance(mostly, int | float) and not isinstance(mostly, bool)
        if severity == "error" and (mostly is None or (number and mostly >= 1)) and not kwargs.get("row_condition"):
            return None
        shown = mostly if number else show_value(mostly)
        how = f"severity {severity}" + (f", mostly {shown}" if mostly is not None else "")
        weak.append(((expectation.get("meta") or {}).get("source"), how))
    return weak
