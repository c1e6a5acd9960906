"""After a promotion: check the new champion as serving loads it, roll back on failure, announce it on success."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from airflow.sdk import Context
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_ml.hooks.storage_credentials import storage_options
from airflow_ml.ml.steps.xcom_payloads import snapshot_uri
from airflow_ml.operators.base_operator import SnapshotStepOperator, mlflow_errors
from airflow_ml.operators.dask_engine import engine_client


class ChampionHealthCheckOperator(SnapshotStepOperator):
    """The health check of a champion promoted in this run, and the "champion changed" Asset event.

    Skipped (no Asset event) unless this run's registered version is now the champion. Otherwise it loads
    ``models:/<name>@champion`` through the registry, predicts a sample of this run's holdout and checks
    the input schema, that predictions are finite and not constant, and that their mean and quantiles stay
    within ``max_mean_shift`` / ``max_quantile_shift`` standard deviations of the holdout predictions
    logged at training. The outcome is recorded as ``health.*`` version tags and beside the snapshot.
    On failure the champion is rolled back (to ``previous-champion``, or removed when it was the first)
    and the task fails; on success the task's outlet, the city's champion Asset, gets one event whose
    ``extra`` names the model, the new and previous versions, the decision and the run id
    (see :mod:`airflow_ml.ml.steps.health_step`). With ``training.engine: dask`` the snapshot is split on the
    city's Dask cluster (its client made here, at execute) and only the sample comes to the task.

    Args:
        registration: The register task's XCom (``version``); templated.
        snapshot: The snapshot task's XCom; templated.
        settings: :meth:`HealthSettings.to_dict <airflow_ml.ml.steps.step_settings.HealthSettings.to_dict>`:
            the city's model, the time split (as in training, so the holdout is the same rows), ``enabled``
            (false skips the checks; the Asset event is still emitted), the sample and the shift limits.
        aws_conn_id: Airflow connection (type ``aws``) for a snapshot on ``s3://``.
    """

    template_fields: Sequence[str] = ("registration", "snapshot")
    ui_color = "#e6f4ea"

    def __init__(self, *, registration: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.registration = registration

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_ml.ml.steps.health_step import ChampionUnchanged, health
        from airflow_ml.ml.steps.step_settings import HealthSettings

        settings = HealthSettings.from_dict(self.settings)
        if self.registration is None:  # the register task was skipped: nothing was trained, nothing can have moved
            raise AirflowSkipException("nothing was registered in this run, so no champion was promoted to check")
        uri = snapshot_uri(self.snapshot)
        try:
            with mlflow_errors(self.hook, f"reading the champion of {settings.model_name!r}"):
                found = health(
                    self.hook.get_conn(),
                    uri,
                    settings,
                    version=str(self.registration["version"]),
                    run_id=context["run_id"],
                    storage_options=storage_options(uri, aws_conn_id=self.aws_conn_id),
                    # The cluster is reached only when there is a champion to check.
                    dask_session=partial(engine_client, settings.engine, settings.dask, what="sampling the holdout"),
                )
        except ChampionUnchanged as exc:
            raise AirflowSkipException(str(exc)) from None
        if found.failure is not None:
            raise AirflowFailException(found.failure)
        if not settings.enabled:
            self.log.info("health check disabled (health.enabled: false); announcing v%s", found.version)
        for outlet in self.outlets:
            context["outlet_events"][outlet].extra = {
                "model_name": settings.model_name,
                "version": found.version,
                "previous_version": found.previous_version,
                "decision": found.decision,
                "run_id": context["run_id"],
            }
        self.log.info("%s v%s is healthy: %s", settings.model_name, found.version, found.record)
        return found.record
