"""The optional ``scoring:`` section: where a city's rows to score come from, where predictions go, and when.

A template (or a group, or a city) with a ``scoring:`` section gets one scoring DAG per city,
``<template>.<city>.score``, that scores the day's partition of ``source`` with the city's champion and writes
the prediction log (``<output>/predictions/<template>/<city>/date=YYYY-MM-DD/``). A city opts out with
``scoring: {enabled: false}``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from airflow_ml.templates.base import Strict
from airflow_ml.templates.dag_spec import check_schedule
from airflow_ml.templates.source_pattern import check_location_pattern

Column = Annotated[str, Field(min_length=1, max_length=200)]


class PredictionStoreSpec(Strict):
    """A PostgreSQL table that receives the same rows as the prediction log, upserted by ``prediction_id``."""

    conn_id: str = Field(min_length=1, max_length=250, description="Airflow connection of type postgres.")
    table: str = Field(
        default="airflow_ml_predictions",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="Table name (lower-case letters, digits, underscores; created when missing).",
    )


class ScoringSpec(Strict):
    """Batch scoring with the champion, and the prediction log it writes."""

    enabled: bool = Field(default=True, description="false: this city (or group) gets no scoring DAG.")
    source: str = Field(
        description="URI pattern of the rows to score, partitioned by date=YYYY-MM-DD like dataset.source; "
        "{data_root} and {city} are filled in at run time. A run scores the partition of its logical date.",
        examples=["{data_root}/incoming/trips/{city}"],
    )
    format: Literal["parquet", "csv"] = Field(default="parquet", description="File format of the partitions.")
    conn_id: str = Field(
        default="aws_default",
        min_length=1,
        description="Airflow connection (type aws) for an s3:// source or output; unused for local paths.",
    )
    output: str = Field(
        default="{data_root}",
        description="Root of the prediction log: predictions/<template>/<city>/date=YYYY-MM-DD/ go inside; "
        "{data_root} or a folder under it, or an s3:// URI; {data_root} is filled in at run time.",
    )
    schedule: str | None = Field(
        default="@daily",
        description="A five-field cron expression or a preset such as '@daily', or null (with on_new_data: only "
        "when new data lands).",
    )
    on_new_data: bool = Field(
        default=False, description="Also score when the city's data Asset is updated (data-aware scheduling)."
    )
    key_columns: list[Column] = Field(
        default_factory=list,
        max_length=20,
        description="Columns of the scored rows that identify a row (e.g. [trip_id]); prediction_id derives "
        "from them. Empty: from the row's feature values.",
    )
    keep_columns: list[Column] = Field(
        default_factory=list,
        max_length=50,
        description="Further columns of the scored rows kept in the prediction log (for the monitor's slices).",
    )
    shadow: bool = Field(
        default=True,
        description="Also score the city's 'challenger' (when it is not the champion) into the shadow log, "
        "predictions_shadow/, that nothing serves.",
    )
    store: PredictionStoreSpec | None = Field(
        default=None, description="Also upsert the predictions into a PostgreSQL table; null: the log alone."
    )

    @field_validator("source")
    @classmethod
    def _source_pattern(cls, source: str) -> str:
        check_location_pattern(source, field="scoring.source", placeholders=("data_root", "city"), required="city")
        return source

    @field_validator("output")
    @classmethod
    def _output_pattern(cls, output: str) -> str:
        check_location_pattern(
            output, field="scoring.output", placeholders=("data_root",), required=None, confined=True
        )
        return output

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, schedule: str | None) -> str | None:
        # The same presets and cron checks as the retraining DAG's schedule.
        return None if schedule is None else check_schedule(schedule)

    @model_validator(mode="after")
    def _columns_listed_once(self) -> ScoringSpec:
        for field, columns in (("key_columns", self.key_columns), ("keep_columns", self.keep_columns)):
            repeated = sorted({c for c in columns if columns.count(c) > 1})
            if repeated:
                raise ValueError(f"scoring.{field} lists {repeated!r} more than once; keep each column once")
        if self.schedule is None and not self.on_new_data:
            raise ValueError(
                "scoring.schedule is null and scoring.on_new_data is false: the scoring DAG would never run; "
                "set a schedule such as '@daily', or on_new_data: true"
            )
        if self.on_new_data and self.schedule in ("@once", "@continuous"):
            raise ValueError(
                f"scoring.schedule {self.schedule!r} cannot be combined with scoring.on_new_data; use a cron "
                "expression or a preset such as '@daily', or null to score only when new data lands"
            )
        return self

    def columns_problems(self, *, features: list[str], known: set[str]) -> list[str]:
        """Problems of the named columns against the dataset: a key or kept column must be a known column."""
        problems = []
        for field, columns in (("key_columns", self.key_columns), ("keep_columns", self.keep_columns)):
            unknown = [c for c in columns if c not in known]
            if unknown:
                problems.append(
                    f"scoring.{field} {unknown!r} are not columns the dataset names; use features "
                    f"{features!r} or add them to dataset.extra_columns"
                )
        return problems

    def output_root(self, data_root: str) -> str:
        """The prediction log's root with the data root filled in (a local path or a URI)."""
        return self.output.format(data_root=data_root.rstrip("/"))

    def source_uri(self, data_root: str, city: str) -> str:
        """The city's rows to score: the pattern with the data root and the city filled in."""
        uri = self.source.format(data_root=data_root.rstrip("/"), city=city)
        return uri if "://" in uri else f"file://{uri}"
