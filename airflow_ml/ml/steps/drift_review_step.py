"""The nightly drift review of a template: every city's latest p-values adjusted together, stored back per city.

A city's drift task adjusts its own p-values with the family's newest ones when it runs; the cities that ran
after it are not in that adjustment. Once a night this step adjusts the newest p-values of the template's
family together (Benjamini-Yekutieli at ``q``; the family is defined once, in :mod:`airflow_ml.ml.drift_family`:
per configured city recent enough, its newest snapshot's p-values), writes the members for the next runs
(``family.json``) and stores the q-values where a person looks: in
``review.json`` beside the histories, as ``fleet_review`` in each city's ``drift.json`` (beside its newest
snapshot) and as ``drift_q_fleet.<column>.<statistic>`` metrics and tags on its newest drift run in MLflow.
The review decides nothing: a run stopped (or went on) on its own run-time q-values.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from airflow_ml.data.json_text import dumps_indented, with_item
from airflow_ml.data.snapshot import write_json, write_text
from airflow_ml.data.storage import StorageOptions, filesystem, storage_errors
from airflow_ml.exceptions import AirflowMLError
from airflow_ml.ml import drift_history as store
from airflow_ml.ml.drift_calibration import adjust
from airflow_ml.ml.drift_family import COLUMNS as FAMILY_COLUMNS
from airflow_ml.ml.drift_family import Family, write_family
from airflow_ml.ml.steps.step_settings import DriftReviewSettings
from airflow_ml.ml.steps.xcom_payloads import DRIFT_FILE

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

REVIEW_FILE = "review.json"
_BATCH = 1000  # MLflow's most metrics per log_batch call
#: The columns of the family's rows the review reads.
_READ = ("city", "column", "kind", "statistic", "p_value", "snapshot_hash", "snapshot_uri", "drift_run_id")
#: The columns of ``fleet_latest`` the review reads: the family's and its own, each once.
COLUMNS = tuple(dict.fromkeys((*FAMILY_COLUMNS, *_READ)))


def review_fleet(
    client: MlflowClient | None,
    settings: DriftReviewSettings,
    *,
    data_root: str,
    storage_options: StorageOptions | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Adjust the newest p-values of the family of ``settings.template`` together and store the q-values.

    Args:
        client: The MLflow client for the drift runs' metrics (None: MLflow is not written).
        settings: The template, its cities, ``q`` and ``min_flagged``.
        data_root: The data root holding ``drift_history/<template>/``.
        storage_options: Options of the data root's filesystem.
        now: The review's moment (default: the clock); it decides which cities are recent enough.

    Returns:
        The review: ``template``, ``reviewed_at``, ``q``, ``tests`` (p-values adjusted), ``cities`` (per city
        its snapshot, ``flagged`` features with their q-values, ``label_flagged``, ``prediction_flagged``,
        ``would_stop`` and every q-value), ``without_history`` (cities with no p-value yet), ``left_out``
        (cities with a history outside the family, and why) and ``problems`` (records not updated).
    """
    now = now or dt.datetime.now(dt.UTC)
    reviewed_at = now.isoformat()
    family = Family(members=tuple(sorted(settings.cities)), max_age_days=settings.max_age_days, source="review")
    everyone = store.fleet_latest(data_root, settings.template, columns=COLUMNS, storage_options=storage_options)
    fleet = family.tests(everyone, now=now)
    qs = adjust(fleet["p_value"].tolist())
    cities = _entries(fleet, qs, settings)
    review = {
        "template": settings.template,
        "reviewed_at": reviewed_at,
        "q": settings.q,
        "min_flagged": settings.min_flagged,
        "tests": len(fleet),
        "cities": cities,
        "without_history": sorted(set(settings.cities) - set(cities)),
        "left_out": family.left_out(everyone, now=now),
    }
    header = {"reviewed_at": reviewed_at, "q": settings.q, "tests": len(fleet)}
    problems: list[str] = []
    for city, entry in cities.items():
        problems += _store(client, city, {**header, **entry}, storage_options)
    review["problems"] = problems
    folder = store.history_folder(data_root, settings.template)
    store.ensure_folder(folder, storage_options=storage_options)
    write_json(folder, REVIEW_FILE, review, storage_options=storage_options)
    write_family(
        data_root,
        settings.template,
        settings.cities,
        max_age_days=settings.max_age_days,
        listed_at=reviewed_at,
        storage_options=storage_options,
    )
    return review


