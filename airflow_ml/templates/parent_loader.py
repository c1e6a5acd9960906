"""Load the fallback parents that templates and groups declare: one model per group, or per template, of cities.

The parents' DAG file (``register_parent_dags``), ``airflow-ml lint`` and shard 0's broken-files report load
them. Every template or group file is read through the loader's guards (``Layers.located``): a FIFO or a link
to ``/dev/zero`` is never opened, as the city load never opens it, so it can hang no DAG file. A parent whose
registered model a parent declared first by DAG id keeps is not built (``parent_names.py`` says why).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from airflow_ml.exceptions import ConfigError
from airflow_ml.templates.city_layer import check_group_layer
from airflow_ml.templates.describe import describe
from airflow_ml.templates.files import DEFAULTS_FILE, GROUPS_SUBDIR, TEMPLATES_SUBDIR, yaml_files
from airflow_ml.templates.loader import Layers, deep_merge, regular_file, unexpected_error
from airflow_ml.templates.model_claims import city_refs
from airflow_ml.templates.models import ParentConfig
from airflow_ml.templates.parent_names import ParentNames, parent_model_clash


def load_parent_configs(root: Path) -> tuple[list[ParentConfig], list[ConfigError]]:
    """The fallback parents that templates and groups declare, each with its members and its layers.

    ``fallback.parent`` belongs to a template or a group (a city may only turn it off), so the parents are
    known from those few files and each city file's ``template`` and ``group``: city files are scanned, not
    validated, which keeps the DAG file that builds the parents cheap to parse with a thousand cities.
    A ``global`` parent trains on every city of its template; a group's parent on its template's cities
    of that group.

    Returns:
        The parent configs sorted by DAG id, and one error per parent whose layers do not validate, or whose
        registered model a parent of another template, declared and first by DAG id, keeps.
    """
    layers = Layers()
    defaults = regular_file(root / DEFAULTS_FILE)
    templates, groups = root / TEMPLATES_SUBDIR, root / GROUPS_SUBDIR
    if not _declares_a_parent(layers, root):
        return [], []  # the common case costs a few files, not one per city
    members: dict[tuple[str, str | None], list[str]] = {}
    for city, template, group in ((ref.city, ref.template, ref.group) for ref in city_refs(root)):
        try:
            if layers.located(path := layers.layer(templates, template), templates) is None:
                continue  # not a regular file (a FIFO would hang the read), or broken: the city's load says so
            _, merged, _ = layers.template(path, defaults)
            if group is not None:
                if (found := layers.located(path := layers.layer(groups, group), groups)) is None:
                    continue
                check_group_layer(path, found[0], layers.read(path)[1:])  # a group setting a pattern: no parent
                merged = deep_merge(merged, found[0])
        except Exception:  # noqa: BLE001, S112 - the city's own load reports it, whatever it is
            continue
        kind = (merged.get("fallback") or {}).get("parent", "none")
        if kind in ("global", "group") and (kind == "global" or group is not None):
            members.setdefault((template, group if kind == "group" else None), []).append(city)
    parents: list[ParentConfig] = []
    names = ParentNames(root, layers.located)  # the declared parents, whether or not they have a member
    errors: list[ConfigError] = []
    for (template, group), cities in sorted(members.items(), key=lambda item: (item[0][0], item[0][1] or "")):
        where = layers.layer(templates, template)
        try:
            _, merged, origin = layers.template(where, defaults)
            if group is not None:
                where = layers.layer(groups, group)
                merged, origin = layers.overlay(merged, origin, where)
            scope = "group" if group else "global"
            fields: dict[str, Any] = {"fallback": {}, "scope": scope, "group": group, "members": sorted(cities)}
            parent = ParentConfig.model_validate({**merged, **fields})
            if parent.registry.custom and (kept := names.keeper(template, parent.dag_id, parent.model_name)):
                raise parent_model_clash(parent, kept, origin, where)
            parents.append(parent)
        except ValidationError as exc:
            errors.append(ConfigError(str(where), describe(exc, ParentConfig, origin)))
        except ConfigError as exc:
            errors.append(exc)
        except Exception as exc:  # noqa: BLE001 - a check no message foresaw: still this file's error alone
            errors.append(unexpected_error(where, exc))
    return sorted(parents, key=lambda p: p.dag_id), errors


def _declares_a_parent(layers: Layers, root: Path) -> bool:
    """Whether the defaults, a template or a group file declares a fallback parent (broken files: no).

    Each is read as the city load reads it: the defaults through a link from anywhere (``load_city_configs``
    merges such a file, and ``ParentNames`` reserves its parent's name), a template or a group only from its folder.
    """
    layer_files = [*yaml_files(root / TEMPLATES_SUBDIR)[0], *yaml_files(root / GROUPS_SUBDIR)[0]]
    files: list[tuple[Path, Path | None]] = [(root / DEFAULTS_FILE, None), *((p, p.parent) for p in layer_files)]
    for path, folder in files:
        fallback = (layers.data(path, folder) or {}).get("fallback")
        if isinstance(fallback, dict) and fallback.get("parent") in ("group", "global"):
            return True
    return False
