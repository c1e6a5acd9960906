"""The drift step of a run: this snapshot's new rows against the champion's training snapshot, recorded in MLflow.

Plain Python over an ``MlflowClient``: the operator only resolves its inputs and acts on the status.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException

from airflow_ml.data.snapshot import Manifest, load_manifest, read_snapshot, write_json
from airflow_ml.data.storage import StorageOptions
from airflow_ml.exceptions import DataError, ForeignChampion
from airflow_ml.ml import model_registry as registry
from airflow_ml.ml.champion_predictions import ChampionPredictions
from airflow_ml.ml.champion_trace import deleted_champion
from airflow_ml.ml.charts.chart_artifacts import log_drift_charts
from airflow_ml.ml.drift import DriftReport, prediction_check, psi
from airflow_ml.ml.drift import compare as compare_frames
from airflow_ml.ml.drift_window import Selection, select_rows
from airflow_ml.ml.lineage import this_citys_champion, training_snapshot
from airflow_ml.ml.steps.drift_calibration_step import RunCalibration, apply_stop_rule, calibrate_run, record_history
from airflow_ml.ml.steps.step_settings import DriftSettings
from airflow_ml.ml.steps.xcom_payloads import DRIFT_FILE, DriftVerdict

log = logging.getLogger(__name__)

NO_CHAMPION = "no champion yet (first run): nothing to compare against"
_BATCH = 1000  # MLflow's most metrics per log_batch call


#: Why a disabled check is skipped.
DISABLED = "drift checks are off (drift.enabled: false)"


def verdict(record: Mapping[str, Any]) -> DriftVerdict:
    """The status, one line of why (the reason it skipped or the summary's first line), the champion compared."""
    detail = str(record.get("reason") or record.get("summary") or "")
    return {
        "status": record["status"],
        "detail": detail.splitlines()[0][:500] if detail else None,
        "champion_version": record.get("champion_version"),
        "flagged": dict((record.get("calibration") or {}).get("flagged") or {}),
    }


def check_drift(
    client: MlflowClient | None,
    manifest: Manifest,
    settings: DriftSettings,
    *,
    artifact_root: str | None = None,
    tags: Mapping[str, str] | None = None,
    storage_options: StorageOptions | None = None,
) -> dict[str, Any]:
    """The drift task: compare the snapshot of ``manifest`` (by default its new rows) with the champion's training
    snapshot, log it, and write the record beside the snapshot as ``drift.json``.

    With ``settings.enabled`` false nothing is compared and MLflow is not needed (``client`` may be None): the
    record says the check is off.

    With ``settings.compare="new_rows"`` only the rows of the partitions after the champion's training window are
    compared (selected by ``time_column``; see :func:`airflow_ml.ml.drift_window.select_rows` for the
    ``min_new_rows`` and ``min_new_days`` guards); ``whole_snapshot`` compares every row. The record's
    ``compared`` says which rows were compared and why.

    A skipped check (no champion, a deleted one, or its snapshot gone) is not an error: the record says
    why, and nothing is logged to MLflow. A champion trained for another city or template (its lineage
    tags say so) fails the check, unlogged, with the reason and the fix. A computed check becomes a run
    named ``drift`` in the experiment ``model_name``, with a metric ``drift.<column>.<statistic>`` per value,
    ``compared.*`` params, ``drift.json`` and ``charts/distributions.png`` (each column's distribution on both
    sides, breached and flagged columns first) as artifacts.

    Returns:
        The record: ``status`` (passed, warned, failed or skipped), ``reason`` when skipped or refused,
        ``summary``, the champion's version and snapshot, ``compared``, every check, and ``mlflow_run_id``,
        ``experiment_id`` and ``charts`` (the artifact paths) when logged.
    """
    if not settings.enabled:
        record: dict[str, Any] = {"status": "skipped", "reason": DISABLED}
    elif client is None:
        raise ValueError("a drift check that is on needs an MLflow client (the champion's training data)")
    else:
        read = _SnapshotReads(storage_options)  # this snapshot, read once for both comparisons
        run, skipped = _calibration(manifest, settings, storage_options, read)
        record = _compare(client, manifest, settings, artifact_root, tags, storage_options, run, read)
        if run is not None:
            if "calibration" not in record:  # skipped or refused before the comparison
                record = apply_stop_rule(record, run)
            record_history(run, record.get("mlflow_run_id"), storage_options=storage_options)
        elif skipped:
            record["calibration"] = {"skipped": skipped}
    write_json(manifest.uri, DRIFT_FILE, record, storage_options=storage_options)
    return record


#: What a champion that cannot be loaded or predict raises: the check is then left without a value.
_CANNOT_PREDICT = (MlflowException, OSError, ValueError, KeyError, TypeError, ImportError)


def _with_predictions(
    client: MlflowClient,
    champion: Any,
    settings: DriftSettings,
    report: DriftReport,
    reference: tuple[Manifest, pd.DataFrame],
    current: tuple[Manifest, pd.DataFrame],
    selection: Selection,
    run: RunCalibration | None,
    storage_options: StorageOptions | None,
) -> DriftReport:
    """``report`` with the drift of the champion's predictions on its training rows against the compared rows.

    With calibration, the predictions' drift since the previous snapshot is judged on the city's history too.
    A champion that cannot be loaded or predict leaves the check without a value, and the note says why.
    ``reference`` and ``current`` are the two snapshots as read; ``selection`` the rows of ``current`` compared.

    Each whole snapshot is predicted once and kept beside it (:mod:`airflow_ml.ml.champion_predictions`): the
    champion's training snapshot, the previous one (often the same rows), and, with calibration, this one
    whole, which tomorrow's run reads as its previous snapshot's (see :func:`_predicted` for the compared rows).
    """
    predictions = ChampionPredictions(
        champion, settings.features, lambda: registry.load_version(client, champion), storage_options=storage_options
    )
    whole_now = run is not None  # tomorrow's run compares with this snapshot, whole
    try:
        ours = predictions.whole(*reference)
        theirs = _predicted(predictions, current, selection.rows, selection.frame, whole=whole_now)
    except _CANNOT_PREDICT as exc:
        note = f"the champion's predictions could not be made ({type(exc).__name__}: {str(exc)[:300]})"
        check = prediction_check(None, None, thresholds=settings.thresholds, note=note)
        return replace(report, checks=[*report.checks, check])
    check = prediction_check(ours, theirs, thresholds=settings.thresholds, bins=settings.bins)
    if run is not None and run.frames is not None:
        before, now = run.frames
        try:  # the previous snapshot may not fit the champion (a column that gained a null); the check above stands
            earlier = predictions.predict(before) if run.previous is None else predictions.whole(run.previous, before)
            later = _predicted(predictions, current, run.current_rows, now, whole=True)
            run.add("prediction", "prediction", "psi", psi(earlier, later, bins=settings.bins), (len(before), len(now)))
        except (MlflowException, ValueError, KeyError, TypeError) as exc:
            note = f"the predictions' drift since the previous snapshot could not be computed ({type(exc).__name__})"
            check = replace(check, note=f"{check.note}; {note}" if check.note else note)
    return replace(report, checks=[*report.checks, check])


def _predicted(
    predictions: ChampionPredictions,
    snapshot: tuple[Manifest, pd.DataFrame],
    rows: Any,
    frame: pd.DataFrame,
    *,
    whole: bool,
) -> np.ndarray:
    """The predictions on ``frame``, the rows ``rows`` (a mask; None: all) of ``snapshot``.

    When all rows are compared, the whole snapshot's (kept, or made and kept). Otherwise the compared rows are
    predicted as a frame of their own, never sliced from the whole snapshot's: how the preprocessing codes a
    float categorical column depends on every value of the frame it is given (serving's level codes), so a slice
    could differ from what these rows alone give. ``whole`` also makes and keeps the whole snapshot's, which
    tomorrow's run reads as its previous snapshot's; should they not be predictable, the compared rows still are.
    """
    if rows is None:
        return predictions.whole(*snapshot)
    if whole:
        try:
            predictions.whole(*snapshot)
        except _CANNOT_PREDICT as exc:  # a row outside the compared ones, say: tomorrow predicts it again
            log.warning("this snapshot's predictions were not kept for tomorrow's run (%s)", type(exc).__name__)
    return predictions.predict(frame)


class _SnapshotReads:
    """:func:`read_snapshot` that keeps what it read by URI and columns: the calibration and the champion
    comparison read this snapshot's same columns (features, target, time column) once."""

    def __init__(self, storage_options: StorageOptions | None) -> None:
        self._storage_options = storage_options
        self._kept: dict[tuple[str, tuple[str, ...]], pd.DataFrame] = {}

    def __call__(self, uri: str, columns: list[str]) -> pd.DataFrame:
        key = (uri, tuple(columns))
        if key not in self._kept:
            self._kept[key] = read_snapshot(uri, columns=columns, storage_options=self._storage_options)
        return self._kept[key]


def _calibration(
    manifest: Manifest, settings: DriftSettings, storage_options: StorageOptions | None, read: _SnapshotReads
) -> tuple[RunCalibration | None, str]:
    """This run's drift since the city's previous snapshot, judged on its history; or why it is not."""
    if settings.calibration.get("enabled", True) is False:
        return None, ""
    try:
        return calibrate_run(manifest, settings, storage_options=storage_options, read=read), ""
    except ValueError as exc:  # a snapshot outside <data_root>/snapshots: the history has no home
        return None, str(exc)


def _compare(
    client: MlflowClient,
    manifest: Manifest,
    settings: DriftSettings,
    artifact_root: str | None,
    tags: Mapping[str, str] | None,
    storage_options: StorageOptions | None,
    run: RunCalibration | None,
    read: _SnapshotReads,
) -> dict[str, Any]:
    model_name, features, target = settings.model_name, settings.features, settings.target
    time_column, compare = settings.time_column, settings.compare
    base = {"model_name": model_name, "snapshot_uri": manifest.uri, "snapshot_hash": manifest.content_hash}
    try:
        champion = this_citys_champion(client, model_name)
    except ForeignChampion as exc:
        refused = {"status": "failed", "reason": str(exc), "summary": str(exc), "refused_by": "champion_lineage"}
        return {**base, **refused, "champion_version": exc.version, "champion_lineage": exc.lineage}
    if champion is None:
        deleted = deleted_champion(client, model_name)
        reason = NO_CHAMPION if deleted is None else f"no champion: {deleted}; nothing to compare against"
        return {**base, "status": "skipped", "reason": reason, "champion_version": None}
    version = str(champion.version)
    base["champion_version"] = version
    reference_uri = training_snapshot(client, champion)
    if reference_uri is None:
        reason = f"champion v{version} carries no snapshot lineage (tag airflow_ml.snapshot_uri); nothing to compare"
        return {**base, "status": "skipped", "reason": reason, "champion_snapshot_uri": None}
    base["champion_snapshot_uri"] = reference_uri
    wanted = list(dict.fromkeys([*features, target]))
    try:
        reference_manifest = load_manifest(reference_uri, storage_options=storage_options)
        reference = read_snapshot(
            reference_uri,
            columns=[c for c in wanted if c in reference_manifest.columns],
            storage_options=storage_options,
        )
    except (DataError, OSError, ValueError, pa.ArrowException) as exc:
        reason = f"the training snapshot of champion v{version} at {reference_uri!r} cannot be read: {exc}"
        return {**base, "status": "skipped", "reason": reason}
    base["champion_snapshot_hash"] = reference_manifest.content_hash
    columns = [*wanted, time_column] if time_column and compare == "new_rows" else wanted
    current = read(manifest.uri, [c for c in dict.fromkeys(columns) if c in manifest.columns])
    selection = select_rows(
        current,
        partitions=manifest.partitions,
        reference_partitions=reference_manifest.partitions,
        time_column=time_column,
        compare=compare,
        min_new_rows=settings.min_new_rows,
        min_new_days=settings.min_new_days,
    )
    report = compare_frames(
        reference,
        selection.frame,
        features=list(features),
        categorical=list(settings.categorical_features),
        target=target,
        task=settings.task,
        thresholds=settings.thresholds,
        bins=settings.bins,
        reference_name=f"champion v{version}'s training snapshot",
        current_name=selection.name,
    )
    report = _with_predictions(
        client,
        champion,
        settings,
        report,
        (reference_manifest, reference),
        (manifest, current),
        selection,
        run,
        storage_options,
    )
    compared = {**selection.record, "reference_rows": len(reference)}
    summary = report.summary() + (f"\n  compared: {compared['note']}" if compared["note"] else "")
    record = {**base, **report.to_dict(), "compared": compared, "summary": summary}
    metrics = [Metric(k, v, 0, 0) for k, v in report.metrics().items()]
    run_tags: dict[str, str] = {}
    if run is not None:
        record = apply_stop_rule(record, run)
        metrics += [Metric(k, v, 0, 0) for k, v in run.metrics().items()]
        run_tags["airflow_ml.drift_fixed_thresholds"] = record["status_fixed_thresholds"]
        run_tags["airflow_ml.drift_flagged"] = ",".join(sorted(record["calibration"]["flagged"]))[:5000]
    experiment_id = registry.get_or_create_experiment(client, model_name, artifact_root)
    run_tags = {
        **run_tags,
        **settings.tags,
        **(tags or {}),
        "airflow_ml.step": "drift",
        "airflow_ml.drift": record["status"],
        "airflow_ml.snapshot_uri": manifest.uri,
        "airflow_ml.snapshot_hash": manifest.content_hash,
        "airflow_ml.champion_version": version,
        "airflow_ml.champion_snapshot_hash": reference_manifest.content_hash,
        "airflow_ml.drift_compared": compared["mode"],
        "mlflow.runName": "drift",
    }
    run_id = client.create_run(experiment_id, tags=run_tags).info.run_id
    for start in range(0, len(metrics), _BATCH):
        client.log_batch(run_id, metrics=metrics[start : start + _BATCH])
    params = {k: compared[k] for k in ("requested", "mode", "since", "rows", "reference_rows", "snapshot_rows")}
    client.log_batch(run_id, params=[Param(f"compared.{k}", str(v)) for k, v in params.items()])
    with tempfile.TemporaryDirectory(prefix="airflow-ml-drift-") as tmp:
        Path(tmp, DRIFT_FILE).write_text(json.dumps(record, indent=1, default=str), encoding="utf-8")
        client.log_artifact(run_id, str(Path(tmp, DRIFT_FILE)))
    flagged = (record.get("calibration") or {}).get("flagged") or {}
    title = (
        f"{selection.name} ({len(selection.frame)} rows) against champion v{version}'s training snapshot "
        f"({len(reference)} rows)"
    )
    charts = log_drift_charts(
        client, run_id, reference, selection.frame, record["checks"], flagged, title=title, shares=report.shares
    )
    client.set_terminated(run_id, status="FINISHED")
    return {**record, "mlflow_run_id": run_id, "experiment_id": experiment_id, "charts": charts}
