"""Hierarchical fallback: which model serves a city, and why.

A city whose run has too little data does not train; its registered model records that (tags
``airflow_ml.data.*``). What serves the city is then, in order: its own ``champion``; else its parent's
``champion`` (the group's or the template's global model, trained on the union of its members' data);
else nothing yet. :func:`which_model_serves` answers with the model, the version and the reason.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any, Literal

from mlflow import MlflowClient
from mlflow.entities.model_registry import RegisteredModel
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

from airflow_ml.ml.lineage import this_citys_champion
from airflow_ml.ml.model_registry import CHAMPION, ensure_registered

#: Tags of a city's registered model: the data status of its latest run that checked it.
DATA_STATUS = "airflow_ml.data.status"
DATA_ROWS = "airflow_ml.data.rows"
DATA_MIN_ROWS = "airflow_ml.data.min_rows"
DATA_RUN = "airflow_ml.data.run_id"
DATA_AT = "airflow_ml.data.checked_at"
PARENT = "airflow_ml.parent_model"
TOO_LITTLE = "too_little_data"
ENOUGH = "enough_data"


@dataclass(frozen=True)
class Serving:
    """The answer to "which model serves this city, and why".

    Attributes:
        city_model: The city's registered model.
        source: ``own`` (the city's champion), ``parent`` (the parent's champion) or ``none``.
        model_name: The registered model that serves, or None.
        version: Its champion version, or None.
        reason: One sentence a person can act on.
        data: The data status the city's latest run recorded (``status``, ``rows``, ``min_rows``, ``run_id``).
    """

    city_model: str
    source: Literal["own", "parent", "none"]
    model_name: str | None
    version: str | None
    reason: str
    data: dict[str, str]

    @property
    def model_uri(self) -> str | None:
        """``models:/<name>@champion`` for a serving client, or None when nothing serves."""
        return f"models:/{self.model_name}@{CHAMPION}" if self.model_name else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form, with the model URI."""
        return {**asdict(self), "model_uri": self.model_uri}


def record_data_status(
    client: MlflowClient,
    city_model: str,
    *,
    rows: int,
    min_rows: int,
    run_id: str,
    parent_model: str | None,
) -> bool:
    """Record on the city's registered model whether this run had enough rows to train; return whether it had.

    The registered model is created when missing, so a city that never trained still says why.
    """
    enough = rows >= min_rows
    ensure_registered(client, city_model)
    tags = {
        DATA_STATUS: ENOUGH if enough else TOO_LITTLE,
        DATA_ROWS: str(rows),
        DATA_MIN_ROWS: str(min_rows),
        DATA_RUN: run_id,
        DATA_AT: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        PARENT: parent_model or "",
    }
    for key, value in tags.items():
        client.set_registered_model_tag(city_model, key, value)
    return enough


def which_model_serves(client: MlflowClient, city_model: str, parent_model: str | None) -> Serving:
    """Which model serves the city whose registered model is ``city_model``, and why.

    Args:
        client: The registry.
        city_model: The city's registered model (``<template>.<city>``).
        parent_model: Its fallback parent (``<template>.global`` or ``<template>.group.<group>``), or None.

    Raises:
        ForeignChampion: when the city's champion, or the parent's, was trained for another city, group or
            template (its lineage tags say so): it serves nobody here until its alias is fixed.
    """
    model = _registered(client, city_model)
    data = _data_status(model)
    status = _status_sentence(data)
    own = this_citys_champion(client, city_model) if model is not None else None
    if own is not None:
        return Serving(
            city_model, "own", city_model, str(own.version), f"its own champion v{own.version} serves it{status}", data
        )
    why = "it has no champion of its own" if model is not None else "it has no registered model yet"
    if data.get("status") == TOO_LITTLE:
        why = (
            f"its data is too thin for a model of its own (run {data.get('run_id')!r} had {data['rows']} rows "
            f"< min_rows {data['min_rows']})"
        )
    if parent_model is None:
        reason = f"no model serves it: {why}, and it has no fallback parent (fallback.parent is 'none')"
        return Serving(city_model, "none", None, None, reason, data)
    parent = this_citys_champion(client, parent_model)
    if parent is None:
        return Serving(
            city_model,
            "none",
            None,
            None,
            f"no model serves it: {why}, and its parent {parent_model!r} has no champion yet; run the "
            f"parent's DAG {parent_model!r}",
            data,
        )
    reason = f"its parent {parent_model!r} v{parent.version} serves it: {why}"
    return Serving(city_model, "parent", parent_model, str(parent.version), reason, data)


def _registered(client: MlflowClient, name: str) -> RegisteredModel | None:
    try:
        return client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            return None
        raise


def _data_status(model: RegisteredModel | None) -> dict[str, str]:
    tags = dict(model.tags or {}) if model is not None else {}
    keys = {"status": DATA_STATUS, "rows": DATA_ROWS, "min_rows": DATA_MIN_ROWS, "run_id": DATA_RUN, "at": DATA_AT}
    return {short: tags[tag] for short, tag in keys.items() if tag in tags}


def _status_sentence(data: dict[str, str]) -> str:
    if data.get("status") == TOO_LITTLE:
        return f" (its latest run {data.get('run_id')!r} had {data['rows']} rows < min_rows {data['min_rows']})"
    return ""
