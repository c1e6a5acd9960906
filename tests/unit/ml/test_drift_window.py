"""Drift against what is new: a seasonal swing that the whole overlapping snapshot dilutes, caught in the new rows.

Real snapshots (take_snapshot over date= partitions) and a real MLflow store: the champion is trained on days
0..59, the next run's 60-day window holds days 14..73, and from day 60 the label is 40% longer.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from airflow_ml.data.snapshot import Manifest, read_snapshot, take_snapshot
from airflow_ml.ml.drift_window import WHOLE, select_rows
from airflow_ml.ml.steps.drift_step import check_drift
from airflow_ml.ml.steps.step_settings import DriftSettings
from airflow_ml.templates.drift_spec import DriftSpec

START = dt.date(2026, 1, 5)
SWING = 1.4  # from day 60 on, every trip takes 40% longer (a season changes)
LABEL = {"label_psi": {"warn": 0.1, "error": 0.25}, "psi": {"warn": 0.1, "error": 0.25}}


def _day(index: int, rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(index)
    x = rng.lognormal(1, 0.5, rows)
    y = (x * 2 + rng.normal(0, 1, rows)) * (SWING if index >= 60 else 1.0)
    at = pd.Timestamp(START + dt.timedelta(days=index)) + pd.to_timedelta(rng.integers(0, 86_400, rows), unit="s")
    return pd.DataFrame({"x": x, "y": y, "pickup_at": at})


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """74 days of raw partitions and the snapshots of two runs: the champion's (days 0..59) and this one's."""
    root = tmp_path_factory.mktemp("lake")
    source = root / "raw" / "oslo"
    for index in range(74):
        folder = source / f"date={(START + dt.timedelta(days=index)).isoformat()}"
        folder.mkdir(parents=True)
        _day(index, 300).to_parquet(folder / "part.parquet")

    def snap(run_id: str, first: int, last: int) -> Manifest:
        return take_snapshot(
            str(source), str(root / "snapshots"), template="ride_duration", city="oslo", run_id=run_id,
            start=START + dt.timedelta(days=first), end=START + dt.timedelta(days=last),
        )  # fmt: skip

    return {
        "champion": snap("champion", 0, 59),
        "now": snap("now", 14, 73),
        "one_new_day": snap("one_new_day", 1, 60),
        "same": snap("same", 0, 59),
    }


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"


@pytest.fixture
def client(store: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=store, registry_uri=store)


@pytest.fixture
def model(request: pytest.FixtureRequest, client: Any, lake: dict[str, Any], tmp_path: Path) -> str:
    """A registered model of this test whose champion was trained on the champion's snapshot."""
    name = f"ride_duration.{request.node.name.removeprefix('test_')[:40]}"
    tags = {"airflow_ml.snapshot_uri": lake["champion"].uri}
    client.create_registered_model(name)
    run_id = client.create_run(client.create_experiment(f"{name}.trained"), tags=tags).info.run_id
    version = client.create_model_version(name, str(tmp_path), run_id=run_id, tags=tags)
    client.set_registered_model_alias(name, "champion", version.version)
    return name


def _check(client: Any, model: str, manifest: Manifest, **comparison: Any) -> dict[str, Any]:
    settings = DriftSettings(
        model_name=model, features=["x"], target="y", thresholds=LABEL, time_column="pickup_at", **comparison
    )
    return check_drift(client, manifest, settings)


def _label_psi(record: dict[str, Any]) -> float:
    return next(c["value"] for c in record["checks"] if c["column"] == "y" and c["statistic"] == "psi")


def test_new_rows_catch_the_swing_that_the_whole_snapshot_dilutes(
    client: Any, model: str, lake: dict[str, Any]
) -> None:
    whole = _check(client, model, lake["now"], compare="whole_snapshot")
    new = _check(client, model, lake["now"])  # the default

    assert whole["status"] == "passed"
    assert _label_psi(whole) < 0.05  # 14 shifted days among 60: diluted below the warn limit (0.1)
    assert new["status"] == "failed"
    assert _label_psi(new) > 0.35  # the same 14 days alone: far above the error limit (0.25)
    assert new["breaches"] == ["y.psi"]
    assert _label_psi(new) > 8 * _label_psi(whole)


def test_the_record_names_the_rows_compared(client: Any, model: str, lake: dict[str, Any]) -> None:
    record = _check(client, model, lake["now"])

    compared = record["compared"]
    assert (compared["requested"], compared["mode"]) == ("new_rows", "new_rows")
    assert compared["since"] == "2026-03-06"  # day 60: the first day after the champion's window
    assert compared["champion_window"] == ["2026-01-05", "2026-03-05"]
    assert compared["snapshot_window"] == ["2026-01-19", "2026-03-19"]
    assert (compared["partitions"], compared["new_partitions"]) == (14, 14)
    assert (compared["rows"], compared["snapshot_rows"], compared["reference_rows"]) == (14 * 300, 60 * 300, 60 * 300)
    assert record["current_rows"] == 14 * 300
    assert compared["note"] == ""
    assert "this snapshot's rows since 2026-03-06 (14 partition(s), 14 after the champion's training window ending " \
        "2026-03-05) (4200 rows)" in record["summary"]  # fmt: skip
    run = client.get_run(record["mlflow_run_id"])
    assert run.data.params["compared.mode"] == "new_rows"
    assert run.data.params["compared.since"] == "2026-03-06"
    assert run.data.params["compared.rows"] == "4200"
    assert run.data.tags["airflow_ml.drift_compared"] == "new_rows"


