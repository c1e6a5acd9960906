"""Infer one suite for a template's fleet: the shared suite, and per city only what differs from it.

Every city of a template is validated by the template's suite merged with the city's sibling file
``<suite>.<city>.yaml``, where an expectation of the same type and column replaces the suite's. So the fleet's
suite holds what the cities share, and a city gets its own expectation only where its values differ:

- shape (``error``): every column exists with its type (the type most cities have; a city with another is
  reported, not blessed), not-null with the ``mostly`` of the city with the most nulls, the smallest city's
  row count; the target and the time column must never be null, whatever the sample holds;
- value sets (``warn``), for the categorical features and for columns with few values across the fleet: the set
  most cities share (or the union, when no set is shared by more cities than any other); a city whose set
  differs gets its own;
- ranges (``warn``): the span of every city's range; a city whose own range is less than half as wide
  (:data:`OWN_RANGE_SHARE`) gets its own. Samples' extremes vary from city to city; half is far beyond that.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from airflow_ml.validation.infer import (
    SHAPE_SEVERITY,
    VALUE_SEVERITY,
    check_settings,
    distinct_count,
    expectation,
    null_expectations,
    type_expectation,
    value_domain,
    value_range,
)

#: A categorical feature gets its value set up to this many values (a larger one is reported, not listed).
MAX_CATEGORICAL_VALUES = 10_000
#: A city gets its own range when it is narrower than this share of the shared range.
OWN_RANGE_SHARE = 0.5


@dataclass(frozen=True)
class Roles:
    """What the template says of the columns: the target, the time column and the categorical features."""

    target: str
    time_column: str
    categorical: Collection[str] = ()


@dataclass
class FleetSuite:
    """The shared suite (GX form), each city's own expectations (GX form) and what a person should know."""

    suite: dict[str, Any]
    overrides: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def infer_fleet_suite(
    samples: Mapping[str, pd.DataFrame],
    *,
    name: str,
    roles: Roles,
    batch_rows: Mapping[str, int] | None = None,
    sources: Mapping[str, dict[str, Any]] | None = None,
    margin: float = 0.1,
    max_categories: int = 50,
    null_margin: float = 0.02,
    min_rows_fraction: float = 0.5,
) -> FleetSuite:
    """The suite of a fleet from each city's sample (see the module docstring).

    Args:
        samples: City id to its sample, restricted to the columns the template knows.
        name: The suite's name.
        roles: The target, the time column and the categorical features.
        batch_rows: City id to the rows of its smallest batch (a day), for the row count (default: its sample's).
        sources: City id to where its sample came from, recorded in the suite's ``meta``.
        margin, max_categories, null_margin, min_rows_fraction: As for
            :func:`airflow_ml.validation.infer.infer_suite`.

    Raises:
        ValueError: for no city, an empty sample or a setting out of range.
    """
    check_settings(name, margin, max_categories, null_margin, min_rows_fraction)
    cities = sorted(samples)
    if not cities:
        raise ValueError("no city sample to infer a suite from")
    empty = [c for c in cities if samples[c].empty]
    if empty:
        raise ValueError(f"the samples of {empty} have no rows; infer from cities with data")
    rows = {c: (batch_rows or {}).get(c) or len(samples[c]) for c in cities}
    smallest = min(cities, key=lambda c: rows[c])
    min_rows = max(1, math.floor(rows[smallest] * min_rows_fraction))
    result = FleetSuite(suite={})
    expectations = [
        expectation(
            "expect_table_row_count_to_be_between",
            {"min_value": min_rows},
            SHAPE_SEVERITY,
            observed={"batch_rows": rows},
            notes=f"{min_rows_fraction:.0%} of the smallest city's smallest batch ({smallest}: {rows[smallest]} rows)",
        )
    ]
    columns = list(dict.fromkeys(column for city in cities for column in samples[city].columns))
    profile = {}
    for column in columns:
        present = {c: samples[c][column] for c in cities if column in samples[c].columns}
        for city in sorted(set(cities) - set(present)):
            result.warnings.append(
                f"{city}: its data has no column {column!r}, which the template names and the other cities have; "
                f"its validation fails expect_column_to_exist until the column is there"
            )
        notes: list[str] = []
        expectations.append(expectation("expect_column_to_exist", {"column": column}, SHAPE_SEVERITY))
        expectations.append(_shared_type(column, present, result.warnings))
        expectations += _nulls(column, present, roles, null_margin, notes, result.warnings)
        kind = _kind(column, present, roles, max_categories, notes)
        if kind == "set":
            expectations += _sets(column, present, result.overrides, notes)
        elif kind == "range":
            expectations += _ranges(column, present, margin, result.overrides, notes)
        profile[column] = {"cities": len(present), **({"notes": notes} if notes else {})}
    result.suite = {
        "name": name,
        "meta": {
            "description": (
                f"Inferred by 'airflow-ml suite infer --template' from {len(cities)} cities' samples: what they share. "
                f"A city's own values are in its sibling file {name}.<city>.yaml. Review every expectation; severity "
                "'error' (row count, columns, types, nulls) stops a run, 'warn' (ranges, sets) is recorded."
            ),
            "inferred": {
                "tool": "airflow-ml suite infer --template",
                "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "cities": cities,
                "roles": {
                    "target": roles.target,
                    "time_column": roles.time_column,
                    "categorical": sorted(roles.categorical),
                },
                "settings": {
                    "margin": margin,
                    "max_categories": max_categories,
                    "null_margin": null_margin,
                    "min_rows_fraction": min_rows_fraction,
                },
                "sources": dict(sources or {}),
            },
            "columns": profile,
        },
        "expectations": expectations,
    }
    return result


