"""Pydantic models of a use-case template and of a city's merged configuration.

Every model forbids unknown keys, so a typo is an error that names the key instead of a setting that is
silently ignored. The models describe data, never code: YAML cannot name a Python class or callable.
"""

from __future__ import annotations

import difflib
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from airflow_ml.exceptions import ConfigError
from airflow_ml.templates.base import CITY_ID_PATTERN, DISPLAY_NAME_MAX_LENGTH, Name, Strict, check_display_name
from airflow_ml.templates.base import slugify as slugify  # where the CLI imports it from
from airflow_ml.templates.dag_spec import DagSpec
from airflow_ml.templates.dag_spec import NotifierSpec as NotifierSpec  # where the factory imports it from
from airflow_ml.templates.drift_spec import DRIFT_REVIEW_DAG_SUFFIX, DriftSpec, HealthSpec
from airflow_ml.templates.fallback_spec import GLOBAL_PARENT, GROUP_PARENT_PREFIX, FallbackSpec
from airflow_ml.templates.filter_spec import RowFilterSpec
from airflow_ml.templates.gate_spec import GateSpec
from airflow_ml.templates.gx_context_spec import GxContextSpec
from airflow_ml.templates.monitoring_spec import MONITOR_DAG_SUFFIX, MonitoringSpec
from airflow_ml.templates.registry_spec import PARENT_GROUP_SEGMENT, RegistrySpec
from airflow_ml.templates.retention_spec import RetentionSpec
from airflow_ml.templates.scoring_spec import ScoringSpec
from airflow_ml.templates.source_pattern import check_location_pattern
from airflow_ml.templates.training_spec import TrainingSpec

#: Metrics each task may use; their direction (lower or higher is better) belongs to ``airflow_ml.ml.metrics``.
METRICS_BY_TASK: dict[str, frozenset[str]] = {
    "regression": frozenset({"rmse", "mae", "mape", "r2"}),
    "binary": frozenset({"auc", "logloss"}),
}


