"""The scoring DAG of each city with a ``scoring:`` section, ``<template>.<city>.score``.

resolve (the version that serves, read once; the kill switch; the fallback parent) → score (the run's day into the
prediction log, the challenger into the shadow log, the optional PostgreSQL table). Cities without ``scoring:``, or
with ``scoring: {enabled: false}``, get none. The shard files build a city's scoring DAG beside its retraining DAG
(:func:`~airflow_ml.factory.dag_registration.register_city_dags`). Pure Python at module level, as DAG files import it.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from airflow.sdk import DAG, AssetOrTimeSchedule, CronTriggerTimetable

from airflow_ml.exceptions import ConfigError
from airflow_ml.factory.dag_defaults import default_args
from airflow_ml.factory.dag_schedule import data_asset
from airflow_ml.factory.display_names import score_display_name
from airflow_ml.ml.steps.step_settings import ScoringSettings
from airflow_ml.operators.resolve_operator import ResolveModelOperator
from airflow_ml.operators.score_operator import ScoreOperator
from airflow_ml.settings import DATA_ROOT_ENV
from airflow_ml.templates.models import CityConfig

#: What a scoring DAG's id adds to the city's retraining DAG id.
SUFFIX = ".score"
_START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
#: The presets a scoring schedule may combine with its data Asset, as the cron expressions they stand for.
_PRESET_CRONS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
}


def score_dag_id(config: CityConfig) -> str:
    """``<template>.<city>.score``."""
    return f"{config.dag_id}{SUFFIX}"


def scores(config: CityConfig) -> bool:
    """Whether the city gets a scoring DAG (a ``scoring:`` section that is enabled)."""
    return config.scoring is not None and config.scoring.enabled


def scoring_settings(config: CityConfig) -> ScoringSettings:
    """The settings of the city's scoring tasks, built once from its validated spec.

    Raises:
        ConfigError: for a city without an enabled ``scoring:`` section.
    """
    scoring = config.scoring
    if scoring is None or not scoring.enabled:
        raise ConfigError(config.dag_id, ["the city has no enabled scoring: section, so no scoring DAG"])
    store = scoring.store
    return ScoringSettings(
        template=config.template,
        city=config.city,
        model_name=config.model_name,
        parent_model=config.parent_model_name,
        source=scoring.source,
        features=list(config.dataset.features),
        data_format=scoring.format,
        conn_id=scoring.conn_id,
        output=scoring.output,
        key_columns=list(scoring.key_columns),
        keep_columns=list(scoring.keep_columns),
        shadow=scoring.shadow,
        store_conn_id=store.conn_id if store else None,
        store_table=store.table if store else ScoringSettings.store_table,
        time_column=config.dataset.time_column,
    )


def score_schedule(config: CityConfig) -> Any:
    """``scoring.schedule``; with ``scoring.on_new_data`` the city's data Asset too (a preset as its cron).

    Raises:
        ConfigError: for ``on_new_data`` without ``AIRFLOW_ML_DATA_ROOT`` where DAGs are parsed.
    """
    scoring = config.scoring
    assert scoring is not None  # scores(config)
    if not scoring.on_new_data:
        return scoring.schedule
    data_root = os.environ.get(DATA_ROOT_ENV)
    if not data_root:
        raise ConfigError(
            score_dag_id(config),
            [f"scoring.on_new_data needs {DATA_ROOT_ENV} set where DAGs are parsed, to name the data Asset"],
        )
    asset = data_asset(config, data_root)
    if scoring.schedule is None:
        return [asset]
    cron = _PRESET_CRONS.get(scoring.schedule, scoring.schedule)  # the spec refuses @once/@continuous here
    return AssetOrTimeSchedule(timetable=CronTriggerTimetable(cron, timezone="UTC"), assets=[asset])


def build_score_dag(config: CityConfig) -> DAG:
    """The scoring DAG of one city: resolve → score (see the module's docstring)."""
    settings = scoring_settings(config).to_dict()
    with DAG(
        dag_id=score_dag_id(config),
        dag_display_name=score_display_name(config),
        description=f"Score {config.title}'s rows with its {config.template} champion",
        schedule=score_schedule(config),
        start_date=_START,
        catchup=False,
        max_active_runs=1,
        tags=sorted({"airflow-ml", "scoring", config.template, f"city:{config.city}", *config.dag.tags}),
        default_args=default_args(config),
        doc_md=_doc(config),
    ) as dag:
        resolve = ResolveModelOperator(task_id="resolve", settings=settings)
        score = ScoreOperator(task_id="score", settings=settings, resolved=resolve.output)
        resolve >> score
    return dag


def _doc(config: CityConfig) -> str:
    scoring = config.scoring
    assert scoring is not None
    fallback = f", else its fallback parent `{config.parent_model_name}`'s" if config.parent_model_name else ""
    shadow = " The `challenger`, when it is not the champion, is scored too, into `predictions_shadow/`." * bool(
        scoring.shadow
    )
    store = f" Rows are upserted into PostgreSQL table `{scoring.store.table}`." if scoring.store else ""
    return (
        f"### Scoring {config.title} ({config.template})\n\n"
        f"Scores the `date=<logical date>` partition of `{scoring.source}` (a run started by the data Asset: "
        "the day(s) its events name, else the newest partition) with the champion of "
        f"`{config.model_name}`{fallback}, resolved once per run, into "
        f"`{scoring.output}/predictions/{config.template}/{config.city}/`.{shadow}{store} "
        "The kill switch (`airflow-ml disable`) skips the run with the reason."
    )
