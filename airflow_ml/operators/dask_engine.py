"""The Dask client of a task whose city has ``training.engine: dask``: made at execute, closed when the step ends.

Every task that reads the snapshot (snapshot, validate, train, gate, health check) works where training does:
on the cluster of the ``dask`` connection named by ``training.dask.connection``, else on a LocalCluster started
for the task (:func:`airflow_ml.ml.dask_client.dask_client`): without a connection every task starts a LocalCluster
of its own, and each task's log names the cluster it used. Nothing here runs at parse: the hook and Dask
are imported inside the functions.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_ml.ml.dask_settings import ClusterAddress, DaskSettings

log = logging.getLogger(__name__)


def cluster_address(settings: DaskSettings) -> ClusterAddress | None:
    """The scheduler of ``settings.connection`` (its ``dask`` connection), or None for a LocalCluster.

    Raises:
        ValueError: naming the connection, the value and the fix (see
            :meth:`~airflow_ml.hooks.dask_cluster.DaskClusterHook.get_conn`).
    """
    if not settings.connection:
        return None
    from airflow_ml.hooks.dask_cluster import DaskClusterHook

    return DaskClusterHook(settings.connection).get_conn()


@contextlib.contextmanager
def engine_client(engine: str, settings: DaskSettings | None, *, what: str) -> Iterator[Any]:
    """A ``distributed.Client`` when ``engine`` is ``dask`` (None: ``settings``' defaults), else None.

    Args:
        engine: The task's ``engine`` setting.
        settings: ``training.dask``.
        what: What the task does on the cluster, for its log line.

    Raises:
        DaskClusterError: when the cluster does not answer or has no worker in time, naming the fix.
    """
    if engine != "dask":
        yield None
        return
    from airflow_ml.ml.dask_client import dask_client
    from airflow_ml.ml.dask_settings import DaskSettings

    settings = settings or DaskSettings()
    target = cluster_address(settings)
    where = f"connection {settings.connection!r}" if target is not None else "no training.dask.connection"
    log.info("%s on Dask (training.engine: dask; %s)", what, where)
    with dask_client(settings, target) as client:
        yield client
