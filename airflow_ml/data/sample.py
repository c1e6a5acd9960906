"""A deterministic sample of a data file or of a folder of ``date=YYYY-MM-DD`` partitions.

Used by ``airflow-ml suite infer``: it reads data the way snapshots do (same partition listing, same
readers), so a suite inferred from the sample describes what a run will validate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import pandas as pd

from airflow_ml.data.snapshot import list_partitions, read_files
from airflow_ml.data.storage import filesystem, storage_errors
from airflow_ml.exceptions import DataError

FORMATS = ("parquet", "csv")
DEFAULT_SAMPLE_ROWS = 100_000


@dataclass(frozen=True)
class Sample:
    """Rows drawn from a source and the counts a suite's row-count expectation is based on.

    Attributes:
        frame: At most ``sample_rows`` rows, in the source's order.
        source: The path or URL read.
        total_rows: Rows of the whole source.
        partition_rows: Rows per ``date=`` partition (ISO date → rows); empty for a single file.
    """

    frame: pd.DataFrame
    source: str
    total_rows: int
    partition_rows: dict[str, int]

    @property
    def batch_rows(self) -> int:
        """Rows of the smallest partition (a run reads a day or more), or of the single file."""
        return min(self.partition_rows.values()) if self.partition_rows else self.total_rows

    def describe(self) -> dict[str, Any]:
        """Where the sample came from, JSON-ready: path, rows read and sampled, and the partitions' dates."""
        described: dict[str, Any] = {"path": self.source, "rows": self.total_rows, "sampled_rows": len(self.frame)}
        if self.partition_rows:
            dates = list(self.partition_rows)
            described |= {"partitions": len(dates), "first_date": dates[0], "last_date": dates[-1]}
        return described


def read_sample(
    path: str,
    *,
    fmt: str | None = None,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    seed: int = 0,
    parse_dates: Sequence[str] = (),
) -> Sample:
    """Read ``path`` (a .parquet/.csv file or a folder of partitions) and keep a deterministic sample.

    Args:
        path: A local path or fsspec URL.
        fmt: ``parquet`` or ``csv``; by default the file's suffix, or ``parquet`` for a folder.
        sample_rows: Most rows kept; larger sources are sampled uniformly with ``seed``.
        seed: Seed of the sample, so the same source always gives the same sample.
        parse_dates: Columns of CSV files to parse as ISO 8601 date-times (a template's time column), as snapshots do.

    Raises:
        DataError: for a missing path, an unknown format, an unreadable file or no rows, naming the path.
        ValueError: for a ``sample_rows`` below 1.
    """
    if sample_rows < 1:
        raise ValueError(f"sample_rows must be at least 1, got {sample_rows!r}")
    fs, root = filesystem(path)
    with storage_errors(path):
        exists, is_folder = fs.exists(root), fs.isdir(root)
    if not exists:
        raise DataError(
            f"data path {path!r} does not exist; give a .parquet or .csv file or a folder of date=YYYY-MM-DD partitions"
        )
    partition_rows: dict[str, int] = {}
    if is_folder:
        fmt = _check_format(fmt or "parquet", path)
        frames = []
        for day, files in list_partitions(path, fmt).items():
            frames.append(read_files(path, files, fmt, parse_dates=parse_dates))
            partition_rows[day.isoformat()] = len(frames[-1])
        frame = pd.concat(frames, ignore_index=True, sort=False)
    else:
        fmt = _check_format(fmt or PurePosixPath(root).suffix.lstrip(".").lower(), path)
        frame = read_files(path, [root], fmt, parse_dates=parse_dates)
    if frame.empty:
        raise DataError(f"data path {path!r} holds no rows; infer the suite from a sample with data")
    total = len(frame)
    if total > sample_rows:
        # sort_index keeps the source's (time) order, which makes the sample easy to read back.
        frame = frame.sample(n=sample_rows, random_state=seed).sort_index().reset_index(drop=True)
    return Sample(frame=frame, source=path, total_rows=total, partition_rows=partition_rows)


def _check_format(fmt: str, path: str) -> str:
    if fmt not in FORMATS:
        what = f"format {fmt!r}" if fmt else "no suffix"
        raise DataError(
            f"cannot tell how to read {path!r} ({what}); name it .parquet or .csv, or give --format parquet or csv"
        )
    return fmt
