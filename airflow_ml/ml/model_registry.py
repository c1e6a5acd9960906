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

from airflow_ml.exceptions import RollbackRefused
from airflow_ml.ml import champion_skill, model_cache, model_schema, serving
from airflow_ml.ml.markdown_cells import md_cell
from airflow_ml.ml.train import TrainedModel
from airflow_ml.ml.version_description import DECISION_ARTIFACT as DECISION_ARTIFACT
from airflow_ml.ml.version_description import DESCRIPTION_LIMIT
from airflow_ml.ml.version_description import SHADOW_ARTIFACT as SHADOW_ARTIFACT
from airflow_ml.ml.version_description import decision_description as decision_description

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS_CHAMPION = "previous-champion"
#: A registered model's tag: the version that promotion or rollback last made champion. MLflow removes an
#: alias with the version it points at, so this tag is how a deleted champion is told from "none yet".
CHAMPION_VERSION_TAG = "airflow_ml.champion_version"
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

    The model's input schema (:mod:`airflow_ml.ml.model_schema`: the signature's columns and types, the
    preprocessor's categorical levels) is written beside it and set as the run tag ``airflow_ml.schema``,
    which registration copies to the version for the gate to compare.

    Returns:
        The artifact URI of the logged model, to register.
    """
    features = trained.preprocessor.features
    # The signature keeps the raw dtypes: it is the serving contract of the raw rows the suite validated.
    example = sample[features].head(5).reset_index(drop=True)
    predictions = serving.predict_raw(trained.booster, trained.preprocessor, example)
    signature = infer_signature(example, predictions)
    schema = model_schema.from_signature(signature.inputs, trained.preprocessor.categories) or {}
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
            signature=signature,
            input_example=example,
            pip_requirements=serving_requirements(),
        )
        Path(model_dir, model_schema.SCHEMA_FILE).write_text(model_schema.text(schema), encoding="utf-8")
        client.log_artifacts(run_id, str(model_dir), MODEL_ARTIFACT_PATH)
    artifact = f"{MODEL_ARTIFACT_PATH}/{model_schema.SCHEMA_FILE}"
    client.set_tag(run_id, model_schema.SCHEMA_TAG, model_schema.tag_value(schema, artifact))
    return f"{client.get_run(run_id).info.artifact_uri}/{MODEL_ARTIFACT_PATH}"


def ensure_registered(client: MlflowClient, name: str, *, description: str = "airflow-ml city model") -> None:
    """Create the registered model ``name`` unless it exists (a city that never trained can still carry tags)."""
    try:
        client.create_registered_model(name, description=description)
    except MlflowException as exc:
        if exc.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            raise


def register_challenger(
    client: MlflowClient, name: str, source: str, run_id: str, tags: dict[str, str], *, alias: bool = True
) -> ModelVersion:
    """Register ``source`` as a new version of ``name`` and, with ``alias``, point the ``challenger`` alias at it.

    The run's input schema tag (``airflow_ml.schema``, set by :func:`log_model`) becomes a tag of the version.
    """
    ensure_registered(client, name, description=f"Retrained by airflow-ml; {CHAMPION!r} serves.")
    schema = client.get_run(run_id).data.tags.get(model_schema.SCHEMA_TAG)
    tags = {**tags, model_schema.SCHEMA_TAG: schema} if schema else tags
    version = client.create_model_version(name, source, run_id=run_id, tags=tags)
    if alias:
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
    """Load a registered version as serving loads it: its registry ``source`` (downloaded through ``client``,
    :func:`airflow_ml.ml.model_cache.load_pyfunc`), so the gate, drift and health judge the model served, even
    for a version whose source is not its run's ``model``."""
    if not version.run_id:
        raise ValueError(f"model version {version.name} v{version.version} has no run; it was not logged by airflow-ml")
    return model_cache.load_pyfunc(client, version.name, str(version.version))


def promote(client: MlflowClient, name: str, version: str, record: dict[str, Any]) -> None:
    """Make ``version`` the champion, keep the old champion as ``previous-champion``, and record why.

    Moving the ``champion`` alias is the last step, so a failure before it leaves the champion untouched; the
    champion's skill (:mod:`airflow_ml.ml.champion_skill`: the record's ``naive_baseline.skill``, else the
    version's ``gate.naive_baseline`` tag) follows it.
    """
    current = version_by_alias(client, name, CHAMPION)
    tag_decision(client, name, version, record)
    skill = champion_skill.skill_of(record.get("naive_baseline"))
    if skill is None and "naive_baseline" not in record:  # a shadow promotion: the gate tagged the version
        skill = champion_skill.version_skill(client.get_model_version(name, version).tags)
    if current is not None and str(current.version) != str(version):
        client.set_registered_model_alias(name, PREVIOUS_CHAMPION, current.version)
    client.set_registered_model_alias(name, CHAMPION, version)
    client.set_registered_model_tag(name, CHAMPION_VERSION_TAG, str(version))
    champion_skill.sync(client, name, str(version), skill)


