"""Check a snapshot's rows against the DAG's :class:`~airflow_ml.data.contract.DataContract`, and filter them.

Everything here runs before a snapshot is written, so data that breaks the contract leaves no snapshot:
a column the configuration names that some partition files lack, a column's type that differs between
partition files (``pd.concat`` would make it an object column), a column the configuration names but the
data lacks or holds in an unusable type, a row filter that keeps nothing. Each raises
:class:`~airflow_ml.exceptions.DataContractError` naming the file or the field. What is only worth a
warning (days missing in the window, rows outside their ``date=`` partition) is counted for the manifest.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
from pandas.api import types as ptypes

from airflow_ml.data.contract import LIST_OPS, ORDER_OPS, UNARY_OPS, ColumnRule, DataContract, RowFilter
from airflow_ml.exceptions import DataContractError

#: ``pandas.api.types.infer_dtype`` kinds, grouped by what ``pd.concat`` can put in one column.
_FAMILIES = {
    "string": "text",
    "categorical": "text",
    "integer": "numbers",
    "floating": "numbers",
    "mixed-integer-float": "numbers",
    "decimal": "numbers",
    "boolean": "true/false",
    "datetime64": "date-times",
    "datetime": "date-times",
    "date": "dates (no time of day)",
    "timedelta64": "durations",
    "timedelta": "durations",
    "empty": "",  # only nulls: fits any other family
}
_MIXED = "mixed values"
_SHOWN_FILES = 3
_HEAD = 256


def family(values: pd.Series) -> str:
    """What a column holds, in words (``numbers``, ``text``, ``date-times (UTC)``...); ``""`` when only nulls."""
    kind = _FAMILIES.get(ptypes.infer_dtype(values, skipna=True), _MIXED)
    if kind == "date-times" and isinstance(values.dtype, pd.DatetimeTZDtype):
        return f"date-times ({values.dtype.tz})"
    return kind


def check_file_types(files: Sequence[tuple[str, pd.DataFrame]]) -> None:
    """Every column holds the same kind of values in every partition file.

    Args:
        files: ``(path, rows)`` of each file read, as a person would look the path up.

    Raises:
        DataContractError: naming each column whose files disagree, the files in the minority and the
            kind of values the others hold.
    """
    # Each file's column is kept as it is: an example value is only looked up for the message of a problem.
    check_kinds([(p, {str(c): (k, f[c]) for c in f.columns if (k := family(f[c]))}) for p, f in files])


def file_kinds(frame: pd.DataFrame) -> dict[str, tuple[str, Any]]:
    """Per column of a file read in another process (a Dask worker), its kind of values and the first present one."""
    return {str(c): (kind, _example(frame[c])) for c in frame.columns if (kind := family(frame[c]))}


def check_kinds(files: Sequence[tuple[str, dict[str, tuple[str, Any]]]]) -> None:
    """:func:`check_file_types` from each file's :func:`file_kinds` (or column values, for a lazy example).

    Raises:
        DataContractError: as :func:`check_file_types`.
    """
    seen: dict[str, dict[str, list[tuple[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for path, found in files:
        for column, (kind, example) in found.items():
            seen[column][kind].append((path, example))
    problems = []
    for column, kinds in seen.items():
        if len(kinds) == 1 and _MIXED not in kinds:
            continue
        usual = max(kinds, key=lambda k: (k != _MIXED, len(kinds[k])))
        for kind, where in kinds.items():
            named = ", ".join(repr(p) for p, _ in where[:_SHOWN_FILES])
            named += f" and {len(where) - _SHOWN_FILES} more" if len(where) > _SHOWN_FILES else ""
            if kind == _MIXED:  # e.g. a CSV column that pandas read as numbers here and text there
                problems.append(f"column {column!r} holds {kind} (text and numbers, say) within {named}")
            elif kind != usual:
                others = sum(len(w) for k, w in kinds.items() if k != kind)
                problems.append(
                    f"column {column!r} holds {kind} (e.g. {_shown(where[0][1])!r}) in {named}, but {usual} in the "
                    f"other {others} file(s)"
                )
    if problems:
        raise DataContractError(
            "partition files disagree on column types; concatenated, the column would become a mix of both:\n"
            + "\n".join(f"  - {p}" for p in problems)
            + "\nrewrite the file(s) named with one type per column (the usual one), or delete them, then run again"
        )


def check_file_columns(files: Sequence[tuple[str, pd.DataFrame]], contract: DataContract) -> None:
    """Every column the contract names is in every partition file (or in none: :func:`check_columns` says so).

    Concatenated, a file that lacks a column would give its rows nulls there (and turn an integer column
    into floats), which validation's ``mostly`` may let through.

    Args:
        files: ``(path, rows)`` of each file read, as a person would look the path up.

    Raises:
        DataContractError: naming each column, its configuration fields, the files that lack it and a "did
            you mean" among those files' columns.
    """
    fields: dict[str, list[str]] = {}
    pairs = [(r.column, r.field) for r in contract.rules] + [(f.column, f.field) for f in contract.filters]
    for column, field in pairs:
        fields.setdefault(column, [])
        if field not in fields[column]:
            fields[column].append(field)
    problems = []
    for column, named_by in fields.items():
        lacking = [(path, frame) for path, frame in files if column not in frame.columns]
        if not lacking or len(lacking) == len(files):
            continue
        shown = ", ".join(repr(path) for path, _ in lacking[:_SHOWN_FILES])
        shown += f" and {len(lacking) - _SHOWN_FILES} more" if len(lacking) > _SHOWN_FILES else ""
        close = difflib.get_close_matches(column, [str(c) for c in lacking[0][1].columns], n=1, cutoff=0.6)
        hint = f" (which hold {close[0]!r}: renamed?)" if close else ""
        problems.append(
            f"{', '.join(f for f in named_by if f) or 'the contract'}: column {column!r} is missing from "
            f"{len(lacking)} of the {len(files)} partition files: {shown}{hint}"
        )
    if problems:
        raise DataContractError(
            "partition files disagree on the columns the template names; concatenated, those files' rows would "
            "hold nulls there:\n"
            + "\n".join(f"  - {p}" for p in problems)
            + "\nadd the column to the file(s) named (or rename it back), or delete them, then run again"
        )


def check_columns(frame: pd.DataFrame, contract: DataContract) -> None:
    """Every column the contract names exists, holds a usable type, and fits the filters that test it.

    Raises:
        DataContractError: listing every problem, each with the configuration field, the column and a
            "did you mean" among the data's columns.
    """
    columns = [str(c) for c in frame.columns]
    missing: dict[str, list[str]] = {}
    problems = []
    for rule in contract.rules:
        if rule.column not in frame.columns:
            missing.setdefault(rule.column, []).append(rule.field)
            continue
        problem = _kind_problem(frame[rule.column], rule)
        if problem:
            problems.append(problem)
    for row_filter in contract.filters:
        if row_filter.column not in frame.columns:
            missing.setdefault(row_filter.column, []).append(row_filter.field)
            continue
        problem = _filter_problem(frame[row_filter.column], row_filter)
        if problem:
            problems.append(problem)
    for column, fields in missing.items():
        close = difflib.get_close_matches(column, columns, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        problems.insert(0, f"{', '.join(fields)}: column {column!r} is not in the data{hint}")
    _raise_if(problems, columns)


def check_values(frame: pd.DataFrame, contract: DataContract) -> None:
    """The values a type cannot tell: a binary target holds only 0 and 1 (checked after the row filters).

    Raises:
        DataContractError: naming the field, the column and the values found.
    """
    problems = []
    for rule in contract.rules:
        if rule.kind != "binary_target" or rule.column not in frame.columns:
            continue
        values = frame[rule.column].dropna()
        if ptypes.is_bool_dtype(values.dtype) or not ptypes.is_numeric_dtype(values.dtype):
            continue
        odd = sorted(set(values.unique().tolist()) - {0, 1})
        if odd:
            problems.append(
                f"{rule.field}: column {rule.column!r} must hold {_KIND_WORDS[rule.kind]}, but holds {odd[:5]}"
                f"{' ...' if len(odd) > 5 else ''}; map the outcome to 0/1 in the data, or drop those rows "
                "with dataset.filters"
            )
    _raise_if(problems, [str(c) for c in frame.columns])


def apply_filters(
    frame: pd.DataFrame, filters: Iterable[RowFilter], *, refuse_empty: bool = True
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Keep the rows that pass every filter, in order; return them and, per filter, the rows it dropped.

    Args:
        refuse_empty: Raise when a filter drops every row left. Off for one part of a frame (a Dask partition):
            each filter's record then also holds the rows it saw (``left``) and, when it dropped them all, what
            its column held (``held``), to judge the whole frame with.

    Raises:
        DataContractError: when a filter drops every row left, naming it and what its column holds.
    """
    applied = []
    for row_filter in filters:
        keep = _mask(frame[row_filter.column], row_filter)
        dropped = int(len(frame) - keep.sum())
        held = _summary(frame[row_filter.column]) if dropped == len(frame) and dropped else None
        if held is not None and refuse_empty:
            raise DataContractError(drops_all_message(row_filter, len(frame), held))
        record = {} if refuse_empty else {"left": len(frame), "held": held}
        frame = frame[keep.to_numpy()].reset_index(drop=True) if dropped else frame
        value = list(row_filter.value) if row_filter.op in LIST_OPS else row_filter.value
        applied.append({"field": row_filter.field, "filter": row_filter.describe(), "column": row_filter.column,
                        "op": row_filter.op, "value": value, "dropped": dropped, **record})  # fmt: skip
    return frame, applied


