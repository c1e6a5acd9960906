"""Why a city has no champion although it had one: a deleted version, a removed alias, a gate record left behind.

Read by the gate and the drift step to say so in their records (a champion that was deleted is not "no champion
yet"); informational, never a reason to refuse.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

from airflow_ml.ml.model_registry import CHAMPION, CHAMPION_VERSION_TAG, DECISION_ARTIFACT, PREVIOUS_CHAMPION


def deleted_champion(client: MlflowClient, name: str) -> str | None:
    """Why ``name`` has no champion although it had one, or None when it never had one (as far as we know).

    MLflow deletes a version's aliases with it, so a deleted champion looks like no champion at all; the
    tag :data:`CHAMPION_VERSION_TAG` (set by ``model_registry.promote`` and ``rollback``) and a ``previous-champion``
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
