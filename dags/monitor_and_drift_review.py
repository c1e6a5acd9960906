"""Per-template DAGs: ``<template>.monitor`` and ``<template>.drift_review``, from one read of the city files.

The monitor DAG (for a template with ``monitoring:``) has one mapped task per monitored city; the drift review
DAG adjusts every calibrated city's drift p-values together each night. Broken city files are in neither and
are reported by retrain_errors.py.
"""

from __future__ import annotations

from pathlib import Path

from airflow_ml.factory import register_monitor_and_drift_review_dags

register_monitor_and_drift_review_dags(
    globals(), templates_root=Path(__file__).resolve().parent.parent / "dag_templates"
)
