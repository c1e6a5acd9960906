"""A real ``distributed.LocalCluster`` for the tests of the Dask data path, and the memory its workers use.

Two worker processes of one thread each: the machine's two cores are shared. Spilling and pausing are off, so a
worker either holds its tasks' data in memory or is killed by its nanny at 95% of its memory limit: a test that
completes under a limit shows that no worker needed more.
"""

from __future__ import annotations

import contextlib
import resource
from collections.abc import Iterator
from typing import Any

#: Frames of the tests are measured with ``memory_usage(deep=True)``; MiB for the messages.
MIB = 1024 * 1024


@contextlib.contextmanager
def local_cluster(*, workers: int = 2, memory_limit: int | str = "1GiB") -> Iterator[Any]:
    """A LocalCluster of ``workers`` processes with ``memory_limit`` each, and a client of it."""
    import dask
    from distributed import Client, LocalCluster

    memory = {f"distributed.worker.memory.{k}": False for k in ("target", "spill", "pause")}
    with (
        dask.config.set({**memory, "distributed.worker.memory.terminate": 0.95}),
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            memory_limit=memory_limit,
            dashboard_address=None,
            silence_logs=40,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def warm_up() -> int:
    """In a worker: import and run what the tasks use (GX included), then return the process's resident bytes."""
    import pandas as pd
    import psutil

    from airflow_ml.validation.runner import run_suite

    suite = {
        "name": "warm",
        "expectations": [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}}],
    }
    run_suite(pd.DataFrame({"a": [1, 2]}), suite, suite_file="")
    return int(psutil.Process().memory_info().rss)


def peak_rss() -> int:
    """In a worker (or any process): the most resident memory it ever had, in bytes (Linux reports KiB)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def pid() -> int:
    """In a worker: its process id (the same before and after a run: its nanny never restarted it)."""
    import os

    return os.getpid()
