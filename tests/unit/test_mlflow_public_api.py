"""airflow_ml touches MLflow only through its public API: no private attribute written, no internal class extended.

An MLflow release may rename or drop anything private (``client._tracking_client``) or internal (its REST
stores, its tracking-service client, its artifact repositories); code that writes the one or subclasses the
other breaks with it. This scans the source of every module of ``airflow_ml`` (AST, nothing imported).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "airflow_ml"

# MLflow's documented extension points: the only MLflow classes airflow_ml may subclass.
PUBLIC_BASES = {
    "mlflow.MlflowClient",
    "mlflow.client.MlflowClient",
    "mlflow.tracking.MlflowClient",
    "mlflow.pyfunc.PythonModel",
    "mlflow.tracking.request_header.abstract_request_header_provider.RequestHeaderProvider",
}


def _imported_names(tree: ast.Module) -> dict[str, str]:
    """Local name -> dotted origin, for every import anywhere in the module (functions included)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0]
                )
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _dotted(node: ast.expr, names: dict[str, str]) -> str | None:
    """``mlflow.pyfunc.PythonModel`` for ``pyfunc.PythonModel`` after ``from mlflow import pyfunc``."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in names:
        return None
    return ".".join([names[node.id], *reversed(parts)])


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _violations(source: str, filename: str) -> list[str]:
    tree = ast.parse(source, filename)
    names = _imported_names(tree)
    uses_mlflow = any(origin.split(".")[0] == "mlflow" for origin in names.values())
    mlflow_classes: set[str] = set()
    found: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        for base in node.bases:
            origin = _dotted(base, names) or ""
            if origin.split(".")[0] != "mlflow":
                continue
            mlflow_classes.add(node.name)
            if origin not in PUBLIC_BASES or any(_private(part) for part in origin.split(".")):
                found.append(f"{filename}:{node.lineno}: class {node.name} extends MLflow's internal {origin}")
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign | ast.Delete):
            targets = list(node.targets)
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("setattr", "delattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _private(node.args[1].value)
            and uses_mlflow
        ):
            found.append(f"{filename}:{node.lineno}: {node.func.id}(..., {node.args[1].value!r}) on an MLflow object")
        for target in targets:
            for attribute in ast.walk(target):
                if not (isinstance(attribute, ast.Attribute) and _private(attribute.attr)):
                    continue
                owner = attribute.value
                on_self = isinstance(owner, ast.Name) and owner.id in ("self", "cls")
                if (uses_mlflow and not on_self) or (on_self and _enclosing_class(tree, node) in mlflow_classes):
                    found.append(f"{filename}:{node.lineno}: writes private {ast.unparse(attribute)}")
    return found


def _enclosing_class(tree: ast.Module, target: ast.AST) -> str | None:
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and any(child is target for child in ast.walk(node)):
            return node.name
    return None


def test_no_module_writes_mlflow_internals_or_extends_its_private_classes() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 20

    found = [v for path in modules for v in _violations(path.read_text(encoding="utf-8"), str(path))]

    assert found == []


@pytest.mark.parametrize(
    "source",
    [
        "from mlflow import MlflowClient\nclient = MlflowClient()\nclient._tracking_client = None\n",
        "def f(client):\n    import mlflow\n    client._registry_client_lazy = 1\n",
        "import mlflow\nsetattr(mlflow.MlflowClient(), '_tracking_client', None)\n",
        "def f():\n    from mlflow.store.tracking.rest_store import RestStore\n    class S(RestStore):\n        pass\n",
        "from mlflow.tracking._tracking_service.client import TrackingServiceClient as T\nclass C(T):\n    pass\n",
        "import mlflow.store.artifact.http_artifact_repo as h\nclass R(h.HttpArtifactRepository):\n    pass\n",
        "from mlflow import MlflowClient\nclass C(MlflowClient):\n    def f(self):\n        self._registry_uri = 1\n",
    ],
)
def test_the_scan_catches_each_kind_of_violation(source: str) -> None:
    assert _violations(source, "example.py")


@pytest.mark.parametrize(
    "source",
    [
        "from mlflow import MlflowClient\nclass C(MlflowClient):\n    def f(self):\n        self.identity = 1\n",
        "from mlflow.pyfunc import PythonModel\nclass M(PythonModel):\n    pass\n",
        "class Own:\n    def __init__(self):\n        self._cache = {}\n",
    ],
)
def test_the_scan_lets_public_use_through(source: str) -> None:
    assert _violations(source, "example.py") == []
