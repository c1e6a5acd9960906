"""The monitor DAG of a template, ``<template>.monitor``: one mapped task per city with ``monitoring:``.

One DAG per template (not per city) keeps the fleet's DAG count flat; dynamic task mapping gives each city a task
instance of its own, so a city whose labels or log are broken fails alone and the others are monitored.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from airflow.sdk import DAG

from airflow_ml.factory.dag_defaults import default_args
from airflow_ml.factory.display_names import monitor_display_name
from airflow_ml.factory.template_dags import TemplateDags, register_template_dags
from airflow_ml.ml.steps.step_settings import MonitorSettings, ShadowSettings, SupervisorSettings
from airflow_ml.operators.champion_assets import champion_alias
from airflow_ml.operators.monitor_operator import MonitorOperator
from airflow_ml.templates.models import CityConfig
from airflow_ml.templates.monitoring_spec import MONITOR_DAG_SUFFIX

MONITOR_SUFFIX = MONITOR_DAG_SUFFIX
_START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def monitor_dag_id(template: str) -> str:
    """``<template>.monitor``."""
    return f"{template}.{MONITOR_SUFFIX}"


def monitored(config: CityConfig) -> bool:
    """Whether the city is in its template's monitor DAG: it has monitoring and scoring that is enabled."""
    return config.monitoring is not None and config.scoring is not None and config.scoring.enabled


def monitor_settings(config: CityConfig) -> MonitorSettings:
    """The monitor task's settings of one city (which must be :func:`monitored`)."""
    monitoring, scoring, dataset = config.monitoring, config.scoring, config.dataset
    assert monitoring is not None
    assert scoring is not None
    supervisor, bootstrap, labels = monitoring.supervisor, monitoring.bootstrap, monitoring.labels
    return MonitorSettings(
        template=config.template,
        city=config.city,
        model_name=config.model_name,
        parent_model=config.parent_model_name,
        metric=config.metric.name,
        target=dataset.target,
        predictions_root=scoring.output,
        labels_source=labels.source or dataset.source,
        predictions_conn_id=scoring.conn_id,
        labels_conn_id=labels.conn_id or dataset.conn_id,
        labels_format=labels.format or dataset.format,
        join=labels.join,
        key_columns=list(scoring.key_columns),
        window_days=monitoring.window_days,
        windows=monitoring.windows,
        resamples=bootstrap.resamples,
        confidence=bootstrap.confidence,
        seed=bootstrap.seed,
        supervisor=SupervisorSettings(**supervisor.model_dump()),
        shadow=ShadowSettings(
            min_improvement=monitoring.shadow.min_improvement,
            min_labels=monitoring.shadow.min_labels,
            min_days=monitoring.shadow.min_days,
            max_slice_regression=monitoring.shadow.max_slice_regression,
            slices=[s.model_dump() for s in monitoring.shadow.slices],
            resamples=bootstrap.resamples,
            confidence=bootstrap.confidence,
            seed=bootstrap.seed,
        ),
    )


def build_monitor_dag(template: str, configs: list[CityConfig]) -> DAG:
    """Build ``<template>.monitor`` over ``configs`` (the template's monitored cities, at least one).

    Scheduled by the template's ``monitoring.schedule`` (daily by default; a city or group file may not set
    it, so every city of the template has the same); its one task, ``monitor``, is mapped over the city ids
    (map index shown as the city). The DAG's
    retries and owner are those of the first city (the template's, unless a city overrides them). A failed
    task is mailed to the cities' ``dag.on_failure`` recipients only when every city names the same ones (a
    city's recipients never hear of another city's failure); each city's own recipients hear of its
    demotions and alerts.
    """
    configs = sorted(configs, key=lambda c: c.city)
    first = configs[0]
    args = default_args(first)
    args.pop("aws_conn_id")  # each city's settings name the connections of its prediction log and labels
    if any(c.dag.on_failure != first.dag.on_failure for c in configs):
        args.pop("on_failure_callback", None)
    with DAG(
        dag_id=monitor_dag_id(template),
        dag_display_name=monitor_display_name(template),
        description=f"Watch the live error of {template}'s champions and let the supervisor act (airflow-ml)",
        schedule=_schedule(first),
        start_date=_START,
        catchup=False,
        max_active_runs=1,
        tags=["airflow-ml", template, "monitor"],
        default_args=args,
        doc_md=(
            f"### Monitor {template}\n\nOne mapped task per city ({len(configs)}): labels joined to the prediction "
            "log, the live metric per window with its bootstrap interval against the champion's holdout score, "
            "and the supervisor's decision (docs/guides/monitoring.md)."
        ),
    ) as dag:
        MonitorOperator.partial(
            task_id="monitor",
            settings={c.city: monitor_settings(c).to_dict() for c in configs},
            notifiers={c.city: _notifiers(c) for c in configs if c.dag.on_failure},
            # Given here, not only by the operator's default: a mapped task's outlets are what partial() names.
            outlets=[champion_alias()],
            map_index_template="{{ task.city }}",
        ).expand(city=[c.city for c in configs])
    return dag


def _schedule(config: CityConfig) -> str:
    """The template's ``monitoring.schedule``, the same for all its cities (the loader refuses it in a city)."""
    assert config.monitoring is not None
    return config.monitoring.schedule


def _notifiers(config: CityConfig) -> list[Any]:
    from airflow_ml.factory.failure_mail import notice_mail

    return [notice_mail(n.to, n.conn_id) for n in config.dag.on_failure if n.kind == "smtp"]


#: The monitor DAG of every template with a monitored city (``dags/monitor_and_drift_review.py`` builds them).
MONITOR_DAGS = TemplateDags(MONITOR_SUFFIX, monitored, build_monitor_dag)


def register_monitor_dags(namespace: MutableMapping[str, Any], *, templates_root: str | Path) -> dict[str, DAG]:
    """Build the monitor DAG of every template that has a monitored city into ``namespace`` (``globals()``).

    A task process that parses the file for another DAG builds nothing; for one monitor DAG, only that one.
    A broken city file is logged and skipped (``dags/retrain_errors.py`` reports it).
    """
    return register_template_dags(namespace, templates_root=templates_root, kinds=[MONITOR_DAGS])