#: The version tags of a decision (``gate.<key>``): what a person scans in the registry and what the readers need
#: without downloading an artifact (the monitor and the fleet view: ``metric`` and ``challenger_score``; the
#: fleet-outlier rule and the fleet view: ``naive_baseline``; a rollback: ``baseline_version``; the fleet view:
#: ``airflow_run_id``, the run that decided, a shadow promotion's the monitor's). The whole
#: record (rules, intervals, slices, trigger) is :data:`DECISION_ARTIFACT`.
GATE_TAGS = (
    "decision",
    "reason",
    "mode",
    "metric",
    "challenger_score",
    "champion_score",
    "baseline_version",
    "naive_baseline",
    "airflow_run_id",
    "airflow_dag_id",
)
#: The decisions that refuse the version: it loses the ``challenger`` alias, so shadow scoring and the
#: monitor's live comparison never pick up a version the gate or a person turned down.
REFUSED = ("kept", "rejected")
_NAIVE_TAG_KEYS = ("metric", "statistic", "value", "score", "skill", "min_skill", "passed")


def decision_tags(record: dict[str, Any]) -> dict[str, str]:
    """The :data:`GATE_TAGS` of a decision record, as tag text (``gate.<key>``; text as is, the rest as JSON)."""
    tags = {}
    for key in GATE_TAGS:
        if key not in record:
            continue
        value = record[key]
        if key == "naive_baseline" and isinstance(value, dict):
            value = {k: value[k] for k in _NAIVE_TAG_KEYS if k in value}
        text = value if isinstance(value, str) else json.dumps(value)
        tags[f"gate.{key}"] = text[:5000]
    return tags


def tag_decision(client: MlflowClient, name: str, version: str, record: dict[str, Any]) -> None:
    """Record a decision on the version: its :data:`GATE_TAGS`, its description, and the ``challenger`` alias.

    A refused version (:data:`REFUSED`) loses the ``challenger`` alias when it holds it; the alias stays on
    a version in shadow, awaiting approval or promoted. Tags of an earlier decision that this record lacks
    are kept (a shadow promotion keeps the gate's holdout scores).

    Raises:
        ValueError: a refused decision about the version that holds ``champion``; nothing is written.
    """
    refused = record.get("decision") in REFUSED
    champion = version_by_alias(client, name, CHAMPION) if refused else None
    if champion is not None and str(champion.version) == str(version):
        raise ValueError(
            f"{name} v{version} is the champion: a {record.get('decision')!r} decision is about another version; "
            "nothing was recorded (a champion leaves by a rollback)"
        )
    for key, text in decision_tags(record).items():
        client.set_model_version_tag(name, version, key, text)
    client.update_model_version(name, version, description=decision_description(record))
    if refused:
        challenger = version_by_alias(client, name, CHALLENGER)
        if challenger is not None and str(challenger.version) == str(version):
            client.delete_registered_model_alias(name, CHALLENGER)


def rollback(
    client: MlflowClient,
    name: str,
    reason: str,
    context: dict[str, Any] | None = None,
    *,
    without_previous: str = "refuse",
    expected_version: str | None = None,
) -> dict[str, Any]:
    """Move ``champion`` back to ``previous-champion`` and record who, why and when on both versions.

    ``previous-champion`` then points at the version that was champion before the restored one (its
    ``gate.baseline_version`` tag, kept by :func:`promote`), or is removed when none is recorded, so a
    second rollback goes one step further back or is refused. The rolled-back version's description then
    starts with the rollback (when, by whom, why).

    Args:
        client: The MLflow client.
        name: The registered model.
        reason: Why; required, recorded as ``rollback.reason``.
        context: Who and where (e.g. ``airflow_run_id``, ``by``), recorded as ``rollback.*`` tags.
        without_previous: ``refuse`` (raise) or ``clear`` (remove ``champion``: used by the health check
            when the failing champion was the model's first).
        expected_version: Roll back only while ``champion`` still names this version (compare and set): a
            check that found it failing must not demote another version the alias moved to meanwhile.

    Returns:
        The record: ``model_name``, ``rolled_back_version``, ``restored_version``, ``previous_champion``, ...

    Raises:
        RollbackRefused: when the model does not exist, has no champion, has no previous champion, or its
            champion is not ``expected_version``.
    """
    import datetime as dt

    if not reason.strip():
        raise RollbackRefused(f"{name}: a rollback needs a reason; say why the champion goes back")
    ensure_model_exists(client, name)
    current = version_by_alias(client, name, CHAMPION)
    if current is None:
        raise RollbackRefused(f"{name} has no {CHAMPION!r}; there is nothing to roll back")
    if expected_version is not None and str(current.version) != str(expected_version):
        raise RollbackRefused(
            f"{name}: the champion is v{current.version}, not v{expected_version} that was found failing; "
            "nothing rolled back (it moved meanwhile: check the new champion on its own)"
        )
    previous = version_by_alias(client, name, PREVIOUS_CHAMPION)
    if previous is None and without_previous != "clear":
        raise RollbackRefused(
            f"{name} has no {PREVIOUS_CHAMPION!r} alias: v{current.version} was its first champion or was already "
            "rolled back; promote another version instead (trigger the city's DAG with promotion mode force)"
        )
    earlier = _recorded_baseline(client, name, previous) if previous is not None else None
    record: dict[str, Any] = {
        "model_name": name,
        "reason": reason,
        "rolled_back_version": str(current.version),
        "restored_version": str(previous.version) if previous is not None else None,
        "previous_champion": earlier,
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        **(context or {}),
    }
    for version in {record["rolled_back_version"], record["restored_version"]} - {None}:
        for key, value in record.items():
            text = value if isinstance(value, str) else json.dumps(value)
            client.set_model_version_tag(name, str(version), f"{ROLLBACK_TAG_PREFIX}{key}", text[:5000])
    finish_rollback(client, name, record)
    _note_rollback(client, name, record)
    return record


