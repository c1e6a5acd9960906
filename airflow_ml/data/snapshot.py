"""Immutable, content-hashed snapshots of a city's partitioned data.

A source is a folder (``file://``, a local path, or any fsspec URL such as ``s3://``) of hive-style
partitions ``date=YYYY-MM-DD/*.parquet`` (or ``*.csv``). A snapshot copies the partitions of the run's
window into ``<snapshot_root>/<template>/<city>/<run_id>/data.parquet`` (always parquet) and writes
``manifest.json`` last: a folder with a manifest is complete and never rewritten, so a retry of the same run
reuses it. The folder is keyed by the DAG (template and city), not the city alone: two templates that share a
city id and a schedule get the same ``scheduled__…`` run id, and must never read each other's rows.
Every function takes ``storage_options`` (see :mod:`airflow_ml.data.storage`) for credentials.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec import AbstractFileSystem

from airflow_ml.data import conformance
from airflow_ml.data import snapshot_parts as parts_kind
from airflow_ml.data.contract import DataContract
from airflow_ml.data.json_text import dumps_indented
from airflow_ml.data.partitions import list_partitions as list_partitions  # re-exported: tests import it here
from airflow_ml.data.partitions import read_file
from airflow_ml.data.partitions import read_files as read_files  # re-exported: its home before partitions
from airflow_ml.data.row_hashing import content_hash as content_hash  # re-exported: its home before row_hashing
from airflow_ml.data.snapshot_window import Window, plan_window
from airflow_ml.data.snapshot_window import select_window as select_window  # re-exported: its home before
from airflow_ml.data.storage import StorageOptions, display, filesystem, is_local, put_whole, storage_errors
from airflow_ml.data.storage import writing as _writing  # its home before storage
from airflow_ml.exceptions import DataError, SourceOutsideDataRoot

MANIFEST = "manifest.json"
DATA_FILE = "data.parquet"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
log = logging.getLogger(__name__)


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
    #: The template of the DAG that took the snapshot ("" in manifests written before snapshots were keyed by it).
    template: str = ""
    #: The row filters of ``dataset.filters``, in order, each with the rows it ``dropped``.
    filters: list[dict[str, Any]] = field(default_factory=list)
    #: Days of the window without a partition, as ``YYYY-MM-DD`` or ``first..last`` ranges.
    missing_days: list[str] = field(default_factory=list)
    #: Per partition date, the rows whose time column falls on another day (kept, and reported).
    rows_outside_partition: dict[str, int] = field(default_factory=dict)
    #: ``file`` (one ``data.parquet``) or ``partitioned`` (the listed ``parts``); see :mod:`.snapshot_parts`.
    kind: str = parts_kind.FILE_KIND
    #: How ``content_hash`` was computed: ``rows-sha256`` or ``parts-sha256`` (see :mod:`.snapshot_parts`).
    hash_scheme: str = parts_kind.ROWS_SCHEME
    #: A partitioned snapshot's part files in order, each ``{"file", "rows", "hash"}``.
    parts: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form.

        A one-file manifest leaves out ``kind``, ``hash_scheme`` and ``parts``: airflow-ml before partitioned
        snapshots fails on them, and a rollback or workers of mixed versions must still read local snapshots.
        """
        data = asdict(self)
        if self.kind == parts_kind.FILE_KIND and self.hash_scheme == parts_kind.ROWS_SCHEME and not self.parts:
            for name in ("kind", "hash_scheme", "parts"):
                del data[name]
        return data

    @property
    def filtered_rows(self) -> int:
        """How many rows the row filters dropped."""
        return sum(int(f.get("dropped", 0)) for f in self.filters)

    def warnings(self) -> list[str]:
        """What the snapshot's task log should warn about: days missing, rows outside their partition."""
        found = []
        if self.missing_days:
            days = conformance.count_days(self.missing_days)
            found.append(
                f"{days} day(s) inside the run's window have no partition, so no rows in the snapshot: "
                f"{', '.join(self.missing_days)}"
            )
        if self.rows_outside_partition:
            shown = ", ".join(f"date={d}: {n}" for d, n in list(self.rows_outside_partition.items())[:10])
            more = " ..." if len(self.rows_outside_partition) > 10 else ""
            found.append(
                f"{sum(self.rows_outside_partition.values())} row(s) have a time outside their date= partition "
                f"(kept): {shown}{more}"
            )
        return found


