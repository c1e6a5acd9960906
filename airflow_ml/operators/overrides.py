"""A run's trigger overrides: typed, bounded by the very models that bound the YAML, parsed once.

The trigger form (:func:`airflow_ml.factory.params.trigger_params`) shows these fields; a run's conf may set
any of them and nothing else. Each numeric override shares its bounds and type with the template field it
overrides (``num_leaves`` with ``training.params.num_leaves``...): the form's JSON Schema comes from the
model's ``model_json_schema()`` and a value is validated by the model itself, so the two never disagree.

Plain Python (pydantic and the template models): the DAG files, the api-server plugin and the tasks import it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import functools
import re
from collections.abc import Collection, Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ValidationError

from airflow_ml.ml.gate.modes import MODES  # pure Python: cheap at parse time
from airflow_ml.templates.training_spec import LightGBMParams, SearchSpec, TrainingSpec

#: Each numeric override and the template field (model, field name) whose type and bounds it shares.
NUMBERS: dict[str, tuple[type[BaseModel], str]] = {
    "num_boost_round": (TrainingSpec, "num_boost_round"),
    "learning_rate": (LightGBMParams, "learning_rate"),
    "num_leaves": (LightGBMParams, "num_leaves"),
    "min_data_in_leaf": (LightGBMParams, "min_data_in_leaf"),
    "search_trials": (SearchSpec, "trials"),
    "search_timeout_minutes": (SearchSpec, "timeout_minutes"),
}
#: The overrides that are LightGBM parameters.
LGBM_PARAMS = ("learning_rate", "num_leaves", "min_data_in_leaf")
#: JSON Schema keywords that bound a number; the form copies these from the model.
BOUND_KEYWORDS = ("type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
REASON_MAX_LENGTH = 500
#: Control characters but tab, newline and carriage return: a NUL cannot be stored in PostgreSQL text (the
#: reason goes into MLflow tags), and the others only hide what a reason says.
_CONTROL = "\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f"
#: The ``reason`` Param's pattern (JSON Schema, checked by Airflow when a run is created).
NO_CONTROL_PATTERN = f"^[^{_CONTROL}]*$"
_CONTROL_CHAR = re.compile(f"[{_CONTROL}]")
#: The days a run's window may name, and its longest span: a date past them is a typo (9999-12-31), and the
#: snapshot would walk every day of the span to list the missing ones.
WINDOW_FIRST_DAY = dt.date(1970, 1, 1)
WINDOW_LAST_DAY = dt.date(2200, 12, 31)
WINDOW_MAX_DAYS = 36_600
#: The window Params' pattern (JSON Schema has no date bounds): a YYYY-MM-DD date of the years 1970 to 2200.
WINDOW_DATE_PATTERN = "^(19[7-9][0-9]|2[01][0-9][0-9]|2200)-[0-9]{2}-[0-9]{2}$"


class OverrideError(ValueError):
    """A run's conf that the run refuses; ``problems`` holds one line per problem, each naming its fix."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@functools.cache
def number_schema(name: str) -> dict[str, Any]:
    """The JSON Schema type and bounds of numeric override ``name``, from the template model's own field.

    Pydantic writes the schema of that one field (its type and its ``Field`` bounds), as it would inside
    ``model_json_schema()``; generating the whole model's schema instead cost a task process about 15 ms.

    Raises:
        KeyError: when ``name`` is not a numeric override.
    """
    from pydantic import TypeAdapter

    model, field = NUMBERS[name]
    info = model.model_fields[field]
    annotated: Any = Annotated[(info.annotation, *info.metadata)]  # a type built at run time
    schema = TypeAdapter(annotated).json_schema()
    # An optional template field (``int | None``) carries its type and bounds in the non-null branch.
    for branch in schema.get("anyOf", []):
        if branch.get("type") != "null":
            schema = branch
    return {key: schema[key] for key in BOUND_KEYWORDS if key in schema}


