"""One DAG per template over some of its cities (the drift review; the monitor DAG registers the same way)."""

from __future__ import annotations

import logging
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, get_parsing_context

from airflow_ml.templates.loader import load_city_configs
from airflow_ml.templates.models import CityConfig

log = logging.getLogger(__name__)


def register_template_dags(
    namespace: MutableMapping[str, Any],
    *,
    templates_root: str | Path,
    suffix: str,
    selected: Callable[[CityConfig], bool],
    build: Callable[[str, list[CityConfig]], DAG],
) -> dict[str, DAG]:
    """Build ``<template>.<suffix>`` for every template with a ``selected`` city into ``namespace`` (``globals()``).

    A task process that parses the file for another DAG builds nothing; for one such DAG, only that one. A
    broken city file is logged and skipped (``dags/retrain_errors.py`` reports it).
    """
    wanted = get_parsing_context().dag_id
    if wanted and not wanted.endswith(f".{suffix}"):
        return {}
    configs, errors = load_city_configs(Path(templates_root))
    for error in errors:
        log.error("airflow-ml: skipped a city file: %s", error)
    by_template: dict[str, list[CityConfig]] = {}
    for config in configs:
        if selected(config):
            by_template.setdefault(config.template, []).append(config)
    dags = {}
    for template, cities in sorted(by_template.items()):
        dag_id = f"{template}.{suffix}"
        if wanted and dag_id != wanted:
            continue
        dag = build(template, cities)
        namespace["dag_" + "".join(c if c.isalnum() else "_" for c in dag_id)] = dag
        dags[dag_id] = dag
    return dags
