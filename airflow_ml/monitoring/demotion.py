"""The supervisor's demotion of a city's champion, and its completion by a later try when one of its writes failed.

A demotion is several writes: :func:`airflow_ml.ml.model_registry.rollback` (``rollback.*`` tags on both
versions, then the aliases), the no-flapping guard (:func:`airflow_ml.ml.demotion_guard.record_demotion`), the
decision record ``demotion-<day>-v<version>.json`` beside the prediction log, and the operator's champion Asset
event and notices. A task that fails after the rollback (the registry down for the guard's write) finds the
champion already moved when it is retried. So the rollback records the monitor's day (``rollback.monitor_day``)
and the Airflow run, and :func:`unfinished_demotion` finds such a rollback of this supervisor on this day whose
record is missing, or made by this very Airflow run (a retry, whose failed try's Asset event was lost); the
monitor then judges the version it demoted again and :func:`complete_demotion` does what is left: the aliases'
last moves, the guard (kept when already written), the record; and the payload says demoted, so the event is
emitted.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_ml.data.storage import StorageOptions, filesystem, storage_errors
from airflow_ml.ml import model_registry as registry
from airflow_ml.ml.demotion_guard import demotion, record_demotion
from airflow_ml.ml.fallback import which_model_serves
from airflow_ml.ml.steps.step_settings import MonitorSettings

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

    from airflow_ml.monitoring.supervisor import SupervisorDecision

#: Who the rollback records as having done it (``rollback.by``).
SUPERVISOR = "supervisor"


def demotion_file(day: str, version: str) -> str:
    """The name of a demotion's own record, beside the day's: ``demotion-<day>-v<version>.json``."""
    return f"demotion-{day}-v{version}.json"


@dataclass(frozen=True)
class Unfinished:
    """A rollback this supervisor did on the monitor's day: the version it demoted and the rollback's record."""

    demoted: ModelVersion
    rollback: dict[str, Any]


def demote(
    client: MlflowClient,
    settings: MonitorSettings,
    decision: SupervisorDecision,
    *,
    judged_version: str,
    day: dt.date,
    context: dict[str, Any],
) -> dict[str, Any]:
    """Roll the champion back (or clear it, so that the fallback parent serves); what happened, for the record.

    Only the version the supervisor judged is demoted: a champion promoted since the monitor read the alias (a
    retrain's gate, a rollback) has not been judged on its own predictions, so it stays, and the record says so.
    """
    name = settings.model_name
    current = registry.version_by_alias(client, name, registry.CHAMPION)
    if current is None or str(current.version) != judged_version:
        now = "no champion" if current is None else f"v{current.version}"
        return {
            "status": "champion_moved",
            "reason": (
                f"the supervisor judged v{judged_version} ({decision.reason}), but {name}'s champion is {now} "
                "since the monitor read it: nothing demoted; the next monitor run judges the new champion on its own "
                "predictions"
            ),
        }
    who = {**context, "by": SUPERVISOR, "monitor_day": day.isoformat()}  # what a retry recognises
    rollback = registry.rollback(client, name, f"supervisor: {decision.reason}", who, without_previous="clear")
    return after_rollback(client, settings, rollback)


def unfinished_demotion(
    client: MlflowClient,
    settings: MonitorSettings,
    champion: ModelVersion | None,
    *,
    day: dt.date,
    context: dict[str, Any],
    folder: str,
    storage_options: StorageOptions | None = None,
) -> Unfinished | None:
    """This supervisor's rollback of ``day`` that left the champion where it is now, when it is to be completed.

    The rollback recorded itself on the version it restored (the champion now) or, when it cleared the
    champion, on the version it demoted. It is to be completed when its record (:func:`demotion_file` in
    ``folder``) is missing, or when the rollback was made by this Airflow run (a retry of the task).
    """
    name = settings.model_name
    candidates = [champion] if champion is not None else client.search_model_versions(f"name = '{name}'")
    for version in candidates:
        found = registry.recorded_rollback(version)
        if found is None or found.get("by") != SUPERVISOR or found.get("monitor_day") != day.isoformat():
            continue
        restored = found.get("restored_version")
        if restored != (str(champion.version) if champion is not None else None):
            continue  # the champion moved again since that rollback
        demoted = client.get_model_version(name, str(found["rolled_back_version"]))
        own = registry.recorded_rollback(demoted)
        if own is None or own.get("at") != found.get("at"):
            continue  # the demoted version was rolled back again since
        this_run = context.get("airflow_run_id")
        retried = this_run is not None and found.get("airflow_run_id") == this_run
        fs, path = filesystem(folder, storage_options)
        with storage_errors(folder, storage_options):
            recorded = fs.exists(f"{path.rstrip('/')}/{demotion_file(day.isoformat(), str(demoted.version))}")
        if retried or not recorded:
            return Unfinished(demoted=demoted, rollback=found)
    return None


def complete_demotion(client: MlflowClient, settings: MonitorSettings, unfinished: Unfinished) -> dict[str, Any]:
    """Do what a failed try left of a demotion: the aliases' last moves, the guard, for the record."""
    registry.finish_rollback(client, settings.model_name, unfinished.rollback)
    done = after_rollback(client, settings, unfinished.rollback)
    at = unfinished.rollback.get("at")
    done["completed"] = (
        f"the supervisor rolled back v{unfinished.demoted.version} at {at} for this day; an earlier try did not "
        "finish the demotion (or this is a retry of its run): its guard, record and champion event are completed now"
    )
    return done


def after_rollback(client: MlflowClient, settings: MonitorSettings, rollback: dict[str, Any]) -> dict[str, Any]:
    """The no-flapping guard for the rolled-back version (kept when already recorded), and who serves now."""
    name, supervisor = settings.model_name, settings.supervisor
    version = str(rollback["rolled_back_version"])
    guard = demotion(client, name)
    if guard is None or guard.version != version or guard.at < str(rollback.get("at") or ""):
        # The rule holds for cooldown_days from the rollback (not from the run's day: a rerun of an old day
        # must still hold it), or until a promotion with more evidence clears it, whichever rule it is.
        at = dt.datetime.fromisoformat(str(rollback["at"])) if rollback.get("at") else dt.datetime.now(dt.UTC)
        # No flapping: the gate reads this on the city's registered model, and the next promotion needs more.
        guard = record_demotion(
            client,
            name,
            version=version,
            reason=str(rollback["reason"]),
            requires=supervisor.after_demotion,
            until=at + dt.timedelta(days=supervisor.cooldown_days),
        )
    serving = which_model_serves(client, name, settings.parent_model)
    after = {"requires": guard.requires, "until": guard.until, "sentence": guard.sentence()}
    return {"rollback": rollback, "serving_after": serving.to_dict(), "after_demotion": after}
