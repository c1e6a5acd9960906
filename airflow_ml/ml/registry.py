"""MLflow model logging, registration and aliases, all through an explicit ``MlflowClient``.

Nothing here touches MLflow's global tracking URI or ``os.environ``: two cities in one process, or a
test beside a production run, never share state by accident.
"""

from __future__ import annotations

import json
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.protos.databricks_pb2 import (
    INVALID_PARAMETER_VALUE,
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
    ErrorCode,
)

from airflow_ml.ml import serving
from airflow_ml.ml.train import TrainedModel

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS_CHAMPION = "previous-champion"
MODEL_ARTIFACT_PATH = "model"
_SERVING_REQUIREMENTS = ("mlflow", "lightgbm", "pandas", "numpy", "pyarrow")


def serving_requirements() -> list[str]:
    """Pinned pip requirements of the served model; explicit, so MLflow never spawns a process to infer them."""
    return [f"{name}=={metadata.version(name)}" for name in _SERVING_REQUIREMENTS]


def get_or_create_experiment(client: MlflowClient, name: str, artifact_root: str | None = None) -> str:
    """Return the id of experiment ``name``, creating it (under ``artifact_root`` when given) if needed."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    location = f"{artifact_root.rstrip('/')}/{name}" if artifact_root else None
    try:
        return str(client.create_experiment(name, artifact_location=location))
    except MlflowException as exc:  # another city's task created it first
        if exc.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            raise
        experiment = client.get_experiment_by_name(name)
        assert experiment is not None
        return str(experiment.experiment_id)


def log_model(client: MlflowClient, run_id: str, trained: TrainedModel, sample: pd.DataFrame) -> str:
    """Save the model (booster, preprocessor and serving code) and log it to the run.

    Args:
        client: The MLflow client.
        run_id: The run that produced the model.
        trained: The trained model.
        sample: A few raw rows, for the signature and the input example.

    Returns:
        The artifact URI of the logged model, to register.
    """
    features = trained.preprocessor.features
    # The signature keeps the raw dtypes: it is the serving contract of the raw rows the suite validated.
    example = sample[features].head(5).reset_index(drop=True)
    predictions = serving.predict_raw(trained.booster, trained.preprocessor, example)
    with tempfile.TemporaryDirectory(prefix="airflow-ml-model-") as tmp:
        booster_path = Path(tmp, "booster.txt")
        trained.booster.save_model(str(booster_path))
        preprocessor_path = Path(tmp, "preprocessor.json")
        trained.preprocessor.save(preprocessor_path)
        model_dir = Path(tmp, MODEL_ARTIFACT_PATH)
        mlflow.pyfunc.save_model(
            path=str(model_dir),
            python_model=serving.__file__,
            artifacts={
                serving.BOOSTER_ARTIFACT: str(booster_path),
                serving.PREPROCESSOR_ARTIFACT: str(preprocessor_path),
            },
            signature=infer_signature(example, predictions),
            input_example=example,
            pip_requirements=serving_requirements(),
        )
        client.log_artifacts(run_id, str(model_dir), MODEL_ARTIFACT_PATH)
    return f"{client.get_run(run_id).info.artifact_uri}/{MODEL_ARTIFACT_PATH}"


def register_challenger(
    client: MlflowClient, name: str, source: str, run_id: str, tags: dict[str, str]
) -> ModelVersion:
    """Register ``source`` as a new version of ``name`` and point the ``challenger`` alias at it."""
    try:
        client.create_registered_model(name, description=f"Retrained by airflow-ml; {CHAMPION!r} serves.")
    except MlflowException as exc:
        if exc.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            raise
    version = client.create_model_version(name, source, run_id=run_id, tags=tags)
    client.set_registered_model_alias(name, CHALLENGER, version.version)
    return version


def version_by_alias(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version behind ``alias``, or None when the model or the alias does not exist."""
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        missing = {ErrorCode.Name(RESOURCE_DOES_NOT_EXIST), ErrorCode.Name(INVALID_PARAMETER_VALUE)}
        if exc.error_code in missing:
            return None
        raise


def load_version(client: MlflowClient, version: ModelVersion) -> Any:
    """Download a registered version's model through ``client`` and load it as a pyfunc model."""
    if not version.run_id:
        raise ValueError(f"model version {version.name} v{version.version} has no run; it was not logged by airflow-ml")
    # The booster and the preprocessor are read at load time, so the download can go once loaded.
    with tempfile.TemporaryDirectory(prefix="airflow-ml-load-") as destination:
        local = client.download_artifacts(version.run_id, MODEL_ARTIFACT_PATH, destination)
        return mlflow.pyfunc.load_model(local)


def promote(client: MlflowClient, name: str, version: str, record: dict[str, Any]) -> None:
    """Make ``version`` the champion, keep the old champion as ``previous-champion``, and record why.

    Moving the ``champion`` alias is the last step, so a failure before it leaves the champion untouched.
    """
    current = version_by_alias(client, name, CHAMPION)
    tag_decision(client, name, version, record)
    if current is not None and str(current.version) != str(version):
        client.set_registered_model_alias(name, PREVIOUS_CHAMPION, current.version)
    client.set_registered_model_alias(name, CHAMPION, version)


def tag_decision(client: MlflowClient, name: str, version: str, record: dict[str, Any]) -> None:
    """Record the gate's decision as tags of the version (values as text)."""
    for key, value in record.items():
        text = value if isinstance(value, str) else json.dumps(value)
        client.set_model_version_tag(name, version, f"gate.{key}", text[:5000])
