"""Links from a task to the MLflow run it logged and to the model version it registered.

The URL is computed once at execute time and stored in XCom, as the Apache providers do, so the
API server never needs the MLflow connection to draw the button.

Airflow 3's task runner, when a task ends, asks every link the operator declares for its URL
(``get_link`` on the worker) and stores the answer under the link's ``xcom_key``; the API server reads
only that XCom. So ``get_link`` answers from the operator itself, never by reading the XCom back: a task
that had nothing to link (a drift check skipped on a city's first run) would make that read a 404, which
the task SDK logs as an ERROR line ("XCom not found") in a successful task. Every declaring task thus
ends with the link's XCom, empty when there was nothing to open.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context
    from airflow.sdk.types import TaskInstanceKey


class _PersistedLink(BaseOperatorLink):
    label: ClassVar[str] = ""

    @property
    def name(self) -> str:
        return self.label

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """The URL :meth:`persist` kept on this task's operator; empty when the task had nothing to link."""
        return str(_persisted(operator).get(self.xcom_key) or "")

    @classmethod
    def persist(cls, context: Context, url: str | None) -> None:
        """Store the link's URL for this task instance; empty when the store has no browsable UI.

        The URL is pushed now and kept on the operator, whose :meth:`get_link` the task runner asks again
        when the task ends (it stores that answer under the same key).
        """
        key = cls().xcom_key
        _persisted(context["task"])[key] = url or ""
        context["ti"].xcom_push(key=key, value=url or "")


def _persisted(operator: Any) -> dict[str, str]:
    """The links' URLs kept on ``operator`` by this run's :meth:`_PersistedLink.persist`, by XCom key."""
    kept: dict[str, str] | None = getattr(operator, _KEPT, None)
    if kept is None:
        kept = {}
        setattr(operator, _KEPT, kept)
    return kept


#: The attribute of an operator that holds its links' URLs during a run (never serialized: set at execute).
_KEPT = "_airflow_ml_link_urls"


class MlflowRunLink(_PersistedLink):
    """Opens the MLflow run that trained the model."""

    label = "MLflow run"


class MlflowModelVersionLink(_PersistedLink):
    """Opens the registered model version in MLflow."""

    label = "Model version"


class ValidationReportLink(_PersistedLink):
    """Opens the validation's HTML report among its MLflow run's artifacts."""

    label = "Validation report"


def ui_base(tracking_uri: str) -> str | None:
    """The MLflow UI's base URL for a tracking URI, or None for a store without a UI (SQLite, files).

    ``AIRFLOW_ML_MLFLOW_UI_URL`` wins: it names the UI as a browser reaches it (the workers may reach the
    server by an internal name such as ``http://mlflow:5000``), or the UI of an embedded store.
    """
    import os

    configured = os.environ.get("AIRFLOW_ML_MLFLOW_UI_URL")
    if configured:
        return _without_userinfo(configured.rstrip("/"))
    if tracking_uri.startswith(("http://", "https://")):
        return _without_userinfo(tracking_uri.rstrip("/"))
    return None


def _without_userinfo(url: str) -> str:
    """``url`` without ``user:password@``: links are stored and shown (and browsers refuse such image URLs)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def run_url(tracking_uri: str, experiment_id: str, run_id: str) -> str | None:
    """URL of a run in the MLflow UI."""
    base = ui_base(tracking_uri)
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}" if base else None


def model_version_url(tracking_uri: str, name: str, version: str) -> str | None:
    """URL of a registered model version in the MLflow UI."""
    base = ui_base(tracking_uri)
    return f"{base}/#/models/{name}/versions/{version}" if base else None


def artifact_url(tracking_uri: str, experiment_id: str, run_id: str, path: str) -> str | None:
    """URL of one artifact of a run in the MLflow UI (its artifact view renders HTML pages)."""
    base = run_url(tracking_uri, experiment_id, run_id)
    return f"{base}/artifactPath/{path}" if base else None


def artifact_file_url(tracking_uri: str, run_id: str, path: str) -> str | None:
    """URL of one artifact's bytes as the MLflow server serves them (an image a page may show inline)."""
    from urllib.parse import urlencode

    base = ui_base(tracking_uri)
    return f"{base}/get-artifact?{urlencode({'path': path, 'run_uuid': run_id})}" if base else None


def chart_locations(tracking_uri: str, *, experiment_id: str, run_id: str, artifacts: list[str]) -> list[str]:
    """Where a person opens each chart: its page in the MLflow UI, else its artifact path and run (no UI)."""
    return [artifact_url(tracking_uri, experiment_id, run_id, p) or f"{p} of MLflow run {run_id}" for p in artifacts]
