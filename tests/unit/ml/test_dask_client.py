"""The train task's Dask client (airflow_ml.ml.dask_client): a killed worker fails the work at once, clearly;
an unreachable scheduler names the fix; the log names the cluster used; a LocalCluster's workers use Arrow's system
allocator. Real LocalClusters,
one with worker processes killed for real."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from unittest import mock

import pytest

from airflow_ml.ml.dask_client import (
    WORKER_ENVIRON,
    DaskClusterError,
    dask_client,
    run_guarded,
    unencrypted_beyond_loopback,
)
from airflow_ml.ml.dask_settings import ClusterAddress, DaskSettings, LocalClusterSettings
from tests.support.dask_clusters import LOCAL_CLUSTER, process_cluster


def test_a_worker_killed_during_the_work_fails_it_naming_the_worker() -> None:
    with process_cluster() as cluster:
        target = ClusterAddress(cluster.scheduler_address)
        with dask_client(DaskSettings(), target) as client:
            pids = client.run(os.getpid)
            victim, pid = sorted(pids.items())[0]
            # The work waits on a task of the victim, as LightGBM's workers wait on each other's sockets.
            work = lambda: client.submit(time.sleep, 60, workers=[victim], pure=False).result()  # noqa: E731
            threading.Timer(1.0, os.kill, (pid, signal.SIGKILL)).start()
            started = time.monotonic()
            with pytest.raises(
                DaskClusterError, match=rf"worker\(s\) \['{victim}'\] left the cluster.*champion is unchanged"
            ):
                run_guarded(client, work, what="training on Dask")
            assert time.monotonic() - started < 30  # not the 60 s the task would have waited
        # A retry, once the nanny has restarted the worker, completes.
        with dask_client(DaskSettings(), target) as client:
            client.wait_for_workers(2, timeout=30)
            assert run_guarded(client, lambda: client.submit(sum, [1, 2]).result(), what="retry") == 3


def test_an_error_of_the_work_is_raised_as_it_is() -> None:
    with dask_client(LOCAL_CLUSTER, None) as client:
        assert len(client.nthreads()) == 2
        with pytest.raises(ZeroDivisionError):
            run_guarded(client, lambda: client.submit(lambda: 1 / 0).result(), what="work")


def test_an_unreachable_scheduler_names_the_connection_to_fix() -> None:
    settings = DaskSettings(wait_for_workers_seconds=2)
    opening = dask_client(settings, ClusterAddress("tcp://127.0.0.1:1"))
    with pytest.raises(DaskClusterError, match=r"tcp://127.0.0.1:1 did not answer in 2 s.*training.dask.connection"):
        opening.__enter__()


def test_the_log_names_the_cluster_used_an_address_or_a_local_cluster_of_the_task(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="airflow_ml.ml.dask_client"):
        with dask_client(LOCAL_CLUSTER, None):
            pass
        with process_cluster() as cluster, dask_client(DaskSettings(), ClusterAddress(cluster.scheduler_address)):
            pass

    named = [m for m in caplog.messages if m.startswith("Dask cluster: ")]
    assert named == [
        "Dask cluster: local, 2 workers (a LocalCluster started for this task and stopped with it; name a dask "
        "connection in training.dask.connection for the tasks to share one cluster)",
        f"Dask cluster: {cluster.scheduler_address}, 2 workers",
    ]


def _arrow_pool() -> tuple[str | None, str]:
    """In a worker: its ARROW_DEFAULT_MEMORY_POOL and the backend of Arrow's default pool."""
    import pyarrow

    return os.environ.get("ARROW_DEFAULT_MEMORY_POOL"), pyarrow.default_memory_pool().backend_name


def test_the_workers_of_a_local_cluster_use_arrows_system_allocator() -> None:
    # What the memory test's workers ran with (tests/support/partition_clusters.py): a task's LocalCluster ships it.
    one = DaskSettings(local_cluster=LocalClusterSettings(n_workers=1, threads_per_worker=1, processes=True))

    with mock.patch.dict(os.environ), dask_client(one, None) as client:  # the nanny sets it here too: restored after
        [found] = client.run(_arrow_pool).values()

    assert found == (WORKER_ENVIRON["ARROW_DEFAULT_MEMORY_POOL"], "system")


@pytest.mark.parametrize(
    ("address", "warned"),
    [
        ("tcp://dask-scheduler:8786", True),
        ("dask-scheduler:8786", True),  # Dask reads a bare host:port as tcp
        ("tcp://10.0.0.5:8786", True),
        ("tcp://[2001:db8::1]:8786", True),
        ("tls://dask-scheduler:8786", False),
        ("tcp://127.0.0.1:8786", False),
        ("tcp://localhost:8786", False),
        ("tcp://[::1]:8786", False),
        ("inproc://10.0.0.5/1/2", False),
    ],
)
def test_plain_tcp_beyond_this_machine_is_told_apart(address: str, warned: bool) -> None:
    # The tasks' storage credentials travel with them: over plain tcp beyond loopback, the task warns.
    assert unencrypted_beyond_loopback(address) is warned
