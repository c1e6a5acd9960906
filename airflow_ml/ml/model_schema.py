"""A model's input schema in a compact form the gate compares cheaply: columns with types, and categorical levels.

``{"columns": {name: type}, "categories": {column: [levels]}}``: the types are the MLflow signature's (``double``,
``long``, ``string``...), the levels those the model's preprocessor learnt from its training rows. Logging a model
(:func:`airflow_ml.ml.model_registry.log_model`) writes it beside the model (``model/airflow_ml_schema.json``) and
as the run tag :data:`SCHEMA_TAG`; registration copies the tag to the version. A schema longer than
:data:`TAG_LIMIT` characters (many levels) is tagged by its SHA-256 and the file's path instead. A version
registered before the tag existed is read from its model's MLflow signature and preprocessor.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

#: The run and version tag holding the schema (or its hash and file).
SCHEMA_TAG = "airflow_ml.schema"
#: The schema's file, inside the logged model's folder.
SCHEMA_FILE = "airflow_ml_schema.json"
#: Longer schemas are tagged by hash: 5000 characters is the tag value limit of older MLflow servers (MLflow 3's
#: own registry stores 100,000), and the gate's tags keep to it.
TAG_LIMIT = 5000


def build(columns: Mapping[str, str], categories: Mapping[str, Any]) -> dict[str, Any]:
    """The compact schema of input ``columns`` (name -> type) and the categorical ``categories`` (column -> levels)."""
    return {
        "columns": dict(columns),
        "categories": {name: sorted(map(str, levels)) for name, levels in categories.items() if name in columns},
    }


def from_signature(input_schema: Any, categories: Mapping[str, Any]) -> dict[str, Any] | None:
    """The compact schema from an MLflow input schema (``Schema`` of ``ColSpec``) and the preprocessor's levels."""
    if input_schema is None:
        return None
    columns = {str(spec.name): getattr(spec.type, "name", str(spec.type)) for spec in input_schema.inputs}
    return build(columns, categories)


def text(schema: Mapping[str, Any]) -> str:
    """The schema as compact JSON (one form, so its hash is stable)."""
    return json.dumps(schema, separators=(",", ":"), sort_keys=True)


def tag_value(schema: Mapping[str, Any], artifact: str) -> str:
    """The tag for ``schema``: its JSON, or ``{"sha256", "artifact"}`` when longer than :data:`TAG_LIMIT`."""
    body = text(schema)
    if len(body) <= TAG_LIMIT:
        return body
    return json.dumps({"sha256": hashlib.sha256(body.encode()).hexdigest(), "artifact": artifact})


def of_loaded(model: Any) -> dict[str, Any] | None:
    """The schema of a loaded pyfunc model: its MLflow signature, and its preprocessor's levels when it has one."""
    categories: Mapping[str, Any] = {}
    try:
        preprocessor = getattr(model.unwrap_python_model(), "preprocessor", None)
    except Exception:  # noqa: BLE001 - any pyfunc flavour: no preprocessor, no levels
        preprocessor = None
    if preprocessor is not None:
        categories = preprocessor.categories
    return from_signature(model.metadata.get_input_schema(), categories)


def read(client: MlflowClient, version: ModelVersion, loaded: Any | None = None) -> tuple[dict[str, Any] | None, str]:
    """The schema of a registered version and how it was read: its tag (or the file the tag names), else ``loaded``.

    Args:
        client: The MLflow client.
        version: The registered version.
        loaded: The version's pyfunc model when the caller has loaded it: a version registered before the
            schema tag existed is read from its signature and preprocessor.

    Returns:
        The schema (None when there is none to read) and its source, as the decision record says it.

    Raises:
        ValueError: when the tag is not a schema (edited by hand, cut short), or the file a hashed tag names does
            not match its hash; each names the version and the fix.
    """
    tag = (version.tags or {}).get(SCHEMA_TAG)
    if tag:
        try:
            value = json.loads(tag)
        except ValueError:
            value = None
        if not isinstance(value, dict) or ("sha256" in value and "artifact" not in value):
            raise ValueError(
                f"{version.name} v{version.version}: its {SCHEMA_TAG} tag is not the schema registration wrote "
                f"({tag[:80]!r}); delete the tag (the schema is then read from the model's signature) or register "
                "the model again"
            )
        if "sha256" not in value:
            return value, f"its {SCHEMA_TAG} tag"
        with tempfile.TemporaryDirectory(prefix="airflow-ml-schema-") as tmp:
            body = Path(client.download_artifacts(str(version.run_id), value["artifact"], tmp)).read_text("utf-8")
        if hashlib.sha256(body.encode()).hexdigest() != value["sha256"]:
            raise ValueError(
                f"{version.name} v{version.version}: {value['artifact']} does not match the sha256 of its "
                f"{SCHEMA_TAG} tag; the model's files were changed after registration"
            )
        return json.loads(body), f"{value['artifact']} (its {SCHEMA_TAG} tag holds the hash)"
    if loaded is None:
        return None, "no schema to compare"
    schema = of_loaded(loaded)
    if schema is None:
        return None, "no schema to compare: neither a schema tag nor an MLflow signature"
    return schema, "its MLflow signature and preprocessor (registered before the schema tag)"
