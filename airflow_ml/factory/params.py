"""The typed trigger form of a city's DAG: Params with JSON Schema, validated by the form and the run.

The numeric Params take their type and bounds from the template models (see
:mod:`airflow_ml.operators.overrides`): the form and the YAML never disagree on what a value may be.
"""

from __future__ import annotations

import json
from typing import Any

from airflow.sdk import Param
from airflow.sdk.definitions.param import ParamsDict

from airflow_ml.factory.checked_dag import CheckedConfDAG
from airflow_ml.ml.gate.modes import MODES
from airflow_ml.operators.overrides import (
    NO_CONTROL_PATTERN,
    REASON_MAX_LENGTH,
    WINDOW_DATE_PATTERN,
    WINDOW_FIRST_DAY,
    WINDOW_LAST_DAY,
    number_schema,
)
from airflow_ml.templates.models import ModelConfig
from airflow_ml.templates.training_spec import SearchSpec

#: Every Param names its JSON Schema dialect. Airflow validates each Param with ``jsonschema.validate``,
#: which first checks the schema itself against its dialect's meta-schema; draft-07's meta-schema is
#: checked in half the time of the default 2020-12 one, and each DAG's Params are validated about 24 times
#: while the DAG processor builds and serializes it. Every keyword used here means the same in both.
SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"

#: The form's title of each numeric override.
TITLES = {
    "num_boost_round": "Boosting rounds",
    "learning_rate": "Learning rate",
    "num_leaves": "Leaves per tree",
    "min_data_in_leaf": "Rows per leaf",
    "search_trials": "Search trials",
    "search_timeout_minutes": "Search time limit (minutes)",
}


_DAYS = f"{WINDOW_FIRST_DAY} to {WINDOW_LAST_DAY}"


def _param(default: Any, **schema: Any) -> Param:
    description = schema.pop("description", None)
    return Param(default, description, schema={**schema, "$schema": SCHEMA_DIALECT})


#: The form's sections, in the order the form shows them. Airflow's form is an accordion with one section open
#: at a time, and the one it opens with is its default, "Run Parameters": the training overrides stay there (no
#: ``section``), so that the form opens on them; the data window and the promotion have a section each.
TRAINING_SECTION = "Run Parameters"
WINDOW_SECTION = "Data window"
PROMOTION_SECTION = "Promotion"

#: What each promotion mode does, as the form's drop-down shows it.
MODE_LABELS = {
    "auto": "auto: the gate decides",
    "require_approval": "require_approval: a person approves a recommended promotion",
    "shadow": "shadow: a winner is shadow-scored, the monitor promotes it on live evidence",
    "force": "force: promote even if the gate refuses (needs a Reason)",
    "dry_run": "dry_run: decide and record, move no alias",
}


def _number(name: str, description: str) -> Param:
    """An empty-by-default Param with the template field's type and bounds (None keeps the configured value).

    The bounds are stated in the description and checked by Airflow when it creates the run, but never written
    as ``minimum``/``maximum``: the form's number field reads those two and silently clamps a typed value to them
    (200,000 rounds would become 100,000). :func:`unclamped` writes the same bounds in keywords it ignores.
    """
    schema = dict(number_schema(name))
    return _param(
        None,
        **{**unclamped(schema), "type": ["null", schema["type"]]},
        title=TITLES[name],
        description=f"{description} {bounds_text(schema).capitalize()}.",
    )


