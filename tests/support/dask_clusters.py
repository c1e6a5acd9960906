"""A real ``distributed.LocalCluster`` for the Dask tests: two light workers sharing the machine's cores."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from airflow_ml.ml.dask_settings import DaskSettings, LocalClusterSettings

#: A light cluster for the snapshot and validation tests: two worker threads of the test's process. Never for
#: training: LightGBM's distributed training in two threads of one process deadlocked (a whole test run stalled).
THREADED = DaskSettings(local_cluster=LocalClusterSettings(n_workers=2, processes=False, memory_limit="1GiB"))
#: What the train step starts for ``training.engine: dask`` without a connection: two worker processes.
TRAINING = DaskSettings(
    local_cluster=LocalClusterSettings(n_workers=2, threads_per_worker=1, processes=True, memory_limit="1GiB")
)


@contextlib.contextmanager
def process_cluster() -> Iterator[Any]:
    """Two workers in their own processes (one thread each), so a test can kill one for real."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, memory_limit="1GiB", dashboard_address=None
    ) as cluster:
        yield cluster


def dask_city(connection: str, *, rounds: int, drift: bool = True) -> str:
    """The ``training:`` (and ``drift:``) YAML of a city that trains on the cluster of ``connection``."""
    off = "" if drift else "drift:\n  enabled: false\n"
    return (
        f"training:\n  num_boost_round: {rounds}\n  engine: dask\n  dask:\n    connection: {connection}\n"
        f"    network_timeout_minutes: 1\n{off}"
    )
