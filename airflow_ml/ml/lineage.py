"""What a registered model version was trained on and for, from the tags its run and version carry.

Registration tags each version with ``airflow_ml.snapshot_uri`` and ``airflow_ml.snapshot_hash``, and with
the city and template it was trained for (``airflow_ml.city``, ``airflow_ml.template``); the training run
carries the same tags, so a version registered by hand from an airflow-ml run still leads back to its rows
and its city. A champion whose lineage names another city or template is never used as this city's.
"""

from __future__ import annotations

import contextlib
import re

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

from airflow_ml.exceptions import ForeignChampion
from airflow_ml.ml import model_registry as registry

SNAPSHOT_URI_TAG = "airflow_ml.snapshot_uri"
SNAPSHOT_HASH_TAG = "airflow_ml.snapshot_hash"
TEMPLATE_TAG = "airflow_ml.template"
CITY_TAG = "airflow_ml.city"
#: The tags that say which city of which template a version was trained for (see the factory's lineage tags).
LINEAGE_TAGS = (TEMPLATE_TAG, CITY_TAG)
#: A name of the default pattern's shape (``<template>.<city>``, ``<template>.group.<g>``); the templates refuse
#: a custom ``registry.name_pattern`` that gives one (``registry_spec.DEFAULT_SHAPE``: ml may not import them).
DEFAULT_SHAPE = re.compile(r"(?P<template>[a-z][a-z0-9_]*)\.(?P<city>[a-z][a-z0-9_]*|group\.[a-z][a-z0-9_]*)")


def training_snapshot(client: MlflowClient, version: ModelVersion) -> str | None:
    """The URI of the snapshot ``version`` was trained on: its version tag, else its run's tag; None if neither."""
    uri = (version.tags or {}).get(SNAPSHOT_URI_TAG)
    if uri:
        return str(uri)
    if not version.run_id:
        return None
    try:
        run = client.get_run(version.run_id)
    except MlflowException:  # the run was deleted: the version lost its lineage
        return None
    return run.data.tags.get(SNAPSHOT_URI_TAG) or None


def registered_snapshots(client: MlflowClient) -> tuple[dict[str, list[str]], set[str]]:
    """Every snapshot that a registered model version points at, with who points at it; and the model names.

    Every version of every registered model counts (champion, previous-champion, challenger, and any other
    version still registered): its ``airflow_ml.snapshot_uri`` tag, else its training run's. A fallback
    parent's versions are versions like any other. Unlike :func:`training_snapshot`, any registry error is
    raised (a version whose run was deleted merely has no lineage): a caller that deletes snapshots must
    never mistake an unreadable registry for an empty one.

    Returns:
        ``{snapshot URI: ["<model> v<version> (<aliases>)", ...]}`` and the names of all registered models.
    """
    aliases: dict[tuple[str, str], list[str]] = {}
    names: set[str] = set()
    token: str | None = None
    while True:
        models = client.search_registered_models(max_results=1000, page_token=token)
        for model in models:
            names.add(model.name)
            for alias, version in (model.aliases or {}).items():
                aliases.setdefault((model.name, str(version)), []).append(alias)
        token = models.token
        if not token:
            break
    found: dict[str, list[str]] = {}
    token = None
    while True:
        versions = client.search_model_versions(max_results=10_000, page_token=token)
        for version in versions:
            uri = (version.tags or {}).get(SNAPSHOT_URI_TAG) or _run_snapshot(client, version.run_id)
            if not uri:
                continue
            own = sorted(aliases.get((version.name, str(version.version)), []))
            label = f"{version.name} v{version.version}" + (f" ({', '.join(own)})" if own else "")
            found.setdefault(str(uri), []).append(label)
        token = versions.token
        if not token:
            break
    return found, names


def _run_snapshot(client: MlflowClient, run_id: str | None) -> str | None:
    """The snapshot tag of a version's training run; None when it has no run or the run was deleted for good."""
    if not run_id:
        return None
    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        if exc.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            return None
        raise
    return run.data.tags.get(SNAPSHOT_URI_TAG) or None


def model_lineage(model_name: str) -> dict[str, str]:
    """The lineage of the factory's model ``<template>.<city>`` (or ``<template>.global``, ``<template>.group.<g>``).

    Empty for any other name (a handmade one, or ``main.ml.ride_lisbon`` of a ``registry.name_pattern``): a name
    is parsed only when it has exactly the default pattern's shape.
    """
    match = DEFAULT_SHAPE.fullmatch(model_name)
    return {TEMPLATE_TAG: match["template"], CITY_TAG: match["city"]} if match else {}


