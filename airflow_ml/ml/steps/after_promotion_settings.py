"""The settings of what happens after promotion: batch scoring, the monitor, its supervisor and shadow promotion.

Their own module (``step_settings`` re-exports them) so that the retraining tasks' settings stay one page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from airflow_ml.ml.frozen_settings import FrozenSettings


@dataclass(frozen=True)
class ScoringSettings(FrozenSettings):
    """A city's batch scoring (issue 13): the rows to score, the model that scores them, where predictions go.

    Built once from the template's ``scoring:`` section (``airflow_ml.factory.score_dags.scoring_settings``);
    the resolve and score tasks of ``<template>.<city>.score`` take it (see :mod:`airflow_ml.scoring.score_step`).

    Attributes:
        template: The city's template (the prediction log's folder and the prediction ids' namespace).
        city: The city scored.
        model_name: The city's registered model: its champion serves, its kill switch applies.
        parent_model: The fallback parent that serves the city while it has no champion of its own, or None.
        source: URI pattern of the rows to score (``{data_root}`` and ``{city}``), partitioned by ``date=``.
        data_format: ``parquet`` or ``csv``.
        conn_id: Airflow connection (type ``aws``) for an ``s3://`` source or output.
        output: Root of the prediction log (``{data_root}`` filled in at run time).
        features: The model's input columns (and, without key columns, what the prediction id derives from).
        key_columns: Columns that identify a row; the prediction id derives from them.
        keep_columns: Further columns kept beside each prediction.
        shadow: Also score the city's ``challenger`` (when it is not the model that serves) into the shadow log.
        store_conn_id: Airflow connection (type ``postgres``) of the prediction table, or None for the log alone.
        store_table: The prediction table.
        time_column: The dataset's time column: read from a CSV source as date-times, so that a key holding it
            makes the ids an HTTP request (which types it so) and a parquet source make.
    """

    template: str
    city: str
    model_name: str
    source: str
    features: Sequence[str]
    parent_model: str | None = None
    data_format: str = "parquet"
    conn_id: str = "aws_default"
    output: str = "{data_root}"
    key_columns: Sequence[str] = ()
    keep_columns: Sequence[str] = ()
    shadow: bool = True
    store_conn_id: str | None = None
    store_table: str = "airflow_ml_predictions"
    time_column: str | None = None

    def output_root(self, data_root: str) -> str:
        """The prediction log's root with the data root filled in."""
        return self.output.format(data_root=data_root.rstrip("/"))


# --- Issue 13, shadow promotion (H4): the live comparison of a challenger in shadow with the champion. ---


@dataclass(frozen=True)
class ShadowSettings(FrozenSettings):
    """When a challenger in shadow replaces the champion, on live rows (``monitoring.shadow`` and ``.bootstrap``).

    Attributes:
        min_improvement: Required gain over the champion's live score, relative (0.02: 2%).
        min_labels: Labelled rows both models scored, at least.
        min_days: Days with labelled rows, at least (the bootstrap resamples days).
        max_slice_regression: How much worse (relative) any judged slice may be; None: slices are reported only.
        slices: ``{"column": ..., "bins": [...] or None}`` per slicing of the live rows.
        min_slice_rows: Smaller slices are reported but not judged.
        resamples: Bootstrap resamples of the days.
        confidence: Level of the percentile interval of the improvement.
        seed: Same rows, same seed: same interval.
    """

    min_improvement: float = 0.02
    min_labels: int = 1000
    min_days: int = 7
    max_slice_regression: float | None = 0.1
    slices: Sequence[Mapping[str, Any]] = ()
    min_slice_rows: int = 100
    resamples: int = 1000
    confidence: float = 0.95
    seed: int = 0


# --- Issue 13, watching live error (H3): the monitor task and its supervisor. ---


@dataclass(frozen=True)
class SupervisorSettings(FrozenSettings):
    """When the supervisor demotes a city's champion (the template's ``monitoring.supervisor``).

    Attributes:
        mode: ``auto`` (roll back), ``alert`` (record and notify, move nothing) or ``off`` (metrics only).
        tolerance: How much worse than the holdout score at promotion the live metric may be, relative.
        consecutive_windows: Windows in a row past the tolerance before acting (k).
        min_labels: Labels a window needs to count (n).
        after_demotion: What the next promotion needs: ``require_approval``, ``shadow`` or ``cooldown``.
        cooldown_days: Days of the cool-down.
    """

    mode: Literal["auto", "alert", "off"] = "alert"
    tolerance: float = 0.2
    consecutive_windows: int = 3
    min_labels: int = 200
    after_demotion: Literal["require_approval", "shadow", "cooldown"] = "require_approval"
    cooldown_days: int = 7


@dataclass(frozen=True)
class MonitorSettings(FrozenSettings):
    """The monitor task of one city: where its predictions and labels are, the windows and the supervisor.

    Attributes:
        template: The city's template.
        city: The city.
        model_name: The city's registered model (``<template>.<city>``), whose champion is watched.
        parent_model: The fallback parent that serves the city when its champion is cleared, or None.
        metric: The template's metric.
        target: The label column.
        predictions_root: The prediction log's root pattern (``scoring.output``, with ``{data_root}``).
        labels_source: The label partitions' pattern (with ``{data_root}`` and ``{city}``).
        predictions_conn_id: The ``aws`` connection of a prediction log on S3 (``scoring.conn_id``).
        labels_conn_id: The ``aws`` connection of labels on S3 (``monitoring.labels.conn_id`` or the dataset's).
        labels_format: ``parquet`` or ``csv``.
        join: ``key`` (prediction ids recomputed from ``key_columns``) or ``prediction_id``.
        key_columns: ``scoring.key_columns``.
        window_days: Days per window.
        windows: How many recent windows a run evaluates.
        resamples: Bootstrap resamples of each window's rows.
        confidence: Level of the interval.
        seed: The bootstrap's seed.
        supervisor: The supervisor's rules.
        shadow: When a challenger in shadow is promoted on the live rows (``monitoring.shadow``), or None.
    """

    nested: ClassVar[Mapping[str, Any]] = {"supervisor": SupervisorSettings, "shadow": ShadowSettings}

    template: str
    city: str
    model_name: str
    metric: str
    target: str
    predictions_root: str
    labels_source: str
    parent_model: str | None = None
    predictions_conn_id: str = "aws_default"
    labels_conn_id: str = "aws_default"
    labels_format: str = "parquet"
    join: Literal["key", "prediction_id"] = "key"
    key_columns: Sequence[str] = ()
    window_days: int = 1
    windows: int = 30
    resamples: int = 1000
    confidence: float = 0.95
    seed: int = 0
    supervisor: SupervisorSettings = field(default_factory=SupervisorSettings)
    shadow: ShadowSettings | None = None

    def predictions_uri(self, data_root: str) -> str:
        """The prediction log's root with the data root filled in."""
        return self.predictions_root.format(data_root=data_root.rstrip("/"))

    def labels_uri(self, data_root: str) -> str:
        """The city's label partitions with the data root and the city filled in (``file://`` for a path)."""
        uri = self.labels_source.format(data_root=data_root.rstrip("/"), city=self.city)
        return uri if "://" in uri else f"file://{uri}"
