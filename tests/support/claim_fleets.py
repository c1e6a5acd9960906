"""Fleets for the model-name claim tests: templates on custom name patterns, cities, groups, the files read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_ml.templates import loader as loader_module
from tests.support.city_files import write_city

#: Three-part names, and a pattern whose names two templates can share (``ride`` + ``x_oslo``, ``ride_x`` + ``oslo``).
UNITY = "main.ml.{template}_{city}"
JOINED = "{template}_{city}"


def template_on(root: Path, name: str, pattern: str | None) -> Path:
    """A copy of ride_duration named ``name``, on ``pattern`` (the default when None)."""
    text = (root / "templates" / "ride_duration.yaml").read_text(encoding="utf-8")
    path = root / "templates" / f"{name}.yaml"
    path.write_text(text + (f"\nregistry:\n  name_pattern: '{pattern}'\n" if pattern else ""), encoding="utf-8")
    return path


def city_of(root: Path, city: str, template: str = "ride_duration", folder: str = "", extra: str = "") -> Path:
    """A city file of ``template`` (in a subfolder of ``cities/`` when ``folder`` is given), with ``extra`` lines."""
    (root / "cities" / folder).mkdir(exist_ok=True)
    return write_city(root, f"{folder}{city}", f"city: {city}\ntemplate: {template}\n{extra}")


def declares(template: Path, fallback: str) -> Path:
    """Append ``fallback: <fallback>`` to a template (or group) file."""
    with template.open("a", encoding="utf-8") as handle:
        handle.write(f"fallback: {fallback}\n")
    return template


def group_file(root: Path, name: str, text: str = "") -> Path:
    """``groups/<name>.yaml`` holding ``text`` (a harmless setting when empty)."""
    (root / "groups").mkdir(exist_ok=True)
    path = root / "groups" / f"{name}.yaml"
    path.write_text(text or "training: {num_boost_round: 50}\n", encoding="utf-8")
    return path


def recorded_reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every file the loader reads from now on (its own reader, recorded)."""
    reads: list[Path] = []
    read = loader_module._read

    def recorded(path: Path) -> Any:
        reads.append(path)
        return read(path)

    monkeypatch.setattr(loader_module, "_read", recorded)
    return reads


def refused_before_a_rival(root: Path) -> tuple[Path, Path]:
    """City ``a_c`` of ``ride_group``, refused as its parent loses its name, and ``c`` of ``ride_group_a``, kept.

    Under :data:`UNITY`, ``ride.group.global`` (group ``global``) keeps ``main.ml.ride_group_global`` from
    ``ride_group.global``, first by DAG id, so ``a_c``, which falls back to the latter, is refused in every load. Its
    own name, ``main.ml.ride_group_a_c``, is also ``c``'s; ``a_c`` comes first in path order, yet never claims it.
    Returns ``a_c``'s file and ``c``'s.
    """
    declares(template_on(root, "ride", UNITY), "{parent: group}")
    declares(template_on(root, "ride_group", UNITY), "{parent: global}")
    template_on(root, "ride_group_a", UNITY)
    group_file(root, "global")
    return city_of(root, "a_c", template="ride_group"), city_of(root, "c", template="ride_group_a")
