"""Turn a :class:`CityConfig` into an Airflow DAG of provider operators.

The factory knows operators and configs, never pandas: parsing ``dags/`` stays cheap. The DAG's schedule, doc and
default arguments are built in :mod:`~airflow_ml.factory.dag_schedule`, :mod:`~airflow_ml.factory.dag_doc` and
:mod:`~airflow_ml.factory.dag_defaults`, its tasks' settings in :mod:`~airflow_ml.factory.tasks`; DAG files
register the DAGs through :mod:`~airflow_ml.factory.dag_registration`.

No value from the config reaches a template field: each task takes its settings as a plain dict, reads the
run's overrides, typed, from its Params (:func:`~airflow_ml.operators.base_operator.run_overrides`), and Jinja
renders only the XCom references; a failure notifier renders only the subject and body the factory writes
(recipients and connection id are taken literally, see :mod:`airflow_ml.factory.failure_mail`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from airflow_ml.factory.assets import champion_asset
from airflow_ml.factory.checked_dag import CheckedConfDAG
from airflow_ml.factory.dag_defaults import default_args
from airflow_ml.factory.dag_doc import retrain_doc
from airflow_ml.factory.dag_schedule import retrain_schedule
from airflow_ml.factory.display_names import retrain_display_name
from airflow_ml.factory.params import attach_trigger_form, trigger_params
from airflow_ml.factory.tasks import TaskSettings, task_settings
from airflow_ml.operators.approval_operator import PromotionApprovalOperator
from airflow_ml.operators.drift_operator import DriftCheckOperator
from airflow_ml.operators.gate_operator import PromotionGateOperator
from airflow_ml.operators.health_operator import ChampionHealthCheckOperator
from airflow_ml.operators.register_operator import RegisterModelOperator
from airflow_ml.operators.snapshot_operator import SnapshotOperator
from airflow_ml.operators.train_operator import TrainModelOperator
from airflow_ml.operators.validate_operator import ValidateDataOperator
from airflow_ml.templates.dag_spec import FACTORY_TAG, RETRAIN_TAG
from airflow_ml.templates.describe import Origin
from airflow_ml.templates.models import ModelConfig

_START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
#: The human-in-the-loop task, which the gate skips when its decision asks nobody (the fleet view looks it up).
APPROVAL_TASK_ID = "approve"
#: The check of a new champion, which the gate skips when the champion stays where it was.
HEALTH_TASK_ID = "health_check"


def model_tag(config: ModelConfig) -> list[str]:
    """``model:<name>`` when ``registry.name_pattern`` names the registered model otherwise than the DAG.

    The fleet view (:mod:`airflow_ml.fleet.metadata`) reads it: it knows the DAGs, not the templates.
    """
    return [] if config.model_name == config.dag_id else [f"model:{config.model_name}"]


def build_dag(config: ModelConfig, *, expectations_dir: str | Path, origin: Origin | None = None) -> CheckedConfDAG:
    """Build the retraining DAG of one city, or of a fallback parent (trained on the union of its members' data).

    snapshot → validate → drift → train → register → gate → approve → health_check; the last emits the
    city's champion Asset event (see :func:`~airflow_ml.factory.assets.champion_asset`) after a healthy promotion.
    The gate skips the approval task unless its decision waits for a person, and the health check when the
    champion stays where it was.
    ``origin`` (the loader's record of where each setting was set) lets the dataset contract name file and line.
    """
    spec = config.dag
    with CheckedConfDAG(
        dag_id=config.dag_id,
        dag_display_name=retrain_display_name(config),
        description=f"Retrain {config.title}'s {config.template} model",
        schedule=retrain_schedule(config),
        start_date=_START,
        catchup=False,
        max_active_runs=1,
        dagrun_timeout=dt.timedelta(minutes=spec.run_timeout_minutes) if spec.run_timeout_minutes else None,
        tags=sorted({FACTORY_TAG, RETRAIN_TAG, config.template, f"city:{config.city}", *model_tag(config), *spec.tags}),
        default_args=default_args(config),
        doc_md=retrain_doc(config),
    ) as dag:
        tasks = task_settings(config, expectations_dir=expectations_dir, origin=origin)
        snapshot = SnapshotOperator(task_id="snapshot", settings=tasks.snapshot.to_dict())
        validate = ValidateDataOperator(
            task_id="validate", snapshot=snapshot.output, settings=tasks.validation.to_dict()
        )
        drift = DriftCheckOperator(task_id="drift", snapshot=snapshot.output, settings=tasks.drift.to_dict())
        train = TrainModelOperator(task_id="train", snapshot=snapshot.output, settings=tasks.training.to_dict())
        register = RegisterModelOperator(
            task_id="register",
            model_name=config.model_name,
            training=train.output,
            snapshot=snapshot.output,
            tags=dict(tasks.training.tags),
        )
        promote = PromotionGateOperator(
            task_id="gate",
            registration=register.output,
            snapshot=snapshot.output,
            settings=tasks.gate.to_dict(),
            approval_task_id=APPROVAL_TASK_ID,
            health_task_id=HEALTH_TASK_ID,
        )
        snapshot >> validate >> drift >> train >> register >> promote
        _approval_then_health_check(config, tasks, snapshot=snapshot, register=register, gate=promote)
    # The trigger form is set once the tasks exist: a task made inside a DAG with Params keeps a copy, validated
    # and serialized again per task (85% of a DAG's serialization); at run time every task reads the DAG's.
    attach_trigger_form(dag, trigger_params(config))
    return dag


def _approval_then_health_check(
    config: ModelConfig,
    tasks: TaskSettings,
    *,
    snapshot: SnapshotOperator,
    register: RegisterModelOperator,
    gate: PromotionGateOperator,
) -> None:
    """The tasks after the gate, in the DAG being built: ``approve`` (which the gate skips unless its decision
    waits for a person), then ``health_check``, which the gate skips unless the champion moved or may move on
    approval."""
    approve = PromotionApprovalOperator(
        task_id=APPROVAL_TASK_ID,
        model_name=config.model_name,
        decision=gate.output,
        snapshot=snapshot.output,
        response_timeout=dt.timedelta(hours=config.gate.approval_timeout_hours),
    )
    health_check = ChampionHealthCheckOperator(
        task_id=HEALTH_TASK_ID,
        registration=register.output,
        snapshot=snapshot.output,
        settings=tasks.health.to_dict(),
        # The event is emitted only when the task succeeds: skipped (no move) and failed (rolled back) emit none.
        outlets=[champion_asset(config)],
        # After the gate's success, whether the approval ran or was skipped; never after a failure, and no process
        # is started when the gate was skipped too (a thin city served by its parent: nothing was registered).
        trigger_rule="none_failed_min_one_success",
    )
    gate >> approve >> health_check
    gate >> health_check
