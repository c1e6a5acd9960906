"""What the HTTP server reads and answers: the JSON bodies, and the rows checked against the model's signature.

A request's rows are turned into one data frame, once, with each column of the model's input schema given the
type the signature names (the raw rows' types that training logged): a number where the model expects a
number, an integer where it expects an integer, text where it expects text. A column that is missing or holds
a value of another type is refused with the column, the row and the fix (:class:`RowsRefused`, HTTP 422), before
the model sees anything.

The key and kept columns that are not model inputs are typed too, by the kind the dataset declares for them
(:func:`declared_types`): JSON has no date-time, so a key column such as ``pickup_at`` arrives as text, while
batch scoring reads it from parquet as a date-time; typed the same way, the same row gets the same prediction id
over HTTP as in the batch run, and its late label joins either.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from airflow_ml.exceptions import AirflowMLError

if TYPE_CHECKING:
    import pandas as pd

#: The most rows one request may carry (``create_app(max_rows=...)`` changes it).
MAX_ROWS = 10_000

_FLOATS = {"double": "float64", "float": "float32"}
_INTEGERS = {"long": "int64", "integer": "int32"}


class RowsRefused(AirflowMLError, ValueError):
    """Rows that do not fit the model's signature; the message names the column, the row and the fix."""

    def __init__(self, message: str, column: str | None = None) -> None:
        super().__init__(message)
        self.column = column


class PredictRequest(BaseModel):
    """``POST /v1/models/<template>/<city>:predict``: the rows to score, as JSON objects (column: value)."""

    model_config = ConfigDict(extra="forbid")

    rows: list[dict[str, Any]] = Field(min_length=1, description="The rows, each an object of column: value.")


class PredictResponse(BaseModel):
    """The predictions, one per row in the request's order, and the model version that made them."""

    model_name: str
    model_version: str
    source: str = Field(description="own: the city's champion; parent: its fallback parent's champion.")
    predictions: list[float | None]
    prediction_ids: list[str]
    logged: bool = Field(
        description="Whether the rows joined the prediction log: written, or buffered to be written within "
        "--log-flush-seconds (see docs/guides/serving.md)."
    )


def rows_frame(rows: Sequence[dict[str, Any]], schema: Any, features: Sequence[str]) -> pd.DataFrame:
    """The request's rows as one frame, with the model's input columns typed as its signature says.

    Args:
        rows: The request's rows (a key a row leaves out is a null).
        schema: The model's input schema (``model.metadata.get_input_schema()``), or None without a signature.
        features: The city's feature columns (checked when the model has no signature).

    Raises:
        RowsRefused: a column the model needs that no row has, or a value of the wrong type, naming both.
    """
    import pandas as pd

    frame = pd.DataFrame.from_records(list(rows))
    specs = [(spec.name, str(spec.type.name)) for spec in schema.inputs] if schema is not None else []
    needed = [name for name, _ in specs] if specs else list(features)
    missing = [name for name in needed if name not in frame.columns]
    if missing:
        raise RowsRefused(
            f"the rows have no column {missing[0]!r} (missing: {missing}); the model's input is {needed}: send "
            "every one in each row (null where a value is unknown)",
            missing[0],
        )
    for name, kind in specs:
        frame[name] = _typed(frame[name], name, kind)
    return frame


def declared_types(frame: pd.DataFrame, kinds: Mapping[str, str], columns: Iterable[str]) -> pd.DataFrame:
    """``frame`` with each of ``columns`` it holds typed by the kind the dataset declares for it (as batch reads it).

    Args:
        frame: The request's rows (:func:`rows_frame`).
        kinds: Column → its kind in the dataset contract (:data:`airflow_ml.data.contract.ColumnKind`): ``time``
            (the dataset's time column) becomes a date-time, ``numeric``, ``binned`` and ``regression_target``
            numbers; other kinds, and columns the dataset declares no kind for, stay as JSON gave them.
        columns: The key and kept columns.

    Raises:
        RowsRefused: a value that is not of its column's kind, naming the column, the row and the fix.
    """
    import pandas as pd

    for name in dict.fromkeys(columns):
        kind = kinds.get(name)
        if name not in frame.columns or kind is None:
            continue
        values = frame[name]
        if kind == "time":
            frame[name] = _times(values, name)
        elif kind in ("numeric", "binned", "regression_target") and not pd.api.types.is_numeric_dtype(values.dtype):
            _refuse(values, name, f"{kind} in the dataset", "a number (or null)", lambda v: _is_number(v) or v is None)
            frame[name] = values.astype("float64")
    return frame


