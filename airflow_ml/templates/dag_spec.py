"""How a city's DAG runs in Airflow: its schedule (five-field cron or a preset), retries, timeouts, notifiers."""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from airflow_ml.exceptions import show_value
from airflow_ml.templates.base import Strict


class NotifierSpec(Strict):
    """A failure notification, from a closed list of kinds (YAML never names a Python class)."""

    kind: Literal["smtp"] = Field(description="smtp: an e-mail through an Airflow 'smtp' connection.")
    to: list[str] = Field(min_length=1, description="Recipients.")
    conn_id: str = Field(default="smtp_default", min_length=1)


class DagSpec(Strict):
    """How the city's DAG runs in Airflow."""

    schedule: str | list[str] | None = Field(
        default="@daily",
        description="A five-field cron expression (minute hour day-of-month month day-of-week), a preset such as "
        "'@daily', a list of cron expressions (runs at each), or null.",
    )
    on_new_data: bool = Field(
        default=False,
        description="Also run when the city's data Asset is updated (data-aware scheduling); with a null "
        "schedule, run only then.",
    )
    owner: str = Field(default="airflow-ml", min_length=1)
    retries: int = Field(default=1, ge=0, le=20, description="Retries of a failed task, 0 to 20.")
    retry_delay_minutes: float = Field(default=5.0, ge=0, le=24 * 60, description="0 to 1440.")
    task_timeout_minutes: float | None = Field(
        default=None, gt=0, le=7 * 24 * 60, description="Per task; above 0, at most 10080 (a week)."
    )
    run_timeout_minutes: float | None = Field(
        default=None, gt=0, le=7 * 24 * 60, description="Per DAG run; above 0, at most 10080 (a week)."
    )
    on_failure: list[NotifierSpec] = Field(default_factory=list, description="Who hears of a failed task.")
    tags: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list,
        description="Extra DAG tags. The factory's own (airflow-ml, airflow-ml:*, city:*, model:*) are reserved.",
    )

    @field_validator("tags")
    @classmethod
    def _no_reserved_tags(cls, value: list[str]) -> list[str]:
        for tag in value:
            if reserved_tag(tag):
                raise ValueError(
                    f"the tag {show_value(tag)} is the factory's own (it sets 'airflow-ml', 'airflow-ml:<role>', "
                    "'city:<city>' and 'model:<name>' itself, and the fleet view reads them); "
                    "rename it, e.g. without the prefix"
                )
        return value

    @field_validator("schedule")
    @classmethod
    def _valid_schedule(cls, value: str | list[str] | None) -> str | list[str] | None:
        if value is None:
            return None
        if isinstance(value, list):
            if not value or any(v.startswith("@") for v in value):
                raise ValueError(
                    "a list schedule holds one or more cron expressions, e.g. ['0 2 * * 1-5', '0 6 * * 6,0']"
                )
            return [check_cron(v) for v in value]
        return check_schedule(value)


#: The tag every DAG the factory builds carries; ``airflow-ml:<role>`` tags mark a DAG's role.
FACTORY_TAG = "airflow-ml"
#: A city's retraining DAG: the fleet view lists these (airflow_ml.fleet.metadata.RETRAIN_TAG).
RETRAIN_TAG = f"{FACTORY_TAG}:retrain"
#: Tag prefixes only the factory sets: a DAG's city and its registered model.
RESERVED_TAG_PREFIXES = (f"{FACTORY_TAG}:", "city:", "model:")


def reserved_tag(tag: str) -> bool:
    """Whether ``tag`` is one the factory sets itself (a user tag of that shape would mislead the fleet view)."""
    return tag == FACTORY_TAG or tag.startswith(RESERVED_TAG_PREFIXES)


#: The schedule presets a DAG may name.
PRESETS = frozenset({"@once", "@continuous", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly"})


def check_schedule(value: str) -> str:
    """Return a valid preset (``@daily``) or five-field cron expression, or raise ValueError naming the fix."""
    if value.startswith("@"):
        if value not in PRESETS:
            raise ValueError(
                f"unknown schedule preset {show_value(value)}; use one of {sorted(PRESETS)} or a cron expression"
            )
        return value
    return check_cron(value)


def check_cron(value: str) -> str:
    """Return a valid five-field cron expression, or raise ValueError naming the field at fault and the fix."""
    fields = value.split()
    if len(fields) != len(_CRON_FIELDS):
        beyond = " (a sixth field would be seconds, a seventh a year: neither is supported)"
        raise ValueError(
            f"{show_value(value)} has {len(fields)} field(s); a cron expression has five: minute, hour, day of "
            f"month, month and day of week, e.g. '0 2 * * *'{beyond if len(fields) > len(_CRON_FIELDS) else ''}"
        )
    expanded = _expanded(value)
    if expanded is not None:
        if not _may_fire(expanded) and not _fires(value):  # croniter has the last word, as in the timetable
            on = f" and day of week {show_value(fields[4])}" if fields[4] not in ("*", "?") else ""
            raise ValueError(
                f"{show_value(value)} never runs: no date has day of month {show_value(fields[2])} in month "
                f"{show_value(fields[3])}{on}; choose "
                "days that the months have (February has 28, or 29 in leap years; April, June, September and "
                "November 30)"
            )
        return value
    for index, (name, allowed) in enumerate(_CRON_FIELDS):
        alone = " ".join(field if i == index else "*" for i, field in enumerate(fields))
        if not _valid_cron(alone):
            raise ValueError(
                f"{show_value(value)}: the {name} field {show_value(fields[index])} is out of range or malformed; "
                f"the {name} takes "
                f"{allowed}, as a value, a range a-b, a step */n or a list a,b"
            )
    raise ValueError(f"{show_value(value)} is not a valid cron expression; e.g. '0 2 * * *'")  # pragma: no cover


#: The five fields of a cron expression and the values each takes.
_CRON_FIELDS = (
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day of month", "1-31"),
    ("month", "1-12 or JAN-DEC"),
    ("day of week", "0-7 or SUN-SAT (0 and 7 are Sunday)"),
)


#: The most days each month has (February 29: a leap year comes).
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


@functools.lru_cache(maxsize=1024)
def _expanded(expression: str) -> tuple[list[Any], ...] | None:
    """The values each field takes, as croniter expands them; None when croniter refuses the expression."""
    # A fleet shares a few schedules: parse each expression once per process, not once per city.
    from croniter import CroniterError, croniter  # small, pure Python; imported here to keep module import light

    try:
        return tuple(croniter.expand(expression)[0])
    except CroniterError:
        return None


def _valid_cron(expression: str) -> bool:
    return _expanded(expression) is not None


def _may_fire(expanded: tuple[list[Any], ...]) -> bool:
    """False when no date may match: a day of month that none of the months has (only then is croniter asked).

    Cheap, from the expansion that validation made anyway; a day of week other than '*' is left to croniter.
    """
    days, months, weekdays = expanded[2], expanded[3], expanded[4]
    if "*" in days or "*" in months or "l" in days:
        return True
    if weekdays != ["*"]:
        return False
    return any(isinstance(day, int) and day <= _MONTH_DAYS[month - 1] for month in months for day in days)


@functools.lru_cache(maxsize=1024)
def _fires(expression: str) -> bool:
    """Whether a valid cron expression has a next run at all ('0 0 31 2 *' is valid field by field, and never runs).

    Searched from a fixed start, as croniter (and so Airflow's timetables) does: a leap day is found.
    """
    from datetime import datetime

    from croniter import CroniterError, croniter

    try:
        croniter(expression, datetime(2001, 1, 1)).get_next(datetime)
    except CroniterError:
        return False
    return True
