"""The kill switch: mark a city's model as not to be served, with who and why, and lift it again.

The mark is a set of tags on the city's registered model (``<template>.<city>``), the one place that batch
scoring, the HTTP server, the fleet view and the CLI all read: batch scoring skips a disabled city with a log
line, the server answers 503 with the reason, the fleet view shows it. Disabling moves no alias: the champion
stays what it was, and ``enable`` serves it again. Every change is appended to a bounded history tag, so the
record says who disabled and who enabled the city, when and why.

:func:`serving_route` is the one answer batch scoring and the HTTP server give to "may this city be served, and by
which version": the kill switch on the city's model, its champion or its fallback parent's
(:func:`airflow_ml.ml.fallback.which_model_serves`), the kill switch on that parent, and a champion trained for
another city refused with its lineage problem named.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from airflow_ml.exceptions import AirflowMLError, ForeignChampion

if TYPE_CHECKING:
    from mlflow import MlflowClient

DISABLED = "airflow_ml.disabled"
DISABLED_REASON = "airflow_ml.disabled.reason"
DISABLED_BY = "airflow_ml.disabled.by"
DISABLED_AT = "airflow_ml.disabled.at"
HISTORY = "airflow_ml.kill_switch.history"
#: How many changes the history tag keeps (the oldest go first); MLflow tag values hold 5,000 characters.
HISTORY_LENGTH = 20
#: The longest reason kept, so that the history always fits one tag value.
MAX_REASON = 200


class KillSwitchError(AirflowMLError, ValueError):
    """A disable or enable that cannot be done (no reason, nobody named)."""


@dataclass(frozen=True)
class Disabled:
    """A city's model that must not be served: why, by whom, since when (ISO 8601, UTC)."""

    model_name: str
    reason: str
    by: str
    at: str

    def sentence(self) -> str:
        """One line for a log, an HTTP 503 or the fleet view."""
        return (
            f"{self.model_name} is disabled by the kill switch since {self.at} by {self.by}: {self.reason} "
            f"(`airflow-ml enable` serves it again)"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        return asdict(self)


@dataclass(frozen=True)
class ServingRoute:
    """What serves a city now, the kill switch applied: one model version, or why nothing does.

    Attributes:
        model_name: The registered model that serves (the city's own, or its parent's), or None.
        version: Its champion version, or None.
        source: ``own`` or ``parent`` when a version serves; ``none`` (no model yet), ``disabled`` (the kill
            switch, on the city's model or on the parent that would serve it) or ``foreign`` (the champion that
            would serve was trained for another city: refused) when nothing does.
        reason: One sentence a person can act on: which_model_serves' reason, the kill switch's mark, or the
            lineage problem and its fix.
        disabled: The kill switch's mark that stops the city, or None.
    """

    model_name: str | None
    version: str | None
    source: Literal["own", "parent", "none", "disabled", "foreign"]
    reason: str
    disabled: Disabled | None = None

    @property
    def serves(self) -> bool:
        """Whether a version serves the city."""
        return self.model_name is not None and self.version is not None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (the mark as :meth:`Disabled.to_dict`)."""
        return {
            "model_name": self.model_name,
            "version": self.version,
            "source": self.source,
            "reason": self.reason,
            "disabled": self.disabled.to_dict() if self.disabled else None,
        }


def serving_route(client: MlflowClient, city_model: str, parent_model: str | None) -> ServingRoute:
    """What serves the city whose registered model is ``city_model``: read its kill switch first, then its
    champion or its fallback parent's (``parent_model``), then the parent's kill switch when the parent serves.

    A champion (the city's or the parent's) trained for another city or template is refused, never served:
    the answer's ``source`` is ``foreign`` and its reason names the lineage problem and the fix.
    """
    from airflow_ml.ml.fallback import which_model_serves  # MLflow: imported when it runs

    mark = disabled(client, city_model)
    if mark is not None:
        return ServingRoute(None, None, "disabled", mark.sentence(), mark)
    try:
        serving = which_model_serves(client, city_model, parent_model)
    except ForeignChampion as exc:
        return ServingRoute(None, None, "foreign", f"{city_model} is not served, its champion is refused: {exc}")
    if serving.source == "none" or serving.model_name is None or serving.version is None:
        return ServingRoute(None, None, "none", serving.reason)
    if serving.source == "parent":
        parent_mark = disabled(client, serving.model_name)
        if parent_mark is not None:
            reason = f"{city_model} is served by its parent, but {parent_mark.sentence()}"
            return ServingRoute(None, None, "disabled", reason, parent_mark)
    return ServingRoute(serving.model_name, serving.version, serving.source, serving.reason)


def disabled(client: MlflowClient, model_name: str) -> Disabled | None:
    """The kill switch's mark on ``model_name``, or None when the model may be served (or does not exist)."""
    tags = registered_model_tags(client, model_name)
    return None if tags is None else from_tags(model_name, tags)


def registered_model_tags(client: MlflowClient, model_name: str) -> dict[str, str] | None:
    """The tags of registered model ``model_name`` (where the kill switch and a demotion are kept), or None when
    it is not registered."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

    try:
        return dict(client.get_registered_model(model_name).tags or {})
    except MlflowException as exc:
        if exc.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            return None
        raise


def from_tags(model_name: str, tags: dict[str, str]) -> Disabled | None:
    """Read the mark from a registered model's tags (for callers that already hold them, as the fleet view)."""
    if tags.get(DISABLED) != "true":
        return None
    return Disabled(
        model_name=model_name,
        reason=tags.get(DISABLED_REASON, ""),
        by=tags.get(DISABLED_BY, ""),
        at=tags.get(DISABLED_AT, ""),
    )


def disable(client: MlflowClient, model_name: str, *, reason: str, by: str) -> Disabled:
    """Mark ``model_name`` as not to be served; the registered model is created when missing.

    Disabling a disabled model replaces its reason (and records the change).

    Raises:
        KillSwitchError: without a reason or a name of who disables it.
    """
    reason, by = _required(reason, "reason"), _required(by, "by")
    from airflow_ml.ml.model_registry import ensure_registered  # pandas and MLflow: imported when it runs

    ensure_registered(client, model_name)
    mark = Disabled(model_name=model_name, reason=reason, by=by, at=_now())
    for key, value in ((DISABLED_REASON, mark.reason), (DISABLED_BY, mark.by), (DISABLED_AT, mark.at)):
        client.set_registered_model_tag(model_name, key, value)
    client.set_registered_model_tag(model_name, DISABLED, "true")  # last: the mark is whole once it is seen
    _append_history(client, model_name, {"action": "disable", "by": by, "at": mark.at, "reason": reason})
    return mark


def enable(client: MlflowClient, model_name: str, *, by: str, reason: str = "") -> Disabled | None:
    """Lift the mark from ``model_name``; returns the mark it lifted, or None when the model was not disabled.

    Raises:
        KillSwitchError: without a name of who enables it.
    """
    by = _required(by, "by")
    previous = disabled(client, model_name)
    if previous is None:
        return None
    client.delete_registered_model_tag(model_name, DISABLED)  # first: the model serves again from here on
    for key in (DISABLED_REASON, DISABLED_BY, DISABLED_AT):
        client.delete_registered_model_tag(model_name, key)
    _append_history(client, model_name, {"action": "enable", "by": by, "at": _now(), "reason": reason.strip()})
    return previous


def history(client: MlflowClient, model_name: str) -> list[dict[str, str]]:
    """The kill switch's recorded changes of ``model_name``, oldest first (at most :data:`HISTORY_LENGTH`)."""
    tags = client.get_registered_model(model_name).tags or {}
    return _parse_history(tags.get(HISTORY))


def _required(value: str, field: str) -> str:
    text = " ".join(str(value or "").split())
    if not text:
        fix = "--reason '<why it must not serve>'" if field == "reason" else "--by '<your name>'"
        raise KillSwitchError(f"the kill switch needs {field!r}, so that the record says it; pass {fix}")
    return text[:MAX_REASON]


def _append_history(client: MlflowClient, model_name: str, entry: dict[str, str]) -> None:
    tags = client.get_registered_model(model_name).tags or {}
    entries = [*_parse_history(tags.get(HISTORY)), entry][-HISTORY_LENGTH:]
    client.set_registered_model_tag(model_name, HISTORY, json.dumps(entries, separators=(",", ":")))


def _parse_history(text: str | None) -> list[dict[str, str]]:
    try:
        entries = json.loads(text or "[]")
    except ValueError:  # a hand-edited tag: start a new history rather than fail a disable
        return []
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
