"""The drift step's calibrated half: this snapshot against the city's previous one, judged on the city's history.

:func:`calibrate_run` compares this run's rows with the city's previous snapshot (the same rows the champion
comparison picks, see :func:`airflow_ml.ml.drift_window.select_rows`), turns each statistic into a p-value
against the city's own history (:mod:`airflow_ml.ml.drift_calibration`) and adjusts it together with the newest
p-values of the other cities of the template's family (:mod:`airflow_ml.ml.drift_family`), as the review does.
:func:`apply_stop_rule` makes the stop rule decide the run's status; :func:`record_history` keeps this
snapshot's rows in the history, replacing those of a rerun.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa

from airflow_ml.data.snapshot import Manifest, load_manifest, read_snapshot
from airflow_ml.data.storage import StorageOptions
from airflow_ml.exceptions import DataError
from airflow_ml.ml import drift_history as store
from airflow_ml.ml.drift import compare as compare_frames
from airflow_ml.ml.drift_calibration import CalibrationRules, calibrate, decide, season_of, with_fleet
from airflow_ml.ml.drift_family import read_family
from airflow_ml.ml.drift_window import select_rows, shared_counts
from airflow_ml.ml.steps.step_settings import DriftSettings

#: How many earlier snapshots are tried when the newest is gone (pruned).
_TRIES = 3


@dataclass
class RunCalibration:
    """What :func:`calibrate_run` found: the record's ``calibration`` section and the rows for the history.

    Attributes:
        rules: The calibration rules.
        history_uri: The city's history file.
        snapshot_hash: This snapshot's content hash.
        calibrated: Today's statistics with their p-values (before the fleet's adjustment).
        past: The city's history without this snapshot's rows.
        fleet_p_values: The newest p-values of the family's other cities.
        base: The section's keys that do not depend on the statistics, and the history rows' common keys.
        frames: The previous snapshot's rows and this snapshot's rows compared with them (None without one).
        shared: The values both sides hold, per column (``""``: the rows; None: unknown), see
            :func:`airflow_ml.ml.drift_window.shared_counts`.
        previous: The previous snapshot's manifest (None without one).
        current_rows: Which of this snapshot's rows ``frames[1]`` holds (a boolean mask; None: all of them).
    """

    rules: CalibrationRules
    history_uri: str
    snapshot_hash: str
    calibrated: list[dict[str, Any]]
    past: pd.DataFrame
    fleet_p_values: list[float]
    base: dict[str, Any]
    frames: tuple[pd.DataFrame, pd.DataFrame] | None = None
    shared: dict[str, int] | None = None
    entries: list[dict[str, Any]] = field(default_factory=list)
    previous: Manifest | None = None
    current_rows: Any = None

    def __post_init__(self) -> None:
        self.entries = with_fleet(self.calibrated, self.fleet_p_values)

    def add(
        self, column: str, kind: str, statistic: str, value: float | None, counts: tuple[int, int] | None = None
    ) -> None:
        """Judge one more of today's statistics (the champion's predictions) and adjust again.

        ``counts`` are the values each side of the comparison held (the previous snapshot's, this one's); both
        sides share the compared rows' overlap (:attr:`shared`).
        """
        reference_n, current_n = counts or (None, None)
        overlap = None if counts is None or self.shared is None else self.shared[""]
        today = [
            {
                "column": column,
                "kind": kind,
                "statistic": statistic,
                "value": value,
                "reference_n": reference_n,
                "current_n": current_n,
                "overlap_n": overlap,
            }
        ]
        self.calibrated += calibrate(today, self.past, self.rules, season=self.base["season"], mode=self.base["mode"])
        self.entries = with_fleet(self.calibrated, self.fleet_p_values)

    @property
    def section(self) -> dict[str, Any]:
        """The record's ``calibration``: rules, previous snapshot, fleet size, flagged features, every column."""
        own = sum(e["p_value"] is not None for e in self.entries)
        return {
            **{k: v for k, v in self.base.items() if k not in ("row", "fleet_cities", "family", "mode")},
            "fleet": {
                "cities": self.base["fleet_cities"],
                "tests": len(self.fleet_p_values) + own,
                "family": self.base["family"],
            },
            "flagged": decide(self.entries, [], self.rules).flagged,
            "columns": [_shown(e) for e in self.entries],
        }

    @property
    def rows(self) -> list[dict[str, Any]]:
        """This snapshot's rows for the history (one per column and statistic)."""
        return [{**self.base["row"], **{k: e.get(k) for k in store.COLUMNS if k in e}} for e in self.entries]

    def metrics(self) -> dict[str, float]:
        """``drift_history.*`` (value since the previous snapshot), ``drift_p.*`` and ``drift_q.*`` per statistic."""
        out = {}
        for entry in self.entries:
            name = f"{entry['column']}.{entry['statistic']}"
            for prefix, key in (("drift_history", "value"), ("drift_p", "p_value"), ("drift_q", "q_value")):
                if entry.get(key) is not None:
                    out[f"{prefix}.{name}"] = float(entry[key])
        return out


