"""What a template, group or city file says about training on a Dask cluster (``training.dask``).

YAML names the Airflow connection of an existing cluster (the scheduler's address and TLS files live in the
connection, never in YAML) or sizes a ``LocalCluster`` for development; every number has bounds.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from airflow_ml.exceptions import show_value
from airflow_ml.templates.base import Strict

#: A memory size as Dask reads it (``dask.utils.parse_bytes``): a number and a unit, e.g. ``2GiB`` or ``500MB``.
MEMORY_PATTERN = re.compile(r"^\d+(\.\d+)?\s*(B|kB|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")
#: A connection id as Airflow allows it (letters, digits, ``_``, ``-`` and ``.``).
CONNECTION_PATTERN = r"^[A-Za-z0-9_.-]{1,250}$"


class LocalClusterSpec(Strict):
    """A ``distributed.LocalCluster`` started inside the train task, for development and tests."""

    n_workers: int = Field(default=2, ge=1, le=64, description="Worker processes (or threads), 1 to 64.")
    threads_per_worker: int = Field(default=1, ge=1, le=64, description="Threads per worker, 1 to 64.")
    memory_limit: str = Field(
        default="2GiB",
        description="Memory per worker: a number and a unit (B, kB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. 2GiB.",
    )
    processes: bool = Field(
        default=True, description="Workers in their own processes (true) or as threads of the task (false)."
    )

    @field_validator("memory_limit")
    @classmethod
    def _memory_size(cls, value: str) -> str:
        if not MEMORY_PATTERN.match(value):
            raise ValueError(
                f"memory_limit {show_value(value)} is not a memory size; write a number and a unit, "
                "e.g. '2GiB', '512MiB' or '4GB'"
            )
        return value


class DaskSpec(Strict):
    """How ``training.engine: dask`` reaches its cluster and bounds LightGBM's network."""

    connection: str | None = Field(
        default=None,
        pattern=CONNECTION_PATTERN,
        description="Airflow connection (type dask) of an existing cluster's scheduler; null: a LocalCluster.",
    )
    local_cluster: LocalClusterSpec = Field(
        default_factory=LocalClusterSpec, description="The LocalCluster started when no connection is named."
    )
    listen_port: int | None = Field(
        default=None,
        ge=1024,
        le=65535,
        description="LightGBM's local_listen_port on every worker, 1024 to 65535 (one worker per host, open in "
        "the firewall); null: LightGBM picks free ports (needed when workers share a host).",
    )
    network_timeout_minutes: int = Field(
        default=5,
        ge=1,
        le=24 * 60,
        description="LightGBM's time_out: a worker's socket that waits longer fails, 1 to 1440 minutes.",
    )
    wait_for_workers_seconds: int = Field(
        default=60, ge=1, le=3600, description="How long the task waits for the cluster's workers, 1 to 3600."
    )
