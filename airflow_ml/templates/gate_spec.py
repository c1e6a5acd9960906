"""The promotion gate's rules: quality bounds, improvement, bootstrap interval, slices."""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Any, Literal, Protocol

from pydantic import Field, field_validator, model_validator

from airflow_ml.templates.base import Strict


class DatasetColumns(Protocol):
    """The columns of a dataset that the gate's slices are checked against (``models.DatasetSpec`` has them)."""

    target: str
    time_column: str
    features: list[str]
    categorical_features: list[str]
    extra_columns: list[str]


#: The bound of a score or a difference of scores in the metric's own unit: far beyond any real one.
_LARGE = 1_000_000_000
#: The bound of a slice edge, in the column's own unit (epoch microseconds fit).
_EDGE = 1e18


class QualityBound(Strict):
    """An absolute bound on the challenger's own holdout score; set the one key of the template's metric.

    A metric where lower is better takes a maximum (``max_rmse: 12``: refuse any challenger whose holdout
    RMSE is above 12), one where higher is better a minimum (``min_auc: 0.7``).
    """

    max_rmse: float | None = Field(default=None, gt=0, le=_LARGE, description="Above 0, at most 1e9.")
    max_mae: float | None = Field(default=None, gt=0, le=_LARGE, description="Above 0, at most 1e9.")
    max_mape: float | None = Field(default=None, gt=0, le=_LARGE, description="Above 0, at most 1e9.")
    min_r2: float | None = Field(default=None, ge=-1_000_000, le=1, description="-1,000,000 to 1.")
    min_auc: float | None = Field(default=None, ge=0, le=1, description="0 to 1.")
    max_logloss: float | None = Field(default=None, gt=0, le=1000, description="Above 0, at most 1000.")

    def bound(self) -> dict[str, float]:
        """The keys that are set, e.g. ``{"max_rmse": 12.0}``."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


#: The longest block of the bootstrap, in rows.
MAX_BLOCK_LENGTH = 1_000_000


class BootstrapSpec(Strict):
    """A percentile bootstrap: how many resamples, the interval's level, the seed."""

    resamples: int = Field(
        default=1000, ge=100, le=100_000, description="Resamples of the holdout rows, 100 to 100,000."
    )
    confidence: float = Field(
        default=0.95, ge=0.5, lt=1, description="Level of the percentile interval, 0.5 to below 1."
    )
    seed: int = Field(
        default=0, ge=0, le=2**31 - 1, description="Same data, same seed: same interval; 0 to 2147483647."
    )


class BlockBootstrapSpec(BootstrapSpec):
    """The gate's paired block bootstrap over the holdout rows in time order, so that a city does not promote on noise.

    Each resample is made of runs of ``block_length`` consecutive rows (a circular block bootstrap): rows close in
    time have correlated errors, and drawing single rows would overstate how sure the gate is.
    """

    block_length: Annotated[int, Field(ge=1, le=MAX_BLOCK_LENGTH)] | Literal["auto"] = Field(
        default="auto",
        description="Consecutive holdout rows (in time order) per resampled block: auto (default) reads it from the "
        "autocorrelation of the per-row loss difference (Politis-White); a whole number of rows from 1 to "
        "1,000,000 fixes it (1: single rows, the plain row bootstrap).",
    )

    @field_validator("block_length", mode="before")
    @classmethod
    def _block_length(cls, value: Any) -> Any:
        whole = isinstance(value, int) and not isinstance(value, bool)
        if value == "auto" or (whole and 1 <= value <= MAX_BLOCK_LENGTH):
            return value
        raise ValueError(
            f"block_length {value!r} is neither auto nor a whole number of rows from 1 to {MAX_BLOCK_LENGTH:,}; "
            "write block_length: auto (chosen from the data), or e.g. block_length: 50 for the rows of about an "
            "hour of the holdout (1: single rows)"
        )


class SliceSpec(Strict):
    """A slicing of the holdout: one slice per value of ``column``, or per interval of ``bins``."""

    column: str = Field(min_length=1, description="A feature or an extra column of the dataset.")
    bins: list[Annotated[float, Field(allow_inf_nan=False, ge=-_EDGE, le=_EDGE)]] | None = Field(
        default=None,
        min_length=2,
        max_length=1000,
        description="Increasing edges of numeric intervals, e.g. [0, 6, 10, 16, 20, 24] for hour bands; "
        "[a, b) each, the last one closed; up to 1000 edges, each within +-1e18.",
    )

    @field_validator("bins")
    @classmethod
    def _increasing(cls, bins: list[float] | None) -> list[float] | None:
        if bins is not None and any(bins[i + 1] <= bins[i] for i in range(len(bins) - 1)):
            raise ValueError("bins must be strictly increasing edges, e.g. [0, 6, 10, 16, 20, 24]")
        return bins


