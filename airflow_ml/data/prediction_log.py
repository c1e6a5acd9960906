"""The prediction log: one parquet partition per template, city and day, replaced whole by a rerun.

Layout::

    <root>/predictions/<template>/<city>/date=YYYY-MM-DD/part-0.parquet         the batch run's predictions
    <root>/predictions/<template>/<city>/date=YYYY-MM-DD/requests-<id>.parquet  one per flush of the HTTP
                                                                                 server's buffered requests
    <root>/predictions_shadow/<template>/<city>/date=YYYY-MM-DD/part-0.parquet  a challenger in shadow: nothing
                                                                                 serves or consumes it

Each row holds :data:`LOG_COLUMNS` (a stable ``prediction_id``, the prediction, the model version that made it, the
scoring run, the hash of its input and the scoring time), then the key and feature columns the caller
keeps, so that the monitor can join late labels by ``prediction_id`` or by key.

A day's batch predictions are one file with a fixed name, so a rerun of the day replaces them with one atomic
step: on a local disk the file is written beside it under a hidden temporary name (readers skip names starting
with ``.``) and renamed over it; an object store's PUT replaces an object atomically. A reader sees the old day or
the new day, never a half-written file or a mix of both. The content depends only on the inputs (the scoring time
is the caller's, e.g. the run's logical date), so a rerun with the same inputs writes the same bytes. Requests
served over HTTP are added as files of their own (``write_predictions(..., request=True)``), written the same
way, which a batch rerun leaves alone.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec import AbstractFileSystem

from airflow_ml.data.prediction_ids import RowIds, hash_rows
from airflow_ml.data.snapshot import safe_segment
from airflow_ml.data.storage import StorageOptions, display, filesystem, is_local, storage_errors
from airflow_ml.exceptions import DataError

LOG_SEGMENT = "predictions"
SHADOW_SEGMENT = "predictions_shadow"
PART_FILE = "part-0.parquet"
REQUESTS_PREFIX = "requests-"
_PARTITION = re.compile(r"date=(\d{4}-\d{2}-\d{2})")
#: The columns every logged row has, first and in this order; the kept columns follow.
LOG_COLUMNS = (
    "prediction_id",
    "prediction",
    "model_name",
    "model_version",
    "scoring_run_id",
    "input_hash",
    "scored_at",
)
#: The column :func:`read_predictions` adds: the day of the partition a row was read from.
PARTITION_COLUMN = "partition_date"


@dataclass(frozen=True)
class ScoringContext:
    """What one scoring run stamps on every row it logs.

    Args:
        template: The template of the city scored.
        city: The city scored (a fallback parent's member is logged under its own id).
        model_name: The registered model that made the predictions.
        model_version: Its version, resolved once for the whole run (never an alias).
        scoring_run_id: The Airflow run (or HTTP request batch) that scored.
        input_hash: The hash of the input: of the partition's files for a batch (``score_step.read_day``), of the
            rows' prediction ids for an HTTP request.
        scored_at: When, time-zone aware; the run's logical date, not ``now()``, so that a rerun writes the
            same bytes.
    """

    template: str
    city: str
    model_name: str
    model_version: str
    scoring_run_id: str
    input_hash: str
    scored_at: dt.datetime

    @property
    def namespace(self) -> str:
        """What prediction ids are unique within: the template and the city."""
        return f"{self.template}/{self.city}"


@dataclass(frozen=True)
class LoggedPartition:
    """A partition written: where, how many rows, and whether it was the shadow log."""

    uri: str
    row_count: int
    shadow: bool


def partition_location(root: str, template: str, city: str, day: dt.date, *, shadow: bool = False) -> str:
    """The folder of one day's predictions: ``<root>/predictions[_shadow]/<template>/<city>/date=YYYY-MM-DD``."""
    return f"{city_location(root, template, city, shadow=shadow)}/date={day.isoformat()}"


def city_location(root: str, template: str, city: str, *, shadow: bool = False) -> str:
    """The folder of a city's prediction log (its ``date=`` partitions are inside)."""
    segment = SHADOW_SEGMENT if shadow else LOG_SEGMENT
    return f"{root.rstrip('/')}/{segment}/{safe_segment(template)}/{safe_segment(city)}"


@dataclass(frozen=True)
class LogColumns:
    """Which of the scored rows' columns make the prediction id, and which are kept beside the prediction.

    Args:
        key: The columns the template names as the row's key; the id comes from them, and they are kept.
        content: Without a key, the columns whose content makes the id (default: every column of the rows).
        keep: Feature (or other) columns to keep beside the prediction, e.g. for the monitor's slices.
    """

    key: tuple[str, ...] = ()
    content: tuple[str, ...] = ()
    keep: tuple[str, ...] = ()


def log_frame(
    rows: pd.DataFrame,
    predictions: Sequence[Any] | pd.Series,
    context: ScoringContext,
    columns: LogColumns = LogColumns(),
) -> pd.DataFrame:
    """The rows to log: :data:`LOG_COLUMNS`, then the key and kept columns (the HTTP path logs this frame too).

    Args:
        rows: The rows scored, in the order the predictions follow.
        predictions: One prediction per row.
        context: What the run stamps on every row.
        columns: Which columns make the id and which are kept.

    Raises:
        DataError: for a missing column, a prediction count that is not the row count, a naive ``scored_at``,
            or two rows with one prediction id.
    """
    if context.scored_at.tzinfo is None:
        raise DataError(
            f"scored_at {context.scored_at.isoformat()} has no time zone; pass the run's logical date (UTC)"
        )
    if len(predictions) != len(rows):
        raise DataError(f"{len(predictions)} predictions for {len(rows)} rows; the model must return one per row")
    key_columns = list(columns.key)
    missing_key = [name for name in key_columns if name not in rows.columns]
    if missing_key:
        raise DataError(
            f"the key column(s) {missing_key} are not in the rows to score (columns: {list(rows.columns)}); "
            "fix the key the template names, or add the column to the source"
        )
    kept = list(dict.fromkeys([*key_columns, *columns.keep]))
    clash = [name for name in kept if name in (*LOG_COLUMNS, PARTITION_COLUMN)]
    missing = [name for name in kept if name not in rows.columns]
    if clash or missing:
        problem = f"{clash} are names of the log's own columns" if clash else f"{missing} are not in the rows"
        raise DataError(
            f"cannot keep columns {kept} in the prediction log of {context.namespace}: {problem} "
            f"(columns: {list(rows.columns)}); rename the column or leave it out of the key and kept columns"
        )
    ids = hash_rows(rows, key_columns or columns.content or list(rows.columns), namespace=context.namespace)
    _check_unique(ids, from_key=bool(key_columns), namespace=context.namespace)
    index = pd.RangeIndex(len(rows))
    log = {
        "prediction_id": pd.Series(pd.array(ids.array(), dtype="str"), index=index),
        "prediction": pd.Series(predictions).to_numpy(),
        # One value for every row: broadcast, not a million-item list for pandas to convert.
        "model_name": pd.Series(context.model_name, index=index, dtype="str"),
        "model_version": pd.Series(str(context.model_version), index=index, dtype="str"),
        "scoring_run_id": pd.Series(context.scoring_run_id, index=index, dtype="str"),
        "input_hash": pd.Series(context.input_hash, index=index, dtype="str"),
        "scored_at": pd.Series(pd.Timestamp(context.scored_at).tz_convert("UTC"), index=index).astype(
            "datetime64[us, UTC]"
        ),
    }
    frame = pd.DataFrame(log)
    for name in kept:
        frame[name] = rows[name].reset_index(drop=True)  # keeps the column's type (categories, strings)
    return frame


def write_predictions(
    root: str,
    day: dt.date,
    rows: pd.DataFrame,
    predictions: Sequence[Any] | pd.Series,
    context: ScoringContext,
    columns: LogColumns = LogColumns(),
    *,
    shadow: bool = False,
    request: bool = False,
    storage_options: StorageOptions | None = None,
) -> LoggedPartition:
    """Write (or replace, whole and atomically) the day's batch predictions of a city's prediction log.

    See :func:`log_frame` for the columns and :func:`partition_location` for the place.

    Args:
        rows, predictions, context, columns: As :func:`log_frame` takes them.
        root: The data root (a local path or any fsspec URL such as ``s3://bucket/prefix``).
        day: The partition's date (the scoring run's data date).
        shadow: Write to the shadow log (a challenger scored beside the champion).
        request: Add one batch of served predictions (an HTTP request) to the day as a file of its own, named
            after ``context.scoring_run_id`` (give each request batch its own): logging the same batch again
            replaces its file instead of doubling its rows, and the batch run's file is not touched.
        storage_options: Options of the root's filesystem, by protocol (:mod:`airflow_ml.data.storage`).

    Raises:
        DataError: for rows that cannot be logged (see :func:`log_frame`), or a root that cannot be written,
            naming the path and the fix.
    """
    uri = partition_location(root, context.template, context.city, day, shadow=shadow)
    try:
        frame = log_frame(rows, predictions, context, columns)
    except DataError as exc:
        raise DataError(f"nothing was written to {uri!r}: {exc}") from exc
    return write_log_frame(root, day, frame, context, shadow=shadow, request=request, storage_options=storage_options)


def write_log_frame(
    root: str,
    day: dt.date,
    frame: pd.DataFrame,
    context: ScoringContext,
    *,
    shadow: bool = False,
    request: bool = False,
    storage_options: StorageOptions | None = None,
) -> LoggedPartition:
    """:func:`write_predictions` of a frame :func:`log_frame` made (a run that logs one batch twice, champion and
    shadow challenger, computes the ids once).

    Raises:
        DataError: for a root that cannot be written, naming the path and the fix.
    """
    name = request_file_name(context.scoring_run_id) if request else PART_FILE
    uri = partition_location(root, context.template, context.city, day, shadow=shadow)
    _put(uri, name, frame, storage_options)
    return LoggedPartition(uri=uri, row_count=len(frame), shadow=shadow)


def request_file_name(batch_id: str) -> str:
    """``requests-<id>.parquet``: the file of one batch of served predictions, named after the batch's id."""
    return f"{REQUESTS_PREFIX}{hashlib.sha256(batch_id.encode()).hexdigest()[:20]}.parquet"


def write_request_batch(
    root: str,
    template: str,
    city: str,
    day: dt.date,
    frames: Sequence[pd.DataFrame],
    *,
    batch_id: str,
    storage_options: StorageOptions | None = None,
) -> LoggedPartition:
    """Add the rows of several served requests, each already a :func:`log_frame`, to the day as one file.

    The HTTP server buffers its requests' rows and writes them with this, one ``requests-<id>.parquet`` per
    flush (named after ``batch_id``: writing the same batch again replaces its file), written atomically as the
    batch file is. A request that sent a kept column another did not leaves it null in the other's rows.

    Raises:
        DataError: for frames that are not the log's rows, or a root that cannot be written, naming the path.
    """
    uri = partition_location(root, template, city, day)
    if not frames or any(list(frame.columns[: len(LOG_COLUMNS)]) != list(LOG_COLUMNS) for frame in frames):
        raise DataError(f"nothing was written to {uri!r}: give one or more frames made by log_frame")
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    _put(uri, request_file_name(batch_id), frame, storage_options)
    return LoggedPartition(uri=uri, row_count=len(frame), shadow=False)


def _put(uri: str, name: str, frame: pd.DataFrame, storage_options: StorageOptions | None) -> None:
    """Write ``frame`` as the parquet file ``name`` of the partition ``uri``, whole and atomically."""
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer)
    fs, folder = filesystem(uri, storage_options)
    with storage_errors(uri, storage_options), _writable(fs, uri):
        if is_local(fs):  # object stores have no folders (and s3fs would create a missing bucket)
            fs.makedirs(folder, exist_ok=True)
        _replace(fs, f"{folder}/{name}", buffer.getvalue())