def registered_lineage(client: MlflowClient, name: str) -> dict[str, str]:
    """The lineage a registered model is for, never guessed from a name that a ``registry.name_pattern`` made.

    In this order: the model's own lineage tags (:func:`mark_registered_model`, written by every registration);
    else :func:`model_lineage` of a name of the default shape (no custom pattern gives one: see
    ``registry_spec.name_pattern_problems``); else the lineage tags of its oldest
    version that has both (what its first registration would have written); else empty (nothing to check).
    """
    try:
        tags = dict(client.get_registered_model(name).tags or {})
    except MlflowException as exc:
        if exc.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            raise
        return model_lineage(name)
    own = {key: tags[key] for key in LINEAGE_TAGS if tags.get(key)}
    if len(own) == len(LINEAGE_TAGS):
        return own
    parsed = model_lineage(name)
    if parsed:
        return parsed
    versions = client.search_model_versions(f"name = '{name}'", max_results=200, order_by=["version_number ASC"])
    for version in versions:
        first = {key: (version.tags or {}).get(key, "") for key in LINEAGE_TAGS}
        if all(first.values()):
            return first
    return {}


def mark_registered_model(client: MlflowClient, name: str, version_tags: dict[str, str]) -> None:
    """Tag the registered model ``name`` with the template and city of ``version_tags`` when it has no lineage yet."""
    lineage = {key: version_tags[key] for key in LINEAGE_TAGS if version_tags.get(key)}
    if len(lineage) != len(LINEAGE_TAGS):
        return
    current = dict(client.get_registered_model(name).tags or {})
    if any(current.get(key) for key in LINEAGE_TAGS):
        return  # the first registration said what the model is for; a foreign version is the gate's to refuse
    for key, value in lineage.items():
        client.set_registered_model_tag(name, key, value)


def version_lineage(client: MlflowClient, version: ModelVersion) -> dict[str, list[str]]:
    """Every value of each lineage tag on ``version`` and on its training run (a deleted run has none)."""
    sources = [dict(version.tags or {})]
    if version.run_id:
        with contextlib.suppress(MlflowException):  # the run is gone: the version's own tags remain
            sources.append(dict(client.get_run(version.run_id).data.tags))
    found: dict[str, list[str]] = {}
    for tags in sources:
        for key in LINEAGE_TAGS:
            if tags.get(key) and tags[key] not in found.setdefault(key, []):
                found[key].append(tags[key])
    return {key: values for key, values in found.items() if values}


def this_citys_champion(
    client: MlflowClient, model_name: str, expected: dict[str, str] | None = None
) -> ModelVersion | None:
    """The version behind ``model_name``'s ``champion`` alias, checked to be this city's; None without one.

    Args:
        client: The registry.
        model_name: The registered model.
        expected: The lineage its champion must have; default: :func:`registered_lineage` of the model.

    Raises:
        ForeignChampion: when a lineage tag of the version or its run names another city or template, with
            the fix (a version of this city's to move the alias back to).
    """
    champion = registry.version_by_alias(client, model_name, registry.CHAMPION)
    if champion is None:
        return None
    expected = registered_lineage(client, model_name) if expected is None else expected
    found = version_lineage(client, champion)
    if all(values == [expected[key]] for key, values in found.items() if key in expected):
        return champion
    lineage = {key: " / ".join(values) for key, values in found.items()}
    raise ForeignChampion(model_name, str(champion.version), lineage, expected, _fix(client, model_name, expected))


def _fix(client: MlflowClient, model_name: str, expected: dict[str, str]) -> str:
    """How to give ``model_name`` back a champion of its own: roll back to, or set, one of its own versions."""
    previous = registry.version_by_alias(client, model_name, registry.PREVIOUS_CHAMPION)
    by_hand = f"MlflowClient().set_registered_model_alias({model_name!r}, 'champion', <version>)"
    if previous is not None and _own(previous, expected):
        return (
            f"Fix: move the alias back to its previous-champion v{previous.version}, which is this city's: trigger "
            f"the DAG airflow_ml.rollback with model={model_name!r} and a reason (or {by_hand})."
        )
    versions = client.search_model_versions(f"name = '{model_name}'", max_results=50, order_by=["version_number DESC"])
    own = [f"v{v.version}" for v in versions if _own(v, expected)][:5]
    if not own:
        return (
            f"Fix: none of its versions is this city's; remove the alias (MlflowClient().delete_registered_model_"
            f"alias({model_name!r}, 'champion')) and the next run's challenger can become its first champion."
        )
    return f"Fix: point the alias at a version of this city's (its latest: {', '.join(own)}): {by_hand}."


def _own(version: ModelVersion, expected: dict[str, str]) -> bool:
    """Whether the version's own tags carry exactly the expected lineage."""
    tags = version.tags or {}
    return all(tags.get(key) == value for key, value in expected.items())