def _times(values: pd.Series, name: str) -> pd.Series:
    """ISO 8601 texts as date-times: all without a UTC offset (naive), or all with one (in UTC), never mixed."""
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return values
    fix = "send ISO 8601 text such as '2026-03-02T08:15:00' (or null), with or without a UTC offset as the data has it"
    stamps: list[Any] = []
    for row, value in enumerate(values.tolist()):
        if value is None or (isinstance(value, float) and value != value):
            stamps.append(None)
            continue
        try:
            if not isinstance(value, str):
                raise TypeError(type(value).__name__)
            stamps.append(pd.Timestamp(value))
        except (TypeError, ValueError, OverflowError):
            raise RowsRefused(
                f"column {name!r}: row {row} is {value!r}, not a date-time, and the dataset declares it its time "
                f"column; {fix}",
                name,
            ) from None
    aware = {stamp.tzinfo is not None for stamp in stamps if stamp is not None}
    if len(aware) > 1:
        raise RowsRefused(
            f"column {name!r} mixes date-times with and without a UTC offset, which name different instants; {fix}, "
            "the same way in every row",
            name,
        )
    typed = pd.to_datetime(stamps, utc=aware == {True})
    return pd.Series(typed, index=values.index, name=name)


def model_columns(schema: Any, features: Sequence[str]) -> list[str]:
    """The columns the model is given: its signature's inputs, else the city's features."""
    return list(schema.input_names()) if schema is not None else list(features)


def _typed(values: pd.Series, name: str, kind: str) -> pd.Series:
    import pandas as pd

    dtype = values.dtype
    numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
    if kind in _FLOATS:
        if not numeric:
            _refuse(values, name, kind, "a number (or null)", lambda v: _is_number(v) or v is None)
        return values.astype(_FLOATS[kind])
    if kind in _INTEGERS:
        if not numeric:
            _refuse(values, name, kind, "an integer", lambda v: _is_number(v) and float(v).is_integer())
        if values.isna().any():
            row = int(values.isna().to_numpy().nonzero()[0][0])
            raise RowsRefused(
                f"column {name!r}: row {row} is null, and the model's signature says {kind} (integers, no nulls); "
                "send an integer",
                name,
            )
        fractional = values != values.round()
        if fractional.any():
            row = int(fractional.to_numpy().nonzero()[0][0])
            raise RowsRefused(
                f"column {name!r}: row {row} is {values.iloc[row].item()!r}, and the model's signature says {kind}; "
                "send an integer",
                name,
            )
        return values.astype(_INTEGERS[kind])
    if kind == "boolean":
        if not pd.api.types.is_bool_dtype(dtype):
            _refuse(values, name, kind, "true or false", lambda v: isinstance(v, bool))
        return values.astype(bool)
    if kind == "string":
        _refuse(values, name, kind, "text (or null)", lambda v: isinstance(v, str) or v is None)
        return values
    return values


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _refuse(values: pd.Series, name: str, kind: str, expected: str, fits: Any) -> None:
    """Raise for the first value of ``values`` that does not fit (NaN counts as a null)."""
    for row, value in enumerate(values.tolist()):
        if isinstance(value, float) and value != value:  # NaN: a key the row left out
            value = None
        if not fits(value):
            raise RowsRefused(
                f"column {name!r}: row {row} is {value!r} ({type(value).__name__}), and the model's signature says "
                f"{kind}; send {expected}",
                name,
            )
