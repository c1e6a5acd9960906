"""Infer a starter expectation suite from a data sample, as TFDV infers a schema (GX Core 1.x has no profiler).

The suite holds the row count, and for every column its existence, its type, its null fraction, a numeric range
widened by a margin or a small domain of values. It is a starting point: a data engineer reviews and edits it.

Severity policy (every expectation says it in ``meta.severity``):

- ``error`` for the table's shape, which training relies on: row count, columns, types and nulls;
- ``warn`` for values, which a new day may legitimately widen (a rarer hour, a new zone): ranges and sets.
  Tighten them to ``error`` once reviewed.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pandas as pd

#: Severity of expectations on the table's shape and on its values (see the module docstring).
SHAPE_SEVERITY = "error"
VALUE_SEVERITY = "warn"

# Python types GX's pandas backend knows by these names (great_expectations.expectations.type_comparison).
_NATIVE_TYPE_NAMES: tuple[tuple[type, str], ...] = (
    (bool, "bool"),  # before int: bool is a subclass of int
    (int, "int"),
    (float, "float"),
    (str, "str"),
    (bytes, "bytes"),
    (list, "list"),
    (dict, "dict"),
)


def infer_suite(
    frame: pd.DataFrame,
    *,
    name: str,
    margin: float = 0.1,
    max_categories: int = 50,
    null_margin: float = 0.02,
    min_rows_fraction: float = 0.5,
    batch_rows: int | None = None,
    source: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A GX Core 1.x suite (as a dict) that ``frame`` passes, for a person to edit.

    Args:
        frame: The sample; its columns and dtypes are what the suite expects.
        name: The suite's name (by convention the stem of its file in ``expectations/``).
        margin: Numeric ranges are widened on each side by this share of the observed range.
        max_categories: Columns of strings, categories, booleans or integers with at most this many distinct values
            get their set of values; 0 turns sets off.
        null_margin: A column with some nulls may have this share more (``mostly`` = observed non-null share
            minus ``null_margin``, rounded down).
        min_rows_fraction: The minimum row count, as a share of ``batch_rows``.
        batch_rows: The fewest rows one validated batch holds, e.g. the smallest ``date=`` partition, since a run
            reads at least one day (default: the sample's rows).
        source: Where the sample came from (path, files, dates, rows read), recorded in the suite's ``meta``.

    Returns:
        ``{"name", "meta", "expectations": [{"type", "kwargs", "meta"}, ...]}``; each expectation's meta has
        ``severity``, ``inferred: true`` and, where useful, ``observed`` statistics and ``notes``.

    Raises:
        ValueError: for an empty frame, a column name that is not a string, or a setting out of range.
    """
    check_settings(name, margin, max_categories, null_margin, min_rows_fraction)
    if frame.empty:
        raise ValueError(f"the sample has {len(frame)} row(s) and {len(frame.columns)} column(s); nothing to infer")
    odd = [c for c in frame.columns if not isinstance(c, str) or not c]
    if odd:
        raise ValueError(f"column names must be non-empty strings for GX; got {odd!r}")
    if frame.columns.has_duplicates:
        raise ValueError(f"duplicate column names: {sorted(set(frame.columns[frame.columns.duplicated()]))!r}")

    rows = len(frame)
    if batch_rows is not None and (isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1):
        raise ValueError(f"batch_rows must be a positive integer, got {batch_rows!r}")
    basis = f"{batch_rows} rows of the smallest batch" if batch_rows else f"{rows} sampled rows"
    min_rows = max(1, math.floor((batch_rows or rows) * min_rows_fraction))
    expectations = [
        expectation(
            "expect_table_row_count_to_be_between",
            {"min_value": min_rows},
            SHAPE_SEVERITY,
            observed={"rows": rows, **({"batch_rows": batch_rows} if batch_rows else {})},
            notes=(
                f"{min_rows_fraction:.0%} of the {basis}; lower min_value when a run reads fewer days "
                "or a smaller city than the sample; no max_value, as data grows"
            ),
        )
    ]
    profile: dict[str, Any] = {}
    for column in frame.columns:
        column_expectations, profile[column] = _column(
            frame[column], margin=margin, max_categories=max_categories, null_margin=null_margin
        )
        expectations += column_expectations
    return {
        "name": name,
        "meta": {
            "description": (
                f"Inferred by 'airflow-ml suite infer' from {rows} sampled rows: a starter suite. Review every "
                "expectation; severity 'error' (row count, columns, types, nulls) stops a run, 'warn' (ranges, "
                "sets) is recorded: tighten it to 'error' once the values are right."
            ),
            "inferred": {
                "tool": "airflow-ml suite infer",
                "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "sample_rows": rows,
                "settings": {
                    "margin": margin,
                    "max_categories": max_categories,
                    "null_margin": null_margin,
                    "min_rows_fraction": min_rows_fraction,
                },
                "source": source or {},
            },
            "columns": profile,
        },
        "expectations": expectations,
    }


