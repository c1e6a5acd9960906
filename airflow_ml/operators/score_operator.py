"""Batch scoring with the city's champion: resolve the version once, score the day into the prediction log."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow.sdk import Context
from airflow.sdk.exceptions import AirflowSkipException

from airflow_ml import settings as runtime
from airflow_ml.hooks.storage_credentials import storage_options
from airflow_ml.operators.base_operator import mlflow_errors
from airflow_ml.operators.resolve_operator import ScoringTask

if TYPE_CHECKING:
    from airflow_ml.ml.steps.step_settings import ScoringSettings
    from airflow_ml.ml.steps.xcom_payloads import ScoringPayload


#: The key of a data Asset event's ``extra`` that names the day whose partition landed (``"YYYY-MM-DD"``).
DAY_KEY = "day"
#: The key of a data Asset event's ``extra`` that names several landed days (a list of ``"YYYY-MM-DD"``).
DAYS_KEY = "days"


def data_event_extra(*days: dt.date) -> dict[str, Any]:
    """The ``extra`` a producer gives the city's data Asset event for the day(s) whose partitions it landed.

    ``outlet_events[data_asset].extra = data_event_extra(day)`` (or the REST API's ``extra``): the scoring DAG's
    run that the event triggers then scores those partitions.
    """
    if not days:
        raise ValueError("name the day (or days) whose partition landed")
    if len(days) == 1:
        return {DAY_KEY: days[0].isoformat()}
    return {DAYS_KEY: sorted({day.isoformat() for day in days})}


@dataclass(frozen=True)
class ScoringDays:
    """Which days' partitions a run scores, and why (for the task's log).

    Attributes:
        days: The days, oldest first; empty: the newest partition of the source (events that name no day).
        why: One sentence: the run's logical date, or the data Asset's events and what they name.
    """

    days: tuple[dt.date, ...]
    why: str


def scoring_days(context: Context) -> ScoringDays:
    """The days a run scores: those its triggering data Asset events name, else the run's logical date.

    A run triggered by the city's data Asset (``scoring.on_new_data``) scores the partitions that landed, named
    by each event's ``extra`` (``day``, or a list ``days``, see :func:`data_event_extra`) or its ``partition_key``
    (``YYYY-MM-DD`` or ``date=YYYY-MM-DD``); events that name none (or only values that are no day) leave the
    choice to the source: its newest partition. A run on the clock, or triggered by hand, scores its logical
    date (or, without one, the day it runs after).
    """
    events = _triggering_events(context)
    if not events:
        when = scoring_time(context)
        what = "logical date" if context.get("logical_date") else "time it runs after (it has no logical date)"
        return ScoringDays((when.date(),), f"the run's {what}, {when.date().isoformat()}")
    days: set[dt.date] = set()
    ignored: list[str] = []
    for event in events:
        found, bad = event_days(getattr(event, "extra", None) or {}, getattr(event, "partition_key", None))
        days.update(found)
        ignored += bad
    skipped = f"; ignored values that are no day: {ignored[:5]}" if ignored else ""
    count = f"{len(events)} event(s) of the data Asset"
    if days:
        return ScoringDays(tuple(sorted(days)), f"{count} name the day(s) that landed{skipped}")
    return ScoringDays(
        (),
        f"{count} name no day (extra {DAY_KEY!r} or {DAYS_KEY!r}, or a partition key){skipped}: scoring the "
        "source's newest partition; have the producer send extra {'day': 'YYYY-MM-DD'}",
    )


def event_days(extra: Mapping[str, Any], partition_key: str | None = None) -> tuple[list[dt.date], list[str]]:
    """The days one data Asset event names, and the values it holds that are no day (as text)."""
    values: list[Any] = []
    if DAY_KEY in extra:
        values.append(extra[DAY_KEY])
    listed = extra.get(DAYS_KEY)
    values += listed if isinstance(listed, list) else [] if listed is None else [listed]
    if partition_key:
        values.append(partition_key.removeprefix("date="))
    days: list[dt.date] = []
    bad: list[str] = []
    for value in values:
        day = _day(value)
        if day is None:
            bad.append(repr(value)[:40])
        else:
            days.append(day)
    return days, bad


def _day(value: Any) -> dt.date | None:
    if not isinstance(value, str) or len(value) != len("YYYY-MM-DD"):
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def _triggering_events(context: Context) -> list[Any]:
    """The run's triggering Asset events, each once (an event reached through an alias is listed twice)."""
    accessor = context.get("triggering_asset_events")
    if not accessor:
        return []
    seen: dict[int, Any] = {}
    for key in accessor:
        for event in accessor[key]:
            seen.setdefault(id(event), event)
    return list(seen.values())