class NaiveBaselineSpec(Strict):
    """Every challenger, a first model included, must beat a constant learnt from the training rows.

    The constant is the training target's mean (or median) for a regression and the positive rate for a
    binary task, scored on the same holdout with the template's metric. The challenger's skill over it,
    ``(score - baseline) / (perfect - baseline)``, is the relative improvement for an error metric
    (``min_skill: 0.05``: a 5% lower rmse than predicting the mean) and the share of the gap to a perfect
    score for ``r2`` and ``auc``.
    """

    enabled: bool = Field(default=True, description="false turns the rule off.")
    statistic: Literal["mean", "median"] = Field(
        default="mean",
        description="The constant of a regression: the training target's mean or median (a binary task always "
        "predicts the training prior).",
    )
    min_skill: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        allow_inf_nan=False,
        description="Required skill over the baseline: 0.05 = 5% better; at 0 the challenger must still be better.",
    )


class FleetOutlierSpec(Strict):
    """Refuse a challenger whose skill over the naive baseline lies far from its sibling cities' champions' skills.

    The siblings are the template's other cities' current champions; the robust z-score is ``(skill - median) /
    max(1.4826 * MAD, 0.01)``. A suspect challenger passes when the city's own promoted history lies as far
    from the fleet on the same side (see the gate guide). Needs ``naive_baseline`` on.
    """

    max_z: float = Field(
        default=4.0,
        gt=0,
        le=100,
        allow_inf_nan=False,
        description="Robust z-score beyond which (either side) a challenger is suspect; above 0, at most 100.",
    )
    min_siblings: int = Field(
        default=8,
        ge=3,
        le=1_000_000,
        description="Fewer sibling champions with a skill: the rule is not applied; 3 to 1,000,000.",
    )
    min_history: int = Field(
        default=3,
        ge=1,
        le=1000,
        description="Past promoted versions of the city needed before its own history can explain a gap; 1 to 1000.",
    )


class AcceptSchemaChangeSpec(Strict):
    """Declare a change of the model's inputs (columns, types, categorical levels), so the gate may promote it.

    The declaration names the changed items by their fingerprints (``change``), which the gate's refusal shows:
    one per column and kind of change (added, removed, type from one kind to another, categorical or not, levels
    gained or lost), the same for every city of a template with that change. A later change with another item
    is refused again. Without ``change`` (a declaration written before changes were fingerprinted) it accepts
    nothing, and the refusal shows the value to add.
    """

    reason: str = Field(min_length=1, max_length=500, description="Why the inputs change; recorded with the decision.")
    change: list[Annotated[str, Field(max_length=100)]] | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="The fingerprints of the changed items accepted, as the gate's refusal shows them, e.g. "
        "['sha256:3f9a0c1b2d4e'] (one string: a list of one); null: the declaration accepts no change (the refusal "
        "shows the value to add).",
    )
    columns: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        default=None,
        min_length=1,
        max_length=10_000,
        description="Only changes of these columns are accepted; null (default): any column.",
    )
    max_level_share: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Levels gained (lost) are accepted only while they hold at most this share of the challenger's "
        "(the champion's) training rows, e.g. 0.2; null (default): any share, so the declaration also accepts its "
        "own revert and a large level lost to an outage while it stays in the template.",
    )

    @field_validator("change", mode="before")
    @classmethod
    def _fingerprints(cls, change: Any) -> Any:
        values = [change] if isinstance(change, str) else change
        for value in values if isinstance(values, list) else ():
            if isinstance(value, str) and not re.fullmatch(r"sha256:[0-9a-f]{12}", value):
                raise ValueError(
                    f"{value!r} is not a change's fingerprint: copy it from the gate's refusal of the change, "
                    "'sha256:' and 12 hex digits, e.g. change: ['sha256:3f9a0c1b2d4e']"
                )
        return values


class LevelToleranceSpec(Strict):
    """Categorical-level churn that is no schema change: listed in the gate's decision, refusing nothing."""

    new_level_max_share: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description="New levels of a column that together hold at most this share of the challenger's training "
        "rows (a new store id, a new rare zone) are no schema change; 0 to 1, 0: every new level counts.",
    )
    removed_level_max_share: float = Field(
        default=0.001,
        ge=0,
        le=1,
        description="Levels the challenger no longer has that together held at most this share of the champion's "
        "training snapshot (a retired store id) are no schema change; 0 to 1, 0: every removed level counts (below "
        "1/share rows, e.g. 1,000 at the default, any removed level does).",
    )


