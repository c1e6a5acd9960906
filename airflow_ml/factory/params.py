"""The typed trigger form of a city's DAG: Params with JSON Schema, validated by the form and the run."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param

from airflow_ml.templates.models import CityConfig

#: LightGBM parameters the trigger form may override, with their bounds.
TUNABLE: dict[str, dict[str, Any]] = {
    "learning_rate": {"type": ["null", "number"], "exclusiveMinimum": 0, "maximum": 1, "title": "Learning rate"},
    "num_leaves": {"type": ["null", "integer"], "minimum": 2, "maximum": 4096, "title": "Leaves per tree"},
    "min_data_in_leaf": {"type": ["null", "integer"], "minimum": 1, "maximum": 100_000, "title": "Rows per leaf"},
}


def trigger_params(config: CityConfig) -> dict[str, Param]:
    """Params shown in the Airflow trigger form; None means "use the city's configured value"."""
    training = config.training
    configured = training.params.model_dump()
    tunable = {
        name: Param(None, description=f"Override the configured {configured[name]} (empty keeps it).", **schema)
        for name, schema in TUNABLE.items()
    }
    return {
        "num_boost_round": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            maximum=100_000,
            title="Boosting rounds",
            description=f"Override the configured {training.num_boost_round} rounds (empty keeps it).",
        ),
        **tunable,
        "window_start": Param(
            None,
            type=["null", "string"],
            format="date",
            title="First day of data",
            description="Train on partitions from this date (empty: the latest window).",
        ),
        "window_end": Param(
            None,
            type=["null", "string"],
            format="date",
            title="Last day of data",
            description="Train on partitions up to this date (empty: up to the newest).",
        ),
        "promotion_mode": Param(
            "auto",
            type="string",
            enum=["auto", "force", "dry_run"],
            title="Promotion mode",
            description="auto: the gate decides. force: promote even if the gate refuses (needs a Reason). "
            "dry_run: decide and record, move nothing.",
        ),
        "reason": Param(
            "", type="string", maxLength=500, title="Reason", description="Why this run; recorded with the decision."
        ),
    }
