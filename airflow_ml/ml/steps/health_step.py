"""The health step: check a champion promoted in this run as serving loads it, and roll it back on failure."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import pandas as pd
from mlflow import MlflowClient

from airflow_ml.data.snapshot import load_manifest, read_snapshot, write_json
from airflow_ml.data.storage import StorageOptions
from airflow_ml.ml import model_registry as registry
from airflow_ml.ml.dask_holdout import columns_read
from airflow_ml.ml.health import SAMPLE_SEED, HealthThresholds, check_champion
from airflow_ml.ml.steps.step_settings import HealthSettings, SplitSettings
from airflow_ml.ml.steps.xcom_payloads import HEALTH_FILE
from airflow_ml.ml.train import time_split


class ChampionUnchanged(Exception):
    """The run's version is not the champion: nothing was promoted, so there is nothing to check."""


@dataclass(frozen=True)
class Health:
    """What the health step found about the run's new champion.

    Attributes:
        model_name: The city's registered model.
        record: The check's record (``passed``, ``problems``, the figures; ``rollback`` after one).
        version: The version checked, the run's.
        previous_version: The ``previous-champion`` it replaced, if any.
        decision: The gate's decision tag on the champion (``promoted``, ``forced``...).
    """

    model_name: str
    record: dict[str, Any]
    version: str
    previous_version: str | None
    decision: str

    @property
    def failure(self) -> str | None:
        """Why the check failed and what the rollback did, or None when it passed (or was off)."""
        if self.record["passed"] is not False:
            return None
        restored = self.record.get("rollback", {}).get("restored_version")
        back = f"v{restored} is champion again" if restored else "the model has no champion now"
        problems = "; ".join(self.record["problems"])
        return f"health check of {self.model_name} v{self.version} failed, rolled back ({back}): {problems}"


def health(
    client: MlflowClient,
    uri: str,
    settings: HealthSettings,
    *,
    version: str,
    run_id: str,
    storage_options: StorageOptions | None = None,
    dask_session: Callable[[], AbstractContextManager[Any]] | None = None,
) -> Health:
    """The health task: when this run's ``version`` is the champion, check it (:func:`check_and_settle`).

    With ``settings.enabled`` false nothing is checked and the record's ``passed`` is None. The record is
    written beside the snapshot as ``health.json`` when checked. With ``settings.engine`` dask the snapshot is
    split on the cluster of the client ``dask_session()`` opens (only once there is a champion to check), and
    only the sample checked comes to this process: the rows the local path samples.

    Raises:
        ChampionUnchanged: when the champion is not ``version`` (the gate kept the champion, say).
    """
    name = settings.model_name
    champion = registry.version_by_alias(client, name, registry.CHAMPION)
    if champion is None or str(champion.version) != version:
        current = f"v{champion.version}" if champion is not None else "none"
        raise ChampionUnchanged(f"the champion did not move in this run (champion: {current}, run: v{version})")
    previous = registry.version_by_alias(client, name, registry.PREVIOUS_CHAMPION)
    run = {"airflow_run_id": run_id}
    if settings.enabled:
        if settings.engine == "dask" and dask_session is None:
            raise ValueError(
                "training.engine 'dask' needs dask_session, which opens the cluster's client: the health check "
                "samples the holdout on the cluster (the health_check task makes it from training.dask)"
            )
        # Loaded once, as serving loads it: on Dask its columns are the ones split, and it is the model checked.
        model = registry.load_version(client, champion)
        if settings.engine == "dask" and dask_session is not None:
            with dask_session() as dask_client:
                holdout = _sample_on_dask(dask_client, uri, settings, model, storage_options)
        else:
            # Only what the model reads, and the time column the split sorts on (stably: the same rows, in the same
            # order, as the whole frame's split): a key column of distinct strings costs more than the features.
            available = load_manifest(uri, storage_options=storage_options).columns
            columns = columns_read([model], [settings.split.time_column], available)
            holdout = snapshot_holdout(uri, settings.split, storage_options=storage_options, columns=columns)
        thresholds = HealthThresholds(settings.max_mean_shift, settings.max_quantile_shift)
        record = check_and_settle(
            client,
            name,
            holdout,
            sample_rows=settings.sample_rows,
            thresholds=thresholds,
            context=run,
            loaded=(version, model),
        )
        write_json(uri, HEALTH_FILE, record, storage_options=storage_options)
    else:
        record = {"passed": None, "problems": [], "champion_version": version, **run}
    return Health(
        model_name=name,
        record=record,
        version=version,
        previous_version=str(previous.version) if previous is not None else None,
        decision=(champion.tags or {}).get("gate.decision", "promoted"),
    )


def check_and_settle(
    client: MlflowClient,
    model_name: str,
    holdout: pd.DataFrame,
    *,
    sample_rows: int,
    thresholds: HealthThresholds,
    context: dict[str, Any] | None = None,
    loaded: tuple[str, Any] | None = None,
) -> dict[str, Any]:
    """Check the champion and, when it fails, roll it back; record the outcome as ``health.*`` version tags.

    A failing champion that was the model's first loses the ``champion`` alias, so nothing serves a
    model known to be broken. ``loaded``: the champion's version and model, already loaded (see
    :func:`~airflow_ml.ml.health.check_champion`).

    Returns:
        The check's record; ``rollback`` holds the rollback's record when one was done.
    """
    record = check_champion(client, model_name, holdout, sample_rows=sample_rows, thresholds=thresholds, loaded=loaded)
    record = {**record, **(context or {})}
    version = record.get("champion_version")
    if version is not None:
        for key, value in record.items():
            text = value if isinstance(value, str) else json.dumps(value)
            client.set_model_version_tag(model_name, version, f"health.{key}", text[:5000])
    if record["passed"] is False and version is not None:
        reason = "health check failed: " + "; ".join(record["problems"])
        try:
            record["rollback"] = registry.rollback(
                client,
                model_name,
                reason,
                {**(context or {}), "by": "health_check"},
                without_previous="clear",
                expected_version=version,
            )
        except registry.RollbackRefused as refused:  # the alias moved after the check: the failed version is gone
            record["rollback"] = {"refused": str(refused)}
    return record


def snapshot_holdout(
    uri: str,
    split: SplitSettings,
    storage_options: StorageOptions | None = None,
    *,
    columns: list[str] | None = None,
) -> pd.DataFrame:
    """The holdout rows of the snapshot at ``uri``, split by time exactly as training and the gate split it.

    Args:
        columns: The columns read (the split's time column among them); None reads every column.
    """
    frame = read_snapshot(uri, columns=columns, storage_options=storage_options)
    return time_split(frame, split.time_column, split.validation_fraction, split.holdout_fraction).holdout


def _sample_on_dask(
    dask_client: Any, uri: str, settings: HealthSettings, model: Any, storage_options: StorageOptions | None
) -> pd.DataFrame:
    """The holdout rows :func:`~airflow_ml.ml.health.check_champion` samples, split and picked on the cluster (the
    columns ``model`` reads and the time column: a column it expects that the snapshot lacks is still missing)."""
    from airflow_ml.ml.dask_holdout import sample_on_dask, split_on_dask
    from airflow_ml.ml.dask_split import split_lengths

    manifest = load_manifest(uri, storage_options=storage_options)
    columns = columns_read([model], [settings.split.time_column], manifest.columns)
    splits = split_on_dask(dask_client, manifest, settings.split, storage_options, columns=columns)
    return sample_on_dask(
        dask_client,
        splits.holdout,
        settings.sample_rows,
        seed=SAMPLE_SEED,
        lengths=split_lengths(dask_client, splits, "holdout"),
    )
