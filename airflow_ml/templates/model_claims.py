"""Which city file keeps a registered model name that several files claim: one rule for every load of the fleet.

Two city files may give one registered model (``CityConfig.model_name``): the same city id twice (one DAG id
too), or two templates whose ``registry.name_pattern`` render two (template, city) pairs alike (template ``a_b``
with city ``c`` and template ``a`` with city ``b_c`` under ``{template}_{city}``). The rule, for the whole-fleet
load, a shard's load, a task process's and the broken-files report alike: **among the valid city files that claim
a name, the first in the loader's path order (the sorted paths under ``cities/``) keeps it; every other is
refused.** A file that loses its DAG id loses its name too: one DAG id is one (template, city), so one name; one
refused for a declared fallback parent's name (``parent_names.py``) is not valid and claims nothing, in a load that
leaves it out as in one that reads it.

A load of part of the fleet sees only its own files, and two cities of different ids can sit in different shards.
So that it refuses exactly what the whole-fleet load refuses, :func:`outside_claims` gives, for each name its
files claim, the first valid file left out of the load that claims it before them; the loader refuses its own
file against that one. It looks only when the templates make a clash between two city ids possible at all
(:func:`clash_possible`, from the defaults and template files only), and then by name: a name ``A + city + B``
can come, under each other custom template, from one city id only (the name with that template's ends
stripped). Only the city files of those few ids are read (their ``template:`` key), and only those claiming a
name of the load before one of its files are validated in full: a few files per city loaded, whatever the fleet.

A city may also give the registered model of another template's fallback parent, and two parents one name:
``parent_names.py`` holds that rule (the parent keeps its name), which needs no other city file.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from airflow_ml.exceptions import ConfigError, Problem
from airflow_ml.templates.base import CITY_ID_PATTERN, is_name
from airflow_ml.templates.files import CITIES_SUBDIR, DEFAULTS_FILE, TEMPLATES_SUBDIR, yaml_files
from airflow_ml.templates.registry_spec import DEFAULT_NAME_PATTERN, name_pattern_problems, render_name
from airflow_ml.templates.yaml_lines import YamlFileError, load_yaml_with_positions

if TYPE_CHECKING:
    from airflow_ml.templates.describe import Origin
    from airflow_ml.templates.models import CityConfig

#: A file's data as the load reads it, or None when the load would not read it (not a regular file, a link out of
#: the folder given, or broken): the loader's guards (``Layers.data``), so this pass reads nothing the load refuses.
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
    ends = list(custom_ends(patterns).values())
    for index, (before, after) in enumerate(ends):
        for other_before, other_after in ends[index + 1 :]:
            prefix = before.startswith(other_before) or other_before.startswith(before)
            if prefix and (after.endswith(other_after) or other_after.endswith(after)):
                return True
    return False


def custom_ends(patterns: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Each custom-pattern template -> what its pattern puts before and after the city id (template filled in)."""
    return {
        template: _ends(pattern, template) for template, pattern in patterns.items() if pattern != DEFAULT_NAME_PATTERN
    }


def outside_claims(
    root: Path,
    loaded: list[Path],
    include: Callable[[str], bool],
    read: Read,
    validate: Callable[[Path], CityConfig],
    known: Callable[[], dict[str, str]] | None = None,
) -> dict[str, tuple[Path, CityConfig]]:
    """Each model name a file of the load may claim -> the first valid file left out that claims it before one of them.

    Args:
        root: The templates folder.
        loaded: The city files of the load, sorted.
        include: The load's rule (a city file's name -> whether it is loaded), as ``load_city_configs`` takes it.
        read: Reads a file through the loader's guards (:data:`Read`).
        validate: Loads one city file in full, as the load does, the parent-name refusal included; whatever it
            raises makes the file claim nothing.
        known: The templates' :func:`name_patterns`, when the load has them (read once per load); else read here.

    Returns:
        Empty unless :func:`clash_possible`: then the defaults, the templates and the files of the load are read,
        and of the files left out only those whose id could give a name of the load under another template.
    """
    if not loaded:
        return {}  # a load that keeps nothing refuses nothing
    patterns = name_patterns(root, read) if known is None else known()
    if not clash_possible(patterns):
        return {}  # the common case: a few layer files, nothing per city
    ends = custom_ends(patterns)
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


def _claim(path: Path, patterns: dict[str, str], read: Read) -> tuple[str, str] | None:
    """``(template, model name)`` a city file gives when valid, from its ``template:`` key and its name alone."""
    template = (read(path, None) or {}).get("template")
    if not is_name(template) or (pattern := patterns.get(template)) is None:
        return None
    return template, render_name(pattern, template, path.stem)


def _city_of(name: str, before: str, after: str) -> str | None:
    """The one city id that a pattern with these ends renders as ``name``, or None."""
    city = middle(name, before, after)
    return city if city is not None and re.fullmatch(CITY_ID_PATTERN, city) else None


def middle(name: str, before: str, after: str) -> str | None:
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