def safe_segment(value: str) -> str:
    """A path segment that cannot escape its parent (``..``, slashes and colons are replaced)."""
    cleaned = _UNSAFE.sub("_", value).strip("._") or "_"
    return cleaned[:200]


def snapshot_location(snapshot_root: str, template: str, city: str, run_id: str) -> str:
    """Where the snapshot of a DAG's run lives: ``<root>/<template>/<city>/<readable run id>-<hash of run id>``.

    The short hash keeps two run ids that read alike once sanitised (``a:b`` and ``a+b``) apart.
    """
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:10]
    dag = f"{safe_segment(template)}/{safe_segment(city)}"
    return f"{snapshot_root.rstrip('/')}/{dag}/{safe_segment(run_id)}-{digest}"


def resolve_source(pattern: str, *, data_root: str, city: str) -> str:
    """Fill ``{data_root}`` and ``{city}`` into a template's source pattern.

    Raises:
        SourceOutsideDataRoot: when the pattern has a ``..`` segment (lint refuses it too).
        DataError: when the city id is not a safe path segment.
    """
    if safe_segment(city) != city:
        raise DataError(f"city id {city!r} is not a safe path segment; use lower-case letters, digits and '_'")
    if ".." in re.split(r"[/\\]", pattern):
        raise SourceOutsideDataRoot(
            f"dataset.source {pattern!r} has a '..' segment, which may lead out of the data root {data_root!r}; "
            "a snapshot reads only files under the data root: write the source from {data_root} down without "
            "'..' (e.g. '{data_root}/raw/trips/{city}')"
        )
    return pattern.format(data_root=data_root.rstrip("/"), city=city)


def take_snapshot(
    source: str | Sequence[str],
    snapshot_root: str,
    *,
    template: str,
    city: str,
    run_id: str,
    fmt: str = "parquet",
    window_days: int | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    parse_dates: Sequence[str] = (),
    storage_options: StorageOptions | None = None,
    contract: DataContract | None = None,
    data_root: str | None = None,
) -> Manifest:
    """Copy the run's partitions into an immutable snapshot and return its manifest.

    A snapshot that already has a manifest (a retry of the same run) is returned as it is, nothing is
    rewritten, once its manifest shows that it belongs to the same template, city and run. Every partition
    of the window must hold rows: an empty one means a failed upload. Before anything is written, the rows
    are checked against ``contract`` and its row filters applied: data that breaks it leaves no snapshot.

    Args:
        source: The source folder, or several (a fallback parent's members): their partitions of the window
            are read in order and concatenated; the window is chosen on the union of their dates.
        template: The template of the DAG; with ``city`` it keys the snapshot folder.
        parse_dates: Columns of CSV files to parse as date-times (ISO 8601); parquet keeps its own types.
        storage_options: Options of the source's and the snapshot root's filesystems, by protocol.
        contract: The columns the DAG needs and its row filters (none checked when None).
        data_root: Where a local source must lie and its symbolic links may point (see
            :mod:`airflow_ml.data.partitions`); None: links only inside the source.

    Raises:
        DataContractError: for a column of the contract that some partition files lack, types that differ
            between partition files, a column of the contract that is missing or unusable, or a filter that
            keeps no row; a retry cannot fix those.
        SourceOutsideDataRoot: for a local source, or a link in it, that leads out of the data root.
        DataError: for a missing source or bucket, an empty window or partition, an unreadable file or an
            unreachable store, naming the path.
    """
    uri = snapshot_location(snapshot_root, template, city, run_id)
    existing = existing_snapshot(uri, template=template, city=city, run_id=run_id, storage_options=storage_options)
    if existing is not None:
        return existing
    fs, folder = filesystem(uri, storage_options)
    contract = contract or DataContract()
    sources = [source] if isinstance(source, str) else list(source)
    window = plan_window(
        sources, fmt, window_days=window_days, start=start, end=end, storage_options=storage_options,
        data_root=data_root,
    )  # fmt: skip
    dates = window.dates
    files: list[tuple[str, pd.DataFrame]] = []
    outside: dict[str, int] = {}
    for src, partitions in window.by_source.items():
        src_fs, _ = filesystem(src, storage_options)
        for day in dates:
            if day not in partitions:
                continue  # several sources need not share every day
            read = [
                (
                    display(src_fs, path),
                    read_file(src_fs, path, fmt, parse_dates=parse_dates, storage_options=storage_options),
                )
                for path in partitions[day]
            ]
            rows = sum(len(frame) for _, frame in read)
            if not rows:
                raise DataError(
                    f"partition '{src.rstrip('/')}/date={day.isoformat()}' holds no rows; "
                    "re-upload the day's files, or delete the partition if the day truly has no data"
                )
            late = sum(conformance.rows_outside_partition(f, contract.time_column, day) for _, f in read)
            if late:
                outside[day.isoformat()] = outside.get(day.isoformat(), 0) + late
            files.extend(read)
    conformance.check_file_columns(files, contract)
    conformance.check_file_types(files)
    frame = pd.concat([f for _, f in files], ignore_index=True, sort=False)
    conformance.check_columns(frame, contract)
    frame, applied = conformance.apply_filters(frame, contract.filters)
    conformance.check_values(frame, contract)
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer)
    manifest = Manifest(
        template=template,
        city=city,
        run_id=run_id,
        uri=uri,
        source=" + ".join(sources),
        row_count=len(frame),
        columns={c: str(t) for c, t in frame.dtypes.items()},
        content_hash=content_hash(frame),
        partitions=[d.isoformat() for d in dates],
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        extra=source_extra(window),
        filters=applied,
        missing_days=window.missing_days(),
        rows_outside_partition=outside,
    )
    with storage_errors(uri, storage_options), _writing(uri, "AIRFLOW_ML_DATA_ROOT"):
        if is_local(fs):  # object stores have no folders to make (and s3fs would create a missing bucket)
            fs.makedirs(folder, exist_ok=True)
        put_whole(fs, f"{folder}/{DATA_FILE}", buffer.getvalue())
        # The manifest goes last: its presence is what marks the snapshot complete.
        put_whole(fs, f"{folder}/{MANIFEST}", json.dumps(manifest.to_dict(), indent=1).encode())
    if is_local(fs):
        for name in (DATA_FILE, MANIFEST):
            fs.chmod(f"{folder}/{name}", 0o444)
    return manifest


