"""Monitor DAGs, ``<template>.monitor``: one per template with ``monitoring:``, one mapped task per city."""

from __future__ import annotations

from pathlib import Path

from airflow_ml.factory.monitor_dags import register_monitor_dags

register_monitor_dags(globals(), templates_root=Path(__file__).resolve().parent.parent / "dag_templates")
