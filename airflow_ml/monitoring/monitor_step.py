"""The monitor step of one city: join its labels, compute the live metric per window, let the supervisor decide.

In order: the champion (its version, and its holdout score at promotion from the gate's version tag
``gate.challenger_score``); the prediction log of the windows, only the rows that this version scored; the labels
of the same days joined to them; the metric per window with its bootstrap interval; one MLflow monitoring run per
window with labels (windows lie on a fixed grid, so later monitor runs of the same window and version reuse
it) and the newest figures as tags of the version; the supervisor's decision; in mode ``auto`` a demotion through
:func:`airflow_ml.ml.model_registry.rollback` (to ``previous-champion``, or with none the champion is cleared and
the fallback parent serves); and the decision record, written beside the prediction log and logged to MLflow.
A demotion that a failed try left half done (the rollback made, the guard or the record not) is completed by the
next try of the same day (:mod:`airflow_ml.monitoring.demotion`).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from mlflow import MlflowClient

from airflow_ml.data.prediction_log import read_predictions
from airflow_ml.data.snapshot import safe_segment, write_json
from airflow_ml.data.storage import StorageOptions, filesystem, is_local
from airflow_ml.ml import model_registry as registry
from airflow_ml.ml.fallback import which_model_serves
from airflow_ml.ml.kill_switch import disabled
from airflow_ml.ml.steps.step_settings import MonitorSettings
from airflow_ml.ml.steps.xcom_payloads import MonitorPayload
from airflow_ml.monitoring.demotion import complete_demotion, demote, demotion_file, unfinished_demotion
from airflow_ml.monitoring.label_join import JoinedLabels, join_labels, read_labels
from airflow_ml.monitoring.live_metrics import WindowMetric, window_bounds, window_metrics
from airflow_ml.monitoring.shadow_step import shadow_phase
from airflow_ml.monitoring.supervisor import SupervisorDecision, decide

#: The version tag where the gate records the champion's holdout score at promotion (``tag_decision``).
HOLDOUT_SCORE_TAG = "gate.challenger_score"
#: The version tag of the metric the gate scored it with.
HOLDOUT_METRIC_TAG = "gate.metric"
#: Where the decision record goes: the newest window's MLflow run, and ``<root>/monitoring/...`` beside the log.
DECISION_ARTIFACT = "monitor/decision.json"
MONITORING_SEGMENT = "monitoring"
#: The tag that marks a monitoring run (training-run searches skip runs with ``airflow_ml.step``).
STEP_TAG = "airflow_ml.step"


def decision_location(root: str, template: str, city: str) -> str:
    """The folder of a city's decision records: ``<root>/monitoring/<template>/<city>``, beside its prediction log."""
    return f"{root.rstrip('/')}/{MONITORING_SEGMENT}/{safe_segment(template)}/{safe_segment(city)}"


