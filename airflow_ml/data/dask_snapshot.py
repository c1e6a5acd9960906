"""Snapshots taken on a Dask cluster, for a client whose data does not fit one process: partitioned parquet.

The same run reads the same files as :func:`airflow_ml.data.snapshot.take_snapshot` (same window, same contract,
same manifest), but no process ever holds more than one source file: each file is one task on the cluster,
which reads it (with the project's own reader: ``dask.dataframe.read_parquet`` of a list of files sorts them
and takes the first file's schema, silently dropping a column the others have, which the contract must see),
checks it against the contract, applies the row filters, writes it as one part file and hashes it. The
client then judges the whole from the tasks' small summaries, in the order ``take_snapshot`` does: columns
missing from some files, types that differ between files, the contract's columns, filters that drop every
row, the values of a binary target. Data that breaks it leaves no snapshot.

Immutable and atomic: the parts are written aside (``data.partial-<token>/`` in the snapshot's folder),
renamed to ``data/`` in one step (a local disk), then the manifest is written last; a folder with a manifest
is complete and is never rewritten, and a retry of the same run returns it. On an object store, which has no
rename, the parts go to ``data/`` (each PUT whole) and the manifest, written last, lists exactly the parts
readers read. The hash scheme (``parts-sha256``) is described in :mod:`airflow_ml.data.snapshot_parts`.

Every function takes a ``distributed.Client`` (``client``), or None for Dask's default scheduler. The
workers open the sources and the snapshot root themselves: local paths must be on a disk they share, and
``storage_options`` (credentials included) travel with the tasks to the cluster's scheduler and workers, as
:func:`~airflow_ml.data.storage.shippable_options` makes them (an s3fs session replaced by its keys).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import uuid
from collections.abc import Sequence
from typing import Any

from airflow_ml.data import conformance
from airflow_ml.data import snapshot_parts as parts_kind
from airflow_ml.data.contract import DataContract
from airflow_ml.data.partitions import read_file
from airflow_ml.data.row_hashing import content_hash
from airflow_ml.data.snapshot import (
    MANIFEST,
    Manifest,
    existing_snapshot,
    load_manifest,
    put_whole,
    read_snapshot,
    snapshot_location,
    source_extra,
)
from airflow_ml.data.snapshot_window import plan_window
from airflow_ml.data.storage import (
    StorageOptions,
    display,
    filesystem,
    is_local,
    protocol,
    shippable_options,
    storage_errors,
)
from airflow_ml.exceptions import DataContractError, DataError


def take_partitioned_snapshot(
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
    client: Any = None,
) -> Manifest:
    """Copy the run's partitions into an immutable partitioned snapshot, one task per source file.

    Takes the arguments of :func:`airflow_ml.data.snapshot.take_snapshot`, and raises what it raises.

    Args:
        client: A ``distributed.Client``; None runs the tasks on Dask's default scheduler.

    Returns:
        The manifest (``kind: partitioned``, ``hash_scheme: parts-sha256``, its ``parts`` in order).
    """
    import dask

    uri = snapshot_location(snapshot_root, template, city, run_id)
    existing = existing_snapshot(uri, template=template, city=city, run_id=run_id, storage_options=storage_options)
    if existing is not None:
        return existing
    contract = contract or DataContract()
    sources = [source] if isinstance(source, str) else list(source)
    window = plan_window(
        sources, fmt, window_days=window_days, start=start, end=end, storage_options=storage_options,
        data_root=data_root,
    )  # fmt: skip
    fs, _ = filesystem(uri, storage_options)
    local = is_local(fs)
    # On a local disk the parts go aside and are renamed; an object store has no rename (see the module).
    staging = f"{uri}/data.partial-{uuid.uuid4().hex[:12]}" if local else f"{uri}/{parts_kind.PARTS_FOLDER}"
    files = [
        (src, day, path)
        for src, partitions in window.by_source.items()
        for day in window.dates
        for path in partitions.get(day, [])
    ]
    write = dask.delayed(_write_part, pure=False)
    shipped = shippable_options(storage_options, uri=uri)  # what travels with the tasks to the workers
    tasks = [
        write(i, src, path, day, fmt, list(parse_dates), contract, staging, shipped)
        for i, (src, day, path) in enumerate(files)
    ]
    with storage_errors(uri, storage_options):
        if local:
            fs.makedirs(_path(staging, storage_options), exist_ok=True)
    try:
        summaries = compute(tasks, client)
        applied = _judge(summaries, contract)
        _conform(summaries, staging, shipped, client)
    except BaseException:
        with contextlib.suppress(OSError), storage_errors(uri, storage_options):
            fs.rm(_path(staging, storage_options), recursive=True)
        raise
    parts = [{"file": s["file"], "rows": s["rows"], "hash": s["hash"]} for s in summaries if s["rows"]]
    outside: dict[str, int] = {}
    for s in summaries:
        if s["outside"]:
            outside[s["day"].isoformat()] = outside.get(s["day"].isoformat(), 0) + s["outside"]
    manifest = Manifest(
        template=template,
        city=city,
        run_id=run_id,
        uri=uri,
        source=" + ".join(sources),
        row_count=sum(p["rows"] for p in parts),
        columns={str(c): str(t) for c, t in _unified([s["empty"] for s in summaries]).dtypes.items()},
        content_hash=parts_kind.parts_hash(parts),
        partitions=[d.isoformat() for d in window.dates],
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        extra=source_extra(window),
        filters=applied,
        missing_days=window.missing_days(),
        rows_outside_partition=outside,
        kind=parts_kind.PARTITIONED_KIND,
        hash_scheme=parts_kind.PARTS_SCHEME,
        parts=parts,
    )
    _commit(manifest, staging, storage_options)
    return manifest


def compute(tasks: Sequence[Any], client: Any) -> list[Any]:
    """Compute Dask ``tasks`` on ``client`` (a ``distributed.Client``) or, when None, on the default scheduler."""
    import dask

    if client is None:
        return list(dask.compute(*tasks))
    return list(client.gather(client.compute(list(tasks))))


def open_snapshot(
    uri: str, columns: list[str] | None = None, *, storage_options: StorageOptions | None = None
) -> tuple[Any, Manifest]:
    """The rows of the snapshot at ``uri`` as a Dask frame (one partition per part, in order), and its manifest.

    Nothing is read yet but the manifest and the parts' footers. Columns keep the types a one-process read
    gives (``read_snapshot``): Dask's conversion of text to its own string type is off for this frame. A
    one-file snapshot is one partition.

    Raises:
        DataError: when the snapshot is incomplete, or its parts are not what its manifest lists.
    """
    import dask
    import dask.dataframe as dd

    manifest = load_manifest(uri, storage_options=storage_options)
    files = [p["file"] for p in manifest.parts] if manifest.kind == parts_kind.PARTITIONED_KIND else ["data.parquet"]
    options = shippable_options(storage_options, uri=uri).get(protocol(uri), {})  # it travels with the tasks
    with dask.config.set({"dataframe.convert-string": False}), storage_errors(uri, storage_options):
        frame = dd.read_parquet(
            [f"{uri}/{name}" for name in files], columns=columns, split_row_groups=False, storage_options=options
        )
    if frame.npartitions != len(files):
        raise DataError(f"snapshot {uri!r}: Dask reads {frame.npartitions} partitions from its {len(files)} parts")
    return frame, manifest


def verify_snapshot(uri: str, *, storage_options: StorageOptions | None = None, client: Any = None) -> str:
    """Re-read the snapshot at ``uri`` and check its content hash against its manifest; return the hash.

    Either kind: a one-file snapshot is hashed whole here; a partitioned one part by part on the cluster
    (``client``, or the default scheduler), then the list of part hashes here.

    Raises:
        DataError: naming the part (or the snapshot) whose rows no longer match the manifest.
    """
    import dask

    manifest = load_manifest(uri, storage_options=storage_options)
    if manifest.kind == parts_kind.FILE_KIND:
        found = content_hash(read_snapshot(uri, storage_options=storage_options))
        if found != manifest.content_hash:
            raise DataError(f"snapshot {uri!r} was changed after it was taken: its rows hash to {found}, its "
                            f"manifest says {manifest.content_hash}; take the snapshot again (a new run)")  # fmt: skip
        return found
    hashed = dask.delayed(_hash_part, pure=False)
    shipped = shippable_options(storage_options, uri=uri)
    found_parts = compute([hashed(f"{uri}/{p['file']}", shipped) for p in manifest.parts], client)
    for part, (rows, digest) in zip(manifest.parts, found_parts, strict=True):
        if (rows, digest) != (part["rows"], part["hash"]):
            raise DataError(
                f"snapshot {uri!r}: part {part['file']} was changed after it was taken ({rows} rows hashing to "
                f"{digest}; its manifest says {part['rows']} rows, {part['hash']}); take the snapshot again (a new run)"
            )
    found = parts_kind.parts_hash(manifest.parts)
    if found != manifest.content_hash:
        raise DataError(f"snapshot {uri!r}: its manifest's parts hash to {found}, not to {manifest.content_hash}")
    return found


def _write_part(
    index: int,
    source: str,
    path: str,
    day: dt.date,
    fmt: str,
    parse_dates: list[str],
    contract: DataContract,
    staging: str,
    storage_options: StorageOptions | None,
) -> dict[str, Any]:
    """One source file, on a worker: read, profile, check, filter, write as part ``index``, hash; a summary back."""
    fs, _ = filesystem(source, storage_options)
    frame = read_file(fs, path, fmt, parse_dates=parse_dates, storage_options=storage_options)
    summary: dict[str, Any] = {
        "index": index, "source": source, "day": day, "path": display(fs, path), "read": len(frame),
        "columns": _empty(frame), "empty": _empty(frame), "kinds": conformance.file_kinds(frame),
        "outside": conformance.rows_outside_partition(frame, contract.time_column, day),
        "problem": None, "filters": [], "rows": 0, "hash": None, "file": parts_kind.part_name(index),
    }  # fmt: skip
    # A problem is judged with the other files' on the client, in take_snapshot's order.
    try:
        conformance.check_columns(frame, contract)
    except DataContractError as exc:
        summary["problem"] = ("columns", str(exc))
        return summary
    frame, summary["filters"] = conformance.apply_filters(frame, contract.filters, refuse_empty=False)
    try:
        conformance.check_values(frame, contract)
    except DataContractError as exc:
        summary["problem"] = ("values", str(exc))
    if len(frame):
        summary["rows"], summary["hash"] = len(frame), content_hash(frame)
        _put_part(frame, staging, index, storage_options)
    return summary


def _empty(frame: Any) -> Any:
    """No row of ``frame``, its columns and types: a copy, since ``iloc[:0]`` is a view that keeps every row alive
    in the worker's memory until the client gathers the summary."""
    return frame.iloc[:0].copy()


