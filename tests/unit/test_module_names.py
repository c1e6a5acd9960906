"""Module and package names are unique across ``airflow_ml/`` (issue 12, point 8).

``registry.py`` in two layers meant reading the import line to know which one a traceback, a grep hit or a review
comment was about. Every module's and package's name (``__init__`` and ``__main__`` aside) appears once.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import airflow_ml

PACKAGE = Path(airflow_ml.__file__).resolve().parent


def module_paths_by_stem(root: Path) -> dict[str, set[str]]:
    """Each module's and subpackage's name under ``root``, with the paths (relative to its parent) that bear it."""
    names: dict[str, set[str]] = defaultdict(set)
    for path in root.rglob("*"):
        if "__pycache__" in path.parts or path.name.startswith("__"):
            continue
        if path.is_dir() or path.suffix == ".py":
            names[path.stem].add(path.relative_to(root.parent).as_posix())
    return names


def clashes(root: Path) -> dict[str, set[str]]:
    """The names borne by more than one module or package under ``root``."""
    return {stem: paths for stem, paths in module_paths_by_stem(root).items() if len(paths) > 1}


def test_no_two_modules_or_packages_share_a_name() -> None:
    found = clashes(PACKAGE)
    assert not found, "modules or packages sharing a name (rename one by what it does):\n" + "\n".join(
        f"  {stem}: {' and '.join(sorted(paths))}" for stem, paths in sorted(found.items())
    )


def test_a_package_and_a_module_of_one_name_clash(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    for file in ("ml/registry.py", "fleet/registry.py", "cli/__init__.py", "cli/__main__.py", "ops/cli.py"):
        (root / file).parent.mkdir(parents=True, exist_ok=True)
        (root / file).touch()
    (root / "ml" / "__pycache__").mkdir()
    (root / "ml" / "__pycache__" / "registry.cpython-311.pyc").touch()

    assert clashes(root) == {
        "registry": {"pkg/ml/registry.py", "pkg/fleet/registry.py"},
        "cli": {"pkg/cli", "pkg/ops/cli.py"},
    }
