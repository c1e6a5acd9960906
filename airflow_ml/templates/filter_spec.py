"""Row filters of a dataset (``dataset.filters``): a closed list of operators over named columns, scalar values.

A filter is data, never an expression: a column, an operator from :data:`FilterOp` and a bounded YAML
scalar (or a short list of them). The snapshot applies them (``airflow_ml.data.conformance``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from airflow_ml.templates.base import Strict

#: A value a row filter compares with: a YAML scalar, bounded (no expressions, no code).
FilterScalar = (
    StrictBool
    | Annotated[StrictInt, Field(ge=-(10**15), le=10**15)]
    | Annotated[float, Field(strict=True, allow_inf_nan=False, ge=-1e15, le=1e15)]
    | Annotated[StrictStr, Field(max_length=200)]
)
#: The row filter operators; the same closed list as ``airflow_ml.data.contract.FilterOp``.
FilterOp = Literal["not_null", "is_null", "==", "!=", "<", "<=", ">", ">=", "in", "not_in"]


class RowFilterSpec(Strict):
    """Keep only the rows whose column passes a test, e.g. ``{column: duration_min, op: not_null}``.

    Applied at snapshot time, in order; the manifest records how many rows each one dropped. A null never
    passes a comparison (``==``, ``!=``, ``<``..., ``in``, ``not_in``).
    """

    column: str = Field(
        min_length=1, max_length=200, description="A column the dataset names (feature, target, extra column...)."
    )
    op: FilterOp = Field(
        description="not_null, is_null (no value); ==, != (a value); <, <=, >, >= (a number); in, not_in (a list)."
    )
    value: FilterScalar | Annotated[list[FilterScalar], Field(min_length=1, max_length=100)] | None = Field(
        default=None, description="What the column is compared with; a list for in/not_in; none for the null tests."
    )

    @field_validator("value", mode="wrap")
    @classmethod
    def _one_message(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        # One line instead of one per member of the union (bool, int, float, str, list).
        try:
            return handler(value)
        except ValidationError:
            raise ValueError(
                "a filter's value is a number (finite, within ±1e15), a string (at most 200 characters), true or "
                "false, or for in/not_in a list of 1 to 100 of them"
            ) from None

    @model_validator(mode="after")
    def _value_fits_op(self) -> RowFilterSpec:
        if self.op in ("not_null", "is_null"):
            if self.value is not None:
                raise ValueError(f"op {self.op!r} takes no value; remove 'value: {self.value!r}'")
        elif self.op in ("in", "not_in"):
            if not isinstance(self.value, list):
                raise ValueError(f"op {self.op!r} takes a list of values, e.g. 'value: [a, b]'")
        elif self.value is None or isinstance(self.value, list):
            raise ValueError(f"op {self.op!r} takes one value, e.g. 'value: 0'")
        elif self.op in ("<", "<=", ">", ">=") and (isinstance(self.value, (bool, str))):
            raise ValueError(f"op {self.op!r} compares numbers; give a number as value, not {self.value!r}")
        return self