def _put_part(frame: Any, staging: str, index: int, storage_options: StorageOptions | None) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer)
    fs, folder = filesystem(staging, storage_options)
    with storage_errors(staging, storage_options):
        fs.pipe_file(f"{folder}/{parts_kind.part_name(index).split('/', 1)[1]}", buffer.getvalue())


def _judge(summaries: list[dict[str, Any]], contract: DataContract) -> list[dict[str, Any]]:
    """Refuse what ``take_snapshot`` refuses, in its order, from the files' summaries; return the filters' records."""
    rows: dict[tuple[str, dt.date], int] = {}
    for s in summaries:
        rows[(s["source"], s["day"])] = rows.get((s["source"], s["day"]), 0) + s["read"]
    for (src, day), count in rows.items():
        if not count:
            raise DataError(
                f"partition '{src.rstrip('/')}/date={day.isoformat()}' holds no rows; "
                "re-upload the day's files, or delete the partition if the day truly has no data"
            )
    conformance.check_file_columns([(s["path"], s["columns"]) for s in summaries], contract)
    conformance.check_kinds([(s["path"], s["kinds"]) for s in summaries])
    _refuse(summaries, "columns")
    applied = _filters([s["filters"] for s in summaries])
    _refuse(summaries, "values")
    return applied


def _refuse(summaries: list[dict[str, Any]], stage: str) -> None:
    for s in summaries:
        if s["problem"] and s["problem"][0] == stage:
            raise DataContractError(f"{s['path']}: {s['problem'][1]}")