def monitor_city(
    client: MlflowClient,
    settings: MonitorSettings,
    *,
    day: dt.date,
    data_root: str,
    context: dict[str, Any] | None = None,
    artifact_root: str | None = None,
    storage_options: StorageOptions | None = None,
    label_storage_options: StorageOptions | None = None,
) -> tuple[MonitorPayload, dict[str, Any]]:
    """Monitor one city for the windows that end on ``day``; demote its champion when the supervisor says so.

    Args:
        client: The MLflow client (tracking and registry).
        settings: The city's monitor settings.
        day: The last day of the newest window (the monitor run's data day).
        data_root: Fills ``{data_root}`` in the prediction log's root and the label source.
        context: Who and where (``airflow_run_id``...), recorded with a rollback and in the decision record.
        artifact_root: Where a new experiment keeps its artifacts (the MLflow connection's).
        storage_options: Options of the prediction log's filesystem (where the record is written too).
        label_storage_options: Options of the labels' filesystem; default: ``storage_options``.

    Returns:
        The payload (XCom) and the whole decision record.
    """
    name, metric = settings.model_name, settings.metric
    champion = registry.version_by_alias(client, name, registry.CHAMPION)
    root = settings.predictions_uri(data_root)
    # A city disabled by the kill switch is in a person's hands: its live metrics are recorded, nothing moves.
    mark = disabled(client, name)
    held = f"disabled: {mark.reason}" if mark is not None else None
    record: dict[str, Any] = {
        "disabled": held,
        "template": settings.template,
        "city": settings.city,
        "model_name": name,
        "day": day.isoformat(),
        "metric": metric,
        **(context or {}),
    }
    # A demotion of this day whose rollback is done but whose guard, record or event may be lost: judge the
    # version it demoted again, and complete it.
    unfinished = unfinished_demotion(
        client,
        settings,
        champion,
        day=day,
        context=context or {},
        folder=decision_location(root, settings.template, settings.city),
        storage_options=storage_options,
    )
    judged = unfinished.demoted if unfinished is not None else champion
    if judged is None:
        serving = which_model_serves(client, name, settings.parent_model)
        reason = f"{name} has no champion to watch: {serving.reason}"
        record |= {"status": "no_champion", "reason": reason, "serving": serving.to_dict()}
        return _finish(settings, record, root=root, storage_options=storage_options), record
    version = str(judged.version)
    holdout = _holdout_score(judged.tags or {}, metric)
    joined = _joined(
        settings,
        version,
        root=root,
        labels=settings.labels_uri(data_root),
        day=day,
        storage_options=storage_options,
        label_storage_options=storage_options if label_storage_options is None else label_storage_options,
    )
    windows = window_metrics(
        joined.rows,
        metric,
        end=day,
        window_days=settings.window_days,
        windows=settings.windows,
        resamples=settings.resamples,
        confidence=settings.confidence,
        seed=settings.seed,
    )
    decision = decide(windows, metric=metric, holdout_score=holdout, settings=settings.supervisor, held=held)
    run_ids = _log_windows(client, settings, version, windows, holdout, day=day, artifact_root=artifact_root)
    record |= {
        "status": decision.verdict,
        "reason": decision.reason,
        "champion_version": version,
        "holdout_score": holdout,
        "holdout_source": f"version tag {HOLDOUT_SCORE_TAG} of {name} v{version}",
        "join": {
            "labels_read": joined.labels_read,
            "labels_joined": len(joined.rows),
            "unmatched_labels": joined.unmatched_labels,
            "unlabelled_predictions": joined.unlabelled,
        },
        "windows": [w.to_dict() for w in windows],
        "supervisor": decision.to_dict(),
        "mlflow_run_ids": run_ids,
    }
    _tag_version(client, name, version, windows, decision, day=day)
    if unfinished is not None:
        record |= {"status": "demote", "reason": unfinished.rollback["reason"].removeprefix("supervisor: ")}
        record |= complete_demotion(client, settings, unfinished)
    elif decision.act:
        record |= demote(client, settings, decision, judged_version=version, day=day, context=context or {})
    else:  # a champion that stays may still be replaced by a better challenger in shadow
        bounds = window_bounds(day, window_days=settings.window_days, windows=settings.windows)
        record["shadow"] = shadow_phase(
            client,
            settings,
            champion_version=version,
            root=root,
            labels=joined.rows,
            start=bounds[0][0],
            end=bounds[-1][1],
            context={**(context or {}), "monitor_day": day.isoformat()},
            storage_options=storage_options,
            disabled=held,
        )
    if run_ids:
        client.log_dict(run_ids[-1], record, DECISION_ARTIFACT)
    return _finish(settings, record, root=root, storage_options=storage_options), record


def _holdout_score(tags: dict[str, str], metric: str) -> float | None:
    """The champion's holdout score at promotion, when the gate recorded it with this metric.

    ``tag_decision`` writes a text value as it is (``rmse``) and any other as JSON (``5.73``, ``null``).
    """
    recorded_metric = tags.get(HOLDOUT_METRIC_TAG)
    try:
        value = json.loads(tags.get(HOLDOUT_SCORE_TAG, "null"))
    except ValueError:
        return None
    if not isinstance(value, int | float) or (recorded_metric is not None and recorded_metric != metric):
        return None
    return float(value)


def _joined(
    settings: MonitorSettings,
    version: str,
    *,
    root: str,
    labels: str,
    day: dt.date,
    storage_options: StorageOptions | None,
    label_storage_options: StorageOptions | None,
) -> JoinedLabels:
    """The champion version's logged predictions of the windows, joined to the labels of the same days."""
    bounds = window_bounds(day, window_days=settings.window_days, windows=settings.windows)
    start, end = bounds[0][0], bounds[-1][1]
    logged = read_predictions(root, settings.template, settings.city, start, end, storage_options=storage_options)
    # Only what this champion scored: a version rolled back (or a parent that served) is not this one's evidence.
    mine = (logged["model_name"].astype("str") == settings.model_name) & (
        logged["model_version"].astype("str") == version
    )
    arrived = read_labels(labels, start, end, fmt=settings.labels_format, storage_options=label_storage_options)
    return join_labels(
        logged[mine.to_numpy()] if len(logged) else logged,
        arrived,
        target=settings.target,
        join=settings.join,
        key_columns=settings.key_columns,
        namespace=f"{settings.template}/{settings.city}",
    )


