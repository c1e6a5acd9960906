"""A retraining DAG's schedule: the clock of ``dag.schedule``, or with ``dag.on_new_data`` the city's data Asset too."""

from __future__ import annotations

import os
from typing import Any

from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable, MultipleCronTriggerTimetable

from airflow_ml.exceptions import ConfigError
from airflow_ml.settings import DATA_ROOT_ENV
from airflow_ml.templates.models import CityConfig, ModelConfig, ParentConfig


def data_asset(config: CityConfig, data_root: str) -> Asset:
    """The Asset of a city's raw data; a producer that lands new partitions updates it."""
    return Asset(uri=config.source_uri(data_root), name=f"{config.dag_id}.data", group="airflow-ml")


def retrain_schedule(config: ModelConfig) -> Any:
    """The DAG's schedule; a fallback parent keeps to the clock.

    Raises:
        ConfigError: for ``on_new_data`` without a data root, or with a preset (``@daily``) schedule.
    """
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
