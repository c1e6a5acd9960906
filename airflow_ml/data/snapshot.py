"""Immutable, content-hashed snapshots of a city's partitioned data.

A source is a folder (``file://``, a local path, or any fsspec URL such as ``s3://``) of hive-style
partitions ``date=YYYY-MM-DD/*.parquet``. A snapshot copies the partitions of the run's window into
``<snapshot_root>/<city>/<run_id>/data.parquet`` and writes ``manifest.json`` last: a folder with a
manifest is complete and never rewritten, so a retry of the same run reuses it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from airflow_ml.exceptions import DataError

MANIFEST = "manifest.json"
DATA_FILE = "data.parquet"
_PARTITION = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Manifest:
    """What a snapshot holds: enough to trace every figure back to the exact rows."""

    city: str
    run_id: str
    uri: str
    source: str
    row_count: int
    columns: dict[str, str]
    content_hash: str
    partitions: list[str]
    created_at: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        return asdict(self)


def safe_segment(value: str) -> str:
    """A path segment that cannot escape its parent (``..``, slashes and colons are replaced)."""
    cleaned = _UNSAFE.sub("_", value).strip("._") or "_"
    return cleaned[:200]


def snapshot_location(snapshot_root: str, city: str, run_id: str) -> str:
    """Where the snapshot of ``run_id`` lives: ``<root>/<city>/<readable run id>-<hash of run id>``.

    The short hash keeps two run ids that read alike once sanitised (``a:b`` and ``a+b``) apart.
    """
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:10]
    return f"{snapshot_root.rstrip('/')}/{safe_segment(city)}/{safe_segment(run_id)}-{digest}"


def resolve_source(pattern: str, *, data_root: str, city: str) -> str:
    """Fill ``{data_root}`` and ``{city}`` into a template's source pattern."""
    if safe_segment(city) != city:
        raise DataError(f"city id {city!r} is not a safe path segment; use lower-case letters, digits and '_'")
    return pattern.format(data_root=data_root.rstrip("/"), city=city)


def list_partitions(source: str, fmt: str = "parquet") -> dict[dt.date, list[str]]:
    """Map each ``date=`` partition under ``source`` to its data files, sorted.

    Raises:
        DataError: when the source folder is missing or holds no partition.
    """
    fs, root = fsspec.core.url_to_fs(source)
    if not fs.isdir(root):
        raise DataError(
            f"data source {source!r} does not exist; check dataset.source in the template and the data root"
        )
    partitions: dict[dt.date, list[str]] = {}
    for entry in fs.ls(root, detail=False):
        match = _PARTITION.match(entry.rstrip("/").rsplit("/", 1)[-1])
        if not match:
            continue
        files = sorted(f for f in fs.ls(entry, detail=False) if f.endswith(f".{fmt}"))
        if not files:
            raise DataError(f"partition {entry!r} holds no .{fmt} file; remove the empty folder or fill it")
        partitions[dt.date.fromisoformat(match.group(1))] = files
    if not partitions:
        raise DataError(f"data source {source!r} holds no date=YYYY-MM-DD partition with .{fmt} files")
    return dict(sorted(partitions.items()))


def select_window(
    dates: list[dt.date], *, window_days: int | None, start: dt.date | None = None, end: dt.date | None = None
) -> list[dt.date]:
    """The partition dates a run uses: within [start, end] when given, else the latest ``window_days`` days."""
    chosen = [d for d in dates if (start is None or d >= start) and (end is None or d <= end)]
    if window_days is not None and chosen and start is None:
        first = chosen[-1] - dt.timedelta(days=window_days - 1)
        chosen = [d for d in chosen if d >= first]
    return chosen


