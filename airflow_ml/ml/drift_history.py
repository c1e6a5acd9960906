"""The drift history of a city: per snapshot, column and statistic, the drift since the city's previous snapshot.

One parquet file per city, ``<data_root>/drift_history/<template>/<city>.parquet``, one row per (snapshot hash,
column, statistic) with the value, the values each side of the comparison held (``reference_n``,
``current_n``: non-missing values for PSI and the JS distance, rows for the missing rate) and both held
(``overlap_n``: the rows of the days both snapshots cover), how this snapshot's rows were chosen
(``compare_mode``: ``new_rows`` or ``whole_snapshot``), its p-value against
the city's earlier values and the q-value of the run's adjustment. Files written before the counts were kept
are read with the counts missing. A rerun of the same snapshot replaces its rows; a write is whole or not at all
(a local file is written aside and renamed, an object store's PUT is atomic). A city's first snapshot is
recorded too, with no value, so that the next run knows which snapshot came before it.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from airflow_ml.data.snapshot import put_whole, safe_segment
from airflow_ml.data.storage import StorageOptions, filesystem, is_local, storage_errors

log = logging.getLogger(__name__)

HISTORY_DIR = "drift_history"
#: The folder beside the histories holding each city's newest snapshot's rows.
LATEST_DIR = "latest"
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
    "reference_n",
    "current_n",
    "overlap_n",
    "compare_mode",
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
        ("reference_n", pa.int64()),
        ("current_n", pa.int64()),
        ("overlap_n", pa.int64()),
        ("compare_mode", pa.string()),
    ]
)
#: The columns a file written before row counts (then overlaps and compare modes) were kept lacks, read as
#: missing (see drift_calibration).
_ADDED_LATER = {"reference_n": "Int64", "current_n": "Int64", "overlap_n": "Int64", "compare_mode": "object"}


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
            frame = _with_all_columns(pq.read_table(handle).to_pandas())
    return frame.sort_values("recorded_at", kind="stable").reset_index(drop=True)


def _with_all_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the columns added since it was written, missing (a history older than its row counts)."""
    for name, dtype in _ADDED_LATER.items():
        if name not in frame:
            frame[name] = pd.array([None] * len(frame), dtype=dtype)
    return frame


def write_rows(
    uri: str, rows: list[dict[str, Any]], snapshot_hash: str, *, storage_options: StorageOptions | None = None
) -> pd.DataFrame:
    """Replace the rows of ``snapshot_hash`` in the history at ``uri`` by ``rows``; returns the whole history.

    The rows of the newest snapshot are also written to ``latest/<city>.parquet`` beside the histories, with the
    city in a column, so that reading the fleet's newest p-values reads one small file per city.
    """
    history = read_history(uri, storage_options=storage_options)
    rerun = history[history["snapshot_hash"] == snapshot_hash]
    kept = history[history["snapshot_hash"] != snapshot_hash]
    new = pd.DataFrame([{name: row.get(name) for name in COLUMNS} for row in rows], columns=list(COLUMNS))
    if len(rerun):  # a rerun keeps its snapshot's place: it never becomes newer than the snapshots after it
        new["recorded_at"] = rerun["recorded_at"].min()
    frame = pd.concat([kept, new], ignore_index=True) if len(kept) else new
    frame = frame.sort_values("recorded_at", kind="stable").reset_index(drop=True)
    table = pa.Table.from_pandas(frame[list(COLUMNS)], schema=_SCHEMA, preserve_index=False)
    folder, name = uri.rsplit("/", 1)
    _put_table(uri, table, storage_options)
    latest = pa.Table.from_pandas(latest_rows(frame)[list(COLUMNS)], schema=_SCHEMA, preserve_index=False)
    city = name.removesuffix(".parquet")
    _put_table(
        f"{folder}/{LATEST_DIR}/{name}", latest.append_column("city", pa.array([city] * len(latest))), storage_options
    )
    return frame


