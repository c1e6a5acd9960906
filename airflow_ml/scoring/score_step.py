"""The batch scoring step of ``<template>.<city>.score``: resolve the serving version once, score the day, log it.

Two calls, one per task of the scoring DAG:

- :func:`resolve` reads the registry once, at the start of the run: what serves the city
  (:func:`~airflow_ml.ml.kill_switch.serving_route`, as the HTTP server: the kill switch on the city's model,
  its own champion else its fallback parent's, the kill switch on that parent) and the ``challenger`` to shadow.
  It answers with one concrete version (:class:`~airflow_ml.ml.steps.xcom_payloads.ResolvedModelPayload`), or
  why nothing is scored: ``disabled`` (the kill switch) or ``no_model`` (a city without a model yet), neither a
  failure (one city that cannot be scored must not turn the fleet's nightly red; the task is skipped and says
  why), or ``refused`` (a champion trained for another city: the task fails, naming the lineage problem).
- :func:`score` scores the rows of the run's day (the source's ``date=<day>`` partition) with that version, and
  never reads the alias again: a champion that moves mid-run cannot mix two versions in one partition. The rows
  go to the prediction log (:func:`~airflow_ml.data.prediction_log.write_predictions`), stamped with the version,
  the run id, the hash of the files read and the run's logical date (not the clock), so that a rerun of
  the day writes the same bytes. A missing partition is an error naming the URI and the fix (the day's data has
  not landed: a retry, or a rerun once it has, scores it); an empty one too.

Plain Python, no Airflow: the operators call it inside ``execute``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from airflow_ml.data.partitions import list_partitions, read_files
from airflow_ml.data.prediction_log import LogColumns, ScoringContext, log_frame, partition_location, write_log_frame
from airflow_ml.data.snapshot import resolve_source
from airflow_ml.data.storage import StorageOptions
from airflow_ml.exceptions import AirflowMLError, DataError
from airflow_ml.ml import kill_switch
from airflow_ml.ml.model_cache import Loader, NoServableModel, load_pyfunc, resolve_alias
from airflow_ml.ml.model_registry import CHALLENGER
from airflow_ml.ml.signature_check import SignatureMismatch, check_signature
from airflow_ml.ml.steps.step_settings import ScoringSettings
from airflow_ml.ml.steps.xcom_payloads import ResolvedModelPayload, ScoringPayload

if TYPE_CHECKING:
    from mlflow import MlflowClient

#: ``status`` of a resolution that scores.
SERVE = "serve"
#: ``status`` of a city the kill switch disabled.
DISABLED = "disabled"
#: ``status`` of a city that no model serves yet.
NO_MODEL = "no_model"
#: ``status`` of a city whose champion (or its parent's) was trained for another city: refused, never scored.
REFUSED = "refused"


class MissingPartition(DataError):
    """The source has no partition for the day to score."""


class ScoringDisabled(AirflowMLError):
    """The kill switch was set after the run resolved its version (a retried or cleared score task)."""


def resolve(client: MlflowClient, settings: ScoringSettings) -> ResolvedModelPayload:
    """Which version scores this run (read once), the challenger to shadow, or why nothing is scored.

    What serves is :func:`~airflow_ml.ml.kill_switch.serving_route`'s answer, the one the HTTP server uses:
    ``disabled`` and ``no_model`` score nothing (the task is skipped), ``refused`` neither (a champion trained
    for another city: the task fails, naming the lineage problem and its fix).
    """
    route = kill_switch.serving_route(client, settings.model_name, settings.parent_model)
    if not route.serves or route.model_name is None or route.version is None:
        status = {"disabled": DISABLED, "foreign": REFUSED}.get(route.source, NO_MODEL)
        reason = route.reason if route.source in ("disabled", "foreign") else f"{settings.model_name}: {route.reason}"
        return _not_scored(status, reason)
    challenger = _challenger(client, settings, route.model_name, route.version)
    return {
        "status": SERVE,
        "reason": f"{settings.model_name}: {route.reason}",
        "model_name": route.model_name,
        "version": route.version,
        "source": route.source,
        "challenger_name": challenger[0] if challenger else None,
        "challenger_version": challenger[1] if challenger else None,
    }


def _not_scored(status: str, reason: str) -> ResolvedModelPayload:
    return {
        "status": status,
        "reason": reason,
        "model_name": None,
        "version": None,
        "source": "none",
        "challenger_name": None,
        "challenger_version": None,
    }


def _challenger(client: MlflowClient, settings: ScoringSettings, name: str, version: str) -> tuple[str, str] | None:
    """The city's ``challenger`` (name, version) when shadow scoring is on and it is not the serving version."""
    if not settings.shadow:
        return None
    try:
        found = resolve_alias(client, settings.model_name, CHALLENGER)
    except NoServableModel:
        return None
    if (found.name, found.version) == (name, version):
        return None
    return found.name, found.version


