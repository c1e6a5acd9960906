"""Which consecutive partitions of a Dask frame one check validates together, and that check (:mod:`.partitioned`).

GX pays a fixed cost per run (a batch, a suite, planning and resolving its metrics, rendering the results) however few
rows it checks: a snapshot of 60 daily partitions validated one partition per run paid it 60 times (warm, on two
workers at 1M rows: 1.9 s in 60 runs, 0.7 s in 2 checks; a worker's first run also imports GX). A check therefore
validates a run of neighbouring partitions, never splitting one and keeping their order, so the merged figures stay
exact (the first unexpected values are the first partitions'). A check holds at most ``rows_per_check`` rows and, on a
cluster whose workers have a memory limit, at most :data:`ROOM_SHARE` of the smallest room a worker thread has (its
worker's free memory shared among its threads); there are at least as many checks as the cluster has workers (when
there are as many partitions: GX runs one check at a time in a process), as a rule a multiple of them, so that no
worker waits for another's last check.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

from airflow_ml.validation.runner import columns_to_validate, run_suite

#: Rows one check validates at most, by default: GX's fixed cost is small beside checking them, and a worker holds
#: them (and their concatenation) without strain.
DEFAULT_ROWS_PER_CHECK = 1_000_000
#: The share of a worker thread's room (its memory limit less what the worker holds now) one check's partitions may
#: take in memory. A worker holds them, the next check's being read, the columns GX reads concatenated and GX's own
#: work: measured at about 30 MiB plus 1.5 times the partitions (tests/integration/test_dask_memory_dag.py's frame).
ROOM_SHARE = 0.2


def group_partitions(part_rows: Sequence[int], *, max_rows: int | None, min_groups: int = 1) -> list[range]:
    """Cut the partitions, in order, into runs of neighbours of about equal rows: one run per check.

    Args:
        part_rows: The rows of each partition.
        max_rows: The most rows of a run (a larger partition is a run alone); 0 or None: one run per partition.
        min_groups: At least this many runs when there are as many partitions; a multiple of it unless uneven
            partitions make a run be cut again.

    Returns:
        Consecutive ranges of partition numbers covering them all, none empty.
    """
    count = len(part_rows)
    if not max_rows or count <= 1:
        return [range(i, i + 1) for i in range(count)]
    total = sum(part_rows)
    runs = max(math.ceil(total / max_rows), 1)
    runs = min(count, math.ceil(runs / min_groups) * min_groups)
    groups: list[range] = []
    for run in _balanced(part_rows, runs):
        if len(run) > 1 and sum(part_rows[i] for i in run) > max_rows:  # uneven partitions: cut it again
            inner = group_partitions([part_rows[i] for i in run], max_rows=max_rows)
            groups.extend(range(run.start + r.start, run.start + r.stop) for r in inner)
        else:
            groups.append(run)
    return _merged_while_they_fit(groups, part_rows, max_rows, min(min_groups, count))


def _merged_while_they_fit(groups: list[range], part_rows: Sequence[int], max_rows: int, fewest: int) -> list[range]:
    """Neighbouring runs joined while they fit in ``max_rows`` and at least ``fewest`` runs remain: a skewed frame
    (one huge partition beside small ones) is not cut into many tiny checks, each paying GX's fixed cost."""
    merged: list[range] = []
    left = len(groups)
    for run in groups:
        last = merged[-1] if merged else None
        if last is not None and left > fewest and sum(part_rows[i] for i in range(last.start, run.stop)) <= max_rows:
            merged[-1] = range(last.start, run.stop)
            left -= 1
        else:
            merged.append(run)
    return merged


def _balanced(part_rows: Sequence[int], runs: int) -> list[range]:
    """``runs`` non-empty runs of neighbours, each cut where the rows so far are nearest an equal share."""
    weights = list(part_rows) if sum(part_rows) else [1] * len(part_rows)
    cumulative = [0]
    for weight in weights:
        cumulative.append(cumulative[-1] + weight)
    cuts = [0]
    for i in range(1, runs):
        target = cumulative[-1] * i / runs
        at = bisect.bisect_left(cumulative, target)
        if at > 0 and (at == len(cumulative) or target - cumulative[at - 1] <= cumulative[at] - target):
            at -= 1
        cuts.append(min(max(at, cuts[-1] + 1), len(weights) - (runs - i)))
    cuts.append(len(weights))
    return [range(a, b) for a, b in itertools.pairwise(cuts)]


