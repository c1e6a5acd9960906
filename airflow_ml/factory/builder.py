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
    Asset,
    AssetOrTimeSchedule,
    CronTriggerTimetable,
    MultipleCronTriggerTimetable,
    Param,
    get_parsing_context,
)
from airflow.sdk.definitions.param import ParamsDict

from airflow_ml.exceptions import BrokenCityFiles, ConfigError
from airflow_ml.factory.assets import champion_asset
from airflow_ml.factory.checked_dag import CheckedConfDAG
from airflow_ml.factory.params import trigger_params
from airflow_ml.factory.sharding import Shard
from airflow_ml.factory.tasks import task_settings
from airflow_ml.operators.approval import PromotionApprovalOperator
from airflow_ml.operators.drift import DriftCheckOperator
from airflow_ml.operators.gate import PromotionGateOperator
from airflow_ml.operators.health import ChampionHealthCheckOperator
from airflow_ml.operators.register import RegisterModelOperator
from airflow_ml.operators.snapshot import SnapshotOperator
from airflow_ml.operators.train import TrainModelOperator
from airflow_ml.operators.validate import ValidateDataOperator
from airflow_ml.settings import DATA_ROOT_ENV
from airflow_ml.templates.describe import Origin
from airflow_ml.templates.fallback_spec import GLOBAL_PARENT, GROUP_PARENT_PREFIX
from airflow_ml.templates.loader import load_city_configs, load_parent_configs, unexpected_error
from airflow_ml.templates.models import CityConfig, ModelConfig, NotifierSpec, ParentConfig

log = logging.getLogger(__name__)

_START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def build_dag(config: ModelConfig, *, expectations_dir: str | Path, origin: Origin | None = None) -> CheckedConfDAG:
    """Build the retraining DAG of one city, or of a fallback parent (trained on the union of its members' data).

    ``origin`` (the loader's record of where each setting was set) lets the snapshot's dataset contract name
    the file and line of a column the data lacks.

    snapshot → validate → drift → train → register → gate → approve → health_check; the last emits the
    city's champion Asset event (see :func:`~airflow_ml.factory.assets.champion_asset`) after a healthy promotion.
    No value from the config reaches a template field: the tasks read the run's overrides, typed, from its
    Params (:func:`~airflow_ml.operators.base.run_overrides`), and Jinja renders only the XCom references; a
    failure notifier renders only the subject and body the factory writes (recipients and connection id are
    taken literally, see :mod:`airflow_ml.factory.failure_mail`).
    """
    dataset, spec = config.dataset, config.dag
    default_args: dict[str, Any] = {
        "owner": spec.owner,
        "retries": spec.retries,
        "retry_delay": dt.timedelta(minutes=spec.retry_delay_minutes),
    }
    # Every task that reads or writes the city's data (an s3:// source or data root) takes this connection;
    # Airflow hands a default arg only to the operators whose signature has it.
    default_args["aws_conn_id"] = dataset.conn_id
    if spec.task_timeout_minutes is not None:
        default_args["execution_timeout"] = dt.timedelta(minutes=spec.task_timeout_minutes)
    if spec.on_failure:
        default_args["on_failure_callback"] = [_notifier(n) for n in spec.on_failure]
    with CheckedConfDAG(
        dag_id=config.dag_id,
        description=f"Retrain {config.title}'s {config.template} model",
        schedule=_schedule(config),
        start_date=_START,
        catchup=False,
        max_active_runs=1,
        dagrun_timeout=dt.timedelta(minutes=spec.run_timeout_minutes) if spec.run_timeout_minutes else None,
        tags=sorted({"airflow-ml", config.template, f"city:{config.city}", *spec.tags}),
        default_args=default_args,
        doc_md=_doc(config),
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
            task_id="gate", registration=register.output, snapshot=snapshot.output, settings=tasks.gate.to_dict()
        )
        approve = PromotionApprovalOperator(
            task_id="approve",
            model_name=config.model_name,
            decision=promote.output,
            snapshot=snapshot.output,
            response_timeout=dt.timedelta(hours=config.gate.approval_timeout_hours),
        )
        health_check = ChampionHealthCheckOperator(
            task_id="health_check",
            registration=register.output,
            snapshot=snapshot.output,
            settings=tasks.health.to_dict(),
            # The event is emitted only when the task succeeds: skipped (no move) and failed (rolled back) emit none.
            outlets=[champion_asset(config)],
        )
        snapshot >> validate >> drift >> train >> register >> promote >> approve >> health_check
    # The trigger form belongs to the DAG, set once its tasks exist: a task made inside a DAG with Params
    # keeps a private copy of all of them, which the DAG processor validates and serializes again per task
    # (about 85% of the serialization time, and 60% of the size, of a city's DAG). At run time every task
    # reads the DAG's Params merged with the run's conf, so nothing is lost.
    _attach_trigger_form(dag, trigger_params(config))
    return dag