@dataclass(frozen=True)
class Scored:
    """What :func:`score` did: its payload, and the rows logged (for the prediction table)."""

    payload: ScoringPayload
    frame: pd.DataFrame
    context: ScoringContext

    def logged_rows(self) -> pd.DataFrame:
        """The rows as the prediction log holds them (:func:`~airflow_ml.data.prediction_log.log_frame`)."""
        return self.frame


def read_day(
    settings: ScoringSettings, day: dt.date, *, data_root: str, storage_options: StorageOptions | None = None
) -> tuple[pd.DataFrame, str, str]:
    """The rows of the source's ``date=<day>`` partition, its URI and the input's hash.

    The hash is the SHA-256 of the partition's files as stored, fed as they are read: for each file, in name
    order, ``<name>:<size>:`` and its bytes. The same files give the same hash (a rerun writes the same bytes);
    a file re-uploaded with other bytes gives another, even when it holds the same rows.

    Raises:
        MissingPartition: when the source has no partition for ``day``, naming its URI and the fix.
        DataError: for a missing source, an empty partition or an unreadable file, naming the path.
    """
    source, partitions = _partitions(settings, data_root, storage_options)
    where = f"{source.rstrip('/')}/date={day.isoformat()}"
    if day not in partitions:
        known = sorted(partitions)
        raise MissingPartition(
            f"scoring.source of {settings.template}.{settings.city} has no partition {where!r} (its partitions run "
            f"from {known[0]} to {known[-1]}): the day's rows to score have not landed; land them there "
            f"(date=YYYY-MM-DD/*.{settings.data_format}) and clear the score task, or check scoring.source"
        )
    # A CSV's time column is text: read it as the date-times parquet holds (a key over it makes the same ids).
    dates = (settings.time_column,) if settings.time_column else ()
    digest = hashlib.sha256()
    rows = read_files(
        source, partitions[day], settings.data_format, parse_dates=dates, storage_options=storage_options, digest=digest
    )
    if rows.empty:
        raise DataError(f"partition {where!r} holds no rows; re-upload the day's files, or delete the empty partition")
    return rows, where, digest.hexdigest()


def newest_day(settings: ScoringSettings, *, data_root: str, storage_options: StorageOptions | None = None) -> dt.date:
    """The day of the source's newest ``date=`` partition (what a data Asset event that names no day scores).

    Raises:
        DataError: for a missing or empty source, naming the setting and the path.
    """
    return max(_partitions(settings, data_root, storage_options)[1])


def _partitions(
    settings: ScoringSettings, data_root: str, storage_options: StorageOptions | None
) -> tuple[str, dict[dt.date, list[str]]]:
    """The source's URI and its partitions; an error names the setting it comes from."""
    source = resolve_source(settings.source, data_root=data_root, city=settings.city)
    try:
        partitions = list_partitions(source, settings.data_format, storage_options=storage_options, data_root=data_root)
    except DataError as exc:  # it names the path; say which setting it comes from
        raise type(exc)(f"scoring.source of {settings.template}.{settings.city}: {exc}") from exc
    return source, partitions


