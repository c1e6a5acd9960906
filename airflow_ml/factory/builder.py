"""Turn a :class:`CityConfig` into an Airflow DAG of provider operators.

The factory knows operators and configs, never pandas: parsing ``dags/`` stays cheap.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, get_parsing_context

from airflow_ml.factory.params import trigger_params
from airflow_ml.operators.gate import PromotionGateOperator
from airflow_ml.operators.register import RegisterModelOperator
from airflow_ml.operators.snapshot import SnapshotOperator
from airflow_ml.operators.train import TrainModelOperator
from airflow_ml.operators.validate import ValidateDataOperator
from airflow_ml.templates.loader import load_city_configs
from airflow_ml.templates.models import CityConfig

log = logging.getLogger(__name__)

#: The designed order of every retraining DAG.
TASK_ORDER = ("snapshot", "validate", "train", "register", "gate")
_START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def build_dag(config: CityConfig, *, expectations_dir: str | Path) -> DAG:
    """Build the retraining DAG of one city: snapshot → validate → train → register → gate."""
    dataset, split, training, gate = config.dataset, config.split, config.training, config.gate
    lineage_tags = {"airflow_ml.city": config.city, "airflow_ml.template": config.template}
    with DAG(
        dag_id=config.dag_id,
        description=f"Retrain {config.title}'s {config.template} model",
        schedule=config.dag.schedule,
        start_date=_START,
        catchup=False,
        max_active_runs=1,
        tags=sorted({"airflow-ml", config.template, f"city:{config.city}", *config.dag.tags}),
        default_args={
            "owner": config.dag.owner,
            "retries": config.dag.retries,
            "retry_delay": dt.timedelta(minutes=config.dag.retry_delay_minutes),
        },
        params=trigger_params(config),
        doc_md=_doc(config),
    ) as dag:
        snapshot = SnapshotOperator(
            task_id="snapshot",
            city=config.city,
            source=dataset.source,
            data_format=dataset.format,
            window_days=dataset.window_days,
            window_start="{{ params.window_start }}",
            window_end="{{ params.window_end }}",
        )
        validate = ValidateDataOperator(
            task_id="validate", snapshot=snapshot.output, suite=config.suite, expectations_dir=str(expectations_dir)
        )
        train = TrainModelOperator(
            task_id="train",
            snapshot=snapshot.output,
            experiment=config.model_name,
            target=dataset.target,
            features=list(dataset.features),
            categorical_features=list(dataset.categorical_features),
            time_column=dataset.time_column,
            task=config.task,
            metric=config.metric.name,
            validation_fraction=split.validation_fraction,
            holdout_fraction=split.holdout_fraction,
            num_boost_round=f"{{{{ params.num_boost_round or {training.num_boost_round} }}}}",
            learning_rate="{{ params.learning_rate }}",
            early_stopping_rounds=training.early_stopping_rounds,
            seed=training.seed,
            num_threads=training.num_threads,
            lgbm_params=training.params.model_dump(),
            tags=lineage_tags,
            config=config.model_dump(mode="json"),
        )
        register = RegisterModelOperator(
            task_id="register",
            model_name=config.model_name,
            training=train.output,
            snapshot=snapshot.output,
            tags=lineage_tags,
        )
        promote = PromotionGateOperator(
            task_id="gate",
            model_name=config.model_name,
            registration=register.output,
            snapshot=snapshot.output,
            target=dataset.target,
            time_column=dataset.time_column,
            metric=config.metric.name,
            validation_fraction=split.validation_fraction,
            holdout_fraction=split.holdout_fraction,
            min_improvement=gate.min_improvement,
            improvement_mode=gate.improvement_mode,
            min_holdout_rows=split.min_holdout_rows,
            reason="{{ params.reason }}",
        )
        snapshot >> validate >> train >> register >> promote
    return dag


def register_dags(
    namespace: MutableMapping[str, Any], *, templates_root: str | Path, expectations_dir: str | Path
) -> dict[str, DAG]:
    """Build every city's DAG into ``namespace`` (a DAG file's ``globals()``).

    A broken city file is logged with its full error and skipped; the other cities' DAGs still load.
    When a task process parses the file for one DAG, only that DAG is built.
    """
    configs, errors = load_city_configs(Path(templates_root))
    for error in errors:
        log.error("airflow-ml: skipped a city file: %s", error)
    wanted = get_parsing_context().dag_id
    dags = {}
    for config in configs:
        if wanted and config.dag_id != wanted:
            continue
        dag = build_dag(config, expectations_dir=expectations_dir)
        namespace[_variable_name(config.dag_id)] = dag
        dags[config.dag_id] = dag
    return dags


def _variable_name(dag_id: str) -> str:
    return "dag_" + "".join(c if c.isalnum() else "_" for c in dag_id)


def _doc(config: CityConfig) -> str:
    merged = json.dumps(config.model_dump(mode="json"), indent=2)
    return (
        f"### Retraining {config.title} ({config.template})\n\n"
        f"{config.description}\n\n"
        f"Snapshot → validate (suite `{config.suite}`) → train LightGBM → register `{config.model_name}` as "
        f"`challenger` → gate on `{config.metric.name}` (champion moves only if the challenger wins).\n\n"
        f"<details><summary>Merged configuration</summary>\n\n```json\n{merged}\n```\n</details>\n"
    )
