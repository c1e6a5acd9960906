"""Which partitions of which sources a run's window reads, and which of its days have none.

Shared by the one-process snapshot (:mod:`airflow_ml.data.snapshot`) and the one on a Dask cluster
(:mod:`airflow_ml.data.dask_snapshot`), so both read the very same files for the same run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from airflow_ml.data import conformance
from airflow_ml.data.partitions import list_partitions
from airflow_ml.data.storage import StorageOptions
from airflow_ml.exceptions import DataError, SourceOutsideDataRoot


@dataclass(frozen=True)
class Window:
    """The partitions a run reads: per source, each date of the window to its files (sorted)."""

    sources: list[str]
    by_source: dict[str, dict[dt.date, list[str]]]
    #: Member sources left out because they hold no data yet, with why.
    skipped: dict[str, str]
    #: Every date any source has, and the dates of the window.
    available: list[dt.date]
    dates: list[dt.date]
    window_days: int | None = None
    start: dt.date | None = None
    end: dt.date | None = None

    def missing_days(self) -> list[str]:
        """Days of the window without a partition in any source (see ``conformance.missing_days``)."""
        first = self.start or self.dates[0]
        if self.start is None and self.window_days is not None:
            # Not before the source's first partition: a city younger than its window misses no day.
            first = max(self.dates[-1] - dt.timedelta(days=self.window_days - 1), self.available[0])
        return conformance.missing_days(first, self.end or self.dates[-1], self.available)


def select_window(
    dates: list[dt.date], *, window_days: int | None, start: dt.date | None = None, end: dt.date | None = None
) -> list[dt.date]:
    """The partition dates a run uses: within [start, end] when given, else the latest ``window_days`` days."""
    chosen = [d for d in dates if (start is None or d >= start) and (end is None or d <= end)]
    if window_days is not None and chosen and start is None:
        first = chosen[-1] - dt.timedelta(days=window_days - 1)
        chosen = [d for d in chosen if d >= first]
    return chosen


def plan_window(
    sources: Sequence[str],
    fmt: str,
    *,
    window_days: int | None,
    start: dt.date | None,
    end: dt.date | None,
    storage_options: StorageOptions | None,
    data_root: str | None,
) -> Window:
    """List the sources' partitions and choose the window's (see ``snapshot.take_snapshot`` for the arguments).

    Raises:
        SourceOutsideDataRoot: for a local source, or a link in it, that leads out of the data root.
        DataError: for a missing source (the only one, or every member), or a window without partitions.
    """
    by_source: dict[str, dict[dt.date, list[str]]] = {}
    skipped: dict[str, str] = {}
    for src in sources:
        try:
            by_source[src] = list_partitions(src, fmt, storage_options=storage_options, data_root=data_root)
        except DataError as exc:
            if len(sources) == 1 or isinstance(exc, SourceOutsideDataRoot):
                raise  # a source outside the data root is refused, not skipped as a member without data
            skipped[src] = str(exc)  # a member city without data yet must not stop its parent's model
    if not by_source:
        raise DataError(f"none of the {len(sources)} sources holds data: " + "; ".join(skipped.values()))
    available = sorted({day for partitions in by_source.values() for day in partitions})
    dates = select_window(available, window_days=window_days, start=start, end=end)
    if not dates:
        raise DataError(
            f"no partition of {' + '.join(sources)!r} falls in the window start={start} end={end}; "
            f"available dates run from {available[0]} to {available[-1]}"
        )
    return Window(list(sources), by_source, skipped, available, dates, window_days, start, end)