def check_settings(name: str, margin: float, max_categories: int, null_margin: float, fraction: float) -> None:
    """Raise ValueError naming every setting of :func:`infer_suite` that is out of range."""
    problems = []
    if not isinstance(name, str) or not name.strip():
        problems.append(f"name must be a non-empty string, got {name!r}")
    if not (isinstance(margin, (int, float)) and math.isfinite(margin) and margin >= 0):
        problems.append(f"margin must be a finite number >= 0 (0.1 widens ranges by 10%), got {margin!r}")
    if isinstance(max_categories, bool) or not isinstance(max_categories, int) or max_categories < 0:
        problems.append(f"max_categories must be an integer >= 0, got {max_categories!r}")
    if not (isinstance(null_margin, (int, float)) and 0 <= null_margin < 1):
        problems.append(f"null_margin must be in [0, 1), got {null_margin!r}")
    if not (isinstance(fraction, (int, float)) and 0 < fraction <= 1):
        problems.append(f"min_rows_fraction must be in (0, 1], got {fraction!r}")
    if problems:
        raise ValueError("; ".join(problems))


def expectation(
    kind: str, kwargs: dict[str, Any], severity: str, *, observed: dict[str, Any] | None = None, notes: str = ""
) -> dict[str, Any]:
    """One inferred expectation in GX form: GX's own ``severity`` (``critical`` for our ``error``, ``warning`` for
    ``warn``), and a meta saying the same severity in the project's words, ``inferred``, what was observed and why."""
    meta: dict[str, Any] = {"severity": severity, "inferred": True}
    if observed:
        meta["observed"] = observed
    if notes:
        meta["notes"] = notes
    return {"type": kind, "kwargs": kwargs, "severity": _GX_SEVERITY[severity], "meta": meta}


#: GX's ``FailureSeverity`` of each of our severities (``templates.suite_files.GX_SEVERITY``, which this layer
#: may not import: suite files map them back when they are read).
_GX_SEVERITY = {"error": "critical", "warn": "warning"}