def read_predictions(
    root: str,
    template: str,
    city: str,
    start: dt.date,
    end: dt.date,
    *,
    shadow: bool = False,
    columns: Sequence[str] | None = None,
    storage_options: StorageOptions | None = None,
) -> pd.DataFrame:
    """A city's logged predictions from ``start`` to ``end`` (both included), with :data:`PARTITION_COLUMN` first.

    Each day's batch predictions come first, then its request files in the order of their names.

    Days without a partition are skipped; a city with none in the range gives an empty frame with the log's columns.

    Raises:
        DataError: when the log cannot be read (an unreachable store, an unreadable file), naming the path.
    """
    if end < start:
        raise DataError(f"the date range {start}..{end} ends before it starts; swap the dates")
    location = city_location(root, template, city, shadow=shadow)
    fs, folder = filesystem(location, storage_options)
    with storage_errors(location, storage_options):
        paths = fs.glob(f"{folder}/date=*/*.parquet")
    frames = []
    for path in sorted(paths):
        day = _partition_day(path)
        if day is None or not start <= day <= end or not _logged_file(path.rsplit("/", 1)[-1]):
            continue
        with storage_errors(display(fs, path), storage_options), fs.open(path, "rb") as handle:
            part = pq.read_table(handle, columns=list(columns) if columns else None).to_pandas()
        part.insert(0, PARTITION_COLUMN, day)
        frames.append(part)
    if not frames:
        return pd.DataFrame({name: [] for name in (PARTITION_COLUMN, *(columns or LOG_COLUMNS))})
    return pd.concat(frames, ignore_index=True)


