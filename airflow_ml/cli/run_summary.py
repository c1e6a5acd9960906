"""One row per run, read back from what the run left beside its snapshot: the demo's table, ``run`` and ``status``.

A run leaves ``manifest.json`` (rows, days, when), ``validation.json`` (the verdict), ``drift.json``,
``decision.json`` (the gate's record) and, after a promotion, ``health.json`` in its snapshot folder
``<data root>/snapshots/<template>/<city>/<run>/``; a run its snapshot task refused leaves only
``refusal.json`` there (when, the window asked, why). Reading them needs no scheduler and no Airflow database,
and imports no Airflow.
"""

from __future__ import annotations

import json
from dataclasses import astuple, dataclass
from typing import Any

from airflow_ml.data.refusal import REFUSAL, read_refusal
from airflow_ml.data.snapshot import MANIFEST, Manifest, manifest_from_dict, safe_segment, snapshot_location
from airflow_ml.data.storage import filesystem, storage_errors
from airflow_ml.exceptions import DataError
from airflow_ml.ml.steps.xcom_payloads import DECISION_FILE, DRIFT_FILE, HEALTH_FILE, VERDICT_FILE
from airflow_ml.validation.runner import headline

NO_RUN = "no run yet"
HEADER = ("city", "batch", "run", "rows", "validation", "challenger", "champion", "version", "decision", "reason")
LIVE_HEADER = ("city", "monitor", "window", "live", "holdout", "labels", "supervisor", "champion", "reason")


@dataclass(frozen=True)
class RunSummary:
    """One row of the table: a city's run."""

    city: str
    batch: str
    state: str
    rows: str
    validation: str
    challenger: str
    champion: str
    version: str
    decision: str
    reason: str


@dataclass(frozen=True)
class LiveSummary:
    """One row of the live table: what a monitor run found for a city's champion, and what the supervisor did."""

    city: str
    state: str
    window: str
    live: str
    holdout: str
    labels: str
    supervisor: str
    champion: str
    reason: str


def summarize(data_root: str, template: str, city: str, run_id: str, batch: str, state: str) -> RunSummary:
    """Read back what the run ``run_id`` of DAG ``<template>.<city>`` left beside its snapshot."""
    folder = snapshot_location(f"{data_root}/snapshots", template, city, run_id)
    return summarize_folder(folder, city=city, batch=batch, state=state)


def summarize_folder(folder: str, *, city: str, batch: str | None = None, state: str | None = None) -> RunSummary:
    """The row of the run whose snapshot folder is ``folder``.

    Args:
        folder: The snapshot folder (a path or URL).
        city: The city, for the first column.
        batch: What the second column says; by default the first and last day of the snapshot's data.
        state: The run's state as Airflow knows it; by default what the files say (see :func:`state_from_files`).
    """
    manifest = _manifest(folder)
    refused = read_refusal(folder) if manifest is None else None
    if refused is not None:  # stopped at its snapshot: nothing else was written
        return RunSummary(
            city=city,
            batch=batch if batch is not None else refused.window,
            state=state if state is not None else "failed",
            rows="-",
            validation="-",
            challenger="-",
            champion="-",
            version="-",
            decision="not reached",
            reason=refused.reason,
        )
    verdict = _read(folder, VERDICT_FILE)
    drift = _read(folder, DRIFT_FILE)
    decision = _read(folder, DECISION_FILE)
    health = _read(folder, HEALTH_FILE)
    failures = verdict.get("failures") or []
    validation = verdict.get("status", "-")
    if failures:
        validation += f" ({len(failures)} failed)"
    reason = decision.get("reason") or (headline(verdict) if failures else "")
    if not reason and drift.get("status") == "failed":
        reason = str(drift.get("summary") or "drift above an error limit").splitlines()[0]
    return RunSummary(
        city=city,
        batch=batch if batch is not None else _days(manifest),
        state=state if state is not None else state_from_files(verdict, drift, decision, health),
        rows=_rows(manifest),
        validation=validation,
        challenger=_score(decision.get("challenger_score")),
        champion=_score(decision.get("champion_score")),
        version=str(decision.get("challenger_version", "-")),
        decision=decision.get("decision", "not reached"),
        reason=reason or "see the task logs",
    )


def state_from_files(
    verdict: dict[str, Any], drift: dict[str, Any], decision: dict[str, Any], health: dict[str, Any]
) -> str:
    """What the files say of a run, without Airflow: ``failed`` (validation, drift or health), ``decided``
    (the gate recorded its decision) or ``no decision`` (still running, or stopped before the gate)."""
    if verdict.get("status") == "failed":
        return "failed"
    if drift.get("status") == "failed":
        return "failed"
    if health and health.get("passed") is False:
        return "failed"
    return "decided" if decision else "no decision"