def score(
    client: MlflowClient,
    settings: ScoringSettings,
    resolved: ResolvedModelPayload,
    *,
    day: dt.date,
    run_id: str,
    scored_at: dt.datetime,
    data_root: str,
    storage_options: StorageOptions | None = None,
    loader: Loader = load_pyfunc,
) -> Scored:
    """Score the day's rows with the resolved version (and the challenger into the shadow log); log them.

    Args:
        client: The registry the models load from.
        settings: The city's scoring settings.
        resolved: :func:`resolve`'s answer, read at the start of the run; its version is used as it is.
        day: The day whose partition is scored (the run's logical date).
        run_id: The scoring run, stamped on every row.
        scored_at: The run's logical date (time-zone aware), stamped on every row: a rerun writes the same bytes.
        data_root: Fills ``{data_root}`` in the source and the output.
        storage_options: Options of the source's and the output's filesystems, by protocol.
        loader: How a version is loaded (default :func:`~airflow_ml.ml.model_cache.load_pyfunc`).

    Raises:
        ValueError: when ``resolved`` scores nothing (a disabled city, no model).
        ScoringDisabled: when the kill switch was set on the city's model or the serving one since ``resolved``.
        MissingPartition, DataError: see :func:`read_day`, and rows the log cannot take.
    """
    if resolved["status"] != SERVE or not resolved["model_name"] or not resolved["version"]:
        raise ValueError(f"nothing to score with: {resolved['reason']}")
    # The version stays the one resolved at the start of the run, but a kill switch set since then (a retry, a
    # cleared task) stops the run: only the switch's tags are read again, never the alias.
    for name in dict.fromkeys((settings.model_name, resolved["model_name"])):
        mark = kill_switch.disabled(client, name)
        if mark is not None:
            raise ScoringDisabled(mark.sentence())
    rows, where, input_hash = read_day(settings, day, data_root=data_root, storage_options=storage_options)
    features = list(settings.features)
    missing = [name for name in features if name not in rows.columns]
    if missing:
        raise DataError(
            f"partition {where!r} lacks the model's feature column(s) {missing} (columns: {list(rows.columns)}); "
            "fix the source's files, or scoring.source"
        )
    columns = LogColumns(
        key=tuple(settings.key_columns),
        content=() if settings.key_columns else tuple(features),
        keep=tuple(settings.keep_columns),
    )
    context = ScoringContext(
        template=settings.template,
        city=settings.city,
        model_name=resolved["model_name"],
        model_version=resolved["version"],
        scoring_run_id=run_id,
        input_hash=input_hash,
        scored_at=scored_at,
    )
    root = settings.output_root(data_root)
    model = loader(client, context.model_name, context.model_version)
    inputs, widened = _fitted(model, rows[features], what=f"partition {where!r}", model_label=_label(context))
    predictions = _predict(model, inputs)
    try:
        frame = log_frame(rows, predictions, context, columns)
    except DataError as exc:
        where_to = partition_location(root, context.template, context.city, day)
        raise DataError(f"nothing was written to {where_to!r}: {exc}") from exc
    logged = write_log_frame(root, day, frame, context, storage_options=storage_options)
    shadow_uri = shadow_refused = None
    if resolved["challenger_name"] and resolved["challenger_version"]:
        shadow = dataclasses.replace(
            context, model_name=resolved["challenger_name"], model_version=resolved["challenger_version"]
        )
        challenger = loader(client, shadow.model_name, shadow.model_version)
        try:  # a challenger that cannot read the rows is not shadowed; the champion's log stands
            shadow_inputs, _ = _fitted(
                challenger, rows[features], what=f"partition {where!r}", model_label=_label(shadow)
            )
        except SignatureMismatch as exc:
            shadow_refused = str(exc)
        else:
            # The same rows, so the same ids: only the prediction and the model that made it differ.
            shadow_frame = frame.assign(
                prediction=pd.Series(_predict(challenger, shadow_inputs)).to_numpy(),
                model_name=shadow.model_name,
                model_version=str(shadow.model_version),
            )
            logged_shadow = write_log_frame(
                root, day, shadow_frame, shadow, shadow=True, storage_options=storage_options
            )
            shadow_uri = logged_shadow.uri
    payload: ScoringPayload = {
        "status": "scored",
        "reason": resolved["reason"],
        "day": day.isoformat(),
        "model_name": context.model_name,
        "model_version": context.model_version,
        "source": resolved["source"],
        "uri": logged.uri,
        "row_count": logged.row_count,
        "input_hash": context.input_hash,
        "shadow_uri": shadow_uri,
        "shadow_version": resolved["challenger_version"] if shadow_uri else None,
        "shadow_refused": shadow_refused,
        "widened_columns": list(widened),
        "stored_rows": None,
    }
    return Scored(payload=payload, frame=frame, context=context)


def _label(context: ScoringContext) -> str:
    return f"{context.model_name} v{context.model_version}"


def _fitted(model: Any, rows: pd.DataFrame, *, what: str, model_label: str) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """The rows as the model reads them: checked against its signature, integer columns it reads as ``double``
    widened here (and named) rather than converted unseen by MLflow.

    Raises:
        SignatureMismatch: listing every column that does not fit.
    """
    metadata = getattr(model, "metadata", None)
    schema = metadata.get_input_schema() if metadata is not None else None
    fit = check_signature(schema, rows, what=what, model=model_label)
    if fit.widened:
        rows = rows.astype(dict.fromkeys(fit.widened, "float64"))
    return rows, fit.widened


def _predict(model: Any, rows: pd.DataFrame) -> Any:
    predictions = model.predict(rows)
    return predictions.iloc[:, 0] if isinstance(predictions, pd.DataFrame) else predictions