def calibrate_run(
    manifest: Manifest,
    settings: DriftSettings,
    *,
    storage_options: StorageOptions | None = None,
    now: dt.datetime | None = None,
    read: Callable[[str, list[str]], pd.DataFrame] | None = None,
) -> RunCalibration:
    """This snapshot's drift since the city's previous snapshot, with p-values and the family's q-values.

    ``now`` (default: the clock) dates the history rows and decides which cities are recent enough. ``read(uri,
    columns)`` reads this snapshot (default: :func:`~airflow_ml.data.snapshot.read_snapshot`): the drift step
    hands one that keeps what it read for its champion comparison, which reads the same columns.
    """
    now = now or dt.datetime.now(dt.UTC)
    rules = CalibrationRules.from_dict(settings.calibration)
    template = manifest.template or settings.tags.get("airflow_ml.template", "")
    root = store.data_root_of(manifest.uri)
    uri = store.history_uri(root, template, manifest.city)
    history = store.read_history(uri, storage_options=storage_options)
    past = store.before(history, manifest.content_hash)
    season = season_of(manifest.partitions, rules.season)
    if read is None:

        def read(uri: str, columns: list[str]) -> pd.DataFrame:
            return read_snapshot(uri, columns=columns, storage_options=storage_options)

    previous, frames, compared, shared, note, current_rows = _previous(manifest, settings, past, storage_options, read)
    mode = None if compared is None else compared["mode"]
    family = read_family(root, template, max_age_days=rules.max_age_days, now=now, storage_options=storage_options)
    everyone = store.fleet_latest(root, template, skip=manifest.city, storage_options=storage_options)
    fleet = family.tests(everyone, now=now)
    fleet_ps = fleet["p_value"].tolist()
    row = {
        "snapshot_hash": manifest.content_hash,
        "snapshot_uri": manifest.uri,
        "recorded_at": now.isoformat(),
        "season": season,
        "previous_hash": None if previous is None else previous.content_hash,
        "compare_mode": mode,
    }
    base = {
        "q": rules.q,
        "min_history": rules.min_history,
        "min_flagged": rules.min_flagged,
        "season": season,
        "mode": mode,
        "history_uri": uri,
        "previous_snapshot": None if previous is None else {"hash": previous.content_hash, "uri": previous.uri},
        "compared": compared,
        "note": note,
        "fleet_cities": fleet["city"].nunique() + 1,
        "family": family.to_dict(everyone),
        "row": row,
    }
    calibrated = calibrate(_today(settings, frames, shared), past, rules, season=season, mode=mode)
    return RunCalibration(
        rules,
        uri,
        manifest.content_hash,
        calibrated,
        past,
        fleet_ps,
        base,
        frames,
        shared,
        previous=previous,
        current_rows=current_rows,
    )


_Previous = tuple[
    Manifest | None, tuple[pd.DataFrame, pd.DataFrame] | None, dict[str, Any] | None, dict[str, int] | None, str, Any
]


def _previous(
    manifest: Manifest,
    settings: DriftSettings,
    past: pd.DataFrame,
    storage_options: StorageOptions | None,
    read: Callable[[str, list[str]], pd.DataFrame],
) -> _Previous:
    """The newest readable earlier snapshot, this snapshot's rows to compare with it (and which they are) and the
    values both hold."""
    earlier = store.previous_snapshots(past, manifest.content_hash)
    if not earlier:
        return None, None, None, None, "the city's first recorded snapshot: nothing to compare with yet", None
    wanted = list(dict.fromkeys([*settings.features, settings.target]))
    columns = [*wanted, settings.time_column] if settings.time_column else wanted
    problems = []
    for candidate in earlier[:_TRIES]:
        try:
            previous = load_manifest(candidate.snapshot_uri, storage_options=storage_options)
            reference = read_snapshot(
                candidate.snapshot_uri,
                columns=[c for c in dict.fromkeys(columns) if c in previous.columns],
                storage_options=storage_options,
            )
        except (DataError, OSError, ValueError, pa.ArrowException) as exc:
            problems.append(f"{candidate.snapshot_uri}: {exc}")
            continue
        current = read(manifest.uri, [c for c in dict.fromkeys(columns) if c in manifest.columns])
        selection = select_rows(
            current,
            partitions=manifest.partitions,
            reference_partitions=previous.partitions,
            time_column=settings.time_column,
            compare=settings.compare,
            min_new_rows=settings.min_new_rows,
            min_new_days=settings.min_new_days,
        )
        since = selection.record.get("since")
        shared = shared_counts(
            reference,
            selection.frame,
            reference_days=previous.partitions,
            current_days=[d for d in manifest.partitions if since is None or d >= since],
            time_column=settings.time_column,
        )
        compared = {
            **selection.record,
            "reference_rows": len(reference),
            "shared_rows": None if shared is None else shared[""],
        }
        note = f"earlier snapshot(s) unreadable, skipped: {'; '.join(problems)}" if problems else ""
        return previous, (reference, selection.frame), compared, shared, note, selection.rows
    return None, None, None, None, f"no earlier snapshot could be read: {'; '.join(problems)}", None


