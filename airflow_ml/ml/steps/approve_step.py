"""The approve step: act on a person's answer to a gate that recommended promotion (``require_approval``)."""

from __future__ import annotations

from typing import Any

from mlflow import MlflowClient

from airflow_ml.data.snapshot import write_json
from airflow_ml.data.storage import StorageOptions
from airflow_ml.ml import demotion_guard
from airflow_ml.ml import model_registry as registry
from airflow_ml.ml.steps.xcom_payloads import APPROVAL_FILE


def approve(
    client: MlflowClient,
    record: dict[str, Any],
    *,
    approved: bool,
    approver: str,
    uri: str,
    storage_options: StorageOptions | None = None,
) -> dict[str, Any]:
    """The approve task's answer: :func:`settle_approval`, then the final record beside the snapshot at ``uri``.

    Raises:
        ChampionMovedError: when the champion moved since the gate compared against it; nothing is written.
    """
    final = settle_approval(client, record, approved=approved, approver=approver)
    write_json(uri, APPROVAL_FILE, final, storage_options=storage_options)
    return final


def settle_approval(client: MlflowClient, record: dict[str, Any], *, approved: bool, approver: str) -> dict[str, Any]:
    """Act on a person's answer to a gate that recommended promotion (``require_approval`` mode).

    Approved: the challenger becomes champion, unless the champion moved since the gate scored it (then
    nothing moves and the run must decide again); the city's demotion, if any, is cleared. Rejected: the
    champion stays and the challenger loses its ``challenger`` alias (only that version: a rejection of a
    version that became champion meanwhile is refused, nothing recorded). Either way the answer and who gave it are
    recorded on the challenger's version (its ``gate.*`` tags and description) and in ``gate/decision.json``.

    Returns:
        The final decision record.

    Raises:
        ChampionMovedError: approved, when the champion is no longer the version the gate compared against;
            rejected, when the judged version is now the champion.
    """
    model_name, version = record["model_name"], str(record["challenger_version"])
    champion = registry.version_by_alias(client, model_name, registry.CHAMPION)
    current = str(champion.version) if champion is not None else None
    if not approved:
        if current == version:  # never label the serving champion "rejected", nor take its alias
            raise ChampionMovedError(
                f"{model_name}: v{version} became champion after the gate asked for approval; the rejection "
                f"was not recorded and nothing moved; to take it out of service trigger the DAG airflow_ml.rollback "
                f"with model={model_name!r} and a reason"
            )
        final = {**record, "decision": "rejected", "approved_by": approver, "reason": f"rejected by {approver}"}
        registry.tag_decision(client, model_name, version, final)  # a refused version: ``challenger`` goes
        _log_record(client, model_name, version, final)
        return final
    if current != record["baseline_version"]:
        raise ChampionMovedError(
            f"{model_name}: the champion moved from v{record['baseline_version']} to v{current} after the gate "
            f"compared v{version} against it; nothing was moved, trigger the DAG again to decide on fresh scores"
        )
    final = {
        **record,
        "decision": "promoted",
        "approved_by": approver,
        "reason": f"approved by {approver}: {record['gate_reason']}",
    }
    _log_record(client, model_name, version, final)  # before the champion moves: moving it is the last step
    registry.promote(client, model_name, version, final)
    demotion_guard.clear_demotion(client, model_name)  # a person approved: the evidence a demotion asks for
    return final


def _log_record(client: MlflowClient, model_name: str, version: str, final: dict[str, Any]) -> None:
    """The final record replaces the gate's ``gate/decision.json`` on the training run (it holds the gate's too)."""
    run_id = client.get_model_version(model_name, version).run_id
    if run_id:
        client.log_dict(run_id, final, registry.DECISION_ARTIFACT)


class ChampionMovedError(RuntimeError):
    """The champion changed between a gate's decision and the approval of it."""
