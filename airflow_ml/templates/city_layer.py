"""What a city file, or a group file, may not decide alone: settings its template decides for all its cities.

- ``fallback.parent``: a parent model is built for what templates and groups declare; a city may only turn its
  fallback off or change ``min_rows``.
- ``monitoring.schedule``: every monitored city of a template is a mapped task of one DAG, ``<template>.monitor``,
  so the schedule is the template's; a city or a group file that sets it is an error naming its line and the fix.
- ``registry.name_pattern``: the registered model names of a template's cities (and its parents) follow one pattern.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airflow_ml.exceptions import ConfigError, Problem, show_value
from airflow_ml.templates.yaml_lines import Path_

#: Keys only a template file (or the shared defaults) may set, and why.
TEMPLATE_ONLY: dict[Path_, str] = {
    ("monitoring", "schedule"): "every city of a template is a task of its one monitor DAG, <template>.monitor",
    ("registry", "name_pattern"): "the fleet-outlier rule finds a city's sibling models by the template's pattern",
}
_Positions = tuple[dict[Path_, int], dict[Path_, int]]


def check_city_layer(path: Path, data: dict[str, Any], where: _Positions, below: dict[str, Any]) -> None:
    """Refuse what a city file may not set (``below``: its template and group merged).

    Raises:
        ConfigError: naming the file, and per problem the line, the field, the value and the fix.
    """
    problems = _template_only(data, where, f"templates/{show_value(data.get('template'), quote=False)}.yaml")
    own = data.get("fallback")
    wanted = own.get("parent") if isinstance(own, dict) else None
    declared = (below.get("fallback") or {}).get("parent", "none")
    if wanted not in (None, "none", declared) and wanted in ("group", "global"):
        problem = (
            f"fallback.parent: {wanted!r} is not what the template or group declares ({declared!r}); "
            "a parent model is built for what templates and groups declare: set 'fallback: {parent: "
            f"{wanted}}}' in the template or group file, or keep only 'min_rows' (or 'parent: none') in the city"
        )
        problems.append(_at(problem, ("fallback", "parent"), where))
    if problems:
        raise ConfigError(str(path), problems)


def check_group_layer(path: Path, data: dict[str, Any], where: _Positions) -> None:
    """Refuse what a group file may not set (its cities may belong to one template with cities of other groups).

    Raises:
        ConfigError: naming the group file, and per problem the line, the field, the value and the fix.
    """
    problems = _template_only(data, where, "the template file")
    if problems:
        raise ConfigError(str(path), problems)


def sets_template_only(data: dict[str, Any]) -> bool:
    """Whether a group file sets what only a template may (:func:`check_group_layer` refuses every city naming it)."""
    return bool(_template_only(data, ({}, {}), ""))


def _template_only(data: dict[str, Any], where: _Positions, template: str) -> list[Problem]:
    problems = []
    for key, why in TEMPLATE_ONLY.items():
        parent, field = (str(part) for part in key)
        section = data.get(parent)
        if isinstance(section, dict) and field in section:
            problem = (
                f"{parent}.{field}: {show_value(section[field])} cannot be set here: {why}, so all its cities share "
                f"it; set '{parent}: {{{field}: ...}}' in {template} and remove it from this file"
            )
            problems.append(_at(problem, key, where))
    return problems


def _at(message: str, key: Path_, where: _Positions) -> Problem:
    lines, cols = where
    return Problem(message, line=lines.get(key, 1), col=cols.get(key, 1))
