"""Turn a :class:`CityConfig` into an Airflow DAG of provider operators.

The factory knows operators and configs, never pandas: parsing ``dags/`` stays cheap.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from airflow.sdk import (
    DAG,
    Asset,
    AssetOrTimeSchedule,
    CronTriggerTimetable,
    MultipleCronTriggerTimetable,
    get_parsing_context,
)

from airflow_ml.exceptions import BrokenCityFiles, ConfigError
from airflow_ml.factory.params import TUNABLE, trigger_params
from airflow_ml.operators.gate import PromotionGateOperator
from airflow_ml.operators.register import RegisterModelOperator
from airflow_ml.operators.snapshot import SnapshotOperator
from airflow_ml.operators.train import TrainModelOperator
from airflow_ml.operators.validate import ValidateDataOperator
from airflow_ml.settings import DATA_ROOT_ENV
from airflow_ml.templates.loader import load_city_configs
from airflow_ml.templates.models import CityConfig, NotifierSpec

log = logging.getLogger(__name__)

_START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def build_dag(config: CityConfig, *, expectations_dir: str | Path) -> DAG:
    """Build the retraining DAG of one city: snapshot → validate → train → register → gate."""
    dataset, split, training, gate = config.dataset, config.split, config.training, config.gate
    lineage_tags = {"airflow_ml.city": config.city, "airflow_ml.template": config.template}
    spec = config.dag
    default_args: dict[str, Any] = {
        "owner": spec.owner,
        "retries": spec.retries,
        "retry_delay": dt.timedelta(minutes=spec.retry_delay_minutes),
    }
    if spec.task_timeout_minutes is not None:
        default_args["execution_timeout"] = dt.timedelta(minutes=spec.task_timeout_minutes)
    if spec.on_failure:
        default_args["on_failure_callback"] = [_notifier(n) for n in spec.on_failure]
    with DAG(
        dag_id=config.dag_id,
        description=f"Retrain {config.title}'s {config.template} model",
        schedule=_schedule(config),
        start_date=_START,
        catchup=False,
        max_active_runs=1,
        dagrun_timeout=dt.timedelta(minutes=spec.run_timeout_minutes) if spec.run_timeout_minutes else None,
        tags=sorted({"airflow-ml", config.template, f"city:{config.city}", *spec.tags}),
        default_args=default_args,
        params=trigger_params(config),
        doc_md=_doc(config),
    ) as dag:
        snapshot = SnapshotOperator(
            task_id="snapshot",
            city=config.city,
            source=dataset.source,
            data_format=dataset.format,
            window_days=dataset.window_days,
            window_start="{{ params.window_start }}",
            window_end="{{ params.window_end }}",
        )
        validate = ValidateDataOperator(
            task_id="validate", snapshot=snapshot.output, suite=config.suite, expectations_dir=str(expectations_dir)
        )
        train = TrainModelOperator(
            task_id="train",
            snapshot=snapshot.output,
            experiment=config.model_name,
            target=dataset.target,
            features=list(dataset.features),
            categorical_features=list(dataset.categorical_features),
            time_column=dataset.time_column,
            task=config.task,
            metric=config.metric.name,
            validation_fraction=split.validation_fraction,
            holdout_fraction=split.holdout_fraction,
            num_boost_round=f"{{{{ params.num_boost_round or {training.num_boost_round} }}}}",
            param_overrides={name: f"{{{{ params.{name} }}}}" for name in TUNABLE},
            early_stopping_rounds=training.early_stopping_rounds,
            seed=training.seed,
            num_threads=training.num_threads,
            lgbm_params=training.params.model_dump(),
            tags=lineage_tags,
            config=config.model_dump(mode="json"),
        )
        register = RegisterModelOperator(
            task_id="register",
            model_name=config.model_name,
            training=train.output,
            snapshot=snapshot.output,
            tags=lineage_tags,
        )
        promote = PromotionGateOperator(
            task_id="gate",
            model_name=config.model_name,
            registration=register.output,
            snapshot=snapshot.output,
            target=dataset.target,
            time_column=dataset.time_column,
            metric=config.metric.name,
            validation_fraction=split.validation_fraction,
            holdout_fraction=split.holdout_fraction,
            min_improvement=gate.min_improvement,
            improvement_mode=gate.improvement_mode,
            min_holdout_rows=split.min_holdout_rows,
            mode="{{ params.promotion_mode }}",
            reason="{{ params.reason }}",
        )
        snapshot >> validate >> train >> register >> promote
    return dag


def register_dags(
    namespace: MutableMapping[str, Any], *, templates_root: str | Path, expectations_dir: str | Path
) -> dict[str, DAG]:
    """Build every city's DAG into ``namespace`` (a DAG file's ``globals()``).

    A broken city file is logged and skipped; the other cities' DAGs still load, and
    ``dags/retrain_errors.py`` (see :func:`report_broken_cities`) shows the error in Airflow.
    When a task process parses the file for one DAG, only that DAG is built.
    """
    configs, errors = load_city_configs(Path(templates_root))
    for error in errors:
        log.error("airflow-ml: skipped a city file: %s", error)
    wanted = get_parsing_context().dag_id
    dags = {}
    for config in configs:
        if wanted and config.dag_id != wanted:
            continue
        try:
            dag = build_dag(config, expectations_dir=expectations_dir)
        except ConfigError as error:
            log.error("airflow-ml: skipped a city: %s", error)
            continue
        namespace[_variable_name(config.dag_id)] = dag
        dags[config.dag_id] = dag
    return dags


def city_problems(templates_root: str | Path) -> list[ConfigError]:
    """Every problem that keeps a city's DAG from loading: invalid files and unusable schedules."""
    configs, errors = load_city_configs(Path(templates_root))
    for config in configs:
        try:
            _schedule(config)
        except ConfigError as error:
            errors.append(error)
    return errors


