"""Which snapshot a registered model version was trained on, from the tags its run and version carry.

Registration tags each version with ``airflow_ml.snapshot_uri`` and ``airflow_ml.snapshot_hash``; the
training run carries the same tags, so a version registered by hand from an airflow-ml run still leads
back to its rows.
"""

from __future__ import annotations

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from airflow_ml.ml import registry

SNAPSHOT_URI_TAG = "airflow_ml.snapshot_uri"
SNAPSHOT_HASH_TAG = "airflow_ml.snapshot_hash"


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


def champion_snapshot(client: MlflowClient, model_name: str) -> str | None:
    """The URI of the snapshot the current champion of ``model_name`` was trained on, or None.

    None when there is no champion yet (a first run) or when the champion carries no lineage.
    """
    champion = registry.version_by_alias(client, model_name, registry.CHAMPION)
    return None if champion is None else training_snapshot(client, champion)


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
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

    if not run_id:
        return None
    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        if exc.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            return None
        raise
    return run.data.tags.get(SNAPSHOT_URI_TAG) or None
