"""The validated spec of a city (or a fallback parent) as one frozen settings object per task, built once.

The split is built once and shared by training, the gate and the health check, so their holdouts are the same
rows. Pure Python, as parsing DAG files imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from airflow_ml.factory.dataset_contract import data_contract
from airflow_ml.ml.dask_settings import DaskSettings
from airflow_ml.ml.gate.rules import GateRules
from airflow_ml.ml.steps.step_settings import (
    DriftSettings,
    GateSettings,
    GxContextSettings,
    HealthSettings,
    SnapshotSettings,
    SplitSettings,
    TrainingSettings,
    ValidationSettings,
)
from airflow_ml.ml.train_spec import TrainSpec
from airflow_ml.templates.describe import Origin
from airflow_ml.templates.fallback_spec import GLOBAL_PARENT
from airflow_ml.templates.models import ModelConfig, ParentConfig
from airflow_ml.templates.training_spec import LightGBMParams, SearchSpec

#: The LightGBM parameters that take whole numbers: a search draws integers for them.
_INTEGER_PARAMS = sorted(name for name, info in LightGBMParams.model_fields.items() if info.annotation is int)


@dataclass(frozen=True)
class TaskSettings:
    """The settings of every task of a retraining DAG, from one validated spec."""

    snapshot: SnapshotSettings
    validation: ValidationSettings
    drift: DriftSettings
    training: TrainingSettings
    gate: GateSettings
    health: HealthSettings


def task_settings(config: ModelConfig, *, expectations_dir: str | Path, origin: Origin | None = None) -> TaskSettings:
    """Build every task's settings from ``config``; ``origin`` lets the dataset contract name files and lines."""
    dataset, training, drift, health = config.dataset, config.training, config.drift, config.health
    lineage_tags = {"airflow_ml.city": config.city, "airflow_ml.template": config.template}
    split = SplitSettings(
        time_column=dataset.time_column,
        validation_fraction=config.split.validation_fraction,
        holdout_fraction=config.split.holdout_fraction,
    )
    # Without training.search, the trigger form's search_trials searches the default ranges.
    search = {**(training.search or SearchSpec(trials=0)).model_dump(), "integers": _INTEGER_PARAMS}
    # training.engine and training.dask, built once: every task that reads the snapshot works where training does.
    dask = DaskSettings.from_dict(training.dask.model_dump())
    on_dask = dask if training.engine == "dask" else None
    return TaskSettings(
        snapshot=SnapshotSettings(
            template=config.template,
            city=config.city,
            members=list(config.members) if isinstance(config, ParentConfig) else None,
            source=dataset.source,
            data_format=dataset.format,
            time_column=dataset.time_column,
            window_days=dataset.window_days,
            contract=data_contract(config, origin).to_dict(),
            engine=training.engine,
            dask=on_dask,
        ),
        validation=ValidationSettings(
            suite=config.suite,
            expectations_dir=str(expectations_dir),
            city=config.city,
            expectations=list(config.expectations),
            known_columns=sorted(dataset.known_columns),
            experiment=config.model_name,
            gx_context=_gx_context_settings(config, expectations_dir),
            engine=training.engine,
            dask=on_dask,
        ),
        drift=DriftSettings(
            model_name=config.model_name,
            features=list(dataset.features),
            categorical_features=list(dataset.categorical_features),
            target=dataset.target,
            task=config.task,
            thresholds=drift.thresholds(),
            bins=drift.psi_bins,
            time_column=dataset.time_column,
            enabled=drift.enabled,
            tags=lineage_tags,
            calibration=drift.calibration.model_dump(),
            **drift.comparison(),
        ),
        training=TrainingSettings(
            experiment=config.model_name,
            spec=TrainSpec(
                features=list(dataset.features),
                categorical=list(dataset.categorical_features),
                target=dataset.target,
                task=config.task,
                metric=config.metric.name,
                num_boost_round=training.num_boost_round,
                early_stopping_rounds=training.early_stopping_rounds,
                seed=training.seed,
                num_threads=training.num_threads,
                params=training.params.model_dump(),
                class_weight=training.class_weight,
            ),
            split=split,
            search=search,
            warm_start=training.warm_start,
            model_name=config.model_name,
            fallback_min_rows=config.fallback.min_rows if config.parent_model_name else None,
            parent_model=config.parent_model_name,
            tags=lineage_tags,
            config=config.model_dump(mode="json"),
            engine=training.engine,
            dask=dask,
        ),
        gate=GateSettings(
            model_name=config.model_name,
            target=dataset.target,
            metric=config.metric.name,
            split=split,
            rules=GateRules.from_dict({**config.gate.rules(), "min_holdout_rows": config.split.min_holdout_rows}),
            parent_model=config.parent_model_name,
            template=config.template,
            not_cities=(GLOBAL_PARENT,),
            name_pattern=config.registry.name_pattern,
            engine=training.engine,
            dask=on_dask,
        ),
        health=HealthSettings(
            model_name=config.model_name,
            split=split,
            enabled=health.enabled,
            sample_rows=health.sample_rows,
            max_mean_shift=health.max_mean_shift,
            max_quantile_shift=health.max_quantile_shift,
            engine=training.engine,
            dask=on_dask,
        ),
    )


def _gx_context_settings(config: ModelConfig, expectations_dir: str | Path) -> GxContextSettings | None:
    """The city's ``gx_context``, its path relative to the project folder (the one holding expectations/)."""
    spec = config.gx_context
    if spec is None:
        return None
    root = str(Path(expectations_dir).parent)
    return GxContextSettings(path=spec.path, project_root=root, checkpoint=spec.checkpoint, suite=spec.suite)
