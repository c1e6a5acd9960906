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
