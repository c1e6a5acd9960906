"""Pydantic models of a use-case template and of a city's merged configuration.

Every model forbids unknown keys, so a typo is an error that names the key instead of a setting that is
silently ignored. The models describe data, never code: YAML cannot name a Python class or callable.
"""

from __future__ import annotations

import difflib
import functools
import re
import string
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from airflow_ml.exceptions import ConfigError

CITY_ID_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]

#: Metrics each task may use; their direction (lower or higher is better) belongs to ``airflow_ml.ml.metrics``.
METRICS_BY_TASK: dict[str, frozenset[str]] = {
    "regression": frozenset({"rmse", "mae", "mape", "r2"}),
    "binary": frozenset({"auc", "logloss"}),
}


class Strict(BaseModel):
    """Base of every config model: unknown keys are errors and objects are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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
        default=None, ge=1, le=3660, description="Use only the latest N days of partitions (all when unset)."
    )
    extra_columns: list[str] = Field(
        default_factory=list,
        description="Columns the data has beyond features, target and time column (ids, say) that suites may check.",
    )

    @property
    def known_columns(self) -> set[str]:
        """Every column a suite may name."""
        return {*self.features, self.target, self.time_column, *self.extra_columns}

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
        fields = {name for _, name, _, _ in string.Formatter().parse(self.source) if name is not None}
        if "city" not in fields:
            raise ValueError(f"source {self.source!r} must contain '{{city}}' so that each city reads its own data")
        if fields - {"city", "data_root"}:
            unknown = sorted(fields - {"city", "data_root"})
            raise ValueError(
                f"source {self.source!r} has unknown placeholder(s) {unknown}; use {{data_root}} and {{city}}"
            )
        return self


class SplitSpec(Strict):
    """Time-based split: the oldest rows train, newer rows validate, the newest rows are the holdout."""

    validation_fraction: float = Field(default=0.15, gt=0, lt=0.5)
    holdout_fraction: float = Field(default=0.15, gt=0, lt=0.5)
    min_holdout_rows: int = Field(default=100, ge=1, description="Refuse to decide on a smaller holdout.")


class MetricSpec(Strict):
    """The metric the gate compares; whether lower or higher is better follows from its name."""

    name: Literal["rmse", "mae", "mape", "r2", "auc", "logloss"]


class LightGBMParams(Strict):
    """The LightGBM parameters a template may set, each within LightGBM's valid range."""

    learning_rate: float = Field(default=0.05, gt=0, le=1)
    num_leaves: int = Field(default=31, ge=2, le=131072)
    max_depth: int = Field(default=-1, ge=-1)
    min_data_in_leaf: int = Field(default=20, ge=1)
    feature_fraction: float = Field(default=1.0, gt=0, le=1)
    bagging_fraction: float = Field(default=1.0, gt=0, le=1)
    bagging_freq: int = Field(default=0, ge=0)
    lambda_l1: float = Field(default=0.0, ge=0)
    lambda_l2: float = Field(default=0.0, ge=0)
    min_gain_to_split: float = Field(default=0.0, ge=0)
    max_bin: int = Field(default=255, ge=2, le=65535)
    cat_smooth: float = Field(default=10.0, ge=0)


#: A search range: ``[low, high]`` or ``[low, high, log]`` (sampled on a log scale).
SearchRange = Annotated[list[int | float | str], Field(min_length=2, max_length=3)]
#: What a search covers when the template names no ranges (or only the trigger form asks for trials).
DEFAULT_SEARCH_RANGES: dict[str, list[int | float | str]] = {
    "learning_rate": [0.01, 0.3, "log"],
    "num_leaves": [8, 256],
}


