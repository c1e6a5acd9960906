"""Compare the run's new rows with the champion's training snapshot; stop before training on ``error`` drift."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk import Context
from airflow.sdk.exceptions import AirflowFailException

from airflow_ml.hooks.storage_credentials import DEFAULT_AWS_CONN_ID, storage_options
from airflow_ml.links.mlflow_links import MlflowRunLink, run_url
from airflow_ml.operators.base import MlflowBaseOperator, airflow_lineage
from airflow_ml.operators.validate import snapshot_uri

#: The XCom key of the task's short verdict (``status``, ``detail``, ``champion_version``), even when it fails.
DRIFT_VERDICT_KEY = "drift_verdict"


class DriftCheckOperator(MlflowBaseOperator):
    """The drift check of a city, between validation and training.

    Each feature of this run's snapshot (by default only its rows newer than the champion's training
    window, see ``comparison``) is compared with the snapshot the current champion was trained on: PSI for
    numeric features, Jensen-Shannon distance for categorical ones, the change of every column's missing
    rate, and the label's distribution (PSI for regression, JS distance for binary). A
    value above an ``error`` threshold fails the task without retry (the data will not change on a retry),
    so nothing is trained, registered or promoted; above ``warn`` the summary is logged and the run goes
    on. A champion trained for another city or template (its lineage tags say so) fails the task the same
    way, naming the fix. Without a champion (a first run, or a deleted one) or when its snapshot cannot be
    read, the check is skipped and says why. The record is written beside the snapshot as ``drift.json``
    and, when computed, logged as an MLflow run named ``drift`` in the city's experiment, with an "MLflow
    run" link on the task.

    Args:
        snapshot: The snapshot task's XCom (a dict with ``uri``) or a snapshot URI; templated.
        model_name: The city's registered model, whose ``champion`` is the reference; also the experiment.
        features: Feature columns.
        categorical_features: The features that are categories.
        target: The label column.
        task: ``regression`` or ``binary``.
        thresholds: Plain dicts shaped like the template's ``drift:`` section (``DriftSpec.thresholds()``).
        bins: PSI bins (quantiles of the champion's data).
        time_column: The column that dates a row; it tells the new rows apart.
        comparison: Which rows are compared (``DriftSpec.comparison()``): ``compare`` (``new_rows`` or
            ``whole_snapshot``), ``min_new_rows`` and ``min_new_days``; new rows by default.
        enabled: False skips the check.
        tags: Extra MLflow run tags (city, template...).
        aws_conn_id: Airflow connection (type ``aws``) for snapshots on ``s3://``.

    Returns (XCom): the drift record: ``status`` (passed, warned, failed or skipped), ``reason`` when
    skipped, the champion's version, every check and the summary. A short verdict goes to the XCom key
    ``drift_verdict`` in every case, a failed check included (the fleet view shows it).
    """

    template_fields: Sequence[str] = ("snapshot",)
    operator_extra_links = (MlflowRunLink(),)
    ui_color = "#e8f1fb"

    def __init__(
        self,
        *,
        snapshot: Any,
        model_name: str,
        features: Sequence[str],
        categorical_features: Sequence[str] = (),
        target: str,
        task: str = "regression",
        thresholds: Mapping[str, Any] | None = None,
        bins: int = 10,
        time_column: str | None = None,
        comparison: Mapping[str, Any] | None = None,
        enabled: bool = True,
        tags: Mapping[str, str] | None = None,
        aws_conn_id: str | None = DEFAULT_AWS_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.snapshot = snapshot
        self.model_name = model_name
        self.features = list(features)
        self.categorical_features = list(categorical_features)
        self.target = target
        self.task = task
        self.thresholds = dict(thresholds or {})
        self.bins = bins
        self.time_column = time_column
        self.comparison = dict(comparison or {})
        self.enabled = enabled
        self.tags = dict(tags or {})
        self.aws_conn_id = aws_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_ml.data.snapshot import load_manifest, write_json
        from airflow_ml.ml.drift_check import DRIFT_FILE, NO_CHAMPION, check_drift

        uri = snapshot_uri(self.snapshot)
        # The champion's snapshot lies under the same data root, so the same options open it.
        options = storage_options(uri, aws_conn_id=self.aws_conn_id)
        if not self.enabled:
            record: dict[str, Any] = {"status": "skipped", "reason": "drift checks are off (drift.enabled: false)"}
        else:
            record = check_drift(
                self.hook.get_conn(),
                load_manifest(uri, storage_options=options),
                model_name=self.model_name,
                features=self.features,
                categorical=self.categorical_features,
                target=self.target,
                task=self.task,
                thresholds=self.thresholds,
                bins=self.bins,
                artifact_root=self.hook.artifact_root,
                tags={**self.tags, **airflow_lineage(context)},
                storage_options=options,
                time_column=self.time_column,
                **self.comparison,
            )
        write_json(uri, DRIFT_FILE, record, storage_options=options)
        # A small verdict for the fleet view, pushed before a failed check raises (a return value would not be).
        context["ti"].xcom_push(key=DRIFT_VERDICT_KEY, value=_verdict(record))
        if record["status"] == "skipped":
            # A first run has nothing to compare with; anything else that skips deserves a look.
            level = self.log.info if record["reason"] == NO_CHAMPION or not self.enabled else self.log.warning
            level("drift skipped: %s", record["reason"])
            return record
        if "mlflow_run_id" in record:  # not when the champion was refused before any comparison
            MlflowRunLink.persist(
                context, run_url(self.hook.tracking_uri, record["experiment_id"], record["mlflow_run_id"])
            )
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


def _verdict(record: Mapping[str, Any]) -> dict[str, Any]:
    """The status, one line of why (the reason it skipped or the summary's first line), the champion compared."""
    detail = str(record.get("reason") or record.get("summary") or "")
    return {
        "status": record["status"],
        "detail": detail.splitlines()[0][:500] if detail else None,
        "champion_version": record.get("champion_version"),
    }