def _filters(parts: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The filters' records over the whole snapshot; a filter that drops every row left is refused."""
    whole = [{k: v for k, v in r.items() if k not in ("left", "held")} for r in parts[0]] if parts else []
    for i, record in enumerate(whole):
        record["dropped"] = sum(int(p[i]["dropped"]) for p in parts)
        left = sum(int(p[i]["left"]) for p in parts)
        if left and record["dropped"] == left:
            held = next(p[i]["held"] for p in parts if p[i]["held"] is not None)
            raise DataContractError(conformance.drops_all_message(record, left, f"{held} (in the first file)"))
    return whole


def _unified(empties: list[Any]) -> Any:
    """The columns and types of the files concatenated, as ``pd.concat`` gives them to ``take_snapshot``."""
    import pandas as pd

    return pd.concat(empties, ignore_index=True, sort=False)


def _conform(
    summaries: list[dict[str, Any]], staging: str, storage_options: StorageOptions | None, client: Any
) -> None:
    """Rewrite (and rehash) the parts whose columns or types differ from the whole's: a column of integers in one
    file and of floats in another is floats in every part, as in one concatenated frame."""
    import dask

    whole = _unified([s["empty"] for s in summaries])
    odd = [s for s in summaries if s["rows"] and not s["empty"].dtypes.equals(whole.dtypes)]
    conform = dask.delayed(_conform_part, pure=False)
    redone = compute([conform(f"{staging}/{s['file'].split('/', 1)[1]}", whole, storage_options) for s in odd], client)
    for s, digest in zip(odd, redone, strict=True):
        s["hash"] = digest


def _conform_part(url: str, whole: Any, storage_options: StorageOptions | None) -> str:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs, path = filesystem(url, storage_options)
    frame = pd.concat([whole, pq.read_table(io.BytesIO(fs.cat_file(path))).to_pandas()], ignore_index=True)
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer)
    fs.pipe_file(path, buffer.getvalue())
    return content_hash(frame)


