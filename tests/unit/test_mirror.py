"""The unit tree mirrors airflow_ml/, and tests share helpers only through tests.support.

- ``tests/unit/<layer>/test_<module>.py`` tests ``airflow_ml/<layer>/<module>.py``: every test module of a
  mirrored layer is named after a module that exists there (or is listed, with the reason, in
  :data:`NOT_A_MODULE`), so that a renamed or deleted module cannot leave its tests behind under a stale name.
- Every folder under tests/unit/ is a package (an ``__init__.py``) that mirrors a package of airflow_ml/.
- No test imports a conftest, a private helper (``_name``) or another test module: shared helpers live in
  tests/support/ (docs/testing.md says where).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support import REPO

UNIT = REPO / "tests" / "unit"
PACKAGE = REPO / "airflow_ml"
#: Every package of airflow_ml/ (a folder with an ``__init__.py``), as a path relative to it: its tests are mirrored.
MIRRORED_LAYERS = tuple(
    sorted(str(p.parent.relative_to(PACKAGE)) for p in PACKAGE.rglob("__init__.py") if p.parent != PACKAGE)
)
#: Test modules of a mirrored layer that are not named after one module, each with the reason.
NOT_A_MODULE: dict[str, str] = {
    "operators/test_operators_package.py": "the package itself (__init__.py): every operator exported lazily",
    "validation/test_validation_package.py": "the package itself (__init__.py): GX's import-time log lines muted",
    "templates/test_hostile_values.py": (
        "values no check foresaw (dates, huge numbers, nesting), through the loader, yaml_lines and suite_files: "
        "one file's error everywhere"
    ),
}
#: Test modules at the root of tests/unit/ that check the project, not one module of airflow_ml/, with the reason.
PROJECT_CHECKS: dict[str, str] = {
    "test_architecture_doc.py": "docs/architecture.md's XCom table against ml/steps/xcom_payloads.py",
    "test_compose.py": "the Dockerfiles and docker-compose.yaml against the code",
    "test_documented_cli.py": "the CLI commands the docs show",
    "test_documented_commands.py": "the registry of the docs' commands (tests/support/documented.py)",
    "test_documented_testing.py": "the test commands docs/testing.md shows",
    "test_fleet_plugin.py": "plugins/: the fleet view's Airflow plugin",
    "test_house_rules.py": "issue 12's size limits over airflow_ml/",
    "test_make_recipes.py": "the Makefile: what make demo and make ui print",
    "test_test_session.py": "the test session of tests/conftest.py: its own Airflow home, removed at the end",
    "test_mirror.py": "this layout",
    "test_mlflow_public_api.py": "no private MLflow API anywhere in airflow_ml/",
    "test_module_names.py": "unique module names across airflow_ml/",
    "test_run_conf_plugin.py": "plugins/: the trigger form's Airflow plugin",
}


def _test_modules(folder: Path) -> list[Path]:
    return sorted(folder.glob("test_*.py"))


def test_every_package_of_airflow_ml_is_mirrored() -> None:
    assert {"ml", "ml/gate", "ml/steps", "operators", "factory", "cli", "fleet", "hooks", "links"} <= set(
        MIRRORED_LAYERS
    )


def test_every_root_test_module_is_named_after_a_root_module_or_checks_the_project() -> None:
    stale = [
        f"tests/unit/{path.name}: airflow_ml/{path.name.removeprefix('test_')} does not exist"
        for path in _test_modules(UNIT)
        if not (PACKAGE / path.name.removeprefix("test_")).is_file() and path.name not in PROJECT_CHECKS
    ]
    assert not stale, (
        "move each test module into the folder of the layer it tests, or list a project-wide check in "
        "PROJECT_CHECKS with the reason:\n" + "\n".join(stale)
    )


@pytest.mark.parametrize("layer", MIRRORED_LAYERS)
def test_every_test_module_of_a_mirrored_layer_is_named_after_one_of_its_modules(layer: str) -> None:
    folder = UNIT / layer
    assert _test_modules(folder), f"tests/unit/{layer}/ holds no test module: mirror airflow_ml/{layer}/'s tests there"
    stale = [
        f"tests/unit/{layer}/{path.name}: airflow_ml/{layer}/{path.name.removeprefix('test_')} does not exist"
        for path in _test_modules(folder)
        if not (PACKAGE / layer / path.name.removeprefix("test_")).is_file()
        and f"{layer}/{path.name}" not in NOT_A_MODULE
    ]
    assert not stale, (
        "name each test module after the module it tests (split a file that tests several), or list it in "
        "NOT_A_MODULE with the reason:\n" + "\n".join(stale)
    )


def test_every_folder_of_the_unit_tree_is_a_package_that_mirrors_one_of_airflow_ml() -> None:
    wrong = []
    for folder in sorted(p for p in UNIT.rglob("*") if p.is_dir() and p.name != "__pycache__"):
        relative = folder.relative_to(UNIT)
        if not (folder / "__init__.py").is_file():
            wrong.append(f"tests/unit/{relative}/ has no __init__.py")
        if not (PACKAGE / relative / "__init__.py").is_file():
            wrong.append(f"tests/unit/{relative}/ mirrors no package airflow_ml/{relative}/")
    assert not wrong, "\n".join(wrong)


def _imports_of(path: Path) -> list[tuple[int, str, str]]:
    """``(line, module, name)`` of each name a file imports from ``tests.*`` (the module alone for ``import x``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "tests":
            found += [(node.lineno, node.module or "", alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, "") for alias in node.names if alias.name.split(".")[0] == "tests"]
    return found


def test_tests_share_helpers_only_through_tests_support() -> None:
    wrong = []
    for path in sorted((REPO / "tests").rglob("*.py")):
        for line, module, name in _imports_of(path):
            where = f"{path.relative_to(REPO)}:{line}: {module} {name}".rstrip()
            if "conftest" in module.split("."):
                wrong.append(
                    f"{where} (a conftest holds fixtures, which pytest passes; import helpers from tests.support)"
                )
            elif not module.startswith("tests.support"):
                wrong.append(f"{where} (a test module; move what is shared to tests.support)")
            elif name.startswith("_"):
                wrong.append(f"{where} (a private helper; make it public and documented)")
    assert not wrong, "\n".join(wrong)


def test_every_operator_module_has_its_own_test_module() -> None:
    from airflow_ml.operators import _OPERATORS

    missing = sorted(
        f"tests/unit/operators/test_{module}.py (for airflow_ml/operators/{module}.py)"
        for module in set(_OPERATORS.values())
        if not (UNIT / "operators" / f"test_{module}.py").is_file()
    )
    assert not missing, "each operator has its own unit test module (init, template_fields, execute):\n" + "\n".join(
        missing
    )