def _log_windows(
    client: MlflowClient,
    settings: MonitorSettings,
    version: str,
    windows: list[WindowMetric],
    holdout: float | None,
    *,
    day: dt.date,
    artifact_root: str | None,
) -> list[str]:
    """One MLflow run per window with labels (the same run again for the same window and version); their ids."""
    from mlflow.entities import Metric

    metric, name = settings.metric, settings.model_name
    experiment = registry.get_or_create_experiment(client, name, artifact_root)
    existing = _window_runs(client, experiment, version)
    stamp = int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp() * 1000)
    step = int(day.strftime("%Y%m%d"))
    run_ids = []
    for window in windows:
        if window.value is None:
            continue
        key = f"{window.start.isoformat()}..{window.end.isoformat()}"
        run_id = existing.get(key)
        if run_id is None:
            tags = {
                STEP_TAG: "monitor",
                "airflow_ml.city": settings.city,
                "airflow_ml.template": settings.template,
                "airflow_ml.monitor.window": key,
                "airflow_ml.monitor.model_version": version,
            }
            run_id = client.create_run(experiment, tags=tags, run_name=f"monitor v{version} {key}").info.run_id
            client.set_terminated(run_id)
        values = {f"live_{metric}": window.value, f"live_{metric}_low": window.low, f"live_{metric}_high": window.high}
        values |= {"labels": float(window.labels), f"holdout_{metric}": holdout}
        batch = [Metric(k, float(v), stamp, step) for k, v in values.items() if v is not None]
        client.log_batch(run_id, metrics=batch)
        run_ids.append(run_id)
    return run_ids


#: Runs read per page when the monitor looks for a version's window runs.
RUNS_PAGE = 1000


def _window_runs(client: MlflowClient, experiment: str, version: str) -> dict[str, str]:
    """The monitoring runs of ``version`` by window (``start..end``), every page of them.

    Windows lie on a fixed grid (:func:`~airflow_ml.monitoring.live_metrics.window_bounds`), so a version has
    one run per window it was ever judged in; MLflow filters tags by equality only (no ``IN``), so its runs are
    read page by page rather than one query per window.
    """
    query = f"tags.`{STEP_TAG}` = 'monitor' and tags.`airflow_ml.monitor.model_version` = '{version}'"
    found: dict[str, str] = {}
    token: str | None = None
    while True:
        page = client.search_runs([experiment], query, max_results=RUNS_PAGE, page_token=token)
        for run in page:
            found.setdefault(run.data.tags.get("airflow_ml.monitor.window", ""), run.info.run_id)
        token = page.token
        if not token:
            return found


def _tag_version(
    client: MlflowClient,
    name: str,
    version: str,
    windows: list[WindowMetric],
    decision: SupervisorDecision,
    *,
    day: dt.date,
) -> None:
    """The newest window with a metric (and the one before it), and the verdict, as ``monitor.*`` version tags."""
    measured = [w for w in windows if w.value is not None]
    latest = measured[-1] if measured else None
    tags = {
        "monitor.verdict": decision.verdict,
        "monitor.checked_day": day.isoformat(),
        "monitor.reason": decision.reason,
    }
    if latest is not None:
        tags |= {
            f"monitor.live_{decision.metric}": f"{latest.value:.6g}",
            "monitor.live_interval": json.dumps([latest.low, latest.high]),
            "monitor.live_window": f"{latest.start}..{latest.end}",
            "monitor.live_labels": str(latest.labels),
        }
    if len(measured) > 1:  # the window before, for the trend the fleet view shows
        tags["monitor.live_previous"] = f"{measured[-2].value:.6g}"
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value[:5000])


def _finish(
    settings: MonitorSettings, record: dict[str, Any], *, root: str, storage_options: StorageOptions | None
) -> MonitorPayload:
    """Write the decision record beside the prediction log; the task's payload."""
    folder = decision_location(root, settings.template, settings.city)
    fs, path = filesystem(folder, storage_options)
    if is_local(fs):
        fs.makedirs(path, exist_ok=True)
    uri = write_json(folder, f"{record['day']}.json", record, storage_options=storage_options)
    if record.get("rollback"):  # a later run of the same day (a rerun, a retry) must not hide a demotion
        name = demotion_file(record["day"], record["rollback"]["rolled_back_version"])
        uri = write_json(folder, name, record, storage_options=storage_options)
    rollback = record.get("rollback") or {}
    shadow = record.get("shadow") or {}
    windows = [w for w in record.get("windows", []) if w["value"] is not None]
    return MonitorPayload(
        model_name=settings.model_name,
        city=settings.city,
        status=str(record["status"]),
        reason=str(record["reason"]),
        champion_version=record.get("champion_version"),
        holdout_score=record.get("holdout_score"),
        live_score=windows[-1]["value"] if windows else None,
        labels=int(record.get("join", {}).get("labels_joined", 0)),
        demoted=bool(rollback),
        restored_version=rollback.get("restored_version"),
        shadow=shadow.get("promotion_refused") or (shadow["verdict"] or shadow)["reason"] if shadow else None,
        promoted_version=shadow["challenger_version"] if shadow.get("promotion") else None,
        disabled=record.get("disabled"),
        record_uri=uri,
    )
