"""The dataset contract of a DAG: the columns its tasks need, of which kind, and the rows it keeps.

The factory builds one :class:`DataContract` from a city's validated configuration; the snapshot checks the
data against it before anything is written (see :mod:`airflow_ml.data.conformance`), so a column the
template names but the data lacks stops the run at its first task, not in training. Plain data: no pandas
here, DAG files import this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

#: What a column must hold. ``numeric``: numbers or booleans; ``categorical``: text, category, integers or
#: booleans; ``regression_target``: numbers; ``binary_target``: 0/1 or booleans; ``time``: date-times;
#: ``binned``: numbers (a gate slice with bins); ``present``: anything, the column must only exist.
ColumnKind = Literal["numeric", "categorical", "regression_target", "binary_target", "time", "binned", "present"]
#: The closed list of row filter operators: YAML names one of them, never an expression.
FilterOp = Literal["not_null", "is_null", "==", "!=", "<", "<=", ">", ">=", "in", "not_in"]
FILTER_OPS: tuple[str, ...] = get_args(FilterOp)
#: Operators that take no value, and those that take a list of values.
UNARY_OPS = frozenset({"not_null", "is_null"})
LIST_OPS = frozenset({"in", "not_in"})
ORDER_OPS = frozenset({"<", "<=", ">", ">="})


@dataclass(frozen=True)
class ColumnRule:
    """One column the DAG needs.

    Args:
        column: The column's name in the data.
        kind: What it must hold.
        field: Where the configuration names it, e.g. ``dataset.features[3]``, for the error message.
    """

    column: str
    kind: ColumnKind
    field: str


@dataclass(frozen=True)
class RowFilter:
    """Keep the rows whose ``column`` passes ``op`` (with ``value``); a null never passes a comparison.

    Args:
        column: The column tested.
        op: One of :data:`FILTER_OPS`.
        value: A scalar for a comparison, a tuple of scalars for ``in``/``not_in``, None for the null tests.
        field: Where the configuration declares the filter, e.g. ``dataset.filters[0]``.
    """

    column: str
    op: FilterOp
    value: Any = None
    field: str = ""

    def describe(self) -> str:
        """The filter as a person writes it: ``distance_km > 0``, ``duration_min not_null``."""
        if self.op in UNARY_OPS:
            return f"{self.column} {self.op}"
        value = list(self.value) if self.op in LIST_OPS else self.value
        return f"{self.column} {self.op} {value!r}"


@dataclass(frozen=True)
class DataContract:
    """The columns a DAG's tasks need and the row filters of its snapshot.

    Args:
        rules: Every column the configuration names (features, target, time column, extra and slice
            columns), with what it must hold; a column may have several rules.
        filters: Row filters applied in order at snapshot time; each one's dropped rows are counted.
        time_column: The column whose date must fall in the row's ``date=`` partition (rows outside are
            counted, not dropped).
    """

    rules: tuple[ColumnRule, ...] = ()
    filters: tuple[RowFilter, ...] = ()
    time_column: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (what an operator takes)."""
        return {
            "rules": [{"column": r.column, "kind": r.kind, "field": r.field} for r in self.rules],
            "filters": [
                {
                    "column": f.column,
                    "op": f.op,
                    "value": list(f.value) if f.op in LIST_OPS else f.value,
                    "field": f.field,
                }
                for f in self.filters
            ],
            "time_column": self.time_column,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataContract:
        """Rebuild a contract written by :meth:`to_dict`."""
        return cls(
            rules=tuple(ColumnRule(r["column"], r["kind"], r["field"]) for r in data.get("rules", ())),
            filters=tuple(
                RowFilter(
                    f["column"],
                    f["op"],
                    tuple(f["value"]) if f["op"] in LIST_OPS else f.get("value"),
                    f.get("field", ""),
                )
                for f in data.get("filters", ())
            ),
            time_column=data.get("time_column"),
        )