class GateSpec(Strict):
    """When a challenger may replace the champion.

    Both models are scored on the same holdout; the challenger must meet ``min_quality``, beat the
    champion by ``min_improvement``, with a bootstrap interval of the improvement that excludes zero, and
    be no more than ``max_slice_regression`` worse on any judged slice.
    """

    min_improvement: float = Field(
        default=0.0,
        ge=0,
        le=_LARGE,
        description="Required gain over the champion's holdout score; 0 to below 1 when relative, at most 1e9.",
    )
    improvement_mode: Literal["relative", "absolute"] = "relative"
    max_improvement: float | None = Field(
        default=None,
        gt=0,
        le=_LARGE,
        description="Refuse a challenger better than the champion by more than this, in min_improvement's unit "
        "(0.5 = 50% when relative): so large a gain is likelier a leak or a broken holdout; null (default): off.",
    )
    approval_timeout_hours: float = Field(
        default=24,
        gt=0,
        le=24 * 30,
        description="In promotion mode require_approval: hours to wait for a person before rejecting; above 0, "
        "at most 720.",
    )
    promotion_mode: Literal["auto", "require_approval", "shadow"] = Field(
        default="auto",
        description="The trigger form's default promotion mode, so scheduled runs follow it: auto (the gate "
        "decides), require_approval (a person approves a recommended promotion) or shadow (a winning challenger "
        "is shadow-scored; the monitor promotes it on live evidence). A run may still pick another mode.",
    )
    min_quality: QualityBound | None = Field(
        default=None, description="Absolute bound on the challenger's holdout score, e.g. {max_rmse: 12}; null: none."
    )
    bootstrap: BlockBootstrapSpec | None = Field(
        default=None,
        description="Promote only when the interval of the improvement excludes zero, e.g. {resamples: 1000, "
        "confidence: 0.95, seed: 0, block_length: auto}; null: off.",
    )
    slices: list[SliceSpec] = Field(
        default_factory=list,
        description="Slicings of the holdout, e.g. [{column: pickup_zone}, {column: pickup_hour, bins: [0, 6, 24]}].",
    )
    max_slice_regression: float | None = Field(
        default=None,
        ge=0,
        le=100,
        description="How much worse than the champion (relative) any judged slice may be: 0.05 = 5%, 0 to 100; "
        "null: slices are reported, not judged.",
    )
    min_slice_rows: int = Field(
        default=100, ge=1, le=100_000_000, description="Smaller slices are reported but not judged; 1 to 100,000,000."
    )
    naive_baseline: NaiveBaselineSpec = Field(
        default_factory=NaiveBaselineSpec,
        description="The challenger must beat predicting the training mean (median, prior) on the holdout, e.g. "
        "{statistic: median, min_skill: 0.05}; {enabled: false} turns it off.",
    )
    fleet_outlier: FleetOutlierSpec | None = Field(
        default=None,
        description="Refuse a challenger whose skill over the naive baseline lies far from the sibling cities' "
        "champions', unless its own history explains it, e.g. {max_z: 4.0, min_siblings: 8, min_history: 3}; "
        "null (default): off.",
    )
    accept_schema_change: AcceptSchemaChangeSpec | None = Field(
        default=None,
        description="Accept the change of the inputs (columns, types, categorical levels) whose item fingerprints "
        "the gate's refusal shows, e.g. {reason: 'zone column added', change: ['sha256:3f9a0c1b2d4e'], columns: "
        "[pickup_zone]}; null (default): a challenger whose inputs differ from the champion's is refused.",
    )
    level_tolerance: LevelToleranceSpec = Field(
        default_factory=LevelToleranceSpec,
        description="Categorical-level churn that is no schema change, e.g. {new_level_max_share: 0.01, "
        "removed_level_max_share: 0.001} (the default).",
    )

    def rules(self) -> dict[str, Any]:
        """The promotion rules as plain values (every field but the approval's timeout and the default mode), for
        ``GateRules``."""
        return self.model_dump(exclude={"approval_timeout_hours", "promotion_mode"})

    @model_validator(mode="after")
    def _relative_is_a_fraction(self) -> GateSpec:
        if self.improvement_mode == "relative" and self.min_improvement >= 1:
            raise ValueError(
                f"min_improvement {self.min_improvement!r} is a relative gain and must be below 1 (0.02 means 2%)"
            )
        if self.max_improvement is not None and self.max_improvement <= self.min_improvement:
            raise ValueError(
                f"max_improvement {self.max_improvement!r} must be above min_improvement {self.min_improvement!r}, "
                "or no challenger could pass; raise it or set it to null"
            )
        if self.fleet_outlier is not None and not self.naive_baseline.enabled:
            raise ValueError(
                "fleet_outlier compares the challenger's skill over the naive baseline, and naive_baseline is off; "
                "set naive_baseline: {enabled: true} or fleet_outlier: null"
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

    def problems(self, *, metric: str, dataset: DatasetColumns) -> list[str]:
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
        if self.naive_baseline.statistic == "median" and metric in ("auc", "logloss"):
            problems.append(
                f"naive_baseline.statistic: 'median' applies to a regression; the metric {metric!r} is a binary "
                "task's, whose naive baseline is the training prior; remove statistic"
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
