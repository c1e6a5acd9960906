"""Which city file keeps a registered model name that several files claim: one rule for every load of the fleet.

Two city files may give one registered model (``CityConfig.model_name``): the same city id twice (one DAG id
too), or two templates whose ``registry.name_pattern`` render two (template, city) pairs alike (template ``a_b``
with city ``c`` and template ``a`` with city ``b_c`` under ``{template}_{city}``). The rule, for the whole-fleet
load, a shard's load, a task process's and the broken-files report alike: **among the valid city files that claim
a name, the first in the loader's path order (the sorted paths under ``cities/``) keeps it; every other is
refused.** A file that loses its DAG id loses its name too: one DAG id is one (template, city), so one name.

A load of part of the fleet sees only its own files, and two cities of different ids can sit in different shards.
So that it refuses exactly what the whole-fleet load refuses, :func:`outside_claims` gives, for each name its
files claim, the first valid file left out of the load that claims it before them; the loader refuses its own
file against that one. It looks only when the templates make a clash between two city ids possible at all
(:func:`clash_possible`, from the defaults and template files only), and then by name: a name ``A + city + B``
can come, under each other custom template, from one city id only (the name with that template's ends
stripped). Only the city files of those few ids are read (their ``template:`` key), and only those claiming a
name of the load before one of its files are validated in full: a few files per city loaded, whatever the fleet.

A city may also give the registered model of another template's fallback parent (template ``ride`` with city
``x_global`` and template ``ride_x`` with a ``global`` parent, both under ``main.ml.{template}_{city}``). **A name
that a fallback parent declared by the layer files would have is the parent's: every city file that gives it is
refused** (:class:`ParentNames`), in every load alike, whatever the other city files. Why the parent, and why
"declared by the layer files":

- a parent serves many cities, and its name follows from the defaults, template and group files alone (a city
  may only turn its fallback off), so a load of any part of the fleet knows it without reading other city files;
- the parents declared are the templates' ``global`` parents whose defaults, template or some group sets
  ``fallback.parent: global``, and the (template, group) parents whose merged layers set ``group``. That holds
  every parent the parents' DAG file builds (those with a member city) and refuses nothing in a fleet whose
  layers declare no parent. Reserving every *possible* parent (any template's ``global``) would refuse
  ``ride.x_global`` in a fleet without fallback; reserving only parents with a member would make a city valid
  or not by whether another template has a city yet, and a one-city load would read every city file to know;
- so the clash shows as soon as a layer declares the parent, before a member city exists to train it.

Under the default pattern, or when :func:`clash_possible` says no, nothing more is read for a city. Two parents
may meet too (template ``ride``'s parent of group ``global`` and ``ride_group``'s ``global`` parent): the parents'
load, which sees every parent, keeps the first in its order and refuses the other (:func:`parent_model_clash`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from airflow_ml.exceptions import ConfigError, Problem
from airflow_ml.templates.base import CITY_ID_PATTERN, is_name
from airflow_ml.templates.fallback_spec import GLOBAL_PARENT, GROUP_PARENT_PREFIX
from airflow_ml.templates.files import CITIES_SUBDIR, DEFAULTS_FILE, GROUPS_SUBDIR, TEMPLATES_SUBDIR, yaml_files
from airflow_ml.templates.registry_spec import (
    DEFAULT_NAME_PATTERN,
    PARENT_GROUP_SEGMENT,
    name_pattern_problems,
    render_name,
)
from airflow_ml.templates.yaml_lines import YamlFileError, load_yaml_with_positions

if TYPE_CHECKING:
    from airflow_ml.templates.describe import Origin
    from airflow_ml.templates.models import CityConfig, ParentConfig

#: A file's data as the load reads it, or None when the load would not read it (not a regular file, a link out of
#: the folder given, or broken): the loader's guards (``_Layers.data``), so this pass reads nothing the load refuses.
Read = Callable[[Path, Path | None], dict[str, Any] | None]


class CityRef(NamedTuple):
    """What a city file names, read without validating it: its path, its template and its group."""

    path: Path
    template: str
    group: str | None

    @property
    def city(self) -> str:
        """The city id a valid file has: its file name (the loader refuses a ``city:`` that differs)."""
        return self.path.stem


def city_refs(root: Path) -> list[CityRef]:
    """Every city file under ``root/cities`` that names a template (and a group, if any), in the loader's order.

    Broken files are left to the city load, which reports them.
    """
    found = []
    for path in yaml_files(root / CITIES_SUBDIR, recursive=True)[0]:
        data = _read(path)
        template, group = data.get("template"), data.get("group")
        if is_name(template) and (group is None or is_name(group)):  # names, never paths
            found.append(CityRef(path, template, group))
    return found


def name_patterns(root: Path, read: Read) -> dict[str, str]:
    """``registry.name_pattern`` of each template of ``root/templates``, over the shared defaults.

    A template the load would not read (``read`` gives None: a link out of ``templates/``, not a regular file,
    broken), or whose merged ``registry`` could not validate (not a mapping, a pattern that is no string or a
    refused one) is left out: none of its cities is valid, so none claims a name. Only the template files (and
    the defaults) may set the pattern: a group or a city file that does is refused (``city_layer.py``).
    """
    defaults = read(root / DEFAULTS_FILE, None) or {}  # the loader reads the defaults through a link too
    folder = root / TEMPLATES_SUBDIR
    patterns = {}
    for path in yaml_files(folder)[0]:
        template = read(path, folder)
        pattern = None if template is None else _merged_pattern(defaults, template)
        if pattern is not None:
            patterns[path.stem] = pattern
    return patterns


def clash_possible(patterns: dict[str, str]) -> bool:
    """Whether two city files of different ids may give one registered model, from the templates' patterns only.

    Conservative: True may be said of templates whose cities never clash, never False of ones that can. Why:

    - within one template, ``{city}`` appears once in the pattern and the template is fixed, so two names are
      equal only for one city id (the loader then reports one DAG id twice; one id lies in one shard);
    - a template on the default ``{template}.{city}`` gives ``<template>.<city>``, and template names and city
      ids hold no dot (``NAME_PATTERN``, ``CITY_ID_PATTERN``): the one dot splits the name back into its pair,
      so two default templates never clash; nor does a default one with a custom one, as a custom pattern
      whose sample name has that shape is refused (``name_pattern_problems``), and a real name of a custom
      pattern that has it anyway (a placeholder filling a middle part with ``group``: ``x.{city}.{template}``
      with city ``group`` gives ``x.group.t``, template ``x``'s parent of group ``t``) is refused with its city
      (``CityConfig``), reading no file;
    - two custom patterns, each with its template filled in, read ``A + city + B``; a shared name needs one
      ``A`` to be a prefix of the other and one ``B`` a suffix of the other. Two templates failing that never
      clash (``main.ml.{template}_{city}`` for ``ride`` and ``food``), else they may (``ride`` and ``ride_x``).
    """
    ends = [_ends(pattern, template) for template, pattern in patterns.items() if pattern != DEFAULT_NAME_PATTERN]
    for index, (before, after) in enumerate(ends):
        for other_before, other_after in ends[index + 1 :]:
            prefix = before.startswith(other_before) or other_before.startswith(before)
            if prefix and (after.endswith(other_after) or other_after.endswith(after)):
                return True
    return False


def outside_claims(
    root: Path, loaded: list[Path], include: Callable[[str], bool], read: Read, validate: Callable[[Path], CityConfig]
) -> dict[str, tuple[Path, CityConfig]]:
    """Each model name a file of the load may claim -> the first valid file left out that claims it before one of them.

    Args:
        root: The templates folder.
        loaded: The city files of the load, sorted.
        include: The load's rule (a city file's name -> whether it is loaded), as ``load_city_configs`` takes it.
        read: Reads a file through the loader's guards (:data:`Read`).
        validate: Loads one city file in full, as the load does; whatever it raises makes the file claim nothing.

    Returns:
        Empty unless :func:`clash_possible`: then the defaults, the templates and the files of the load are read,
        and of the files left out only those whose id could give a name of the load under another template.
    """
    if not loaded:
        return {}  # a load that keeps nothing refuses nothing
    patterns = name_patterns(root, read)
    if not clash_possible(patterns):
        return {}  # the common case: a few layer files, nothing per city
    ends = {
        template: _ends(pattern, template) for template, pattern in patterns.items() if pattern != DEFAULT_NAME_PATTERN
    }
    claims: dict[str, list[tuple[Path, bool]]] = {}
    rivals: set[str] = set()  # the ids left out that could claim a name of the load
    for path in loaded:
        if (claim := _claim(path, patterns, read)) is None:
            continue
        template, name = claim
        claims.setdefault(name, []).append((path, True))
        if template not in ends:
            continue  # a default-pattern name meets no other template's (clash_possible says why)
        for other, (before, after) in ends.items():
            # The same template gives this name back only to this id, which the load keeps or leaves out whole.
            if other != template and (city := _city_of(name, before, after)) is not None and not include(city):
                rivals.add(city)
    if not rivals:
        return {}  # nothing left out can claim a name of the load: no city file listed or read
    for path in yaml_files(root / CITIES_SUBDIR, recursive=True, include=rivals.__contains__)[0]:
        if (claim := _claim(path, patterns, read)) is not None and claim[1] in claims:
            claims[claim[1]].append((path, False))
    found: dict[str, tuple[Path, CityConfig]] = {}
    for name, files in claims.items():
        files.sort()  # the loader's order
        last = max(path for path, inside in files if inside)
        for path, inside in files:
            if path >= last:
                break
            if not inside and (config := _valid(validate, path)) is not None:
                found[name] = (path, config)
                break
    return found


class ParentName(NamedTuple):
    """A fallback parent whose registered model a city's name would be: its DAG id and the file that declares it."""

    dag_id: str
    declared_in: Path


