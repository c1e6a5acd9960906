"""The drift review DAG of a template, ``<template>.drift_review``: one nightly task over all its cities.

A separate DAG (not a task of the monitor DAG) because every city with drift calibration takes part, monitored
or not; one DAG per template keeps the fleet's DAG count flat.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from airflow.sdk import DAG

from airflow_ml.factory.dag_defaults import default_args
from airflow_ml.factory.display_names import drift_review_display_name
from airflow_ml.factory.template_dags import TemplateDags, register_template_dags
from airflow_ml.ml.steps.step_settings import DriftReviewSettings
from airflow_ml.operators.drift_review_operator import DriftReviewOperator
from airflow_ml.templates.drift_spec import DRIFT_REVIEW_DAG_SUFFIX
from airflow_ml.templates.models import CityConfig

DRIFT_REVIEW_SUFFIX = DRIFT_REVIEW_DAG_SUFFIX
#: Nightly, after the cities' runs of the night (their default schedules run earlier).
DRIFT_REVIEW_SCHEDULE = "0 6 * * *"
_START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def drift_review_dag_id(template: str) -> str:
    """``<template>.drift_review``."""
    return f"{template}.{DRIFT_REVIEW_SUFFIX}"


def reviewed(config: CityConfig) -> bool:
    """Whether the city takes part in its template's review: its drift check and calibration are on."""
    return config.drift.enabled and config.drift.calibration.enabled


def review_settings(template: str, configs: list[CityConfig]) -> DriftReviewSettings:
    """The review's settings: the cities, the strictest ``q`` and ``min_flagged`` and the most lenient age."""
    return DriftReviewSettings(
        template=template,
        cities={c.city: c.model_name for c in sorted(configs, key=lambda c: c.city)},
        q=min(c.drift.calibration.q for c in configs),
        min_flagged=min(c.drift.calibration.min_flagged for c in configs),
        max_age_days=max(c.drift.calibration.max_age_days for c in configs),
    )


def build_drift_review_dag(template: str, configs: list[CityConfig]) -> DAG:
    """Build ``<template>.drift_review`` over ``configs`` (the template's reviewed cities, at least one)."""
    first = sorted(configs, key=lambda c: c.city)[0]
    args = default_args(first)
    args.pop("on_failure_callback", None)  # a city's recipients never hear of the fleet's task
    with DAG(
        dag_id=drift_review_dag_id(template),
        dag_display_name=drift_review_display_name(template),
        description=f"Adjust the drift p-values of {template}'s cities together (airflow-ml)",
        schedule=DRIFT_REVIEW_SCHEDULE,
        start_date=_START,
        catchup=False,
        max_active_runs=1,
        tags=["airflow-ml", template, "drift"],
        default_args=args,
        doc_md=(
            f"### Drift review of {template}\n\nOnce a night, the newest drift p-values of the {len(configs)} "
            "cities are adjusted together (Benjamini-Yekutieli at `drift.calibration.q`); the q-values go to each "
            "city's `drift.json` and drift run (docs/guides/drift.md)."
        ),
    ) as dag:
        DriftReviewOperator(task_id="review", settings=review_settings(template, configs).to_dict())
    return dag


#: The drift review DAG of every template with a reviewed city (``dags/monitor_and_drift_review.py`` builds them).
DRIFT_REVIEW_DAGS = TemplateDags(DRIFT_REVIEW_SUFFIX, reviewed, build_drift_review_dag)


def register_drift_review_dags(namespace: MutableMapping[str, Any], *, templates_root: str | Path) -> dict[str, DAG]:
    """Build the review DAG of every template with a reviewed city into ``namespace`` (``globals()``)."""
    return register_template_dags(namespace, templates_root=templates_root, kinds=[DRIFT_REVIEW_DAGS])
