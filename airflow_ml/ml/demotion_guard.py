"""No flapping: after a demotion, the city's next promotion needs more evidence than the gate's ``auto``.

A demotion (the supervisor's rollback of a champion gone bad) is recorded on the city's registered model
(``<template>.<city>``) as ``airflow_ml.demoted.*`` tags, the place the gate already reads. While it is
active, a run in promotion mode ``auto`` whose gate would promote does not move ``champion``; instead, as
the demotion ``requires``:

- ``require_approval``: the run waits for a person (the ``approve`` task), as in ``require_approval`` mode;
- ``shadow``: the challenger is kept in shadow (as in ``shadow`` mode) for the monitor's live comparison;
- ``cooldown``: the promotion is refused until the demotion's ``until``.

A demotion ends at ``until`` (None: only when cleared), or earlier when a promotion with more evidence
clears it: an approved one, a shadow promotion decided on live rows, or a forced one (a person with a
reason). The gate's decision record names the rule that applied (:meth:`Demotion.sentence`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from airflow_ml.exceptions import AirflowMLError
from airflow_ml.ml.kill_switch import registered_model_tags

if TYPE_CHECKING:
    from mlflow import MlflowClient

DEMOTED = "airflow_ml.demoted"
DEMOTED_VERSION = "airflow_ml.demoted.version"
DEMOTED_REASON = "airflow_ml.demoted.reason"
DEMOTED_REQUIRES = "airflow_ml.demoted.requires"
DEMOTED_UNTIL = "airflow_ml.demoted.until"
DEMOTED_AT = "airflow_ml.demoted.at"
_DETAIL_TAGS = (DEMOTED_VERSION, DEMOTED_REASON, DEMOTED_REQUIRES, DEMOTED_UNTIL, DEMOTED_AT)
#: What a promotion needs while a demotion is active (``monitoring.supervisor.after_demotion`` in YAML).
REQUIREMENTS = ("require_approval", "shadow", "cooldown")
#: The longest reason kept (MLflow tag values hold 5,000 characters; a decision record quotes it).
MAX_REASON = 500


class DemotionError(AirflowMLError, ValueError):
    """A demotion that cannot be recorded (an unknown requirement, a cool-down without an end, no reason)."""


@dataclass(frozen=True)
class Demotion:
    """A demotion of a city's model: which version, why, what the next promotion needs, until when.

    ``until`` and ``at`` are ISO 8601 (UTC); ``until`` is None when only a promotion with more evidence ends it.
    """

    model_name: str
    version: str
    reason: str
    requires: str
    until: str | None
    at: str

    def active(self, now: dt.datetime | None = None) -> bool:
        """Whether the demotion still applies at ``now`` (default: the current time)."""
        if self.until is None:
            return True
        return (now or _now()) < _parse_time(self.until, "until")

    def sentence(self) -> str:
        """The rule as the decision record names it, e.g. ``after_demotion: require_approval until 2026-12-06,
        demoted v3 on 2026-11-29 (live rmse 30% above holdout)``."""
        shown = self.until.removesuffix("T00:00:00+00:00") if self.until else None
        until = f" until {shown}" if shown else " until a promotion with more evidence clears it"
        return f"after_demotion: {self.requires}{until}, demoted v{self.version} on {self.at[:10]} ({self.reason})"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        return asdict(self)


def record_demotion(
    client: MlflowClient,
    model_name: str,
    *,
    version: str,
    reason: str,
    requires: str,
    until: dt.datetime | dt.date | str | None,
) -> Demotion:
    """Record that ``version`` of ``model_name`` was demoted, and what its next promotion needs.

    Args:
        client: The MLflow client.
        model_name: The city's registered model.
        version: The version that was demoted.
        reason: Why (the supervisor's reason, quoted in the next decision records).
        requires: One of :data:`REQUIREMENTS`.
        until: When the demotion ends (a date means its midnight UTC); None: only a promotion with more
            evidence ends it. A ``cooldown`` needs it.

    Raises:
        DemotionError: for an unknown ``requires``, a ``cooldown`` without ``until``, an ``until`` that is
            no date, or an empty reason.
    """
    if requires not in REQUIREMENTS:
        raise DemotionError(
            f"demotion of {model_name}: requires {requires!r} is not a rule; use one of {list(REQUIREMENTS)} "
            "(monitoring.supervisor.after_demotion)"
        )
    text = " ".join(str(reason or "").split())[:MAX_REASON]
    if not text:
        raise DemotionError(f"demotion of {model_name}: a reason is needed, so that the next decision can quote it")
    if requires == "cooldown" and until is None:
        raise DemotionError(
            f"demotion of {model_name}: a cooldown needs 'until' (the supervisor's cooldown_days after now)"
        )
    end = None if until is None else _iso(until)
    demotion = Demotion(model_name, str(version), text, requires, end, _now().isoformat(timespec="seconds"))
    values = {
        DEMOTED_VERSION: demotion.version,
        DEMOTED_REASON: demotion.reason,
        DEMOTED_REQUIRES: demotion.requires,
        DEMOTED_UNTIL: demotion.until or "",
        DEMOTED_AT: demotion.at,
    }
    for key, value in values.items():
        client.set_registered_model_tag(model_name, key, value)
    client.set_registered_model_tag(model_name, DEMOTED, "true")  # last: the record is whole once it is seen
    return demotion


def demotion(client: MlflowClient, model_name: str) -> Demotion | None:
    """The recorded demotion of ``model_name`` (active or past its end), or None (none, or no such model)."""
    tags = registered_model_tags(client, model_name)
    return None if tags is None else from_tags(model_name, tags)


def active_demotion(client: MlflowClient, model_name: str, now: dt.datetime | None = None) -> Demotion | None:
    """The demotion of ``model_name`` that still applies at ``now``, or None."""
    found = demotion(client, model_name)
    return found if found is not None and found.active(now) else None


def from_tags(model_name: str, tags: dict[str, str]) -> Demotion | None:
    """Read the demotion from a registered model's tags (for callers that already hold them)."""
    if tags.get(DEMOTED) != "true":
        return None
    return Demotion(
        model_name=model_name,
        version=tags.get(DEMOTED_VERSION, "?"),
        reason=tags.get(DEMOTED_REASON, ""),
        requires=tags.get(DEMOTED_REQUIRES, "require_approval"),
        until=tags.get(DEMOTED_UNTIL) or None,
        at=tags.get(DEMOTED_AT, ""),
    )


def clear_demotion(client: MlflowClient, model_name: str) -> Demotion | None:
    """End the demotion of ``model_name`` (a promotion with more evidence happened); returns what it cleared."""
    found = demotion(client, model_name)
    if found is None:
        return None
    client.delete_registered_model_tag(model_name, DEMOTED)  # first: no half-cleared record applies
    for key in _DETAIL_TAGS:
        client.delete_registered_model_tag(model_name, key)
    return found


def _iso(value: dt.datetime | dt.date | str) -> str:
    if isinstance(value, str):
        value = _parse_time(value, "until")
    if not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time(), tzinfo=dt.UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat(timespec="seconds")


def _parse_time(text: str, field: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise DemotionError(f"demotion {field} {text!r} is not an ISO date or time, e.g. 2026-12-06") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