def plan_groups(
    frame: Any,
    part_rows: Sequence[int],
    *,
    rows_per_check: int | None,
    client: Any,
    compute: Callable[[list[Any], Any], list[Any]],
) -> list[range]:
    """The runs of partitions of ``frame`` (whose rows are ``part_rows``) each check of ``client``'s cluster takes.

    Asks every worker for its threads and room (its memory limit less its resident memory); when one has a limit,
    one partition, the largest, is read to estimate the bytes of a row in memory. Without a client (Dask's default
    scheduler) only ``rows_per_check`` bounds a run.
    """
    if not rows_per_check or frame.npartitions <= 1:
        return [range(i, i + 1) for i in range(frame.npartitions)]
    if len(part_rows) != frame.npartitions:
        raise ValueError(f"part_rows lists {len(part_rows)} partitions; the frame has {frame.npartitions}")
    rooms = list(client.run(worker_room).values()) if client is not None else []
    workers = len(rooms) or 1  # GX runs one check at a time in a worker process (runner's lock), whatever its threads
    max_rows = rows_per_check
    room = min((r / t for t, r in rooms if r is not None), default=None)
    if room is not None:
        largest = max(range(len(part_rows)), key=lambda i: part_rows[i])
        if part_rows[largest]:
            used = compute([frame.partitions[largest].memory_usage(deep=True).sum()], client)[0]
            per_row = max(float(used) / part_rows[largest], 1.0)
            max_rows = min(max_rows, max(int(ROOM_SHARE * max(room, 0) / per_row), 1))
    return group_partitions(part_rows, max_rows=max_rows, min_groups=workers)


def worker_room(dask_worker: Any) -> tuple[int, int | None]:
    """On a worker: its threads, and its memory limit less its resident memory (None without a limit)."""
    limit = dask_worker.memory_manager.memory_limit  # what its memory manager and nanny judge it by
    room = int(limit) - int(dask_worker.monitor.get_process_memory()) if limit else None
    return int(dask_worker.state.nthreads), room


def check_group(
    parts: list[Any],
    numbers: list[int],
    suite: dict[str, Any],
    partials: dict[int, tuple[str, str]],
    counts: list[int],
    sample_columns: list[str],
    seed: int,
) -> dict[str, Any]:
    """On a worker: GX once on neighbouring partitions (numbered ``numbers``), their min, max, sum or distinct values
    of some columns (``partials``: column and how, by expectation), and each partition's share (``counts``) of the
    seeded sample, drawn as if it were checked alone (the same rows whatever the groups)."""
    import numpy as np
    import pandas as pd

    schema = parts[0].iloc[:0]
    # Only the columns something here reads are concatenated (GX would cut the others away; the schema stands for
    # the table in the column checks), so that a check holds little more than its partitions.
    rows = columns_to_validate(suite, list(schema.columns)) if suite["expectations"] else []
    wanted = None if rows is None else {*rows, *(c for c, _ in partials.values()), *sample_columns}
    cut = parts if wanted is None else [p[[c for c in schema.columns if c in wanted]] for p in parts]
    part = _joined(cut)
    found: dict[str, Any] = {"rows": len(part), "items": [], "partials": {}, "sample": None}
    if suite["expectations"]:
        found["items"] = run_suite(part, suite, suite_file="", schema=schema)[1]["results"]
    for index, (column, how) in partials.items():
        values = part[column]
        if how == "unique":  # the distinct values, nulls left out as GX leaves them out
            found["partials"][index] = values.dropna().drop_duplicates().reset_index(drop=True)
            continue
        if how != "sum" and not values.count():  # no value to take the min or max of (an integer NaN cannot be)
            found["partials"][index] = values.iloc[:0].reset_index(drop=True)
            continue
        # min and max keep the column's type (a date-time stays one); a sum of booleans is a count.
        found["partials"][index] = pd.Series([getattr(values, how)()], dtype=None if how == "sum" else values.dtype)
    # Copies (a row selection), never views: a view would keep the whole group alive until it is gathered.
    samples, start = [], 0
    for number, count, size in zip(numbers, counts, (len(p) for p in parts), strict=True):
        if count:
            picked = np.random.default_rng([seed, number]).choice(size, size=min(count, size), replace=False)
            samples.append(part.iloc[start + np.sort(picked)][sample_columns])
        start += size
    found["sample"] = _joined(samples) if samples else part.iloc[:0][sample_columns].copy()
    return found


def _joined(frames: list[Any]) -> Any:
    """The frames one after the other, as Dask joins partitions (categoricals' categories united), a fresh index:
    neighbours' indexes may repeat. One frame is itself."""
    from dask.dataframe.dispatch import concat

    return frames[0] if len(frames) == 1 else concat(frames).reset_index(drop=True)
