"""Refuse the expectation arguments that would make GX run code, read files or reach the network.

A suite is data (YAML, JSON, a GX context's files), yet three of GX's arguments are not:

- ``row_condition``: GX filters the rows with ``DataFrame.query()`` (a string with ``condition_parser:
  pandas``, GX's ``pass_through`` condition, and GX's structured conditions, which it turns into a query
  string). pandas' query evaluates attribute chains and method calls, so
  ``a.__class__.__init__.__globals__[...]`` runs a shell command. Only a small grammar is accepted: column
  comparisons with literals, ``in``/``not in`` a literal list, ``.isin([...])``, ``.notnull()``/``.isnull()``,
  joined with ``and``/``or``/``not`` (or ``&``/``|``/``~``); GX's structured ``comparison``/``nullity``/
  ``and``/``or`` conditions with such columns and literals, and its ``pass_through`` ones in that grammar;
  and GX's own ``col("x") > 1`` strings.
- ``json_schema`` (``expect_column_values_to_match_json_schema``): jsonschema fetches a ``$ref`` to a URL
  and reads a ``file://`` one; only references inside the schema (``#/...``) are accepted.
- suite parameters (``{"$PARAMETER": "name"}``): a checkpoint run supplies them, and airflow-ml never runs
  one, so GX would fail at run time; the value must be written.

:func:`argument_problems` is called by ``check_suite`` (lint and the validate task) and by ``run_suite``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import Any

from airflow_ml.exceptions import show_value

_CONDITION_FIX = (
    "write it as comparisons of columns with literals joined by and/or/not, e.g. "
    "\"status == 'completed' and fare > 0\", \"city in ['a', 'b']\", \"dropoff.notnull()\" "
    "(or GX's structured form {type: comparison, column: {name: status}, operator: '==', parameter: completed})"
)
_COMPARISONS = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn)
_METHODS = {"notnull": 0, "isnull": 0, "notna": 0, "isna": 0, "isin": 1}
_OPERATORS = {"==", "!=", "<", "<=", ">", ">=", "IN", "NOT_IN"}
_REFERENCE_KEYS = ("$ref", "$dynamicRef", "$recursiveRef")


class UnsafeCondition(ValueError):
    """A ``row_condition`` outside the accepted grammar; the message says what and how to write it."""


def argument_problems(kwargs: dict[str, Any]) -> list[str]:
    """Each argument of one expectation that would run code, read a file, reach the network or need a checkpoint."""
    problems = []
    if kwargs.get("row_condition") not in (None, ""):
        try:
            condition_columns(kwargs)
        except UnsafeCondition as exc:
            problems.append(f"row_condition {show_value(kwargs['row_condition'])}: {exc}; {_CONDITION_FIX}")
    if "json_schema" in kwargs:
        for reference in _schema_references(kwargs["json_schema"]):
            problems.append(
                f"json_schema: $ref {show_value(reference, limit=300)} points outside the schema (jsonschema "
                "would fetch a URL or read a file); copy the referenced schema in under $defs and refer to it "
                "as '#/$defs/<name>'"
            )
    for name, value in kwargs.items():
        if _has_parameter(value):
            problems.append(
                f"{show_value(name, quote=False)}: {show_value(value)} is a suite parameter, which a GX checkpoint "
                "run supplies, and airflow-ml never runs one; write the value itself"
            )
    return problems


def condition_columns(kwargs: dict[str, Any]) -> list[str]:
    """The columns the expectation's ``row_condition`` reads (empty without one).

    Raises:
        UnsafeCondition: when the condition is outside the accepted grammar.
    """
    condition = kwargs.get("row_condition")
    if condition in (None, ""):
        return []
    if isinstance(condition, dict):
        return list(dict.fromkeys(_structured_columns(condition)))
    if not isinstance(condition, str):
        raise UnsafeCondition("a row condition is a string or one of GX's structured conditions")
    parser = kwargs.get("condition_parser")
    if parser in ("great_expectations", "great_expectations__experimental__"):
        return [_gx_string_column(condition)]
    if parser not in (None, "pandas"):  # GX 1.x hands a string without a parser to query() too
        raise UnsafeCondition(f"condition_parser {show_value(parser)} must be 'pandas' (or 'great_expectations')")
    return list(dict.fromkeys(_query_columns(condition)))


def _structured_columns(condition: dict[str, Any]) -> Iterator[str]:
    kind = condition.get("type")
    if kind in ("and", "or"):
        parts = condition.get("conditions")
        if not isinstance(parts, list) or not parts:
            raise UnsafeCondition(f"an {kind!r} condition needs a list of conditions")
        for part in parts:
            if not isinstance(part, dict):
                raise UnsafeCondition(f"{show_value(part)} in an {kind!r} condition is not a condition")
            yield from _structured_columns(part)
        return
    if kind == "pass_through":  # how GX saves a pandas string: query() runs it, so the same grammar
        text = condition.get("pass_through_filter")
        if not isinstance(text, str):
            raise UnsafeCondition("a pass_through condition needs its pass_through_filter text")
        yield from _query_columns(text)
        return
    if kind not in ("comparison", "nullity"):
        raise UnsafeCondition(f"type {show_value(kind)} is not one of comparison, nullity, and, or, pass_through")
    column = condition.get("column")
    name = column.get("name") if isinstance(column, dict) else None
    yield _column_name(name)
    if kind == "comparison":
        operator, parameter = condition.get("operator"), condition.get("parameter")
        if operator not in _OPERATORS:
            raise UnsafeCondition(f"operator {show_value(operator)} is not one of {sorted(_OPERATORS)}")
        literals = parameter if operator in ("IN", "NOT_IN") and isinstance(parameter, list) else [parameter]
        if not all(_is_literal(value) for value in literals):
            raise UnsafeCondition(f"parameter {show_value(parameter)} must be a string, a number or a list of them")


def _column_name(name: Any) -> str:
    # GX quotes a column for query() in backticks: a backtick or a line break in the name would end the quote.
    if not isinstance(name, str) or not name or any(c == "`" or not c.isprintable() for c in name):
        raise UnsafeCondition(f"column {show_value(name)} must be a name without backticks or control characters")
    return name


def _is_literal(value: Any) -> bool:
    return isinstance(value, str | int | float) and (not isinstance(value, str) or "`" not in value)


def _gx_string_column(condition: str) -> str:
    from great_expectations.expectations.legacy_row_conditions import parse_great_expectations_condition

    try:
        parsed = parse_great_expectations_condition(condition)
    except Exception as exc:  # noqa: BLE001 - pyparsing's and GX's errors alike mean "not this grammar"
        raise UnsafeCondition(f'is not GX\'s condition grammar (col("x") > 1): {exc}') from None
    return _column_name(str(parsed["column"]))


def _query_columns(condition: str) -> Iterator[str]:
    try:
        tree = ast.parse(condition.strip(), mode="eval")
    except SyntaxError:
        raise UnsafeCondition("is not a plain condition (backtick-quoted names and @variables are refused)") from None
    yield from _boolean(tree.body)


def _boolean(node: ast.expr) -> Iterator[str]:
    """The columns of a node that is a condition: a comparison, a method test, or several joined."""
    if isinstance(node, ast.BoolOp):
        for value in node.values:
            yield from _boolean(value)
    elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitAnd | ast.BitOr):
        yield from _boolean(node.left)
        yield from _boolean(node.right)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not | ast.Invert):
        yield from _boolean(node.operand)
    elif isinstance(node, ast.Compare):
        if not all(isinstance(op, _COMPARISONS) for op in node.ops):
            raise UnsafeCondition("compares with 'is'; use == or .isnull()")
        operands = [node.left, *node.comparators]
        columns = [_name(o) for o in operands if isinstance(o, ast.Name)]
        if not columns or not all(isinstance(o, ast.Name) or _literal(o) for o in operands):
            raise UnsafeCondition("compares something other than columns and literals")
        yield from columns
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name):
        arity = _METHODS.get(node.func.attr)
        if arity is None or node.keywords or len(node.args) != arity or not all(_literal(a) for a in node.args):
            raise UnsafeCondition(f"calls {node.func.attr!r}; only .notnull(), .isnull() and .isin([...]) are accepted")
        yield _name(node.func.value)
    else:
        raise UnsafeCondition(f"holds {type(node).__name__}, which is not a comparison of a column with a literal")


def _name(node: ast.Name) -> str:
    if "__" in node.id:
        raise UnsafeCondition(f"names {node.id!r}; names with '__' are refused")
    return _column_name(node.id)


def _literal(node: ast.expr) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str | int | float | bool)
    return isinstance(node, ast.List | ast.Tuple) and all(_literal(e) for e in node.elts)


def _schema_references(schema: Any) -> Iterator[Any]:
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key in _REFERENCE_KEYS and not (isinstance(value, str) and value.startswith("#")):
                yield value
            else:
                yield from _schema_references(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _schema_references(value)


def _has_parameter(value: Any) -> bool:
    if isinstance(value, dict):
        return "$PARAMETER" in value or any(_has_parameter(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_parameter(v) for v in value)
    return False