def report_broken_cities(*, templates_root: str | Path) -> None:
    """Raise one error naming every broken city file, so that Airflow lists it among the import errors.

    Called from a DAG file of its own: its import error is visible in the UI and in
    ``airflow dags list-import-errors`` while the DAG file that builds the cities loads every good one.
    """
    errors = city_problems(templates_root)
    if errors:
        raise BrokenCityFiles(errors)


def data_asset(config: CityConfig, data_root: str) -> Asset:
    """The Asset of a city's raw data; a producer that lands new partitions updates it."""
    return Asset(uri=config.source_uri(data_root), name=f"{config.dag_id}.data", group="airflow-ml")


def _schedule(config: CityConfig) -> Any:
    schedule: Any = config.dag.schedule  # a cron or preset string, a timetable, or None
    if isinstance(schedule, list):
        schedule = MultipleCronTriggerTimetable(*schedule, timezone="UTC")
    if not config.dag.on_new_data:
        return schedule
    data_root = os.environ.get(DATA_ROOT_ENV)
    if not data_root:
        raise ConfigError(
            config.dag_id, [f"dag.on_new_data needs {DATA_ROOT_ENV} set where DAGs are parsed, to name the data Asset"]
        )
    asset = data_asset(config, data_root)
    if schedule is None:
        return [asset]
    if isinstance(schedule, str):
        if schedule.startswith("@"):
            raise ConfigError(
                config.dag_id,
                [f"dag.schedule {schedule!r} with on_new_data needs a cron expression, e.g. '0 2 * * *'"],
            )
        schedule = CronTriggerTimetable(schedule, timezone="UTC")
    return AssetOrTimeSchedule(timetable=schedule, assets=[asset])


def _notifier(spec: NotifierSpec) -> Any:
    # The closed registry of notifier kinds; each import happens only for cities that use it.
    if spec.kind == "smtp":
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        return SmtpNotifier(
            to=spec.to,
            smtp_conn_id=spec.conn_id,
            subject="airflow-ml: {{ ti.dag_id }}.{{ ti.task_id }} failed",
            html_content="Task {{ ti.task_id }} of {{ ti.dag_id }} failed in run {{ run_id }}: {{ exception }}",
        )
    raise ConfigError(spec.kind, [f"unknown notifier kind {spec.kind!r}"])  # pragma: no cover - pydantic refuses it


def _variable_name(dag_id: str) -> str:
    return "dag_" + "".join(c if c.isalnum() else "_" for c in dag_id)


def _doc(config: CityConfig) -> str:
    merged = json.dumps(config.model_dump(mode="json"), indent=2)
    return (
        f"### Retraining {config.title} ({config.template})\n\n"
        f"{config.description}\n\n"
        f"Snapshot → validate (suite `{config.suite}`) → train LightGBM → register `{config.model_name}` as "
        f"`challenger` → gate on `{config.metric.name}` (champion moves only if the challenger wins).\n\n"
        f"<details><summary>Merged configuration</summary>\n\n```json\n{merged}\n```\n</details>\n"
    )
