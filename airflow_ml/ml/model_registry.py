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
from airflow_ml.ml import serving
from airflow_ml.ml.train import TrainedModel

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
    """Register ``source`` as a new version of ``name`` and, with ``alias``, point the ``challenger`` alias at it."""
    ensure_registered(client, name, description=f"Retrained by airflow-ml; {CHAMPION!r} serves.")
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
    client.set_registered_model_tag(name, CHAMPION_VERSION_TAG, str(version))


def deleted_champion(client: MlflowClient, name: str) -> str | None:
    """Why ``name`` has no champion although it had one, or None when it never had one (as far as we know).

    MLflow deletes a version's aliases with it, so a deleted champion looks like no champion at all; the
    tag :data:`CHAMPION_VERSION_TAG` (set by :func:`promote` and :func:`rollback`) and a ``previous-champion``
    left behind tell the two apart. Without either (a first champion promoted before the tag existed, or
    after a rollback cleared it), the gate's own record is the trace left: see :func:`_deleted_promotion`.
    The sentence names the version.
    """
    try:
        model = client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            return None
        raise
    aliases = {alias: str(version) for alias, version in (model.aliases or {}).items()}
    recorded = aliases.get(CHAMPION) or (model.tags or {}).get(CHAMPION_VERSION_TAG)
    if recorded:
        try:
            client.get_model_version(name, recorded)
        except MlflowException as exc:
            if exc.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
                raise
            alias = "the alias still names it" if CHAMPION in aliases else "its alias went with it"
            return f"the champion of {name}, v{recorded}, was deleted from the registry ({alias})"
        return f"the {CHAMPION!r} alias of {name} was removed (it pointed at v{recorded}, which still exists)"
    previous = aliases.get(PREVIOUS_CHAMPION)
    if previous is not None:
        return f"the champion of {name} was deleted (its {PREVIOUS_CHAMPION!r}, v{previous}, is left without one)"
    return _deleted_promotion(client, name)


#: How many of a model's newest finished training runs without a registered version are read for a promotion.
_TRACED_RUNS = 20
#: Where the gate logs its decision record on the challenger's training run.
DECISION_ARTIFACT = "gate/decision.json"


def _deleted_promotion(client: MlflowClient, name: str) -> str | None:
    """A version of ``name`` that the gate promoted and that is deleted, from its training run's decision record.

    What MLflow keeps of a deleted version (its sources, for MLflow 3: ``SqlAlchemyStore`` and ``FileStore``
    ``delete_model_version``): the row or file stays, marked ``Deleted_Internal`` with its tags (``gate.*``
    included), but every public call (``get_model_version``, ``search_model_versions``) skips it; its aliases
    are deleted and its run id is redacted; version numbers go on from the highest ever, so only a gap shows
    that some version went. The registered model keeps no tag of its own before :data:`CHAMPION_VERSION_TAG`.
    The training run is not deleted with the version, and the gate logs its record there as
    ``gate/decision.json`` (``decision``, ``model_name``, ``challenger_version``). So the newest finished runs
    of the model's experiment (named like the model, as the factory names it) whose version is gone are read
    for a ``promoted`` or ``forced`` decision of this model.

    Limits: a promotion approved by a person (the run's record says ``awaiting-approval``) or made by hand
    leaves no such record, nor does a version whose run was deleted; and nothing says whether the version was
    still the champion when it was deleted (a rollback may have moved the alias first). Informational only:
    a registry or artifact store that cannot be read here gives None.
    """
    try:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            return None
        versions = client.search_model_versions(f"name = '{name}'")
        live, live_runs = {str(v.version) for v in versions}, {v.run_id for v in versions}
        runs = client.search_runs(
            [experiment.experiment_id],
            "attributes.status = 'FINISHED'",
            max_results=200,
            order_by=["attributes.start_time DESC"],
        )
        # Training runs only: drift, validation and search trials carry a step tag or a parent.
        orphans = [
            run
            for run in runs
            if run.info.run_id not in live_runs and not {"airflow_ml.step", "mlflow.parentRunId"} & set(run.data.tags)
        ]
        for run in orphans[:_TRACED_RUNS]:
            record = _decision_record(client, run.info.run_id)
            version = str(record.get("challenger_version") or "")
            decided = record.get("decision")
            if record.get("model_name") == name and decided in ("promoted", "forced") and version not in live:
                return (
                    f"v{version} of {name}, which the gate {decided} (gate/decision.json of its training run "
                    f"{run.info.run_id}), was deleted from the registry; no record says whether it was still the "
                    "champion then"
                )
    except (MlflowException, OSError):
        return None
    return None


def _decision_record(client: MlflowClient, run_id: str) -> dict[str, Any]:
    """The gate's record logged on a training run, or an empty dict when it has none."""
    if not any(f.path == DECISION_ARTIFACT for f in client.list_artifacts(run_id, "gate")):
        return {}
    with tempfile.TemporaryDirectory(prefix="airflow-ml-decision-") as tmp:
        text = Path(client.download_artifacts(run_id, DECISION_ARTIFACT, tmp)).read_text(encoding="utf-8")
    try:
        record = json.loads(text)
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def tag_decision(client: MlflowClient, name: str, version: str, record: dict[str, Any]) -> None:
    """Record the gate's decision as tags of the version (values as text)."""
    for key, value in record.items():
        text = value if isinstance(value, str) else json.dumps(value)
        client.set_model_version_tag(name, version, f"gate.{key}", text[:5000])


def rollback(
    client: MlflowClient,
    name: str,
    reason: str,
    context: dict[str, Any] | None = None,
    *,
    without_previous: str = "refuse",
) -> dict[str, Any]:
    """Move ``champion`` back to ``previous-champion`` and record who, why and when on both versions.

    ``previous-champion`` then points at the version that was champion before the restored one (its
    ``gate.baseline_version`` tag, kept by :func:`promote`), or is removed when none is recorded, so a
    second rollback goes one step further back or is refused.

    Args:
        client: The MLflow client.
        name: The registered model.
        reason: Why; required, recorded as ``rollback.reason``.
        context: Who and where (e.g. ``airflow_run_id``, ``by``), recorded as ``rollback.*`` tags.
        without_previous: ``refuse`` (raise) or ``clear`` (remove ``champion``: used by the health check
            when the failing champion was the model's first).

    Returns:
        The record: ``model_name``, ``rolled_back_version``, ``restored_version``, ``previous_champion``, ...

    Raises:
        RollbackRefused: when the model does not exist, has no champion, or has no previous champion.
    """
    import datetime as dt

    if not reason.strip():
        raise RollbackRefused(f"{name}: a rollback needs a reason; say why the champion goes back")
    ensure_model_exists(client, name)
    current = version_by_alias(client, name, CHAMPION)
    if current is None:
        raise RollbackRefused(f"{name} has no {CHAMPION!r}; there is nothing to roll back")
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
    return record


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
        return
    client.set_registered_model_alias(name, CHAMPION, str(restored))
    client.set_registered_model_tag(name, CHAMPION_VERSION_TAG, str(restored))
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
