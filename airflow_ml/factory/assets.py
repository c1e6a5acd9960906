"""The Assets a city's models publish, for downstream DAGs to schedule on, and the city's data Asset it listens to.

The city's data Asset (:func:`data_asset`, ``<template>.<city>.data``) is updated by whatever lands the city's
partitions (an upstream DAG's outlet, or Airflow's REST API); a retraining DAG with ``dag.on_new_data`` and a
scoring DAG with ``scoring.on_new_data`` run on it. Its events should carry the day that landed,
``extra=data_event_extra(day)`` (``{"day": "YYYY-MM-DD"}``): the scoring run then scores that partition, not
the day it happens to run on.
"""

from __future__ import annotations

from airflow.sdk import Asset

from airflow_ml.factory.dag_schedule import data_asset
from airflow_ml.operators.champion_assets import CHAMPION_ALIAS, champion_alias, champion_asset_for
from airflow_ml.operators.score_operator import DAY_KEY, DAYS_KEY, data_event_extra
from airflow_ml.templates.models import ModelConfig

__all__ = [
    "CHAMPION_ALIAS",
    "DAYS_KEY",
    "DAY_KEY",
    "champion_alias",
    "champion_asset",
    "champion_asset_for",
    "data_asset",
    "data_event_extra",
]


def champion_asset(config: ModelConfig) -> Asset:
    """The Asset that gets an event whenever the city's ``champion`` alias moves (healthy promotion or rollback).

    Downstream DAGs schedule on it: ``DAG(..., schedule=[champion_asset(config)])``; see
    :func:`~airflow_ml.operators.champion_assets.champion_asset_for` for the URI and the events' ``extra``.
    """
    return champion_asset_for(config.model_name)