class ParentNames:
    """The registered models of the fallback parents that the layer files declare, looked up city by city.

    One per load, reading through the load's guards (``read``). A city on the default pattern costs nothing; one
    on a custom pattern costs the defaults and template files once (:func:`name_patterns`, which a load of part
    of the fleet reads anyway), and, only when :func:`clash_possible`, the layers of the few parents its name
    could be: the template its name gives back with ``global`` or ``group_<group>`` in the city's place, and
    that group's file (every group file for a ``global`` parent that its template does not declare). Never a
    city file.
    """

    def __init__(self, root: Path, read: Read) -> None:
        self._root = root
        self._read = read
        self._ends: dict[str, tuple[str, str]] | None = None  # custom templates' ends; {} when no clash is possible
        self._declared: dict[tuple[str, str | None], Path | None] = {}

    def parent_of(self, config: CityConfig) -> ParentName | None:
        """The declared parent of another template whose registered model is ``config.model_name``, or None."""
        if not config.registry.custom:
            return None  # a default-pattern name meets no other template's (clash_possible says why)
        for template, (before, after) in self._custom_ends().items():
            segment = _middle(config.model_name, before, after)
            if template == config.template or segment is None:
                continue  # its own template's parents have ids no city may take ('global', 'group_...')
            group = segment.removeprefix(PARENT_GROUP_SEGMENT) if segment != GLOBAL_PARENT else None
            if group is not None and (group == segment or not is_name(group)):
                continue  # neither 'global' nor 'group_<group>': no parent's name
            if (declared_in := self._declaration(template, group)) is not None:
                city = GLOBAL_PARENT if group is None else f"{GROUP_PARENT_PREFIX}{group}"
                return ParentName(f"{template}.{city}", declared_in)
        return None

    def _custom_ends(self) -> dict[str, tuple[str, str]]:
        if self._ends is None:
            patterns = name_patterns(self._root, self._read)
            custom = {t: _ends(p, t) for t, p in patterns.items() if p != DEFAULT_NAME_PATTERN}
            self._ends = custom if clash_possible(patterns) else {}
        return self._ends

    def _declaration(self, template: str, group: str | None) -> Path | None:
        """The layer file whose ``fallback.parent`` declares this parent of ``template`` (of ``group``), or None."""
        if (template, group) not in self._declared:
            self._declared[template, group] = self._declaring(template, group)
        return self._declared[template, group]

    def _declaring(self, template: str, group: str | None) -> Path | None:
        templates, groups = self._root / TEMPLATES_SUBDIR, self._root / GROUPS_SUBDIR
        layers = [(path := self._root / DEFAULTS_FILE, self._read(path, None) or {})]
        layers.append((path := templates / f"{template}.yaml", self._read(path, templates) or {}))
        kind = "global" if group is None else "group"
        # A global parent unites the cities of every group that declares it too, so each group may declare it.
        names = [group] if group is not None else [None, *(p.stem for p in yaml_files(groups)[0])]
        for name in names:
            stack = layers
            if name is not None:
                if (data := self._read(path := groups / f"{name}.yaml", groups)) is None:
                    continue  # a group the load would not read makes no parent
                stack = [*layers, (path, data)]
            if (where := _sets_parent(stack, kind)) is not None:
                return where
        return None