def _entries(fleet: pd.DataFrame, qs: np.ndarray, settings: DriftReviewSettings) -> dict[str, dict[str, Any]]:
    """Per city of the family's rows (``Family.tests``: sorted by city, so each city's rows are one run), its entry.

    A city at a time, its q-values zipped from whole columns, and only the flagged tests one by one: a loop over
    the 40,000 tests of a 1,000-city fleet, a dict per test, was most of the review's own work besides the records.
    """
    if fleet.empty:
        return {}
    city = fleet["city"].astype(str).to_numpy()
    names = (fleet["column"].astype(str) + "." + fleet["statistic"].astype(str)).tolist()
    q_values = qs.tolist()
    starts = np.flatnonzero(np.r_[True, city[1:] != city[:-1]])
    ends = [*starts[1:].tolist(), len(city)]
    cities: dict[str, dict[str, Any]] = {}
    for start, end, row in zip(starts.tolist(), ends, _rows(fleet.iloc[starts]), strict=True):
        entry = cities[str(row["city"])] = _entry(row)
        entry["q_values"] = dict(zip(names[start:end], q_values[start:end], strict=True))
    kinds, columns = fleet["kind"].to_numpy(), fleet["column"].to_numpy()
    for i in np.flatnonzero(qs <= settings.q).tolist():
        entry, q = cities[city[i]], q_values[i]
        if kinds[i] == "label":
            entry["label_flagged"] = True
        elif kinds[i] == "prediction":  # as the run's stop rule: the predictions stop a run on their own
            entry["prediction_flagged"] = True
        else:
            entry["flagged"][columns[i]] = min(q, entry["flagged"].get(columns[i], 1.0))
    for entry in cities.values():
        alone = entry["label_flagged"] or entry["prediction_flagged"]
        entry["would_stop"] = alone or len(entry["flagged"]) >= settings.min_flagged
    return cities


def _rows(fleet: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of ``fleet`` as dicts of the columns the review reads, column by column (``tolist``) rather than
    ``to_dict("records")``, which boxes every value of every column one by one."""
    columns = [fleet[name].tolist() for name in _READ]
    return [dict(zip(_READ, values, strict=True)) for values in zip(*columns, strict=True)]


def _entry(row: dict[str, Any]) -> dict[str, Any]:
    run_id = row.get("drift_run_id")
    return {
        "snapshot_hash": row["snapshot_hash"],
        "snapshot_uri": row["snapshot_uri"],
        "drift_run_id": run_id if isinstance(run_id, str) and run_id else None,
        "flagged": {},
        "label_flagged": False,
        "prediction_flagged": False,
        "q_values": {},
    }


def _reviewed(record: bytes, entry: dict[str, Any]) -> str:
    """The text of the city's ``drift.json`` with ``fleet_review`` set to ``entry``.

    Set in the text as the drift task's ``write_json`` laid it out (its calibration, most of its 15 kB, is not
    decoded and encoded again: that was most of a 1,000-city review's time), else decoded and written anew.
    """
    parsed = json.loads(record)  # a corrupt record is refused here as ever (decoding runs in C: cheap)
    if isinstance(parsed, dict) and record.startswith(b'{\n "'):
        decoded = record.decode("utf-8")
        text = with_item(decoded, "fleet_review", entry)
        # A key json reads as fleet_review but spelt otherwise (escaped) would be set twice: rewrite instead.
        if text is not None and ("fleet_review" in parsed) == ('\n "fleet_review": ' in decoded):
            return text
    return dumps_indented({**parsed, "fleet_review": entry})


def _store(
    client: MlflowClient | None, city: str, entry: dict[str, Any], storage_options: StorageOptions | None
) -> list[str]:
    """Put ``entry`` into the city's ``drift.json`` and its drift run; the problems met (none: both written)."""
    problems = []
    uri = entry["snapshot_uri"]
    fs, folder = filesystem(uri, storage_options)
    try:
        with storage_errors(uri, storage_options):
            record = fs.cat_file(f"{folder}/{DRIFT_FILE}")
        write_text(uri, DRIFT_FILE, _reviewed(record, entry), storage_options=storage_options)
    except (OSError, ValueError, AirflowMLError) as exc:  # AirflowMLError: refused credentials, a failed write
        problems.append(f"{city}: {DRIFT_FILE} of {uri} not updated ({exc})")
    run_id = entry.get("drift_run_id")
    if client is None or not run_id:
        return problems
    # Imported here: a review with no client (a deployment that keeps MLflow out of it) never pays mlflow's import.
    from mlflow.entities import Metric, RunTag
    from mlflow.exceptions import MlflowException

    now = int(time.time() * 1000)
    metrics = [Metric(f"drift_q_fleet.{name}", q, now, 0) for name, q in entry["q_values"].items()]
    flagged = ",".join(f"{c}={q:.3g}" for c, q in sorted(entry["flagged"].items()))
    tags = [
        RunTag("airflow_ml.drift_review_at", entry["reviewed_at"]),
        RunTag("airflow_ml.drift_review_flagged", flagged[:5000]),
        RunTag("airflow_ml.drift_review_would_stop", str(entry["would_stop"]).lower()),
    ]
    try:
        for start in range(0, len(metrics), _BATCH):
            client.log_batch(run_id, metrics=metrics[start : start + _BATCH])
        client.log_batch(run_id, tags=tags)
    except MlflowException as exc:
        problems.append(f"{city}: drift run {run_id} not updated ({exc.message})")
    return problems
