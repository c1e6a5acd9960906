"""The typed trigger form of a city's DAG: Params with JSON Schema, validated by the form and the run."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param

from airflow_ml.ml.gate import MODES
from airflow_ml.templates.models import ModelConfig
from airflow_ml.templates.training_spec import SearchSpec

#: Every Param names its JSON Schema dialect. Airflow validates each Param with ``jsonschema.validate``,
#: which first checks the schema itself against its dialect's meta-schema; draft-07's meta-schema is
#: checked in half the time of the default 2020-12 one, and each DAG's Params are validated about 24 times
#: while the DAG processor builds and serializes it. Every keyword used here means the same in both.
SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"

#: LightGBM parameters the trigger form may override, with their bounds.
TUNABLE: dict[str, dict[str, Any]] = {
    "learning_rate": {"type": ["null", "number"], "exclusiveMinimum": 0, "maximum": 1, "title": "Learning rate"},
    "num_leaves": {"type": ["null", "integer"], "minimum": 2, "maximum": 4096, "title": "Leaves per tree"},
    "min_data_in_leaf": {"type": ["null", "integer"], "minimum": 1, "maximum": 100_000, "title": "Rows per leaf"},
}


def _param(default: Any, **schema: Any) -> Param:
    description = schema.pop("description", None)
    return Param(default, description, schema={**schema, "$schema": SCHEMA_DIALECT})


def trigger_params(config: ModelConfig) -> dict[str, Param]:
    """Params shown in the Airflow trigger form; None means "use the city's configured value"."""
    training = config.training
    configured = training.params.model_dump()
    search_trials = training.search.trials if training.search else 0
    search_minutes = training.search.timeout_minutes if training.search else SearchSpec().timeout_minutes
    tunable = {
        name: _param(None, description=f"Override the configured {configured[name]} (empty keeps it).", **schema)
        for name, schema in TUNABLE.items()
    }
    return {
        "num_boost_round": _param(
            None,
            type=["null", "integer"],
            minimum=1,
            maximum=100_000,
            title="Boosting rounds",
            description=f"Override the configured {training.num_boost_round} rounds (empty keeps it).",
        ),
        **tunable,
        "search_trials": _param(
            None,
            type=["null", "integer"],
            minimum=0,
            maximum=1000,
            title="Search trials",
            description=f"Optuna trials before training (0: no search; empty keeps the configured {search_trials}).",
        ),
        "search_timeout_minutes": _param(
            None,
            type=["null", "number"],
            exclusiveMinimum=0,
            maximum=24 * 60,
            title="Search time limit (minutes)",
            description=f"No new trial starts after this (empty keeps the configured {search_minutes:g}).",
        ),
        "window_start": _param(
            None,
            type=["null", "string"],
            format="date",
            title="First day of data",
            description="Train on partitions from this date (empty: the latest window).",
        ),
        "window_end": _param(
            None,
            type=["null", "string"],
            format="date",
            title="Last day of data",
            description="Train on partitions up to this date (empty: up to the newest).",
        ),
        "promotion_mode": _param(
            "auto",
            type="string",
            enum=list(MODES),
            title="Promotion mode",
            description="auto: the gate decides. require_approval: if the gate recommends promotion, a person "
            "approves or rejects it under Required actions. force: promote even if the gate refuses (needs a "
            "Reason). dry_run: decide and record, move nothing.",
        ),
        # Nullable: Airflow's form requires a value for a Param whose type excludes null, so a plain string
        # would keep the Trigger button disabled until someone typed a reason.
        "reason": _param(
            "",
            type=["null", "string"],
            maxLength=500,
            title="Reason",
            description="Why this run; recorded with the decision.",
        ),
    }
