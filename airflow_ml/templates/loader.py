"""Load templates and city files, merge them, and turn every mistake into an error that names its line.

Layout of a templates folder::

    dag_templates/
      defaults.yaml               # optional: shared defaults of every template (owner, retries, tags...)
      templates/<template>.yaml   # a use case: dataset, target, features, metric, training, gate, dag
      groups/<group>.yaml         # optional: what a country or a client shares
      cities/**/<city>.yaml       # ``city``, ``template``, optional ``group``, and only what differs

Precedence, lowest first: defaults < template < group < city. Mappings merge key by key; lists and
scalars replace.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from airflow_ml.exceptions import ConfigError
from airflow_ml.templates.models import CITY_ID_PATTERN, CityConfig, ParentConfig, TemplateConfig, slugify
from airflow_ml.templates.yaml_lines import FastSafeLoader, Path_, YamlFileError, load_yaml_with_lines

TEMPLATES_SUBDIR = "templates"
CITIES_SUBDIR = "cities"
GROUPS_SUBDIR = "groups"
DEFAULTS_FILE = "defaults.yaml"
_CITY_OWN_KEYS = {"city", "template", "display_name", "group"}
Origin = dict[Path_, tuple[Path, int]]


def load_template(path: Path, *, defaults: Path | None = None) -> TemplateConfig:
    """Load and validate one template file, over the shared defaults when given.

    Raises:
        ConfigError: naming the file, line, field and value of each problem.
    """
    layers = _Layers()
    return layers.template(path, defaults)[0]


def load_city_file(
    path: Path, templates_dir: Path, *, defaults: Path | None = None, groups_dir: Path | None = None
) -> CityConfig:
    """Load one city file and merge it over its group, its template and the shared defaults.

    Args:
        path: The city's YAML file.
        templates_dir: The folder holding ``<template>.yaml`` files.
        defaults: The shared defaults file, if any.
        groups_dir: The folder holding ``<group>.yaml`` files (a country, a client), if any.

    Raises:
        ConfigError: naming the file, line, field and value of each problem.
    """
    return _Layers().city(path, templates_dir, defaults, groups_dir)


def load_city_configs(
    root: Path, *, include: Callable[[str], bool] | None = None
) -> tuple[list[CityConfig], list[ConfigError]]:
    """Load every city under ``root/cities`` (subfolders included) with its layers from ``root``.

    Precedence, lowest first: ``defaults.yaml`` < ``templates/<template>.yaml`` < ``groups/<group>.yaml``
    < the city file. A broken file never hides the others: its error is returned beside the good configs.

    Args:
        root: The templates folder.
        include: Given a city file's name without extension (which must be its city id), whether to load
            it; files left out are never read. Files of one city id are always kept or left out together,
            so duplicates are still found.

    Returns:
        The valid city configs sorted by DAG id, and one error per broken file.
    """
    layers = _Layers()
    defaults = root / DEFAULTS_FILE
    configs: dict[str, tuple[Path, CityConfig]] = {}
    errors: list[ConfigError] = []
    for path in sorted((root / CITIES_SUBDIR).rglob("*.y*ml")):
        if include is not None and not include(path.stem):
            continue
        try:
            config = layers.city(
                path, root / TEMPLATES_SUBDIR, defaults if defaults.is_file() else None, root / GROUPS_SUBDIR
            )
        except ConfigError as exc:
            errors.append(exc)
            continue
        clash = configs.get(config.dag_id)
        if clash is not None:
            errors.append(
                ConfigError(
                    str(path),
                    [
                        f"city: {config.city!r} with template {config.template!r} gives DAG id {config.dag_id!r}, "
                        f"already given by {clash[0]}; give one of them another city id"
                    ],
                )
            )
            continue
        configs[config.dag_id] = (path, config)
    return [configs[dag_id][1] for dag_id in sorted(configs)], errors


def load_parent_configs(root: Path) -> tuple[list[ParentConfig], list[ConfigError]]:
    """The fallback parents that templates and groups declare, each with its members and its layers.

    ``fallback.parent`` belongs to a template or a group (a city may only turn it off), so the parents are
    known from those few files and each city file's ``template`` and ``group``: city files are scanned, not
    validated, which keeps the DAG file that builds the parents cheap to parse with a thousand cities.
    A ``global`` parent trains on every city of its template; a group's parent on its template's cities
    of that group.

    Returns:
        The parent configs sorted by DAG id, and one error per parent whose layers do not validate.
    """
    layers = _Layers()
    defaults = root / DEFAULTS_FILE
    if not _declares_a_parent(layers, root):
        return [], []  # the common case costs a few files, not one per city
    members: dict[tuple[str, str | None], list[str]] = {}
    for city, template, group in _memberships(root):
        try:
            _, merged, _ = layers.template(root / TEMPLATES_SUBDIR / f"{template}.yaml", _file(defaults))
            if group is not None:
                merged = deep_merge(merged, layers.read(root / GROUPS_SUBDIR / f"{group}.yaml")[0])
        except (ConfigError, OSError):
            continue  # the city's own load reports it
        kind = (merged.get("fallback") or {}).get("parent", "none")
        if kind in ("global", "group") and (kind == "global" or group is not None):
            members.setdefault((template, group if kind == "group" else None), []).append(city)
    parents: list[ParentConfig] = []
    errors: list[ConfigError] = []
    for (template, group), cities in sorted(members.items(), key=lambda item: (item[0][0], item[0][1] or "")):
        where = root / TEMPLATES_SUBDIR / f"{template}.yaml"
        _, merged, origin = layers.template(where, _file(defaults))
        if group is not None:
            where = root / GROUPS_SUBDIR / f"{group}.yaml"
            merged, origin = layers._overlay(merged, origin, where)
        scope = "group" if group else "global"
        fields: dict[str, Any] = {"fallback": {}, "scope": scope, "group": group, "members": sorted(cities)}
        try:
            parents.append(ParentConfig.model_validate({**merged, **fields}))
        except ValidationError as exc:
            errors.append(ConfigError(str(where), _describe(exc, ParentConfig, origin)))
    return sorted(parents, key=lambda p: p.dag_id), errors


def _declares_a_parent(layers: _Layers, root: Path) -> bool:
    """Whether the defaults, a template or a group file declares a fallback parent (broken files: no)."""
    files = [root / DEFAULTS_FILE, *sorted((root / TEMPLATES_SUBDIR).glob("*.yaml"))]
    files += sorted((root / GROUPS_SUBDIR).glob("*.yaml"))
    for path in files:
        try:
            data = layers.read(path)[0] if path.is_file() else {}
        except ConfigError:
            continue
        fallback = data.get("fallback")
        if isinstance(fallback, dict) and fallback.get("parent") in ("group", "global"):
            return True
    return False


def _memberships(root: Path) -> list[tuple[str, str, str | None]]:
    """``(city, template, group)`` of every city file that names them; broken files are left to the city load."""
    import yaml

    found = []
    for path in sorted((root / CITIES_SUBDIR).rglob("*.y*ml")):
        try:
            data = yaml.load(path.read_bytes(), Loader=FastSafeLoader)  # noqa: S506 - a safe loader (C or Python)
        except (yaml.YAMLError, OSError, UnicodeDecodeError):
            continue
        if isinstance(data, dict) and isinstance(data.get("template"), str):
            group = data.get("group")
            found.append((path.stem, data["template"], group if isinstance(group, str) else None))
    return found


def _file(path: Path) -> Path | None:
    return path if path.is_file() else None


class _Layers:
    """Reads each layer file once per load, however many cities share it."""

    def __init__(self) -> None:
        self._files: dict[Path, tuple[dict[str, Any], dict[Path_, int]]] = {}
        self._templates: dict[tuple[Path, Path | None], tuple[TemplateConfig, dict[str, Any], Origin]] = {}

    def read(self, path: Path) -> tuple[dict[str, Any], dict[Path_, int]]:
        if path not in self._files:
            self._files[path] = _read(path)
        return self._files[path]

    def template(self, path: Path, defaults: Path | None) -> tuple[TemplateConfig, dict[str, Any], Origin]:
        key = (path, defaults)
        if key not in self._templates:
            data, lines = self.read(path)
            if data.get("template") not in (None, path.stem):
                line = lines.get(("template",), 1)
                problem = f"line {line}: template: {data['template']!r} must equal the file name {path.stem!r}"
                raise ConfigError(str(path), [problem])
            merged: dict[str, Any] = {}
            origin: Origin = {}
            if defaults is not None:
                merged, origin = self._overlay(merged, origin, defaults)
            merged, origin = self._overlay(merged, origin, path)
            merged["template"] = path.stem
            try:
                config = TemplateConfig.model_validate(merged)
            except ValidationError as exc:
                raise ConfigError(str(path), _describe(exc, TemplateConfig, origin)) from None
            self._templates[key] = (config, merged, origin)
        return self._templates[key]

    def city(self, path: Path, templates_dir: Path, defaults: Path | None, groups_dir: Path | None) -> CityConfig:
        data, lines = self.read(path)
        template_path = _named_file(path, data, lines, "template", templates_dir)
        _, merged, origin = self.template(template_path, defaults)
        merged = {k: v for k, v in merged.items() if k != "template"}
        if data.get("group") is not None:
            if groups_dir is None:
                raise ConfigError(str(path), [f"line {lines.get(('group',), 1)}: group: no groups folder to look in"])
            merged, origin = self._overlay(merged, origin, _named_file(path, data, lines, "group", groups_dir))
        _check_city_fallback(path, data, lines, merged)
        merged, origin = self._overlay(merged, origin, path)
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

    def _overlay(self, merged: dict[str, Any], origin: Origin, path: Path) -> tuple[dict[str, Any], Origin]:
        data, lines = self.read(path)
        return deep_merge(merged, data), {**origin, **{k: (path, n) for k, n in lines.items()}}


def _check_city_fallback(path: Path, data: dict[str, Any], lines: dict[Path_, int], below: dict[str, Any]) -> None:
    """A city may turn its fallback off or change ``min_rows``; the parent itself is its template's or group's."""
    own = data.get("fallback")
    wanted = own.get("parent") if isinstance(own, dict) else None
    declared = (below.get("fallback") or {}).get("parent", "none")
    if wanted in (None, "none", declared) or wanted not in ("group", "global"):
        return  # nothing to say, or a value pydantic refuses with its own message
    line = lines.get(("fallback", "parent"), 1)
    raise ConfigError(
        str(path),
        [
            f"line {line}: fallback.parent: {wanted!r} is not what the template or group declares ({declared!r}); "
            "a parent model is built for what templates and groups declare: set 'fallback: {parent: "
            f"{wanted}}}' in the template or group file, or keep only 'min_rows' (or 'parent: none') in the city"
        ],
    )


def _named_file(path: Path, data: dict[str, Any], lines: dict[Path_, int], key: str, folder: Path) -> Path:
    """The ``<folder>/<name>.yaml`` that ``key`` of a city file names, or a ConfigError with a suggestion."""
    name = data.get(key)
    line = lines.get((key,), 1)
    if not isinstance(name, str) or not name:
        raise ConfigError(str(path), [f"line {line}: {key}: missing or not a name (got {name!r}); add '{key}: <name>'"])
    target = folder / f"{name}.yaml"
    if not target.is_file():
        known = sorted(p.stem for p in folder.glob("*.yaml"))
        hint = _did_you_mean(name, known) or f"known: {known}"
        raise ConfigError(str(path), [f"line {line}: {key}: no {key} named {name!r} in {folder}; {hint}"])
    return target


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
            # The keys valid where the unknown one stands come first: min_rmse under min_quality is max_rmse.
            hint = _did_you_mean(str(loc[-1]), _keys_at(model, loc[:-1])) or _did_you_mean(str(loc[-1]), known)
            hint = hint or "remove it or check the spelling"
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


def _keys_at(model: type[BaseModel], loc: Path_) -> set[str]:
    """The keys of the model found at ``loc`` (list indexes skipped), or none when ``loc`` leads to no model."""
    current: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        field = current.model_fields.get(str(part))
        annotation = field.annotation if field is not None else None
        current = next(
            (c for c in (annotation, *get_args(annotation)) if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
    return set(current.model_fields) if current is not None else set()


def _field_names(model: type[BaseModel]) -> set[str]:
    names: set[str] = set()
    for name, field in model.model_fields.items():
        names.add(name)
        # Look inside ``Model | None`` and ``list[Model]`` too, so their keys get a "did you mean".
        for candidate in (field.annotation, *get_args(field.annotation)):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                names |= _field_names(candidate)
    return names | _CITY_OWN_KEYS
