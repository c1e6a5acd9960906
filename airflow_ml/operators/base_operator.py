"""A thin base for operators that talk to MLflow through :class:`MlflowHook`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property
from typing import Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowFailException

from airflow_ml.exceptions import MlflowUnreachable
from airflow_ml.hooks.mlflow import MlflowHook
from airflow_ml.hooks.storage_credentials import DEFAULT_AWS_CONN_ID
from airflow_ml.operators.library_output import library_output_to_task_log
from airflow_ml.operators.overrides import OverrideError, RunOverrides, conf_problems, param_defaults, refusal


class MlflowBaseOperator(BaseOperator):
    """Holds the MLflow connection id and builds the hook lazily, at execute time.

    Args:
        mlflow_conn_id: The Airflow connection of type ``mlflow``.
    """

    def __init__(self, *, mlflow_conn_id: str = MlflowHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mlflow_conn_id = mlflow_conn_id

    @cached_property
    def hook(self) -> MlflowHook:
        """The MLflow hook of this task."""
        return MlflowHook(mlflow_conn_id=self.mlflow_conn_id)

    def pre_execute(self, context: Context) -> None:
        """MLflow's and GX's log records into the task's log at their level, without progress bars."""
        library_output_to_task_log()


class SnapshotStepOperator(MlflowBaseOperator):
    """A task of a run that reads the run's snapshot and takes its step's settings as one dict.

    Args:
        snapshot: The snapshot task's XCom (a dict with ``uri``) or a snapshot URI; templated.
        settings: The ``to_dict`` of the task's settings object (:mod:`airflow_ml.ml.steps.step_settings`).
        aws_conn_id: Airflow connection (type ``aws``) for a snapshot on ``s3://``.
    """

    # Only the XCom: settings come from YAML and are never rendered by Jinja.
    template_fields: Sequence[str] = ("snapshot",)

    def __init__(
        self,
        *,
        snapshot: Any,
        settings: Mapping[str, Any],
        aws_conn_id: str | None = DEFAULT_AWS_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.snapshot = snapshot
        self.settings = dict(settings)
        self.aws_conn_id = aws_conn_id


@contextlib.contextmanager
def mlflow_errors(hook: MlflowHook, action: str) -> Iterator[None]:
    """Turn "the MLflow server cannot be reached" into one clear line: the URL, the connection and the fix.

    MLflow reports a server that is down as ``API request to ... failed with exception
    HTTPConnectionPool(...): Max retries exceeded ...``; this names what the task was doing instead.
    Any other error passes through unchanged.

    Args:
        hook: The task's MLflow hook (for the URL and the connection id).
        action: What the task was doing, e.g. ``"registering model 'x'"``.

    Raises:
        MlflowUnreachable: when the cause is a refused or timed-out connection, or a server that keeps
            answering 5xx until the client's retries run out.
    """
    try:
        yield
    except Exception as exc:
        cause = _unreachable_cause(exc)
        if cause is None:
            raise
        raise MlflowUnreachable(
            f"the MLflow tracking server at {hook.tracking_uri} is unreachable while {action} ({cause}); "
            f"the task fails and Airflow retries it (dag.retries); check that the server is up and that "
            f"connection {hook.mlflow_conn_id!r} points at it"
        ) from exc


def _unreachable_cause(exc: BaseException) -> str | None:
    """A short description of the network failure behind ``exc`` (following its chain), or None."""
    try:
        from requests.exceptions import ConnectionError as RequestsConnectionError
        from requests.exceptions import RetryError, Timeout
    except ImportError:  # pragma: no cover - requests comes with mlflow
        return None
    seen: BaseException | None = exc
    for _ in range(10):  # MLflow wraps the requests error as the implicit context of its own
        if seen is None:
            return None
        if isinstance(seen, Timeout):
            return "the connection timed out"
        if isinstance(seen, RequestsConnectionError):
            return "connection refused" if "refused" in str(seen).lower() else "the connection failed"
        if isinstance(seen, RetryError):
            return "it kept answering with server errors"
        seen = seen.__cause__ or seen.__context__
    return None


def airflow_lineage(context: Context) -> dict[str, str]:
    """Tags that tie an MLflow object to the Airflow task instance that made it."""
    ti = context["ti"]
    return {
        "airflow.dag_id": ti.dag_id,
        "airflow.run_id": context["run_id"],
        "airflow.task_id": ti.task_id,
        "airflow.try_number": str(ti.try_number),
    }


def airflow_run_url(context: Context) -> str | None:
    """The DAG run's page in the Airflow UI, or None when Airflow's ``[api] base_url`` is not configured."""
    from urllib.parse import quote

    from airflow.sdk.configuration import conf

    base = conf.get("api", "base_url", fallback=None)
    if not base:
        return None
    return f"{base.rstrip('/')}/dags/{quote(context['ti'].dag_id, safe='')}/runs/{quote(context['run_id'], safe='')}"


def close_abandoned_runs(client: Any, experiment: str, context: Context) -> list[str]:
    """Mark the MLflow runs that earlier tries of this task left open as ``KILLED``; return their ids.

    A worker killed mid-task (an OOM kill, a lost node) never closes its run, which would stay ``RUNNING``
    for ever. A retry knows better: any open run of the same DAG run and task from an earlier try is dead.
    The run keeps what it logged and gets the tag ``airflow_ml.abandoned`` saying which try replaced it.
    """
    ti = context["ti"]
    if ti.try_number <= 1:
        return []
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    lineage = airflow_lineage(context)
    query = " and ".join(
        [f"tags.`{key}` = '{lineage[key]}'" for key in ("airflow.dag_id", "airflow.run_id", "airflow.task_id")]
        + ["attributes.status = 'RUNNING'"]
    )
    closed = []
    for run in client.search_runs([found.experiment_id], filter_string=query):
        if run.data.tags.get("airflow.try_number") == str(ti.try_number):
            continue
        client.set_tag(run.info.run_id, "airflow_ml.abandoned", f"its try died unfinished; try {ti.try_number} retried")
        client.set_terminated(run.info.run_id, status="KILLED")
        closed.append(run.info.run_id)
    return closed


def refuse_bad_conf(context: Context) -> None:
    """Fail the task, without retry, when the run's conf sets a key that is no Param of its DAG, or conflicts.

    The first task of a run calls it: a run created by a path that does not check the conf (``airflow dags
    trigger`` writes it straight into the metadata database) stops here, before any work.

    Raises:
        AirflowFailException: naming each problem and its fix (see
            :func:`~airflow_ml.operators.overrides.conf_problems`).
    """
    problems = conf_problems(context["dag_run"].conf, param_defaults(context["dag"].params))
    if problems:
        raise AirflowFailException(refusal(context["ti"].dag_id, problems))


def run_overrides(context: Context, *, check_conf: bool = False) -> RunOverrides:
    """The run's trigger overrides, parsed once from ``context["params"]`` (typed values, validated by Airflow).

    Args:
        context: The task's context.
        check_conf: First :func:`refuse_bad_conf` (the first task of a run does).

    Raises:
        AirflowFailException: naming each problem and its fix; a retry cannot help.
    """
    if check_conf:
        refuse_bad_conf(context)
    try:
        return RunOverrides.from_params(context["params"])
    except OverrideError as exc:
        raise AirflowFailException(refusal(context["ti"].dag_id, exc.problems)) from None