@dataclasses.dataclass(frozen=True)
class RunOverrides:
    """What one run overrides; None keeps the template's value.

    Build it with :meth:`from_params` from the task's ``context["params"]`` (the DAG's Params merged with the
    run's conf, validated by Airflow): nothing is a string standing in for a number, and ``"None"`` is not
    "no override".
    """

    num_boost_round: int | None = None
    learning_rate: float | None = None
    num_leaves: int | None = None
    min_data_in_leaf: int | None = None
    search_trials: int | None = None
    search_timeout_minutes: float | None = None
    window_start: dt.date | None = None
    window_end: dt.date | None = None
    promotion_mode: str = "auto"
    reason: str = ""

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> RunOverrides:
        """Parse the overrides out of a run's params; keys that are not overrides are left to the caller.

        Raises:
            OverrideError: naming each value that is of the wrong type or out of its bounds, else each
                conflict (``force`` without a reason, a window that ends before it starts).
        """
        values, problems = _parse(params)
        if problems:
            raise OverrideError(problems)
        overrides = cls(**values)
        problems = overrides.conflicts()
        if problems:
            raise OverrideError(problems)
        return overrides

    def conflicts(self) -> list[str]:
        """What the overrides ask that cannot be done together, one line each with its fix."""
        problems = []
        if self.promotion_mode == "force" and not self.reason.strip():
            problems.append(
                "promotion_mode 'force' needs a reason: set 'reason' (it is recorded with the forced promotion)"
            )
        if self.window_start and self.window_end and self.window_start > self.window_end:
            problems.append(
                f"window_start {self.window_start} is after window_end {self.window_end}; swap them or leave one empty"
            )
        elif self.window_start and self.window_end and (self.window_end - self.window_start).days >= WINDOW_MAX_DAYS:
            problems.append(
                f"the window {self.window_start}..{self.window_end} spans "
                f"{(self.window_end - self.window_start).days + 1:,} days, at most {WINDOW_MAX_DAYS:,}; narrow it"
            )
        return problems

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunOverrides:
        """The inverse of :meth:`to_dict`."""
        return cls.from_params(data)

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready (dates as ``YYYY-MM-DD``)."""
        data = dataclasses.asdict(self)
        for name in ("window_start", "window_end"):
            data[name] = data[name].isoformat() if data[name] else None
        return data

    def lgbm_params(self) -> dict[str, int | float]:
        """The LightGBM parameters this run overrides."""
        return {name: getattr(self, name) for name in LGBM_PARAMS if getattr(self, name) is not None}

    @property
    def dry_run(self) -> bool:
        """Whether the run decides and records, and moves no alias."""
        return self.promotion_mode == "dry_run"


#: The names a city DAG's trigger form holds, in the order the form shows them.
FIELDS = tuple(field.name for field in dataclasses.fields(RunOverrides))


def conf_problems(conf: Mapping[str, Any] | None, params: Mapping[str, Any]) -> list[str]:
    """What makes ``conf`` unfit for a run of a DAG whose Params are ``params`` (name to default value).

    A key that is no Param (Airflow keeps it and ignores it) with the closest Param's name, a control character
    in ``reason`` and, when the Params are a city DAG's trigger form, every problem of the typed parse that the
    run's tasks make (:meth:`RunOverrides.from_params`), else the overrides that conflict (``force`` needs a
    reason). The typed parse sees what Airflow's JSON Schema check cannot: ``60.0`` is an integer to Draft 7,
    not to the template's ``int`` field. Every path that creates a run refuses the conf with these.
    """
    if not isinstance(conf, Mapping):
        return []  # None, or not a JSON object: Airflow's own check answers that
    problems = unknown_keys(conf, params)
    if "reason" in params and (control := _control_character(conf.get("reason"))):
        problems.append(control)
    if set(FIELDS) <= set(params):
        values, invalid = _parse({name: conf.get(name, params[name]) for name in FIELDS})
        problems.extend(p for p in invalid if p not in problems)
        if not invalid:
            problems.extend(RunOverrides(**values).conflicts())
    return problems


def param_defaults(params: Any) -> dict[str, Any]:
    """Name to default value of a DAG's Params (Airflow's ``ParamsDict``, SDK or serialized), without validating.

    Reading ``params[name]`` would validate each default, and a required Param (the rollback DAG's ``model``)
    has none that is valid.
    """
    return {name: params.get_param(name).value for name in params}


def unknown_keys(conf: Mapping[str, Any], known: Collection[str]) -> list[str]:
    """One line per key of ``conf`` that is not in ``known``, with a "did you mean" when one is close."""
    problems = []
    for key in conf:
        if key in known:
            continue
        close = difflib.get_close_matches(str(key), list(known), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else f"use one of {sorted(known)}"
        problems.append(f"unknown trigger parameter {key!r}: {hint} (a conf may only set the DAG's Params)")
    return problems


def refusal(dag_id: str, problems: list[str]) -> str:
    """The one message every path that refuses a run's conf gives."""
    return f"the conf of a run of {dag_id} is refused, nothing runs: " + "; ".join(problems)


def _parse(params: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The typed values of the overrides ``params`` sets (None: not set), and the problems of those that fail."""
    problems: list[str] = []
    values: dict[str, Any] = {}
    for name in NUMBERS:
        if params.get(name) is not None:
            values[name] = _number(name, params[name], problems)
    for name in ("window_start", "window_end"):
        if params.get(name) is not None:
            values[name] = _date(name, params[name], problems)
    mode = params.get("promotion_mode")
    if mode is not None:
        if mode not in MODES:
            problems.append(f"promotion_mode {mode!r} is not a mode; use one of {list(MODES)}")
        values["promotion_mode"] = mode
    reason = params.get("reason")
    if reason is not None:
        values["reason"] = _reason(reason, problems)
    return values, problems


def _number(name: str, value: Any, problems: list[str]) -> Any:
    kind = number_schema(name)["type"]
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (kind == "integer" and isinstance(value, float))
    ):
        problems.append(f"{name}: expected {'an integer' if kind == 'integer' else 'a number'}, got {value!r}")
        return None
    model, field = NUMBERS[name]
    try:
        return getattr(model.model_validate({field: value}), field)
    except ValidationError as exc:
        problems.append(f"{name}={value!r}: {exc.errors()[0]['msg']} (the bound of the template's {field})")
        return None


def _date(name: str, value: Any, problems: list[str]) -> dt.date | None:
    if isinstance(value, dt.datetime):
        value = value.date()
    if not isinstance(value, dt.date):
        try:
            value = dt.date.fromisoformat(value)
        except (TypeError, ValueError):
            problems.append(f"{name}: expected a date YYYY-MM-DD, got {_shown(value)}")
            return None
    if not WINDOW_FIRST_DAY <= value <= WINDOW_LAST_DAY:
        problems.append(
            f"{name} {value} is outside {WINDOW_FIRST_DAY}..{WINDOW_LAST_DAY}, the days a window may name; fix the year"
        )
        return None
    return value


def _shown(value: Any) -> str:
    """``repr(value)``, cut to 80 characters: a conf may hold anything."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def _reason(value: Any, problems: list[str]) -> str:
    if not isinstance(value, str):
        problems.append(f"reason: expected text, got {value!r}")
        return ""
    if len(value) > REASON_MAX_LENGTH:
        problems.append(f"reason: {len(value)} characters, at most {REASON_MAX_LENGTH}; shorten it")
    control = _control_character(value)
    if control:
        problems.append(control)
    return value


def _control_character(value: Any) -> str | None:
    found = _CONTROL_CHAR.search(value) if isinstance(value, str) else None
    if found is None:
        return None
    return f"reason holds a control character (U+{ord(found.group()):04X} at position {found.start()}); remove it"
