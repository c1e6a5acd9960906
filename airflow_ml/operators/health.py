"""After a promotion: check the new champion as serving loads it, roll back on failure, announce it on success."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import Context
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_ml.hooks.storage_credentials import DEFAULT_AWS_CONN_ID, storage_options
from airflow_ml.operators.base import MlflowBaseOperator, mlflow_errors
from airflow_ml.operators.validate import snapshot_uri

HEALTH_FILE = "health.json"


class ChampionHealthCheckOperator(MlflowBaseOperator):
    """The health check of a champion promoted in this run, and the "champion changed" Asset event.

    Skipped (no Asset event) unless this run's registered version is now the champion. Otherwise it loads
    ``models:/<name>@champion`` through the registry, predicts a sample of this run's holdout and checks
    the input schema, that predictions are finite and not constant, and that their mean and quantiles stay
    within ``max_mean_shift`` / ``max_quantile_shift`` standard deviations of the holdout predictions
    logged at training. The outcome is recorded as ``health.*`` version tags and beside the snapshot.
    On failure the champion is rolled back (to ``previous-champion``, or removed when it was the first)
    and the task fails; on success the task's outlet, the city's champion Asset, gets one event whose
    ``extra`` names the model, the new and previous versions, the decision and the run id.

    Args:
        model_name: The city's registered model.
        registration: The register task's XCom (``version``); templated.
        snapshot: The snapshot task's XCom; templated.
        time_column: Column the time-based split follows.
        validation_fraction: As in training, so the holdout is the same rows.
        holdout_fraction: As in training.
        enabled: False skips the checks (the Asset event is still emitted).
        sample_rows: Holdout rows to predict.
        max_mean_shift: Allowed shift of the mean prediction, in reference standard deviations.
        max_quantile_shift: Allowed shift of the 10/50/90% quantiles, in reference standard deviations.
        aws_conn_id: Airflow connection (type ``aws``) for a snapshot on ``s3://``.
    """

    template_fields: Sequence[str] = ("registration", "snapshot")
    ui_color = "#e6f4ea"

    def __init__(
        self,
        *,
        model_name: str,
        registration: Any,
        snapshot: Any,
        time_column: str,
        validation_fraction: float,
        holdout_fraction: float,
        enabled: bool = True,
        sample_rows: int = 1000,
        max_mean_shift: float = 1.0,
        max_quantile_shift: float = 1.5,
        aws_conn_id: str | None = DEFAULT_AWS_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_name = model_name
        self.registration = registration
        self.snapshot = snapshot
        self.time_column = time_column
        self.validation_fraction = validation_fraction
        self.holdout_fraction = holdout_fraction
        self.enabled = enabled
        self.sample_rows = sample_rows
        self.max_mean_shift = max_mean_shift
        self.max_quantile_shift = max_quantile_shift
        self.aws_conn_id = aws_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_ml.data.snapshot import write_json
        from airflow_ml.ml import registry
        from airflow_ml.ml.health import HealthThresholds, check_and_settle, snapshot_holdout

        client = self.hook.get_conn()
        version = str(self.registration["version"])
        with mlflow_errors(self.hook, f"reading the champion of {self.model_name!r}"):
            champion = registry.version_by_alias(client, self.model_name, registry.CHAMPION)
        if champion is None or str(champion.version) != version:
            current = f"v{champion.version}" if champion is not None else "none"
            raise AirflowSkipException(f"the champion did not move in this run (champion: {current}, run: v{version})")
        previous = registry.version_by_alias(client, self.model_name, registry.PREVIOUS_CHAMPION)
        run = {"airflow_run_id": context["run_id"]}
        if self.enabled:
            uri = snapshot_uri(self.snapshot)
            options = storage_options(uri, aws_conn_id=self.aws_conn_id)
            holdout = snapshot_holdout(
                uri, self.time_column, self.validation_fraction, self.holdout_fraction, storage_options=options
            )
            record = check_and_settle(
                client,
                self.model_name,
                holdout,
                sample_rows=self.sample_rows,
                thresholds=HealthThresholds(self.max_mean_shift, self.max_quantile_shift),
                context=run,
            )
            write_json(uri, HEALTH_FILE, record, storage_options=options)
            if not record["passed"]:
                restored = record.get("rollback", {}).get("restored_version")
                back = f"v{restored} is champion again" if restored else "the model has no champion now"
                raise AirflowFailException(
                    f"health check of {self.model_name} v{version} failed, rolled back ({back}): "
                    + "; ".join(record["problems"])
                )
        else:
            record = {"passed": None, "problems": [], "champion_version": version, **run}
            self.log.info("health check disabled (health.enabled: false); announcing v%s", version)
        for outlet in self.outlets:
            context["outlet_events"][outlet].extra = {
                "model_name": self.model_name,
                "version": version,
                "previous_version": str(previous.version) if previous is not None else None,
                "decision": (champion.tags or {}).get("gate.decision", "promoted"),
                "run_id": context["run_id"],
            }
        self.log.info("%s v%s is healthy: %s", self.model_name, version, record)
        return record
