"""The Assets a city's models publish, for downstream DAGs to schedule on."""

from __future__ import annotations

from airflow.sdk import Asset

from airflow_ml.operators.champion_assets import CHAMPION_ALIAS, champion_alias, champion_asset_for
from airflow_ml.templates.models import ModelConfig

__all__ = ["CHAMPION_ALIAS", "champion_alias", "champion_asset", "champion_asset_for"]


def champion_asset(config: ModelConfig) -> Asset:
    """The Asset that gets an event whenever the city's ``champion`` alias moves (healthy promotion or rollback).

    Downstream DAGs schedule on it: ``DAG(..., schedule=[champion_asset(config)])``; see
    :func:`~airflow_ml.operators.champion_assets.champion_asset_for` for the URI and the events' ``extra``.
    """
    return champion_asset_for(config.model_name)
