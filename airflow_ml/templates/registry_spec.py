"""How a template's models are named in the MLflow registry (``registry.name_pattern``).

The default, ``{template}.{city}``, is the name the factory always used. Names of Unity Catalog's three-part
shape (``catalog.schema.model``) take another: ``main.ml.{template}_{city}``, in an MLflow registry (a
``databricks-uc`` registry URI is not supported: its store refuses the searches airflow-ml makes). The pattern may
hold only the placeholders ``{template}`` and ``{city}`` (both required: two cities, or two templates' cities
of the same id, never share a model), lower-case letters, digits, ``_`` and ``-``, and dots between non-empty
parts; it may not give names of the default's two-part shape (``ml.{template}_{city}``), which read as
``<template>.<city>`` of another template and city.

Under a pattern other than the default, a fallback parent's id loses its dot where it fills ``{city}``
(``group.iberia`` becomes ``group_iberia``), so the parent's name keeps the pattern's number of parts; a
city id may then not start with ``group_``.
"""

from __future__ import annotations

import re
import string

from pydantic import Field, field_validator

from airflow_ml.templates.base import Strict

#: The registered model of a city unless its template says otherwise: ``<template>.<city>``.
DEFAULT_NAME_PATTERN = "{template}.{city}"
#: What a name pattern may hold besides its placeholders.
_LITERAL = re.compile(r"[a-z0-9_.\-]*")
#: A name of the default pattern's shape: ``<template>.<city>`` or ``<template>.group.<group>``. A custom pattern
#: never gives one (its sample may not have the shape, and a city or parent whose name has it anyway, a placeholder
#: making a middle part ``group``, is refused), so such a name is always the default pattern's (lineage reads it).
DEFAULT_SHAPE = re.compile(r"(?P<template>[a-z][a-z0-9_]*)\.(?P<city>[a-z][a-z0-9_]*|group\.[a-z][a-z0-9_]*)")
_PLACEHOLDERS = ("template", "city")
#: The start of a group parent's id in a name under a custom pattern (``group_<group>``).
PARENT_GROUP_SEGMENT = "group_"
_EXAMPLE = "main.ml.{template}_{city}"


#: The longest registered model name under ``registry.name_pattern``: Airflow's DAG tags hold 100 characters,
#: and the fleet view reads the name from the tag ``model:<name>``.
MAX_MODEL_NAME = 94


class RegistrySpec(Strict):
    """Where the template's models live in the MLflow registry."""

    name_pattern: str = Field(
        default=DEFAULT_NAME_PATTERN,
        min_length=1,
        max_length=256,
        description="Registered model name of each city: {template} and {city} are filled in (both required); "
        "lower-case letters, digits, '_', '-' and dots between parts, e.g. 'main.ml.{template}_{city}' for three-part "
        "(Unity Catalog shaped) names in an MLflow registry. Default '{template}.{city}'.",
        examples=[DEFAULT_NAME_PATTERN, _EXAMPLE],
    )

    @field_validator("name_pattern")
    @classmethod
    def _pattern_is_a_name(cls, pattern: str) -> str:
        problems = name_pattern_problems(pattern)
        if problems:
            raise ValueError("; ".join(problems))
        return pattern

    @property
    def custom(self) -> bool:
        """Whether the pattern is not the default (a parent's id then loses its dot)."""
        return self.name_pattern != DEFAULT_NAME_PATTERN

    def check_name_lengths(self, names: dict[str, str | None]) -> None:
        """Raise ValueError for the first of ``names`` (whose: name) too long for the DAG tag ``model:<name>``."""
        if not self.custom:
            return
        for whose, name in names.items():
            if name is not None and len(name) > MAX_MODEL_NAME:
                raise ValueError(
                    f"registry.name_pattern {self.name_pattern!r} gives {whose} the registered model "
                    f"{name!r}, {len(name)} characters; at most {MAX_MODEL_NAME} fit the DAG tag 'model:<name>' the "
                    "fleet view reads: shorten the pattern's fixed parts (or the group's id)"
                )

    def check_shape(self, whose: str, name: str) -> None:
        """Raise ValueError if a custom pattern gave ``whose`` a name of the default shape (:data:`DEFAULT_SHAPE`).

        The pattern's sample may not have it (:func:`name_pattern_problems`), but a placeholder can still fill a
        middle part with ``group`` (``x.{city}.{template}`` with city ``group``, or ``x.{template}.{city}`` with
        template ``group``): the name of another template's group parent, as the lineage checks read it.
        """
        if self.custom and (shape := DEFAULT_SHAPE.fullmatch(name)) is not None:
            raise ValueError(
                f"registry.name_pattern {self.name_pattern!r} gives {whose} the registered model {name!r}, which "
                f"reads as the default pattern's model of {shape['city']!r} of template {shape['template']!r} (the "
                "lineage checks read it so); give the city another id, or change the pattern so that no part of a "
                "name can be 'group'"
            )

    def model_name(self, template: str, city: str) -> str:
        """The registered model of ``city`` (a city id, ``global`` or ``group.<group>``) of ``template``."""
        return render_name(self.name_pattern, template, city)