def drops_all_message(row_filter: RowFilter | dict[str, Any], rows: int, held: str) -> str:
    """Why a filter (or its record from :func:`apply_filters`) that drops all ``rows`` left is refused."""
    field, describe, column = (
        (row_filter["field"], row_filter["filter"], row_filter["column"])
        if isinstance(row_filter, dict)
        else (row_filter.field, row_filter.describe(), row_filter.column)
    )
    return (
        f"{field or 'a filter'} ({describe}) drops every one of the {rows:,} rows left; column {column!r} holds "
        f"{held}: fix the filter's value (or op) in dataset.filters, or the data"
    )


def rows_outside_partition(frame: pd.DataFrame, time_column: str | None, day: dt.date) -> int:
    """How many rows of the ``date=<day>`` partition have a time on another day (nulls are not counted)."""
    if time_column is None or time_column not in frame.columns:
        return 0
    times = frame[time_column]
    if not ptypes.is_datetime64_any_dtype(times.dtype):
        return 0  # the contract check names the column's type
    midnight = pd.Timestamp(day)
    if isinstance(times.dtype, pd.DatetimeTZDtype):
        midnight = midnight.tz_localize(times.dtype.tz)
    return int((times.notna() & (times.dt.normalize() != midnight)).sum())


def missing_days(first: dt.date, last: dt.date, present: Iterable[dt.date]) -> list[str]:
    """The days from ``first`` to ``last`` without a partition, as ``YYYY-MM-DD`` or ``first..last`` ranges.

    Computed from the gaps between the partitions, never day by day: a window of any length costs what its
    partitions cost (a run's window is bounded anyway, see ``airflow_ml.operators.overrides``).
    """
    end = last.toordinal()
    ranges: list[tuple[int, int]] = []
    expected = first.toordinal()  # the next day that needs a partition; ordinals cannot overflow past date.max
    for day in sorted({d.toordinal() for d in present if first <= d <= last}):
        if day > expected:
            ranges.append((expected, day - 1))
        expected = day + 1
    if expected <= end:
        ranges.append((expected, end))
    shown = [(dt.date.fromordinal(a).isoformat(), dt.date.fromordinal(b).isoformat()) for a, b in ranges]
    return [a if a == b else f"{a}..{b}" for a, b in shown]


