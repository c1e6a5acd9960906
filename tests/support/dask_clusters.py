"""A real ``distributed.LocalCluster`` for the Dask tests: two light workers sharing the machine's cores."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from airflow_ml.ml.dask_settings import DaskSettings, LocalClusterSettings

#: What a task starts for ``training.engine: dask`` without a connection: two worker processes. Never threads of
#: the test's process: LightGBM's distributed training deadlocked there, and so did a snapshot task's cluster in a
#: whole unit run (each stalled the run until pytest-timeout's 900 s).
LOCAL_CLUSTER = DaskSettings(
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


@contextlib.contextmanager
def cluster_client() -> Iterator[Any]:
    """A client of two worker processes (one thread each): the tests' own cluster for work they hand to Dask."""
    from distributed import Client

    with process_cluster() as cluster, Client(cluster) as client:
        yield client


def dask_city(connection: str, *, rounds: int, drift: bool = True) -> str:
    """The ``training:`` (and ``drift:``) YAML of a city that trains on the cluster of ``connection``."""
    off = "" if drift else "drift:\n  enabled: false\n"
    return (
        f"training:\n  num_boost_round: {rounds}\n  engine: dask\n  dask:\n    connection: {connection}\n"
        f"    network_timeout_minutes: 1\n{off}"
    )