def _put_table(uri: str, table: pa.Table, storage_options: StorageOptions | None) -> None:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    ensure_folder(uri.rsplit("/", 1)[0], storage_options=storage_options)
    fs, path = filesystem(uri, storage_options)
    with storage_errors(uri, storage_options):
        put_whole(fs, path, buffer.getvalue())


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


def before(history: pd.DataFrame, snapshot_hash: str) -> pd.DataFrame:
    """The rows recorded before ``snapshot_hash``'s: all others for a new snapshot, for a rerun only the earlier
    ones (a snapshot rerun after later ones is compared, and judged, as it was the first time)."""
    mine = history[history["snapshot_hash"] == snapshot_hash]
    if mine.empty:
        return history
    return history[history["recorded_at"] < mine["recorded_at"].min()]


def previous_snapshots(history: pd.DataFrame, snapshot_hash: str) -> list[Previous]:
    """The snapshots recorded before ``snapshot_hash``, newest first (each once)."""
    earlier = before(history, snapshot_hash)
    earlier = earlier[earlier["snapshot_hash"] != snapshot_hash]
    latest = earlier.drop_duplicates("snapshot_hash", keep="last").iloc[::-1]
    return [Previous(str(h), str(u)) for h, u in zip(latest["snapshot_hash"], latest["snapshot_uri"], strict=True)]


def latest_rows(history: pd.DataFrame) -> pd.DataFrame:
    """The rows of the newest snapshot of a history."""
    if history.empty:
        return history
    newest = history["snapshot_hash"].iloc[-1]
    return history[history["snapshot_hash"] == newest]


def fleet_latest(
    data_root: str,
    template: str,
    *,
    skip: str | None = None,
    columns: Sequence[str] | None = None,
    storage_options: StorageOptions | None = None,
) -> pd.DataFrame:
    """The rows of the newest snapshot of every city of ``template`` with a history (but ``skip``).

    Reads ``latest/`` (one small file per city, written with each history) in one pass; only ``columns`` when
    given (of :data:`COLUMNS` and ``city``: a reader of a few columns of a 1,000-city fleet decodes and
    converts only those).

    Returns:
        The history's columns (or ``columns``) and ``city``; no row when no other city has a history.
    """
    import pyarrow.dataset as ds

    wanted = None if columns is None else list(columns)
    folder = f"{history_folder(data_root, template)}/{LATEST_DIR}"
    fs, path = filesystem(folder, storage_options)
    with storage_errors(folder, storage_options):
        files = (
            sorted(str(f) for f in fs.ls(path, detail=False) if str(f).endswith(".parquet")) if fs.exists(path) else []
        )
        if skip:
            files = [f for f in files if f.rsplit("/", 1)[-1] != f"{safe_segment(skip)}.parquet"]
        if not files:
            frame = empty().assign(city=pd.Series(dtype=object))
            return frame if wanted is None else frame[wanted]
        try:
            # The whole schema given: a city's file written before a column was added reads it as missing.
            schema = _SCHEMA.append(pa.field("city", pa.string()))
            dataset = ds.dataset(files, schema=schema, format="parquet", filesystem=fs)
            return dataset.to_table(columns=wanted).to_pandas()
        except (pa.ArrowException, OSError, ValueError, TypeError):
            frame = _readable_files(fs, files)  # one city's broken file must not take the fleet's calibration down
            return frame if wanted is None else frame[wanted]


def _readable_files(fs: Any, files: list[str]) -> pd.DataFrame:
    """Every ``latest/`` file that can be read, one by one; each one that cannot is logged by name and skipped."""
    frames = []
    for file in files:
        try:
            with fs.open(file, "rb") as handle:
                frames.append(_with_all_columns(pq.read_table(handle).to_pandas()))
        except (pa.ArrowException, OSError, ValueError, TypeError) as exc:
            log.warning("drift history: skipping the unreadable %s (%s); its city's next run rewrites it", file, exc)
    if not frames:
        return empty().assign(city=pd.Series(dtype=object))
    return pd.concat(frames, ignore_index=True)