def _column(
    series: pd.Series, *, margin: float, max_categories: int, null_margin: float
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The expectations of one column and its profile (dtype, null share, distinct values, notes)."""
    column = str(series.name)
    dtype = series.dtype
    values = series.dropna()
    null_fraction = 1 - len(values) / len(series)
    notes: list[str] = []
    expectations = [expectation("expect_column_to_exist", {"column": column}, SHAPE_SEVERITY)]
    expectations.append(type_expectation(column, dtype, values))
    expectations += null_expectations(column, null_fraction, null_margin, notes)
    distinct = distinct_count(values)
    profile = {"dtype": str(dtype), "null_fraction": round(null_fraction, 6), "distinct": distinct}

    if values.empty:
        notes.append("every sampled value is null: no range or set")
    elif pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        notes.append("no range: a new day's data is always newer than the sample; type and nulls only")
    elif isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(dtype):
        expectations += value_set(column, values, distinct, max_categories, notes)
    elif pd.api.types.is_integer_dtype(dtype):
        if distinct is not None and distinct <= max_categories:
            expectations += value_set(column, values, distinct, max_categories, notes)
        else:
            expectations += value_range(column, values, margin=margin, integer=True, notes=notes)
    elif pd.api.types.is_float_dtype(dtype):
        expectations += value_range(column, values, margin=margin, integer=False, notes=notes)
    else:  # strings and other objects
        expectations += value_set(column, values, distinct, max_categories, notes)
    if notes:
        profile["notes"] = notes
    return expectations, profile


def type_expectation(column: str, dtype: Any, values: pd.Series) -> dict[str, Any]:
    """``expect_column_values_to_be_of_type`` (or ``_in_type_list``) with a name GX's pandas backend resolves.

    GX compares the dtype's scalar type with ``numpy.dtype(name).type``, a pandas class of that name, or a Python
    type ("str", "int", ...); for ``object`` columns it checks each value with ``isinstance``.
    """
    observed = {"dtype": str(dtype)}
    if isinstance(dtype, np.dtype) and dtype.kind == "O":
        names = sorted({_native_name(v) for v in values})
        if names and "object" not in names and len(names) > 1:
            return expectation(
                "expect_column_values_to_be_in_type_list",
                {"column": column, "type_list": names},
                SHAPE_SEVERITY,
                observed=observed,
                notes=f"an object column holding values of types {names}",
            )
        type_name = names[0] if len(names) == 1 else "object"
    elif isinstance(dtype, np.dtype):  # int64, float64, bool, datetime64[ns], timedelta64[ns], ...
        type_name = dtype.name
    elif dtype.type is str:  # pandas "string" and "str" dtypes, any storage
        type_name = "str"
    elif isinstance(dtype, pd.CategoricalDtype):
        type_name = "CategoricalDtypeType"
    elif isinstance(dtype, pd.DatetimeTZDtype):
        type_name = "Timestamp"
    elif isinstance(dtype.type, type) and issubclass(dtype.type, np.generic):  # Int64, Float64, boolean
        type_name = np.dtype(dtype.type).name
    else:
        type_name = dtype.type.__name__
    notes = "" if type_name == str(dtype) else f"GX matches pandas dtype {str(dtype)!r} by the type name {type_name!r}"
    return expectation(
        "expect_column_values_to_be_of_type",
        {"column": column, "type_": type_name},
        SHAPE_SEVERITY,
        observed=observed,
        notes=notes,
    )


def _native_name(value: Any) -> str:
    for kind, type_name in _NATIVE_TYPE_NAMES:
        if isinstance(value, kind):
            return type_name
    return "object"


def null_expectations(column: str, null_fraction: float, null_margin: float, notes: list[str]) -> list[dict[str, Any]]:
    """Not-null for a column with ``null_fraction`` nulls: strict at 0, else ``mostly`` a ``null_margin`` lower."""
    if null_fraction == 0:
        return [
            expectation(
                "expect_column_values_to_not_be_null",
                {"column": column},
                SHAPE_SEVERITY,
                observed={"null_fraction": 0.0},
                notes="no null in the sample",
            )
        ]
    # Rounded down to 3 decimals, so the sample itself always passes.
    mostly = math.floor((1 - null_fraction - null_margin) * 1000) / 1000
    if mostly <= 0:
        notes.append(f"{null_fraction:.1%} of the sampled values are null: no null expectation")
        return []
    return [
        expectation(
            "expect_column_values_to_not_be_null",
            {"column": column, "mostly": mostly},
            SHAPE_SEVERITY,
            observed={"null_fraction": round(null_fraction, 6)},
            notes=f"{null_fraction:.2%} of the sampled values were null; mostly allows {null_margin:.0%} more",
        )
    ]


def distinct_count(values: pd.Series) -> int | None:
    """The number of distinct values, or None for unhashable ones."""
    try:
        return int(values.nunique())
    except TypeError:  # unhashable values (lists, dicts)
        return None


def value_set(
    column: str, values: pd.Series, distinct: int | None, max_categories: int, notes: list[str]
) -> list[dict[str, Any]]:
    """The set of ``values`` (``warn``) when it has at most ``max_categories`` values JSON can hold, else a note."""
    if distinct is None:
        notes.append("unhashable values: no set")
        return []
    if distinct > max_categories:
        notes.append(f"{distinct} distinct values (more than max_categories={max_categories}): no set")
        return []
    domain = value_domain(values)
    if domain is None:
        notes.append("values that JSON cannot hold as they are: no set")
        return []
    return [
        expectation(
            "expect_column_values_to_be_in_set",
            {"column": column, "value_set": domain},
            VALUE_SEVERITY,
            observed={"distinct": distinct},
            notes="the values seen in the sample; add the ones a new day may bring",
        )
    ]


def value_domain(values: pd.Series) -> list[Any] | None:
    """The sorted distinct values of ``values`` as plain JSON values, or None when JSON cannot hold them."""
    domain = [_plain(v) for v in pd.unique(values.to_numpy(dtype=object))]
    if not all(isinstance(v, (str, int, float, bool)) for v in domain):
        return None
    try:
        domain.sort()
    except TypeError:  # mixed types
        domain.sort(key=lambda v: (type(v).__name__, str(v)))
    return domain


def value_range(
    column: str, values: pd.Series, *, margin: float, integer: bool, notes: list[str]
) -> list[dict[str, Any]]:
    """The range of the finite ``values`` (``warn``), widened by ``margin`` of it on each side and rounded outwards.

    A side with an infinite value stays open; a range of values none of which is negative keeps 0 as its minimum.
    """
    numbers = values.to_numpy(dtype=float)
    finite = numbers[np.isfinite(numbers)]
    if finite.size == 0:
        notes.append("no finite value: no range")
        return []
    low, high = float(finite.min()), float(finite.max())
    pad = margin * (high - low) if high > low else margin * abs(high)
    min_value: float | None = _round_out(low - pad, pad, down=True, integer=integer)
    max_value: float | None = _round_out(high + pad, pad, down=False, integer=integer)
    clamped = low >= 0 and min_value is not None and min_value < 0
    if clamped:
        min_value = 0
    # Infinite values in the sample leave that side open rather than flagging the sample itself.
    if np.isneginf(numbers).any():
        min_value = None
    if np.isposinf(numbers).any():
        max_value = None
    if min_value is None and max_value is None:
        notes.append("infinite values on both sides: no range")
        return []
    kwargs: dict[str, Any] = {"column": column}
    if min_value is not None:
        kwargs["min_value"] = min_value
    if max_value is not None:
        kwargs["max_value"] = max_value
    observed: dict[str, Any] = {"min": int(low) if integer else low, "max": int(high) if integer else high}
    note = f"observed {observed['min']}..{observed['max']}, widened by {margin:.0%} of the range on each side"
    if clamped:
        note += "; kept at 0 as no sampled value is negative"
    return [expectation("expect_column_values_to_be_between", kwargs, VALUE_SEVERITY, observed=observed, notes=note)]


def _round_out(value: float, pad: float, *, down: bool, integer: bool) -> float:
    """``value`` rounded away from the data: to an integer, or to a tenth of the pad's order of magnitude."""
    if integer:
        return int(math.floor(value) if down else math.ceil(value))
    if pad <= 0:
        return value
    exponent = math.floor(math.log10(pad)) - 1
    step = 10.0**exponent
    rounded = (math.floor(value / step) if down else math.ceil(value / step)) * step
    return round(rounded, max(0, -exponent))


def _plain(value: Any) -> Any:
    """Numpy scalars as plain Python values, so the suite is JSON."""
    if isinstance(value, np.generic):
        return value.item()
    return value
