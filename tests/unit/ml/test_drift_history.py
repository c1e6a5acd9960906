"""The drift history files: where they live, a rerun replacing its rows, whole writes, the fleet's newest rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from airflow_ml.ml import drift_history as store


def rows(snapshot: str, values: list[float], *, at: str, p: float | None = None) -> list[dict[str, Any]]:
    return [
        {
            "snapshot_hash": snapshot,
            "snapshot_uri": f"/data/snapshots/t/oslo/{snapshot}",
            "recorded_at": at,
            "column": f"x{i}",
            "kind": "numeric",
            "statistic": "psi",
            "value": value,
            "p_value": p,
            "basis": "history",
            "n_history": 3,
        }
        for i, value in enumerate(values)
    ]


def test_the_history_lives_under_the_data_root_per_template_and_city() -> None:
    root = store.data_root_of("s3://bucket/ml/snapshots/ride_duration/oslo/manual__1-abc")

    assert root == "s3://bucket/ml"
    assert store.history_uri(root, "ride_duration", "oslo") == "s3://bucket/ml/drift_history/ride_duration/oslo.parquet"


def test_a_snapshot_outside_the_snapshot_layout_names_the_fix() -> None:
    with pytest.raises(ValueError, match=r"drift\.calibration\.enabled: false"):
        store.data_root_of("/tmp/somewhere/else")


def test_a_rerun_of_a_snapshot_replaces_its_rows_never_doubles_them(tmp_path: Path) -> None:
    uri = store.history_uri(str(tmp_path), "t", "oslo")
    store.write_rows(uri, rows("a", [0.1, 0.2], at="2026-01-01T00:00"), "a")
    store.write_rows(uri, rows("b", [0.3, 0.4], at="2026-01-02T00:00"), "b")

    store.write_rows(uri, rows("b", [0.5, 0.6], at="2026-01-02T01:00"), "b")

    history = store.read_history(uri)
    assert len(history) == 4
    assert history[history["snapshot_hash"] == "b"]["value"].tolist() == [0.5, 0.6]
    assert list(history.columns) == list(store.COLUMNS)
    assert not list(tmp_path.rglob("*.partial"))  # written aside and renamed
    latest = pd.read_parquet(tmp_path / "drift_history" / "t" / "latest" / "oslo.parquet")
    assert (latest["snapshot_hash"].tolist(), latest["value"].tolist()) == (["b", "b"], [0.5, 0.6])
    assert set(latest["city"]) == {"oslo"}


def test_a_write_that_fails_leaves_the_previous_history_whole(tmp_path: Path) -> None:
    uri = store.history_uri(str(tmp_path), "t", "oslo")
    store.write_rows(uri, rows("a", [0.1], at="2026-01-01T00:00"), "a")

    with pytest.raises(pa.ArrowException):
        store.write_rows(uri, [{**rows("b", [0.2], at="x")[0], "value": "not a number"}], "b")

    assert store.read_history(uri)["snapshot_hash"].tolist() == ["a"]


def test_previous_snapshots_are_the_earlier_ones_newest_first(tmp_path: Path) -> None:
    uri = store.history_uri(str(tmp_path), "t", "oslo")
    for day, snapshot in enumerate("abc", start=1):
        store.write_rows(uri, rows(snapshot, [0.1, 0.2], at=f"2026-01-0{day}T00:00"), snapshot)

    earlier = store.previous_snapshots(store.read_history(uri), "c")

    assert [p.snapshot_hash for p in earlier] == ["b", "a"]
    assert earlier[0].snapshot_uri.endswith("/b")


def test_the_fleet_is_each_other_citys_newest_snapshot(tmp_path: Path) -> None:
    for city, p in (("oslo", 0.2), ("rome", 0.3), ("lima", 0.4)):
        uri = store.history_uri(str(tmp_path), "t", city)
        store.write_rows(uri, rows("old", [0.1], at="2026-01-01T00:00", p=0.9), "old")
        store.write_rows(uri, rows("new", [0.1, 0.2], at="2026-01-02T00:00", p=p), "new")

    fleet = store.fleet_latest(str(tmp_path), "t", skip="oslo")

    assert sorted(set(fleet["city"])) == ["lima", "rome"]
    assert fleet[fleet["city"] == "rome"]["p_value"].tolist() == [0.3, 0.3]
    assert fleet["snapshot_hash"].unique().tolist() == ["new"]
    assert store.fleet_latest(str(tmp_path), "other").empty


def test_one_citys_unreadable_newest_rows_are_skipped_not_the_fleets(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for city in ("oslo", "rome", "lima"):
        store.write_rows(store.history_uri(str(tmp_path), "t", city), rows("new", [0.1], at="2026-01-02T00:00"), "new")
    broken = next((tmp_path / store.HISTORY_DIR / "t" / store.LATEST_DIR).glob("rome.parquet"))
    broken.write_bytes(b"not parquet")

    fleet = store.fleet_latest(str(tmp_path), "t")

    assert sorted(set(fleet["city"])) == ["lima", "oslo"]
    assert "rome.parquet" in caplog.text


def test_a_rerun_of_an_older_snapshot_keeps_its_place_and_its_past(tmp_path: Path) -> None:
    """D2 cleared and rerun after D3: it stays before D3, D3 stays the newest, and D2's past is D1 only."""
    uri = store.history_uri(str(tmp_path), "t", "oslo")
    for day in (1, 2, 3):
        store.write_rows(uri, rows(f"d{day}", [0.1 * day], at=f"2026-01-0{day}T00:00"), f"d{day}")

    history = store.write_rows(uri, rows("d2", [0.5], at="2026-01-09T00:00"), "d2")  # the rerun, days later

    assert history["snapshot_hash"].tolist() == ["d1", "d2", "d3"]
    assert history.loc[history["snapshot_hash"] == "d2", "recorded_at"].tolist() == ["2026-01-02T00:00"]
    assert [p.snapshot_hash for p in store.previous_snapshots(history, "d2")] == ["d1"]
    assert store.before(history, "d2")["snapshot_hash"].tolist() == ["d1"]
    assert set(store.fleet_latest(str(tmp_path), "t")["snapshot_hash"]) == {"d3"}
    assert [p.snapshot_hash for p in store.previous_snapshots(history, "d4")] == ["d3", "d2", "d1"]


def test_the_fleet_can_be_read_in_a_few_columns(tmp_path: Path) -> None:
    """Fewer columns decoded for a reader of a few (the review), also when one city's file is broken."""
    for city in ("oslo", "rome"):
        store.write_rows(store.history_uri(str(tmp_path), "t", city), rows("new", [0.1], at="2026-01-02T00:00"), "new")
    wanted = ["city", "p_value", "recorded_at"]

    fleet = store.fleet_latest(str(tmp_path), "t", columns=wanted)
    (tmp_path / store.HISTORY_DIR / "t" / store.LATEST_DIR / "rome.parquet").write_bytes(b"not parquet")
    survivors = store.fleet_latest(str(tmp_path), "t", columns=wanted)

    assert list(fleet.columns) == wanted
    assert sorted(fleet["city"]) == ["oslo", "rome"]
    assert (list(survivors.columns), survivors["city"].tolist()) == (wanted, ["oslo"])
    assert list(store.fleet_latest(str(tmp_path), "none", columns=wanted).columns) == wanted
