"""Stable prediction ids: the same row gets the same id in every process, on every machine, in every version.

A prediction id is how late labels find their prediction, and how a rerun of a day replaces (never doubles) its
rows, so it must not depend on anything but the row. ``hash()`` is salted per process and
``pandas.util.hash_pandas_object`` is an implementation detail of pandas; this module defines its own encoding.

The id (version ``v1``) is the first 32 hexadecimal digits (128 bits) of the SHA-256 of the UTF-8 text::

    "airflow-ml/prediction-id/v1" + enc(namespace) + for each column, sorted by name: enc(name) + token(value)

where ``enc(s)`` is ``f"{len(s)}:{s}"`` (so no two rows' texts can run together) and ``token`` is, by value:

- null (None, NaN, NaT, ``pd.NA``): ``n``;
- a boolean: ``b1`` or ``b0``;
- an integer, or a finite float with no fractional part: ``i`` + enc(its decimal digits)
  (``3``, ``3.0`` and ``np.int8(3)`` are one value: a key column that gains a null and turns float keeps its ids;
  ``-0.0`` is ``0``);
- any other float: ``f`` + enc(the shortest decimal that reads back as the same number in its own precision:
  Python's ``repr`` for float64, numpy's shortest float32 form for float32, so ``float32(0.1)`` is ``0.1``);
  infinities are ``inf`` and ``-inf``;
- a string (or a categorical's value): ``s`` + enc(the string);
- a date-time: ``t`` + enc(``YYYY-MM-DDTHH:MM:SS.uuuuuuNNN``) when naive, ``T`` + enc(the same in UTC) when aware,
  whatever the column's resolution (pandas 3 reads many as microseconds, pandas 2 as nanoseconds);
- a date: ``d`` + enc(``YYYY-MM-DD``); a duration: ``D`` + enc(its nanoseconds); bytes: ``x`` + enc(hex).

Column order in the frame does not matter (names are sorted); a string ``"3"`` and a number ``3`` differ.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from airflow_ml.exceptions import DataError

#: The first bytes of every hashed text; a new encoding gets a new version, never a changed meaning.
ID_SCHEME = "airflow-ml/prediction-id/v1"
#: Hexadecimal digits of an id (128 bits: no collision in any fleet's lifetime).
ID_LENGTH = 32


def prediction_ids(rows: pd.DataFrame, columns: Sequence[str], *, namespace: str) -> list[str]:
    """The stable id of each row of ``rows``, from the values of ``columns`` (see the module's docstring).

    Args:
        rows: The rows scored.
        columns: The columns that identify a row: the key the template names, or every input column to derive
            the id from the row's content.
        namespace: What the ids are unique within, e.g. ``"<template>/<city>"``: the same key in two cities
            gives two ids. Not the model or the date: a champion and its shadow challenger, and a rescored day,
            give a row the same id.

    Raises:
        DataError: when a column is missing, or holds values of a type with no canonical form (lists, dicts).
    """
    names = sorted(dict.fromkeys(columns))
    if not names:
        raise DataError("prediction ids need at least one column: name the key columns or pass the input columns")
    missing = [name for name in names if name not in rows.columns]
    if missing:
        raise DataError(
            f"the key column(s) {missing} are not in the rows to score (columns: {list(rows.columns)}); "
            "fix the key the template names, or add the column to the source"
        )
    # The texts are built for speed (a million rows per batch), the result is the text of the module's docstring:
    # the first name goes into the common prefix, the others between the tokens.
    prefix = f"{ID_SCHEME}{_enc(namespace)}{_enc(names[0])}"
    tokens = [column_tokens(rows[name]) for name in names]
    texts = tokens[0]
    if len(names) > 1:
        parts: list[Iterable[str]] = [tokens[0]]
        for name, column in zip(names[1:], tokens[1:], strict=True):
            parts += [itertools.repeat(_enc(name), len(rows)), column]
        texts = ["".join(row) for row in zip(*parts, strict=True)]
    sha256 = hashlib.sha256
    return [sha256(f"{prefix}{text}".encode()).hexdigest()[:ID_LENGTH] for text in texts]


def column_tokens(values: pd.Series) -> list[str]:
    """The canonical token of each value of one column (see the module's docstring).

    Raises:
        DataError: for a value of a type with no canonical form (a list, a dict).
    """
    try:
        return _tokens(values)
    except TypeError as exc:
        raise DataError(
            f"column {values.name!r} ({values.dtype}) cannot make a prediction id: {exc}; name key columns of plain "
            "types (numbers, strings, dates), or leave this column out of the key"
        ) from None


def _tokens(values: pd.Series) -> list[str]:
    dtype = values.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iu":
        return [f"i{len(text)}:{text}" for text in map(str, values.tolist())]
    if isinstance(dtype, np.dtype) and dtype == np.float32:
        # tolist() would widen float32(0.1) to 0.10000000149011612: read its own shortest form instead.
        return [_float(float(text)) for text in values.to_numpy().astype(str).tolist()]
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        return [_float(v) for v in values.tolist()]
    if isinstance(dtype, np.dtype) and dtype.kind == "M":
        return _naive_times(values.to_numpy(), "t")
    if isinstance(dtype, pd.DatetimeTZDtype):
        return _naive_times(values.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(), "T")
    if (isinstance(dtype, np.dtype) and dtype.kind == "O") or isinstance(dtype, pd.StringDtype):
        return [f"s{len(v)}:{v}" if type(v) is str else _token(v) for v in values.tolist()]
    return [_token(v) for v in values.tolist()]


def _enc(text: str) -> str:
    return f"{len(text)}:{text}"


def _int(value: int) -> str:
    return "i" + _enc(str(value))


def _float(value: float) -> str:
    if math.isnan(value):
        return "n"
    if math.isfinite(value) and value.is_integer():
        return _int(int(value))
    return "f" + _enc(repr(value))


def _time(value: pd.Timestamp) -> str:
    tag = "t"
    if value.tzinfo is not None:
        value, tag = value.tz_convert("UTC"), "T"
    text = f"{value.strftime('%Y-%m-%dT%H:%M:%S')}.{value.microsecond:06d}{value.nanosecond:03d}"
    return tag + _enc(text)


def _naive_times(values: np.ndarray, tag: str) -> list[str]:
    """Date-times of a datetime64 array of any resolution, formatted in C (strftime per value is slow)."""
    texts = np.datetime_as_string(values, unit="ns").tolist()  # YYYY-MM-DDTHH:MM:SS.uuuuuuNNN
    return ["n" if text == "NaT" else tag + _enc(text) for text in texts]


def _token(value: Any) -> str:
    if value is None or value is pd.NA or value is pd.NaT:
        return "n"
    kind = _BY_TYPE.get(type(value))
    if kind is not None:
        return kind(value)
    if isinstance(value, bool | np.bool_):
        return "b1" if value else "b0"
    if isinstance(value, int | np.integer):
        return _int(int(value))
    if isinstance(value, np.floating):
        return _float(float(str(value)))  # numpy's shortest form in the value's own precision
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, str):
        return "s" + _enc(value)
    if isinstance(value, dt.datetime | np.datetime64):
        return _time(pd.Timestamp(value))
    if isinstance(value, dt.date):
        return "d" + _enc(value.isoformat())
    if isinstance(value, dt.timedelta | np.timedelta64):
        return "D" + _enc(str(pd.Timedelta(value).value))
    if isinstance(value, bytes):
        return "x" + _enc(value.hex())
    raise TypeError(f"a value of type {type(value).__name__} has no canonical form")


#: The exact types most columns hold, looked up before the isinstance chain (a million rows go through it).
_BY_TYPE: dict[type, Callable[[Any], str]] = {
    str: lambda v: "s" + _enc(v),
    float: _float,
    int: _int,
    bool: lambda v: "b1" if v else "b0",
    pd.Timestamp: _time,
}
