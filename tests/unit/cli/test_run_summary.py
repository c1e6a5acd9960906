"""The demo's tables (cli/run_summary.py): the live row read back from a monitor run's decision record."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from airflow_ml.cli.run_summary import LIVE_HEADER, LiveSummary, format_live_table, summarize_live
from airflow_ml.ml.steps.step_settings import SupervisorSettings
from airflow_ml.monitoring.live_metrics import WindowMetric
from airflow_ml.monitoring.monitor_step import decision_location
from airflow_ml.monitoring.supervisor import decide

DAY = dt.date(2026, 3, 22)


def _windows(*values: float) -> list[WindowMetric]:
    return [
        WindowMetric(
            DAY - dt.timedelta(days=len(values) - 1 - i),
            DAY - dt.timedelta(days=len(values) - 1 - i),
            700,
            v,
            v - 1.0,
            v + 1.0,
        )
        for i, v in enumerate(values)
    ]


def _record(root: Path, city: str, windows: list[WindowMetric], **extra: object) -> None:
    """A decision record as the monitor step writes it: its windows and the real supervisor's decision."""
    settings = SupervisorSettings(mode="auto", tolerance=0.2, consecutive_windows=2, min_labels=300)
    decision = decide(windows, metric="rmse", holdout_score=7.0, settings=settings)
    record = {
        "city": city,
        "day": DAY.isoformat(),
        "metric": "rmse",
        "status": decision.verdict,
        "reason": decision.reason,
        "champion_version": "2",
        "holdout_score": 7.0,
        "windows": [w.to_dict() for w in windows],
        **extra,
    }
    folder = Path(decision_location(str(root), "ride_duration", city))
    folder.mkdir(parents=True)
    (folder / f"{DAY}.json").write_text(json.dumps(record), encoding="utf-8")


def test_a_demoted_city_shows_its_newest_window_the_decision_and_the_rollback(tmp_path: Path) -> None:
    rollback = {"rolled_back_version": "2", "restored_version": "1"}
    _record(tmp_path, "lisbon", _windows(7.1, 13.4, 13.2), rollback=rollback)

    row = summarize_live(str(tmp_path), "ride_duration", "lisbon", DAY.isoformat(), "success")

    assert row == LiveSummary(
        city="lisbon",
        state="success",
        window="2026-03-22",
        live="rmse 13.2000 [12.20, 14.20]",
        holdout="7.0000",
        labels="700",
        supervisor="demote",
        champion="v2 -> v1",
        reason=row.reason,
    )
    assert "rolled back" in row.reason


def test_a_healthy_city_keeps_its_champion_and_one_cleared_falls_back(tmp_path: Path) -> None:
    _record(tmp_path, "berlin", _windows(6.9, 7.2, 7.0))
    _record(tmp_path, "porto", _windows(13.0, 13.0), rollback={"rolled_back_version": "1", "restored_version": None})

    berlin = summarize_live(str(tmp_path), "ride_duration", "berlin", DAY.isoformat(), "success")
    porto = summarize_live(str(tmp_path), "ride_duration", "porto", DAY.isoformat(), "success")

    assert (berlin.supervisor, berlin.champion) == ("healthy", "v2")
    assert porto.champion == "v1 -> none (fallback)"


def test_a_city_without_a_record_says_where_to_look(tmp_path: Path) -> None:
    row = summarize_live(str(tmp_path), "ride_duration", "oslo", DAY.isoformat(), "failed")

    assert (row.state, row.supervisor, row.reason) == ("failed", "not reached", "no decision record: see the task log")


def test_the_live_table_pads_every_column_but_the_reason(tmp_path: Path) -> None:
    _record(
        tmp_path, "lisbon", _windows(7.1, 13.4, 13.2), rollback={"rolled_back_version": "2", "restored_version": "1"}
    )
    row = summarize_live(str(tmp_path), "ride_duration", "lisbon", DAY.isoformat(), "success")

    lines = format_live_table([row]).splitlines()

    assert lines[0].split() == list(LIVE_HEADER)
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert lines[2].startswith("lisbon  success  2026-03-22  rmse 13.2000 [12.20, 14.20]  7.0000")
    assert lines[2].endswith(row.reason)