def parent_name_clash(path: Path, config: CityConfig, parent: ParentName, origin: Origin) -> ConfigError:
    """A city whose ``registry.name_pattern`` gives it the registered model of a declared fallback parent."""
    problem = (
        f"registry.name_pattern: {config.registry.name_pattern!r} gives city {config.city!r} of template "
        f"{config.template!r} ({path}) the registered model {config.model_name!r}, the model of the fallback "
        f"parent {parent.dag_id!r} that {parent.declared_in} declares (fallback.parent), and a parent's name is "
        "its own, as it serves many cities; give the city another id, or put a '.' between {template} and "
        "{city} in the pattern"
    )
    where, line, col = origin.get(("registry", "name_pattern"), (path, 1, 1))
    return ConfigError(str(where), [Problem(problem, line=line, col=col)])


def model_name_clash(path: Path, config: CityConfig, named: tuple[Path, CityConfig], origin: Origin) -> ConfigError:
    """Two cities of two templates whose ``registry.name_pattern`` give them one registered model."""
    other_path, other = named
    problem = (
        f"registry.name_pattern: {config.registry.name_pattern!r} gives city {config.city!r} of template "
        f"{config.template!r} ({path}) the registered model {config.model_name!r}, already the model of city "
        f"{other.city!r} of template {other.template!r} ({other_path}); put a '.' between {{template}} and "
        "{city} in the pattern, or give one of the cities another id"
    )
    where, line, col = origin.get(("registry", "name_pattern"), (path, 1, 1))
    return ConfigError(str(where), [Problem(problem, line=line, col=col)])


