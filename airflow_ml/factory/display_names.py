"""The ``dag_display_name`` of every DAG the factory builds: the city's readable name first, then what the DAG does.

Airflow's DAG list shows it instead of the id (``ride_duration.sao_paulo`` reads *São Paulo · ride_duration*),
and the fleet view reads it back from the metadata database. The ids never change: links, the registry's
model names and the CLI keep using them.
"""

from __future__ import annotations

from airflow_ml.templates.models import ModelConfig

SEPARATOR = " · "
ROLLBACK_DISPLAY_NAME = "airflow-ml · rollback"
RETENTION_DISPLAY_NAME = "airflow-ml · snapshot retention"


def retrain_display_name(config: ModelConfig) -> str:
    """A retraining DAG's: ``São Paulo · ride_duration`` (a fallback parent's title names its members)."""
    return f"{config.title}{SEPARATOR}{config.template}"


def score_display_name(config: ModelConfig) -> str:
    """A scoring DAG's: ``São Paulo · ride_duration · scoring``."""
    return f"{retrain_display_name(config)}{SEPARATOR}scoring"


def monitor_display_name(template: str) -> str:
    """A template's monitor DAG's: ``ride_duration · monitor``."""
    return f"{template}{SEPARATOR}monitor"


def drift_review_display_name(template: str) -> str:
    """A template's nightly drift review DAG's: ``ride_duration · drift review``."""
    return f"{template}{SEPARATOR}drift review"
