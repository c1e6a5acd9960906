"""Load templates and city files, merge them, and turn every mistake into an error that names its line.

Layout of a templates folder::

    dag_templates/
      defaults.yaml               # optional: shared defaults of every template (owner, retries, tags...)
      templates/<template>.yaml   # a use case: dataset, target, features, metric, training, gate, dag
      groups/<group>.yaml         # optional: what a country or a client shares
      cities/**/<city>.yaml       # ``city``, ``template``, optional ``group``, and only what differs

Precedence, lowest first: defaults < template < group < city. Mappings merge key by key; lists and
scalars replace. A city's ``template`` and ``group`` are names (``NAME_PATTERN``), never paths: the file they
name must lie in its folder, so no value of a file elsewhere on the disk can reach an error message. A
file that breaks a check in a way no message foresaw is still reported as that file's error: one file
never hides the others.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from airflow_ml.exceptions import ConfigError, Problem, show_value
from airflow_ml.templates.base import is_name
from airflow_ml.templates.city_layer import check_city_layer, check_group_layer
from airflow_ml.templates.describe import Origin, describe, did_you_mean
from airflow_ml.templates.files import (
    CITIES_SUBDIR,
    DEFAULTS_FILE,
    GROUPS_SUBDIR,
    TEMPLATES_SUBDIR,
    YAML_SUFFIX,
    yaml_files,
)
from airflow_ml.templates.model_claims import dag_id_clash, model_name_clash, outside_claims
from airflow_ml.templates.models import CITY_ID_PATTERN, CityConfig, TemplateConfig
from airflow_ml.templates.parent_names import ParentNames
from airflow_ml.templates.yaml_lines import Path_, YamlFileError, load_yaml_with_positions

#: A file's data, and each key path's line and column.
_Read = tuple[dict[str, Any], dict[Path_, int], dict[Path_, int]]


def load_template(path: Path, *, defaults: Path | None = None) -> TemplateConfig:
    """Load and validate one template file, over the shared defaults when given.

    Raises:
        ConfigError: naming the file, line, field and value of each problem.
    """
    layers = Layers()
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
    return Layers().city(path, templates_dir, defaults, groups_dir)[0]


def load_city_configs(
    root: Path,
    *,
    include: Callable[[str], bool] | None = None,
    origins: dict[str, Origin] | None = None,
) -> tuple[list[CityConfig], list[ConfigError]]:
    """Load every city under ``root/cities`` (subfolders included) with its layers from ``root``.

    Precedence, lowest first: ``defaults.yaml`` < ``templates/<template>.yaml`` < ``groups/<group>.yaml``
    < the city file. A broken file never hides the others: its error is returned beside the good configs.
    Files are ``<name>.yaml``; one spelled otherwise (``porto.yml``) is reported, never silently skipped.

    Args:
        root: The templates folder.
        include: Given a city file's name without extension (which must be its city id), whether to load
            it; files left out are not loaded. Files of one city id are always kept or left out together,
            so duplicates are still found; a city whose registered model a file left out keeps (the first
            valid file that claims it: ``model_claims.py``) is refused as in a load of every file. In every
            load, a city whose registered model, or its parent's, a fallback parent that the layer files declare
            keeps is refused (``parent_names.py`` says why).
        origins: When given, filled with each valid config's DAG id -> where each of its settings was set
            (file, line, column), for tools that point at a setting.

    Returns:
        The valid city configs sorted by DAG id, and one error per broken file (a template that breaks
        every city of its own is reported once).
    """
    layers = Layers()
    configs: dict[str, tuple[Path, CityConfig]] = {}
    models: dict[str, tuple[Path, CityConfig]] = {}  # registered model name -> its city
    paths, errors = yaml_files(root / CITIES_SUBDIR, recursive=True, include=include)
    errors += misnamed_layers(root)
    reported = {(e.file, tuple(e.problems)) for e in errors}
    layer_dirs = (root / TEMPLATES_SUBDIR, regular_file(root / DEFAULTS_FILE), root / GROUPS_SUBDIR)  # once a load
    parents = ParentNames(root, layers.located)  # reads nothing until a city on a custom pattern asks

    def validate(path: Path) -> CityConfig:
        """A file left out, as the whole-fleet load takes it: one a declared parent's name refuses claims nothing."""
        config, origin = layers.city(path, *layer_dirs)
        if (refused := parents.refusal(path, config, origin)) is not None:
            raise refused
        return config

    # An unsharded load runs no pass: nothing is left out to claim a name before its files.
    outside = {} if include is None else outside_claims(root, paths, include, layers.data, validate, parents.patterns)
    for path in paths:
        try:
            config, origin = layers.city(path, *layer_dirs)
        except ConfigError as exc:
            if (exc.file, tuple(exc.problems)) not in reported:  # a broken template fails each of its cities
                reported.add((exc.file, tuple(exc.problems)))
                errors.append(exc)
            continue
        except Exception as exc:  # noqa: BLE001 - a check no message foresaw: still this file's error alone
            errors.append(unexpected_error(path, exc))
            continue
        if (clash := configs.get(config.dag_id)) is not None:
            errors.append(dag_id_clash(path, config, clash[0], origin))
            continue
        if (refused := parents.refusal(path, config, origin)) is not None:  # a declared parent keeps its name
            errors.append(refused)
            continue
        named = models.get(config.model_name)
        if named is None and (kept := outside.get(config.model_name)) is not None and kept[0] < path:
            named = kept  # a file of another shard, earlier in the order: the whole-fleet load would refuse this one
        if named is not None:
            errors.append(model_name_clash(path, config, named, origin))
            continue
        configs[config.dag_id] = (path, config)
        models[config.model_name] = (path, config)
        if origins is not None:
            origins[config.dag_id] = origin
    return [configs[dag_id][1] for dag_id in sorted(configs)], errors


