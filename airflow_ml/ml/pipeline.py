"""The training and promotion steps of a run, as plain functions over a snapshot and an MLflow client.

Operators call these; a notebook or a test can too. Each reads the one snapshot of the run, so every
figure logged can be traced back to the exact rows through the snapshot's content hash.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

from airflow_ml.data.snapshot import Manifest, read_snapshot
from airflow_ml.data.storage import StorageOptions
from airflow_ml.ml import registry
from airflow_ml.ml.gate.judge import judge
from airflow_ml.ml.gate.modes import Outcome, apply_mode, check_mode
from airflow_ml.ml.gate.records import slice_summary
from airflow_ml.ml.gate.rules import GateRules
from airflow_ml.ml.lineage import this_citys_champion
from airflow_ml.ml.search import SearchSettings, search_params
from airflow_ml.ml.serving import predict_raw
from airflow_ml.ml.train import TrainSpec, effective_threads, time_split, train_model
from airflow_ml.ml.training_report import code_version, write_feature_importance
from airflow_ml.ml.warm_start import WARM_START_TAG, warm_start

log = logging.getLogger(__name__)

HOLDOUT_PREDICTIONS = "holdout_predictions.parquet"
#: The artifact folder of a validation run.
VALIDATION_ARTIFACTS = "validation"


@dataclass(frozen=True)
class SplitSettings:
    """How a snapshot is split by time."""

    time_column: str
    validation_fraction: float
    holdout_fraction: float


def train_and_log(
    client: MlflowClient,
    manifest: Manifest,
    spec: TrainSpec,
    split: SplitSettings,
    *,
    experiment: str,
    artifact_root: str | None = None,
    tags: dict[str, str] | None = None,
    config: dict[str, Any] | None = None,
    storage_options: StorageOptions | None = None,
    search: SearchSettings | None = None,
    warm_start_from: str | None = None,
) -> dict[str, Any]:
    """Train on the snapshot and log params, metrics, the model and its lineage to a new MLflow run.

    ``storage_options`` (by protocol, see :mod:`airflow_ml.data.storage`) open a snapshot on object storage.
    ``search`` (with trials) first searches the LightGBM parameters, each trial a nested run, and trains
    the final model with the best ones. ``warm_start_from`` names a registered model: a second candidate
    boosts on from its champion, and the better of the two on the validation split is kept (tag
    ``airflow_ml.warm_start``). A ``spec.num_threads`` above the worker's cores is clamped to them, with a
    warning: the run's ``num_threads`` param is what LightGBM ran with (``num_threads_configured`` the spec's).

    Returns:
        ``run_id``, ``experiment_id``, ``model_uri``, the ``metrics`` and ``warm_start`` (None when off).
    """
    threads = effective_threads(spec.num_threads)
    if threads != spec.num_threads:
        log.warning(
            "training.num_threads %d is more than the %d core(s) this worker may use: LightGBM runs %d threads "
            "(recorded as the run's num_threads param)",
            spec.num_threads,
            threads,
            threads,
        )
    columns = list(dict.fromkeys([*spec.features, spec.target, split.time_column]))
    frame = read_snapshot(manifest.uri, columns=columns, storage_options=storage_options)
    splits = time_split(frame, split.time_column, split.validation_fraction, split.holdout_fraction)
    experiment_id = registry.get_or_create_experiment(client, experiment, artifact_root)
    run_tags = {
        **(tags or {}),
        "airflow_ml.snapshot_uri": manifest.uri,
        "airflow_ml.snapshot_hash": manifest.content_hash,
        "mlflow.runName": f"{manifest.city} {manifest.run_id}",
        **code_version(),
    }
    run = client.create_run(experiment_id, tags=run_tags)
    run_id = run.info.run_id
    choice = None
    try:
        if search is not None and search.trials > 0:
            found = search_params(
                client, experiment_id=experiment_id, parent_run_id=run_id, splits=splits, spec=spec, settings=search
            )
            spec = dataclasses.replace(spec, params={**spec.params, **found.best_params})
        trained = train_model(splits, spec)
        if warm_start_from:
            outcome = warm_start(client, warm_start_from, splits, spec, trained)
            trained, choice = outcome.model, outcome.choice
            client.set_tag(run_id, WARM_START_TAG, choice[:5000])
            client.log_batch(
                run_id, metrics=[Metric(f"warm_start_{k}_validation", v, 0, 0) for k, v in outcome.scores.items()]
            )
        params = {
            **trained.params,
            "num_boost_round": spec.num_boost_round,
            "early_stopping_rounds": spec.early_stopping_rounds,
            "features": ",".join(spec.features),
            "categorical_features": ",".join(spec.categorical),
            "target": spec.target,
            "validation_fraction": split.validation_fraction,
            "holdout_fraction": split.holdout_fraction,
            "snapshot_hash": manifest.content_hash,
            "class_weight": spec.class_weight,
        }
        if threads != spec.num_threads:
            params["num_threads_configured"] = spec.num_threads
        sizes = {f"rows_{name}": float(n) for name, n in splits.sizes().items()}
        metrics = {**trained.metrics, **sizes, "best_iteration": float(trained.best_iteration)}
        curve = [Metric(f"validation_curve_{spec.metric}", v, 0, step) for step, v in enumerate(trained.learning_curve)]
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, 0, 0) for k, v in metrics.items()] + curve,
            params=[Param(k, str(v)[:6000]) for k, v in params.items()],
        )
        with tempfile.TemporaryDirectory(prefix="airflow-ml-run-") as tmp:
            Path(tmp, "manifest.json").write_text(json.dumps(manifest.to_dict(), indent=1), encoding="utf-8")
            if config is not None:
                Path(tmp, "city_config.json").write_text(json.dumps(config, indent=1, default=str), encoding="utf-8")
            holdout = splits.holdout.assign(
                prediction=predict_raw(trained.booster, trained.preprocessor, splits.holdout)
            )
            holdout.to_parquet(Path(tmp, HOLDOUT_PREDICTIONS), index=False)
            client.log_artifacts(run_id, tmp, "lineage")
        with tempfile.TemporaryDirectory(prefix="airflow-ml-report-") as tmp:
            write_feature_importance(trained.booster, Path(tmp))
            client.log_artifacts(run_id, tmp, "importance")
        model_uri = registry.log_model(client, run_id, trained, splits.train)
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")
    return {
        "run_id": run_id,
        "experiment_id": experiment_id,
        "model_uri": model_uri,
        "metrics": metrics,
        "warm_start": choice,
    }


def evaluate_and_decide(
    client: MlflowClient,
    manifest: Manifest,
    *,
    model_name: str,
    challenger_version: str,
    target: str,
    metric: str,
    split: SplitSettings,
    rules: GateRules,
    mode: str = "auto",
    trigger_reason: str = "",
    context: dict[str, Any] | None = None,
    storage_options: StorageOptions | None = None,
    parent_model: str | None = None,
) -> tuple[Outcome, dict[str, Any]]:
    """Score the challenger and the current champion on this snapshot's holdout, decide, and act.

    A city without a champion of its own is served by its fallback parent (``parent_model``), when that
    has a champion: the challenger must then beat the parent's champion on the city's holdout. Every
    challenger, a first one included, must also beat the naive baseline of ``rules.naive_baseline``,
    learnt from the training rows of the same split.

    The champion alias moves only when the outcome says so (a win in ``auto`` mode, or ``force``), and
    only as the very last step; ``dry_run`` records the decision and moves nothing.

    Returns:
        The outcome and the full decision record: rules, both scores with their bootstrap intervals, the
        naive baseline's score and the skill over it, the slice table, baseline version, snapshot hash,
        mode and trigger. It is logged as ``gate/decision.json`` on the challenger's run; its version tags
        (``gate.*``) hold the same with the slice table summarised in one line.

    Raises:
        ForeignChampion: when the champion (or the parent's) was trained for another city or template;
            nothing is scored or moved.
    """
    check_mode(mode, trigger_reason)
    champion = this_citys_champion(client, model_name)
    deleted = registry.deleted_champion(client, model_name) if champion is None else None
    parent = None
    if champion is None and parent_model is not None:
        parent = this_citys_champion(client, parent_model)
    frame = read_snapshot(manifest.uri, storage_options=storage_options)
    splits = time_split(frame, split.time_column, split.validation_fraction, split.holdout_fraction)
    holdout = splits.holdout
    challenger = client.get_model_version(model_name, challenger_version)
    challenger_pred = _predict(registry.load_version(client, challenger), holdout)
    champion_pred = None
    if champion is not None and str(champion.version) != str(challenger.version):
        champion_pred = _predict(registry.load_version(client, champion), holdout)
    if parent is not None:
        champion_pred = _predict(registry.load_version(client, parent), holdout)
    slice_columns = [str(s["column"]) for s in rules.slices]
    missing = [c for c in slice_columns if c not in holdout.columns]
    if missing:
        raise ValueError(
            f"gate slices name column(s) {missing} that the snapshot of {manifest.city} lacks; "
            f"it has {sorted(holdout.columns)}"
        )
    decision = judge(
        metric,
        holdout[target].to_numpy(),
        challenger_pred,
        champion_pred,
        rules=rules,
        columns={c: holdout[c] for c in slice_columns},
        training_target=splits.train[target].to_numpy(),
        no_champion=f"no champion: {deleted}" if deleted else "no champion yet",
    )
    outcome = apply_mode(decision, mode, trigger_reason)
    served_by = ""
    if parent is not None:
        served_by = f" (baseline: the parent model {parent_model!r} v{parent.version}, which serves this city)"
    record = {
        **decision.to_dict(),
        "gate_reason": decision.reason,
        "reason": outcome.reason + served_by,
        "parent_baseline": {"model": parent_model, "version": str(parent.version)} if parent is not None else None,
        "decision": outcome.label,
        "mode": mode,
        "trigger_reason": trigger_reason,
        "metric": metric,
        "model_name": model_name,
        "challenger_version": str(challenger.version),
        "baseline_version": str(champion.version) if champion is not None else None,
        "champion_deleted": deleted,
        "snapshot_hash": manifest.content_hash,
        "snapshot_uri": manifest.uri,
        **(context or {}),
    }
    if outcome.move_champion:
        registry.promote(client, model_name, str(challenger.version), decision_tags(record))
    else:
        registry.tag_decision(client, model_name, str(challenger.version), decision_tags(record))
    if challenger.run_id:
        client.log_dict(challenger.run_id, record, registry.DECISION_ARTIFACT)
    return outcome, record


def decision_tags(record: dict[str, Any]) -> dict[str, Any]:
    """The decision record as version tags: the slice table (in ``gate/decision.json``) becomes one line."""
    return {**record, "slices": slice_summary(record)} if "slices" in record else record


def log_validation(
    client: MlflowClient,
    manifest: Manifest,
    *,
    experiment: str,
    verdict: dict[str, Any],
    files: dict[str, str],
    artifact_root: str | None = None,
    tags: dict[str, str] | None = None,
) -> dict[str, str]:
    """Record a validation as its own MLflow run in the city's experiment: counts, status and the files.

    The run ends FINISHED whatever the verdict (the validation itself ran); its ``airflow_ml.validation``
    tag says passed, warned or failed.

    Returns:
        ``run_id`` and ``experiment_id``.
    """
    experiment_id = registry.get_or_create_experiment(client, experiment, artifact_root)
    run_tags = {
        **(tags or {}),
        "airflow_ml.step": "validation",
        "airflow_ml.validation": verdict["status"],
        "airflow_ml.suite": verdict["suite"],
        "airflow_ml.snapshot_uri": manifest.uri,
        "airflow_ml.snapshot_hash": manifest.content_hash,
        "mlflow.runName": f"validate {manifest.city} {manifest.run_id}",
    }
    run_id = client.create_run(experiment_id, tags=run_tags).info.run_id
    counts = {
        "validation_expectations": verdict["evaluated"],
        "validation_failed_errors": verdict["failed_errors"],
        "validation_failed_warnings": verdict["failed_warnings"],
        "validation_rows": verdict["row_count"],
    }
    client.log_batch(run_id, metrics=[Metric(k, float(v), 0, 0) for k, v in counts.items()])
    with tempfile.TemporaryDirectory(prefix="airflow-ml-validation-") as tmp:
        for name, text in files.items():
            Path(tmp, name).write_text(text, encoding="utf-8")
        client.log_artifacts(run_id, tmp, VALIDATION_ARTIFACTS)
    client.set_terminated(run_id, status="FINISHED")
    return {"run_id": run_id, "experiment_id": experiment_id}


def settle_approval(client: MlflowClient, record: dict[str, Any], *, approved: bool, approver: str) -> dict[str, Any]:
    """Act on a person's answer to a gate that recommended promotion (``require_approval`` mode).

    Approved: the challenger becomes champion, unless the champion moved since the gate scored it (then
    nothing moves and the run must decide again). Rejected: the champion stays. Either way the answer and
    who gave it are recorded on the challenger's version.

    Returns:
        The final decision record.

    Raises:
        ChampionMovedError: when the champion is no longer the version the gate compared against.
    """
    model_name, version = record["model_name"], str(record["challenger_version"])
    if not approved:
        final = {**record, "decision": "rejected", "approved_by": approver, "reason": f"rejected by {approver}"}
        registry.tag_decision(client, model_name, version, decision_tags(final))
        return final
    champion = registry.version_by_alias(client, model_name, registry.CHAMPION)
    current = str(champion.version) if champion is not None else None
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
    registry.promote(client, model_name, version, decision_tags(final))
    return final


class ChampionMovedError(RuntimeError):
    """The champion changed between a gate's decision and the approval of it."""


def _predict(model: Any, rows: pd.DataFrame) -> Any:
    """Predict raw rows with a pyfunc model, handing it only the columns its signature names."""
    schema = model.metadata.get_input_schema()
    columns = schema.input_names() if schema is not None else list(rows.columns)
    return model.predict(rows[columns])