def count_days(ranges: Iterable[str]) -> int:
    """How many days :func:`missing_days`'s ranges hold."""
    total = 0
    for item in ranges:
        first, _, last = item.partition("..")
        total += (dt.date.fromisoformat(last or first) - dt.date.fromisoformat(first)).days + 1
    return total


_KIND_WORDS = {
    "numeric": "numbers or true/false (a numeric feature)",
    "categorical": "text, categories, integers or true/false (a categorical feature)",
    "regression_target": "numbers (the target of a regression)",
    "binary_target": "0/1 or true/false (the target of a binary task)",
    "time": "date-times (the time column)",
    "binned": "numbers (the slice has bins)",
}
_FITS = {
    "numeric": {"numbers", "true/false"},
    "categorical": {"text", "numbers", "true/false"},
    "regression_target": {"numbers"},
    "binary_target": {"numbers", "true/false"},
    "time": {"date-times"},
    "binned": {"numbers"},
}
_FIXES = {
    "numeric": "write it as numbers, or list it in dataset.categorical_features",
    "categorical": "write it as text or integers, or remove it from dataset.categorical_features",
    "regression_target": "write it as numbers, or use task: binary for a true/false outcome",
    "binary_target": "write the outcome as 0/1 or true/false",
    "time": "write it as a timestamp (with format: csv, as ISO 8601 text such as 2026-01-05 08:14:18)",
    "binned": "remove the slice's bins to slice by value, or write the column as numbers",
}


