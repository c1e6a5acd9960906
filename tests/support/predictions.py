"""What a scoring run stamps on the rows of the prediction log, for the prediction log's tests."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from airflow_ml.data.prediction_log import ScoringContext

#: A scheduled run of lisbon's scoring, model version 3.
LISBON = ScoringContext(
    template="ride_duration",
    city="lisbon",
    model_name="ride_duration.lisbon",
    model_version="3",
    scoring_run_id="scheduled__2026-03-01T02:00:00+00:00",
    input_hash="ab" * 32,
    scored_at=dt.datetime(2026, 3, 1, 2, 0, tzinfo=dt.UTC),
)


def scoring_context(**changes: Any) -> ScoringContext:
    """:data:`LISBON` with ``changes`` (another version, run id or scoring time)."""
    return dataclasses.replace(LISBON, **changes)
