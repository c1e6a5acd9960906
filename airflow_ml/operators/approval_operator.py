"""A person approves or rejects a promotion the gate recommends (promotion mode ``require_approval``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator, HITLOperator
from airflow.sdk import Context
from airflow.sdk.exceptions import AirflowFailException, DownstreamTasksSkipped

from airflow_ml.hooks.mlflow import MlflowHook
from airflow_ml.hooks.storage_credentials import DEFAULT_AWS_CONN_ID, storage_options
from airflow_ml.links.mlflow_links import MlflowModelVersionLink, artifact_file_url, artifact_url, model_version_url
from airflow_ml.ml.gate.modes import AWAITING_APPROVAL  # pure Python: cheap at parse time
from airflow_ml.operators.library_output import library_output_to_task_log


class PromotionApprovalOperator(ApprovalOperator):
    """Airflow's human-in-the-loop approval of the gate's recommendation, then the promotion itself.

    Unless the gate's decision is ``awaiting-approval`` (the run was triggered with promotion mode
    ``require_approval`` and the challenger won), the task succeeds at once and asks nobody. Otherwise it
    waits in Airflow's "Required actions" with the scores, thresholds and baseline in its body. On
    *Approve* the challenger becomes champion, unless the champion moved since the gate scored it (then the
    task fails and nothing moves); on *Reject*, or when nobody answers within ``response_timeout`` (the
    default answer is *Reject*), the champion stays. The answer and who gave it are recorded as version
    tags and beside the snapshot.

    Args:
        model_name: The city's registered model.
        decision: The gate task's XCom (its decision record); templated.
        snapshot: The snapshot task's XCom; templated.
        mlflow_conn_id: The Airflow connection of type ``mlflow``.
        response_timeout: How long to wait for an answer before rejecting.
        aws_conn_id: Airflow connection (type ``aws``) for a snapshot on ``s3://``.
    """

    # Not HITL's subject and body: they are written at execute from the gate's record and the city's model
    # name (which comes from YAML), and nothing from YAML is ever rendered by Jinja.
    template_fields: Sequence[str] = ("decision", "snapshot")
    operator_extra_links = (MlflowModelVersionLink(),)
    ui_color = "#fff4d6"

    def __init__(
        self,
        *,
        model_name: str,
        decision: Any,
        snapshot: Any,
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        response_timeout: dt.timedelta = dt.timedelta(hours=24),
        aws_conn_id: str | None = DEFAULT_AWS_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            subject=f"Promote a new {model_name} model?",
            defaults=self.REJECT,
            response_timeout=response_timeout,
            **kwargs,
        )
        self.model_name = model_name
        self.decision = decision
        self.snapshot = snapshot
        self.mlflow_conn_id = mlflow_conn_id
        self.aws_conn_id = aws_conn_id

    @cached_property
    def hook(self) -> MlflowHook:
        """The MLflow hook of this task."""
        return MlflowHook(mlflow_conn_id=self.mlflow_conn_id)

    def pre_execute(self, context: Context) -> None:
        """MLflow's log records into the task's log at their level (before ``execute`` and on resuming)."""
        library_output_to_task_log()

    def execute(self, context: Context) -> Any:
        record = dict(self.decision)
        if record.get("decision") != AWAITING_APPROVAL:
            self.log.info(
                "no approval needed: the gate's decision is %r (%s)", record.get("decision"), record["reason"]
            )
            return {"approval": "not needed", "decision": record.get("decision")}
        self.subject = f"Promote {self.model_name} v{record['challenger_version']} to champion?"
        self.body = approval_body(record, tracking_uri=self.hook.tracking_uri)
        return super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        from airflow_ml.ml.steps.approve_step import ChampionMovedError, approve
        from airflow_ml.ml.steps.xcom_payloads import snapshot_uri

        try:
            answer = super().execute_complete(context, event)
        except DownstreamTasksSkipped:
            # Airflow's ApprovalOperator skips the downstream tasks on Reject before returning the answer;
            # the rejection must still be recorded, and the health check skips itself when nothing moved.
            answer = HITLOperator.execute_complete(self, context, event)
        approved = answer["chosen_options"] == [self.APPROVE]
        user = answer.get("responded_by_user") or {}
        approver = user.get("name") or user.get("id") or "nobody: the request timed out"
        uri = snapshot_uri(self.snapshot)
        try:
            final = approve(
                self.hook.get_conn(),
                dict(self.decision),
                approved=approved,
                approver=str(approver),
                uri=uri,
                storage_options=storage_options(uri, aws_conn_id=self.aws_conn_id),
            )
        except ChampionMovedError as exc:
            raise AirflowFailException(str(exc)) from None
        # The version the answer was about, approved or not (as the gate's link).
        MlflowModelVersionLink.persist(
            context, model_version_url(self.hook.tracking_uri, self.model_name, str(final["challenger_version"]))
        )
        self.log.info("%s v%s: %s", self.model_name, final["challenger_version"], final["reason"])
        return final


def approval_body(record: dict[str, Any], *, tracking_uri: str | None = None) -> str:
    """The evidence a person sees before approving: the scores with their intervals, the slices, the data.

    Below the table come the gate's charts (images served by the MLflow UI of ``tracking_uri``, each a link
    to its full-size page; without a UI, their artifact paths) and the worst slices as a short table. Every
    text that comes from data (slice values, the metric, the trigger's reason...) is escaped by
    :func:`~airflow_ml.ml.markdown_cells.md_cell`: it shows as written and cannot break the table.
    """
    boot = record.get("bootstrap") or {}

    def interval(key: str) -> str:
        bounds = boot.get(key)
        return f" ({boot['confidence']:.0%} CI [{bounds[0]:.6g}, {bounds[1]:.6g}])" if bounds else ""

    from airflow_ml.ml.gate.records import slice_summary  # the gate's evidence: imported when a request is made
    from airflow_ml.ml.markdown_cells import md_cell

    challenger = md_cell(record["challenger_version"])
    champion = (
        f"v{md_cell(record['baseline_version'])}: {record['champion_score']:.6g}{interval('champion')}"
        if record.get("baseline_version") is not None and record.get("champion_score") is not None
        else "none yet"
    )
    improvement = "-" if record.get("improvement") is None else f"{record['improvement']:.4g}{interval('improvement')}"
    required = f"required: {record.get('min_improvement')}, {record.get('improvement_mode')}"
    naive = record.get("naive_baseline")
    baseline = (
        f"training {md_cell(naive['statistic'])} {naive['value']:.6g} for every row: {naive['score']:.6g}; "
        f"challenger's skill {naive['skill']:+.1%} (required: more than 0 and at least {naive['min_skill']:.1%})"
        if naive
        else "off"
    )
    return (
        f"The gate recommends promoting **v{challenger}**: {md_cell(record['gate_reason'], limit=None)}\n\n"
        f"| | |\n| --- | --- |\n"
        f"| metric | {md_cell(record['metric'])} on the same holdout ({record.get('holdout_rows')} rows) |\n"
        f"| challenger | v{challenger}: {record['challenger_score']:.6g}{interval('challenger')} |\n"
        f"| champion | {champion} |\n"
        f"| improvement | {improvement} ({required}) |\n"
        f"| naive baseline | {baseline} |\n"
        f"| slices | {slice_summary(record, table='the worst are below', text=md_cell)} |\n"
        f"| snapshot | {md_cell(record['snapshot_hash'])} |\n"
        f"| trigger reason | {md_cell(record.get('trigger_reason') or '(none)', limit=200)} |\n\n"
        f"{evidence_section(record, tracking_uri)}"
        "Approve to make it champion (the current one is kept as `previous-champion`); "
        "Reject to keep the champion."
    )


def evidence_section(record: dict[str, Any], tracking_uri: str | None) -> str:
    """The gate's charts and the worst slices, in markdown (empty without either)."""
    from airflow_ml.ml.charts.gate_charts import gate_slices, slice_table

    parts = []
    charts = record.get("charts") or {}
    run_id, experiment_id = charts.get("run_id", ""), charts.get("experiment_id", "")
    shown = []
    for path in charts.get("artifacts") or []:
        image = artifact_file_url(tracking_uri, run_id, path) if tracking_uri else None
        page = artifact_url(tracking_uri, experiment_id, run_id, path) if tracking_uri else None
        name = path.rpartition("/")[2]
        shown.append(f"[![gate chart {name}]({image})]({page})" if image and page else f"`{path}`")
    if shown:
        where = "click a chart for full size" if "[![" in shown[0] else f"artifacts of MLflow run `{run_id}`"
        parts.append(f"**Charts** ({where}):\n\n" + " ".join(shown))
    slices = gate_slices(record, limit=10)
    if slices is not None:
        parts.append("**Slices**, the worst first:\n\n" + slice_table(slices))
    return "".join(f"{part}\n\n" for part in parts)
