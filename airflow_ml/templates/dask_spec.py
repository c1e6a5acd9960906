"""What a template, group or city file says about training on a Dask cluster (``training.dask``).

YAML names the Airflow connection of an existing cluster (the scheduler's address and TLS files live in the
connection, never in YAML) or sizes a ``LocalCluster`` for development; every number has bounds.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from airflow_ml.exceptions import show_value
from airflow_ml.templates.base import Strict

#: A memory size as Dask reads it (``dask.utils.parse_bytes``): a number and a unit, e.g. ``2GiB`` or ``500MB``.
MEMORY_PATTERN = re.compile(r"^\d+(\.\d+)?\s*(B|kB|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")
_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_UNITS.update({"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40})
#: The bounds of ``local_cluster.memory_limit``: below, a worker is paused or killed at once (and 0 is Dask's
#: "no limit"); above, no host has it.
MEMORY_BOUNDS = (256 * 2**20, 2**40)
#: A connection id as Airflow allows it (letters, digits, ``_``, ``-`` and ``.``).
CONNECTION_PATTERN = r"^[A-Za-z0-9_.-]{1,250}$"


class LocalClusterSpec(Strict):
    """A ``distributed.LocalCluster`` started inside the train task, for development and tests."""

    n_workers: int = Field(default=2, ge=1, le=64, description="Worker processes (or threads), 1 to 64.")
    threads_per_worker: int = Field(default=1, ge=1, le=64, description="Threads per worker, 1 to 64.")
    memory_limit: str = Field(
        default="2GiB",
        description="Memory per worker: a number and a unit (B, kB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. 2GiB; "
        "256MiB to 1TiB.",
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
        low, high = MEMORY_BOUNDS
        if not low <= memory_bytes(value) <= high:
            raise ValueError(
                f"memory_limit {show_value(value)} is {memory_bytes(value):,} bytes, outside 256MiB to 1TiB (a "
                "smaller worker is paused or killed at once, and 0 would mean no limit); write e.g. '2GiB'"
            )
        return value


def memory_bytes(value: str) -> int:
    """The bytes of a size :data:`MEMORY_PATTERN` accepts, as ``dask.utils.parse_bytes`` counts them."""
    number, unit = re.match(r"^([\d.]+)\s*([A-Za-z]+)$", value).groups()  # type: ignore[union-attr]
    return int(float(number) * _UNITS[unit.lower()])


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
    early_stopping_rows: int = Field(
        default=1_000_000,
        ge=0,
        le=1_000_000_000,
        description="The most validation rows copied to every worker so that training stops early (each worker "
        "holds them); above, every round is trained and the model cut afterwards; 0: always the latter.",
    )

    @model_validator(mode="after")
    def _fixed_port_on_one_host(self) -> DaskSpec:
        # A LocalCluster is one host, and lightgbm.dask refuses one fixed port for several workers of a host: the
        # fit would fail only after the split and the preprocessing.
        if self.listen_port is not None and self.connection is None and self.local_cluster.n_workers > 1:
            raise ValueError(
                f"listen_port {self.listen_port} with no connection: the LocalCluster's "
                f"{self.local_cluster.n_workers} workers share one host, where LightGBM cannot give them one fixed "
                "port; remove listen_port (LightGBM picks free ports), or name a cluster in dask.connection"
            )
        return self
