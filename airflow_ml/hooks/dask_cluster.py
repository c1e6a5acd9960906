"""The ``dask`` connection type: where an existing Dask cluster's scheduler listens, and its TLS files.

No Airflow provider defines a Dask connection (the old ``daskexecutor`` provider ran tasks on Dask and had
none), so this provider does: the connection's host holds the whole address (``tcp://dask-scheduler:8786``,
``tls://…``) or the scheme (``tcp``/``tls``), host and port are given apart; the extras ``ca_file``,
``cert_file`` and ``key_file`` are paths of the TLS files on the worker that runs the task.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook

from airflow_ml.ml.dask_settings import ClusterAddress, cluster_address


class DaskClusterHook(BaseHook):
    """Gives the checked scheduler address of a ``dask`` connection; the client itself is made by the task.

    Args:
        dask_conn_id: The Airflow connection of type ``dask``.
    """

    conn_name_attr = "dask_conn_id"
    default_conn_name = "dask_default"
    conn_type = "dask"
    hook_name = "Dask cluster"

    def __init__(self, dask_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dask_conn_id = dask_conn_id

    def get_conn(self) -> ClusterAddress:
        """The connection's scheduler address and TLS files.

        Raises:
            ValueError: naming the connection, the value and the fix (no host, a bad address, TLS files
                that do not match the scheme).
        """
        conn = self.get_connection(self.dask_conn_id)
        where = f"Airflow connection {self.dask_conn_id!r}"
        host = (conn.host or "").strip()
        if not host:
            raise ValueError(
                f"{where} has no host; set the scheduler's address, e.g. AIRFLOW_CONN_DASK_DEFAULT="
                '\'{"conn_type": "dask", "host": "tcp://dask-scheduler:8786"}\''
            )
        address = host if "://" in host else f"{conn.schema or 'tcp'}://{host}:{conn.port or 8786}"
        extra = conn.extra_dejson
        return cluster_address(
            address,
            ca_file=extra.get("ca_file"),
            cert_file=extra.get("cert_file"),
            key_file=extra.get("key_file"),
            where=where,
        )

    def test_connection(self) -> tuple[bool, str]:
        """Check that the scheduler answers (used by the UI's *Test* button)."""
        from airflow_ml.ml.dask_client import scheduler_answers

        try:
            target = self.get_conn()
            workers = scheduler_answers(target, timeout_seconds=10)
        except Exception as exc:  # noqa: BLE001 - report any failure to the UI
            return False, f"Dask scheduler of {self.dask_conn_id!r} did not answer: {exc}"
        return True, f"Dask scheduler {target.address} answered with {workers} worker(s)"
