"""A snapshot's rows on a Dask cluster, split by time into exactly the local path's training, validation and
holdout rows; used by training (:mod:`airflow_ml.ml.dask_train`), the gate and the health check
(:mod:`airflow_ml.ml.dask_holdout`) of ``training.engine: dask``.

The rows are read once. They are numbered in read order and ordered by (time, number), the stable order of the
local ``mergesort``, then cut at the local path's positions (:func:`airflow_ml.ml.train.split_bounds`): each split
is the sorted partitions it overlaps, the two at its ends sliced. Partitions whose times follow each other (a
snapshot of day partitions) are sorted each in place, with no shuffle.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from airflow_ml.data.storage import StorageOptions, filesystem, shippable_options, storage_errors

if TYPE_CHECKING:
    import dask.dataframe as dd
    from distributed import Client

    from airflow_ml.data.snapshot import Manifest

_ROW = "__airflow_ml_row"


class SplitLike(Protocol):
    """The time split (``SplitSettings`` of the train step, which this core module does not import)."""

    @property
    def time_column(self) -> str: ...
    @property
    def validation_fraction(self) -> float: ...
    @property
    def holdout_fraction(self) -> float: ...


@dataclass(frozen=True)
class DaskSplits:
    """The three time splits of a snapshot, persisted on the cluster, their row counts and their partitions'.

    ``train`` is None once training has made LightGBM's inputs from it (:mod:`airflow_ml.ml.dask_train`).
    ``lengths`` holds each split's row count per partition, known from the cut (no round trip to count them);
    a split whose partitions were remade (training rows repartitioned to spread them) has none.
    """

    train: dd.DataFrame | None
    validation: dd.DataFrame
    holdout: dd.DataFrame
    sizes: dict[str, int]
    lengths: dict[str, list[int]] = field(default_factory=dict)


def snapshot_files(manifest: Manifest) -> list[str]:
    """The parquet files of the snapshot of ``manifest``, in its rows' order, as :func:`read_rows` takes them.

    A partitioned snapshot (taken on Dask) is exactly the parts its manifest lists, never whatever else lies in
    its folder; a one-file snapshot is its ``data.parquet``. Read in this order, the rows are numbered as
    :func:`airflow_ml.data.snapshot.read_snapshot` concatenates them, so the split is the local one.
    """
    from airflow_ml.data.snapshot import DATA_FILE
    from airflow_ml.data.snapshot_parts import PARTITIONED_KIND

    uri = manifest.uri.rstrip("/")
    if manifest.kind == PARTITIONED_KIND:
        return [f"{uri}/{part['file']}" for part in manifest.parts]
    return [f"{uri}/{DATA_FILE}"]


def read_rows(
    paths: str | Sequence[str], columns: list[str] | None, storage_options: StorageOptions | None
) -> dd.DataFrame:
    """The rows of parquet files as a Dask frame: one partition per row group, in the order of the files given.

    Not ``dask.dataframe.read_parquet``: reading some of the columns, it fuses small partitions at compute time,
    so the partitions counted, numbered and sorted by :func:`time_split_on_dask` are not those its graph holds
    (a persisted sort then loses its inputs). Columns keep pandas' own dtypes (no pyarrow strings), as
    :func:`airflow_ml.data.snapshot.read_snapshot` reads them, so the preprocessing sees the same values.
    """
    import dask
    import dask.dataframe as dd
    import pyarrow.parquet as pq

    files = [paths] if isinstance(paths, str) else list(paths)
    pieces, meta = [], None
    for path in files:
        fs, local = filesystem(path, storage_options)
        with storage_errors(path, storage_options), fs.open(local, "rb") as handle:
            footer = pq.ParquetFile(handle)
            if meta is None:
                meta = footer.schema_arrow.empty_table().to_pandas()
            pieces += [(path, group) for group in range(footer.num_row_groups)]
    assert meta is not None
    meta = meta if columns is None else meta[columns]
    shipped = shippable_options(storage_options, uri=files[0])
    with dask.config.set({"dataframe.convert-string": False}):
        return dd.from_map(
            _read_row_group,
            pieces,
            storage_options=shipped,
            meta=meta,
            columns=columns,
            label="read-rows",
        )


def _read_row_group(piece: tuple[str, int], storage_options: StorageOptions | None, columns: Any = None) -> Any:
    import pyarrow.parquet as pq

    path, group = piece
    fs, local = filesystem(path, storage_options)
    with storage_errors(path, storage_options), fs.open(local, "rb") as handle:
        table = pq.ParquetFile(handle).read_row_group(group, columns=columns)
    return table.to_pandas(split_blocks=True, self_destruct=True)


def time_split_on_dask(
    client: Client,
    frame: dd.DataFrame,
    time_column: str,
    validation_fraction: float,
    holdout_fraction: float,
    *,
    spread: bool = True,
) -> DaskSplits:
    """The rows :func:`airflow_ml.ml.train.time_split` gives, kept on the cluster.

    ``spread`` deals the training rows to the workers, as ``lightgbm.dask`` needs them (the gate does not).

    Raises:
        ValueError: when the time column is missing or a split would be empty (the local path's messages).
    """
    import dask
    import dask.dataframe as dd
    import numpy as np

    from airflow_ml.ml.train import split_bounds

    if time_column not in frame.columns:
        raise ValueError(f"time column {time_column!r} is not in the data; columns are {list(frame.columns)}")
    # Read once: the rows are measured, numbered and sorted from the workers' memory, and each raw partition is
    # freed once the sort has taken it (nothing else holds it then).
    rows = client.persist(frame)
    measure = dask.delayed(partition_time_range)
    ranges = client.compute([measure(part, time_column) for part in rows.to_delayed()], sync=True)
    positions = _offsets([length for length, *_ in ranges])
    numbered = rows.map_partitions(_numbered, _ROW, positions, meta=rows._meta.assign(**{_ROW: np.int64(0)}))
    in_order = in_time_order(ranges)
    if in_order:
        # Partitions whose times follow each other (a snapshot of day partitions): sorting each one in place is the
        # stable sort of the whole, with no shuffle (rows stay where they were read, never copied between workers).
        ordered = client.persist(numbered.map_partitions(_sorted, [time_column, _ROW], meta=numbered._meta))
    else:
        ordered = client.persist(numbered.sort_values([time_column, _ROW]))
    del rows, numbered  # from here only the sorting holds the raw rows
    if not in_order:
        positions = _offsets(client.compute(ordered.map_partitions(len)).result())
    n = positions[-1]
    validation_start, holdout_start = split_bounds(n, validation_fraction, holdout_fraction)
    bounds = {
        "train": (0, validation_start),
        "validation": (validation_start, holdout_start),
        "holdout": (holdout_start, n),
    }
    # Each split is the sorted partitions it overlaps, the two at its ends sliced: no partition is left empty
    # (a LightGBM worker given only empty parts fails) and none is filtered row by row.
    parts, meta = ordered.to_delayed(), ordered._meta.drop(columns=[_ROW])
    cut = dask.delayed(_rows_between)
    spans = {
        name: [
            (part, max(low, start) - start, min(high, end) - start)
            for part, (start, end) in zip(parts, itertools.pairwise(positions), strict=True)
            if start < end and start < high and end > low
        ]
        for name, (low, high) in bounds.items()
    }
    lengths = {name: [stop - start for _, start, stop in found] for name, found in spans.items()}
    pieces = [[cut(part, start, stop) for part, start, stop in found] for found in spans.values()]
    cuts = [dd.from_delayed(found, meta=meta, verify_meta=False) for found in pieces]
    kept = dict(zip(bounds, client.persist(cuts), strict=True))
    # Nothing but the cuts holds the sorted rows now: each sorted partition is freed once it is cut, so the
    # workers never hold the rows twice over.
    del ordered, parts, spans, pieces, cuts
    if spread:
        kept["train"], remade = _spread(client, kept["train"])
        if remade:
            del lengths["train"]  # repartitioned: counted again where needed
    sizes = {name: high - low for name, (low, high) in bounds.items()}
    return DaskSplits(kept["train"], kept["validation"], kept["holdout"], sizes, lengths)


def split_lengths(client: Client, splits: DaskSplits, name: str) -> list[int]:
    """The row count of each partition of split ``name``: known from the cut, or counted on the cluster."""
    found = splits.lengths.get(name)
    return list(found) if found is not None else partition_lengths(client, getattr(splits, name))


def partition_lengths(client: Client, rows: dd.DataFrame) -> list[int]:
    """The row count of each partition of ``rows``, counted on the cluster."""
    return [int(n) for n in client.compute(rows.map_partitions(len)).result().tolist()]


def partition_time_range(part: Any, column: str) -> tuple[int, Any, Any, int]:
    """A partition's rows, the first and last of its times, and its missing times."""
    values = part[column]
    return len(part), values.min(), values.max(), int(values.isna().sum())


def in_time_order(ranges: Sequence[tuple[int, Any, Any, int]]) -> bool:
    """Whether each partition's times start no earlier than the previous one's end, with no missing time (those
    sort last, wherever they are)."""
    full = [(low, high) for length, low, high, missing in ranges if length]
    if any(missing for *_, missing in ranges):
        return False
    return all(before[1] <= after[0] for before, after in itertools.pairwise(full))


def _sorted(part: Any, by: list[str]) -> Any:
    return part.sort_values(by, ignore_index=True)


def _offsets(lengths: Sequence[int]) -> list[int]:
    """Where each partition starts, and the total last."""
    starts = [0]
    for length in lengths:
        starts.append(starts[-1] + int(length))
    return starts


def _numbered(part: Any, column: str, offsets: list[int], partition_info: dict[str, Any] | None = None) -> Any:
    import numpy as np

    start = offsets[partition_info["number"]] if partition_info else 0
    return part.assign(**{column: np.arange(start, start + len(part), dtype="int64")})


def _rows_between(part: Any, start: int, stop: int) -> Any:
    """Rows ``start`` to ``stop`` of a sorted partition, without its row numbers, indexed from 0."""
    return part.iloc[start:stop].drop(columns=[_ROW]).reset_index(drop=True)


def _spread(client: Client, rows: dd.DataFrame) -> tuple[dd.DataFrame, bool]:
    """The training rows in at least two partitions per worker, dealt to the workers in turn, and whether their
    partitions were remade for it (too few of them).

    ``lightgbm.dask`` trains on each worker the partitions it holds: rows left on one worker (a one-file snapshot
    is one partition) would train on one machine.
    """
    import dask.dataframe as dd

    workers = sorted(client.nthreads())
    remade = rows.npartitions < 2 * len(workers)
    if remade:
        rows = rows.repartition(npartitions=2 * len(workers))
    placed = [client.compute(rows.partitions[i], workers=[workers[i % len(workers)]]) for i in range(rows.npartitions)]
    return dd.from_delayed(placed, meta=rows._meta, verify_meta=False), remade