def dag_id_clash(path: Path, config: CityConfig, other_path: Path, origin: Origin) -> ConfigError:
    """A city file whose (template, city) another file, first in the loader's order, already gives."""
    problem = (
        f"city: {config.city!r} with template {config.template!r} gives DAG id {config.dag_id!r}, "
        f"already given by {other_path}; give one of them another city id"
    )
    line, col = origin.get(("city",), (path, 1, 1))[1:]
    return ConfigError(str(path), [Problem(problem, line=line, col=col)])


def parent_model_clash(parent: ParentConfig, first: ParentConfig, origin: Origin, where: Path) -> ConfigError:
    """Two fallback parents of two templates whose ``registry.name_pattern`` give them one registered model.

    Under ``main.ml.{template}_{city}``, template ``ride``'s parent of group ``global`` and template ``ride_group``'s
    ``global`` parent are both ``main.ml.ride_group_global``; the first parent in the parents' order keeps it.
    ``where`` is the parent's last layer file, named if the pattern's line is unknown.
    """
    problem = (
        f"registry.name_pattern: {parent.registry.name_pattern!r} gives the fallback parent {parent.dag_id!r} the "
        f"registered model {parent.model_name!r}, already the model of the fallback parent {first.dag_id!r}; put a "
        "'.' between {template} and {city} in the pattern, or give the group another name"
    )
    where, line, col = origin.get(("registry", "name_pattern"), (where, 1, 1))
    return ConfigError(str(where), [Problem(problem, line=line, col=col)])


def _sets_parent(layers: list[tuple[Path, dict[str, Any]]], kind: str) -> Path | None:
    """The file that makes ``fallback.parent`` of these layers, merged as the loader merges them, ``kind``."""
    fallback: Any = {}
    where = None
    for path, data in layers:
        if "fallback" in data:
            value = data["fallback"]
            merges = isinstance(fallback, dict) and isinstance(value, dict)
            fallback = {**fallback, **value} if merges else value
            where = path if not merges or "parent" in value else where
    return where if isinstance(fallback, dict) and fallback.get("parent") == kind else None


def _claim(path: Path, patterns: dict[str, str], read: Read) -> tuple[str, str] | None:
    """``(template, model name)`` a city file gives when valid, from its ``template:`` key and its name alone."""
    template = (read(path, None) or {}).get("template")
    if not is_name(template) or (pattern := patterns.get(template)) is None:
        return None
    return template, render_name(pattern, template, path.stem)


def _city_of(name: str, before: str, after: str) -> str | None:
    """The one city id that a pattern with these ends renders as ``name``, or None."""
    city = _middle(name, before, after)
    return city if city is not None and re.fullmatch(CITY_ID_PATTERN, city) else None


def _middle(name: str, before: str, after: str) -> str | None:
    """What a pattern with these ends put where ``{city}`` stands to render ``name``, or None."""
    if not (len(name) > len(before) + len(after) and name.startswith(before) and name.endswith(after)):
        return None
    return name[len(before) : len(name) - len(after)]


def _valid(validate: Callable[[Path], CityConfig], path: Path) -> CityConfig | None:
    try:
        return validate(path)
    except Exception:  # noqa: BLE001 - a broken file claims no name; its own load reports it
        return None


def _ends(pattern: str, template: str) -> tuple[str, str]:
    """What a pattern puts before and after the city id, with ``template`` filled in."""
    before, _, after = pattern.partition("{city}")
    return before.replace("{template}", template), after.replace("{template}", template)


def _merged_pattern(defaults: dict[str, Any], template: dict[str, Any]) -> str | None:
    """The pattern of ``registry`` merged as the loader merges it (mappings key by key), or None if refused."""
    registry: Any = {}
    for layer in (defaults, template):
        if "registry" in layer:
            value = layer["registry"]
            registry = {**registry, **value} if isinstance(registry, dict) and isinstance(value, dict) else value
    if not isinstance(registry, dict):
        return None
    pattern = registry.get("name_pattern", DEFAULT_NAME_PATTERN)
    return pattern if isinstance(pattern, str) and not name_pattern_problems(pattern) else None


def _read(path: Path) -> dict[str, Any]:
    """A file's data by the same safe reading as every other (no anchors, no duplicate keys, no Jinja); {} if broken."""
    try:
        return load_yaml_with_positions(path)[0]
    except (YamlFileError, OSError):
        return {}