def _hash_part(url: str, storage_options: StorageOptions | None) -> tuple[int, str]:
    import pyarrow.parquet as pq

    fs, path = filesystem(url, storage_options)
    with storage_errors(url, storage_options), fs.open(path, "rb") as handle:
        frame = pq.read_table(handle).to_pandas()
    return len(frame), content_hash(frame)


def _commit(manifest: Manifest, staging: str, storage_options: StorageOptions | None) -> None:
    """Rename the parts into place (a local disk), make them read-only, write the manifest last."""
    fs, folder = filesystem(manifest.uri, storage_options)
    with storage_errors(manifest.uri, storage_options):
        if is_local(fs):
            final = f"{folder}/{parts_kind.PARTS_FOLDER}"
            if fs.exists(final):  # an attempt cut short after its rename and before its manifest: never read
                fs.rm(final, recursive=True)
            os.rename(_path(staging, storage_options), final)  # one step: readers see all the parts or none
            for part in manifest.parts:
                fs.chmod(f"{folder}/{part['file']}", 0o444)
        put_whole(fs, f"{folder}/{MANIFEST}", json.dumps(manifest.to_dict(), indent=1, default=str).encode())
        if is_local(fs):
            fs.chmod(f"{folder}/{MANIFEST}", 0o444)


def _path(url: str, storage_options: StorageOptions | None) -> str:
    return str(filesystem(url, storage_options)[1])