#: Trigger forms (defaults and schemas) that Airflow has validated in this process.
_VALIDATED_FORMS: set[str] = set()


def _attach_trigger_form(dag: CheckedConfDAG, params: dict[str, Param]) -> None:
    """Give ``dag`` its trigger form, validated by Airflow once per distinct form rather than once per DAG.

    A scheduled DAG's Params are validated when assigned (every default must satisfy its JSON Schema),
    which is most of the cost of building a city's DAG. Every city's form has the same defaults and
    schemas (only the descriptions, which quote the city's configured values, differ), so the first DAG
    of a parse takes Airflow's own path and the others receive the already-proven form.
    """
    key = json.dumps([(name, p.value, p.schema) for name, p in params.items()], sort_keys=True, default=str)
    if key in _VALIDATED_FORMS:
        object.__setattr__(dag, "params", ParamsDict(params))
        return
    dag.params = params  # type: ignore[assignment]  # attrs converts the dict to ParamsDict and validates it
    _VALIDATED_FORMS.add(key)


def register_dags(
    namespace: MutableMapping[str, Any],
    *,
    templates_root: str | Path,
    expectations_dir: str | Path,
    shard: Shard | None = None,
) -> dict[str, CheckedConfDAG]:
    """Build the DAG of every city in ``shard`` into ``namespace`` (a DAG file's ``globals()``).

    A broken city file is logged and skipped; the other cities' DAGs still load, and
    ``dags/retrain_errors.py`` (see :func:`report_broken_cities`) shows the error in Airflow.
    When a task process parses the file for one DAG, only that city's file is read and only its DAG built,
    so a task starts as fast with a thousand cities as with one.
    """
    shard = shard or Shard()
    wanted = get_parsing_context().dag_id
    wanted_city = wanted.rpartition(".")[2] if wanted else None

    def include(city: str) -> bool:
        return shard.holds(city) and (wanted_city is None or city == wanted_city)

    origins: dict[str, Origin] = {}
    configs, errors = load_city_configs(Path(templates_root), include=include, origins=origins)
    for error in errors:
        log.error("airflow-ml: skipped a city file: %s", error)
    dags = {}
    for config in configs:
        if wanted and config.dag_id != wanted:
            continue
        try:
            dag = build_dag(config, expectations_dir=expectations_dir, origin=origins.get(config.dag_id))
        except ConfigError as error:
            log.error("airflow-ml: skipped a city: %s", error)
            continue
        namespace[_variable_name(config.dag_id)] = dag
        dags[config.dag_id] = dag
    return dags


