"""Retraining and scoring DAGs, shard 0 of 2: each city file in dag_templates/cities gives its DAGs here.

A city's retraining DAG `<template>.<city>` and, with a `scoring:` section, its scoring DAG
`<template>.<city>.score` are built in the same shard file, from one read of its city file. Cities are spread
over the two retrain_shard_*.py files by a stable hash of their id, so that Airflow's parsing processes share
the fleet; every shard file must name the same count (docs/production/scaling.md says how many a fleet needs).
"""

from __future__ import annotations

from pathlib import Path

from airflow_ml.factory import Shard, register_city_dags

_REPO = Path(__file__).resolve().parent.parent

register_city_dags(
    globals(), templates_root=_REPO / "dag_templates", expectations_dir=_REPO / "expectations", shard=Shard(0, 2)
)
