"""Load templates and city files, merge them, and turn every mistake into an error that names its line.

Layout of a templates folder::

    dag_templates/
      templates/<template>.yaml   # a use case: dataset, target, features, metric, training, gate, dag
      cities/<city>.yaml          # ``city``, ``template`` and only the settings that differ

Precedence: the city file overrides the template. Mappings merge key by key; lists and scalars replace.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from airflow_ml.exceptions import ConfigError
from airflow_ml.templates.models import CITY_ID_PATTERN, CityConfig, TemplateConfig, slugify
from airflow_ml.templates.yaml_lines import Path_, YamlFileError, load_yaml_with_lines

TEMPLATES_SUBDIR = "templates"
CITIES_SUBDIR = "cities"
_CITY_OWN_KEYS = {"city", "template", "display_name"}


def load_template(path: Path) -> TemplateConfig:
    """Load and validate one template file.

    Raises:
        ConfigError: naming the file, line, field and value of each problem.
    """
    data, lines = _read(path)
    if data.get("template") is None:
        data = {**data, "template": path.stem}
    elif data["template"] != path.stem:
        line = lines.get(("template",), 1)
        problem = f"line {line}: template: {data['template']!r} must equal the file name {path.stem!r}"
        raise ConfigError(str(path), [problem])
    try:
        return TemplateConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(str(path), _describe(exc, TemplateConfig, {k: (path, n) for k, n in lines.items()})) from None


def load_city_file(path: Path, templates_dir: Path) -> CityConfig:
    """Load one city file and merge it over the template it names.

    Args:
        path: The city's YAML file.
        templates_dir: The folder holding ``<template>.yaml`` files.

    Raises:
        ConfigError: naming the file, line, field and value of each problem.
    """
    data, lines = _read(path)
    origin: dict[Path_, tuple[Path, int]] = {}
    template_name = data.get("template")
    if not isinstance(template_name, str):
        raise ConfigError(
            str(path), [f"line 1: template: missing or not a name (got {template_name!r}); add 'template: <name>'"]
        )
    template_path = templates_dir / f"{template_name}.yaml"
    if not template_path.is_file():
        known = sorted(p.stem for p in templates_dir.glob("*.yaml"))
        hint = _did_you_mean(template_name, known) or f"known templates: {known}"
        line = lines.get(("template",), 1)
        raise ConfigError(
            str(path), [f"line {line}: template: no template named {template_name!r} in {templates_dir}; {hint}"]
        )
    template = load_template(template_path)
    template_data = template.model_dump(mode="python", exclude={"template"})
    _, template_lines = load_yaml_with_lines(template_path)
    origin.update({k: (template_path, n) for k, n in template_lines.items()})
    origin.update({k: (path, n) for k, n in lines.items()})
    merged = deep_merge(template_data, data)
    city = merged.get("city")
    if isinstance(city, str) and re.fullmatch(CITY_ID_PATTERN, city) and path.stem != city:
        line = lines.get(("city",), 1)
        raise ConfigError(
            str(path), [f"line {line}: city: {city!r} must equal the file name {path.stem!r}; rename one of them"]
        )
    try:
        return CityConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(str(path), _describe(exc, CityConfig, origin)) from None


def load_city_configs(root: Path) -> tuple[list[CityConfig], list[ConfigError]]:
    """Load every city under ``root/cities`` against the templates in ``root/templates``.

    A broken city file never hides the others: its error is returned beside the good configs.

    Returns:
        The valid city configs sorted by city id, and one error per broken file.
    """
    templates_dir = root / TEMPLATES_SUBDIR
    configs: dict[str, CityConfig] = {}
    errors: list[ConfigError] = []
    for path in sorted((root / CITIES_SUBDIR).glob("*.y*ml")):
        try:
            config = load_city_file(path, templates_dir)
        except ConfigError as exc:
            errors.append(exc)
            continue
        if config.city in configs:
            errors.append(ConfigError(str(path), [f"city: {config.city!r} is defined twice; rename one of the files"]))
            continue
        configs[config.city] = config
    return [configs[c] for c in sorted(configs)], errors


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``override`` over ``base``: mappings merge key by key; lists and scalars replace."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read(path: Path) -> tuple[dict[str, Any], dict[Path_, int]]:
    try:
        return load_yaml_with_lines(path)
    except FileNotFoundError:
        raise ConfigError(str(path), ["the file does not exist"]) from None
    except YamlFileError as exc:
        raise ConfigError(str(path), [str(exc)]) from None


def _describe(exc: ValidationError, model: type[BaseModel], origin: Mapping[Path_, tuple[Path, int]]) -> list[str]:
    known = sorted(_field_names(model))
    problems = []
    for error in exc.errors(include_url=False):
        loc: Path_ = tuple(error["loc"])
        field = ".".join(str(p) for p in loc) or "(top level)"
        where = _where(loc, origin)
        value = error.get("input")
        if error["type"] == "extra_forbidden":
            hint = _did_you_mean(str(loc[-1]), known) or "remove it or check the spelling"
            problems.append(f"{where}{field}: unknown key {str(loc[-1])!r}; {hint}")
        elif error["type"] == "missing":
            problems.append(f"{where}{field}: required setting is missing; add it to the city file or its template")
        elif error["type"] == "string_pattern_mismatch" and loc == ("city",):
            problems.append(
                f"{where}city: {value!r} is not a valid city id ({CITY_ID_PATTERN}); use {slugify(str(value))!r} "
                "and put the readable name in display_name"
            )
        else:
            message = error["msg"].removeprefix("Value error, ")
            shown = "" if isinstance(value, Mapping) or repr(value) in message else f" (got {value!r})"
            problems.append(f"{where}{field}: {message}{shown}")
    return problems


def _where(loc: Path_, origin: Mapping[Path_, tuple[Path, int]]) -> str:
    for end in range(len(loc), -1, -1):
        found = origin.get(loc[:end])
        if found is not None:
            path, line = found
            return f"{path.name} line {line}: "
    return ""


def _did_you_mean(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""


def _field_names(model: type[BaseModel]) -> set[str]:
    names: set[str] = set()
    for name, field in model.model_fields.items():
        names.add(name)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= _field_names(annotation)
    return names | _CITY_OWN_KEYS