def render_name(pattern: str, template: str, city: str) -> str:
    """``pattern`` with ``template`` and ``city`` filled in; under a custom pattern a dotted id's dots become ``_``."""
    segment = city if pattern == DEFAULT_NAME_PATTERN else city.replace(".", "_")
    return pattern.replace("{template}", template).replace("{city}", segment)


def name_pattern_problems(pattern: str) -> list[str]:
    """What is wrong with a name pattern, each with its fix; empty when it is a valid one."""
    fix = f"write it like {_EXAMPLE!r} or remove registry.name_pattern for the default {DEFAULT_NAME_PATTERN!r}"
    try:
        parts = list(string.Formatter().parse(pattern))
    except ValueError as exc:
        return [f"name pattern {pattern!r} is not a pattern ({exc}); {fix}"]
    problems: list[str] = []
    names = [name for _, name, spec, conversion in parts if name is not None]
    unknown = sorted({n for n in names if n not in _PLACEHOLDERS})
    if unknown:
        problems.append(f"name pattern {pattern!r} has unknown placeholder(s) {unknown}: only template and city")
    if any(spec or conversion for _, name, spec, conversion in parts if name is not None):
        problems.append(f"name pattern {pattern!r}: a placeholder takes no format spec or conversion")
    for needed in _PLACEHOLDERS:
        if names.count(needed) != 1:
            count = names.count(needed)
            problems.append(f"name pattern {pattern!r} must hold {{{needed}}} exactly once (it has {count})")
    bad = sorted({c for literal, *_ in parts for c in literal if not _LITERAL.fullmatch(c)})
    if bad:
        problems.append(
            f"name pattern {pattern!r} has character(s) {bad}; a name holds lower-case letters (Unity Catalog "
            "stores names lower-cased), digits, '_', '-', '.'"
        )
    sample = pattern.replace("{template}", "t").replace("{city}", "c")
    if not bad and not unknown and any(not part for part in sample.split(".")):
        problems.append(f"name pattern {pattern!r} has an empty part: no leading, trailing or doubled '.'")
    if not problems and ("{template}{city}" in pattern or "{city}{template}" in pattern):
        problems.append(
            f"name pattern {pattern!r} joins {{template}} and {{city}} with nothing between them, so two "
            "templates' cities can share a name ('ride'+'xoslo', 'ridex'+'oslo'): put a '_', '-' or '.' between"
        )
    if not problems and pattern != DEFAULT_NAME_PATTERN and DEFAULT_SHAPE.fullmatch(sample):
        problems.append(
            f"name pattern {pattern!r} gives names shaped like the default's '<template>.<city>' ({sample!r}), "
            "which would be read as the wrong template and city: use three parts or none with a dot"
        )
    return [f"{p}; {fix}" for p in problems]
