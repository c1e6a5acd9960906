"""Snapshot and validation on a real distributed.LocalCluster whose workers could not hold the frame
(airflow_ml.data.dask_snapshot and airflow_ml.validation.partitioned, issue 17).

Integration tier: some 200 MiB of rows through two clusters and a one-process run for comparison take minutes
on a loaded machine (about 4.5 at load 20), far over a unit test's budget; pytest's 900 s timeout leaves room.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from airflow_ml.data.dask_snapshot import open_snapshot, take_partitioned_snapshot
from airflow_ml.validation.partitioned import validate_partitions
from tests.support import REPO
from tests.support.partition_clusters import ARROW_POOL, MIB, local_cluster, peak_rss, pid, warm_up

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # a Dask cluster per test: make test-slow


def suite_of(*expectations: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {"name": "big", "expectations": [{"type": t, "kwargs": k} for t, k in expectations]}


def test_snapshot_and_validation_complete_when_no_worker_could_hold_the_frame(tmp_path: Path) -> None:
    """Each worker has room for 60% of the frame between its measured idle size and its nanny's kill threshold.

    The nannies kill a worker at 95% of its limit (spilling and pausing are off), so the same process ids before
    and after, and each worker's peak resident size under the threshold, show that none needed the frame. The
    one-process path's growth on the same files is measured for comparison.
    """
    frame = wide_rows(ROWS_BIG)
    frame_bytes = int(frame.memory_usage(deep=True).sum())
    source = tmp_path / "raw" / "big"
    for number, rows in enumerate(np.array_split(np.arange(len(frame)), FILES_BIG)):
        day = source / f"date={dt.date(2026, 1, 1) + dt.timedelta(days=number)}"
        day.mkdir(parents=True)
        frame.iloc[rows].to_parquet(day / "part.parquet", index=False)
    del frame
    with local_cluster(workers=1, memory_limit="2GiB") as probe:
        idle = max(probe.run(warm_up).values())
    limit = int((idle + 0.6 * frame_bytes) / 0.95)
    room = 0.95 * limit - idle

    with local_cluster(workers=2, memory_limit=limit) as client:
        idles = client.run(warm_up)
        pids = client.run(pid)
        manifest = take_partitioned_snapshot(
            str(source), str(tmp_path / "snapshots"), template="big", city="one", run_id="r", client=client
        )
        rows, _ = open_snapshot(manifest.uri)
        verdict, _ = validate_partitions(
            rows, BIG_SUITE, suite_file="big.json", part_rows=[p["rows"] for p in manifest.parts], client=client
        )
        peaks = client.run(peak_rss)
        assert client.run(pid) == pids  # no worker was killed and restarted by its nanny

    local = local_growth(str(source), str(tmp_path / "local"))
    idle_mib = [round(i / MIB) for i in idles.values()]
    print(
        f"\nframe {frame_bytes / MIB:.0f} MiB in memory, {FILES_BIG} files; worker idle {idle_mib} MiB, limit "
        f"{limit / MIB:.0f} MiB (room {room / MIB:.0f} MiB to the kill threshold); worker peaks "
        f"{[round(p / MIB) for p in peaks.values()]} MiB; one process grows {local / MIB:.0f} MiB for the same"
    )
    assert manifest.row_count == ROWS_BIG
    assert verdict.status == "passed", verdict.summary()
    assert verdict.row_count == ROWS_BIG
    assert all(peak < 0.95 * limit for peak in peaks.values())
    assert room < frame_bytes < 2 * room  # no worker has room for the frame; the two together have
    assert local > room  # the one-process path needs more than a worker's room


#: About 200 MiB in memory, in 5 MiB files: a worker's fixed growth (imports, allocator, GX) is some 60 MiB.
ROWS_BIG, FILES_BIG = 2_400_000, 40


def wide_rows(count: int) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    columns = {f"x{i}": rng.normal(size=count) for i in range(10)}
    return pd.DataFrame({**columns, "hour": rng.integers(0, 24, count)})


BIG_SUITE = suite_of(
    ("expect_table_row_count_to_be_between", {"min_value": 1_000_000}),
    ("expect_column_values_to_not_be_null", {"column": "x0"}),
    ("expect_column_values_to_be_between", {"column": "hour", "min_value": 0, "max_value": 23}),
    ("expect_column_max_to_be_between", {"column": "x1", "max_value": 100}),
    ("expect_column_mean_to_be_between", {"column": "x2", "min_value": -1, "max_value": 1}),
)


def local_growth(source: str, root: str) -> int:
    """How much one process grows (peak resident size minus its size once warmed up) to snapshot and validate."""
    script = f"""
import json
from tests.support.partition_clusters import warm_up, peak_rss
from airflow_ml.data.snapshot import take_snapshot, read_snapshot
from airflow_ml.validation.runner import run_suite
idle = max(warm_up(), peak_rss())
manifest = take_snapshot({source!r}, {root!r}, template="big", city="one", run_id="r")
verdict, _ = run_suite(read_snapshot(manifest.uri), {BIG_SUITE!r}, suite_file="big.json")
assert verdict.status == "passed", verdict.summary()
print(json.dumps(peak_rss() - idle))
"""
    environ = {**os.environ, **ARROW_POOL, "MALLOC_TRIM_THRESHOLD_": "65536"}  # as the workers have it
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPO, env=environ
    )
    return int(done.stdout.strip().splitlines()[-1])