def _shared_type(column: str, present: Mapping[str, pd.Series], warnings: list[str]) -> dict[str, Any]:
    """The type most cities have (ties: the first city's); the others are reported."""
    by_city = {c: type_expectation(column, s.dtype, s.dropna()) for c, s in present.items()}
    keys = {c: json.dumps([e["type"], e["kwargs"]], sort_keys=True) for c, e in by_city.items()}
    counts = Counter(keys.values())
    best = max(counts.values())
    chosen = next(keys[c] for c in present if counts[keys[c]] == best)
    shared = next(by_city[c] for c in present if keys[c] == chosen)
    for city, key in keys.items():
        if key != chosen:
            warnings.append(
                f"{city}: column {column!r} is {by_city[city]['meta']['observed']['dtype']}, most cities' is "
                f"{shared['meta']['observed']['dtype']}; its validation fails the type check until its data is fixed"
            )
    return shared


def _nulls(
    column: str,
    present: Mapping[str, pd.Series],
    roles: Roles,
    null_margin: float,
    notes: list[str],
    warnings: list[str],
) -> list[dict[str, Any]]:
    fractions = {c: float(s.isna().mean()) for c, s in present.items()}
    if column in (roles.target, roles.time_column):
        what = "the target" if column == roles.target else "the time column"
        for city, fraction in fractions.items():
            if fraction:
                warnings.append(
                    f"{city}: {fraction:.2%} of {what} {column!r} is null in the sample; its validation fails until "
                    "those rows are dropped (a row filter of the template) or filled"
                )
        return [
            expectation(
                "expect_column_values_to_not_be_null",
                {"column": column},
                SHAPE_SEVERITY,
                observed={"null_fraction": max(fractions.values())},
                notes=f"{what}: every row needs one",
            )
        ]
    return null_expectations(column, max(fractions.values()), null_margin, notes)


def _kind(column: str, present: Mapping[str, pd.Series], roles: Roles, max_categories: int, notes: list[str]) -> str:
    """``set``, ``range`` or ``none``: what the fleet's values of ``column`` get."""
    dtypes = [s.dtype for s in present.values()]
    if any(pd.api.types.is_datetime64_any_dtype(d) or pd.api.types.is_timedelta64_dtype(d) for d in dtypes):
        notes.append("no range: a new day's data is always newer than the sample")
        return "none"
    counts = [distinct_count(s.dropna()) for s in present.values()]
    if column in roles.categorical:
        if any(n is None or n > MAX_CATEGORICAL_VALUES for n in counts):
            notes.append(f"a categorical feature with more than {MAX_CATEGORICAL_VALUES} values: no set")
            return "none"
        return "set"
    numeric = all(pd.api.types.is_numeric_dtype(d) and not pd.api.types.is_bool_dtype(d) for d in dtypes)
    if not any(pd.api.types.is_float_dtype(d) for d in dtypes) and all(n is not None for n in counts):
        union = pd.concat([s.dropna() for s in present.values()], ignore_index=True)
        distinct = distinct_count(union)
        if distinct is not None and distinct <= max_categories:
            return "set"
        if not numeric:
            notes.append(f"{distinct} distinct values across the fleet (more than max_categories): no set")
    return "range" if numeric else "none"


