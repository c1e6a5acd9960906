"""City files for the templates loader's tests: a templates folder, a city written into it, where an error points."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_ml.exceptions import ConfigError
from airflow_ml.templates import load_city_file
from tests.support import REPO

#: The repository's templates folder, and its ``ride_duration`` template file.
REPO_TEMPLATES = REPO / "dag_templates"
TEMPLATE_FILE = REPO_TEMPLATES / "templates" / "ride_duration.yaml"


#: The sections of the repo's template that :func:`templates_folder` leaves out (the demo's loop).
LOOP_SECTIONS = ("scoring", "monitoring")


def templates_folder(folder: Path) -> Path:
    """Make ``folder`` a templates folder: a copy of the repo's ride_duration template, an empty cities folder.

    The copy has no ``scoring:`` or ``monitoring:`` (:data:`LOOP_SECTIONS`): a test of those sections writes the
    ones it is about (their defaults included); the repo's own are tested on the repo's files.
    """
    (folder / "templates").mkdir()
    (folder / "cities").mkdir()
    text = TEMPLATE_FILE.read_text(encoding="utf-8")
    for section in LOOP_SECTIONS:
        text = without_section(text, section)
    (folder / "templates" / "ride_duration.yaml").write_text(text, encoding="utf-8")
    return folder


def without_section(text: str, section: str) -> str:
    """``text`` (YAML) without its top-level key ``section`` and that key's indented lines (and comments)."""
    kept, inside = [], False
    for line in text.splitlines(keepends=True):
        if re.match(r"[A-Za-z_]", line):  # a top-level key starts or ends a section
            inside = line.startswith(f"{section}:")
        if not inside:
            kept.append(line)
    return "".join(kept)


def write_file(path: Path, text: str) -> Path:
    """Write ``text`` to ``path``, creating its folders (a group, a defaults file, a city in a subfolder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def template_data() -> dict[str, Any]:
    """The repo's ride_duration template, as data."""
    return dict(yaml.safe_load(TEMPLATE_FILE.read_text(encoding="utf-8")))


def write_city(root: Path, name: str, text: str, suffix: str = ".yaml") -> Path:
    """Write ``text`` as the city file ``name`` (with ``suffix``) of the templates folder ``root``."""
    path = root / "cities" / f"{name}{suffix}"
    path.write_text(text, encoding="utf-8")
    return path


def line_of(path: Path, needle: str) -> int:
    """The 1-based line of the first line of ``path`` that contains ``needle``."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def config_error(path: Path, root: Path) -> ConfigError:
    """The ConfigError that loading the city file ``path`` against ``root``'s templates raises."""
    with pytest.raises(ConfigError) as info:
        load_city_file(path, root / "templates")
    return info.value


def assert_points_at(exc: ConfigError, path: Path, line: int, *fragments: str) -> str:
    """Assert that ``exc`` names ``path`` and ``line`` and says each of ``fragments``; return its text."""
    text = str(exc)
    assert str(path) in text
    assert exc.file == str(path)
    assert f"line {line}" in text, text
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in {text!r}"
    return text
