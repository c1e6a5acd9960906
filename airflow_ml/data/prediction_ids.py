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

import binascii
import datetime as dt
import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from airflow_ml.exceptions import DataError

#: The first bytes of every hashed text; a new encoding gets a new version, never a changed meaning.
ID_SCHEME = "airflow-ml/prediction-id/v1"
#: Hexadecimal digits of an id (128 bits: no collision in any fleet's lifetime).
ID_LENGTH = 32
_DIGEST_BYTES = ID_LENGTH // 2
_HASHED_AT_ONCE = 65_536


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
    return hash_rows(rows, columns, namespace=namespace).array().to_pylist()


@dataclass(frozen=True)
class RowIds:
    """The ids of a batch of rows, as the first 16 bytes of each row's SHA-256, one after the other.

    The batch path keeps them as bytes: a million rows never become a million Python strings.
    """

    digests: bytes

    def __len__(self) -> int:
        return len(self.digests) // _DIGEST_BYTES

    def array(self) -> pa.StringArray:
        """The ids as an Arrow string array of hexadecimal digits (what the prediction log stores)."""
        offsets = np.arange(0, (len(self) + 1) * ID_LENGTH, ID_LENGTH, dtype=np.int32)
        hexadecimal = binascii.hexlify(self.digests)
        return pa.StringArray.from_buffers(len(self), pa.py_buffer(offsets), pa.py_buffer(hexadecimal))

    def first_repeat(self) -> tuple[int, int] | None:
        """The first row whose id an earlier row has, as (earlier row, row); None when every id is unique.

        Sorting the ids' first 8 bytes as integers finds a repeat in C; only a batch that has one is scanned
        row by row, to name the rows.
        """
        if len(self) < 2:
            return None
        heads = np.sort(np.frombuffer(self.digests, dtype="<u8")[::2])
        if not bool((heads[1:] == heads[:-1]).any()):
            return None
        seen: dict[bytes, int] = {}
        for position in range(len(self)):
            digest = self.digests[position * _DIGEST_BYTES : (position + 1) * _DIGEST_BYTES]
            first = seen.setdefault(digest, position)
            if first != position:
                return first, position
        return None  # the same first 8 bytes, different ids


def hash_rows(rows: pd.DataFrame, columns: Sequence[str], *, namespace: str) -> RowIds:
    """:func:`prediction_ids` for a batch: the same ids, built column by column.

    The texts of the module's docstring are joined in Arrow's C kernels, column by column; only each text's
    SHA-256 is a Python call per row (``hashlib`` has no vectorised form).

    Raises:
        DataError: as :func:`prediction_ids`.
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
    if not len(rows):
        return RowIds(b"")
    # The first name goes into the common prefix, the others between the tokens.
    parts: list[Any] = [pa.scalar(f"{ID_SCHEME}{_enc(namespace)}{_enc(names[0])}")]
    for position, name in enumerate(names):
        if position:
            parts.append(pa.scalar(_enc(name)))
        parts.append(column_token_array(rows[name]))
    texts = pc.binary_join_element_wise(*parts, "").cast(pa.binary())
    sha256 = hashlib.sha256
    digests = []
    for start in range(0, len(texts), _HASHED_AT_ONCE):  # a slice at a time: never a million bytes objects at once
        chunk = texts.slice(start, _HASHED_AT_ONCE).to_pylist()
        digests.append(b"".join([sha256(text).digest()[:_DIGEST_BYTES] for text in chunk]))
    return RowIds(b"".join(digests))


def column_token_array(values: pd.Series) -> pa.StringArray:
    """:func:`column_tokens` as an Arrow string array, built in C for strings, integers, booleans and date-times.

    Raises:
        DataError: for a value of a type with no canonical form (a list, a dict).
    """
    dtype = values.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iu":
        return _tagged("i", pa.array(values.to_numpy()).cast(pa.string()))
    if isinstance(dtype, np.dtype) and dtype.kind == "b":
        return pa.array(np.where(values.to_numpy(), "b1", "b0"), pa.string())
    if isinstance(dtype, np.dtype) and dtype.kind == "M":
        return _time_tokens(values.to_numpy(), "t")
    if isinstance(dtype, pd.DatetimeTZDtype):
        return _time_tokens(values.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(), "T")
    if isinstance(dtype, pd.StringDtype):
        text = pa.array(values.array, from_pandas=True).cast(pa.string())
        return pc.fill_null(_tagged("s", text), "n")
    return pa.array(column_tokens(values), pa.string())


def _tagged(tag: str, text: pa.StringArray) -> pa.StringArray:
    """``tag + enc(text)`` per value, a null staying null; the length counts characters, as ``len`` does."""
    return pc.binary_join_element_wise(tag, pc.utf8_length(text).cast(pa.string()), ":", text, "")


#: Zeros that pad Arrow's text of a date-time of each resolution to nanoseconds (``.uuuuuuNNN``).
_TO_NANOSECONDS = {"s": ".000000000", "ms": "000000", "us": "000", "ns": ""}


def _time_tokens(values: np.ndarray, tag: str) -> pa.StringArray:
    """Date-times of a datetime64 array, formatted by Arrow in their own resolution (no overflow to nanoseconds)."""
    unit = np.datetime_data(values.dtype)[0]
    if unit not in _TO_NANOSECONDS:  # days, minutes...: numpy's formatting, slower but exact
        return pa.array(_naive_times(values, tag), pa.string())
    text = pc.replace_substring(pa.array(values).cast(pa.string()), " ", "T", max_replacements=1)
    return pc.fill_null(pc.binary_join_element_wise(f"{tag}29:", text, _TO_NANOSECONDS[unit], ""), "n")


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
    # The year as four digits (``%Y`` leaves out the zeros of a year before 1000 on some platforms).
    text = f"{value.year:04d}-{value.strftime('%m-%dT%H:%M:%S')}.{value.microsecond:06d}{value.nanosecond:03d}"
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