def latest_run_folder(data_root: str, template: str, city: str) -> str | None:
    """The snapshot folder of the DAG's latest run, or None before any run.

    Runs are ordered by the ``created_at`` of their manifest, or of their refusal record when the snapshot
    refused the run (see :mod:`airflow_ml.data.refusal`); in a folder holding both, the manifest counts.
    """
    fs, root = filesystem(f"{data_root.rstrip('/')}/snapshots/{safe_segment(template)}/{safe_segment(city)}")
    with storage_errors(root):
        records = [p for p in fs.glob(f"{root}/*/*.json") if p.rsplit("/", 1)[-1] in (MANIFEST, REFUSAL)]
    created: dict[str, str] = {}
    for path in sorted(records, key=lambda p: p.endswith(REFUSAL)):  # manifests first: they win
        folder = path.rsplit("/", 1)[0]
        if folder not in created:
            created[folder] = _created_at(fs.cat_file(path))
    if not created:
        return None
    latest = max(created, key=lambda folder: (created[folder], folder))
    return latest if "://" not in data_root else str(fs.unstrip_protocol(latest))


def latest_summaries(data_root: str, template: str, cities: list[str]) -> list[RunSummary]:
    """One row per city of ``template``: its latest run, or ``no run yet``."""
    rows = []
    for city in cities:
        folder = latest_run_folder(data_root, template, city)
        if folder is None:
            rows.append(RunSummary(city, "-", NO_RUN, "-", "-", "-", "-", "-", "-", ""))
        else:
            rows.append(summarize_folder(folder, city=city))
    return rows


def summarize_live(root: str, template: str, city: str, day: str, state: str) -> LiveSummary:
    """The live row of ``city``: the decision record its monitor run of ``day`` wrote under ``root``.

    Args:
        root: The prediction log's root (``scoring.output`` with ``{data_root}`` filled in).
        template: The template.
        city: The city.
        day: The monitor run's day (``YYYY-MM-DD``): the last day of its newest window.
        state: The monitor task's state as Airflow knows it.
    """
    from airflow_ml.monitoring.monitor_step import decision_location

    record = _read(decision_location(root, template, city), f"{day}.json")
    if not record:
        return LiveSummary(city, state, "-", "-", "-", "-", "not reached", "-", "no decision record: see the task log")
    metric = str(record.get("metric", ""))
    measured = [w for w in record.get("windows", []) if w.get("value") is not None]
    newest = measured[-1] if measured else {}
    live = "-"
    if newest:
        live = f"{metric} {newest['value']:.4f}"
        if newest.get("low") is not None and newest.get("high") is not None:
            live += f" [{newest['low']:.2f}, {newest['high']:.2f}]"
    window = f"{newest['start']}..{newest['end']}" if newest else "-"
    if newest and newest["start"] == newest["end"]:
        window = str(newest["start"])
    rollback = record.get("rollback") or {}
    champion = f"v{record['champion_version']}" if record.get("champion_version") else "-"
    if rollback:
        restored = rollback.get("restored_version")
        champion = f"v{rollback['rolled_back_version']} -> {f'v{restored}' if restored else 'none (fallback)'}"
    return LiveSummary(
        city=city,
        state=state,
        window=window,
        live=live,
        holdout=_score(record.get("holdout_score")),
        labels=f"{newest['labels']:,}" if newest else "0",
        supervisor=str(record.get("status", "-")),
        champion=champion,
        reason=str(record.get("reason") or ""),
    )


def format_table(rows: list[RunSummary], *, batch_header: str = "batch") -> str:
    """A fixed-width text table of the summaries; ``batch_header`` names the second column."""
    return _grid((HEADER[0], batch_header, *HEADER[2:]), [astuple(r) for r in rows])


def format_live_table(rows: list[LiveSummary]) -> str:
    """A fixed-width text table of the live rows (the monitor's newest window per city)."""
    return _grid(LIVE_HEADER, [astuple(r) for r in rows])


def _grid(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    """Columns padded to their widest cell; the last one (a sentence) is not padded."""
    cells = [header, *rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header) - 1)]
    lines = []
    for index, row in enumerate(cells):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])
        if index == 0:
            lines.append("  ".join("-" * width for width in widths) + "  " + "-" * 6)
    return "\n".join(lines)


def _read(folder: str, name: str) -> dict[str, Any]:
    fs, path = filesystem(folder)
    try:
        with storage_errors(folder):
            data: dict[str, Any] = json.loads(fs.cat_file(f"{path}/{name}"))
    except FileNotFoundError:
        return {}
    return data


def _created_at(text: bytes) -> str:
    try:
        data = json.loads(text)
    except ValueError:
        return ""
    return str(data.get("created_at", "")) if isinstance(data, dict) else ""


def _manifest(folder: str) -> Manifest | None:
    """The snapshot's manifest, or None when it has none (or one that is no manifest)."""
    data = _read(folder, MANIFEST)
    try:
        return manifest_from_dict(data, folder) if data else None
    except DataError:  # not a manifest this version of airflow-ml can read
        return None


def _days(manifest: Manifest | None) -> str:
    days = sorted(manifest.partitions) if manifest is not None else []
    if not days:
        return "-"
    return days[0] if len(days) == 1 else f"{days[0]}..{days[-1]}"


def _rows(manifest: Manifest | None) -> str:
    """The snapshot's rows, with those its row filters dropped: ``9,362 (-120 filtered)``."""
    if manifest is None:
        return "-"
    dropped = manifest.filtered_rows
    return f"{manifest.row_count:,} (-{dropped:,} filtered)" if dropped else f"{manifest.row_count:,}"


def _score(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "-"