class ScoreOperator(ScoringTask):
    """Score the run's day of the city's rows with one model version, into the prediction log (and its table).

    The day is the run's logical date; a run triggered by the city's data Asset scores the day(s) its events
    name instead, or the source's newest partition when they name none (:func:`scoring_days`), and says in its
    log which day and why. Every row is stamped with the version, the run id, the input's content hash and the
    run's date, so a rerun of the day replaces its partition with the same bytes. With ``settings.store_conn_id``
    the rows are also upserted into the PostgreSQL table by ``prediction_id``
    (:class:`~airflow_ml.hooks.prediction_store.PredictionStoreHook`).

    Args:
        settings: :meth:`ScoringSettings.to_dict <airflow_ml.ml.steps.step_settings.ScoringSettings.to_dict>`.
        resolved: The resolve task's XCom (templated). None: this task resolves the version itself (a
            hand-written DAG with one task), with the same skips.
        data_root: Fills ``{data_root}`` in the source and the output; defaults to ``AIRFLOW_ML_DATA_ROOT``.

    Returns (XCom): :class:`~airflow_ml.ml.steps.xcom_payloads.ScoringPayload`: of the last day scored when
    the events named several (its ``reason`` says so; ``stored_rows`` counts them all).
    """

    template_fields: Sequence[str] = ("resolved",)
    ui_color = "#efe3f7"

    def __init__(self, *, resolved: Any = None, data_root: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.resolved = resolved
        self.data_root = data_root

    def execute(self, context: Context) -> ScoringPayload:
        from airflow_ml.scoring import score_step

        settings = self.scoring_settings
        resolved = self.resolved if self.resolved is not None else self._resolve(context)
        when = scoring_time(context)
        root = runtime.data_root(self.data_root)
        options = storage_options(settings.source, settings.output_root(root), root, aws_conn_id=settings.conn_id)
        chosen = scoring_days(context)
        days = list(chosen.days) or [score_step.newest_day(settings, data_root=root, storage_options=options)]
        self.log.info("scoring %s: %s", ", ".join(d.isoformat() for d in days), chosen.why)
        payload: ScoringPayload | None = None
        stored = 0
        for day in days:
            scored = self._score_day(settings, resolved, day, when, context["run_id"], root, options)
            payload = scored.payload
            if settings.store_conn_id:
                stored += self._store(settings, scored)
        assert payload is not None  # at least one day
        if len(days) > 1:
            payload["reason"] = f"{payload['reason']}; scored {len(days)} days ({chosen.why}), this is the last"
        if settings.store_conn_id:
            payload["stored_rows"] = stored
        return payload

    def _score_day(
        self,
        settings: ScoringSettings,
        resolved: Any,
        day: dt.date,
        when: dt.datetime,
        run_id: str,
        root: str,
        options: Any,
    ) -> Any:
        from airflow_ml.scoring import score_step

        with mlflow_errors(self.hook, f"loading {resolved['model_name']!r} v{resolved['version']}"):
            try:
                scored = score_step.score(
                    self.hook.get_conn(),
                    settings,
                    resolved,
                    day=day,
                    run_id=run_id,
                    scored_at=when,
                    data_root=root,
                    storage_options=options,
                )
            except score_step.ScoringDisabled as stopped:
                self.log.warning("not scoring %s.%s: %s", settings.template, settings.city, stopped)
                raise AirflowSkipException(str(stopped)) from None
        payload = scored.payload
        self.log.info(
            "scored %d row(s) of %s with %s v%s into %s (input hash %s)",
            payload["row_count"],
            payload["day"],
            payload["model_name"],
            payload["model_version"],
            payload["uri"],
            payload["input_hash"],
        )
        if payload["widened_columns"]:
            self.log.info("integer column(s) %s widened to the double the signature reads", payload["widened_columns"])
        if payload["shadow_uri"]:
            self.log.info("shadow: challenger v%s into %s", payload["shadow_version"], payload["shadow_uri"])
        if payload["shadow_refused"]:
            self.log.warning("shadow: the challenger was not scored: %s", payload["shadow_refused"])
        return scored

    def _store(self, settings: ScoringSettings, scored: Any) -> int:
        from airflow_ml.hooks.prediction_store import PredictionStoreHook

        hook = PredictionStoreHook(settings.store_conn_id or "", table=settings.store_table)
        hook.create_table()
        count = hook.upsert(
            scored.logged_rows(), template=settings.template, city=settings.city, day=scored.context.scored_at.date()
        )
        self.log.info("upserted %d row(s) into %s (connection %r)", count, hook.table, settings.store_conn_id)
        return count


def scoring_time(context: Context) -> dt.datetime:
    """The run's logical date (UTC), or for a run without one (an Asset-triggered run) the time it runs after."""
    when = context.get("logical_date") or context["dag_run"].run_after
    return when.astimezone(dt.UTC)