def _sets(
    column: str, present: Mapping[str, pd.Series], overrides: dict[str, list[dict[str, Any]]], notes: list[str]
) -> list[dict[str, Any]]:
    domains = {c: value_domain(s.dropna()) for c, s in present.items() if s.notna().any()}
    if not domains or any(d is None for d in domains.values()):
        notes.append("values that JSON cannot hold as they are: no set")
        return []
    sets = {c: tuple(d or ()) for c, d in domains.items()}
    ranked = Counter(sets.values()).most_common()
    if len(ranked) == 1 or (ranked[0][1] >= 2 and ranked[0][1] > ranked[1][1]):
        shared = list(ranked[0][0])
        basis = f"the values of {ranked[0][1]} of {len(sets)} cities"
    else:
        shared = value_domain(pd.Series([v for values in sets.values() for v in values], dtype=object)) or []
        basis = f"every value of the {len(sets)} cities (no set is shared by more cities than another)"
    for city, values in sets.items():
        if list(values) != shared:
            overrides.setdefault(city, []).append(
                expectation(
                    "expect_column_values_to_be_in_set",
                    {"column": column, "value_set": list(values)},
                    VALUE_SEVERITY,
                    observed={"distinct": len(values)},
                    notes=f"{city}'s own {len(values)} values; the shared suite has {basis}",
                )
            )
    return [
        expectation(
            "expect_column_values_to_be_in_set",
            {"column": column, "value_set": shared},
            VALUE_SEVERITY,
            observed={"distinct": len(shared)},
            notes=f"{basis}; a city whose values differ has its own set in its sibling file",
        )
    ]


def _ranges(
    column: str,
    present: Mapping[str, pd.Series],
    margin: float,
    overrides: dict[str, list[dict[str, Any]]],
    notes: list[str],
) -> list[dict[str, Any]]:
    integer = all(pd.api.types.is_integer_dtype(s.dtype) for s in present.values())
    own = {}
    for city, series in present.items():
        found = value_range(column, series.dropna(), margin=margin, integer=integer, notes=[])
        if found:
            own[city] = found[0]
    if not own:
        notes.append("no finite value in any city: no range")
        return []
    lows = [e["kwargs"].get("min_value") for e in own.values()]
    highs = [e["kwargs"].get("max_value") for e in own.values()]
    low = None if None in lows else min(v for v in lows if v is not None)
    high = None if None in highs else max(v for v in highs if v is not None)
    if low is None and high is None:
        notes.append("open on both sides across the fleet: no range")
        return []
    for city, mine in own.items():
        city_low, city_high = mine["kwargs"].get("min_value"), mine["kwargs"].get("max_value")
        if low is None or high is None or city_low is None or city_high is None or high == low:
            continue
        share = (city_high - city_low) / (high - low)
        if share < OWN_RANGE_SHARE:
            mine["meta"]["notes"] += f"; {city}'s own range, {share:.0%} as wide as the shared {low}..{high}"
            overrides.setdefault(city, []).append(mine)
    kwargs: dict[str, Any] = {"column": column}
    if low is not None:
        kwargs["min_value"] = low
    if high is not None:
        kwargs["max_value"] = high
    observed = {c: e["meta"]["observed"] for c, e in own.items()}
    return [
        expectation(
            "expect_column_values_to_be_between",
            kwargs,
            VALUE_SEVERITY,
            observed=observed,
            notes=f"the span of the {len(own)} cities' ranges, each widened by {margin:.0%}",
        )
    ]