def test_one_new_day_is_widened_to_the_latest_week(client: Any, model: str, lake: dict[str, Any]) -> None:
    record = _check(client, model, lake["one_new_day"], min_new_days=7)

    compared = record["compared"]
    assert compared["mode"] == "new_rows"
    assert (compared["new_partitions"], compared["partitions"], compared["rows"]) == (1, 7, 7 * 300)
    assert compared["since"] == "2026-02-28"  # days 54..60
    assert "the latest 7 were compared (drift.min_new_days 7)" in compared["note"]


def test_the_same_window_compares_the_whole_snapshot_and_says_why(
    client: Any, model: str, lake: dict[str, Any]
) -> None:
    record = _check(client, model, lake["same"])

    compared = record["compared"]
    assert (compared["requested"], compared["mode"]) == ("new_rows", "whole_snapshot")
    assert compared["new_partitions"] == 0
    assert compared["rows"] == 60 * 300
    assert (
        "no partition of this snapshot is newer than the champion's training window (2026-01-05..2026-03-05)"
        in (compared["note"])
    )
    assert compared["note"] in record["summary"]
    assert record["status"] == "passed"
    assert _label_psi(record) == pytest.approx(0.0, abs=1e-12)


def test_too_few_new_rows_compare_the_whole_snapshot_and_say_so(client: Any, model: str, lake: dict[str, Any]) -> None:
    record = _check(client, model, lake["now"], min_new_rows=5000, min_new_days=1)

    compared = record["compared"]
    assert compared["mode"] == "whole_snapshot"
    assert compared["rows"] == 60 * 300
    assert "only 4200 row(s) since 2026-03-06 (drift.min_new_rows 5000)" in compared["note"]
    assert record["status"] == "passed"  # diluted, as before; the note says why


def test_selection_by_time_column_handles_time_zones_and_refuses_nothing_silently(lake: dict[str, Any]) -> None:
    frame = read_snapshot(lake["now"].uri)
    aware = frame.assign(pickup_at=frame["pickup_at"].dt.tz_localize("Europe/Lisbon"))
    partitions, reference = lake["now"].partitions, lake["champion"].partitions

    chosen = select_rows(aware, partitions=partitions, reference_partitions=reference, time_column="pickup_at")
    assert len(chosen.frame) == 14 * 300
    assert chosen.frame["pickup_at"].min() >= pd.Timestamp("2026-03-06", tz="Europe/Lisbon")

    missing = select_rows(frame.drop(columns="pickup_at"), partitions=partitions, reference_partitions=reference,
                          time_column="pickup_at")  # fmt: skip
    assert (missing.name, missing.fell_back) == (WHOLE, True)
    assert "'pickup_at' is not in this snapshot" in missing.record["note"]

    words = frame.assign(pickup_at="yesterday")
    unreadable = select_rows(words, partitions=partitions, reference_partitions=reference, time_column="pickup_at")
    assert unreadable.fell_back
    assert "is not date-times" in unreadable.record["note"]


def test_drift_compare_is_a_closed_choice_and_the_minimums_are_bounded() -> None:
    from pydantic import ValidationError

    assert DriftSpec().comparison() == {"compare": "new_rows", "min_new_rows": 200, "min_new_days": 7}
    assert DriftSpec(compare="whole_snapshot").comparison()["compare"] == "whole_snapshot"
    for bad in ({"compare": "new"}, {"min_new_rows": 0}, {"min_new_days": 400}, {"min_new_rows": "300"}):
        with pytest.raises(ValidationError):
            DriftSpec(**bad)


def test_the_selection_says_which_of_the_snapshots_rows_it_holds(lake: dict[str, Any]) -> None:
    """The drift step slices the champion's predictions on the whole snapshot with it (``rows``)."""
    frame = read_snapshot(lake["now"].uri)
    partitions, reference = lake["now"].partitions, lake["champion"].partitions

    chosen = select_rows(frame, partitions=partitions, reference_partitions=reference, time_column="pickup_at")
    whole = select_rows(frame, partitions=partitions, reference_partitions=reference, time_column=None)

    assert chosen.rows.dtype == bool
    assert chosen.rows.shape == (len(frame),)
    pd.testing.assert_frame_equal(frame[chosen.rows].reset_index(drop=True), chosen.frame)
    assert whole.rows is None
    assert whole.frame is frame
