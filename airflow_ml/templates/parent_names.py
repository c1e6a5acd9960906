"""Who keeps a registered model name that a fallback parent would have: one rule for every load of the fleet.

A city may give the registered model of another template's fallback parent (template ``ride`` with city
``x_global`` and template ``ride_x`` with a ``global`` parent, both ``main.ml.ride_x_global`` under
``main.ml.{template}_{city}``), and two parents of two templates may give one name (template ``ride``'s parent of
a group named ``global`` and template ``ride_group``'s ``global`` parent: ``main.ml.ride_group_global``). The rule,
for the whole-fleet load, a shard's, a task process's, the broken-files report and the parents' DAG file alike:

- **a name that a fallback parent declared by the layer files would have is the parent's: every city file that
  gives it is refused** (:func:`parent_name_clash`);
- **of two declared parents giving one name, the first by DAG id keeps it; the other is not built, and every
  city that would fall back to it is refused** (:func:`parent_model_clash`, :func:`parent_rival_clash`).

Why the parent, why "declared by the layer files", why the first by DAG id:

- a parent serves many cities, and its name follows from the defaults, template and group files alone (a city
  may only turn its fallback off), so a load of any part of the fleet knows it without reading other city files;
- the parents declared are the templates' ``global`` parents whose defaults, template or some group sets
  ``fallback.parent: global``, and the (template, group) parents whose merged layers set ``group``. That holds
  every parent the parents' DAG file builds (those with a member city) and refuses nothing in a fleet whose
  layers declare no parent. Reserving every *possible* parent (any template's ``global``) would refuse
  ``ride.x_global`` in a fleet without fallback; reserving only parents with a member would make a city, or a
  built parent, valid or not by whether another template has a city yet (adding one city of ``ride`` in group
  ``global`` would make the trained ``ride_group.global`` vanish), and a one-city load would read every city file;
- between two declared parents, neither serves more cities by right, so the order decides, as the first city file
  in path order keeps a name two cities claim (``model_claims.py``); the DAG id is known from the layer files,
  so adding or removing a city never moves the name. The losing parent's cities are refused rather than left to
  fall back to a model of another template (their gate baseline and their serving would point there): each is
  named with the clash and the fixes, of which ``fallback: {parent: none}`` in the file declaring the losing
  parent, or in the city file, keeps the city. Refusing both parents instead would leave both templates'
  cities pointing at one name that no DAG trains, and a model trained there before still serving them.

So a clash shows as soon as a layer declares the parent, before a member city exists to train it. Under the
default pattern, or when :func:`~airflow_ml.templates.model_claims.clash_possible` says no, nothing is read for a
city: a custom-pattern name never has the default shape (``CityConfig``, ``ParentConfig``), so no default
template's parent can share it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from airflow_ml.exceptions import ConfigError, Problem
from airflow_ml.templates.base import is_name
from airflow_ml.templates.city_layer import sets_template_only
from airflow_ml.templates.fallback_spec import GLOBAL_PARENT, GROUP_PARENT_PREFIX
from airflow_ml.templates.files import DEFAULTS_FILE, GROUPS_SUBDIR, TEMPLATES_SUBDIR, yaml_files
from airflow_ml.templates.model_claims import clash_possible, custom_ends, middle, name_patterns
from airflow_ml.templates.registry_spec import PARENT_GROUP_SEGMENT

if TYPE_CHECKING:
    from airflow_ml.templates.describe import Origin
    from airflow_ml.templates.models import CityConfig, ParentConfig
    from airflow_ml.templates.yaml_lines import Path_

#: A file's data and each key path's line as the load reads it, or None when the load would not read it: the
#: loader's guards (``Layers.located``), so nothing the load refuses (a FIFO, a link out of its folder) is read.
Located = Callable[[Path, Path | None], "_Located | None"]
_Located = tuple[dict[str, Any], dict["Path_", int]]


class ParentName(NamedTuple):
    """A declared fallback parent: its DAG id, and the file and line whose ``fallback.parent`` declares it."""

    dag_id: str
    declared_in: Path
    line: int

    @property
    def where(self) -> str:
        """``<file>, line <n>``: where the parent is declared."""
        return f"{self.declared_in}, line {self.line}"


class ParentNames:
    """The registered models of the fallback parents that the layer files declare, looked up city by city.

    One per load, reading through the load's guards (:data:`Located`). A city on the default pattern costs
    nothing; one on a custom pattern costs the defaults and template files once (:meth:`patterns`, which a load
    of part of the fleet reads anyway), and, only when ``clash_possible``, the layers of the few parents its name
    or its parent's could be: each other custom template that gives the name back with ``global`` or
    ``group_<group>`` in the city's place, and that group's file; for a ``global`` parent that the defaults and
    its template do not declare, every group file, as any group may declare it. Never another city file.
    """

    def __init__(self, root: Path, located: Located) -> None:
        self._root = root
        self._located = located
        self._patterns: dict[str, str] | None = None
        self._ends: dict[str, tuple[str, str]] | None = None  # custom templates' ends; {} when no clash is possible
        self._declared: dict[tuple[str, str | None], ParentName | None] = {}

    def patterns(self) -> dict[str, str]:
        """``name_patterns`` of the templates, read once per load (the city-claims pass takes them too)."""
        if self._patterns is None:
            self._patterns = name_patterns(self._root, self._data)
        return self._patterns

    def refusal(self, path: Path, config: CityConfig, origin: Origin) -> ConfigError | None:
        """Why a valid city file is refused for a declared parent's name (its own or its parent's), or None."""
        if not config.registry.custom:
            return None  # a default-pattern name meets no other template's (clash_possible says why)
        if named := self.named(config.model_name, config.template):
            return parent_name_clash(path, config, named[0], origin)
        if config.parent_model_name is not None:
            city = GLOBAL_PARENT if config.fallback.parent == GLOBAL_PARENT else f"{GROUP_PARENT_PREFIX}{config.group}"
            own = f"{config.template}.{city}"
            if (kept := self.keeper(config.template, own, config.parent_model_name)) is not None:
                return parent_rival_clash(path, config, own, kept, origin)
        return None

    def keeper(self, template: str, dag_id: str, model_name: str) -> ParentName | None:
        """The declared parent of another template that keeps ``model_name`` before the parent ``dag_id``, or None."""
        named = self.named(model_name, template)
        return named[0] if named and named[0].dag_id < dag_id else None

    def named(self, model_name: str, template: str) -> list[ParentName]:
        """The declared parents of templates other than ``template`` whose registered model is ``model_name``.

        Sorted by DAG id: the first keeps the name. Each other custom template gives a name back to one parent
        at most (``global`` or ``group_<group>`` where its pattern puts the city).
        """
        found = []
        for other, (before, after) in self._custom_ends().items():
            if other == template or (segment := middle(model_name, before, after)) is None:
                continue  # its own template's parents have ids no city may take ('global', 'group_...')
            group = segment.removeprefix(PARENT_GROUP_SEGMENT) if segment != GLOBAL_PARENT else None
            if group is not None and (group == segment or not is_name(group)):
                continue  # neither 'global' nor 'group_<group>': no parent's name
            if (declared := self.declaration(other, group)) is not None:
                found.append(declared)
        return sorted(found)

    def declaration(self, template: str, group: str | None) -> ParentName | None:
        """The parent of ``template`` (of ``group``) with the file and line declaring it, or None if undeclared."""
        if (template, group) not in self._declared:
            self._declared[template, group] = self._declaring(template, group)
        return self._declared[template, group]

    def _custom_ends(self) -> dict[str, tuple[str, str]]:
        if self._ends is None:
            patterns = self.patterns()
            self._ends = custom_ends(patterns) if clash_possible(patterns) else {}
        return self._ends

    def _data(self, path: Path, folder: Path | None) -> dict[str, Any] | None:
        found = self._located(path, folder)
        return None if found is None else found[0]

    def _declaring(self, template: str, group: str | None) -> ParentName | None:
        templates, groups = self._root / TEMPLATES_SUBDIR, self._root / GROUPS_SUBDIR
        layers = [(path := self._root / DEFAULTS_FILE, self._located(path, None) or ({}, {}))]
        layers.append((path := templates / f"{template}.yaml", self._located(path, templates) or ({}, {})))
        kind = GLOBAL_PARENT if group is None else "group"
        # A global parent unites the cities of every group that declares it too, so each group may declare it.
        names = [group] if group is not None else [None, *(p.stem for p in yaml_files(groups)[0] if is_name(p.stem))]
        for name in names:
            stack = layers
            if name is not None:
                found = self._located(path := groups / f"{name}.yaml", groups)
                if found is None or sets_template_only(found[0]):
                    continue  # a group the load would not read, or whose cities it refuses, makes no parent
                stack = [*layers, (path, found)]
            if (where := _sets_parent(stack, kind)) is not None:
                city = GLOBAL_PARENT if group is None else f"{GROUP_PARENT_PREFIX}{group}"
                return ParentName(f"{template}.{city}", *where)
        return None


def parent_name_clash(path: Path, config: CityConfig, parent: ParentName, origin: Origin) -> ConfigError:
    """A city whose ``registry.name_pattern`` gives it the registered model of a declared fallback parent."""
    problem = (
        f"registry.name_pattern: {config.registry.name_pattern!r} gives city {config.city!r} of template "
        f"{config.template!r} ({path}) the registered model {config.model_name!r}, the model of the fallback "
        f"parent {parent.dag_id!r} that {parent.where} declares (fallback.parent), and a parent's name is its own, "
        "as it serves many cities; give the city another id, or put a '.' between {template} and {city} in the "
        f"pattern, or, if no city should fall back to {parent.dag_id!r}, set 'fallback: {{parent: none}}' "
        f"in {parent.declared_in}"
    )
    where, line, col = origin.get(("registry", "name_pattern"), (path, 1, 1))
    return ConfigError(str(where), [Problem(problem, line=line, col=col)])


def parent_rival_clash(path: Path, config: CityConfig, own: str, kept: ParentName, origin: Origin) -> ConfigError:
    """A city whose fallback parent loses its registered model to another template's parent, first by DAG id."""
    problem = (
        f"fallback.parent: city {config.city!r} of template {config.template!r} ({path}) would fall back to the "
        f"parent {own!r}, whose registered model {config.parent_model_name!r} (registry.name_pattern "
        f"{config.registry.name_pattern!r}) is already the model of the fallback parent {kept.dag_id!r} "
        f"that {kept.where} declares, first by DAG id: {own!r} is not built, and the city would be served by "
        f"another template's model; set 'fallback: {{parent: none}}' here or in the city file, "
        f"{_renames(own, kept.dag_id)}put a '.' between {{template}} and {{city}} in the pattern"
    )
    where, line, col = origin.get(("fallback", "parent"), (path, 1, 1))
    return ConfigError(str(where), [Problem(problem, line=line, col=col)])


