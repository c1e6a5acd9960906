"""Which files are read: one rule for the loader, lint, the fallback parents and the broken-files report.

A defaults, template, group or city file is ``<name>.yaml``, and a suite ``<name>.yaml`` or ``<name>.json``,
spelled exactly so. A file that looks meant to be one (``porto.yml``, ``porto.YAML``, ``trips.JSON``) is
never read and never silently skipped either: it is reported with the name to rename it to.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from airflow_ml.exceptions import ConfigError, Problem

YAML_SUFFIX = ".yaml"
#: The folders and the file of a templates folder (``loader.py`` says what each holds).
TEMPLATES_SUBDIR = "templates"
CITIES_SUBDIR = "cities"
GROUPS_SUBDIR = "groups"
DEFAULTS_FILE = "defaults.yaml"
#: The suffixes of a suite file, in the order they are looked for.
SUITE_SUFFIXES = (".yaml", ".json")
_LOOKS_LIKE = {".yaml": ".yaml", ".yml": ".yaml", ".json": ".json"}


def yaml_files(
    folder: Path, *, recursive: bool = False, include: Callable[[str], bool] | None = None
) -> tuple[list[Path], list[ConfigError]]:
    """The ``<name>.yaml`` files of ``folder`` (subfolders too when ``recursive``), sorted.

    Args:
        folder: The folder; a missing folder holds no files.
        recursive: Look in subfolders too (cities may be grouped in folders).
        include: Given a file's name without its suffix, whether to list it; others are never looked at.

    Returns:
        The files, and one error per file whose name looks meant to be one but is spelled otherwise.
    """
    names: Iterable[Path] = (
        (Path(top, name) for top, _, files in os.walk(folder) for name in files) if recursive else _entries(folder)
    )
    found, misnamed = [], []
    for path in names:
        if path.suffix == YAML_SUFFIX:
            if include is None or include(path.stem):
                found.append(path)
        elif _LOOKS_LIKE.get(path.suffix.lower()) == YAML_SUFFIX and (include is None or include(path.stem)):
            misnamed.append(misnamed_error(path, YAML_SUFFIX))
    return sorted(found), sorted(misnamed, key=lambda e: e.file)


def template_names(folder: Path) -> list[str]:
    """The templates of a ``templates/`` folder, as the loader reads them: its ``<name>.yaml`` files' names, sorted."""
    return [path.stem for path in yaml_files(folder)[0]]


def unknown_template(name: str, folder: Path) -> str | None:
    """Why ``name`` is no template of the ``templates/`` folder ``folder``, or None when it is one.

    The sentence names the folder, then the file to rename (``late.yml``), else the closest template's name,
    and lists the templates there.
    """
    from airflow_ml.templates.describe import did_you_mean

    known = template_names(folder)
    if name in known:
        return None
    misnamed = yaml_files(folder, include=lambda stem: stem == name)[1]
    hint = misnamed[0].located[0].message if misnamed else did_you_mean(name, known) or "no close match"
    return f"no template {name!r} in {folder}; {hint} (known: {known})"


def misnamed_error(path: Path, suffix: str) -> ConfigError:
    """The error of a file that is not read because of how its suffix is spelled."""
    problem = (
        f"the file is not read: its name ends in {path.suffix!r} and airflow-ml reads only '<name>{suffix}' "
        f"files; rename it to {path.stem}{suffix}"
    )
    return ConfigError(str(path), [Problem(problem)])


def suite_names(folder: Path) -> list[str]:
    """The name of every file of ``folder`` meant as a suite (``<name>.yaml``, ``<name>.json``, ``<name>.yml``...)."""
    return sorted({path.stem for path in _entries(folder) if path.suffix.lower() in _LOOKS_LIKE})


def misspelled_suite(folder: Path, name: str) -> ConfigError | None:
    """The error of a file meant as suite ``name`` (``<name>.yml``, ``<name>.JSON``...), or None."""
    for path in sorted(_entries(folder)):
        wanted = _LOOKS_LIKE.get(path.suffix.lower())
        if path.stem == name and wanted is not None and path.suffix not in SUITE_SUFFIXES:
            return misnamed_error(path, wanted)
    return None


def _entries(folder: Path) -> list[Path]:
    try:
        with os.scandir(folder) as entries:
            return [Path(entry.path) for entry in entries if entry.is_file()]
    except (FileNotFoundError, NotADirectoryError):
        return []