def content_hash(frame: pd.DataFrame) -> str:
    """SHA-256 of the rows and the schema, independent of how the file was encoded."""
    digest = hashlib.sha256()
    digest.update(json.dumps({c: str(t) for c, t in frame.dtypes.items()}, sort_keys=True).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def take_snapshot(
    source: str,
    snapshot_root: str,
    *,
    city: str,
    run_id: str,
    fmt: str = "parquet",
    window_days: int | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> Manifest:
    """Copy the run's partitions into an immutable snapshot and return its manifest.

    A snapshot that already has a manifest (a retry of the same run) is returned as it is.

    Raises:
        DataError: for a missing source, an empty window or unreadable files, naming the path.
    """
    uri = snapshot_location(snapshot_root, city, run_id)
    fs, folder = fsspec.core.url_to_fs(uri)
    if fs.exists(f"{folder}/{MANIFEST}"):
        existing = load_manifest(uri)
        if existing.run_id != run_id or existing.city != city:
            raise DataError(
                f"snapshot {uri!r} belongs to run {existing.run_id!r} of {existing.city!r}, not to run {run_id!r}; "
                "snapshots are immutable: give the run another id"
            )
        return existing
    partitions = list_partitions(source, fmt)
    dates = select_window(list(partitions), window_days=window_days, start=start, end=end)
    if not dates:
        raise DataError(
            f"no partition of {source!r} falls in the window start={start} end={end}; "
            f"available dates run from {min(partitions)} to {max(partitions)}"
        )
    frame = _read_files(source, [f for d in dates for f in partitions[d]], fmt)
    if frame.empty:
        raise DataError(f"the partitions {dates[0]}..{dates[-1]} of {source!r} hold no rows")
    fs.makedirs(folder, exist_ok=True)
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer)
    fs.pipe_file(f"{folder}/{DATA_FILE}", buffer.getvalue())
    manifest = Manifest(
        city=city,
        run_id=run_id,
        uri=uri,
        source=source,
        row_count=len(frame),
        columns={c: str(t) for c, t in frame.dtypes.items()},
        content_hash=content_hash(frame),
        partitions=[d.isoformat() for d in dates],
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )
    # The manifest goes last: its presence is what marks the snapshot complete.
    fs.pipe_file(f"{folder}/{MANIFEST}", json.dumps(manifest.to_dict(), indent=1).encode())
    if isinstance(fs, LocalFileSystem):
        for name in (DATA_FILE, MANIFEST):
            fs.chmod(f"{folder}/{name}", 0o444)
    return manifest


def load_manifest(uri: str) -> Manifest:
    """Read the manifest of the snapshot at ``uri``."""
    fs, folder = fsspec.core.url_to_fs(uri)
    try:
        data = json.loads(fs.cat_file(f"{folder}/{MANIFEST}"))
    except FileNotFoundError:
        raise DataError(f"snapshot {uri!r} has no manifest: it is missing or incomplete") from None
    return Manifest(**data)


def read_snapshot(uri: str, columns: list[str] | None = None) -> pd.DataFrame:
    """Read the rows of the snapshot at ``uri`` (optionally only some columns)."""
    fs, folder = fsspec.core.url_to_fs(uri)
    with fs.open(f"{folder}/{DATA_FILE}", "rb") as handle:
        return pq.read_table(handle, columns=columns).to_pandas()


def write_json(uri: str, name: str, payload: dict[str, Any]) -> str:
    """Write a JSON record (validation verdict, gate decision) beside a snapshot; returns its URI."""
    fs, folder = fsspec.core.url_to_fs(uri)
    fs.pipe_file(f"{folder}/{name}", json.dumps(payload, indent=1, default=str).encode())
    return f"{uri}/{name}"


def _read_files(source: str, files: list[str], fmt: str) -> pd.DataFrame:
    fs, _ = fsspec.core.url_to_fs(source)
    frames = []
    for path in files:
        try:
            with fs.open(path, "rb") as handle:
                frames.append(pq.read_table(handle).to_pandas() if fmt == "parquet" else pd.read_csv(handle))
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise DataError(f"cannot read {path!r}: {exc}") from exc
    # Partitions of a broken batch may differ in columns; concat keeps them all so validation can say so.
    return pd.concat(frames, ignore_index=True, sort=False)
