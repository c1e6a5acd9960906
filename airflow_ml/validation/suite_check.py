"""Check a suite (GX Core 1.x form, see ``airflow_ml.templates.suite_files``) the way GX and the template will.

Reading suite files is the templates layer's job; here each expectation is checked against GX itself
(is the type known, do its arguments validate) and against the columns the template knows, so that a
mistake is reported with its file and line by ``airflow-ml lint`` instead of failing a night's run.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Collection
from typing import Any

from airflow_ml.exceptions import show_value
from airflow_ml.validation.unsafe_arguments import argument_problems

_COLUMN_KEYS = ("column", "column_A", "column_B")


def check_suite(suite: dict[str, Any], *, known_columns: Collection[str] | None = None) -> list[str]:
    """Every problem of ``suite``: unknown expectation types, bad arguments, columns the template does not know.

    Returns:
        One line per problem: ``<file:line>: <type>: <problem and fix>``; empty when the suite is sound.
    """
    from great_expectations.expectations.registry import (
        get_expectation_impl,
        list_registered_expectation_implementations,
    )

    problems = []
    checked: dict[str, list[str]] = {}  # a thousand cities share their base suite's expectations
    for expectation in suite["expectations"]:
        kind, kwargs = expectation["type"], expectation.get("kwargs") or {}
        where = (expectation.get("meta") or {}).get("source", suite.get("name", "suite"))
        key = _key(kind, kwargs)
        if key not in checked:
            checked[key] = _check_one(kind, kwargs, get_expectation_impl, list_registered_expectation_implementations)
        found = list(checked[key])
        if known_columns is not None:
            found += [
                _unknown_column(column, known_columns) for column in _columns(kwargs) if column not in known_columns
            ]
        problems += [f"{where}: {show_value(kind, quote=False)}: {problem}" for problem in found]
    return problems


def _key(kind: str, kwargs: dict[str, Any]) -> str:
    try:
        return json.dumps([kind, kwargs], sort_keys=True, default=str)
    except TypeError:  # keys of mixed types (YAML builds 1: as a number): GX refuses them below
        return repr([kind, kwargs])


def _unknown_column(column: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(column[:200], sorted(known), n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"known: {sorted(known)}"
    return (
        f"column {show_value(column)} is not a column the template knows; {hint} (or add it to dataset.extra_columns)"
    )


def _check_one(kind: str, kwargs: dict[str, Any], get_impl: Any, registered: Any) -> list[str]:
    from great_expectations.exceptions import ExpectationNotFoundError

    unsafe = argument_problems(kwargs)
    if unsafe:  # before GX builds anything from them
        return unsafe

    try:
        implementation = get_impl(kind)
    except ExpectationNotFoundError:
        close = difflib.get_close_matches(kind[:200], registered(), n=1)
        hint = (
            f"did you mean {close[0]!r}?"
            if close
            else "see the GX Core 1.x expectation gallery; custom expectations (Python in a GX context's plugins/) "
            "are never loaded"
        )
        return [f"GX has no expectation type {show_value(kind)}; {hint}"]
    try:
        implementation(**kwargs)
    except Exception as exc:  # noqa: BLE001 - GX raises pydantic (v1) errors and its own; all mean bad arguments
        return [_argument_problem(exc)]
    return []


def _argument_problem(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return f"bad arguments: {show_value(str(exc), limit=300, quote=False)}"
    first_per_field: dict[str, str] = {}
    for error in errors():
        field = ".".join(str(part) for part in error.get("loc", ())) or "arguments"
        first_per_field.setdefault(show_value(field, quote=False), show_value(error.get("msg", "invalid"), quote=False))
    return "bad arguments: " + "; ".join(f"{field}: {msg}" for field, msg in first_per_field.items())


def _columns(kwargs: dict[str, Any]) -> list[str]:
    columns = [kwargs[key] for key in _COLUMN_KEYS if isinstance(kwargs.get(key), str)]
    listed = kwargs.get("column_list")
    if isinstance(listed, list):
        columns += [c for c in listed if isinstance(c, str)]
    return columns