class SearchSpec(Strict):
    """Optional Optuna search of LightGBM parameters, bounded by trials and time.

    Each range is ``[low, high]`` or ``[low, high, log]``; integer parameters sample integers. The
    bounds must lie in the parameter's valid range (see :class:`LightGBMParams`).
    """

    trials: int = Field(default=20, ge=0, le=1000, description="0 turns the search off.")
    timeout_minutes: float = Field(default=10, gt=0, le=24 * 60, description="Stops starting new trials after this.")
    params: dict[str, SearchRange] = Field(
        default_factory=lambda: dict(DEFAULT_SEARCH_RANGES),
        description="LightGBM parameter -> [low, high] or [low, high, log].",
    )

    @field_validator("params")
    @classmethod
    def _ranges_are_valid(cls, ranges: dict[str, list[int | float | str]]) -> dict[str, list[int | float | str]]:
        problems = [problem for name, bounds in ranges.items() if (problem := _range_problem(name, bounds))]
        if problems:
            raise ValueError("; ".join(problems))
        if not ranges:
            raise ValueError("params is empty; name at least one LightGBM parameter to search, e.g. num_leaves")
        return ranges


def _range_problem(name: str, bounds: list[int | float | str]) -> str | None:
    """What is wrong with one search range, or None."""
    fields = LightGBMParams.model_fields
    if name not in fields:
        return f"{name!r} is not a LightGBM parameter a template may set; use one of {sorted(fields)}"
    low, high, *scale = bounds
    if scale and scale != ["log"]:
        return f"{name}: the third item may only be 'log', got {scale[0]!r}"
    if isinstance(low, str) or isinstance(high, str):
        return f"{name}: bounds must be numbers, got {[low, high]!r}"
    is_int = fields[name].annotation is int
    if is_int and (low != int(low) or high != int(high)):
        return f"{name} is an integer parameter; use integer bounds, got {[low, high]!r}"
    if not low < high:
        return f"{name}: low {low!r} must be below high {high!r}"
    if scale and low <= 0:
        return f"{name}: a log range needs a positive low bound, got {low!r}"
    for bound in (low, high):
        try:
            LightGBMParams.model_validate({name: int(bound) if is_int else bound})
        except ValueError as exc:
            reason = exc.errors()[0]["msg"] if hasattr(exc, "errors") else str(exc)
            return f"{name}: bound {bound!r} is outside the parameter's valid range ({reason})"
    return None


class TrainingSpec(Strict):
    """How the model is trained."""

    num_boost_round: int = Field(default=500, ge=1, le=100_000)
    early_stopping_rounds: int | None = Field(default=50, ge=1)
    seed: int = Field(default=42, ge=0)
    num_threads: int = Field(default=0, ge=0, description="0 lets LightGBM use every core.")
    params: LightGBMParams = Field(default_factory=LightGBMParams)
    class_weight: Literal["none", "balanced"] = Field(
        default="none",
        description="Task binary only. balanced: LightGBM scale_pos_weight = negatives / positives of the "
        "training rows.",
    )
    search: SearchSpec | None = Field(default=None, description="Optuna search of the LightGBM parameters.")
    warm_start: bool = Field(
        default=False,
        description="Also train from the champion's booster and keep whichever wins on the validation split.",
    )


