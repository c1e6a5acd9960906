"""List and read a source's ``date=YYYY-MM-DD`` partitions (parquet or csv), on any fsspec filesystem.

Given the data root (as every snapshot task gives it), a local source must lie under it, by its real path: a
source that is elsewhere, or whose folder (or a folder above it) is a symbolic link out of the data root, is
refused, naming the link and its target. Inside the source a partition folder or file may be a symbolic link
that stays inside the data root; one that leaves it is refused the same way. So a snapshot never copies files
from elsewhere on the machine. Without a data root (``suite infer`` sampling a folder it was given), links may
not leave the source itself.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Sequence
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec import AbstractFileSystem

from airflow_ml.data.storage import StorageOptions, display, filesystem, is_local, storage_errors
from airflow_ml.exceptions import DataContractError, DataError, SourceOutsideDataRoot

_PARTITION = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")


def list_partitions(
    source: str,
    fmt: str = "parquet",
    *,
    storage_options: StorageOptions | None = None,
    data_root: str | None = None,
) -> dict[dt.date, list[str]]:
    """Map each ``date=`` partition under ``source`` to its data files, sorted.

    One recursive listing (a few requests on S3, whatever the number of partitions). Other files
    (``_SUCCESS``, notes) and S3's folder markers are ignored.

    Args:
        data_root: Where a local source must lie and its symbolic links may point (see the module's
            docstring); None: links only inside ``source``.

    Raises:
        SourceOutsideDataRoot: when a local source, or a link in it, leads out of the data root.
        DataError: when the source (or its bucket) is missing, holds no partition, a partition holds
            no ``.<fmt>`` file, or a link points nowhere, naming the path.
    """
    fs, root = filesystem(source, storage_options)
    root = root.rstrip("/")
    if data_root is not None and is_local(fs):
        check_inside_data_root(source, data_root, storage_options=storage_options)
    with storage_errors(source, storage_options):
        if not fs.isdir(root):
            raise DataError(_missing_source(fs, root, source))
        listing = fs.find(root, withdirs=True, detail=True)
    links = None
    if is_local(fs):
        links = _Links(root, data_root, filesystem(data_root, storage_options)[1] if data_root else None)
    folders: dict[str, dt.date] = {}
    files: dict[str, list[str]] = {}
    for path, info in listing.items():
        parts = path[len(root) :].strip("/").split("/")
        match = _PARTITION.match(parts[0])
        if not match:
            continue
        folders[parts[0]] = dt.date.fromisoformat(match.group(1))
        if links is not None and info.get("islink") and len(parts) <= 2:
            for found in links.follow(path, folder=len(parts) == 1):
                if found.endswith(f".{fmt}"):
                    files.setdefault(parts[0], []).append(found)
        elif len(parts) == 2 and info.get("type") == "file" and parts[1].endswith(f".{fmt}"):
            files.setdefault(parts[0], []).append(path)
    partitions: dict[dt.date, list[str]] = {}
    for name, day in folders.items():
        if name not in files:
            where = display(fs, f"{root}/{name}")
            raise DataError(f"partition {where!r} holds no .{fmt} file; remove the empty folder or fill it")
        partitions[day] = sorted(files[name])
    if not partitions:
        raise DataError(f"data source {source!r} holds no date=YYYY-MM-DD partition with .{fmt} files")
    return dict(sorted(partitions.items()))


def check_inside_data_root(source: str, data_root: str, *, storage_options: StorageOptions | None = None) -> None:
    """Refuse a local ``source`` whose real path is not under the data root's (object stores are not checked).

    Raises:
        SourceOutsideDataRoot: naming the source, the data root, the symbolic link that leads out (with its
            target) when there is one, and the fix.
    """
    fs, path = filesystem(source, storage_options)
    if not is_local(fs):
        return
    root_fs, root = filesystem(data_root, storage_options)
    fix = (
        "a snapshot reads only files under the data root: write dataset.source from {data_root} down (e.g. "
        "'{data_root}/raw/trips/{city}') and move or copy the data there, or set AIRFLOW_ML_DATA_ROOT to a folder "
        "that holds it"
    )
    if not is_local(root_fs):
        raise SourceOutsideDataRoot(
            f"data source {source!r} is on the local disk, but the data root {data_root!r} is not; {fix}"
        )
    real_root = os.path.realpath(root)
    if _inside(os.path.realpath(path), real_root):
        return
    plain_root, plain = os.path.abspath(root), os.path.abspath(path)
    if _inside(plain, plain_root):  # under the data root as written: a link on the way leads out
        parts = plain[len(plain_root) :].strip("/").split("/")
        for depth in range(1, len(parts) + 1):
            step = os.path.join(plain_root, *parts[:depth])
            if os.path.islink(step) and not _inside(os.path.realpath(step), real_root):
                raise SourceOutsideDataRoot(
                    f"data source {source!r}: {step!r} is a symbolic link to {os.path.realpath(step)!r}, which "
                    f"leaves the data root {data_root!r}; {fix}"
                )
    raise SourceOutsideDataRoot(f"data source {source!r} is not under the data root {data_root!r}; {fix}")


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


class _Links:
    """Symbolic links of a local source: followed inside the data root (or the source), refused elsewhere."""

    def __init__(self, root: str, data_root: str | None, data_root_path: str | None) -> None:
        self.source = root
        self.data_root = data_root
        self.allowed = [os.path.realpath(p) for p in (root, data_root_path) if p]

    def follow(self, path: str, *, folder: bool) -> list[str]:
        """The data files a link stands for: itself for a file, the files inside for a partition folder."""
        target = self._check(path)
        if not folder:  # a file of a partition (a folder there is ignored, as real ones are)
            return [path] if os.path.isfile(target) else []
        if not os.path.isdir(target):
            return []
        found = []
        with os.scandir(path) as entries:
            for entry in entries:
                name = f"{path}/{entry.name}"
                if entry.is_symlink():
                    self._check(name)
                if os.path.isfile(name):
                    found.append(name)
        return found

    def _check(self, path: str) -> str:
        destination = os.readlink(path)
        target = os.path.realpath(path)
        fix = (
            "copy the files into the partition instead of linking them, or move them under the data root and "
            "link to them there"
        )
        if not os.path.exists(target):
            raise DataError(
                f"{path!r} is a symbolic link to {destination!r}, which does not exist; fix or remove the link"
            )
        if not any(_inside(target, a) for a in self.allowed):
            inside = f"the data root {self.data_root!r}" if self.data_root else f"the source {self.source!r}"
            raise SourceOutsideDataRoot(
                f"{path!r} is a symbolic link to {target!r}, which leaves {inside}; a snapshot reads only files "
                f"under it: {fix}"
            )
        return target


def _missing_source(fs: AbstractFileSystem, root: str, source: str) -> str:
    """Why ``source`` is not there: a missing bucket is worth naming, it is not a typo in the path."""
    fix = "check dataset.source in the template and the data root (AIRFLOW_ML_DATA_ROOT)"
    if not is_local(fs):
        bucket = root.split("/", 1)[0]
        if not fs.exists(bucket):
            return (
                f"data source {source!r}: bucket {bucket!r} does not exist or the connection's credentials "
                f"cannot see it; create it, or {fix}"
            )
    return f"data source {source!r} does not exist; {fix}"


def read_files(
    source: str,
    files: list[str],
    fmt: str,
    *,
    parse_dates: Sequence[str] = (),
    storage_options: StorageOptions | None = None,
    digest: Any = None,
) -> pd.DataFrame:
    """Read and concatenate data ``files`` (paths as :func:`list_partitions` gives them), parquet or csv.

    Args:
        parse_dates: Columns of CSV files to parse as date-times (ISO 8601) when present; a missing one
            is left for validation to report.
        digest: A ``hashlib`` object that each file's name, size and bytes are fed to, in order, as they
            are read (:func:`read_file`): the hash of the input as stored, at no second read.

    Raises:
        DataError: naming the first file that cannot be read (or is empty: 0 bytes).
    """
    fs, _ = filesystem(source, storage_options)
    frames = [
        read_file(fs, path, fmt, parse_dates=parse_dates, storage_options=storage_options, digest=digest)
        for path in files
    ]
    # Files may differ in columns; concat keeps them all (a snapshot's contract refuses files that lack one it names).
    return pd.concat(frames, ignore_index=True, sort=False)


def read_file(
    fs: AbstractFileSystem,
    path: str,
    fmt: str,
    *,
    parse_dates: Sequence[str] = (),
    storage_options: StorageOptions | None = None,
    digest: Any = None,
) -> pd.DataFrame:
    """Read one data file of ``fs``, parquet or csv (see :func:`read_files`).

    With ``digest``, the file is read whole, fed to it as ``<name>:<size>:`` then its bytes, and parsed from memory.

    Raises:
        DataContractError: when a ``parse_dates`` column of a CSV file holds a value that is no ISO 8601
            date-time, naming the file and the column (a retry would read the same text).
        DataError: when the file is empty or cannot be read as ``fmt``.
    """
    with storage_errors(display(fs, path), storage_options):
        try:
            with fs.open(path, "rb") as handle:
                frame = _parse(handle if digest is None else _fed(handle, path, digest), fmt)
        except (OSError, ValueError, pa.ArrowException) as exc:
            if fs.size(path) == 0:
                raise DataError(
                    f"{display(fs, path)!r} is empty (0 bytes): its upload failed or was cut short; "
                    "upload it again or delete it"
                ) from exc
            raise DataError(f"cannot read {display(fs, path)!r} as {fmt}: {exc}") from exc
    for column in parse_dates if fmt == "csv" else ():
        if column in frame.columns:
            frame[column] = _datetimes(frame[column], column, display(fs, path))
    return frame


def _parse(handle: Any, fmt: str) -> pd.DataFrame:
    return pq.read_table(handle).to_pandas() if fmt == "parquet" else pd.read_csv(handle)


def _fed(handle: Any, path: str, digest: Any) -> Any:
    """The file's bytes, in memory (read by Arrow without a copy), once fed to ``digest`` after its name and size."""
    data = handle.read()
    digest.update(f"{path.rsplit('/', 1)[-1]}:{len(data)}:".encode())
    digest.update(data)
    return pa.BufferReader(data)


def _datetimes(values: pd.Series, column: str, where: str) -> pd.Series:
    try:
        return pd.to_datetime(values, format="ISO8601")
    except (ValueError, TypeError, OverflowError) as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise DataContractError(
            f"{where!r}: column {column!r} is not ISO 8601 date-times (e.g. 2026-01-05 08:14:18): {reason}; "
            "write it as ISO 8601 in that file, or delete the file, then run again"
        ) from exc
