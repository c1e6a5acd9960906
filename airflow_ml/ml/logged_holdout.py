"""The challenger's holdout predictions as its training run logged them, for the gate to reuse instead of rescoring.

Training logs the holdout, in the order of the time split, with its ``prediction`` column
(:data:`~airflow_ml.ml.health.HOLDOUT_PREDICTIONS_ARTIFACT`), and tags its run with the snapshot's content hash.
The gate always loads the challenger as serving loads it (its registry ``source``,
:func:`airflow_ml.ml.model_cache.load_pyfunc`); the logged predictions stand for that model's only when

- the version's source lies inside the run whose predictions are read (else the run's file is of another model);
- the run's snapshot hash is the gate's snapshot's;
- the logged rows are the gate's holdout row for row: every row's hash over the columns logged (the model's
  inputs, the target and the time column; :func:`airflow_ml.data.row_hashing.row_hashes`) equals the gate's
  row's at the same place, so a prediction is paired with its own row. Position is the key and the logged row
  its check: training and the gate cut the same snapshot by the same stable sort of the time column
  (:func:`airflow_ml.ml.train.time_split`), so rows keep the snapshot's order within a timestamp; a slice
  column that is a model input is checked too, and one that is not is read from the gate's own rows;
- the predictions are numbers, finite, and probabilities in [0, 1] for a binary metric;
- the loaded model predicts :data:`SPOT_CHECK_ROWS` of those rows (drawn with a fixed seed) as logged, within
  :data:`SPOT_CHECK_RTOL` (a re-logged file, or a model artifact changed after training, fails it).

Anything else leaves the gate to score the whole holdout with the loaded model, and the reason says why. The
holdout is a frame in this process, or any :class:`HoldoutRows` (on a Dask cluster:
:class:`~airflow_ml.ml.dask_holdout.ClusterRows`, which hashes the rows where they lie and gathers only the rows
checked).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from airflow_ml.data.row_hashing import row_hashes
from airflow_ml.ml.health import HOLDOUT_PREDICTIONS_ARTIFACT
from airflow_ml.ml.lineage import SNAPSHOT_HASH_TAG
from airflow_ml.ml.model_cache import source_in_run

#: Holdout rows the loaded model predicts to check the logged predictions (all of them when the holdout is smaller).
SPOT_CHECK_ROWS = 256
#: The seed of the rows checked: the same holdout checks the same rows.
SPOT_CHECK_SEED = 0
#: How close a checked prediction must be to the logged one (relative, and absolute near 0): the model file and
#: the parquet file both keep float64 exactly, so any real difference is another model.
SPOT_CHECK_RTOL = 1e-9


class HoldoutRows(Protocol):
    """The gate's holdout as the checks read it, wherever its rows lie."""

    @property
    def columns(self) -> list[str]:
        """The holdout's columns."""
        ...

    def __len__(self) -> int:
        """The holdout's row count."""
        ...

    def differing_row(self, logged: pd.DataFrame) -> int | None:
        """The first position where ``logged`` (some of the holdout's columns) and the holdout differ, else None."""
        ...

    def take(self, positions: np.ndarray) -> pd.DataFrame:
        """The holdout's rows at ``positions`` (ascending), in this process."""
        ...


