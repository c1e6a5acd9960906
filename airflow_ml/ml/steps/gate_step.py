"""The gate step: score the challenger, the champion and the naive baseline on one holdout, decide, and act.

The champion alias moves only when the outcome says so, and only as the very last step.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import pandas as pd
from mlflow import MlflowClient

from airflow_ml.data.snapshot import Manifest, read_snapshot, write_json
from airflow_ml.data.storage import StorageOptions
from airflow_ml.exceptions import DataError
from airflow_ml.ml import champion_skill, demotion_guard, model_schema
from airflow_ml.ml import model_registry as registry
from airflow_ml.ml.champion_trace import deleted_champion
from airflow_ml.ml.charts.chart_artifacts import log_gate_charts
from airflow_ml.ml.dask_holdout import columns_read
from airflow_ml.ml.gate import schema_change
from airflow_ml.ml.gate.fleet_outlier import FleetSkills
from airflow_ml.ml.gate.judge import judge
from airflow_ml.ml.gate.modes import Outcome, apply_mode, check_mode
from airflow_ml.ml.gate.schema_change import SchemaCheck
from airflow_ml.ml.lineage import TEMPLATE_TAG, model_lineage, this_citys_champion, training_snapshot
from airflow_ml.ml.logged_holdout import LoggedHoldout, logged_holdout
from airflow_ml.ml.metrics import BINARY
from airflow_ml.ml.serving import level_text
from airflow_ml.ml.steps.step_settings import GateSettings
from airflow_ml.ml.steps.xcom_payloads import DECISION_FILE
from airflow_ml.ml.train import Splits, time_split

log = logging.getLogger(__name__)


def gate(
    client: MlflowClient,
    manifest: Manifest,
    settings: GateSettings,
    *,
    challenger_version: str,
    mode: str = "auto",
    trigger_reason: str = "",
    context: dict[str, Any] | None = None,
    storage_options: StorageOptions | None = None,
    dask_session: Callable[[], AbstractContextManager[Any]] | None = None,
) -> tuple[Outcome, dict[str, Any]]:
    """The gate task: score the challenger and the current champion on this snapshot's holdout, decide, and act.

    A city without a champion of its own is served by its fallback parent (``settings.parent_model``), when
    that has a champion: the challenger must then beat the parent's champion on the city's holdout. Every
    challenger, a first one included, must also beat the naive baseline of ``rules.naive_baseline``,
    learnt from the training rows of the same split. The challenger's input schema is compared with the
    champion's (or the serving parent's): a change the template does not declare (``accept_schema_change``) is
    refused. With ``rules.fleet_outlier``, the sibling cities' champion skills (one paged registry search) and
    the city's promoted history are read for the fleet-outlier rule.

    The champion alias moves only when the outcome says so (a win in ``auto`` mode, or ``force``), and
    only as the very last step; ``dry_run`` records the decision and moves nothing. In ``shadow`` mode a
    winning challenger keeps its ``challenger`` alias and ``champion`` stays (the monitor compares the two
    on live rows, :func:`airflow_ml.ml.shadow_promotion.promote_shadow`); a first model is promoted. While
    the city's demotion is active (:mod:`airflow_ml.ml.demotion_guard`), an ``auto`` win needs what the
    demotion requires instead, and the record's ``after_demotion`` names the rule.

    Returns:
        The outcome and the full decision record: rules, both scores with their bootstrap intervals, the
        naive baseline's score and the skill over it, the slice table, baseline version, snapshot hash,
        mode and trigger, ``challenger_predictions`` (``source``: ``logged`` when the challenger's training run
        logged its predictions of this very holdout and the model loaded as serving loads it predicts a sample of
        them alike, as :mod:`~airflow_ml.ml.logged_holdout` checks, else ``scored`` by that model; ``reason``),
        and ``charts`` (the PNGs of
        :func:`~airflow_ml.ml.charts.chart_artifacts.log_gate_charts` on the challenger's run). It is logged as
        ``gate/decision.json`` on the challenger's run and written beside the snapshot as ``decision.json``; the
        version carries its :data:`~airflow_ml.ml.model_registry.GATE_TAGS` and a description with the decision,
        the reason and the Airflow run. A refused challenger loses its ``challenger`` alias.

    With ``settings.engine`` dask the snapshot is split and the holdout scored on the cluster of the client
    ``dask_session()`` opens (:class:`~airflow_ml.ml.dask_holdout.ClusterHoldout`), only once the registry's
    versions are read: only the labels, the predictions, the slice columns and the training target come back to
    this process; the challenger's logged predictions are checked as locally (row hashes on the cluster, the
    spot-checked rows gathered) and, when they pass, it does not score the holdout. The session is closed
    before the decision, the charts and any move of the alias. Either way only the columns the two models read,
    the time column, the target and the slice columns are read.

    Raises:
        ForeignChampion: when the champion (or the parent's) was trained for another city or template;
            nothing is scored or moved.
        ValueError: with ``settings.engine`` dask and no ``dask_session``.
    """
    check_mode(mode, trigger_reason)
    if settings.engine == "dask" and dask_session is None:
        raise ValueError(
            "training.engine 'dask' needs dask_session, which opens the cluster's client: the gate scores the "
            "holdout on the cluster (the gate task makes it from training.dask)"
        )
    model_name, parent_model, rules, metric = (
        settings.model_name,
        settings.parent_model,
        settings.rules,
        settings.metric,
    )
    champion = this_citys_champion(client, model_name)
    deleted = deleted_champion(client, model_name) if champion is None else None
    parent = None
    if champion is None and parent_model is not None:
        parent = this_citys_champion(client, parent_model)
    challenger = client.get_model_version(model_name, challenger_version)
    # Always the model serving would load (its registry source): a challenger that cannot be loaded fails the task
    # here and the champion stays. Its logged predictions of this holdout stand for its own only when they pass
    # the checks of logged_holdout, a spot check of this very model included; else it scores the whole holdout.
    challenger_model = registry.load_version(client, challenger)
    baseline = champion if champion is not None and str(champion.version) != str(challenger.version) else parent
    baseline_model = registry.load_version(client, baseline) if baseline is not None else None
    whose = "champion" if baseline is champion else f"parent {parent_model}"
    # On Dask the cluster is open only while the holdout is scored, and closed before anything is decided or
    # moved: an error while closing it fails the task with the champion where it was.
    on_dask = settings.engine == "dask" and dask_session is not None  # checked above: never dask without it
    session = dask_session() if on_dask and dask_session is not None else contextlib.nullcontext()
    with session as dask_client:
        evidence = _score_holdout(
            client,
            manifest,
            settings,
            (challenger, challenger_model),
            (baseline, baseline_model, whose),
            storage_options,
            dask_client,
        )
    logged, schema = evidence.logged, evidence.schema
    decision = judge(
        metric,
        evidence.labels,
        evidence.challenger_pred,
        evidence.champion_pred,
        rules=rules,
        columns=evidence.slices,
        training_target=evidence.training_target,
        fleet_skills=_fleet_skills(client, settings, str(challenger.version)),
        schema=schema,
        no_champion=f"no champion: {deleted}" if deleted else "no champion yet",
    )
    demotion = demotion_guard.active_demotion(client, model_name)
    outcome = apply_mode(decision, mode, trigger_reason, has_champion=champion is not None, demotion=demotion)
    served_by = ""
    if parent is not None:
        served_by = f" (baseline: the parent model {parent_model!r} v{parent.version}, which serves this city)"
    if schema is not None and schema.counted and schema.accepted:
        accepted = schema_change.describe(schema.counted)
        served_by += f"; input schema change {list(schema.fingerprint or ())} accepted ({schema.declared}): {accepted}"
    if schema is not None and schema.tolerated and not schema.refuses:
        served_by += f"; tolerated level churn (gate.level_tolerance): {schema_change.describe(schema.tolerated)}"
    if schema is not None and schema.stale_declaration:
        served_by += f"; {schema.stale_declaration}"
    record = {
        **decision.to_dict(),
        "gate_reason": decision.reason,
        "reason": outcome.reason + served_by,
        "parent_baseline": {"model": parent_model, "version": str(parent.version)} if parent is not None else None,
        "decision": outcome.label,
        "after_demotion": outcome.after_demotion,
        "mode": mode,
        "trigger_reason": trigger_reason,
        "metric": metric,
        "model_name": model_name,
        "challenger_version": str(challenger.version),
        "baseline_version": str(champion.version) if champion is not None else None,
        "champion_deleted": deleted,
        "snapshot_hash": manifest.content_hash,
        "snapshot_uri": manifest.uri,
        "challenger_predictions": logged.record(),
        **(context or {}),
    }
    if outcome.after_demotion and outcome.label == "kept":
        record["refused_by"] = "after_demotion"
    # The charts are evidence: drawn before anything moves (their paths are in the record, never a version tag).
    record["charts"] = log_gate_charts(client, challenger.run_id, record) if challenger.run_id else None
    if outcome.move_champion:
        registry.promote(client, model_name, str(challenger.version), record)
        demotion_guard.clear_demotion(client, model_name)  # a forced promotion, or a demotion past its end
    else:
        registry.tag_decision(client, model_name, str(challenger.version), record)
    if challenger.run_id:
        client.log_dict(challenger.run_id, record, registry.DECISION_ARTIFACT)
    write_json(manifest.uri, DECISION_FILE, record, storage_options=storage_options)
    return outcome, record


@dataclass(frozen=True)
class _Evidence:
    """What the gate judges, gathered from the holdout (in this process, or from the cluster before it closes)."""

    labels: Any
    challenger_pred: Any
    champion_pred: Any
    slices: dict[str, Any]
    training_target: Any
    logged: LoggedHoldout
    schema: SchemaCheck | None


def _score_holdout(
    client: MlflowClient,
    manifest: Manifest,
    settings: GateSettings,
    challenger: tuple[Any, Any],
    baseline: tuple[Any, Any, str],
    storage_options: StorageOptions | None,
    dask_client: Any,
) -> _Evidence:
    """Split the snapshot, score the challenger and the baseline (version, model, whose) on the holdout, compare
    their schemas, and gather the labels, slices and training target: on ``dask_client``'s cluster on Dask."""
    (version, model), (base, base_model, whose) = challenger, baseline
    split, target = settings.split, settings.target
    slice_columns = [str(s["column"]) for s in settings.rules.slices]
    missing = [c for c in slice_columns if c not in manifest.columns]
    if missing:
        raise ValueError(
            f"gate slices name column(s) {missing} that the snapshot of {manifest.city} lacks; "
            f"it has {sorted(manifest.columns)}"
        )
    # Only what the models read and the gate judges is read (a key column of distinct strings costs more than
    # the features): the split sorts on the time column alone (stably), so the rows and their order are the same.
    columns = columns_read([model, base_model], [split.time_column, target, *slice_columns], manifest.columns)
    if settings.engine == "dask":
        from airflow_ml.ml.dask_holdout import ClusterHoldout, split_on_dask

        splits = split_on_dask(dask_client, manifest, split, storage_options, columns=columns)
        rows: LocalHoldout | ClusterHoldout = ClusterHoldout(dask_client, splits, target, slice_columns)
    else:
        frame = read_snapshot(manifest.uri, columns=columns, storage_options=storage_options)
        rows = LocalHoldout(
            time_split(frame, split.time_column, split.validation_fraction, split.holdout_fraction), target
        )
        del frame  # the splits are views of it
    checks = {"target": target, "time_column": split.time_column, "probability": settings.metric in BINARY}
    logged = rows.logged(client, version, manifest.content_hash, model, **checks)
    challenger_pred = logged.predictions if logged.predictions is not None else rows.predict(model)
    log.info("gate: the challenger's holdout predictions are %s: %s", logged.record()["source"], logged.reason)
    champion_pred, schema = None, None
    if base is not None:
        champion_pred = rows.predict(base_model)
        schema = _compare_schemas(
            client, version, model, base, base_model, whose, settings, rows.level_shares, storage_options
        )
    return _Evidence(
        labels=rows.labels(),
        challenger_pred=challenger_pred,
        champion_pred=champion_pred,
        slices=rows.slices(slice_columns),
        training_target=rows.training_target(),
        logged=logged,
        schema=schema,
    )


def _compare_schemas(
    client: MlflowClient,
    challenger: Any,
    challenger_model: Any,
    baseline: Any,
    baseline_model: Any,
    whose: str,
    settings: GateSettings,
    train_level_shares: Callable[[dict[str, list[str]]], dict[str, float]],
    storage_options: StorageOptions | None,
) -> SchemaCheck:
    """The challenger's input schema against the champion's (or the serving parent's), with the declaration.

    The share of the challenger's training rows (``train_level_shares``) holding each column's new levels, and of the
    baseline's training snapshot holding each column's removed levels, decide whether they are tolerated churn
    (``gate.level_tolerance``); levels are read as the preprocessor reads them.
    """
    if settings.rules.accept_schema_change is not None and settings.rules.accept_schema_change.change is None:
        log.warning(
            "gate.accept_schema_change (%r) names no change, so it accepts none: add change: [...] as the gate's "
            "refusal shows it",
            settings.rules.accept_schema_change.reason,
        )
    new, _ = model_schema.read(client, challenger, challenger_model)
    old, source = model_schema.read(client, baseline, baseline_model)
    added, removed = {}, {}
    if old is not None and new is not None:
        changes = schema_change.diff(old, new)
        added = train_level_shares(changes.get("levels_added") or {})
        if changes.get("levels_removed") and whose == "champion":
            removed = _baseline_level_shares(client, baseline, changes["levels_removed"], storage_options)
    return schema_change.evaluate(
        old,
        new,
        settings.rules.accept_schema_change,
        compared_with=f"{whose} v{baseline.version}",
        source=source,
        parent=whose != "champion",
        tolerance=settings.rules.level_tolerance,
        new_level_shares=added,
        removed_level_shares=removed,
    )


class LocalHoldout:
    """What the gate reads of a snapshot split in this process (``ClusterHoldout`` is the cluster's)."""

    def __init__(self, splits: Splits, target: str) -> None:
        self.splits, self.target = splits, target

    @property
    def columns(self) -> list[str]:
        """The holdout's columns."""
        return [str(c) for c in self.splits.holdout.columns]

    def labels(self) -> Any:
        """The holdout's target, in time order."""
        return self.splits.holdout[self.target].to_numpy()

    def slices(self, names: list[str]) -> dict[str, Any]:
        """The holdout's values of each slice column."""
        return {name: self.splits.holdout[name] for name in names}

    def training_target(self) -> Any:
        """The training rows' target (the naive baseline's constant is learnt from it)."""
        return self.splits.train[self.target].to_numpy()

    def predict(self, model: Any) -> Any:
        """``model``'s predictions of the holdout."""
        return _predict(model, self.splits.holdout)

    def level_shares(self, levels: dict[str, list[str]]) -> dict[str, float]:
        """The share of the training rows holding each column's ``levels``."""
        return level_shares(self.splits.train, levels)

    def logged(
        self, client: MlflowClient, version: Any, snapshot_hash: str, model: Any, **checks: Any
    ) -> LoggedHoldout:
        """The challenger's logged holdout predictions, when they are ``model``'s of these rows."""
        return logged_holdout(
            client, version, snapshot_hash, self.splits.holdout, predict=lambda rows: _predict(model, rows), **checks
        )


def level_shares(rows: pd.DataFrame, levels: dict[str, list[str]]) -> dict[str, float]:
    """Per column of ``levels``, the share of ``rows`` holding one of its levels, read as the preprocessor reads
    them (:func:`airflow_ml.ml.serving.level_text`: a float-coded ``1.0`` is the level ``1``, a null no level)."""
    return {
        column: float(level_text(rows[column]).isin(wanted).fillna(False).mean())
        for column, wanted in levels.items()
        if column in rows.columns and len(rows)
    }


def _baseline_level_shares(
    client: MlflowClient, baseline: Any, levels: dict[str, list[str]], storage_options: StorageOptions | None
) -> dict[str, float]:
    """The shares of the baseline's training snapshot holding each column's removed levels; none when it cannot be
    read (the removed levels then count, and the log says why)."""
    uri = training_snapshot(client, baseline)
    if uri is None:
        log.warning("gate: v%s has no training snapshot in its lineage; its removed levels count", baseline.version)
        return {}
    try:
        rows = read_snapshot(uri, columns=list(levels), storage_options=storage_options)
    except (DataError, OSError, ValueError, KeyError) as exc:
        log.warning(
            "gate: the training snapshot %s of v%s is unreadable (%s); its removed levels count",
            uri,
            baseline.version,
            exc,
        )
        return {}
    return level_shares(rows, levels)


def _fleet_skills(client: MlflowClient, settings: GateSettings, challenger_version: str) -> FleetSkills | None:
    """The sibling champions' skills (one paged search) and the city's promoted history, when the rule is on."""
    if settings.rules.fleet_outlier is None:
        return None
    # The factory always passes the template; a name parses only in the default pattern's shape.
    template = settings.template or model_lineage(settings.model_name).get(TEMPLATE_TAG, "")
    exclude = {settings.model_name, settings.parent_model or ""}
    siblings = champion_skill.sibling_skills(
        client, template, exclude=exclude, not_cities=settings.not_cities, name_pattern=settings.name_pattern
    )
    history = champion_skill.history_skills(client, settings.model_name, exclude_version=challenger_version)
    return FleetSkills(siblings=tuple(siblings.values()), history=tuple(history))


def _predict(model: Any, rows: pd.DataFrame) -> Any:
    """Predict raw rows with a pyfunc model, handing it only the columns its signature names."""
    schema = model.metadata.get_input_schema()
    columns = schema.input_names() if schema is not None else list(rows.columns)
    return model.predict(rows[columns])
