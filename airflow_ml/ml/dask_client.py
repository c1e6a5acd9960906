"""The Dask client of a train task: made inside the task (never at parse), closed when the task ends.

An existing cluster is reached by its :class:`~airflow_ml.ml.dask_settings.ClusterAddress` (from the ``dask``
connection); without one, a ``LocalCluster`` sized by ``training.dask.local_cluster`` starts in the task and stops
with it, so every task starts its own. The task's log names the cluster used (``Dask cluster: tcp://host:8786,
3 workers`` or ``Dask cluster: local, 2 workers (...)``). :func:`run_guarded` runs the distributed training while
watching the cluster's workers: LightGBM's workers talk to each other directly, so one that dies leaves the others
waiting on a socket; the task fails at once with an error naming the lost worker instead.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TypeVar

from airflow_ml.exceptions import AirflowMLError
from airflow_ml.ml.dask_settings import ClusterAddress, DaskSettings

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger(__name__)
T = TypeVar("T")
#: How often the guard looks at the cluster's workers while training runs.
POLL_SECONDS = 0.5
#: What every worker process airflow-ml starts gets in its environment (the LocalCluster here, the compose file's
#: workers): Arrow's system allocator. Arrow's default (mimalloc) pool keeps what a task freed, measured at 55-70 MiB
#: more per worker after one 5 MiB partition (docs/guides/data.md); with it, a worker's memory follows its tasks'
#: data, which is what lets ``local_cluster.memory_limit`` be sized from the data (tests/integration/
#: test_dask_memory_dag.py ran with it).
WORKER_ENVIRON = {"ARROW_DEFAULT_MEMORY_POOL": "system"}


class DaskClusterError(AirflowMLError):
    """The Dask cluster cannot be reached, or lost a worker while training: the run fails, nothing moves."""


def _security(target: ClusterAddress) -> object | None:
    if not target.uses_tls:
        return None
    from distributed.security import Security

    return Security(
        tls_ca_file=target.ca_file,
        tls_client_cert=target.cert_file,
        tls_client_key=target.key_file,
        require_encryption=True,
    )


@contextlib.contextmanager
def dask_client(settings: DaskSettings, target: ClusterAddress | None) -> Iterator[Client]:
    """A client of the cluster at ``target``, or of a LocalCluster sized by ``settings`` (``target`` None).

    A LocalCluster's worker processes start with :data:`WORKER_ENVIRON`. Waits
    ``settings.wait_for_workers_seconds`` for a worker (a LocalCluster: for all of its workers).

    Raises:
        DaskClusterError: when the scheduler does not answer or no worker joins in time, naming the fix.
    """
    import dask
    from distributed import Client, LocalCluster

    wait = settings.wait_for_workers_seconds
    with contextlib.ExitStack() as stack:
        if target is None:
            size = settings.local_cluster
            # Set before each worker process is spawned (Arrow reads it once); a value in Dask's config wins.
            environ = {**WORKER_ENVIRON, **dask.config.get("distributed.nanny.pre-spawn-environ", {})}
            with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
                cluster = stack.enter_context(
                    LocalCluster(
                        n_workers=size.n_workers,
                        threads_per_worker=size.threads_per_worker,
                        memory_limit=size.memory_limit,
                        processes=size.processes,
                        dashboard_address=None,
                    )
                )
            client = stack.enter_context(Client(cluster, set_as_default=False))
            wanted, where, name = size.n_workers, f"a LocalCluster of {size.n_workers} worker(s)", "local"
            # The one line that says which cluster the task used (logged below) says how to share one, too.
            note = (
                " (a LocalCluster started for this task and stopped with it; name a dask connection in "
                "training.dask.connection for the tasks to share one cluster)"
            )
        else:
            where = f"the Dask scheduler at {target.address}"
            try:
                client = stack.enter_context(
                    Client(target.address, security=_security(target), timeout=wait, set_as_default=False)
                )
            except (OSError, TimeoutError) as exc:
                raise DaskClusterError(
                    f"{where} did not answer in {wait} s ({exc}); start the cluster (docker compose --profile "
                    "dask up) or fix the host of the dask connection named by training.dask.connection"
                ) from exc
            wanted, name, note = 1, target.address, ""
            if unencrypted_beyond_loopback(target.address):
                log.warning(
                    "%s is reached over plain tcp: the tasks' rows and their storage credentials (an aws "
                    "connection's keys) cross the network unencrypted; use tls:// with the dask connection's "
                    "ca_file, cert_file and key_file (docs/production/scaling.md)",
                    where,
                )
        try:
            client.wait_for_workers(wanted, timeout=wait)
        except TimeoutError as exc:
            raise DaskClusterError(
                f"{where} has no worker after {wait} s; start its workers or raise "
                "training.dask.wait_for_workers_seconds"
            ) from exc
        log.info("Dask cluster: %s, %d workers%s", name, len(client.nthreads()), note)
        yield client


def unencrypted_beyond_loopback(address: str) -> bool:
    """Whether a scheduler ``address`` (``tcp://host:port``, or ``host:port``, which Dask reads as tcp) is reached
    without TLS on a host other than this machine's loopback."""
    import ipaddress
    from urllib.parse import urlsplit

    scheme, _, rest = address.rpartition("://")
    if (scheme or "tcp") != "tcp":
        return False
    host = urlsplit(f"//{rest}").hostname or ""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: resolved elsewhere, assumed beyond this machine
        return True


def scheduler_answers(target: ClusterAddress, *, timeout_seconds: int) -> int:
    """How many workers the scheduler at ``target`` has (the connection's *Test* button)."""
    from distributed import Client

    with Client(target.address, security=_security(target), timeout=timeout_seconds, set_as_default=False) as client:
        return len(client.nthreads())


def run_guarded(client: Client, work: Callable[[], T], *, what: str) -> T:
    """Run ``work`` (which drives the cluster) and fail at once if a worker present at the start leaves.

    ``work`` runs in a thread; this thread polls the scheduler's workers. A lost worker closes the client,
    which cancels the run's futures, and raises. The task's ``execution_timeout`` interrupts this thread,
    and the client's close then ends ``work`` the same way.

    Raises:
        DaskClusterError: naming the lost worker(s) and what to do.
    """
    workers = set(client.nthreads())
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            # lightgbm.dask finds the client as the current one (distributed.wait), in this thread.
            with client.as_current():
                outcome["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name=f"airflow-ml {what}", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(POLL_SECONDS)
        if not thread.is_alive():
            break
        try:
            lost = workers - set(client.nthreads())
        except (OSError, TimeoutError) as exc:
            lost, outcome["error"] = workers, exc
        if lost:
            client.close(timeout=10)
            raise DaskClusterError(
                f"{what}: Dask worker(s) {sorted(lost)} left the cluster (killed, out of memory or their host "
                "went away); LightGBM's distributed training cannot go on without them. Nothing was registered "
                "and the champion is unchanged: let the task retry once the cluster has its workers back"
            )
    if "error" in outcome:
        error = outcome["error"]
        assert isinstance(error, BaseException)
        raise error
    return outcome["value"]  # type: ignore[return-value]