@dataclass(frozen=True)
class FrameRows:
    """A holdout held in this process."""

    frame: pd.DataFrame

    @property
    def columns(self) -> list[str]:
        """The holdout's columns."""
        return list(self.frame.columns)

    def __len__(self) -> int:
        return len(self.frame)

    def differing_row(self, logged: pd.DataFrame) -> int | None:
        """The first position where ``logged`` and the frame differ, by each row's hash."""
        return _differing_row(logged, self.frame[list(logged.columns)])

    def take(self, positions: np.ndarray) -> pd.DataFrame:
        """The rows at ``positions``."""
        return self.frame.iloc[positions]


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
    holdout: pd.DataFrame | HoldoutRows,
    *,
    target: str,
    time_column: str,
    predict: Callable[[pd.DataFrame], Any],
    probability: bool = False,
) -> LoggedHoldout:
    """The holdout predictions ``version``'s training run logged, when they are the loaded model's of these rows.

    Args:
        client: The MLflow client.
        version: The challenger's registered version.
        snapshot_hash: The content hash of the gate's snapshot.
        holdout: The gate's holdout rows, in time order (a frame, or rows elsewhere: :class:`HoldoutRows`).
        target: The target column, which the logged rows must hold.
        time_column: The time column, which the logged rows must hold.
        predict: The loaded challenger's predictions of some rows (the model serving loads).
        probability: Whether the predictions are probabilities (a binary metric): each must lie in [0, 1].
    """
    if not version.run_id:
        return LoggedHoldout(None, "the version has no training run")
    held = FrameRows(holdout) if isinstance(holdout, pd.DataFrame) else holdout
    try:
        in_run = source_in_run(client, version)
        logged_hash = client.get_run(version.run_id).data.tags.get(SNAPSHOT_HASH_TAG)
    except MlflowException as exc:
        return LoggedHoldout(None, f"its training run is unreadable ({_first_line(exc)})")
    if in_run is None:
        return LoggedHoldout(
            None, f"the version's source {version.source} lies outside its run {version.run_id}, whose file is read"
        )
    if logged_hash != snapshot_hash:
        return LoggedHoldout(
            None, f"trained on snapshot {logged_hash or '(no hash tag)'}, the gate's holdout is of {snapshot_hash}"
        )
    try:
        with tempfile.TemporaryDirectory(prefix="airflow-ml-gate-") as tmp:
            local = client.download_artifacts(version.run_id, HOLDOUT_PREDICTIONS_ARTIFACT, tmp)
            rows = pd.read_parquet(Path(local))
    except (MlflowException, OSError, ValueError, KeyError) as exc:  # missing, cut short
        return LoggedHoldout(None, f"{HOLDOUT_PREDICTIONS_ARTIFACT} is missing or unreadable ({_first_line(exc)})")
    lacking = [c for c in dict.fromkeys(["prediction", target, time_column]) if c not in rows.columns]
    if lacking:
        return LoggedHoldout(None, f"{HOLDOUT_PREDICTIONS_ARTIFACT} lacks the column(s) {lacking}")
    if len(rows) != (count := len(held)):
        return LoggedHoldout(None, f"{len(rows)} logged holdout rows, the gate's holdout has {count}")
    key = [c for c in rows.columns if c != "prediction" and c in held.columns]
    differ = held.differing_row(rows[key])
    if differ is not None:
        return LoggedHoldout(None, f"the logged holdout's row {differ} differs from the gate's holdout row {differ}")
    predictions, bad = _numbers(rows["prediction"], probability)
    if predictions is None:
        return LoggedHoldout(None, f"the logged predictions are {bad}")
    checked = np.sort(np.random.default_rng(SPOT_CHECK_SEED).choice(count, min(SPOT_CHECK_ROWS, count), replace=False))
    loaded = np.asarray(predict(held.take(checked)), dtype="float64").reshape(-1)
    if loaded.shape != checked.shape:
        return LoggedHoldout(None, f"the loaded model gave {loaded.size} predictions of {checked.size} rows")
    off = np.flatnonzero(~np.isclose(loaded, predictions[checked], rtol=SPOT_CHECK_RTOL, atol=SPOT_CHECK_RTOL))
    if off.size:
        row = int(checked[off[0]])
        return LoggedHoldout(
            None,
            f"the loaded model ({version.source}) predicts {off.size} of {checked.size} checked holdout rows "
            f"otherwise than logged (row {row}: logged {float(predictions[row])!r}, loaded {float(loaded[off[0]])!r})",
        )
    source = (
        f"{HOLDOUT_PREDICTIONS_ARTIFACT} of run {version.run_id} (snapshot {logged_hash}); the model of "
        f"{version.source} predicts {len(checked)} checked rows as logged"
    )
    return LoggedHoldout(predictions, source)


def logged_as(logged: pd.DataFrame, dtypes: pd.Series) -> pd.DataFrame | None:
    """``logged``'s columns of ``dtypes`` read back in those dtypes (a parquet round trip may widen a type), indexed
    from 0; None when one cannot be (the rows then differ)."""
    try:
        return pd.DataFrame({c: logged[c].reset_index(drop=True).astype(dtypes[c]) for c in dtypes.index})
    except (TypeError, ValueError, KeyError):
        return None


def _differing_row(logged: pd.DataFrame, expected: pd.DataFrame) -> int | None:
    """The first row where ``logged`` and ``expected`` differ over ``expected``'s columns (by each row's hash, the
    logged columns read back in the expected dtypes), else None."""
    logged = logged_as(logged, expected.dtypes)
    if logged is None:
        return 0
    mismatch = np.flatnonzero(row_hashes(logged) != row_hashes(expected.reset_index(drop=True)))
    return int(mismatch[0]) if mismatch.size else None


def _numbers(column: pd.Series, probability: bool) -> tuple[np.ndarray | None, str]:
    """The predictions as float64, or None and what is wrong with them (text, a null or infinity, outside [0, 1])."""
    if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return None, f"not numbers (dtype {column.dtype})"
    values = column.to_numpy(dtype="float64", na_value=np.nan)
    finite = np.isfinite(values)
    if not finite.all():
        return None, f"not all finite (row {int(np.flatnonzero(~finite)[0])}: {float(values[~finite][0])!r})"
    if probability and ((values < 0) | (values > 1)).any():
        outside = int(np.flatnonzero((values < 0) | (values > 1))[0])
        return None, f"not probabilities in [0, 1] (row {outside}: {float(values[outside])!r})"
    return values, ""


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]