def _note_rollback(client: MlflowClient, name: str, record: dict[str, Any]) -> None:
    """Start the rolled-back version's description with the rollback, so its page no longer reads "promoted"."""
    version = record["rolled_back_version"]
    earlier = client.get_model_version(name, version).description or ""
    by = f" by {md_cell(record['by'])}" if record.get("by") else ""
    note = f"**rolled back** on {md_cell(record['at'])}{by}: {md_cell(record['reason'], limit=None)}"
    text = f"{note}\n\n{earlier}" if earlier else note
    client.update_model_version(name, version, description=text[:DESCRIPTION_LIMIT])


#: The version tags where :func:`rollback` records itself, on the version rolled back and the one restored.
ROLLBACK_TAG_PREFIX = "rollback."


def finish_rollback(client: MlflowClient, name: str, record: dict[str, Any]) -> None:
    """Point the aliases as ``record`` (a :func:`rollback`'s) says; again after a failure, it completes the moves.

    ``champion`` goes to the restored version (or is removed when there is none), then the registered model's
    :data:`CHAMPION_VERSION_TAG`, then ``previous-champion`` to the version before it (or is removed).
    """
    model = client.get_registered_model(name)
    aliases, tags = dict(model.aliases or {}), dict(model.tags or {})
    restored = record.get("restored_version")
    if restored is None:
        if CHAMPION in aliases:
            client.delete_registered_model_alias(name, CHAMPION)
        if CHAMPION_VERSION_TAG in tags:
            client.delete_registered_model_tag(name, CHAMPION_VERSION_TAG)
        champion_skill.clear(client, name)
        return
    client.set_registered_model_alias(name, CHAMPION, str(restored))
    client.set_registered_model_tag(name, CHAMPION_VERSION_TAG, str(restored))
    restored_tags = client.get_model_version(name, str(restored)).tags
    champion_skill.sync(client, name, str(restored), champion_skill.version_skill(restored_tags))
    earlier = record.get("previous_champion")
    if earlier is not None:
        client.set_registered_model_alias(name, PREVIOUS_CHAMPION, str(earlier))
    elif PREVIOUS_CHAMPION in aliases:
        client.delete_registered_model_alias(name, PREVIOUS_CHAMPION)


def recorded_rollback(version: ModelVersion) -> dict[str, Any] | None:
    """The last :func:`rollback` record a version carries (its ``rollback.*`` tags), or None.

    Text values come back as written; ``null`` (a rollback with no restored or earlier version) as None.
    """
    record = {
        key.removeprefix(ROLLBACK_TAG_PREFIX): None if value == "null" else value
        for key, value in (version.tags or {}).items()
        if key.startswith(ROLLBACK_TAG_PREFIX)
    }
    return record if record.get("rolled_back_version") else None


def ensure_model_exists(client: MlflowClient, name: str) -> None:
    """Raise :class:`RollbackRefused` naming the closest registered models when ``name`` is not registered."""
    import difflib

    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            raise
        known = [m.name for m in client.search_registered_models(max_results=1000)]
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(map(repr, close))}?" if close else f"registered models: {sorted(known)[:10]}"
        raise RollbackRefused(f"model {name!r} is not in the registry; {hint}") from None


def _recorded_baseline(client: MlflowClient, name: str, version: ModelVersion) -> str | None:
    """The version that was champion before ``version`` was promoted, if recorded and still registered."""
    text = (version.tags or {}).get("gate.baseline_version")
    try:
        baseline = json.loads(text) if text and text != "None" else None
    except json.JSONDecodeError:
        baseline = text
    if baseline is None or str(baseline) == str(version.version):
        return None
    try:
        client.get_model_version(name, str(baseline))
    except MlflowException:  # deleted since: nothing to point at
        return None
    return str(baseline)
