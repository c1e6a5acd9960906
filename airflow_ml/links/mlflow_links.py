"""Links from a task to the MLflow run it logged and to the model version it registered.

The URL is computed once at execute time and stored in XCom, as the Apache providers do, so the
API server never needs the MLflow connection to draw the button.
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
        from airflow.sdk.execution_time.xcom import XCom

        value: Any = XCom.get_value(ti_key=ti_key, key=self.xcom_key)
        return str(value) if value else ""

    @classmethod
    def persist(cls, context: Context, url: str | None) -> None:
        """Store the link's URL for this task instance; empty when the store has no browsable UI."""
        context["ti"].xcom_push(key=cls().xcom_key, value=url or "")


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
        return configured.rstrip("/")
    if tracking_uri.startswith(("http://", "https://")):
        return tracking_uri.rstrip("/")
    return None


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
