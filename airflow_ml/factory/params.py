"""The typed trigger form of a city's DAG: Params with JSON Schema, validated by the form and the run."""

from __future__ import annotations

from airflow.sdk import Param

from airflow_ml.templates.models import CityConfig


def trigger_params(config: CityConfig) -> dict[str, Param]:
    """Params shown in the Airflow trigger form; None means "use the city's configured value"."""
    training = config.training
    return {
        "num_boost_round": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            maximum=100_000,
            title="Boosting rounds",
            description=f"Override the configured {training.num_boost_round} rounds (empty keeps it).",
        ),
        "learning_rate": Param(
            None,
            type=["null", "number"],
            exclusiveMinimum=0,
            maximum=1,
            title="Learning rate",
            description=f"Override the configured {training.params.learning_rate} (empty keeps it).",
        ),
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
        "reason": Param(
            "", type="string", maxLength=500, title="Reason", description="Why this run; recorded with the decision."
        ),
    }