class QualityBound(Strict):
    """An absolute bound on the challenger's own holdout score; set the one key of the template's metric.

    A metric where lower is better takes a maximum (``max_rmse: 12``: refuse any challenger whose holdout
    RMSE is above 12), one where higher is better a minimum (``min_auc: 0.7``).
    """

    max_rmse: float | None = Field(default=None, gt=0)
    max_mae: float | None = Field(default=None, gt=0)
    max_mape: float | None = Field(default=None, gt=0)
    min_r2: float | None = Field(default=None, le=1)
    min_auc: float | None = Field(default=None, ge=0, le=1)
    max_logloss: float | None = Field(default=None, gt=0)

    def bound(self) -> dict[str, float]:
        """The keys that are set, e.g. ``{"max_rmse": 12.0}``."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class BootstrapSpec(Strict):
    """A paired bootstrap over the holdout rows, so that a small city does not promote on noise."""

    resamples: int = Field(default=1000, ge=100, le=100_000, description="Resamples of the holdout rows.")
    confidence: float = Field(default=0.95, ge=0.5, lt=1, description="Level of the percentile interval.")
    seed: int = Field(default=0, ge=0, description="Same data, same seed: same interval.")


class SliceSpec(Strict):
    """A slicing of the holdout: one slice per value of ``column``, or per interval of ``bins``."""

    column: str = Field(min_length=1, description="A feature or an extra column of the dataset.")
    bins: list[Annotated[float, Field(allow_inf_nan=False)]] | None = Field(
        default=None,
        min_length=2,
        description="Increasing edges of numeric intervals, e.g. [0, 6, 10, 16, 20, 24] for hour bands; "
        "[a, b) each, the last one closed.",
    )

    @field_validator("bins")
    @classmethod
    def _increasing(cls, bins: list[float] | None) -> list[float] | None:
        if bins is not None and any(bins[i + 1] <= bins[i] for i in range(len(bins) - 1)):
            raise ValueError("bins must be strictly increasing edges, e.g. [0, 6, 10, 16, 20, 24]")
        return bins


class GateSpec(Strict):
    """When a challenger may replace the champion.

    Both models are scored on the same holdout; the challenger must meet ``min_quality``, beat the
    champion by ``min_improvement``, with a bootstrap interval of the improvement that excludes zero, and
    be no more than ``max_slice_regression`` worse on any judged slice.
    """

    min_improvement: float = Field(default=0.0, ge=0, description="Required gain over the champion's holdout score.")
    improvement_mode: Literal["relative", "absolute"] = "relative"
    approval_timeout_hours: float = Field(
        default=24,
        gt=0,
        le=24 * 30,
        description="In promotion mode require_approval: hours to wait for a person before rejecting.",
    )
    min_quality: QualityBound | None = Field(
        default=None, description="Absolute bound on the challenger's holdout score, e.g. {max_rmse: 12}; null: none."
    )
    bootstrap: BootstrapSpec | None = Field(
        default=None,
        description="Promote only when the interval of the improvement excludes zero, e.g. {resamples: 1000, "
        "confidence: 0.95, seed: 0}; null: off.",
    )
    slices: list[SliceSpec] = Field(
        default_factory=list,
        description="Slicings of the holdout, e.g. [{column: pickup_zone}, {column: pickup_hour, bins: [0, 6, 24]}].",
    )
    max_slice_regression: float | None = Field(
        default=None,
        ge=0,
        description="How much worse than the champion (relative) any judged slice may be: 0.05 = 5%; null: "
        "slices are reported, not judged.",
    )
    min_slice_rows: int = Field(default=100, ge=1, description="Smaller slices are reported but not judged.")

    @model_validator(mode="after")
    def _relative_is_a_fraction(self) -> GateSpec:
        if self.improvement_mode == "relative" and self.min_improvement >= 1:
            raise ValueError(
                f"min_improvement {self.min_improvement!r} is a relative gain and must be below 1 (0.02 means 2%)"
            )
        return self

    @field_validator("slices")
    @classmethod
    def _one_slicing_per_column(cls, slices: list[SliceSpec]) -> list[SliceSpec]:
        columns = [s.column for s in slices]
        twice = sorted({c for c in columns if columns.count(c) > 1})
        if twice:
            raise ValueError(f"slices name {twice!r} more than once; keep one slicing per column")
        return slices

    def problems(self, *, metric: str, dataset: DatasetSpec) -> list[str]:
        """What does not fit the template's metric and dataset: the quality bound's key, slice columns and bins."""
        problems = []
        bound = self.min_quality.bound() if self.min_quality is not None else {}
        expected = next(name for name in QualityBound.model_fields if name.endswith(f"_{metric}"))
        wrong = sorted(set(bound) - {expected})
        if wrong:
            problems.append(
                f"min_quality.{wrong[0]}: the metric is {metric!r}, so the bound is {expected}; "
                f"write min_quality: {{{expected}: <bound>}}"
                + (" and set the other key(s) to null" if len(bound) > 1 else "")
            )
        columns = [*dataset.features, *dataset.extra_columns]
        for index, spec in enumerate(self.slices):
            where = f"slices[{index}]"
            if spec.column not in columns:
                why = {dataset.target: "is the target", dataset.time_column: "is the time column"}.get(spec.column)
                if why:
                    hint = "slice by a feature instead (e.g. an hour band of pickup_hour)"
                    problems.append(f"{where}.column: {spec.column!r} {why}; {hint}")
                    continue
                close = difflib.get_close_matches(spec.column, columns, n=1, cutoff=0.6)
                hint = f"did you mean {close[0]!r}?" if close else f"use one of {columns}"
                problems.append(
                    f"{where}.column: {spec.column!r} is neither a feature nor an extra column; {hint} "
                    "(or set gate.slices in this file to slice by other columns)"
                )
            elif spec.bins is not None and spec.column in dataset.categorical_features:
                problems.append(f"{where}.bins: {spec.column!r} is categorical, so each value is a slice; remove bins")
        return problems


class DriftThreshold(Strict):
    """Limits of one drift statistic: above ``warn`` the run warns, above ``error`` it stops before training.

    Either may be null: that level is not checked.
    """

    warn: float | None = Field(default=None, ge=0, description="Above this, the run goes on with a warning.")
    error: float | None = Field(default=None, ge=0, description="Above this, the run stops before training.")

    @model_validator(mode="after")
    def _warn_not_above_error(self) -> DriftThreshold:
        if self.warn is not None and self.error is not None and self.warn > self.error:
            raise ValueError(
                f"warn {self.warn!r} is above error {self.error!r}; lower warn, raise error, or set one to null"
            )
        return self


class DriftFraction(DriftThreshold):
    """Limits of a drift statistic that lies in [0, 1] (Jensen-Shannon distance, change of missing rate)."""

    warn: float | None = Field(default=None, ge=0, le=1, description="Above this, the run goes on with a warning.")
    error: float | None = Field(default=None, ge=0, le=1, description="Above this, the run stops before training.")


class ColumnDrift(Strict):
    """One column's own drift limits; unset keys inherit the general ones, ``null`` turns a check off."""

    psi: DriftThreshold | None = None
    js_distance: DriftFraction | None = None
    missing_rate_change: DriftFraction | None = None


