"""What Airflow's metadata database says about the fleet: its city DAGs, their last runs, their drift verdicts.

Used by the api-server only (the fleet view plugin), so Airflow's models are imported inside the
functions: the plugin module stays cheap for the other processes that load plugins. Each function is
one query for the whole fleet, however many cities.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from airflow_ml.ml.steps.xcom_payloads import DRIFT_VERDICT_KEY  # pushed by the drift task, failed checks included

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement
    from sqlalchemy.orm import Session

#: Between a display name's parts: airflow_ml.factory.display_names.SEPARATOR (importing the factory would load
#: every operator in each Airflow process that loads plugins).
DISPLAY_SEPARATOR = " · "
#: A city's retraining DAG, and only it, carries this tag (airflow_ml.templates.dag_spec.RETRAIN_TAG; a user's
#: ``dag.tags`` may not hold it): the city's scoring, monitor or drift DAGs are no rows of their own.
RETRAIN_TAG = "airflow-ml:retrain"
CITY_TAG_PREFIX = "city:"  # and ``city:<city>`` (reserved too)
#: ``model:<name>``: a city's registered model when the template's ``registry.name_pattern`` does not name it as
#: its DAG (airflow_ml.factory.builder).
MODEL_TAG_PREFIX = "model:"
DRIFT_TASK = "drift"
#: The drift status of a drift task that failed without recording a verdict (a crash, not drift).
CRASHED = "error"
APPROVAL_TASK = "approve"  # airflow_ml.factory.builder.APPROVAL_TASK_ID: the human-in-the-loop task
#: The states of a task that waits for a person: ``awaiting_input`` from Airflow 3.3, ``deferred`` before.
WAITING_FOR_A_PERSON = ("awaiting_input", "deferred")


@dataclass(frozen=True)
class CityDag:
    """A city's retraining DAG, as the DAG processor wrote it to the metadata database."""

    dag_id: str
    city: str
    paused: bool = False
    #: The DAG's ``dag_display_name`` (the city's ``display_name`` first), or None when it has none.
    display_name: str | None = None
    #: The registered model, when the template's ``registry.name_pattern`` names it otherwise than the DAG.
    model: str | None = None

    @property
    def model_name(self) -> str:
        """The city's registered model: its ``model:`` tag, else the DAG id (``<template>.<city>``)."""
        return self.model or self.dag_id

    @property
    def title(self) -> str:
        """What heads the city's row: its display name's city part (``São Paulo``), else the city id."""
        if not self.display_name or self.display_name == self.dag_id:
            return self.city
        return self.display_name.removesuffix(f"{DISPLAY_SEPARATOR}{self.template}") or self.city

    @property
    def template(self) -> str:
        """The template part of the DAG id ``<template>.<city>``."""
        return self.dag_id.removesuffix(f".{self.city}")


@dataclass(frozen=True)
class LastRun:
    """The newest run of a DAG."""

    run_id: str
    state: str | None
    run_type: str | None
    run_after: dt.datetime | None
    start_date: dt.datetime | None
    end_date: dt.datetime | None


@dataclass(frozen=True)
class DriftVerdict:
    """The drift verdict of the newest run whose drift task finished (succeeded or failed)."""

    run_id: str
    status: str
    detail: str | None = None
    champion_version: str | None = None
    #: The features flagged after the fleet-wide adjustment, with their q-values.
    flagged: dict[str, float] = field(default_factory=dict)


def city_dags(session: Session, readable: Collection[str] | None = None) -> list[CityDag]:
    """The factory's city DAGs that are not stale, sorted by DAG id; only ``readable`` ones when given."""
    from airflow.models.dag import DagModel, DagTag
    from sqlalchemy import select

    retraining = select(DagTag.dag_id).where(DagTag.name == RETRAIN_TAG)
    # A hybrid property: its SQL expression is the display name, else the DAG id (typed as a str for mypy).
    display = cast("ColumnElement[str]", DagModel.dag_display_name)
    query = (
        select(DagModel.dag_id, DagTag.name, DagModel.is_paused, display)
        .join(DagTag, DagTag.dag_id == DagModel.dag_id)
        .where(
            DagTag.name.startswith(CITY_TAG_PREFIX) | DagTag.name.startswith(MODEL_TAG_PREFIX),
            DagModel.dag_id.in_(retraining),
            DagModel.is_stale.is_(False),
        )
        .order_by(DagModel.dag_id)
    )
    if readable is not None:
        query = query.where(DagModel.dag_id.in_(list(readable)))
    cities: dict[str, str] = {}
    models: dict[str, str] = {}
    paused_ids: set[str] = set()
    shown: dict[str, str | None] = {}
    for dag_id, tag, paused, display_name in session.execute(query):
        if tag.startswith(MODEL_TAG_PREFIX):
            models[dag_id] = tag.removeprefix(MODEL_TAG_PREFIX)
        else:
            cities.setdefault(dag_id, tag.removeprefix(CITY_TAG_PREFIX))
        if paused:
            paused_ids.add(dag_id)
        shown[dag_id] = display_name
    return [
        CityDag(d, city, d in paused_ids, display_name=shown.get(d), model=models.get(d)) for d, city in cities.items()
    ]