def _kind_problem(values: pd.Series, rule: ColumnRule) -> str | None:
    if rule.kind == "present":
        return None
    kind = family(values)
    fits = kind.split(" (")[0] in _FITS[rule.kind] if kind else True  # only nulls: the suite says so
    if fits and rule.kind == "categorical" and kind == "numbers" and ptypes.is_float_dtype(values.dtype):
        present = values.dropna()
        fractional = present[present != present.round()]
        if len(fractional):
            return (
                f"{rule.field}: column {rule.column!r} must hold {_KIND_WORDS[rule.kind]}, but holds fractional "
                f"numbers (e.g. {fractional.iloc[0].item()!r}); {_FIXES[rule.kind]}"
            )
    if fits:
        return None
    return (
        f"{rule.field}: column {rule.column!r} must hold {_KIND_WORDS[rule.kind]}, but holds {kind} "
        f"(e.g. {_example(values)!r}, dtype {values.dtype}); {_FIXES[rule.kind]}"
    )


def _filter_problem(values: pd.Series, row_filter: RowFilter) -> str | None:
    if row_filter.op in UNARY_OPS:
        return None
    kind = family(values).split(" (")[0]
    wanted = list(row_filter.value) if row_filter.op in LIST_OPS else [row_filter.value]
    if row_filter.op in ORDER_OPS:
        fits = kind in ("numbers", "")
        needs = "numbers"
    elif all(isinstance(v, bool) for v in wanted):
        fits, needs = kind in ("true/false", "numbers", ""), "true/false"
    elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in wanted):
        fits, needs = kind in ("numbers", ""), "numbers"
    else:
        fits, needs = kind in ("text", ""), "text"
    if fits:
        return None
    return (
        f"{row_filter.field} ({row_filter.describe()}): compares {needs} with column {row_filter.column!r}, which "
        f"holds {kind} (e.g. {_example(values)!r}); it would keep no row or every row: fix the value or the column"
    )


def _mask(values: pd.Series, row_filter: RowFilter) -> pd.Series:
    op, value = row_filter.op, row_filter.value
    present = values.notna()
    if op == "not_null":
        return present
    if op == "is_null":
        return ~present
    if op in LIST_OPS:
        inside = values.isin(list(value)).fillna(False).astype(bool)
        return inside & present if op == "in" else ~inside & present
    compare = {"==": values.eq, "!=": values.ne, "<": values.lt, "<=": values.le, ">": values.gt, ">=": values.ge}
    return compare[op](value).fillna(False).astype(bool) & present


def _raise_if(problems: list[str], columns: list[str]) -> None:
    if problems:
        shown = columns if len(columns) <= 40 else [*columns[:40], f"... {len(columns) - 40} more"]
        raise DataContractError(
            "the data does not match the dataset contract of the template (or the city file that overrides it):\n"
            + "\n".join(f"  - {p}" for p in problems)
            + f"\nthe data's columns: {shown}"
        )


def _example(values: pd.Series) -> Any:
    # The head first: dropna copies the whole column, and the first present value is nearly always near the top.
    for part in (values.iloc[:_HEAD], values):
        present = part.dropna()
        if not present.empty:
            value = present.iloc[0]
            return value.item() if hasattr(value, "item") else value
    return None


def _shown(example: Any) -> Any:
    return _example(example) if isinstance(example, pd.Series) else example


def _summary(values: pd.Series) -> str:
    present = values.dropna()
    if present.empty:
        return "only nulls"
    if ptypes.is_numeric_dtype(present.dtype) and not ptypes.is_bool_dtype(present.dtype):
        return f"values from {present.min()!r} to {present.max()!r}"
    common = present.astype(str).value_counts().index[:5].tolist()
    return f"values such as {common}"