def parent_model_clash(parent: ParentConfig, kept: ParentName, origin: Origin, where: Path) -> ConfigError:
    """A fallback parent whose ``registry.name_pattern`` gives it the model of a parent declared first by DAG id.

    ``where`` is the parent's last layer file, named if the pattern's line is unknown.
    """
    declared = origin.get(("fallback", "parent"))
    problem = (
        f"registry.name_pattern: {parent.registry.name_pattern!r} gives the fallback parent {parent.dag_id!r}"
        + (f" (declared at {declared[0]}, line {declared[1]})" if declared else "")
        + f" the registered model {parent.model_name!r}, already the model of the fallback parent {kept.dag_id!r} "
        f"that {kept.where} declares, first by DAG id, which keeps it: {parent.dag_id!r} is not built and its "
        f"cities are refused; {_renames(parent.dag_id, kept.dag_id)}put a '.' between {{template}} and {{city}} "
        "in the pattern, or set 'fallback: {parent: none}' where either parent is declared"
    )
    where, line, col = origin.get(("registry", "name_pattern"), (where, 1, 1))
    return ConfigError(str(where), [Problem(problem, line=line, col=col)])


def _renames(*dag_ids: str) -> str:
    """``rename group 'g' (groups/g.yaml), `` for each group parent among ``dag_ids``: the fix that keeps both."""
    groups = [
        dag_id.split(f".{GROUP_PARENT_PREFIX}", 1)[1] for dag_id in dag_ids if f".{GROUP_PARENT_PREFIX}" in dag_id
    ]
    return "".join(f"rename group {g!r} ({GROUPS_SUBDIR}/{g}.yaml and its cities' 'group:'), " for g in groups if g)


def _sets_parent(
    layers: list[tuple[Path, tuple[dict[str, Any], dict[Path_, int]]]], kind: str
) -> tuple[Path, int] | None:
    """The file and line that make ``fallback.parent`` of these layers, merged as the loader merges them, ``kind``."""
    fallback: Any = {}
    where = None
    for path, (data, lines) in layers:
        if "fallback" in data:
            value = data["fallback"]
            merges = isinstance(fallback, dict) and isinstance(value, dict)
            fallback = {**fallback, **value} if merges else value
            if not merges or "parent" in value:
                where = (path, lines.get(("fallback", "parent"), lines.get(("fallback",), 1)))
    return where if isinstance(fallback, dict) and fallback.get("parent") == kind else None
