"""Settings of ``training.engine: dask`` and the address of a Dask scheduler, as the train task gets them.

Pure Python (no dask import): the factory builds these when it parses DAG files. The cluster itself is reached
only inside the task (:mod:`airflow_ml.ml.dask_client`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from airflow_ml.ml.frozen_settings import FrozenSettings

_ADDRESS = re.compile(r"^(tcp|tls)://([A-Za-z0-9_.-]+|\[[0-9A-Fa-f:]+\]):(\d{1,5})$")


@dataclass(frozen=True)
class LocalClusterSettings(FrozenSettings):
    """A ``distributed.LocalCluster`` started inside the task when no connection is named.

    Attributes:
        n_workers: Workers.
        threads_per_worker: Threads per worker (LightGBM runs as many per worker).
        memory_limit: Memory per worker, as Dask reads it (``2GiB``).
        processes: Workers in their own processes (False: threads of the task's process, which can deadlock
            LightGBM's distributed training: keep True for a city that trains on the cluster).
    """

    n_workers: int = 2
    threads_per_worker: int = 1
    memory_limit: str = "2GiB"
    processes: bool = True


@dataclass(frozen=True)
class DaskSettings(FrozenSettings):
    """How the train task reaches its Dask cluster and bounds LightGBM's network (``training.dask``).

    Attributes:
        connection: The Airflow connection (type ``dask``) of an existing cluster, or None for a LocalCluster.
        local_cluster: The LocalCluster's size.
        listen_port: LightGBM's ``local_listen_port`` on every worker, or None (LightGBM finds free ports).
        network_timeout_minutes: LightGBM's ``time_out``: a socket that waits longer fails the training.
        wait_for_workers_seconds: How long the task waits for the cluster's first worker.
        early_stopping_rows: The most validation rows copied to every worker to stop training early
            (:mod:`airflow_ml.ml.dask_early_stopping`); above, every round is trained and the booster cut after.
    """

    nested: ClassVar[Mapping[str, Any]] = {"local_cluster": LocalClusterSettings}

    connection: str | None = None
    local_cluster: LocalClusterSettings = field(default_factory=LocalClusterSettings)
    listen_port: int | None = None
    network_timeout_minutes: int = 5
    wait_for_workers_seconds: int = 60
    early_stopping_rows: int = 1_000_000


@dataclass(frozen=True)
class ClusterAddress:
    """Where an existing cluster's scheduler listens, and the TLS files that reach it.

    Attributes:
        address: ``tcp://host:port`` or ``tls://host:port``.
        ca_file: The CA certificate that signed the scheduler's (TLS).
        cert_file: The client's certificate (TLS, with ``key_file``).
        key_file: The client's private key.
    """

    address: str
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    @property
    def uses_tls(self) -> bool:
        """Whether the address is ``tls://``."""
        return self.address.startswith("tls://")


def cluster_address(
    address: str,
    *,
    ca_file: str | None = None,
    cert_file: str | None = None,
    key_file: str | None = None,
    where: str = "the Dask connection",
) -> ClusterAddress:
    """A checked :class:`ClusterAddress`.

    Raises:
        ValueError: naming ``where``, the value and the fix, for an address that is not ``tcp://`` or
            ``tls://host:port`` with a port 1-65535, TLS files without ``tls://`` or ``tls://`` without a CA,
            and a certificate without its key (or the reverse).
    """
    match = _ADDRESS.match(address.strip())
    if not match or not 1 <= int(match.group(3)) <= 65535:
        raise ValueError(
            f"{where}: scheduler address {address!r} is not tcp://host:port or tls://host:port (port 1-65535); "
            "write it e.g. tcp://dask-scheduler:8786"
        )
    result = ClusterAddress(address.strip(), ca_file or None, cert_file or None, key_file or None)
    if (result.cert_file is None) != (result.key_file is None):
        raise ValueError(f"{where}: cert_file and key_file go together; set both in its extras, or neither")
    if result.uses_tls and result.ca_file is None:
        raise ValueError(f"{where}: a tls:// scheduler needs ca_file (the CA's certificate path) in its extras")
    if not result.uses_tls and (result.ca_file or result.cert_file):
        raise ValueError(f"{where}: TLS files are set but the address is {address!r}; use tls://host:port")
    return result
