"""Late labels joined to the prediction log: which prediction each arrived outcome belongs to.

Labels are read from ``date=YYYY-MM-DD`` partitions (the dataset's own source once its target is filled, or a
source of their own). A label row finds its prediction by ``prediction_id``: either the row carries one, or it
is recomputed from the scoring key columns with the namespace scoring used (``<template>/<city>``), by
:func:`airflow_ml.data.prediction_ids.prediction_ids`. A label without a prediction, or a prediction without a
label yet, is counted, never guessed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from airflow_ml.data.partitions import list_partitions, read_files
from airflow_ml.data.prediction_ids import prediction_ids
from airflow_ml.data.prediction_log import PARTITION_COLUMN
from airflow_ml.data.storage import StorageOptions, filesystem, storage_errors
from airflow_ml.exceptions import DataError

#: The label column of a joined frame (the dataset's target, renamed).
LABEL = "label"


@dataclass(frozen=True)
class JoinedLabels:
    """Predictions with their labels, and what did not join.

    Attributes:
        rows: One row per labelled prediction: ``prediction_id``, ``partition_date`` (the day scored),
            ``prediction``, ``label``, ``model_version``.
        labels_read: Label rows read (with a non-null label).
        unmatched_labels: Label rows whose prediction id is not in the log (scored by no run in the range).
        unlabelled: Predictions with no label (yet).
    """

    rows: pd.DataFrame
    labels_read: int
    unmatched_labels: int
    unlabelled: int


def read_labels(
    source: str,
    start: dt.date,
    end: dt.date,
    *,
    fmt: str = "parquet",
    storage_options: StorageOptions | None = None,
) -> pd.DataFrame:
    """The label partitions of ``source`` from ``start`` to ``end`` (both included).

    A source that does not exist yet, or holds no partition in the range, gives an empty frame: no label has
    arrived (the monitor's record then says so, with the location).

    Raises:
        DataError: when a partition cannot be read, naming the file.
    """
    fs, folder = filesystem(source, storage_options)
    with storage_errors(source, storage_options):
        if not fs.isdir(folder.rstrip("/")):
            return pd.DataFrame()
    partitions = list_partitions(source, fmt, storage_options=storage_options)
    files = [path for day, paths in partitions.items() if start <= day <= end for path in paths]
    if not files:
        return pd.DataFrame()
    return read_files(source, files, fmt, storage_options=storage_options)


def join_labels(
    predictions: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    target: str,
    join: Literal["key", "prediction_id"],
    key_columns: Sequence[str],
    namespace: str,
) -> JoinedLabels:
    """Join label rows to logged predictions by prediction id.

    Args:
        predictions: Rows of :func:`airflow_ml.data.prediction_log.read_predictions`.
        labels: Label rows: the target column, and ``prediction_id`` or the key columns.
        target: The label column of ``labels``; rows where it is null have no outcome yet and are dropped.
        join: ``prediction_id`` (the rows carry it) or ``key`` (recompute it from ``key_columns``).
        key_columns: The scoring key columns.
        namespace: What scoring made the ids unique within: ``<template>/<city>``.

    Raises:
        DataError: when the label rows lack the target, the id or a key column, naming the fix.
    """
    empty = pd.DataFrame({c: [] for c in ("prediction_id", PARTITION_COLUMN, "prediction", LABEL, "model_version")})
    if labels.empty:
        return JoinedLabels(rows=empty, labels_read=0, unmatched_labels=0, unlabelled=len(predictions))
    if target not in labels.columns:
        raise DataError(
            f"the label rows of {namespace} have no column {target!r} (the dataset's target; columns: "
            f"{sorted(labels.columns)}); point monitoring.labels.source at partitions that carry the outcome"
        )
    labelled = labels[labels[target].notna()]
    if join == "prediction_id":
        if "prediction_id" not in labelled.columns:
            raise DataError(
                f"monitoring.labels.join is 'prediction_id' but the label rows of {namespace} have no prediction_id "
                f"column (columns: {sorted(labels.columns)}); add it, or set labels.join: key"
            )
        ids = labelled["prediction_id"].astype("str").tolist()
    else:
        missing = [c for c in key_columns if c not in labelled.columns]
        if missing or not key_columns:
            raise DataError(
                f"the label rows of {namespace} lack the key column(s) {missing or list(key_columns)} that "
                f"scoring.key_columns names (columns: {sorted(labels.columns)}); add them to the label partitions, "
                "or set monitoring.labels.join: prediction_id"
            )
        ids = prediction_ids(labelled, list(key_columns), namespace=namespace)
    outcome = pd.DataFrame({"prediction_id": ids, LABEL: labelled[target].to_numpy(dtype="float64")})
    outcome = outcome.drop_duplicates("prediction_id", keep="last")  # a label corrected later wins
    logged = predictions[["prediction_id", PARTITION_COLUMN, "prediction", "model_version"]]
    logged = logged.drop_duplicates("prediction_id", keep="last")  # a request logged twice counts once
    rows = logged.merge(outcome, on="prediction_id", how="inner", validate="one_to_one")
    return JoinedLabels(
        rows=rows.reset_index(drop=True),
        labels_read=len(outcome),
        unmatched_labels=len(outcome) - len(rows),
        unlabelled=len(logged) - len(rows),
    )
