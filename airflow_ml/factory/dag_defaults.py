"""A retraining DAG's default task arguments: owner, retries, timeouts, the data connection, failure notifiers."""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow_ml.exceptions import ConfigError
from airflow_ml.templates.models import ModelConfig, NotifierSpec

#: ``execution_timeout`` of every task of a DAG with ``training.engine: dask`` that sets no
#: ``dag.task_timeout_minutes``: a paused worker, or a hang in a shuffle, would otherwise hold the task for ever
#: (the task's guard sees only workers that leave, and LightGBM's ``time_out`` only its own sockets).
DASK_TASK_TIMEOUT_MINUTES = 12 * 60


def default_args(config: ModelConfig) -> dict[str, Any]:
    """The ``default_args`` of a city's (or a parent's) DAG, from its ``dag:`` and ``dataset:`` sections."""
    spec = config.dag
    args: dict[str, Any] = {
        "owner": spec.owner,
        "retries": spec.retries,
        "retry_delay": dt.timedelta(minutes=spec.retry_delay_minutes),
    }
    # Every task that reads or writes the city's data (an s3:// source or data root) takes this connection;
    # Airflow hands a default arg only to the operators whose signature has it.
    args["aws_conn_id"] = config.dataset.conn_id
    timeout = spec.task_timeout_minutes
    if timeout is None and config.training.engine == "dask":
        timeout = DASK_TASK_TIMEOUT_MINUTES
    if timeout is not None:
        args["execution_timeout"] = dt.timedelta(minutes=timeout)
    if spec.on_failure:
        args["on_failure_callback"] = [_notifier(n) for n in spec.on_failure]
    return args


def _notifier(spec: NotifierSpec) -> Any:
    # The closed registry of notifier kinds; each import happens only for cities that use it.
    if spec.kind == "smtp":
        from airflow_ml.factory.failure_mail import failure_mail

        return failure_mail(spec.to, spec.conn_id)
    raise ConfigError(spec.kind, [f"unknown notifier kind {spec.kind!r}"])  # pragma: no cover - pydantic refuses it
