"""The drift history of a city: per snapshot, column and statistic, the drift since the city's previous snapshot.

One parquet file per city, ``<data_root>/drift_history/<template>/<city>.parquet``, one row per (snapshot hash,
column, statistic) with the value, its p-value against the city's earlier values and the q-value of the run's
adjustment. A rerun of the same snapshot replaces its rows; a write is whole or not at all (a local file is
written aside and renamed, an object store's PUT is atomic). A city's first snapshot is recorded too, with no
value, so that the next run knows which snapshot came before it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from airflow_ml.data.snapshot import put_whole, safe_segment
from airflow_ml.data.storage import StorageOptions, filesystem, is_local, storage_errors

HISTORY_DIR = "drift_history"
#: The columns of a history file, in order.
COLUMNS = (
    "snapshot_hash",
    "snapshot_uri",
    "recorded_at",
    "season",
    "previous_hash",
    "column",
    "kind",
    "statistic",
    "value",
    "p_value",
    "basis",
    "n_history",
    "q_value",
    "drift_run_id",
)
_SCHEMA = pa.schema(
    [
        *((name, pa.string()) for name in COLUMNS[:8]),
        ("value", pa.float64()),
        ("p_value", pa.float64()),
        ("basis", pa.string()),
        ("n_history", pa.int64()),
        ("q_value", pa.float64()),
        ("drift_run_id", pa.string()),
    ]
)


def data_root_of(snapshot_uri: str) -> str:
    """The data root of a snapshot at ``<data_root>/snapshots/<template>/<city>/<run>``.

    Raises:
        ValueError: when the URI is not laid out that way (the history would have no home).
    """
    parts = snapshot_uri.rstrip("/").rsplit("/", 4)
    if len(parts) != 5 or parts[1] != "snapshots":
        raise ValueError(
            f"snapshot {snapshot_uri!r} is not under <data_root>/snapshots/<template>/<city>/<run>: the drift "
            "history cannot be placed; take snapshots with the snapshot task, or set drift.calibration.enabled: false"
        )
    return parts[0]


def history_folder(data_root: str, template: str) -> str:
    """``<data_root>/drift_history/<template>``."""
    return f"{data_root.rstrip('/')}/{HISTORY_DIR}/{safe_segment(template)}"


def history_uri(data_root: str, template: str, city: str) -> str:
    """``<data_root>/drift_history/<template>/<city>.parquet``."""
    return f"{history_folder(data_root, template)}/{safe_segment(city)}.parquet"


def empty() -> pd.DataFrame:
    """A history without rows, with every column."""
    return _SCHEMA.empty_table().to_pandas()


def read_history(uri: str, *, storage_options: StorageOptions | None = None) -> pd.DataFrame:
    """The rows of the history file at ``uri`` (none when it does not exist yet), oldest first."""
    fs, path = filesystem(uri, storage_options)
    with storage_errors(uri, storage_options):
        if not fs.exists(path):
            return empty()
        with fs.open(path, "rb") as handle:
            frame = pq.read_table(handle).to_pandas()
    return frame.sort_values("recorded_at", kind="stable").reset_index(drop=True)


def write_rows(
    uri: str, rows: list[dict[str, Any]], snapshot_hash: str, *, storage_options: StorageOptions | None = None
) -> pd.DataFrame:
    """Replace the rows of ``snapshot_hash`` in the history at ``uri`` by ``rows``; returns the whole history."""
    kept = read_history(uri, storage_options=storage_options)
    kept = kept[kept["snapshot_hash"] != snapshot_hash]
    new = pd.DataFrame([{name: row.get(name) for name in COLUMNS} for row in rows], columns=list(COLUMNS))
    frame = pd.concat([kept, new], ignore_index=True) if len(kept) else new
    table = pa.Table.from_pandas(frame[list(COLUMNS)], schema=_SCHEMA, preserve_index=False)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    ensure_folder(uri.rsplit("/", 1)[0], storage_options=storage_options)
    fs, path = filesystem(uri, storage_options)
    with storage_errors(uri, storage_options):
        put_whole(fs, path, buffer.getvalue())
    return frame


def ensure_folder(uri: str, *, storage_options: StorageOptions | None = None) -> None:
    """Create the folder ``uri`` on a local disk (an object store needs none)."""
    fs, path = filesystem(uri, storage_options)
    if is_local(fs):
        with storage_errors(uri, storage_options):
            fs.makedirs(path, exist_ok=True)


@dataclass(frozen=True)
class Previous:
    """The snapshot a city's history holds before this one."""

    snapshot_hash: str
    snapshot_uri: str


def previous_snapshots(history: pd.DataFrame, snapshot_hash: str) -> list[Previous]:
    """The snapshots recorded before ``snapshot_hash``, newest first (each once)."""
    earlier = history[history["snapshot_hash"] != snapshot_hash]
    latest = earlier.drop_duplicates("snapshot_hash", keep="last").iloc[::-1]
    return [Previous(str(h), str(u)) for h, u in zip(latest["snapshot_hash"], latest["snapshot_uri"], strict=True)]


def latest_rows(history: pd.DataFrame) -> pd.DataFrame:
    """The rows of the newest snapshot of a history."""
    if history.empty:
        return history
    newest = history["snapshot_hash"].iloc[-1]
    return history[history["snapshot_hash"] == newest]


def fleet_latest(
    data_root: str, template: str, *, skip: str | None = None, storage_options: StorageOptions | None = None
) -> dict[str, pd.DataFrame]:
    """Per city of ``template`` with a history (but ``skip``), the rows of its newest snapshot."""
    folder = history_folder(data_root, template)
    fs, path = filesystem(folder, storage_options)
    with storage_errors(folder, storage_options):
        if not fs.exists(path):
            return {}
        files = sorted(f for f in fs.ls(path, detail=False) if str(f).endswith(".parquet"))
    out = {}
    for file in files:
        city = str(file).rsplit("/", 1)[-1].removesuffix(".parquet")
        if city == (safe_segment(skip) if skip else None):
            continue
        rows = latest_rows(read_history(f"{folder}/{city}.parquet", storage_options=storage_options))
        if not rows.empty:
            out[city] = rows
    return out