#: Defaults of the general drift limits; a partial mapping (``psi: {error: 0.5}``) keeps the other default.
DRIFT_DEFAULTS: dict[str, dict[str, float]] = {
    "psi": {"warn": 0.1, "error": 0.25},
    "js_distance": {"warn": 0.1, "error": 0.2},
    "missing_rate_change": {"warn": 0.05, "error": 0.2},
    "label_psi": {"warn": 0.1, "error": 0.25},
    "label_js_distance": {"warn": 0.1, "error": 0.2},
}


class DriftSpec(Strict):
    """The drift check: this run's snapshot against the champion's training snapshot, before training.

    Numeric features are compared with the population stability index (PSI, on the reference's quantile
    bins), categorical features with the Jensen-Shannon distance (base 2, in [0, 1]), every column with
    the change of its missing rate, and the target with PSI (regression) or the JS distance (binary).
    """

    enabled: bool = Field(default=True, description="false skips the check (the task still runs, and says so).")
    psi_bins: int = Field(default=10, ge=2, le=100, description="PSI bins: quantiles of the champion's data.")
    psi: DriftThreshold = Field(default=DriftThreshold(**DRIFT_DEFAULTS["psi"]), description="PSI of numeric features.")
    js_distance: DriftFraction = Field(
        default=DriftFraction(**DRIFT_DEFAULTS["js_distance"]), description="JS distance of categorical features."
    )
    missing_rate_change: DriftFraction = Field(
        default=DriftFraction(**DRIFT_DEFAULTS["missing_rate_change"]),
        description="Absolute change of a column's share of missing values (features and target).",
    )
    label_psi: DriftThreshold = Field(
        default=DriftThreshold(**DRIFT_DEFAULTS["label_psi"]), description="PSI of a regression target."
    )
    label_js_distance: DriftFraction = Field(
        default=DriftFraction(**DRIFT_DEFAULTS["label_js_distance"]), description="JS distance of a binary target."
    )
    features: dict[str, ColumnDrift] = Field(
        default_factory=dict,
        description="Per-column limits (a feature or the target), e.g. {distance_km: {psi: {error: 0.5}}}.",
    )

    @field_validator("psi", "js_distance", "missing_rate_change", "label_psi", "label_js_distance", mode="before")
    @classmethod
    def _keep_unset_defaults(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:  # the whole statistic off
            return {"warn": None, "error": None}
        if isinstance(value, dict):
            return {**DRIFT_DEFAULTS[str(info.field_name)], **value}
        return value

    def thresholds(self) -> dict[str, Any]:
        """The limits as plain dicts for ``airflow_ml.ml.drift.compare``: per-column entries hold only what they set."""
        data = self.model_dump(include=set(DRIFT_DEFAULTS))
        data["features"] = {column: _set_limits(limits) for column, limits in self.features.items()}
        return data

    def problems(self, *, features: list[str], categorical: list[str], target: str, task: str) -> list[str]:
        """What in ``features:`` does not fit the dataset: unknown columns, statistics never computed, limits."""
        problems = []
        columns = [*features, target]
        for column, own in self.features.items():
            if column not in columns:
                close = difflib.get_close_matches(column, columns, n=1, cutoff=0.6)
                hint = f"did you mean {close[0]!r}?" if close else f"use one of {columns}"
                problems.append(f"features.{column}: {column!r} is neither a feature nor the target; {hint}")
                continue
            binary_label = column == target and task == "binary"
            statistic = "js_distance" if column in categorical or binary_label else "psi"
            other = "psi" if statistic == "js_distance" else "js_distance"
            if other in own.model_fields_set and getattr(own, other) is not None:
                problems.append(
                    f"features.{column}.{other}: the drift of {column!r} is measured with {statistic}, not {other}; "
                    f"rename the key to {statistic}"
                )
            for name, limits in _set_limits(own).items():
                if name == other:
                    continue
                general = f"label_{name}" if column == target and name != "missing_rate_change" else name
                merged = {**self.model_dump()[general], **limits}
                if merged["warn"] is not None and merged["error"] is not None and merged["warn"] > merged["error"]:
                    problems.append(
                        f"features.{column}.{name}: warn {merged['warn']!r} is above error {merged['error']!r} "
                        f"(unset keys come from drift.{general}); lower warn, raise error, or set one to null"
                    )
        return problems


def _set_limits(column: ColumnDrift) -> dict[str, dict[str, float | None]]:
    """The limits a column sets itself; a statistic set to null is off for that column."""
    limits: dict[str, dict[str, float | None]] = {}
    for name in sorted(column.model_fields_set):
        value = getattr(column, name)
        limits[name] = {"warn": None, "error": None} if value is None else value.model_dump(exclude_unset=True)
    return limits


class HealthSpec(Strict):
    """The health check after a promotion: the new champion, loaded by its alias, predicts sanely or is rolled back.

    Its predictions on a sample of the run's holdout are compared with the holdout predictions logged when it
    was trained; shifts are measured in standard deviations of those reference predictions.
    """

    enabled: bool = Field(default=True, description="Run the health check after every promotion.")
    sample_rows: int = Field(default=1000, ge=10, le=1_000_000, description="Holdout rows the check predicts.")
    max_mean_shift: float = Field(
        default=1.0, ge=0, description="Largest allowed shift of the mean prediction, in reference std devs."
    )
    max_quantile_shift: float = Field(
        default=1.5,
        ge=0,
        description="Largest allowed shift of the 10%, 50% and 90% prediction quantiles, in reference std devs.",
    )


class NotifierSpec(Strict):
    """A failure notification, from a closed list of kinds (YAML never names a Python class)."""

    kind: Literal["smtp"] = Field(description="smtp: an e-mail through an Airflow 'smtp' connection.")
    to: list[str] = Field(min_length=1, description="Recipients.")
    conn_id: str = Field(default="smtp_default", min_length=1)


class DagSpec(Strict):
    """How the city's DAG runs in Airflow."""

    schedule: str | list[str] | None = Field(
        default="@daily",
        description="A cron expression, a preset such as '@daily', a list of cron expressions (runs at each), or null.",
    )
    on_new_data: bool = Field(
        default=False,
        description="Also run when the city's data Asset is updated (data-aware scheduling); with a null "
        "schedule, run only then.",
    )
    owner: str = Field(default="airflow-ml", min_length=1)
    retries: int = Field(default=1, ge=0, le=20)
    retry_delay_minutes: float = Field(default=5.0, ge=0, le=24 * 60)
    task_timeout_minutes: float | None = Field(default=None, gt=0, le=7 * 24 * 60, description="Per task.")
    run_timeout_minutes: float | None = Field(default=None, gt=0, le=7 * 24 * 60, description="Per DAG run.")
    on_failure: list[NotifierSpec] = Field(default_factory=list, description="Who hears of a failed task.")
    tags: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(default_factory=list)

    @field_validator("schedule")
    @classmethod
    def _valid_schedule(cls, value: str | list[str] | None) -> str | list[str] | None:
        if value is None:
            return None
        if isinstance(value, list):
            if not value or any(v.startswith("@") for v in value):
                raise ValueError(
                    "a list schedule holds one or more cron expressions, e.g. ['0 2 * * 1-5', '0 6 * * 6,0']"
                )
            return [cls._cron(v) for v in value]
        presets = {"@once", "@continuous", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly"}
        if value.startswith("@"):
            if value not in presets:
                raise ValueError(
                    f"unknown schedule preset {value!r}; use one of {sorted(presets)} or a cron expression"
                )
            return value
        return cls._cron(value)

    @staticmethod
    def _cron(value: str) -> str:
        if not _valid_cron(value):
            raise ValueError(f"{value!r} is not a valid cron expression (five fields, e.g. '0 2 * * *')")
        return value


@functools.lru_cache(maxsize=1024)
def _valid_cron(expression: str) -> bool:
    # A fleet shares a few schedules: parse each expression once per process, not once per city.
    from croniter import croniter  # small, pure Python; imported here to keep module import light

    return bool(croniter.is_valid(expression))


class UseCase(Strict):
    """What a template defines: a dataset, its task and how to train and promote its models."""

    description: str = ""
    suite: Name = Field(
        description="Expectation suite expectations/<suite>.yaml or .json that validates the data; a city may add "
        "expectations/<suite>.<city>.yaml."
    )
    expectations: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Expectations added to the suite, or overriding those of the same type and column, in the "
        "suite's YAML form, e.g. '- expect_column_values_to_be_between: {column: distance_km, max_value: 80}'.",
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

    @field_validator("expectations")
    @classmethod
    def _expectations_are_well_formed(cls, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from airflow_ml.templates.suites import parse_expectations

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
    display_name: str = ""

    @property
    def dag_id(self) -> str:
        """The Airflow DAG id, deterministic and safe: ``<template>.<city>``."""
        return f"{self.template}.{self.city}"

    @property
    def model_name(self) -> str:
        """The MLflow registered model of this city: ``<template>.<city>``."""
        return f"{self.template}.{self.city}"

    def source_uri(self, data_root: str) -> str:
        """The city's data location: the template's source pattern with the data root and the city filled in."""
        uri = self.dataset.source.format(data_root=data_root.rstrip("/"), city=self.city)
        return uri if "://" in uri else f"file://{uri}"

    @property
    def title(self) -> str:
        """A human-readable name for docs and tables."""
        return self.display_name or self.city


def slugify(value: str) -> str:
    """Suggest a valid city id for a free-form name (``"São Paulo"`` becomes ``"sao_paulo"``)."""
    import unicodedata

    ascii_value = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "_", ascii_value.lower()).strip("_")
    if not slug or not slug[0].isalpha():
        slug = f"city_{slug}".rstrip("_")
    return slug[:63]
