"""Which rows of this run's snapshot the drift check compares: what is new since the champion's training window.

Overlapping windows dilute a shift: a 90-day window that gained two weeks of new data still holds 76 days the
champion was trained on. So, by default (``compare: new_rows``), only the rows of the partitions after the last
partition of the champion's training snapshot are compared. Rows carry no partition column in a snapshot, so they
are selected by the time column: every row at or after midnight of the first compared partition's date.

Two guards keep the comparison meaningful, each said in the record:

- fewer new partitions than ``min_new_days``: the latest ``min_new_days`` partitions are compared, so that one
  new day is not judged against a whole weekly cycle (its weekday alone would be a "shift");
- no new partition at all (a re-run of the champion's window), fewer rows than ``min_new_rows``, or a time
  column that cannot be read: the whole snapshot is compared, as ``compare: whole_snapshot`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

Compare = Literal["new_rows", "whole_snapshot"]
WHOLE = "this snapshot (all its rows)"


@dataclass(frozen=True)
class Selection:
    """The rows compared with the champion's training data, and how they were chosen.

    Attributes:
        frame: The rows.
        name: How the drift summary names them.
        record: ``compared`` in ``drift.json``: ``requested`` and ``mode`` (new_rows or whole_snapshot),
            ``since`` (the first day compared), ``partitions``, ``new_partitions``, ``rows``, ``snapshot_rows``,
            ``snapshot_window``, ``champion_window`` and ``note`` (why the mode differs from the request, or
            how the window was widened).
        fell_back: Whether new rows were asked for and the whole snapshot was compared instead.
        rows: Which of the snapshot's rows ``frame`` holds, as a boolean mask in the snapshot's order; None
            when it holds them all (then the champion's predictions on the whole snapshot, kept, are theirs).
    """

    frame: pd.DataFrame
    name: str
    record: dict[str, Any] = field(default_factory=dict)
    fell_back: bool = False
    rows: Any = field(default=None, repr=False, compare=False)


def select_rows(
    frame: pd.DataFrame,
    *,
    partitions: Sequence[str],
    reference_partitions: Sequence[str],
    time_column: str | None,
    compare: Compare = "new_rows",
    min_new_rows: int = 200,
    min_new_days: int = 7,
) -> Selection:
    """The rows of this snapshot to compare with the champion's training snapshot.

    Args:
        frame: This snapshot's rows (with the time column when ``compare`` is ``new_rows``).
        partitions: This snapshot's partition dates (``YYYY-MM-DD``, from its manifest).
        reference_partitions: The partition dates of the champion's training snapshot.
        time_column: The column that dates a row; without it the whole snapshot is compared.
        compare: ``new_rows`` (the default) or ``whole_snapshot``.
        min_new_rows: Fewer selected rows than this: the whole snapshot is compared instead.
        min_new_days: Compare at least this many of the latest partitions.
    """
    days = sorted(partitions)
    reference = sorted(reference_partitions)
    base: dict[str, Any] = {
        "requested": compare,
        "snapshot_rows": len(frame),
        "snapshot_window": [days[0], days[-1]] if days else None,
        "champion_window": [reference[0], reference[-1]] if reference else None,
    }

    def whole(note: str) -> Selection:
        record = {**base, "mode": "whole_snapshot", "since": None, "partitions": len(days), "rows": len(frame)}
        return Selection(frame, WHOLE, {**record, "note": note}, fell_back=compare == "new_rows")

    if compare == "whole_snapshot":
        return whole("drift.compare is whole_snapshot")
    if not reference or not days:
        return whole("the champion's snapshot manifest lists no partitions: compared the whole snapshot")
    new = [day for day in days if day > reference[-1]]
    base["new_partitions"] = len(new)
    if not new:
        return whole(
            f"no partition of this snapshot is newer than the champion's training window ({reference[0]}.."
            f"{reference[-1]}): compared the whole snapshot"
        )
    chosen = days[-max(len(new), min_new_days) :]
    since = chosen[0]
    if not time_column or time_column not in frame.columns:
        return whole(f"the time column {time_column!r} is not in this snapshot, so new rows cannot be told apart")
    try:
        times = _datetimes(frame[time_column])
    except (ValueError, TypeError) as exc:
        return whole(f"the time column {time_column!r} is not date-times ({exc}), so new rows cannot be told apart")
    start = pd.Timestamp(since)
    if times.dt.tz is not None:
        start = start.tz_localize(times.dt.tz)
    mask = (times >= start).to_numpy(dtype=bool)
    selected = frame.loc[mask]
    if len(selected) < min_new_rows:
        return whole(
            f"only {len(selected)} row(s) since {since} (drift.min_new_rows {min_new_rows}): too few for a "
            "meaningful comparison, so the whole snapshot was compared"
        )
    note = ""
    if len(chosen) > len(new):
        note = (
            f"{len(new)} partition(s) after the champion's training window; the latest {len(chosen)} were compared "
            f"(drift.min_new_days {min_new_days}) so that a weekly cycle is covered"
        )
    record = {**base, "mode": "new_rows", "since": since, "partitions": len(chosen), "rows": len(selected)}
    name = (
        f"this snapshot's rows since {since} ({len(chosen)} partition(s), {len(new)} after the champion's "
        f"training window ending {reference[-1]})"
    )
    return Selection(selected.reset_index(drop=True), name, {**record, "note": note}, rows=mask)


def _datetimes(values: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    return pd.to_datetime(values, format="ISO8601")


def shared_counts(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    reference_days: Sequence[str],
    current_days: Sequence[str],
    time_column: str | None,
) -> dict[str, int] | None:
    """The values both sides of a comparison hold, per column (``""``: the rows); None when it cannot be told.

    Two snapshots of a rolling window share the rows of the days both cover: the drift step compares the
    previous snapshot with the latest days of this one, so most rows are on both sides and the statistic's
    variance is not that of two independent samples (see :func:`airflow_ml.ml.drift_calibration.effective_rows`).
    The shared rows are those dated in the days both sides cover (``reference_days``: the previous snapshot's
    partitions; ``current_days``: the days compared from this one), counted on each side, the smaller count
    kept (a day that gained late rows shares only the rows it had). Sides whose days do not meet share nothing;
    when they meet and the time column cannot be read, None.
    """
    columns = [c for c in current.columns if c != time_column]
    if not reference_days or not current_days:
        return None
    start, end = max(min(reference_days), min(current_days)), min(max(reference_days), max(current_days))
    if start > end:
        return {"": 0, **dict.fromkeys(columns, 0)}
    if not time_column or time_column not in reference or time_column not in current:
        return None
    try:
        low, high = pd.Timestamp(start), pd.Timestamp(end) + pd.Timedelta(days=1)
        masks = []
        for frame in (reference, current):
            times = _datetimes(frame[time_column])
            tz = times.dt.tz
            masks.append(
                ((times >= (low.tz_localize(tz) if tz else low)) & (times < (high.tz_localize(tz) if tz else high)))
                .fillna(False)
                .to_numpy(dtype=bool)
            )
    except (ValueError, TypeError):
        return None
    counts = {"": int(min(masks[0].sum(), masks[1].sum()))}
    for column in columns:
        if column in reference:
            counts[column] = int(
                min(reference.loc[masks[0], column].notna().sum(), current.loc[masks[1], column].notna().sum())
            )
    return counts
