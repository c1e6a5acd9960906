"""One frozen, typed settings object per task of a run, each with ``to_dict``/``from_dict``.

The factory builds them once from the validated spec (``airflow_ml.factory.tasks``); an operator takes the
dict and its step the object. Pure Python: the factory imports this module when it parses DAG files.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from airflow_ml.ml.dask_settings import DaskSettings
from airflow_ml.ml.frozen_settings import FrozenSettings
from airflow_ml.ml.gate.rules import GateRules
from airflow_ml.ml.steps.after_promotion_settings import MonitorSettings as MonitorSettings
from airflow_ml.ml.steps.after_promotion_settings import ScoringSettings as ScoringSettings
from airflow_ml.ml.steps.after_promotion_settings import ShadowSettings as ShadowSettings
from airflow_ml.ml.steps.after_promotion_settings import SupervisorSettings as SupervisorSettings
from airflow_ml.ml.steps.validation_settings import GxContextSettings as GxContextSettings
from airflow_ml.ml.steps.validation_settings import ValidationSettings as ValidationSettings
from airflow_ml.ml.train_spec import TrainSpec


@dataclass(frozen=True)
class SplitSettings(FrozenSettings):
    """How a snapshot is split by time; defined once, shared by training, the gate and the health check.

    Attributes:
        time_column: The column the split follows.
        validation_fraction: Share of the newest rows before the holdout, for early stopping.
        holdout_fraction: Share of the newest rows kept for the gate.
    """

    time_column: str
    validation_fraction: float = 0.15
    holdout_fraction: float = 0.15


@dataclass(frozen=True)
class SnapshotSettings(FrozenSettings):
    """What the snapshot task copies (see :class:`~airflow_ml.operators.snapshot_operator.SnapshotOperator`).

    Attributes:
        template: The DAG's template; with ``city`` it keys the snapshot.
        city: The city id (a fallback parent's: ``global`` or ``group.<group>``).
        source: URI pattern of the city's data; ``{data_root}`` and ``{city}`` are filled in.
        members: The cities whose data the snapshot unites (a fallback parent's); just ``city`` when None.
        data_format: ``parquet`` or ``csv``.
        time_column: Column of CSV files parsed as date-times.
        window_days: The latest N days of partitions (all when None and the run sets no window).
        contract: The dataset contract (:meth:`airflow_ml.data.contract.DataContract.to_dict`), or None.
        engine: ``local`` (one ``data.parquet``) or ``dask`` (a partitioned snapshot on the cluster of ``dask``):
            ``training.engine``, as every task that reads the snapshot gets it.
        dask: ``training.dask``: how the task reaches its cluster (None: the defaults; the factory leaves it out
            for ``local``, which keeps the parsed DAG small).
    """

    nested: ClassVar[Mapping[str, Any]] = {"dask": DaskSettings}

    template: str
    city: str
    source: str
    members: Sequence[str] | None = None
    data_format: str = "parquet"
    time_column: str | None = None
    window_days: int | None = None
    contract: Mapping[str, Any] | None = None
    engine: Literal["local", "dask"] = "local"
    dask: DaskSettings | None = None


@dataclass(frozen=True)
class DriftSettings(FrozenSettings):
    """The drift check of a city: the columns, the thresholds and which rows are compared.

    Attributes:
        model_name: The city's registered model, whose champion is the reference; also the experiment.
        features: Feature columns.
        target: The label column.
        categorical_features: The features that are categories.
        task: ``regression`` or ``binary``.
        thresholds: Plain dicts shaped like the template's ``drift:`` section (``DriftSpec.thresholds()``).
        bins: PSI bins (quantiles of the champion's data).
        time_column: The column that dates a row; it tells the new rows apart.
        compare: ``new_rows`` or ``whole_snapshot``.
        min_new_rows: Fewer new rows compare the whole snapshot.
        min_new_days: Fewer new days compare the whole snapshot.
        enabled: False skips the check.
        tags: Extra MLflow run tags (city, template...).
        calibration: ``drift.calibration`` as a plain dict (see
            :class:`airflow_ml.ml.drift_calibration.CalibrationRules`); ``{"enabled": False}`` turns it off.
    """

    model_name: str
    features: Sequence[str]
    target: str
    categorical_features: Sequence[str] = ()
    task: str = "regression"
    thresholds: Mapping[str, Any] = field(default_factory=dict)
    bins: int = 10
    time_column: str | None = None
    compare: Literal["new_rows", "whole_snapshot"] = "new_rows"
    min_new_rows: int = 200
    min_new_days: int = 7
    enabled: bool = True
    tags: Mapping[str, str] = field(default_factory=dict)
    calibration: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DriftReviewSettings(FrozenSettings):
    """The nightly review of a template's drift: every city's latest p-values adjusted together.

    Attributes:
        template: The template whose cities are reviewed.
        cities: Per city, its registered model (the review reads ``<data_root>/drift_history/<template>/``).
        q: The false discovery rate (the smallest of the cities' ``drift.calibration.q``).
        min_flagged: Flagged features that would stop a city's run (the smallest of the cities').
        max_age_days: A city whose newest drift record is older leaves the family (the largest of the cities').
    """

    template: str
    cities: Mapping[str, str]
    q: float = 0.05
    min_flagged: int = 2
    max_age_days: int = 45  # the spec's DEFAULT_MAX_AGE_DAYS (ml never imports templates); a test keeps them one


@dataclass(frozen=True)
class TrainingSettings(FrozenSettings):
    """How a city's model is trained, with the split it is trained on.

    Attributes:
        experiment: MLflow experiment name.
        spec: Everything that decides the model besides the data (columns, task, metric, LightGBM).
        split: The time split (shared with the gate and the health check).
        search: ``trials``, ``timeout_minutes``, ``params`` (the ranges, ``{param: [low, high]}`` or
            ``[low, high, "log"]``) and ``integers`` (the parameters that take whole numbers) of the search.
        warm_start: Also train from the champion's booster and keep the better one on validation.
        model_name: The registered model whose champion a warm start continues (default: ``experiment``).
        fallback_min_rows: With a fallback parent: a snapshot with fewer rows trains nothing.
        parent_model: The city's fallback parent, recorded with the data status.
        tags: Extra MLflow run tags (city, template...).
        config: The merged city config, logged as an artifact.
        engine: ``local`` or ``dask`` (:mod:`airflow_ml.ml.dask_train`, on the cluster of ``dask``).
    """

    nested: ClassVar[Mapping[str, Any]] = {"spec": TrainSpec, "split": SplitSettings, "dask": DaskSettings}

    experiment: str
    spec: TrainSpec
    split: SplitSettings
    search: Mapping[str, Any] = field(default_factory=dict)
    warm_start: bool = False
    model_name: str | None = None
    fallback_min_rows: int | None = None
    parent_model: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    config: Mapping[str, Any] | None = None
    engine: Literal["local", "dask"] = "local"
    dask: DaskSettings = field(default_factory=DaskSettings)

    @property
    def registered_model(self) -> str:
        """The registered model of the city: ``model_name``, else the experiment's name."""
        return self.model_name or self.experiment

    def with_overrides(
        self,
        *,
        num_boost_round: int | None = None,
        lgbm_params: Mapping[str, Any] | None = None,
        search_trials: int | None = None,
        search_timeout_minutes: float | None = None,
    ) -> TrainingSettings:
        """These settings with a run's trigger overrides applied (None keeps the configured value)."""
        search = dict(self.search)
        if search_trials is not None:
            search["trials"] = search_trials
        if search_timeout_minutes is not None:
            search["timeout_minutes"] = search_timeout_minutes
        rounds = self.spec.num_boost_round if num_boost_round is None else num_boost_round
        spec = dataclasses.replace(
            self.spec, num_boost_round=rounds, params={**self.spec.params, **(lgbm_params or {})}
        )
        return dataclasses.replace(self, spec=spec, search=search)


@dataclass(frozen=True)
class GateSettings(FrozenSettings):
    """The promotion gate of a city: what is compared, on which split, by which rules.

    Attributes:
        model_name: The city's registered model.
        target: Column to predict.
        metric: The metric compared.
        split: The time split, the very one training used, so the holdout is the same rows.
        rules: The gate's rules.
        parent_model: The fallback parent that serves the city while it has no champion of its own.
        template: The city's template, whose other cities' champions are its siblings (``fleet_outlier``).
        not_cities: Model ids under the template that are no city (the global parent's ``global``).
        name_pattern: The template's ``registry.name_pattern``, by which the siblings' models are found.
        engine: ``dask`` scores the holdout on the cluster of ``dask`` (``training.engine``).
        dask: ``training.dask`` (None: its defaults).
    """

    nested: ClassVar[Mapping[str, Any]] = {"split": SplitSettings, "rules": GateRules, "dask": DaskSettings}

    model_name: str
    target: str
    metric: str
    split: SplitSettings
    rules: GateRules = field(default_factory=GateRules)
    parent_model: str | None = None
    template: str = ""
    not_cities: Sequence[str] = ()
    name_pattern: str = "{template}.{city}"
    engine: Literal["local", "dask"] = "local"
    dask: DaskSettings | None = None


@dataclass(frozen=True)
class HealthSettings(FrozenSettings):
    """The health check of a champion promoted in the run.

    Attributes:
        model_name: The city's registered model.
        split: The time split, as in training, so the holdout is the same rows.
        enabled: False skips the checks (the Asset event is still emitted).
        sample_rows: Holdout rows to predict.
        max_mean_shift: Allowed shift of the mean prediction, in reference standard deviations.
        max_quantile_shift: Allowed shift of the 10/50/90% quantiles, in reference standard deviations.
        engine: ``dask`` splits the snapshot on the cluster of ``dask`` and gathers only the sample
            (``training.engine``).
        dask: ``training.dask`` (None: its defaults).
    """

    nested: ClassVar[Mapping[str, Any]] = {"split": SplitSettings, "dask": DaskSettings}

    model_name: str
    split: SplitSettings
    enabled: bool = True
    sample_rows: int = 1000
    max_mean_shift: float = 1.0
    max_quantile_shift: float = 1.5
    engine: Literal["local", "dask"] = "local"
    dask: DaskSettings | None = None