def unclamped(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its inclusive ``minimum``/``maximum`` rewritten as bounds that accept exactly the same values.

    An integer's ``minimum: m`` is ``exclusiveMinimum: m - 1``; a number's is ``not: {exclusiveMaximum: m}`` (only
    a number below ``m`` is refused; null stays allowed).
    """
    rewritten = {k: v for k, v in schema.items() if k not in ("minimum", "maximum")}
    refused = []
    for inclusive, exclusive, step in (("minimum", "exclusiveMinimum", -1), ("maximum", "exclusiveMaximum", 1)):
        if inclusive not in schema:
            continue
        if schema["type"] == "integer":
            rewritten[exclusive] = schema[inclusive] + step
        else:  # beyond the bound: above a maximum is "exclusiveMinimum: maximum"
            beyond = "exclusiveMaximum" if inclusive == "minimum" else "exclusiveMinimum"
            refused.append({"not": {"type": "number", beyond: schema[inclusive]}})
    if refused:
        rewritten["allOf"] = refused
    return rewritten


def bounds_text(schema: dict[str, Any]) -> str:
    """The bounds of a number's schema in words: ``1 to 100,000``, ``above 0, at most 1``."""
    low = f"{schema['minimum']:,}" if "minimum" in schema else None
    if low is None and "exclusiveMinimum" in schema:
        low = f"above {schema['exclusiveMinimum']:,}"
    high = f"{schema['maximum']:,}" if "maximum" in schema else None
    if low and high:
        return f"{low}, at most {high}" if low.startswith("above") else f"{low} to {high}"
    return low or (f"at most {high}" if high else "any value")


def trigger_params(config: ModelConfig) -> dict[str, Param]:
    """Params shown in the Airflow trigger form; None means "use the city's configured value"."""
    training = config.training
    configured = training.params.model_dump()
    search_trials = training.search.trials if training.search else 0
    search_minutes = training.search.timeout_minutes if training.search else SearchSpec().timeout_minutes
    return {
        "num_boost_round": _number(
            "num_boost_round", f"Override the configured {training.num_boost_round} rounds (empty keeps it)."
        ),
        **{
            name: _number(name, f"Override the configured {configured[name]} (empty keeps it).")
            for name in ("learning_rate", "num_leaves", "min_data_in_leaf")
        },
        "search_trials": _number(
            "search_trials",
            f"Optuna trials before training (0: no search; empty keeps the configured {search_trials}).",
        ),
        "search_timeout_minutes": _number(
            "search_timeout_minutes", f"No new trial starts after this (empty keeps the configured {search_minutes:g})."
        ),
        "window_start": _param(
            None,
            type=["null", "string"],
            format="date",
            pattern=WINDOW_DATE_PATTERN,
            title="First day of data",
            description=f"Train on partitions from this date (empty: the latest window); {_DAYS}.",
            section=WINDOW_SECTION,
        ),
        "window_end": _param(
            None,
            type=["null", "string"],
            format="date",
            pattern=WINDOW_DATE_PATTERN,
            title="Last day of data",
            description=f"Train on partitions up to this date (empty: up to the newest); {_DAYS}.",
            section=WINDOW_SECTION,
        ),
        "promotion_mode": _param(
            config.gate.promotion_mode,
            type="string",
            enum=list(MODES),
            values_display={mode: MODE_LABELS[mode] for mode in MODES},
            section=PROMOTION_SECTION,
            title="Promotion mode",
            description=f"{config.gate.promotion_mode} unless changed (gate.promotion_mode); each choice says what it "
            "does. require_approval waits under Required actions; force needs a Reason.",
        ),
        # Nullable: Airflow's form requires a value for a Param whose type excludes null, so a plain string
        # would keep the Trigger button disabled until someone typed a reason.
        "reason": _param(
            "",
            type=["null", "string"],
            maxLength=REASON_MAX_LENGTH,
            pattern=NO_CONTROL_PATTERN,
            title="Reason",
            description=f"Why this run; recorded with the decision. At most {REASON_MAX_LENGTH} characters.",
            section=PROMOTION_SECTION,
        ),
    }


#: Trigger forms (defaults and schemas) that Airflow has validated in this process.
_VALIDATED_FORMS: set[str] = set()


def attach_trigger_form(dag: CheckedConfDAG, params: dict[str, Param]) -> None:
    """Give ``dag`` its trigger form, validated by Airflow once per distinct form rather than once per DAG.

    A scheduled DAG's Params are validated when assigned (every default must satisfy its JSON Schema),
    which is most of the cost of building a city's DAG. Every city's form has the same defaults and
    schemas (only the descriptions, which quote the city's configured values, differ), so the first DAG
    of a parse takes Airflow's own path and the others receive the already-proven form.
    """
    key = json.dumps([(name, p.value, p.schema) for name, p in params.items()], sort_keys=True, default=str)
    if key in _VALIDATED_FORMS:
        object.__setattr__(dag, "params", ParamsDict(params))
        return
    dag.params = params  # type: ignore[assignment]  # attrs converts the dict to ParamsDict and validates it
    _VALIDATED_FORMS.add(key)
