"""Register the DAGs of cities, fallback parents and templates in DAG files, and report the broken city files.

Each DAG file reads and validates the city files it needs once, whatever it builds from them: a shard file
(``dags/retrain_shard_*.py``) builds each of its cities' retraining and scoring DAGs from one load, and
``dags/monitor_and_drift_review.py`` builds every template's monitor and drift review DAGs from one load.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, MutableMapping
from functools import partial
from pathlib import Path
from typing import Any, cast

from airflow.sdk import DAG, get_parsing_context

from airflow_ml.exceptions import BrokenCityFiles, ConfigError
from airflow_ml.factory.builder import build_dag
from airflow_ml.factory.checked_dag import CheckedConfDAG
from airflow_ml.factory.dag_defaults import default_args
from airflow_ml.factory.dag_schedule import retrain_schedule
from airflow_ml.factory.drift_review_dags import DRIFT_REVIEW_DAGS
from airflow_ml.factory.monitor_dags import MONITOR_DAGS, monitor_settings, monitored
from airflow_ml.factory.score_dags import SUFFIX as SCORE_SUFFIX
from airflow_ml.factory.score_dags import build_score_dag, score_dag_id, score_schedule, scores, scoring_settings
from airflow_ml.factory.sharding import Shard, report_budget_warning, shard_budget_warning
from airflow_ml.factory.tasks import task_settings
from airflow_ml.factory.template_dags import register_template_dags
from airflow_ml.templates.describe import Origin
from airflow_ml.templates.fallback_spec import GLOBAL_PARENT, GROUP_PARENT_PREFIX
from airflow_ml.templates.loader import load_city_configs, misnamed_layers, unexpected_error
from airflow_ml.templates.models import CityConfig, ModelConfig
from airflow_ml.templates.parent_loader import load_parent_configs

log = logging.getLogger(__name__)


def register_city_dags(
    namespace: MutableMapping[str, Any],
    *,
    templates_root: str | Path,
    expectations_dir: str | Path,
    shard: Shard | None = None,
) -> dict[str, DAG]:
    """Build every DAG of each city in ``shard`` into ``namespace`` (a DAG file's ``globals()``).

    What ``dags/retrain_shard_*.py`` call: each city file of the shard is read and validated once, and gives
    the city's retraining DAG and, when it has an enabled ``scoring:`` section, its scoring DAG. A broken
    city file is logged and skipped (``dags/retrain_errors.py`` reports it), and so is a DAG that cannot be
    built: the city's other DAG still loads. When a task process parses the file for one DAG, only that DAG is
    built, from that city's file (and, when the templates' name patterns make a clash possible, the few city
    files that could give its registered model: ``templates/model_claims.py``).
    """
    return _register_cities(namespace, templates_root, shard, expectations_dir=expectations_dir, scoring=True)


def register_dags(
    namespace: MutableMapping[str, Any],
    *,
    templates_root: str | Path,
    expectations_dir: str | Path,
    shard: Shard | None = None,
) -> dict[str, CheckedConfDAG]:
    """Build the retraining DAG of every city in ``shard`` into ``namespace``, and no scoring DAG.

    As :func:`register_city_dags` otherwise: a broken city file is logged and skipped, and a task process
    reads its city's file (and the few that could claim its registered model).
    """
    built = _register_cities(namespace, templates_root, shard, expectations_dir=expectations_dir, scoring=False)
    return cast(dict[str, CheckedConfDAG], built)  # build_dag's DAGs only


def register_score_dags(
    namespace: MutableMapping[str, Any], *, templates_root: str | Path, shard: Shard | None = None
) -> dict[str, DAG]:
    """Build the scoring DAG of every city of ``shard`` with scoring into ``namespace``, and no retraining DAG.

    As :func:`register_city_dags` otherwise: a broken city file is logged and skipped, and a task process of
    ``<template>.<city>.score`` reads that city's file (and the few that could claim its registered model); one
    of another DAG builds none.
    """
    return _register_cities(namespace, templates_root, shard, expectations_dir=None, scoring=True)


def _register_cities(
    namespace: MutableMapping[str, Any],
    templates_root: str | Path,
    shard: Shard | None,
    *,
    expectations_dir: str | Path | None,
    scoring: bool,
) -> dict[str, DAG]:
    """The retraining DAGs (unless ``expectations_dir`` is None) and the scoring DAGs (if ``scoring``) of a shard."""
    shard = shard or Shard()
    wanted = get_parsing_context().dag_id  # None in the DAG processor, which builds every DAG
    # A city's DAG ids are <template>.<city> and <template>.<city>.score: no template or city id holds a dot.
    parts = wanted.split(".") if wanted else []
    wants_score = len(parts) == 3 and f".{parts[2]}" == SCORE_SUFFIX
    if wanted and not (scoring if wants_score else expectations_dir is not None):
        return {}  # a task process of a DAG this call never builds

    def include(city: str) -> bool:
        return shard.holds(city) and (wanted is None or parts[1:2] == [city])

    whole = shard.count == 1 and wanted is None  # an unsharded load: no file left out, so no model-name pass
    origins: dict[str, Origin] = {}
    configs, errors = load_city_configs(Path(templates_root), include=None if whole else include, origins=origins)
    for error in errors:
        log.error("airflow-ml: skipped a city file: %s", error)
    if wanted is None and (warning := shard_budget_warning(shard, len(configs) + len(errors))):
        log.warning("airflow-ml: %s", warning)
    dags: dict[str, DAG] = {}
    for config in configs:
        city_file = _city_file(origins, config, templates_root)
        if expectations_dir is not None and wanted in (None, config.dag_id):
            origin = origins.get(config.dag_id)
            retrain = partial(build_dag, config, expectations_dir=expectations_dir, origin=origin)
            _add(namespace, dags, "a city", config.dag_id, city_file, retrain)
        if scoring and scores(config) and wanted in (None, score_dag_id(config)):
            score = partial(build_score_dag, config)
            _add(namespace, dags, "a city's scoring DAG", score_dag_id(config), city_file, score)
    return dags


def _add(
    namespace: MutableMapping[str, Any],
    dags: dict[str, DAG],
    what: str,
    dag_id: str,
    city_file: Path,
    build: Callable[[], DAG],
) -> None:
    """Build one DAG into ``namespace`` and ``dags``; any error skips that DAG alone.

    The city's other DAG and the shard's other cities stay: one DAG's error must never empty its shard file.
    """
    try:
        dag = build()
    except ConfigError as error:
        log.error("airflow-ml: skipped %s: %s", what, error)
        return
    except Exception:  # a bug or an unforeseen value: this DAG's error, and no other DAG's (retrain_errors reports it)
        log.exception("airflow-ml: skipped %s, %s of %s: its DAG could not be built", what, dag_id, city_file)
        return
    namespace[_variable_name(dag.dag_id)] = dag
    dags[dag.dag_id] = dag


def _city_file(origins: dict[str, Origin], config: ModelConfig, templates_root: str | Path) -> Path:
    """The file that gave ``config`` (the loader's record), else the cities folder."""
    return origins.get(config.dag_id, {}).get(("city",), (Path(templates_root) / "cities",))[0]


def register_monitor_and_drift_review_dags(
    namespace: MutableMapping[str, Any], *, templates_root: str | Path
) -> dict[str, DAG]:
    """Build every template's monitor and drift review DAGs into ``namespace`` from one load of the city files.

    What ``dags/monitor_and_drift_review.py`` calls: the cities of each DAG are exactly those that
    :func:`~airflow_ml.factory.monitor_dags.register_monitor_dags` and
    :func:`~airflow_ml.factory.drift_review_dags.register_drift_review_dags` take, each city validated in full
    once (a broken one is logged once and in neither). A task process of one of these DAGs builds only it.
    """
    return register_template_dags(namespace, templates_root=templates_root, kinds=[MONITOR_DAGS, DRIFT_REVIEW_DAGS])


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


def city_problems(templates_root: str | Path, shard: Shard | None = None) -> list[ConfigError]:
    """Every problem that keeps a city's (or a fallback parent's) DAG from loading.

    Invalid files, bad schedules, and any error building the settings of the city's retraining, scoring or
    monitor task, named as the city file's error.

    Args:
        templates_root: The templates folder.
        shard: When given, only the city files of this shard are validated, and a city of it that loses its
            registered model to a file of another shard is named (the shard files skip it: one rule,
            ``templates/model_claims.py``). The fallback parents' errors and the misnamed layer files are named
            by shard 0 only; a broken template or group, once by each shard holding a city it breaks. The union
            of every shard's problems, as a set, is then the problems without a shard (a broken template may be
            named by several shards).
    """
    return _problems(Path(templates_root), shard)[0]


def _problems(root: Path, shard: Shard | None) -> tuple[list[ConfigError], int]:
    """The problems, and how many city files the report read (its budget)."""
    origins: dict[str, Origin] = {}
    include = shard.holds if shard is not None and shard.count > 1 else None  # None: no file left out, no pass
    configs, errors = load_city_configs(root, include=include, origins=origins)
    misnamed = {(e.file, tuple(e.problems)) for e in misnamed_layers(root)}  # whole-fleet files, no city's
    files = len(configs) + sum((e.file, tuple(e.problems)) not in misnamed for e in errors)
    if shard is not None and shard.index != 0:  # named once, by shard 0
        errors = [e for e in errors if (e.file, tuple(e.problems)) not in misnamed]
    # Only named in the settings, never read here: the folder beside the templates, as the DAG files pass it.
    expectations_dir = root.parent / "expectations"
    for config in configs:
        try:
            _settings_of_every_dag(config, expectations_dir)
        except ConfigError as error:
            errors.append(error)
        except Exception as exc:  # noqa: BLE001 - whatever it is, it is this city's error and hides no other
            errors.append(unexpected_error(_city_file(origins, config, root), exc))
    if shard is None or shard.index == 0:
        errors.extend(load_parent_configs(root)[1])
    return errors, files


def _settings_of_every_dag(config: CityConfig, expectations_dir: Path) -> None:
    """Build what the city's DAGs are built from: its schedules and every task's settings (not the operators).

    What may raise here is what would skip one of its DAGs in a shard file or in the monitor and drift review
    file, so the report names the file; the settings cost a small part of the load (the operators, most of a
    DAG's build, would double the parse).
    """
    retrain_schedule(config)
    default_args(config)
    task_settings(config, expectations_dir=expectations_dir, origin=None)
    if scores(config):
        score_schedule(config)
        scoring_settings(config)
    if monitored(config):
        monitor_settings(config)


def report_broken_cities(*, templates_root: str | Path, shard: Shard | None = None) -> None:
    """Raise one error naming every broken city file, so that Airflow lists it among the import errors.

    Called from a DAG file of its own: its import error is visible in the UI and in
    ``airflow dags list-import-errors`` while the DAG file that builds the cities loads every good one. With
    ``shard``, only that shard's city files, as :func:`city_problems` says: a fleet past
    :data:`~airflow_ml.factory.sharding.CITIES_PER_REPORT` cities splits its report into several files
    (``retrain_errors_<i>.py``, one per shard), and a report file holding more logs a warning.
    """
    errors, files = _problems(Path(templates_root), shard)
    if warning := report_budget_warning(shard or Shard(), files):
        log.warning("airflow-ml: %s", warning)
    if errors:
        raise BrokenCityFiles(errors)


def _variable_name(dag_id: str) -> str:
    return "dag_" + "".join(c if c.isalnum() else "_" for c in dag_id)
