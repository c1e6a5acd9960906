"""Register every city's (and fallback parent's) retraining DAG in a DAG file, and report the broken city files."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from airflow.sdk import get_parsing_context

from airflow_ml.exceptions import BrokenCityFiles, ConfigError
from airflow_ml.factory.builder import build_dag
from airflow_ml.factory.checked_dag import CheckedConfDAG
from airflow_ml.factory.dag_schedule import retrain_schedule
from airflow_ml.factory.score_dags import score_schedule, scores
from airflow_ml.factory.sharding import Shard
from airflow_ml.templates.describe import Origin
from airflow_ml.templates.fallback_spec import GLOBAL_PARENT, GROUP_PARENT_PREFIX
from airflow_ml.templates.loader import load_city_configs, load_parent_configs, unexpected_error

log = logging.getLogger(__name__)


def register_dags(
    namespace: MutableMapping[str, Any],
    *,
    templates_root: str | Path,
    expectations_dir: str | Path,
    shard: Shard | None = None,
) -> dict[str, CheckedConfDAG]:
    """Build the DAG of every city in ``shard`` into ``namespace`` (a DAG file's ``globals()``).

    A broken city file is logged and skipped; the other cities' DAGs still load, and
    ``dags/retrain_errors.py`` (see :func:`report_broken_cities`) shows the error in Airflow.
    When a task process parses the file for one DAG, only that city's file is read and only its DAG built,
    so a task starts as fast with a thousand cities as with one.
    """
    shard = shard or Shard()
    wanted = get_parsing_context().dag_id
    wanted_city = wanted.rpartition(".")[2] if wanted else None

    def include(city: str) -> bool:
        return shard.holds(city) and (wanted_city is None or city == wanted_city)

    origins: dict[str, Origin] = {}
    configs, errors = load_city_configs(Path(templates_root), include=include, origins=origins)
    for error in errors:
        log.error("airflow-ml: skipped a city file: %s", error)
    dags = {}
    for config in configs:
        if wanted and config.dag_id != wanted:
            continue
        try:
            dag = build_dag(config, expectations_dir=expectations_dir, origin=origins.get(config.dag_id))
        except ConfigError as error:
            log.error("airflow-ml: skipped a city: %s", error)
            continue
        namespace[_variable_name(config.dag_id)] = dag
        dags[config.dag_id] = dag
    return dags


def register_parent_dags(
    namespace: MutableMapping[str, Any], *, templates_root: str | Path, expectations_dir: str | Path
) -> dict[str, CheckedConfDAG]:
    """Build the DAG of every fallback parent that some city names (``<template>.global``, ``<template>.group.<g>``).

    A parent trains on the union of its members' data: every city file is scanned for its template and
    group (not validated: broken files are :func:`report_broken_cities`'s); a task process of a city's DAG
    reads none.
    """
    wanted = get_parsing_context().dag_id
    if wanted and not _is_parent_dag_id(wanted):
        return {}
    parents, errors = load_parent_configs(Path(templates_root))
    for error in errors:
        log.error("airflow-ml: skipped a fallback parent: %s", error)
    dags = {}
    for config in parents:
        if wanted and config.dag_id != wanted:
            continue
        try:
            dag = build_dag(config, expectations_dir=expectations_dir)
        except Exception:  # one parent's error hides no other parent: each is its own DAG
            log.exception("airflow-ml: skipped the fallback parent %s: its DAG could not be built", config.dag_id)
            continue
        namespace[_variable_name(config.dag_id)] = dag
        dags[config.dag_id] = dag
    return dags


def _is_parent_dag_id(dag_id: str) -> bool:
    _, _, rest = dag_id.partition(".")
    return rest == GLOBAL_PARENT or rest.startswith(GROUP_PARENT_PREFIX)


def city_problems(templates_root: str | Path) -> list[ConfigError]:
    """Every problem that keeps a city's (or a fallback parent's) DAG from loading: invalid files, bad schedules."""
    origins: dict[str, Origin] = {}
    configs, errors = load_city_configs(Path(templates_root), origins=origins)
    for config in configs:
        try:
            retrain_schedule(config)
            if scores(config):
                score_schedule(config)
        except ConfigError as error:
            errors.append(error)
        except Exception as exc:  # noqa: BLE001 - whatever it is, it is this city's error and hides no other
            city_file = origins.get(config.dag_id, {}).get(("city",), (Path(templates_root) / "cities",))[0]
            errors.append(unexpected_error(city_file, exc))
    errors.extend(load_parent_configs(Path(templates_root))[1])
    return errors


def report_broken_cities(*, templates_root: str | Path) -> None:
    """Raise one error naming every broken city file, so that Airflow lists it among the import errors.

    Called from a DAG file of its own: its import error is visible in the UI and in
    ``airflow dags list-import-errors`` while the DAG file that builds the cities loads every good one.
    """
    errors = city_problems(templates_root)
    if errors:
        raise BrokenCityFiles(errors)


def _variable_name(dag_id: str) -> str:
    return "dag_" + "".join(c if c.isalnum() else "_" for c in dag_id)
