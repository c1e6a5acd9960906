"""The register step: the trained model becomes a new version of the city's model, aliased ``challenger``."""

from __future__ import annotations

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from airflow_ml.ml.lineage import mark_registered_model
from airflow_ml.ml.model_registry import CHALLENGER, register_challenger
from airflow_ml.ml.steps.xcom_payloads import SnapshotPayload, TrainingPayload


def register(
    client: MlflowClient,
    model_name: str,
    training: TrainingPayload,
    snapshot: SnapshotPayload,
    *,
    tags: dict[str, str],
    alias: bool = True,
) -> tuple[ModelVersion, bool]:
    """The register task: a version of ``model_name`` from the training run's model, with its lineage tags.

    The ``champion`` alias is never touched here: only the gate moves it; ``alias=False`` (a dry run) moves
    none, ``challenger`` included. A try that died after creating the version (before its alias) left it
    behind: a retry completes that version instead of registering the same model twice. The registered model
    is tagged on every path, a retry's too, with the city and template of its first version (``airflow_ml.city``,
    ``airflow_ml.template``), so a name that a template's ``registry.name_pattern`` made is checked for lineage
    as a default one is.

    Returns:
        The version, and whether an earlier try had created it.
    """
    run_id = str(training["run_id"])
    tags = {
        **tags,
        "airflow_ml.snapshot_hash": str(snapshot["content_hash"]),
        "airflow_ml.snapshot_uri": str(snapshot["uri"]),
        "mlflow_run_id": run_id,
    }
    earlier = client.search_model_versions(f"name='{model_name}' and run_id='{run_id}'")
    if earlier:
        version = earlier[0]
        if alias:
            client.set_registered_model_alias(model_name, CHALLENGER, version.version)
        mark_registered_model(client, model_name, tags)  # the try that died may have died before this
        return version, True
    version = register_challenger(client, model_name, training["model_uri"], run_id, tags, alias=alias)
    mark_registered_model(client, model_name, tags)  # what the model is for, whatever its name
    return version, False
