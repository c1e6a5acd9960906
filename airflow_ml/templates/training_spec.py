"""What a template says about training: LightGBM parameters, the search, class weights."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from airflow_ml.exceptions import show_value
from airflow_ml.templates.base import Strict
from airflow_ml.templates.dask_spec import DaskSpec


class LightGBMParams(Strict):
    """The LightGBM parameters a template may set, each within LightGBM's valid range."""

    learning_rate: float = Field(default=0.05, gt=0, le=1, description="Shrinkage per round, above 0 and at most 1.")
    num_leaves: int = Field(default=31, ge=2, le=131072, description="Leaves per tree, 2 to 131072.")
    max_depth: int = Field(default=-1, ge=-1, le=1024, description="Depth limit per tree, -1 (none) to 1024.")
    min_data_in_leaf: int = Field(default=20, ge=1, le=100_000_000, description="Rows per leaf, 1 to 100,000,000.")
    feature_fraction: float = Field(
        default=1.0, gt=0, le=1, description="Share of features per tree, above 0 and at most 1."
    )
    bagging_fraction: float = Field(
        default=1.0, gt=0, le=1, description="Share of rows per bagging, above 0 and at most 1."
    )
    bagging_freq: int = Field(default=0, ge=0, le=100_000, description="Bag every k rounds, 0 (off) to 100,000.")
    lambda_l1: float = Field(default=0.0, ge=0, le=1_000_000, description="L1 regularisation, 0 to 1,000,000.")
    lambda_l2: float = Field(default=0.0, ge=0, le=1_000_000, description="L2 regularisation, 0 to 1,000,000.")
    min_gain_to_split: float = Field(
        default=0.0, ge=0, le=1_000_000, description="Least gain of a split, 0 to 1,000,000."
    )
    max_bin: int = Field(default=255, ge=2, le=65535, description="Histogram bins per feature, 2 to 65535.")
    cat_smooth: float = Field(
        default=10.0, ge=0, le=1_000_000, description="Smoothing of categorical splits, 0 to 1,000,000."
    )


#: A bound of a search range; whether it suits its parameter is checked against :class:`LightGBMParams`.
_Bound = (
    Annotated[int, Field(ge=-1_000_000_000, le=1_000_000_000)]
    | Annotated[float, Field(ge=-1_000_000_000, le=1_000_000_000)]
)
#: A search range: ``[low, high]`` or ``[low, high, log]`` (sampled on a log scale).
SearchRange = Annotated[list[_Bound | str], Field(min_length=2, max_length=3)]
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

    trials: int = Field(default=20, ge=0, le=1000, description="0 to 1000; 0 turns the search off.")
    timeout_minutes: float = Field(
        default=10, gt=0, le=24 * 60, description="Stops starting new trials after this; above 0, at most 1440."
    )
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
        return f"{show_value(name)} is not a LightGBM parameter a template may set; use one of {sorted(fields)}"
    low, high, *scale = bounds
    if scale and scale != ["log"]:
        return f"{name}: the third item may only be 'log', got {show_value(scale[0])}"
    if isinstance(low, str) or isinstance(high, str):
        return f"{name}: bounds must be numbers, got {show_value([low, high])}"
    is_int = fields[name].annotation is int
    if is_int and (low != int(low) or high != int(high)):
        return f"{name} is an integer parameter; use integer bounds, got {show_value([low, high])}"
    if not low < high:
        return f"{name}: low {show_value(low)} must be below high {show_value(high)}"
    if scale and low <= 0:
        return f"{name}: a log range needs a positive low bound, got {show_value(low)}"
    for bound in (low, high):
        try:
            LightGBMParams.model_validate({name: int(bound) if is_int else bound})
        except ValueError as exc:
            reason = exc.errors()[0]["msg"] if hasattr(exc, "errors") else str(exc)
            return f"{name}: bound {show_value(bound)} is outside the parameter's valid range ({reason})"
    return None


class TrainingSpec(Strict):
    """How the model is trained."""

    num_boost_round: int = Field(default=500, ge=1, le=100_000, description="Boosting rounds, 1 to 100,000.")
    early_stopping_rounds: int | None = Field(
        default=50, ge=1, le=100_000, description="Stop after this many rounds without gain, 1 to 100,000; null: never."
    )
    seed: int = Field(default=42, ge=0, le=2**31 - 1, description="Random seed, 0 to 2147483647.")
    num_threads: int = Field(
        default=0,
        ge=0,
        le=1024,
        description="Threads, 0 to 1024; 0 lets LightGBM use every core, more than the worker's cores run as many "
        "as it has.",
    )
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
    engine: Literal["local", "dask"] = Field(
        default="local",
        description="local: one process trains on the whole snapshot; dask: lightgbm.dask trains on a Dask cluster.",
    )
    dask: DaskSpec = Field(default_factory=DaskSpec, description="The cluster of engine dask (ignored by local).")

    @model_validator(mode="after")
    def _dask_trains_plainly(self) -> TrainingSpec:
        if self.engine != "dask":
            return self
        if self.warm_start:
            raise ValueError(
                "engine 'dask' does not warm start (lightgbm.dask has no init_model); set warm_start: false "
                "or engine: local"
            )
        if self.search is not None and self.search.trials:
            raise ValueError(
                f"engine 'dask' does not search parameters ({self.search.trials} trials asked); set "
                "search.trials: 0 (or remove search) or engine: local"
            )
        return self
