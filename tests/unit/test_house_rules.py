"""The size limits of issue 12's "Done when", read from the source with ast.

- No module of airflow_ml/ over :data:`MAX_MODULE_LINES` lines.
- ``build_dag`` (wherever it is defined) under :data:`MAX_BUILD_DAG_LINES` lines.
- No operator constructor (``__init__`` of a BaseOperator subclass in airflow_ml/operators/) with more than
  :data:`MAX_OPERATOR_PARAMETERS` parameters besides ``self`` and ``**kwargs``.

Each check is a function of source text, so that the tests below show it failing on a synthetic source.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support import REPO

PACKAGE = REPO / "airflow_ml"
MAX_MODULE_LINES = 400
MAX_BUILD_DAG_LINES = 60
MAX_OPERATOR_PARAMETERS = 8


def module_too_long(name: str, text: str) -> str | None:
    """Why module ``name`` breaks the size limit, or None."""
    lines = len(text.splitlines())
    return f"{name}: {lines} lines, over the limit of {MAX_MODULE_LINES}" if lines > MAX_MODULE_LINES else None


def build_dag_too_long(name: str, text: str) -> str | None:
    """Why the ``build_dag`` function defined in module ``name`` is too long, or None (also when it has none)."""
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef) and node.name == "build_dag":
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            lines = (node.end_lineno or node.lineno) - first + 1
            if lines >= MAX_BUILD_DAG_LINES:
                return f"{name}: build_dag is {lines} lines, not under the limit of {MAX_BUILD_DAG_LINES}"
    return None


def _base_names(node: ast.ClassDef) -> set[str]:
    return {b.id if isinstance(b, ast.Name) else b.attr for b in node.bases if isinstance(b, ast.Name | ast.Attribute)}


def operator_constructors_too_wide(name: str, text: str, operators: set[str]) -> list[str]:
    """Why each operator constructor of module ``name`` takes too many parameters.

    Args:
        operators: Names of the operator classes known so far (``BaseOperator`` and its subclasses); the
            module's own subclasses are added to it, so modules are best read bases first.
    """
    found = []
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.ClassDef) or not _base_names(node) & operators:
            continue
        operators.add(node.name)
        for item in node.body:
            if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                arguments = item.args
                named = [a.arg for a in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]]
                count = len([a for a in named if a != "self"]) + (arguments.vararg is not None)
                if count > MAX_OPERATOR_PARAMETERS:
                    found.append(
                        f"{name}: {node.name}.__init__ takes {count} parameters besides self and **kwargs, "
                        f"over the limit of {MAX_OPERATOR_PARAMETERS}"
                    )
    return found


#: The base classes an operator of this provider derives from (Airflow's, through any subclass).
AIRFLOW_OPERATORS = {"BaseOperator", "ApprovalOperator", "HITLOperator"}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _name(path: Path) -> str:
    return str(path.relative_to(REPO))


def test_no_module_is_over_400_lines() -> None:
    wrong = [m for p in _modules() if (m := module_too_long(_name(p), p.read_text(encoding="utf-8")))]
    assert not wrong, "split these modules:\n" + "\n".join(wrong)


def test_build_dag_is_under_60_lines() -> None:
    found = [p for p in _modules() if "def build_dag(" in p.read_text(encoding="utf-8")]
    assert found, "no build_dag in airflow_ml/"
    wrong = [m for p in found if (m := build_dag_too_long(_name(p), p.read_text(encoding="utf-8")))]
    assert not wrong, "\n".join(wrong)


def test_no_operator_constructor_takes_over_8_parameters() -> None:
    operators = set(AIRFLOW_OPERATORS)
    paths = sorted((PACKAGE / "operators").glob("*.py"), key=lambda p: p.name != "base_operator.py")
    wrong = []
    for path in paths:
        wrong += operator_constructors_too_wide(_name(path), path.read_text(encoding="utf-8"), operators)
    assert operators - AIRFLOW_OPERATORS, "no operator class found in airflow_ml/operators/"
    assert not wrong, "take the step's settings as one dict instead:\n" + "\n".join(wrong)


# --- each check fails when its limit is broken -----------------------------------------------------------------------


def test_a_module_over_the_limit_is_named_with_the_limit() -> None:
    assert module_too_long("m.py", "x = 1\n" * MAX_MODULE_LINES) is None
    assert module_too_long("m.py", "x = 1\n" * (MAX_MODULE_LINES + 1)) == "m.py: 401 lines, over the limit of 400"


@pytest.mark.parametrize(("body", "message"), [(57, None), (58, "f.py: build_dag is 60 lines, not under the limit")])
def test_a_long_build_dag_is_named_with_the_limit(body: int, message: str | None) -> None:
    # A decorator, the def line and the body's lines.
    source = "@decorated\ndef build_dag(config):\n" + "    x = 1\n" * body + "other = 1\n" * 100

    found = build_dag_too_long("f.py", source)

    assert found is None if message is None else (found or "").startswith(message)


def test_an_operator_constructor_over_the_limit_is_named_with_the_limit() -> None:
    source = """
class Wide(MlflowBaseOperator):
    def __init__(self, *, a, b, c, d, e, f, g, h, i, **kwargs):
        super().__init__(**kwargs)

class Narrow(Wide):
    def __init__(self, a, b, c, d, e, f, g, h, **kwargs):
        super().__init__(**kwargs)

class NotAnOperator:
    def __init__(self, a, b, c, d, e, f, g, h, i, j):
        pass
"""
    operators = {"MlflowBaseOperator"}

    found = operator_constructors_too_wide("o.py", source, operators)

    assert found == ["o.py: Wide.__init__ takes 9 parameters besides self and **kwargs, over the limit of 8"]
    assert operators == {"MlflowBaseOperator", "Wide", "Narrow"}