def _today(
    settings: DriftSettings, frames: tuple[pd.DataFrame, pd.DataFrame] | None, shared: dict[str, int] | None
) -> list[dict[str, Any]]:
    """Every statistic of this run since the previous snapshot (values None without one)."""
    if frames is None:
        categorical = set(settings.categorical_features)
        out = []
        for column in dict.fromkeys([*settings.features, settings.target]):
            label = column == settings.target
            kind = "label" if label else "categorical" if column in categorical else "numeric"
            categories = kind == "categorical" or (label and settings.task == "binary")
            for statistic in ("js_distance" if categories else "psi", "missing_rate_change"):
                out.append({"column": column, "kind": kind, "statistic": statistic, "value": None})
        return out
    report = compare_frames(
        frames[0],
        frames[1],
        features=list(settings.features),
        categorical=list(settings.categorical_features),
        target=settings.target,
        task=settings.task,
        thresholds={},
        bins=settings.bins,
    )
    return [
        {
            "column": c.column,
            "kind": c.kind,
            "statistic": c.statistic,
            "value": c.value,
            **_counts(c.column, c.statistic, c.value, frames, shared),
        }
        for c in report.checks
    ]


def _counts(
    column: str,
    statistic: str,
    value: float | None,
    frames: tuple[pd.DataFrame, pd.DataFrame],
    shared: dict[str, int] | None,
) -> dict[str, int | None]:
    """The values each side of a statistic held and both held: the rows for the missing rate, else the
    non-missing values."""
    if value is None or column not in frames[0] or column not in frames[1]:
        return {"reference_n": None, "current_n": None, "overlap_n": None}
    key = "" if statistic == "missing_rate_change" else column
    overlap = None if shared is None else shared.get(key)
    if statistic == "missing_rate_change":
        return {"reference_n": len(frames[0]), "current_n": len(frames[1]), "overlap_n": overlap}
    return {
        "reference_n": int(frames[0][column].notna().sum()),
        "current_n": int(frames[1][column].notna().sum()),
        "overlap_n": overlap,
    }


def _shown(entry: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "column",
        "kind",
        "statistic",
        "value",
        "reference_n",
        "current_n",
        "overlap_n",
        "p_value",
        "q_value",
        "basis",
        "scale",
        "n_history",
        "season",
        "method",
    )
    return {**{k: entry.get(k) for k in keys}, "note": entry.get("note", "")}


def apply_stop_rule(record: dict[str, Any], run: RunCalibration) -> dict[str, Any]:
    """``record`` with ``calibration`` and, for a computed champion comparison, the status the stop rule gives.

    The champion comparison's own status stays as ``status_fixed_thresholds``; ``stopped_by`` lists why the
    run stops (empty when it goes on). A record without checks (skipped, refused) keeps its status.
    """
    checks = record.get("checks")
    decision = decide(run.entries, checks or [], run.rules)
    section = {**run.section, "stop": decision.stop, "stopped_by": decision.reasons, "decided_on": "run"}
    if checks is None:
        return {**record, "calibration": section}
    fixed = record["status"]
    if decision.stop:
        status = "failed"
    elif fixed != "passed" or decision.flagged:
        status = "warned"
    else:
        status = "passed"
    lines = [f"drift {status.upper()} by the calibrated stop rule (q {run.rules.q:g}, fleet-adjusted at run time)"]
    lines += [f"  - stops: {reason}" for reason in decision.reasons]
    if decision.flagged and not decision.stop:
        shown = ", ".join(f"{c} (q={q:.3g})" for c, q in sorted(decision.flagged.items(), key=lambda kv: kv[1]))
        lines.append(f"  - flagged, below drift.calibration.min_flagged {run.rules.min_flagged}: {shown}")
    summary = "\n".join([*lines, record.get("summary", "")])
    return {
        **record,
        "status": status,
        "status_fixed_thresholds": fixed,
        "stopped_by": decision.reasons,
        "summary": summary,
        "calibration": section,
    }


def record_history(
    run: RunCalibration, drift_run_id: str | None, *, storage_options: StorageOptions | None = None
) -> None:
    """Write this snapshot's rows into the city's history (a rerun's rows are replaced)."""
    rows = [{**row, "drift_run_id": drift_run_id} for row in run.rows]
    store.write_rows(run.history_uri, rows, run.snapshot_hash, storage_options=storage_options)
