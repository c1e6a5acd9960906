"""The prediction table (airflow_ml.hooks.prediction_store) on the machine's PostgreSQL: upserts by prediction_id."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator

import pandas as pd
import pytest

from airflow_ml.data.prediction_log import LogColumns, ScoringContext, log_frame
from airflow_ml.hooks.prediction_store import PredictionStoreError, PredictionStoreHook
from tests.support.postgres import airflow_connection, postgres_admin
from tests.support.predictions import scoring_context

pytestmark = [pytest.mark.integration, pytest.mark.services]

DAY = dt.date(2026, 3, 1)


def _context(version: str) -> ScoringContext:
    return scoring_context(model_version=version, scoring_run_id=f"run-v{version}")


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> Iterator[PredictionStoreHook]:
    """A hook on a fresh schema of the test database, dropped afterwards; skips when PostgreSQL is down."""
    admin = postgres_admin()
    schema = f"predictions_{uuid.uuid4().hex[:10]}"
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA {schema}")
    monkeypatch.setenv("AIRFLOW_CONN_PREDICTIONS_TEST", json.dumps(airflow_connection()))
    try:
        yield PredictionStoreHook("predictions_test", table=f"{schema}.predictions")
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


def test_a_rerun_updates_its_rows_and_adds_the_new_ones(hook: PredictionStoreHook) -> None:
    rows = pd.DataFrame({"trip_id": ["t1", "t2", "t3"]})
    first = log_frame(rows, [1.0, 2.0, 3.0], _context("1"), LogColumns(key=("trip_id",)))
    hook.create_table()
    hook.create_table()  # a second call finds it there

    assert hook.upsert(first, template="ride_duration", city="lisbon", day=DAY) == 3
    more = pd.DataFrame({"trip_id": ["t2", "t3", "t4"]})
    again = log_frame(more, [20.0, float("nan"), 40.0], _context("2"), LogColumns(key=("trip_id",)))
    hook.upsert(again, template="ride_duration", city="lisbon", day=DAY)

    stored = hook.get_records(
        f"SELECT prediction_id, prediction, model_version, partition_date, scored_at FROM {hook.table} "
        "ORDER BY prediction"
    )
    by_id = {row[0]: row[1:] for row in stored}
    ids = dict(zip(["t1", "t2", "t3"], first["prediction_id"], strict=True)) | dict(
        zip(["t2", "t3", "t4"], again["prediction_id"], strict=True)
    )
    assert len(stored) == 4
    assert by_id[ids["t1"]][:2] == (1.0, "1")
    assert by_id[ids["t2"]][:2] == (20.0, "2")
    assert by_id[ids["t3"]][:2] == (None, "2")
    assert by_id[ids["t4"]][2] == DAY
    assert by_id[ids["t4"]][3] == dt.datetime(2026, 3, 1, 2, tzinfo=dt.UTC)


def test_a_table_name_that_is_not_plain_sql_is_refused() -> None:
    with pytest.raises(PredictionStoreError, match=r"'predictions; drop table x' is not a plain PostgreSQL name"):
        PredictionStoreHook("predictions_test", table="predictions; drop table x")