def existing_snapshot(
    uri: str, *, template: str, city: str, run_id: str, storage_options: StorageOptions | None = None
) -> Manifest | None:
    """The manifest of the snapshot already at ``uri`` (a retry of the same run), or None when there is none.

    Raises:
        DataError: when the snapshot there belongs to another template, city or run: it is never rewritten.
    """
    fs, folder = filesystem(uri, storage_options)
    with storage_errors(uri, storage_options):
        if not fs.exists(f"{folder}/{MANIFEST}"):
            return None
    existing = load_manifest(uri, storage_options=storage_options)
    if (existing.template, existing.city, existing.run_id) != (template, city, run_id):
        owner = f"{existing.template or '(no template)'}.{existing.city}"
        raise DataError(
            f"snapshot {uri!r} belongs to run {existing.run_id!r} of {owner!r}, not to run {run_id!r} of "
            f"'{template}.{city}'; snapshots are immutable: move that folder away or give the run another id"
        )
    return existing


def source_extra(window: Window) -> dict[str, Any]:
    """The manifest's ``extra`` for a fallback parent's several sources (empty for one source)."""
    return {"sources": window.sources, "skipped_sources": window.skipped} if len(window.sources) > 1 else {}


def load_manifest(uri: str, *, storage_options: StorageOptions | None = None) -> Manifest:
    """Read the manifest of the snapshot at ``uri``."""
    fs, folder = filesystem(uri, storage_options)
    try:
        with storage_errors(uri, storage_options):
            data = json.loads(fs.cat_file(f"{folder}/{MANIFEST}"))
    except FileNotFoundError:
        raise DataError(f"snapshot {uri!r} has no manifest: it is missing or incomplete") from None
    return manifest_from_dict(data, uri)


