"""The model's input schema (airflow_ml.ml.model_schema): logged with a real LightGBM model, tagged, read back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from airflow_ml.data.snapshot import Manifest
from airflow_ml.ml import model_registry as registry
from airflow_ml.ml import model_schema
from airflow_ml.ml.steps.step_settings import SplitSettings
from airflow_ml.ml.steps.train_step import train_and_log
from tests.support.training_data import late_trips, regression, snapshot

NAME = "ride_duration.lisbon"


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    return snapshot(late_trips(days=4, scale=0.3), tmp_path_factory.mktemp("trips"), "r1")  # type: ignore[return-value]


def registered(client: MlflowClient, manifest: Manifest, artifacts: Path) -> Any:
    spec, split = regression(num_boost_round=5), SplitSettings("pickup_at")
    result = train_and_log(client, manifest, spec, split, experiment=NAME, artifact_root=f"file://{artifacts}")
    version = registry.register_challenger(client, NAME, result["model_uri"], result["run_id"], {})
    return client.get_model_version(NAME, str(version.version))


def test_logging_a_model_tags_its_columns_types_and_levels_on_the_run_and_the_version(
    client: MlflowClient, manifest: Manifest, tmp_path: Path
) -> None:
    version = registered(client, manifest, tmp_path)

    schema = json.loads(version.tags[model_schema.SCHEMA_TAG])
    assert list(schema["columns"]) == sorted(regression().features)  # compact JSON, keys sorted
    assert (schema["columns"]["distance_km"], schema["columns"]["pickup_zone"]) == ("double", "string")
    assert list(schema["categories"]) == ["pickup_zone"]
    assert "belem" in schema["categories"]["pickup_zone"]
    assert client.get_run(version.run_id).data.tags[model_schema.SCHEMA_TAG] == version.tags[model_schema.SCHEMA_TAG]
    assert model_schema.read(client, version) == (schema, f"its {model_schema.SCHEMA_TAG} tag")


def test_a_schema_over_the_tag_limit_is_tagged_by_its_hash_and_read_from_its_file(
    client: MlflowClient, manifest: Manifest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(model_schema, "TAG_LIMIT", 50)
    version = registered(client, manifest, tmp_path)

    tag = json.loads(version.tags[model_schema.SCHEMA_TAG])
    schema, source = model_schema.read(client, version)

    assert set(tag) == {"sha256", "artifact"}
    assert tag["artifact"] == "model/airflow_ml_schema.json"
    assert schema is not None
    assert "pickup_zone" in schema["categories"]
    assert source.startswith("model/airflow_ml_schema.json (its airflow_ml.schema tag holds the hash)")


def test_a_version_without_the_tag_is_read_from_its_loaded_model_or_has_no_schema(
    client: MlflowClient, manifest: Manifest, tmp_path: Path
) -> None:
    version = registered(client, manifest, tmp_path)
    tagged, _ = model_schema.read(client, version)
    client.delete_model_version_tag(NAME, str(version.version), model_schema.SCHEMA_TAG)
    bare = client.get_model_version(NAME, str(version.version))

    from_model, source = model_schema.read(client, bare, registry.load_version(client, bare))

    assert from_model == tagged
    assert source == "its MLflow signature and preprocessor (registered before the schema tag)"
    assert model_schema.read(client, bare) == (None, "no schema to compare")


@pytest.mark.parametrize("tag", ['{"columns": {"a": "dou', "null", '["a"]', '{"sha256": "ab"}'])
def test_a_tag_that_is_no_schema_names_the_version_and_the_fix(
    client: MlflowClient, manifest: Manifest, tmp_path: Path, tag: str
) -> None:
    version = registered(client, manifest, tmp_path)
    client.set_model_version_tag(NAME, str(version.version), model_schema.SCHEMA_TAG, tag)
    edited = client.get_model_version(NAME, str(version.version))

    with pytest.raises(ValueError, match=rf"{NAME} v{version.version}: its airflow_ml.schema tag is not the schema"):
        model_schema.read(client, edited)