def register_parent_dags(
    namespace: MutableMapping[str, Any], *, templates_root: str | Path, expectations_dir: str | Path
) -> dict[str, CheckedConfDAG]:
    """Build the DAG of every fallback parent that some city names (``<template>.global``, ``<template>.group.<g>``).

    A parent trains on the union of its members' data: every city file is scanned for its template and
    group (not validated: broken files are :func:`report_broken_cities`'s); a task process of a city's DAG
    reads none.
    """
    wanted = get_parsing_context().dag_id
    if wanted and not _is_parent_dag_id(wanted):
        return {}
    parents, errors = load_parent_configs(Path(templates_root))
    for error in errors:
        log.error("airflow-ml: skipped a fallback parent: %s", error)
    dags = {}
    for config in parents:
        if wanted and config.dag_id != wanted:
            continue
        dag = build_dag(config, expectations_dir=expectations_dir)
        namespace[_variable_name(config.dag_id)] = dag
        dags[config.dag_id] = dag
    return dags


def _is_parent_dag_id(dag_id: str) -> bool:
    _, _, rest = dag_id.partition(".")
    return rest == GLOBAL_PARENT or rest.startswith(GROUP_PARENT_PREFIX)


def city_problems(templates_root: str | Path) -> list[ConfigError]:
    """Every problem that keeps a city's (or a fallback parent's) DAG from loading: invalid files, bad schedules."""
    origins: dict[str, Origin] = {}
    configs, errors = load_city_configs(Path(templates_root), origins=origins)
    for config in configs:
        try:
            _schedule(config)
        except ConfigError as error:
            errors.append(error)
        except Exception as exc:  # noqa: BLE001 - whatever it is, it is this city's error and hides no other
            city_file = origins.get(config.dag_id, {}).get(("city",), (Path(templates_root) / "cities",))[0]
            errors.append(unexpected_error(city_file, exc))
    errors.extend(load_parent_configs(Path(templates_root))[1])
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


def _schedule(config: ModelConfig) -> Any:
    schedule: Any = config.dag.schedule  # a cron or preset string, a timetable, or None
    if isinstance(schedule, list):
        schedule = MultipleCronTriggerTimetable(*schedule, timezone="UTC")
    if not config.dag.on_new_data or isinstance(config, ParentConfig):  # a parent keeps to the clock
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
        from airflow_ml.factory.failure_mail import failure_mail

        return failure_mail(spec.to, spec.conn_id)
    raise ConfigError(spec.kind, [f"unknown notifier kind {spec.kind!r}"])  # pragma: no cover - pydantic refuses it


def _variable_name(dag_id: str) -> str:
    return "dag_" + "".join(c if c.isalnum() else "_" for c in dag_id)


def _doc(config: ModelConfig) -> str:
    # One line per top-level key: valid JSON that reads well, rendered by json's C encoder (indent= falls back
    # to the pure-Python one, which cost a fleet of 1,000 cities about 0.35 s of parsing).
    fields = config.model_dump(mode="json")
    merged = "{\n" + ",\n".join(f"  {json.dumps(key)}: {json.dumps(value)}" for key, value in fields.items()) + "\n}"
    if isinstance(config, ParentConfig):
        role = (
            f"Fallback parent: trained on the union of {', '.join(config.members)}; it serves those of them "
            f"that have too little data for a model of their own (`airflow-ml serving <city>`).\n\n"
        )
    elif config.parent_model_name:
        role = (
            f"With fewer than {config.fallback.min_rows} rows a run trains nothing and the city falls back to "
            f"`{config.parent_model_name}`; a challenger must beat the model that serves the city.\n\n"
        )
    else:
        role = ""
    return (
        f"### Retraining {config.title} ({config.template})\n\n"
        f"{config.description}\n\n{role}"
        f"Snapshot → validate (suite `{config.suite}`) → drift against the champion's training data → "
        f"train LightGBM → register `{config.model_name}` as "
        f"`challenger` → gate on `{config.metric.name}` (champion moves only if the challenger wins) → "
        f"health check of a new champion (rolled back on failure; on success the Asset "
        f"`{champion_asset(config).uri}` gets an event).\n\n"
        f"<details><summary>Merged configuration</summary>\n\n```json\n{merged}\n```\n</details>\n"
    )
