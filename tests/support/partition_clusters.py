"""A real ``distributed.LocalCluster`` for the tests of the Dask data path, and the memory its workers use.

Two worker processes of one thread each: the machine's two cores are shared. Spilling and pausing are off, so a
worker either holds its tasks' data in memory or is killed by its nanny at 95% of its memory limit: a test that
completes under a limit shows that no worker needed more.

The workers use the system allocator for Arrow (``ARROW_DEFAULT_MEMORY_POOL=system``, beside the nanny's own
``MALLOC_TRIM_THRESHOLD_``), as the workers airflow-ml starts do (``WORKER_ENVIRON`` of
:mod:`airflow_ml.ml.dask_client`, and the compose file's): Arrow's default mimalloc pool keeps what a task freed,
measured at 55-70 MiB more per worker after one 5 MiB partition, against about 25 MiB with the system allocator
(docs/guides/data.md). Spilling and pausing, on by default in Dask, are off here only to make the measure strict:
they can only keep a worker alive longer, never need more memory.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from airflow_ml.ml.dask_client import WORKER_ENVIRON

#: Frames of the tests are measured with ``memory_usage(deep=True)``; MiB for the messages.
MIB = 1024 * 1024
#: The environment of the workers (and of a process they are compared with): the one airflow-ml's workers get.
ARROW_POOL = dict(WORKER_ENVIRON)


@contextlib.contextmanager
def local_cluster(*, workers: int = 2, memory_limit: int | str = "1GiB") -> Iterator[Any]:
    """A LocalCluster of ``workers`` processes with ``memory_limit`` each, and a client of it."""
    import dask
    from distributed import Client, LocalCluster

    memory = {f"distributed.worker.memory.{k}": False for k in ("target", "spill", "pause")}
    environ = {**dask.config.get("distributed.nanny.pre-spawn-environ"), **ARROW_POOL}
    with (
        dask.config.set(
            {**memory, "distributed.worker.memory.terminate": 0.95, "distributed.nanny.pre-spawn-environ": environ}
        ),
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
    """In a worker: run a tiny partitioned snapshot and its validation, then return the process's resident bytes.

    Every module and cache the tasks use is loaded, so the size returned is what the worker holds before data.
    """
    import tempfile
    from pathlib import Path

    import dask
    import pandas as pd
    import psutil

    from airflow_ml.data.dask_snapshot import open_snapshot, take_partitioned_snapshot
    from airflow_ml.validation.partitioned import validate_partitions

    suite = {"name": "warm", "expectations": [
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}},
        {"type": "expect_column_max_to_be_between", "kwargs": {"column": "a", "max_value": 9}},
        {"type": "expect_column_mean_to_be_between", "kwargs": {"column": "a", "max_value": 9}},
    ]}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp, dask.config.set(scheduler="synchronous"):
        day = Path(tmp, "source", "date=2026-01-01")
        day.mkdir(parents=True)
        pd.DataFrame({"a": [1.0, 2.0]}).to_parquet(day / "part.parquet", index=False)
        manifest = take_partitioned_snapshot(str(day.parent), f"{tmp}/s", template="w", city="w", run_id="w")
        validate_partitions(open_snapshot(manifest.uri)[0], suite, suite_file="warm", part_rows=[2])
    return int(psutil.Process().memory_info().rss)


def peak_rss() -> int:
    """In a worker (or any process): the most resident memory it ever had, in bytes (Linux's ``VmHWM``).

    Not ``getrusage``'s ``ru_maxrss``: it survives ``execve``, so a spawned worker would report its parent's size.
    """
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("/proc/self/status has no VmHWM line: these tests measure memory on Linux only")


def pid() -> int:
    """In a worker: its process id (the same before and after a run: its nanny never restarted it)."""
    import os

    return os.getpid()


def warm_up_pipeline() -> int:
    """In a worker: :func:`warm_up`, then what training and scoring on the cluster load (LightGBM and its Dask
    module, a small training run, MLflow's pyfunc loader, the serving code); the process's resident bytes after."""
    import lightgbm as lgb
    import lightgbm.dask
    import mlflow.pyfunc  # noqa: F401 - a model sent to a worker unpickles through it
    import numpy as np

    import airflow_ml.ml.dask_holdout
    import airflow_ml.ml.serving  # noqa: F401

    rows = np.random.default_rng(0).normal(size=(500, 4))
    lgb.train({"verbose": -1, "num_threads": 1}, lgb.Dataset(rows, rows[:, 0]), num_boost_round=5)
    return warm_up()


def limit_memory(client: Any, limit: int) -> None:
    """Set every worker's memory limit to ``limit`` bytes once they are warm (see :func:`warm_up_pipeline`).

    The nanny's monitor (started because the cluster had a limit) reads its limit at each check, so from now on it
    kills a worker whose resident size passes ``distributed.worker.memory.terminate`` of ``limit``; the worker's own
    limit is set alike (spilling and pausing are off in :func:`local_cluster`).
    """

    def on(dask_worker: Any) -> None:
        dask_worker.memory_manager.memory_limit = limit

    client.run(on, nanny=True)
    client.run(on)
