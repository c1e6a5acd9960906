"""Compare the run's new rows with the champion's training snapshot; stop before training on ``error`` drift."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Context
from airflow.sdk.exceptions import AirflowFailException

from airflow_ml.hooks.storage_credentials import storage_options
from airflow_ml.links.mlflow_links import MlflowRunLink, chart_locations, run_url
from airflow_ml.ml.steps.xcom_payloads import DRIFT_VERDICT_KEY, snapshot_uri
from airflow_ml.operators.base_operator import SnapshotStepOperator, airflow_lineage


class DriftCheckOperator(SnapshotStepOperator):
    """The drift check of a city, between validation and training.

    Each feature of this run's snapshot (by default only its rows newer than the champion's training
    window, see ``compare``) is compared with the snapshot the current champion was trained on: PSI for
    numeric features, Jensen-Shannon distance for categorical ones, the change of every column's missing
    rate, and the label's distribution (PSI for regression, JS distance for binary). A
    value above an ``error`` threshold fails the task without retry (the data will not change on a retry),
    so nothing is trained, registered or promoted; above ``warn`` the summary is logged and the run goes
    on. A champion trained for another city or template (its lineage tags say so) fails the task the same
    way, naming the fix. Without a champion (a first run, or a deleted one) or when its snapshot cannot be
    read, the check is skipped and says why. The record is written beside the snapshot as ``drift.json``
    and, when computed, logged as an MLflow run named ``drift`` in the city's experiment, with an "MLflow
    run" link on the task (see :mod:`airflow_ml.ml.steps.drift_step`).

    With ``drift.calibration`` (on by default) the run also measures the drift since the city's previous
    snapshot, keeps it in the city's drift history and judges it against that history, adjusted with the
    fleet's p-values; then the stop rule decides instead of the fixed limits alone: the label or the
    champion's predictions, or ``min_flagged`` flagged features (docs/guides/drift.md).

    Args:
        snapshot: The snapshot task's XCom (a dict with ``uri``) or a snapshot URI; templated.
        settings: :meth:`DriftSettings.to_dict <airflow_ml.ml.steps.step_settings.DriftSettings.to_dict>`:
            the city's model (whose ``champion`` is the reference), the columns, the thresholds
            (``DriftSpec.thresholds()``), the PSI bins, which rows are compared, ``enabled`` and run tags.
        aws_conn_id: Airflow connection (type ``aws``) for snapshots on ``s3://``.

    Returns (XCom): the drift record: ``status`` (passed, warned, failed or skipped), ``reason`` when
    skipped, the champion's version, every check and the summary. A short verdict goes to the XCom key
    ``drift_verdict`` in every case, a failed check included (the fleet view shows it).
    """

    operator_extra_links = (MlflowRunLink(),)
    ui_color = "#e8f1fb"

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_ml.data.snapshot import load_manifest
        from airflow_ml.ml.steps.drift_step import NO_CHAMPION, check_drift, verdict
        from airflow_ml.ml.steps.step_settings import DriftSettings

        settings = DriftSettings.from_dict(self.settings)
        uri = snapshot_uri(self.snapshot)
        # The champion's snapshot lies under the same data root, so the same options open it.
        options = storage_options(uri, aws_conn_id=self.aws_conn_id)
        # A check that is off needs no MLflow: the connection is not even looked up.
        client, root = (self.hook.get_conn(), self.hook.artifact_root) if settings.enabled else (None, None)
        record = check_drift(
            client,
            load_manifest(uri, storage_options=options),
            settings,
            artifact_root=root,
            tags=airflow_lineage(context),
            storage_options=options,
        )
        # A small verdict for the fleet view, pushed before a failed check raises (a return value would not be).
        context["ti"].xcom_push(key=DRIFT_VERDICT_KEY, value=verdict(record))
        if record["status"] == "skipped":
            # A first run has nothing to compare with; anything else that skips deserves a look.
            level = self.log.info if record["reason"] == NO_CHAMPION or not settings.enabled else self.log.warning
            level("drift skipped: %s", record["reason"])
            return record
        if "mlflow_run_id" in record:  # not when the champion was refused before any comparison
            MlflowRunLink.persist(
                context, run_url(self.hook.tracking_uri, record["experiment_id"], record["mlflow_run_id"])
            )
            run = {"experiment_id": record["experiment_id"], "run_id": record["mlflow_run_id"]}
            for where in chart_locations(self.hook.tracking_uri, **run, artifacts=record["charts"]):
                self.log.info("drift chart: %s", where)
        compared = record.get("compared") or {}
        if compared and compared.get("mode") != compared.get("requested"):
            self.log.warning("drift compared the whole snapshot, not new rows: %s", compared.get("note"))
        if record["status"] == "failed":
            raise AirflowFailException(record["summary"])
        if record["status"] == "warned":
            self.log.warning("%s", record["summary"])
        else:
            self.log.info("%s", record["summary"])
        return record