def last_runs(session: Session, dag_ids: Collection[str]) -> dict[str, LastRun]:
    """The newest run (latest ``run_after``) of each DAG in ``dag_ids`` that has run."""
    from airflow.models.dagrun import DagRun
    from sqlalchemy import func, select

    if not dag_ids:
        return {}
    rank = func.row_number().over(partition_by=DagRun.dag_id, order_by=(DagRun.run_after.desc(), DagRun.id.desc()))
    ranked = (
        select(
            DagRun.dag_id,
            DagRun.run_id,
            DagRun.state,
            DagRun.run_type,
            DagRun.run_after,
            DagRun.start_date,
            DagRun.end_date,
            rank.label("rank"),
        )
        .where(DagRun.dag_id.in_(list(dag_ids)))
        .subquery()
    )
    rows = session.execute(select(ranked).where(ranked.c.rank == 1))
    return {
        row.dag_id: LastRun(
            run_id=row.run_id,
            state=_text(row.state),
            run_type=_text(row.run_type),
            run_after=row.run_after,
            start_date=row.start_date,
            end_date=row.end_date,
        )
        for row in rows
    }


def pending_approvals(session: Session, dag_ids: Collection[str]) -> dict[str, str]:
    """The run of each DAG whose ``approve`` task waits for a person, the newest when several do.

    Airflow 3.3 parks a human-in-the-loop task in ``awaiting_input``; earlier versions deferred it.
    """
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from sqlalchemy import and_, select

    if not dag_ids:
        return {}
    query = (
        select(TaskInstance.dag_id, TaskInstance.run_id)
        .join(DagRun, and_(DagRun.dag_id == TaskInstance.dag_id, DagRun.run_id == TaskInstance.run_id))
        .where(
            TaskInstance.dag_id.in_(list(dag_ids)),
            TaskInstance.task_id == APPROVAL_TASK,
            TaskInstance.state.in_(WAITING_FOR_A_PERSON),
        )
        .order_by(DagRun.run_after)
    )
    return {dag_id: run_id for dag_id, run_id in session.execute(query)}  # the newest run wins


def drift_verdicts(session: Session, dag_ids: Collection[str]) -> dict[str, DriftVerdict]:
    """The drift verdict of each DAG's newest run whose ``drift`` task succeeded or failed.

    The verdict is the ``drift_verdict`` XCom (or, for runs older than that XCom, the task's return
    value); a failed task without either (it crashed) is reported as ``error``, not as drift.
    """
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from sqlalchemy import and_, func, select

    if not dag_ids:
        return {}
    rank = func.row_number().over(
        partition_by=TaskInstance.dag_id, order_by=(DagRun.run_after.desc(), DagRun.id.desc())
    )
    ranked = (
        select(TaskInstance.dag_id, TaskInstance.run_id, TaskInstance.state, rank.label("rank"))
        .join(DagRun, and_(DagRun.dag_id == TaskInstance.dag_id, DagRun.run_id == TaskInstance.run_id))
        .where(
            TaskInstance.dag_id.in_(list(dag_ids)),
            TaskInstance.task_id == DRIFT_TASK,
            TaskInstance.state.in_(["success", "failed"]),
        )
        .subquery()
    )
    query = (
        select(ranked.c.dag_id, ranked.c.run_id, ranked.c.state, XComModel.key, XComModel.value)
        .outerjoin(
            XComModel,
            and_(
                XComModel.dag_id == ranked.c.dag_id,
                XComModel.run_id == ranked.c.run_id,
                XComModel.task_id == DRIFT_TASK,
                XComModel.map_index == -1,
                XComModel.key.in_([DRIFT_VERDICT_KEY, "return_value"]),
            ),
        )
        .where(ranked.c.rank == 1)
    )
    found: dict[str, dict[str, Any]] = {}
    for dag_id, run_id, state, key, value in session.execute(query):
        entry = found.setdefault(dag_id, {"run_id": run_id, "state": _text(state)})
        if key is not None:
            entry[key] = XComModel.deserialize_value(_Stored(value))
    return {dag_id: verdict_from(entry) for dag_id, entry in found.items()}


def verdict_from(entry: dict[str, Any]) -> DriftVerdict:
    """A verdict from ``run_id``, the task ``state`` and the XComs found (``drift_verdict``, ``return_value``)."""
    record = entry.get(DRIFT_VERDICT_KEY) or entry.get("return_value")
    if not isinstance(record, dict) or not record.get("status"):
        if entry["state"] == "failed":
            # A crash (no verdict recorded) says nothing of the data: not counted as drifting.
            return DriftVerdict(entry["run_id"], CRASHED, "the drift task failed without a verdict; its log says why")
        return DriftVerdict(entry["run_id"], "unknown", "the drift task recorded no verdict")
    detail = record.get("detail") or record.get("reason") or record.get("summary")
    version = record.get("champion_version")
    flagged = record.get("flagged")
    if flagged is None:  # a return value (the whole record) rather than the short verdict
        flagged = (record.get("calibration") or {}).get("flagged")
    return DriftVerdict(
        entry["run_id"],
        str(record["status"]),
        str(detail) if detail else None,
        str(version) if version is not None else None,
        {str(k): float(v) for k, v in (flagged or {}).items()} if isinstance(flagged, dict) else {},
    )


@dataclass(frozen=True)
class _Stored:
    """What :meth:`XComModel.deserialize_value` reads: an object with the stored ``value``."""

    value: Any


def _text(value: Any) -> str | None:
    """An enum's value (``DagRunState.SUCCESS`` → ``success``) or the text itself."""
    if value is None:
        return None
    return str(getattr(value, "value", value))