def manifest_from_dict(data: dict[str, Any], where: str) -> Manifest:
    """The manifest in ``data`` (a ``manifest.json``), checking its kind before anything else.

    Unknown fields (from a newer airflow-ml) are ignored with a debug log; only an unknown kind is refused.

    Raises:
        DataError: for a manifest of a kind or hash scheme this version cannot read, or one missing a field.
    """
    kind = data.get("kind", parts_kind.FILE_KIND)
    scheme = data.get("hash_scheme", parts_kind.ROWS_SCHEME)
    try:
        parts_kind.check_kind(kind, scheme, where)
    except ValueError as exc:
        raise DataError(str(exc)) from None
    known = {f.name for f in fields(Manifest)}
    unknown = sorted(set(data) - known)
    if unknown:
        log.debug("manifest of %r: ignoring field(s) %s (written by a newer airflow-ml)", where, unknown)
    try:
        return Manifest(**{k: v for k, v in data.items() if k in known})
    except TypeError as exc:
        raise DataError(
            f"snapshot {where!r} has a manifest this airflow-ml cannot read ({exc}); take the snapshot again"
        ) from None


def read_snapshot(
    uri: str, columns: list[str] | None = None, *, storage_options: StorageOptions | None = None
) -> pd.DataFrame:
    """Read the rows of the snapshot at ``uri`` (optionally only some columns), into this process.

    Arrow's buffers are freed column by column as they are converted (a 67 MB frame peaks at +149 MB, not +190).
    A partitioned snapshot (taken on Dask) is read part by part, as its manifest lists them, and concatenated:
    it must fit this process (``dask_snapshot.open_snapshot`` reads it as a Dask frame instead).
    """
    try:
        with _data_file(uri, storage_options) as handle:
            table = pq.read_table(handle, columns=columns)
    except _Partitioned as found:
        with storage_errors(uri, storage_options):
            parts = (pq.read_table(path, columns=columns, filesystem=found.fs) for path in found.paths)
            table = pa.concat_tables(parts, promote_options="default")
    # self_destruct: the table is never used again (nothing else holds it), as the option requires.
    frame = table.to_pandas(split_blocks=True, self_destruct=True)
    del table
    pa.default_memory_pool().release_unused()
    return frame


def read_snapshot_schema(uri: str, *, storage_options: StorageOptions | None = None) -> pd.DataFrame:
    """The columns of the snapshot at ``uri`` with their types and no rows, from the parquet footer(s) alone."""
    try:
        with _data_file(uri, storage_options) as handle:
            return pq.read_schema(handle).empty_table().to_pandas()
    except _Partitioned as found:
        with storage_errors(uri, storage_options):  # typed as read_snapshot's concatenation types them
            return (
                pa.unify_schemas([pq.read_schema(p, filesystem=found.fs) for p in found.paths])
                .empty_table()
                .to_pandas()
            )


@dataclass
class _Partitioned(Exception):
    """How :func:`_data_file` hands over a partitioned snapshot's part files (``paths`` on ``fs``) in order."""

    fs: AbstractFileSystem
    paths: list[str]


@contextlib.contextmanager
def _data_file(uri: str, storage_options: StorageOptions | None) -> Iterator[Any]:
    fs, folder = filesystem(uri, storage_options)
    try:
        with storage_errors(uri, storage_options), fs.open(f"{folder}/{DATA_FILE}", "rb") as handle:
            yield handle
    except FileNotFoundError:
        if fs.exists(f"{folder}/{MANIFEST}"):
            manifest = load_manifest(uri, storage_options=storage_options)
            if manifest.kind == parts_kind.PARTITIONED_KIND:
                raise _Partitioned(fs, [f"{folder}/{p['file']}" for p in manifest.parts]) from None
        raise DataError(
            f"snapshot {uri!r} has no {DATA_FILE}: it is missing or was never completed; run the snapshot task again"
        ) from None


def write_json(uri: str, name: str, payload: dict[str, Any], *, storage_options: StorageOptions | None = None) -> str:
    """Write a JSON record (validation verdict, gate decision) beside a snapshot; returns its URI.

    The text is ``json.dumps(payload, indent=1, default=str)``'s, encoded in C (:mod:`airflow_ml.data.json_text`).
    """
    return write_text(uri, name, dumps_indented(payload), storage_options=storage_options)


def write_text(uri: str, name: str, text: str, *, storage_options: StorageOptions | None = None) -> str:
    """Write a text file (a report) beside a snapshot; returns its URI."""
    fs, folder = filesystem(uri, storage_options)
    with storage_errors(uri, storage_options), _writing(uri, "AIRFLOW_ML_DATA_ROOT"):
        put_whole(fs, f"{folder}/{name}", text.encode("utf-8"))
    return f"{uri}/{name}"