def _logged_file(name: str) -> bool:
    """The batch file or a request file; never a write in progress (a hidden temporary file) or a stray file."""
    return name == PART_FILE or (name.startswith(REQUESTS_PREFIX) and name.endswith(".parquet"))


def _partition_day(path: str) -> dt.date | None:
    match = _PARTITION.fullmatch(path.rsplit("/", 2)[-2])
    return dt.date.fromisoformat(match.group(1)) if match else None


def _check_unique(ids: RowIds, *, from_key: bool, namespace: str) -> None:
    repeat = ids.first_repeat()
    if repeat is None:
        return
    first, position = repeat
    what = "the key columns' values" if from_key else "identical content"
    fix = (
        "make the key identify one row (add a column to it) or drop the duplicate rows"
        if from_key
        else "name key columns that identify a row in the template's scoring section, or drop duplicate rows"
    )
    pid = ids.array()[position].as_py()
    raise DataError(
        f"rows {first} and {position} of the batch for {namespace} have {what}, so one prediction id "
        f"({pid}); a prediction id must name one row: {fix}"
    )


def _replace(fs: AbstractFileSystem, path: str, data: bytes) -> None:
    """Put ``data`` at ``path`` in one atomic step (see the module's docstring); nothing temporary is left."""
    if not is_local(fs):
        fs.pipe_file(path, data)
        return
    folder, name = path.rsplit("/", 1)
    temporary = f"{folder}/.{name}.{uuid.uuid4().hex}.tmp"
    try:
        fs.pipe_file(temporary, data)
        fs.mv(temporary, path)  # rename(2): atomic, and it replaces the old file
    except BaseException:
        with contextlib.suppress(OSError):
            fs.rm_file(temporary)
        raise


@contextlib.contextmanager
def _writable(fs: AbstractFileSystem, uri: str) -> Iterator[None]:
    """A root that cannot be written (a file in the way, a read-only disk, a missing bucket) names the path and fix.

    Refused credentials and an unreachable store are left to :func:`storage_errors`, which names the connection.
    """
    try:
        yield
    except (FileNotFoundError, NotADirectoryError, FileExistsError) as exc:
        raise DataError(_unwritable(uri, exc)) from exc
    except OSError as exc:
        if not is_local(fs) or isinstance(exc, ConnectionError | TimeoutError):
            raise
        raise DataError(_unwritable(uri, exc)) from exc


def _unwritable(uri: str, exc: OSError) -> str:
    return (
        f"cannot write the prediction log partition {uri!r} ({exc}); make the predictions root a writable folder "
        "(or create its bucket), or point the scoring section at another root"
    )
