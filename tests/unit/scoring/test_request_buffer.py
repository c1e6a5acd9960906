"""The HTTP server's buffered prediction log (airflow_ml.scoring.request_buffer), written to a real local log."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_ml.data.prediction_log import LogColumns, ScoringContext, log_frame, read_predictions
from airflow_ml.scoring.http_fleet import ServedCity
from airflow_ml.scoring.request_buffer import BufferFull, RequestBuffer

DAY = dt.date(2026, 3, 2)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def city(root: Path, name: str = "lisbon") -> ServedCity:
    return ServedCity("ride_duration", name, f"ride_duration.{name}", None, ("x",), str(root))


def logged(start: int, count: int, name: str = "lisbon") -> pd.DataFrame:
    """``count`` rows as a request logs them (ids from x = start, start + 1, ...)."""
    rows = pd.DataFrame({"x": [float(i) for i in range(start, start + count)]})
    context = ScoringContext(
        "ride_duration",
        name,
        f"ride_duration.{name}",
        "1",
        f"http-{start}",
        "h",
        dt.datetime(2026, 3, 2, tzinfo=dt.UTC),
    )
    return log_frame(rows, rows["x"] * 2, context, LogColumns(content=("x",)))


def files(root: Path, name: str = "lisbon") -> list[Path]:
    return sorted((root / "predictions" / "ride_duration" / name).glob("date=*/requests-*.parquet"))


def test_rows_wait_for_their_count_or_their_age_then_go_as_one_file(tmp_path: Path) -> None:
    clock = Clock()
    buffer = RequestBuffer(flush_rows=5, flush_seconds=10, max_rows=100, clock=clock)

    buffer.add(city(tmp_path), DAY, logged(0, 3))
    buffer.add(city(tmp_path, "porto"), DAY, logged(0, 1, "porto"))
    assert files(tmp_path) == []
    buffer.add(city(tmp_path), DAY, logged(3, 3))  # 6 rows: flushed by this request
    assert len(files(tmp_path)) == 1
    buffer.flush_due()
    assert files(tmp_path, "porto") == []  # 1 row, 0 s old
    clock.now += 10
    buffer.flush_due()

    assert len(files(tmp_path, "porto")) == 1
    lisbon = read_predictions(str(tmp_path), "ride_duration", "lisbon", DAY, DAY)
    assert sorted(lisbon["prediction"]) == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    assert buffer.stats == {"buffered_rows": 0, "flushes": 2, "flushed_rows": 7, "flush_failures": 0, "lost_rows": 0}


def test_a_failed_flush_keeps_its_rows_and_a_full_buffer_refuses_never_dropping(tmp_path: Path) -> None:
    clock = Clock()
    blocked = tmp_path / "log"
    blocked.write_text("a file where the log's folder should be", encoding="utf-8")
    buffer = RequestBuffer(flush_rows=2, flush_seconds=10, max_rows=5, clock=clock)

    buffer.add(city(blocked), DAY, logged(0, 2))  # its flush fails
    buffer.add(city(blocked), DAY, logged(2, 2))  # kept; no new try before 10 s
    with pytest.raises(BufferFull, match=r"holds 4 rows, its bound \(--log-buffer-rows 5\)"):
        buffer.add(city(blocked), DAY, logged(4, 2))
    assert (buffer.stats["flush_failures"], buffer.stats["buffered_rows"]) == (1, 4)
    blocked.unlink()
    buffer.flush_due()
    assert files(blocked) == []  # still waiting for the retry time
    clock.now += 10
    buffer.flush_due()

    [written] = files(blocked)
    assert len(pd.read_parquet(written)) == 4  # the failed flush's rows first, then the ones kept meanwhile
    assert buffer.stats["buffered_rows"] == 0


def test_stop_writes_what_is_left_and_reports_rows_it_could_not_write(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_ml.scoring import request_buffer

    monkeypatch.setattr(request_buffer, "SHUTDOWN_TRIES", 1)
    buffer = RequestBuffer(flush_rows=100, flush_seconds=3600)
    buffer.start()
    buffer.add(city(tmp_path), DAY, logged(0, 3))
    buffer.stop()
    assert len(files(tmp_path)) == 1

    blocked = tmp_path / "blocked"
    blocked.write_text("not a folder", encoding="utf-8")
    stuck = RequestBuffer(flush_rows=100, flush_seconds=3600)
    stuck.add(city(blocked), DAY, logged(0, 3))
    with caplog.at_level("ERROR", logger="airflow_ml.scoring.request_buffer"):
        stuck.stop()

    assert stuck.stats["lost_rows"] == 3
    assert "3 row(s) of the prediction log could not be written before the server stopped" in caplog.text


@pytest.mark.parametrize("bounds", [{"flush_rows": 0}, {"flush_seconds": 0}, {"flush_rows": 10, "max_rows": 5}])
def test_bounds_are_checked(bounds: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="flush at 1 row or more"):
        RequestBuffer(**bounds)


def test_one_citys_failing_log_does_not_hold_back_another_citys(tmp_path: Path) -> None:
    clock = Clock()
    blocked = tmp_path / "blocked"
    blocked.write_text("not a folder", encoding="utf-8")
    buffer = RequestBuffer(flush_rows=2, flush_seconds=10, max_rows=100, clock=clock)

    buffer.add(city(blocked), DAY, logged(0, 2))  # fails: lisbon waits 10 s before its next try
    buffer.add(city(tmp_path / "ok", "porto"), DAY, logged(0, 2, "porto"))
    buffer.add(city(blocked), DAY, logged(2, 2))  # lisbon is not tried again yet

    assert len(files(tmp_path / "ok", "porto")) == 1
    assert (buffer.stats["flush_failures"], buffer.stats["buffered_rows"]) == (1, 4)


def test_a_city_whose_log_fails_fills_only_its_own_share_of_the_buffer(tmp_path: Path) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("not a folder", encoding="utf-8")
    buffer = RequestBuffer(flush_rows=2, flush_seconds=10, max_rows=100, clock=Clock())

    for start in range(0, 10, 2):  # 10 rows of lisbon kept: its log cannot be written
        buffer.add(city(blocked), DAY, logged(start, 2))
    with pytest.raises(BufferFull, match=r"holds 10 rows of ride_duration/lisbon for 2026-03-02, the most one city"):
        buffer.add(city(blocked), DAY, logged(10, 2))
    buffer.add(city(tmp_path / "ok", "porto"), DAY, logged(0, 2, "porto"))  # another city is still served

    assert len(files(tmp_path / "ok", "porto")) == 1
