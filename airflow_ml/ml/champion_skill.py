"""Each city's champion skill as a registered-model tag, so the gate reads a whole fleet in one paged search.

The tag :data:`CHAMPION_SKILL_TAG` holds ``{"version": "<champion>", "skill": <its skill over the naive
baseline>}``; it is kept in sync wherever the ``champion`` alias moves: :func:`airflow_ml.ml.model_registry.promote`
(from the decision record's ``naive_baseline.skill``, else the version's ``gate.naive_baseline`` tag; every
promotion goes through it: the gate, an approval, a shadow promotion) and
:func:`airflow_ml.ml.model_registry.rollback` (from the restored version's tag; removed with a cleared
champion). A tag whose version is not the model's champion (a champion deleted since) is ignored.

No MLflow import at module level: only the client passed in is used.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow import MlflowClient

#: The registered-model tag of the champion's skill.
CHAMPION_SKILL_TAG = "airflow_ml.champion_skill"
#: The version tag in which the gate records the naive baseline (and the challenger's skill over it).
NAIVE_BASELINE_TAG = "gate.naive_baseline"
#: The registered model of a city unless its template's ``registry.name_pattern`` says otherwise.
DEFAULT_NAME_PATTERN = "{template}.{city}"
#: Decisions that made a version champion, as its ``gate.decision`` tag says them.
PROMOTED = ("promoted", "forced")
_PAGE = 1000


def skill_of(naive_baseline: Any) -> float | None:
    """The finite ``skill`` of a record's ``naive_baseline`` (a mapping, or its JSON as a version tag holds it)."""
    if isinstance(naive_baseline, str):
        try:
            naive_baseline = json.loads(naive_baseline)
        except ValueError:
            return None
    if not isinstance(naive_baseline, Mapping):
        return None
    value = naive_baseline.get("skill")
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def version_skill(tags: Mapping[str, str] | None) -> float | None:
    """The skill a version's gate recorded (its ``gate.naive_baseline`` tag), or None."""
    return skill_of((tags or {}).get(NAIVE_BASELINE_TAG))


def sync(client: MlflowClient, name: str, version: str, skill: float | None) -> None:
    """Record ``skill`` as the skill of ``name``'s champion ``version``; without a skill, remove the tag."""
    if skill is None:
        clear(client, name)
        return
    client.set_registered_model_tag(name, CHAMPION_SKILL_TAG, json.dumps({"version": str(version), "skill": skill}))


def clear(client: MlflowClient, name: str) -> None:
    """Remove the tag (the model has no champion, or its champion has no recorded skill)."""
    client.delete_registered_model_tag(name, CHAMPION_SKILL_TAG)


def champion_skill(tags: Mapping[str, str] | None, aliases: Mapping[str, Any] | None) -> float | None:
    """The skill a registered model's tag records for its current champion, or None (no tag, or a stale one)."""
    raw = (tags or {}).get(CHAMPION_SKILL_TAG)
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    champion = (aliases or {}).get("champion")
    if not isinstance(value, Mapping) or champion is None or str(value.get("version")) != str(champion):
        return None
    return skill_of(value)


def sibling_skills(
    client: MlflowClient,
    template: str,
    *,
    exclude: Collection[str] = (),
    not_cities: Collection[str] = (),
    name_pattern: str = DEFAULT_NAME_PATTERN,
) -> dict[str, float]:
    """The champion skill of every city of ``template`` but those in ``exclude``, in one paged search.

    A sibling is a registered model of one of ``template``'s cities: its lineage tags (``airflow_ml.template``,
    ``airflow_ml.city``, written by every registration) name ``template`` and a city whose name by
    ``name_pattern`` (the template's ``registry.name_pattern``) is the model's. A model without them counts only
    under the default pattern, whose ``<template>.<city>`` names no other template's model; under another
    pattern a name alone may be another template's (``main.ml.ride_oslo`` and ``main.ml.ride_duration_oslo``).
    Group parents (``group.<group>``) and ``not_cities`` (the global parent's id) are no cities; models named in
    ``exclude`` (the city itself, its parent) are left out, and so are models without a current skill.
    """
    # As airflow_ml.templates.registry_spec renders names (the ML core does not import the templates).
    default = name_pattern == DEFAULT_NAME_PATTERN
    prefix, _, suffix = name_pattern.replace("{template}", template).partition("{city}")
    escaped = prefix.replace("'", "''")
    skills: dict[str, float] = {}
    token: str | None = None
    while True:
        page = client.search_registered_models(
            filter_string=f"name LIKE '{escaped}%'", max_results=_PAGE, page_token=token
        )
        for model in page:
            city = _sibling_city(model.name, model.tags or {}, template, prefix, suffix, default=default)
            if not city or "." in city or city in not_cities or model.name in exclude:
                continue
            skill = champion_skill(model.tags, model.aliases)
            if skill is not None:
                skills[model.name] = skill
        token = page.token
        if not token:
            return skills


def _sibling_city(
    name: str, tags: Mapping[str, str], template: str, prefix: str, suffix: str, *, default: bool
) -> str | None:
    """The city of ``template`` that the model ``name`` is, or None (another template's, or no city's)."""
    tagged_template, tagged_city = tags.get("airflow_ml.template"), tags.get("airflow_ml.city")
    if tagged_template and tagged_city:
        segment = tagged_city if default else tagged_city.replace(".", "_")
        own = tagged_template == template and name == f"{prefix}{segment}{suffix}"
        return tagged_city if own else None
    if not default or not name.startswith(prefix):  # LIKE's _ matches any character
        return None
    return name[len(prefix) :] or None


def history_skills(client: MlflowClient, name: str, *, exclude_version: str | None = None) -> list[float]:
    """The skills of ``name``'s versions that were promoted (``gate.decision`` promoted or forced), oldest first."""
    escaped = name.replace("'", "''")
    found: list[tuple[int, float]] = []
    token: str | None = None
    while True:
        page = client.search_model_versions(f"name = '{escaped}'", max_results=_PAGE, page_token=token)
        for version in page:
            tags = version.tags or {}
            if str(version.version) == str(exclude_version) or tags.get("gate.decision") not in PROMOTED:
                continue
            skill = version_skill(tags)
            if skill is not None:
                found.append((int(version.version), skill))
        token = page.token
        if not token:
            return [skill for _, skill in sorted(found)]
