"""DAGs of one per template over some of its cities: the monitor and the drift review, from one load of the cities."""

from __future__ import annotations

import logging
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, get_parsing_context

from airflow_ml.templates.describe import Origin
from airflow_ml.templates.loader import load_city_configs
from airflow_ml.templates.models import CityConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TemplateDags:
    """A kind of DAG built once per template: ``<template>.<suffix>`` over the template's ``selected`` cities."""

    suffix: str
    selected: Callable[[CityConfig], bool]
    build: Callable[[str, list[CityConfig]], DAG]

    def dag_id(self, template: str) -> str:
        """``<template>.<suffix>``."""
        return f"{template}.{self.suffix}"


def register_template_dags(
    namespace: MutableMapping[str, Any], *, templates_root: str | Path, kinds: Sequence[TemplateDags]
) -> dict[str, DAG]:
    """Build each kind's DAG for every template with a selected city into ``namespace`` (``globals()``).

    The city files are read and validated once, whatever the number of kinds. A task process that parses the
    file for another DAG builds nothing (and reads no city file); for one such DAG, only that one. A broken
    city file is logged once and skipped (``dags/retrain_errors.py`` reports it), and so is a DAG whose build
    raises, naming its cities' files: the other DAGs still load.
    """
    wanted = get_parsing_context().dag_id
    if wanted:
        kinds = [kind for kind in kinds if wanted.endswith(f".{kind.suffix}")]
        if not kinds:
            return {}
    origins: dict[str, Origin] = {}
    configs, errors = load_city_configs(Path(templates_root), origins=origins)
    for error in errors:
        log.error("airflow-ml: skipped a city file: %s", error)
    dags = {}
    for kind in kinds:
        by_template: dict[str, list[CityConfig]] = {}
        for config in configs:
            if kind.selected(config):
                by_template.setdefault(config.template, []).append(config)
        for template, cities in sorted(by_template.items()):
            dag_id = kind.dag_id(template)
            if wanted and dag_id != wanted:
                continue
            try:
                dag = kind.build(template, cities)
            except Exception:  # one DAG's error hides no other kind's or template's DAG (retrain_errors names it)
                files = sorted(str(origins.get(c.dag_id, {}).get(("city",), (c.city,))[0]) for c in cities)
                log.exception(
                    "airflow-ml: skipped %s: its DAG could not be built from the city files %s", dag_id, files
                )
                continue
            namespace["dag_" + "".join(c if c.isalnum() else "_" for c in dag_id)] = dag
            dags[dag_id] = dag
    return dags
