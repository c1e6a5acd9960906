"""Drift limits per template, group or city, and the health check after a promotion."""

from __future__ import annotations

import difflib
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from airflow_ml.exceptions import show_value
from airflow_ml.templates.base import Strict

#: The last part of the id of a template's nightly drift review DAG, ``<template>.drift_review``: no city id.
DRIFT_REVIEW_DAG_SUFFIX = "drift_review"
#: How old a city's newest drift record may be and still count (``drift.calibration.max_age_days``): the one default.
DEFAULT_MAX_AGE_DAYS = 45


class DriftThreshold(Strict):
    """Limits of one drift statistic: above ``warn`` the run warns, above ``error`` it stops before training.

    Either may be null: that level is not checked.
    """

    warn: float | None = Field(
        default=None, ge=0, le=1000, description="Above this, the run goes on with a warning; 0 to 1000."
    )
    error: float | None = Field(
        default=None, ge=0, le=1000, description="Above this, the run stops before training; 0 to 1000."
    )

    @model_validator(mode="after")
    def _warn_not_above_error(self) -> DriftThreshold:
        if self.warn is not None and self.error is not None and self.warn > self.error:
            raise ValueError(
                f"warn {self.warn!r} is above error {self.error!r}; lower warn, raise error, or set one to null"
            )
        return self


class DriftFraction(DriftThreshold):
    """Limits of a drift statistic that lies in [0, 1] (Jensen-Shannon distance, change of missing rate)."""

    warn: float | None = Field(
        default=None, ge=0, le=1, description="Above this, the run goes on with a warning; 0 to 1."
    )
    error: float | None = Field(
        default=None, ge=0, le=1, description="Above this, the run stops before training; 0 to 1."
    )


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
    "prediction_psi": {"warn": 0.1, "error": 0.25},
}


class CalibrationSpec(Strict):
    """Drift judged against each city's own history, with false discoveries controlled across the template's fleet.

    Every run records the drift since the city's previous snapshot; with ``min_history`` past values a
    statistic's value becomes a p-value against the city's history, adjusted with Benjamini-Yekutieli over
    every city of the template at ``q``. A run stops on the label, or on ``min_flagged`` flagged features.
    """

    enabled: bool = Field(
        default=True, description="false: only the fixed thresholds judge drift, and no history is recorded."
    )
    q: float = Field(
        default=0.05,
        gt=0,
        lt=1,
        description="The false discovery rate over all (city, column, statistic) tests of the template; "
        "between 0 and 1 (exclusive).",
    )
    min_history: int = Field(
        default=20,
        ge=5,
        le=10_000,
        strict=True,
        description="Past values a column needs before it is judged against its history (before: the fixed "
        "thresholds); 5 to 10,000.",
    )
    min_flagged: int = Field(
        default=2,
        ge=1,
        le=10_000,
        strict=True,
        description="Features flagged after the fleet's adjustment that stop a run (the label stops it alone); "
        "1 to 10,000.",
    )
    seasonal: list[str] = Field(
        default_factory=list,
        max_length=1000,
        description="Columns compared with the same season of their history (when it holds min_history values), "
        "e.g. [month, temperature_c].",
    )
    season: Literal["month"] = Field(
        default="month", description="What a season is: month, the month of the year of the snapshot's last day."
    )
    max_age_days: int = Field(
        default=DEFAULT_MAX_AGE_DAYS,
        ge=1,
        le=3660,
        strict=True,
        description="A city whose newest drift record is older than this many days leaves the p-values adjusted "
        "together (a city that stopped running); 1 to 3,660. The review uses the largest of its cities' values, "
        "and every run then uses the review's.",
    )


class DriftSpec(Strict):
    """The drift check: this run's new rows against the champion's training snapshot, before training.

    Numeric features are compared with the population stability index (PSI, on the reference's quantile
    bins), categorical features with the Jensen-Shannon distance (base 2, in [0, 1]), every column with
    the change of its missing rate, and the target with PSI (regression) or the JS distance (binary).
    By default only the rows newer than the champion's training window are compared (``compare: new_rows``):
    windows that overlap would dilute a shift in what is new.
    """

    enabled: bool = Field(default=True, description="false skips the check (the task still runs, and says so).")
    compare: Literal["new_rows", "whole_snapshot"] = Field(
        default="new_rows",
        description="new_rows: the rows of this snapshot's partitions after the champion's training window "
        "(selected by the time column); whole_snapshot: every row of this snapshot.",
    )
    min_new_rows: int = Field(
        default=200,
        ge=1,
        le=10_000_000,
        strict=True,
        description="With fewer new rows than this, the whole snapshot is compared instead (and the record says so).",
    )
    min_new_days: int = Field(
        default=7,
        ge=1,
        le=366,
        strict=True,
        description="Compare at least the latest N partitions (days), so that one new day is not judged against "
        "a whole weekly cycle.",
    )
    psi_bins: int = Field(default=10, ge=2, le=100, description="PSI bins: quantiles of the champion's data; 2 to 100.")
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
    prediction_psi: DriftThreshold = Field(
        default=DriftThreshold(**DRIFT_DEFAULTS["prediction_psi"]),
        description="PSI of the champion's predictions: on its training data against the compared rows.",
    )
    features: dict[str, ColumnDrift] = Field(
        default_factory=dict,
        description="Per-column limits (a feature or the target), e.g. {distance_km: {psi: {error: 0.5}}}.",
    )
    calibration: CalibrationSpec = Field(
        default_factory=CalibrationSpec,
        description="Drift against each city's own history, false discoveries controlled across the fleet.",
    )

    @field_validator(
        "psi", "js_distance", "missing_rate_change", "label_psi", "label_js_distance", "prediction_psi", mode="before"
    )
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

    def comparison(self) -> dict[str, Any]:
        """What the drift step compares, as fields of ``airflow_ml.ml.steps.step_settings.DriftSettings``."""
        return {"compare": self.compare, "min_new_rows": self.min_new_rows, "min_new_days": self.min_new_days}

    def problems(self, *, features: list[str], categorical: list[str], target: str, task: str) -> list[str]:
        """What in ``features:`` does not fit the dataset: unknown columns, statistics never computed, limits."""
        problems: list[str] = []
        columns = [*features, target]
        problems.extend(
            _unknown("calibration.seasonal", column, columns)
            for column in self.calibration.seasonal
            if column not in columns
        )
        for column, own in self.features.items():
            if column not in columns:
                problems.append(_unknown(f"features.{show_value(column, quote=False)}", column, columns))
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


def _unknown(where: str, column: str, columns: list[str]) -> str:
    """A column that is neither a feature nor the target, with the closest name or the list to pick from."""
    close = difflib.get_close_matches(column[:200], columns, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else f"use one of {columns}"
    return f"{where}: {show_value(column)} is neither a feature nor the target; {hint}"


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
    sample_rows: int = Field(
        default=1000, ge=10, le=1_000_000, description="Holdout rows the check predicts; 10 to 1,000,000."
    )
    max_mean_shift: float = Field(
        default=1.0,
        ge=0,
        le=1000,
        description="Largest allowed shift of the mean prediction, in reference std devs; 0 to 1000.",
    )
    max_quantile_shift: float = Field(
        default=1.5,
        ge=0,
        le=1000,
        description="Largest allowed shift of the 10%, 50% and 90% prediction quantiles, in reference std devs; "
        "0 to 1000.",
    )
