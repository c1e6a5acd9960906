"""The optional ``monitoring:`` section: where late labels come from, the windows of live error, and the supervisor.

A template with ``monitoring:`` (and ``scoring:``, whose prediction log it reads) gets one monitor DAG,
``<template>.monitor``, with one mapped task per city: it joins the labels that have arrived to the prediction
log, computes the live metric per window with a bootstrap interval, compares it with the champion's holdout
score at promotion, and lets the supervisor decide (``docs/guides/monitoring.md``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from airflow_ml.templates.base import Strict
from airflow_ml.templates.dag_spec import check_schedule
from airflow_ml.templates.gate_spec import BootstrapSpec, SliceSpec
from airflow_ml.templates.source_pattern import check_location_pattern

#: The last part of a monitor DAG's id, ``<template>.monitor``; no city may take it as its id.
MONITOR_DAG_SUFFIX = "monitor"


class LabelsSpec(Strict):
    """Where the outcomes come from, and how a label row finds its prediction."""

    source: str | None = Field(
        default=None,
        description="URI pattern of the label partitions (date=YYYY-MM-DD like dataset.source, with {data_root} "
        "and {city}), under {data_root} or an s3:// URI; null: dataset.source itself, once its target column is "
        "filled.",
        examples=["{data_root}/outcomes/trips/{city}"],
    )
    format: Literal["parquet", "csv"] | None = Field(
        default=None, description="File format of the label partitions; null: dataset.format."
    )
    conn_id: str | None = Field(
        default=None, min_length=1, description="Airflow connection (type aws) of an s3:// source; null: dataset's."
    )
    join: Literal["key", "prediction_id"] = Field(
        default="key",
        description="key: recompute prediction_id from scoring.key_columns on the label rows; prediction_id: "
        "the label rows carry a prediction_id column.",
    )

    @field_validator("source")
    @classmethod
    def _source_pattern(cls, source: str | None) -> str | None:
        if source is not None:
            check_location_pattern(
                source,
                field="monitoring.labels.source",
                placeholders=("data_root", "city"),
                required="city",
                confined=True,
            )
        return source


class SupervisorSpec(Strict):
    """When the supervisor demotes a champion whose live error grew, and what a demotion asks of the next promotion."""

    mode: Literal["auto", "alert", "off"] = Field(
        default="alert",
        description="auto: roll the city back; alert: record and notify, move nothing; off: metrics only.",
    )
    tolerance: float = Field(
        default=0.2,
        gt=0,
        le=10,
        description="How much worse than the holdout score at promotion the live metric may be, relative "
        "(0.2: 20%); above 0, at most 10.",
    )
    consecutive_windows: int = Field(
        default=3, ge=1, le=365, description="Windows in a row past the tolerance before acting (k), 1 to 365."
    )
    # At least 30: a window of a handful of labels has an interval too wide to mean anything, and in mode auto
    # two bad labels must never demote a champion.
    min_labels: int = Field(
        default=200, ge=30, le=10_000_000, description="Labels a window needs to count (n), 30 to 10,000,000."
    )
    after_demotion: Literal["require_approval", "shadow", "cooldown"] = Field(
        default="require_approval",
        description="What the city's next promotion needs after a demotion: a person's approval, shadow "
        "mode, or a cool-down of cooldown_days.",
    )
    cooldown_days: int = Field(default=7, ge=1, le=365, description="Days of the cool-down, 1 to 365.")


class ShadowSpec(Strict):
    """When a challenger in shadow mode is promoted on live evidence (read by the shadow comparison)."""

    min_improvement: float = Field(
        default=0.02, ge=0, le=1, description="Relative improvement over the champion on live rows, 0 to 1."
    )
    min_labels: int = Field(default=1000, ge=1, le=10_000_000, description="Labels seen, 1 to 10,000,000.")
    min_days: int = Field(default=7, ge=1, le=365, description="Days seen, 1 to 365.")
    max_slice_regression: float = Field(
        default=0.1, gt=0, le=10, description="How much worse a slice may be, relative; above 0, at most 10."
    )
    slices: list[SliceSpec] = Field(default_factory=list, max_length=20, description="Slices compared, up to 20.")


class MonitoringSpec(Strict):
    """Watching the champion's live error once labels arrive; needs ``scoring:`` (its prediction log)."""

    schedule: str = Field(
        default="@daily",
        description="When <template>.monitor runs: a five-field cron expression or a preset (@daily, @hourly, ...). "
        "Set in the template (or the shared defaults) only: every city of the template is a task of that one DAG.",
        examples=["0 6 * * *", "@daily"],
    )
    labels: LabelsSpec = Field(default_factory=LabelsSpec)
    window_days: int = Field(default=1, ge=1, le=90, description="Days per window, 1 to 90.")
    windows: int = Field(
        default=30, ge=1, le=365, description="How many recent windows each monitor run evaluates, 1 to 365."
    )
    bootstrap: BootstrapSpec = Field(
        default_factory=BootstrapSpec, description="The interval of each window's live metric."
    )
    supervisor: SupervisorSpec = Field(default_factory=SupervisorSpec)
    shadow: ShadowSpec = Field(default_factory=ShadowSpec)

    @field_validator("schedule")
    @classmethod
    def _valid_schedule(cls, value: str) -> str:
        return check_schedule(value)

    def problems(self, *, key_columns: list[str] | None) -> list[str]:
        """Problems against the ``scoring:`` section (None: there is none)."""
        if key_columns is None:
            return [
                "monitoring needs a scoring: section (its prediction log is what labels are joined to); add "
                "scoring: {source: ...} to the template, or remove monitoring:"
            ]
        if self.labels.join == "key" and not key_columns:
            return [
                "monitoring.labels.join 'key' recomputes prediction ids from scoring.key_columns, which is empty; "
                "name the key columns in scoring.key_columns (e.g. [trip_id]), or set labels.join: prediction_id"
            ]
        return []

    def labels_uri(self, dataset_source: str, data_root: str, city: str) -> str:
        """The city's label partitions: ``labels.source`` (or ``dataset.source``) with root and city filled in."""
        uri = (self.labels.source or dataset_source).format(data_root=data_root.rstrip("/"), city=city)
        return uri if "://" in uri else f"file://{uri}"
