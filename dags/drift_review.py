"""Drift review DAGs, ``<template>.drift_review``: each night, every city's drift p-values adjusted together."""

from __future__ import annotations

from pathlib import Path

from airflow_ml.factory.drift_review_dags import register_drift_review_dags

register_drift_review_dags(globals(), templates_root=Path(__file__).resolve().parent.parent / "dag_templates")
