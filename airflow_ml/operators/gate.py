"""Score challenger and champion on the same holdout and move ``champion`` only when the challenger wins."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from airflow.sdk import Context
from airflow.sdk.exceptions import AirflowFailException

from airflow_ml.hooks.storage_credentials import DEFAULT_AWS_CONN_ID, storage_options
from airflow_ml.links.mlflow_links import MlflowModelVersionLink, model_version_url
from airflow_ml.operators.base import MlflowBaseOperator, mlflow_errors, run_overrides
from airflow_ml.operators.validate import snapshot_uri

DECISION_FILE = "decision.json"


class PromotionGateOperator(MlflowBaseOperator):
    """The promotion gate of a city.

    Both models are loaded from the registry, as serving loads them, and scored on the holdout of this
    run's snapshot, with a naive baseline (a constant learnt from the training rows of the same split).
    The challenger becomes champion when it passes the rules (``min_quality``, the naive baseline) and
    there is no champion yet, or when it beats the champion by ``min_improvement`` and passes the others
    (the bootstrap interval, the slices); otherwise the champion stays. A champion that is not this
    city's (its lineage tags name another city or template) is refused: the task fails and nothing moves.
    Either way the decision, its reason, the scores with their intervals, the naive baseline and the skill
    over it, the slice table, the thresholds, the baseline version, the snapshot hash and what triggered
    the run are recorded as version tags, as an artifact of the training run and beside the snapshot.

    The run's ``promotion_mode`` Param says what to do with the decision: ``auto`` (follow the gate),
    ``require_approval``, ``force`` (promote anyway, with the run's ``reason``) or ``dry_run`` (record the
    decision, move nothing); the ``reason`` is recorded with it.

    Args:
        model_name: The city's registered model.
        parent_model: The fallback parent that serves the city while it has no champion: the challenger must beat
            the parent's champion on the city's holdout (see :mod:`airflow_ml.ml.fallback`).
        registration: The register task's XCom (``version``); templated.
        snapshot: The snapshot task's XCom; templated.
        target: Column to predict.
        time_column: Column the time-based split follows.
        metric: The metric compared.
        validation_fraction: As in training, so the holdout is the same rows.
        holdout_fraction: As in training.
        rules: The gate's rules as :meth:`airflow_ml.ml.gate.GateRules.to_dict` gives them
            (``min_improvement``, ``min_quality``, ``bootstrap``, ``slices``, ``naive_baseline``...); the
            factory builds them from the template's ``gate:`` section. None: ``GateRules()``'s.
        aws_conn_id: Airflow connection (type ``aws``) for a snapshot on ``s3://``.

    Returns (XCom): the decision record.
    """

    template_fields: Sequence[str] = ("registration", "snapshot")
    operator_extra_links = (MlflowModelVersionLink(),)
    ui_color = "#fbeaea"

    def __init__(
        self,
        *,
        model_name: str,
        registration: Any,
        snapshot: Any,
        target: str,
        time_column: str,
        metric: str,
        validation_fraction: float,
        holdout_fraction: float,
        rules: Mapping[str, Any] | None = None,
        aws_conn_id: str | None = DEFAULT_AWS_CONN_ID,
        parent_model: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.parent_model = parent_model
        self.model_name = model_name
        self.registration = registration
        self.snapshot = snapshot
        self.target = target
        self.time_column = time_column
        self.metric = metric
        self.validation_fraction = validation_fraction
        self.holdout_fraction = holdout_fraction
        self.rules = dict(rules or {})
        self.aws_conn_id = aws_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_ml.data.snapshot import load_manifest, write_json
        from airflow_ml.exceptions import ForeignChampion
        from airflow_ml.ml.gate import GateRules
        from airflow_ml.ml.pipeline import SplitSettings, evaluate_and_decide

        overrides = run_overrides(context)
        uri = snapshot_uri(self.snapshot)
        options = storage_options(uri, aws_conn_id=self.aws_conn_id)
        with mlflow_errors(self.hook, f"deciding on {self.model_name!r}"), _refuse(ForeignChampion):
            outcome, record = evaluate_and_decide(
                self.hook.get_conn(),
                load_manifest(uri, storage_options=options),
                model_name=self.model_name,
                challenger_version=str(self.registration["version"]),
                target=self.target,
                metric=self.metric,
                split=SplitSettings(self.time_column, self.validation_fraction, self.holdout_fraction),
                rules=GateRules.from_dict(self.rules),
                mode=overrides.promotion_mode,
                trigger_reason=overrides.reason,
                context=_trigger(context),
                storage_options=options,
                parent_model=self.parent_model,
            )
        write_json(uri, DECISION_FILE, record, storage_options=options)
        version = record["challenger_version"] if outcome.move_champion else record["baseline_version"]
        if version is not None:
            MlflowModelVersionLink.persist(
                context, model_version_url(self.hook.tracking_uri, self.model_name, str(version))
            )
        self.log.info("gate for %s v%s: %s", self.model_name, record["challenger_version"], outcome.reason)
        return record


@contextlib.contextmanager
def _refuse(*errors: type[Exception]) -> Iterator[None]:
    """Fail the task without a retry on ``errors``: a retry would meet the same registry."""
    try:
        yield
    except errors as exc:
        raise AirflowFailException(str(exc)) from None


def _trigger(context: Context) -> dict[str, Any]:
    """What started the run, for the decision record: its id and type, who triggered it, which data events."""
    dag_run = context["dag_run"]
    events = getattr(dag_run, "consumed_asset_events", None) or []
    return {
        "airflow_run_id": context["run_id"],
        "run_type": str(getattr(dag_run.run_type, "value", dag_run.run_type)),
        "triggered_by_user": getattr(dag_run, "triggering_user_name", None),
        "triggering_assets": sorted({event.asset.uri for event in events}),
    }