class DatasetSpec(Strict):
    """Where a city's data lives and which columns the model uses."""

    source: str = Field(
        description="URI pattern of the city's partitioned data; {data_root} and {city} are filled in at run time.",
        examples=["{data_root}/raw/trips/{city}"],
    )
    format: Literal["parquet", "csv"] = Field(
        default="parquet",
        description="File format of the partitions date=YYYY-MM-DD/*.parquet or *.csv; snapshots are parquet.",
    )
    conn_id: str = Field(
        default="aws_default",
        min_length=1,
        description="Airflow connection (type aws) for an s3:// source or data root; unused for local paths.",
    )
    target: str = Field(min_length=1, description="Column to predict.")
    time_column: str = Field(
        min_length=1, description="Timestamp column; the split into train/validation/holdout follows it."
    )
    features: list[str] = Field(min_length=1, description="Feature columns, in model order.")
    categorical_features: list[str] = Field(
        default_factory=list, description="Subset of features treated as categories."
    )
    window_days: int | None = Field(
        default=None, ge=1, le=3660, description="Use only the latest N days of partitions, 1 to 3660 (all when unset)."
    )
    extra_columns: list[str] = Field(
        default_factory=list,
        description="Columns the data has beyond features, target and time column (ids, say) that suites may check.",
    )
    filters: list[RowFilterSpec] = Field(
        default_factory=list,
        max_length=20,
        description="Row filters applied at snapshot time, in order, e.g. [{column: duration_min, op: not_null}]; "
        "the manifest and the run's summary count the rows each dropped.",
    )

    @property
    def known_columns(self) -> set[str]:
        """Every column a suite may name."""
        return {*self.features, self.target, self.time_column, *self.extra_columns}

    @property
    def target_nulls_filtered(self) -> bool:
        """Whether a row filter drops the rows whose target is null (every op but ``is_null`` does)."""
        return any(f.column == self.target and f.op != "is_null" for f in self.filters)

    @model_validator(mode="after")
    def _columns_agree(self) -> DatasetSpec:
        duplicated = sorted({c for c in self.features if self.features.count(c) > 1})
        if duplicated:
            raise ValueError(f"features lists {duplicated!r} more than once; keep each column once")
        unknown = [c for c in self.categorical_features if c not in self.features]
        if unknown:
            raise ValueError(
                f"categorical_features {unknown!r} are not in features; add them to features or remove them"
            )
        if self.target in self.features:
            raise ValueError(f"the target {self.target!r} is also a feature; remove it from features (it would leak)")
        if self.time_column in self.features:
            raise ValueError(
                f"the time column {self.time_column!r} cannot be a feature; derive features such as the hour instead"
            )
        known = self.known_columns
        for index, row_filter in enumerate(self.filters):
            if row_filter.column not in known:
                close = difflib.get_close_matches(row_filter.column, sorted(known), n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"use one of {sorted(known)}"
                raise ValueError(
                    f"filters[{index}].column {row_filter.column!r} is not a column the dataset names; {hint} "
                    "(or add it to extra_columns)"
                )
        check_location_pattern(self.source, field="source", placeholders=("data_root", "city"), required="city")
        return self


class SplitSpec(Strict):
    """Time-based split: the oldest rows train, newer rows validate, the newest rows are the holdout."""

    validation_fraction: float = Field(default=0.15, gt=0, lt=0.5, description="Above 0, below 0.5.")
    holdout_fraction: float = Field(default=0.15, gt=0, lt=0.5, description="Above 0, below 0.5.")
    min_holdout_rows: int = Field(
        default=100, ge=1, le=100_000_000, description="Refuse to decide on a smaller holdout; 1 to 100,000,000."
    )


class MetricSpec(Strict):
    """The metric the gate compares; whether lower or higher is better follows from its name."""

    name: Literal["rmse", "mae", "mape", "r2", "auc", "logloss"]


class UseCase(Strict):
    """What a template defines: a dataset, its task and how to train and promote its models."""

    description: str = ""
    suite: Name | None = Field(
        default=None,
        description="Expectation suite expectations/<suite>.yaml or .json that validates the data; a city may add "
        "expectations/<suite>.<city>.yaml. Needed unless gx_context names the checks.",
    )
    expectations: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Expectations added to the suite, or overriding those of the same type and column, in the "
        "suite's YAML form, e.g. '- expect_column_values_to_be_between: {column: distance_km, max_value: 80}'.",
    )
    gx_context: GxContextSpec | None = Field(
        default=None,
        description="An existing file-based GX Data Context: one of its checkpoints or suites validates the "
        "snapshot too (besides suite, or instead of it).",
    )
    task: Literal["regression", "binary"]
    dataset: DatasetSpec
    metric: MetricSpec
    split: SplitSpec = Field(default_factory=SplitSpec)
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    gate: GateSpec = Field(default_factory=GateSpec)
    dag: DagSpec = Field(default_factory=DagSpec)
    drift: DriftSpec = Field(default_factory=DriftSpec)
    health: HealthSpec = Field(default_factory=HealthSpec)
    fallback: FallbackSpec = Field(default_factory=FallbackSpec)
    retention: RetentionSpec = Field(default_factory=RetentionSpec)
    registry: RegistrySpec = Field(
        default_factory=RegistrySpec, description="How the models are named in the MLflow registry."
    )
    scoring: ScoringSpec | None = Field(
        default=None, description="Batch scoring with the champion; without it the city gets no scoring DAG."
    )
    monitoring: MonitoringSpec | None = Field(
        default=None,
        description="Live error of the champion once labels arrive, and the supervisor; needs scoring. Without "
        "it the city is not in its template's monitor DAG.",
    )

    @field_validator("expectations")
    @classmethod
    def _expectations_are_well_formed(cls, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from airflow_ml.templates.suite_files import parse_expectations

        try:
            parse_expectations(items, "expectations", {})
        except ConfigError as exc:
            raise ValueError("; ".join(exc.problems)) from None
        return items

    @field_validator("gate")
    @classmethod
    def _gate_fits_dataset(cls, gate: GateSpec, info: ValidationInfo) -> GateSpec:
        dataset, metric = info.data.get("dataset"), info.data.get("metric")
        if dataset is None or metric is None:  # already reported
            return gate
        problems = gate.problems(metric=metric.name, dataset=dataset)
        if problems:
            raise ValueError("; ".join(problems))
        return gate

    @field_validator("drift")
    @classmethod
    def _drift_fits_dataset(cls, drift: DriftSpec, info: ValidationInfo) -> DriftSpec:
        dataset, task = info.data.get("dataset"), info.data.get("task")
        if dataset is None or task is None:  # already reported
            return drift
        problems = drift.problems(
            features=dataset.features, categorical=dataset.categorical_features, target=dataset.target, task=task
        )
        if problems:
            raise ValueError("; ".join(problems))
        return drift

    @field_validator("scoring")
    @classmethod
    def _scoring_fits_dataset(cls, scoring: ScoringSpec | None, info: ValidationInfo) -> ScoringSpec | None:
        dataset = info.data.get("dataset")
        if scoring is None or dataset is None:  # none, or already reported
            return scoring
        problems = scoring.columns_problems(features=dataset.features, known=dataset.known_columns)
        if problems:
            raise ValueError("; ".join(problems))
        return scoring

    @field_validator("monitoring")
    @classmethod
    def _monitoring_fits_scoring(cls, monitoring: MonitoringSpec | None, info: ValidationInfo) -> MonitoringSpec | None:
        if monitoring is None or "scoring" not in info.data:  # none, or scoring already reported
            return monitoring
        scoring = info.data["scoring"]
        problems = monitoring.problems(key_columns=None if scoring is None else list(scoring.key_columns))
        if problems:
            raise ValueError("; ".join(problems))
        return monitoring

    @model_validator(mode="after")
    def _data_has_checks(self) -> UseCase:
        if self.suite is None and self.gx_context is None:
            raise ValueError(
                "nothing validates the data: name the project's suite ('suite: <name>' for "
                "expectations/<name>.yaml or .json) or a GX context ('gx_context: {path: gx, checkpoint: <name>}')"
            )
        if self.suite is None and self.expectations:
            raise ValueError(
                "expectations: add to or override the project's suite, and none is named; set 'suite: <name>', "
                "or put these expectations in the GX context's suite"
            )
        return self

    @model_validator(mode="after")
    def _metric_fits_task(self) -> UseCase:
        allowed = METRICS_BY_TASK[self.task]
        if self.metric.name not in allowed:
            raise ValueError(
                f"metric {self.metric.name!r} does not fit task {self.task!r}; use one of {sorted(allowed)}"
            )
        return self

    @model_validator(mode="after")
    def _class_weight_fits_task(self) -> UseCase:
        if self.training.class_weight != "none" and self.task != "binary":
            raise ValueError(
                f"training.class_weight {self.training.class_weight!r} applies to task 'binary' only, not "
                f"{self.task!r}; remove it or set it to 'none'"
            )
        return self


class TemplateConfig(UseCase):
    """A template file in ``dag_templates/templates/``."""

    template: Name


class CityConfig(UseCase):
    """One city's configuration: its template merged with the city's overrides."""

    city: str = Field(pattern=CITY_ID_PATTERN, description="Stable id: lower-case letters, digits, underscores.")
    template: Name
    group: Name | None = Field(default=None, description="A country or client whose groups/<group>.yaml applies.")
    display_name: str = Field(
        default="",
        max_length=DISPLAY_NAME_MAX_LENGTH,
        description="The city's readable name (e.g. São Paulo), shown by the DAG list and the fleet view.",
    )

    @field_validator("display_name")
    @classmethod
    def _one_readable_line(cls, value: str) -> str:
        check_display_name(value)
        return value

    @model_validator(mode="after")
    def _fallback_has_a_parent(self) -> CityConfig:
        if self.city == GLOBAL_PARENT:
            raise ValueError(
                f"city id {GLOBAL_PARENT!r} is reserved for the template's global fallback model "
                f"('{self.template}.{GLOBAL_PARENT}'); give the city another id"
            )
        for reserved, dag in ((MONITOR_DAG_SUFFIX, "monitor DAG"), (DRIFT_REVIEW_DAG_SUFFIX, "drift review DAG")):
            if self.city == reserved:
                raise ValueError(
                    f"city id {reserved!r} is reserved for the template's {dag} ('{self.template}.{reserved}'); "
                    "give the city another id"
                )
        if self.registry.custom and self.city.startswith(PARENT_GROUP_SEGMENT):
            raise ValueError(
                f"city id {self.city!r} starts with {PARENT_GROUP_SEGMENT!r}, which registry.name_pattern "
                f"{self.registry.name_pattern!r} gives the group parents' models; give the city another id"
            )
        self.registry.check_shape(f"city {self.city!r} of template {self.template!r}", self.model_name)
        if self.fallback.parent == "group" and self.group is None:
            raise ValueError(
                "fallback.parent 'group' needs the city to belong to a group: add 'group: <country or client>' "
                "to the city file, or set fallback.parent to 'global' or 'none'"
            )
        self.registry.check_name_lengths(
            {f"city {self.city!r}": self.model_name, "its fallback parent": self.parent_model_name}
        )
        return self

    @property
    def dag_id(self) -> str:
        """The Airflow DAG id, deterministic and safe: ``<template>.<city>``."""
        return f"{self.template}.{self.city}"

    @property
    def model_name(self) -> str:
        """The MLflow registered model of this city: ``<template>.<city>``, or by ``registry.name_pattern``."""
        return self.registry.model_name(self.template, self.city)

    @property
    def members(self) -> list[str]:
        """The cities whose data the model trains on: this city alone."""
        return [self.city]

    @property
    def parent_model_name(self) -> str | None:
        """The registered model that serves this city while it has too little data, or None without fallback."""
        if self.fallback.parent == "none":
            return None
        if self.fallback.parent == "group":
            return self.registry.model_name(self.template, f"{GROUP_PARENT_PREFIX}{self.group}")
        return self.registry.model_name(self.template, GLOBAL_PARENT)

    def source_uri(self, data_root: str) -> str:
        """The city's data location: the template's source pattern with the data root and the city filled in."""
        uri = self.dataset.source.format(data_root=data_root.rstrip("/"), city=self.city)
        return uri if "://" in uri else f"file://{uri}"

    @property
    def title(self) -> str:
        """A human-readable name for docs and tables."""
        return self.display_name or self.city


class ParentConfig(UseCase):
    """A fallback parent: one model trained on the union of several cities' data (a group's, or all of a template's).

    Built from the template (and, for a group, the group file); its DAG and registered model are
    ``<template>.global`` or ``<template>.group.<group>``, ids no city can take.
    """

    template: Name
    scope: Literal["group", "global"]
    group: Name | None = None
    members: list[str] = Field(min_length=1, description="The cities whose data the parent trains on.")

    @model_validator(mode="after")
    def _name_reads_as_its_own(self) -> ParentConfig:
        self.registry.check_shape(f"the fallback parent {self.dag_id!r}", self.model_name)
        return self

    @property
    def city(self) -> str:
        """The parent's id where a city id goes (snapshot folders, lineage tags): ``global`` or ``group.<group>``."""
        return GLOBAL_PARENT if self.scope == "global" else f"{GROUP_PARENT_PREFIX}{self.group}"

    @property
    def dag_id(self) -> str:
        """``<template>.global`` or ``<template>.group.<group>``."""
        return f"{self.template}.{self.city}"

    @property
    def model_name(self) -> str:
        """The parent's registered model: named as its DAG, or by the template's ``registry.name_pattern``."""
        return self.registry.model_name(self.template, self.city)

    @property
    def parent_model_name(self) -> None:
        """A parent has no parent of its own."""
        return None

    @property
    def title(self) -> str:
        """A human-readable name for docs and tables."""
        where = "all cities" if self.scope == "global" else f"group {self.group}"
        return f"{where} ({len(self.members)} cities)"


#: What a retraining DAG is built from: a city, or a fallback parent that unites several cities.
ModelConfig = CityConfig | ParentConfig
