"""Score challenger and champion on the same holdout and move ``champion`` only when the challenger wins."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any

from airflow.sdk import Context
from airflow.sdk.exceptions import AirflowFailException, DownstreamTasksSkipped

from airflow_ml.hooks.storage_credentials import storage_options
from airflow_ml.links.mlflow_links import MlflowModelVersionLink, chart_locations, model_version_url
from airflow_ml.ml.gate.modes import AWAITING_APPROVAL  # pure Python: cheap at parse time
from airflow_ml.ml.steps.xcom_payloads import snapshot_uri
from airflow_ml.operators.base_operator import SnapshotStepOperator, airflow_run_url, mlflow_errors, run_overrides
from airflow_ml.operators.dask_engine import engine_client


class PromotionGateOperator(SnapshotStepOperator):
    """The promotion gate of a city.

    Both models are loaded from the registry, as serving loads them, and scored on the holdout of this
    run's snapshot, with a naive baseline (a constant learnt from the training rows of the same split).
    The challenger becomes champion when it passes the rules (``min_quality``, the naive baseline) and
    there is no champion yet, or when it beats the champion by ``min_improvement`` and passes the others
    (the bootstrap interval, the slices); otherwise the champion stays. A champion that is not this
    city's (its lineage tags name another city or template) is refused: the task fails and nothing moves.
    Either way the decision, its reason, the scores with their intervals, the naive baseline and the skill
    over it, the slice table, the thresholds, the baseline version, the snapshot hash and what triggered
    the run are recorded as an artifact of the training run and beside the snapshot, and summarised on the
    version (a few ``gate.*`` tags and a description naming the Airflow run; see
    :mod:`airflow_ml.ml.steps.gate_step`). The task's *Model version* link opens the version judged.

    The run's ``promotion_mode`` Param (its default is the template's ``gate.promotion_mode``) says what
    to do with the decision: ``auto`` (follow the gate), ``require_approval``, ``shadow`` (a winner keeps
    its ``challenger`` alias and is shadow-scored, ``champion`` stays), ``force`` (promote anyway, with the
    run's ``reason``) or ``dry_run`` (record the decision, move nothing); the ``reason`` is recorded with
    it. After a demotion, an ``auto`` win needs what the demotion requires (see
    :mod:`airflow_ml.ml.demotion_guard`).

    With ``training.engine: dask`` the holdout is split and scored on the city's Dask cluster, whose client is
    made at execute once the registry's versions are read, and closed before the decision and any promotion:
    only the labels, the predictions and the slice columns come back to the task.

    Args:
        registration: The register task's XCom (``version``); templated.
        snapshot: The snapshot task's XCom; templated.
        settings: :meth:`GateSettings.to_dict <airflow_ml.ml.steps.step_settings.GateSettings.to_dict>`: the
            city's model, target and metric, the time split (the one training used, so the holdout is the
            same rows), the gate's rules and the fallback parent whose champion serves the city while it has
            none (the challenger must then beat it, see :mod:`airflow_ml.ml.fallback`).
        aws_conn_id: Airflow connection (type ``aws``) for a snapshot on ``s3://``.
        approval_task_id: The approval task that follows (a :class:`PromotionApprovalOperator
            <airflow_ml.operators.approval_operator.PromotionApprovalOperator>`), which this task skips when its
            decision asks nobody: no process is started for it and the run goes on a scheduler pass sooner.
            The tasks after it must then accept a skipped upstream, as the factory's health check does (its
            upstream tasks are this one and the approval, trigger rule ``none_failed_min_one_success``). None
            (the default) skips nothing: the approval task then succeeds at once by itself.
        health_task_id: The health check after a promotion (a :class:`ChampionHealthCheckOperator
            <airflow_ml.operators.health_operator.ChampionHealthCheckOperator>` downstream of this task), which
            this task skips when its decision leaves the champion where it was (kept, dry run, shadow) and asks
            nobody: most nightly runs keep their champion, and each then starts one process fewer. A retry that
            finds this version champion already (its first try promoted it) leaves the check to run. None (the
            default) skips nothing: the health check then finds the champion unchanged and skips itself.

    Returns (XCom): the decision record.
    """

    template_fields: Sequence[str] = ("registration", "snapshot")
    operator_extra_links = (MlflowModelVersionLink(),)
    ui_color = "#fbeaea"

    def __init__(
        self,
        *,
        registration: Any,
        approval_task_id: str | None = None,
        health_task_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.registration = registration
        self.approval_task_id = approval_task_id
        self.health_task_id = health_task_id

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_ml.data.snapshot import load_manifest
        from airflow_ml.exceptions import ForeignChampion
        from airflow_ml.ml.steps.gate_step import gate
        from airflow_ml.ml.steps.step_settings import GateSettings

        settings = GateSettings.from_dict(self.settings)
        overrides = run_overrides(context)
        uri = snapshot_uri(self.snapshot)
        options = storage_options(uri, aws_conn_id=self.aws_conn_id)
        with mlflow_errors(self.hook, f"deciding on {settings.model_name!r}"), _refuse(ForeignChampion):
            outcome, record = gate(
                self.hook.get_conn(),
                load_manifest(uri, storage_options=options),
                settings,
                challenger_version=str(self.registration["version"]),
                mode=overrides.promotion_mode,
                trigger_reason=overrides.reason,
                context=_trigger(context),
                storage_options=options,
                # Opened only around the scoring of the holdout, and closed before the decision and the promotion.
                dask_session=partial(engine_client, settings.engine, settings.dask, what="scoring the holdout"),
            )
        # The version the gate judged, whatever it decided: the champion is one click away in the registry.
        MlflowModelVersionLink.persist(
            context, model_version_url(self.hook.tracking_uri, settings.model_name, str(record["challenger_version"]))
        )
        self.log.info("gate for %s v%s: %s", settings.model_name, record["challenger_version"], outcome.reason)
        for where in chart_locations(self.hook.tracking_uri, **record["charts"]) if record["charts"] else []:
            self.log.info("gate chart: %s", where)
        # A retry after a try that moved the alias finds this version already champion: it is still new, and checked.
        moved = outcome.move_champion or record["baseline_version"] == record["challenger_version"]
        not_needed = self._tasks_not_needed(record["decision"], moved=moved)
        if not_needed:
            # Skipping ends execute with an exception, so the decision is pushed as the return value here.
            if self.do_xcom_push:
                context["ti"].xcom_push(key="return_value", value=record)
            self.log.info("%s: %s skipped", outcome.label, " and ".join(not_needed))
            raise DownstreamTasksSkipped(tasks=not_needed)
        return record

    def _tasks_not_needed(self, decision: str, *, moved: bool) -> list[str]:
        """The downstream tasks this decision leaves nothing to do: the approval unless it waits for a person, the
        health check unless the champion moved now or may move on approval."""
        if decision == AWAITING_APPROVAL:
            return []
        skipped = [self.approval_task_id] if moved else [self.approval_task_id, self.health_task_id]
        return [task for task in skipped if task is not None]


@contextlib.contextmanager
def _refuse(*errors: type[Exception]) -> Iterator[None]:
    """Fail the task without a retry on ``errors``: a retry would meet the same registry."""
    try:
        yield
    except errors as exc:
        raise AirflowFailException(str(exc)) from None


def _trigger(context: Context) -> dict[str, Any]:
    """What started the run, for the decision record: its DAG, id, link, type, who triggered it, which data events."""
    dag_run = context["dag_run"]
    events = getattr(dag_run, "consumed_asset_events", None) or []
    return {
        "airflow_dag_id": context["ti"].dag_id,
        "airflow_run_id": context["run_id"],
        "airflow_run_url": airflow_run_url(context),
        "run_type": str(getattr(dag_run.run_type, "value", dag_run.run_type)),
        "triggered_by_user": getattr(dag_run, "triggering_user_name", None),
        "triggering_assets": sorted({event.asset.uri for event in events}),
    }
