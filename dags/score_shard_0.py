"""Scoring DAGs, shard 0 of 2: `<template>.<city>.score` for each city with a `scoring:` section (issue 13).

Cities are spread over the two score_shard_*.py files by the same stable hash as the retrain_shard_*.py files;
every shard file must name the same count. Broken city files are reported by retrain_errors.py.
"""

from __future__ import annotations

from pathlib import Path

from airflow_ml.factory import Shard, register_score_dags

register_score_dags(
    globals(), templates_root=Path(__file__).resolve().parent.parent / "dag_templates", shard=Shard(0, 2)
)
