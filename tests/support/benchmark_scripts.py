"""The scripts of ``benchmarks/`` as modules, so that tests call their functions (they are not a package)."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from tests.support import REPO


def load_benchmark_script(stem: str) -> ModuleType:
    """``benchmarks/<stem>.py`` imported as the module ``<stem>_benchmark`` (its ``main`` is not run)."""
    spec = importlib.util.spec_from_file_location(f"{stem}_benchmark", REPO / "benchmarks" / f"{stem}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
