"""The challenger's holdout predictions as its training run logged them, for the gate to reuse instead of rescoring.

Training logs the holdout, in the order of the time split, with its ``prediction`` column
(:data:`~airflow_ml.ml.health.HOLDOUT_PREDICTIONS_ARTIFACT`), and tags its run with the snapshot's content hash.
When that hash is the gate's snapshot's and the logged rows are the gate's holdout (same count, same target and
time values in the same order), the gate uses the logged predictions: the model it would load predicts the very
same numbers (:func:`airflow_ml.ml.serving.predict_raw` is the one prediction path). Anything else (another
snapshot, another split, no artifact, an unreadable one) leaves the gate to load the model and score it.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from airflow_ml.ml.health import HOLDOUT_PREDICTIONS_ARTIFACT
from airflow_ml.ml.lineage import SNAPSHOT_HASH_TAG


@dataclass(frozen=True)
class LoggedHoldout:
    """The logged predictions, or None with why they cannot stand for the model's (``reason``)."""

    predictions: np.ndarray | None
    reason: str

    def record(self) -> dict[str, Any]:
        """The decision record's ``challenger_predictions``: ``source`` (``logged`` or ``scored``) and why."""
        return {"source": "logged" if self.predictions is not None else "scored", "reason": self.reason}


def logged_holdout(
    client: MlflowClient,
    version: ModelVersion,
    snapshot_hash: str,
    holdout: pd.DataFrame,
    *,
    target: str,
    time_column: str,
) -> LoggedHoldout:
    """The holdout predictions ``version``'s training run logged, when they are of exactly these holdout rows.

    Args:
        client: The MLflow client.
        version: The challenger's registered version.
        snapshot_hash: The content hash of the gate's snapshot.
        holdout: The gate's holdout rows, in time order.
        target: The target column, compared row by row with the logged one.
        time_column: The time column, compared row by row with the logged one.
    """
    if not version.run_id:
        return LoggedHoldout(None, "the version has no training run")
    try:
        logged_hash = client.get_run(version.run_id).data.tags.get(SNAPSHOT_HASH_TAG)
    except MlflowException as exc:
        return LoggedHoldout(None, f"its training run is unreadable ({_first_line(exc)})")
    if logged_hash != snapshot_hash:
        return LoggedHoldout(
            None, f"trained on snapshot {logged_hash or '(no hash tag)'}, the gate's holdout is of {snapshot_hash}"
        )
    columns = list(dict.fromkeys(["prediction", target, time_column]))
    try:
        with tempfile.TemporaryDirectory(prefix="airflow-ml-gate-") as tmp:
            local = client.download_artifacts(version.run_id, HOLDOUT_PREDICTIONS_ARTIFACT, tmp)
            rows = pd.read_parquet(Path(local), columns=columns)
    except (MlflowException, OSError, ValueError, KeyError) as exc:  # missing, cut short, a column gone
        return LoggedHoldout(None, f"{HOLDOUT_PREDICTIONS_ARTIFACT} is missing or unreadable ({_first_line(exc)})")
    if len(rows) != len(holdout):
        return LoggedHoldout(None, f"{len(rows)} logged holdout rows, the gate's holdout has {len(holdout)}")
    for column in (target, time_column):
        if not _same(rows[column], holdout[column]):
            return LoggedHoldout(None, f"the logged holdout's {column!r} differs from the gate's holdout")
    predictions = rows["prediction"].to_numpy(dtype="float64")
    source = f"{HOLDOUT_PREDICTIONS_ARTIFACT} of run {version.run_id} (snapshot {logged_hash})"
    return LoggedHoldout(predictions, source)


def _same(logged: pd.Series, expected: pd.Series) -> bool:
    """The same values in the same order (nulls in the same places), read back in the expected column's dtype."""
    logged, expected = logged.reset_index(drop=True), expected.reset_index(drop=True)
    if logged.equals(expected):
        return True
    try:  # a parquet round trip may widen a type (int32 to int64, a timestamp's unit)
        return bool(logged.astype(expected.dtype).equals(expected))
    except (TypeError, ValueError):
        return False


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]
