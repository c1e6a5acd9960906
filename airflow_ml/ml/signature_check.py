"""Rows held against a model's input signature before it scores them: refused with the differences, never coerced.

The signature is the one training logged (``infer_signature`` of the raw rows: ``double``, ``long``, ``string``,
``boolean``, ``datetime``...). MLflow's own schema enforcement converts what it can and fails on the rest with
an error that names neither the file nor the fix; a batch whose columns changed type since training (a number
column that arrives as text, decimals where the model was trained on integers) must instead stop before the
model sees it, listing every difference. One conversion is allowed because it loses nothing and is said aloud:
integers where the signature reads ``double`` (a column with no fraction in this batch) are *widened*, and the
caller logs which columns were.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from airflow_ml.exceptions import DataError

_FLOATS = frozenset({"double", "float"})
_INTEGERS = frozenset({"long", "integer"})


class SignatureMismatch(DataError):
    """Rows whose columns do not fit the model's input signature; the message lists every difference."""


@dataclass(frozen=True)
class SignatureFit:
    """How a frame fits a model's input signature.

    Attributes:
        problems: One sentence per column that is missing or of another type, in the signature's order.
        widened: Columns of integers that the signature reads as ``double`` (allowed, to be logged).
    """

    problems: tuple[str, ...] = ()
    widened: tuple[str, ...] = ()

    @property
    def fits(self) -> bool:
        """Whether the model may score the rows."""
        return not self.problems


def signature_fit(schema: Any, rows: pd.DataFrame) -> SignatureFit:
    """Each column of the input ``schema`` (``model.metadata.get_input_schema()``) against ``rows``' dtypes.

    A model without a signature (``schema`` None) or a schema that is not column-based fits anything.
    """
    if schema is None or not getattr(schema, "has_input_names", lambda: False)():
        return SignatureFit()
    problems: list[str] = []
    widened: list[str] = []
    for spec in schema.inputs:
        name, kind = spec.name, str(getattr(spec.type, "name", spec.type))
        if name not in rows.columns:
            if getattr(spec, "required", True):
                problems.append(f"column {name!r} is missing (the signature says {kind})")
            continue
        found = _kind(rows[name])
        if found == kind or (kind in _FLOATS and found in _FLOATS) or (kind in _INTEGERS and found in _INTEGERS):
            continue
        if kind in _FLOATS and found in _INTEGERS:
            widened.append(name)
            continue
        problems.append(f"column {name!r} holds {found} ({rows[name].dtype}), the signature says {kind}")
    return SignatureFit(tuple(problems), tuple(widened))


def check_signature(schema: Any, rows: pd.DataFrame, *, what: str, model: str) -> SignatureFit:
    """:func:`signature_fit`, raising when the rows do not fit.

    Args:
        what: The rows, for the message (``partition '.../date=2026-03-02'``).
        model: The model, for the message (``ride_duration.lisbon v3``).

    Raises:
        SignatureMismatch: listing every difference, and the two ways out.
    """
    fit = signature_fit(schema, rows)
    if not fit.fits:
        raise SignatureMismatch(
            f"{what} does not fit the input signature of {model}: {'; '.join(fit.problems)}. Nothing was scored: "
            "fix the source's files to the types the model was trained on, or retrain on the new columns (the gate "
            "refuses a changed schema unless the template declares gate.accept_schema_change)"
        )
    return fit


def _kind(values: pd.Series) -> str:
    """The signature's name for a column's type: ``long``, ``double``, ``boolean``, ``string``, ``datetime``..."""
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "long"
    if pd.api.types.is_float_dtype(dtype):
        return "double"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if isinstance(dtype, pd.CategoricalDtype):
        return _kind(pd.Series(dtype.categories))
    if pd.api.types.is_string_dtype(dtype):
        inferred = pd.api.types.infer_dtype(values, skipna=True)
        return "string" if inferred in ("string", "empty") else f"mixed values ({inferred})"
    return str(dtype)