def unexpected_error(path: Path, exc: Exception) -> ConfigError:
    """The error of a file that broke a check in a way no message foresaw (a bug of airflow-ml's checks).

    It is reported as that file's error, like any other, so the other files still load.
    """
    what = show_value(f"{type(exc).__name__}: {exc}", quote=False)
    problem = (
        f"the file could not be checked ({what}); correct or remove the value it names, and report the file "
        "to airflow-ml's maintainers so that this mistake gets a clear message"
    )
    return ConfigError(str(path), [Problem(problem)])


def misnamed_layers(root: Path) -> list[ConfigError]:
    """One error per defaults, template or group file whose suffix is not spelled ``.yaml`` (never read)."""
    errors = yaml_files(root, include=_is_defaults)[1]
    return errors + [e for folder in (TEMPLATES_SUBDIR, GROUPS_SUBDIR) for e in yaml_files(root / folder)[1]]


def _is_defaults(stem: str) -> bool:
    return stem == Path(DEFAULTS_FILE).stem


def regular_file(path: Path) -> Path | None:
    """``path`` if it is a regular file (links followed), else None."""
    return path if path.is_file() else None


class Layers:
    """Reads and checks each layer file once per load, however many cities share it (one per load)."""

    def __init__(self) -> None:
        self._files: dict[Path, _Read | ConfigError] = {}
        self._templates: dict[tuple[Path, Path | None], tuple[TemplateConfig, dict[str, Any], Origin]] = {}
        self._inside: dict[tuple[Path, Path], bool] = {}
        self._named: dict[tuple[Path, str], Path] = {}  # (folder, name) -> the layer file that passed the checks

    def inside(self, path: Path, folder: Path) -> bool:
        """Whether ``path``, links resolved, lies in ``folder`` (resolved once per load: a few layer files)."""
        key = (path, folder)
        if key not in self._inside:
            self._inside[key] = path.resolve().is_relative_to(folder.resolve())
        return self._inside[key]

    def layer(self, folder: Path, name: str) -> Path:
        """``<folder>/<name>.yaml`` for a name already checked; a file whose link leaves the folder is refused."""
        path = folder / f"{name}{YAML_SUFFIX}"
        if path.is_file() and not self.inside(path, folder):
            problem = (
                f"{path.name} is a link to a file outside {folder}; a layer is read only from its own folder: "
                "copy the file there instead of linking it"
            )
            raise ConfigError(str(path), [Problem(problem)])
        return path

    def data(self, path: Path, folder: Path | None) -> dict[str, Any] | None:
        """A file's data as a load reads it, else None: a broken file, one not regular (a FIFO or ``/dev/zero``
        could hang a read or never end it), or with ``folder`` one whose links leave it (as :meth:`named_file`)."""
        found = self.located(path, folder)
        return None if found is None else found[0]

    def located(self, path: Path, folder: Path | None) -> tuple[dict[str, Any], dict[Path_, int]] | None:
        """:meth:`data` with each key path's line."""
        if regular_file(path) is None or (folder is not None and not self.inside(path, folder)):
            return None
        try:
            return self.read(path)[:2]
        except ConfigError:
            return None

    def read(self, path: Path) -> _Read:
        """A file's data and positions, read once per load; a broken file's ConfigError, raised each time."""
        if path not in self._files:
            try:
                self._files[path] = _read(path)
            except ConfigError as exc:
                self._files[path] = exc  # a broken group named by a thousand cities is read once
        if isinstance(found := self._files[path], ConfigError):
            raise ConfigError(found.file, found.located)
        return found

    def template(self, path: Path, defaults: Path | None) -> tuple[TemplateConfig, dict[str, Any], Origin]:
        key = (path, defaults)
        if key not in self._templates:
            data, lines, cols = self.read(path)
            if data.get("template") not in (None, path.stem):
                problem = f"template: {show_value(data['template'])} must equal the file name {path.stem!r}"
                raise ConfigError(str(path), [_at(problem, ("template",), lines, cols)])
            merged: dict[str, Any] = {}
            origin: Origin = {}
            if defaults is not None:
                merged, origin = self.overlay(merged, origin, defaults)
            merged, origin = self.overlay(merged, origin, path)
            merged["template"] = path.stem
            try:
                config = TemplateConfig.model_validate(merged)
            except ValidationError as exc:
                raise ConfigError(str(path), describe(exc, TemplateConfig, origin)) from None
            self._templates[key] = (config, merged, origin)
        return self._templates[key]

    def city(
        self, path: Path, templates_dir: Path, defaults: Path | None, groups_dir: Path | None
    ) -> tuple[CityConfig, Origin]:
        data, lines, cols = self.read(path)
        template_path = self.named_file(path, data, (lines, cols), "template", templates_dir)
        _, merged, origin = self.template(template_path, defaults)
        merged = {k: v for k, v in merged.items() if k != "template"}
        if data.get("group") is not None:
            if groups_dir is None:
                raise ConfigError(str(path), [_at("group: no groups folder to look in", ("group",), lines, cols)])
            group_path = self.named_file(path, data, (lines, cols), "group", groups_dir)
            check_group_layer(group_path, self.read(group_path)[0], self.read(group_path)[1:])
            merged, origin = self.overlay(merged, origin, group_path)
        check_city_layer(path, data, (lines, cols), merged)
        merged, origin = self.overlay(merged, origin, path)
        city = merged.get("city")
        if isinstance(city, str) and re.fullmatch(CITY_ID_PATTERN, city) and path.stem != city:
            problem = f"city: {show_value(city)} must equal the file name {path.stem!r}; rename one of them"
            raise ConfigError(str(path), [_at(problem, ("city",), lines, cols)])
        try:
            return CityConfig.model_validate(merged), origin
        except ValidationError as exc:
            raise ConfigError(str(path), describe(exc, CityConfig, origin)) from None

    def named_file(self, path: Path, data: dict[str, Any], where: _Positions, key: str, folder: Path) -> Path:
        """The ``<folder>/<name>.yaml`` that ``key`` of a city file names, or a ConfigError with a suggestion.

        The value must be a name (``NAME_PATTERN``), never a path, and the file it names must lie in the
        folder: neither ``/etc/creds`` nor ``../cities/berlin`` is read, and no value of theirs is shown.
        """
        name = data.get(key)
        if isinstance(name, str) and (folder, name) in self._named:  # one template serves a thousand cities
            return self._named[folder, name]
        if not isinstance(name, str) or not name:
            problem = f"{key}: missing or not a name (got {show_value(name)}); add '{key}: <name>'"
            raise ConfigError(str(path), [_at(problem, (key,), *where)])
        if not is_name(name):
            known = sorted(p.stem for p in yaml_files(folder)[0])
            hint = did_you_mean(Path(name[:200]).name, known) or f"known: {known}"
            problem = (
                f"{key}: {show_value(name)} is not a {key} name; give the name of a file in {folder.name}/ "
                f"without '{YAML_SUFFIX}' (lower-case letters, digits and underscores), never a path; {hint}"
            )
            raise ConfigError(str(path), [_at(problem, (key,), *where)])
        target = folder / f"{name}{YAML_SUFFIX}"
        if not target.is_file():
            found, misnamed = yaml_files(folder)
            spelled = [Path(e.file).name for e in misnamed if Path(e.file).stem == name]
            known = sorted(p.stem for p in found)
            hint = (
                f"{spelled[0]} is not read: rename it to {name}{YAML_SUFFIX}"
                if spelled
                else did_you_mean(name, known) or f"known: {known}"
            )
            raise ConfigError(str(path), [_at(f"{key}: no {key} named {name!r} in {folder}; {hint}", (key,), *where)])
        if not self.inside(target, folder):
            problem = (
                f"{key}: {target.name} in {folder} is a link to a file outside that folder, which is never read; "
                f"copy the {key} file into {folder.name}/ instead of linking it"
            )
            raise ConfigError(str(path), [_at(problem, (key,), *where)])
        self._named[folder, name] = target
        return target

    def overlay(self, merged: dict[str, Any], origin: Origin, path: Path) -> tuple[dict[str, Any], Origin]:
        """``path``'s data merged over ``merged``, and where each of its settings was set."""
        data, lines, cols = self.read(path)
        return deep_merge(merged, data), {**origin, **{k: (path, n, cols.get(k, 1)) for k, n in lines.items()}}


_Positions = tuple[dict[Path_, int], dict[Path_, int]]


def _at(message: str, key: Path_, lines: dict[Path_, int], cols: dict[Path_, int]) -> Problem:
    """A problem placed at ``key`` of the file (its first line when the key is absent)."""
    return Problem(message, line=lines.get(key, 1), col=cols.get(key, 1))


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``override`` over ``base``: mappings merge key by key; lists and scalars replace."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read(path: Path) -> _Read:
    try:
        return load_yaml_with_positions(path)
    except FileNotFoundError:
        raise ConfigError(str(path), ["the file does not exist"]) from None
    except YamlFileError as exc:
        raise ConfigError(str(path), exc.problems) from None
    except OSError as exc:
        raise ConfigError(str(path), [f"the file cannot be read ({exc.strerror}); check its permissions"]) from None
