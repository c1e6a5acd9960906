"""The demotion guard (airflow_ml.ml.demotion_guard) on a real MLflow registry."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from airflow_ml.ml import demotion_guard
from airflow_ml.ml.demotion_guard import (
    DemotionError,
    active_demotion,
    clear_demotion,
    demotion,
    record_demotion,
)
from tests.support.mlflow_stores import sqlite_registry

NAME = "ride_duration.lisbon"
OTHER = "ride_duration.berlin"


@pytest.fixture
def registry(tmp_path: Any) -> Any:
    return sqlite_registry(tmp_path, NAME, OTHER)


def test_a_demotion_is_recorded_on_the_citys_model_and_read_back(registry: Any) -> None:
    recorded = record_demotion(
        registry, NAME, version="3", reason=" live rmse  31% above holdout ", requires="require_approval", until=None
    )

    assert demotion(registry, NAME) == recorded == active_demotion(registry, NAME)
    assert (recorded.version, recorded.reason, recorded.until) == ("3", "live rmse 31% above holdout", None)
    tags = registry.get_registered_model(NAME).tags
    assert tags[demotion_guard.DEMOTED] == "true"
    assert tags[demotion_guard.DEMOTED_REQUIRES] == "require_approval"
    assert demotion(registry, OTHER) is None
    assert demotion(registry, "ride_duration.nowhere") is None


def test_a_cooldown_is_active_until_its_end_and_a_date_means_its_midnight_utc(registry: Any) -> None:
    recorded = record_demotion(
        registry, NAME, version="3", reason="live error", requires="cooldown", until=dt.date(2026, 12, 6)
    )

    assert recorded.until == "2026-12-06T00:00:00+00:00"
    assert recorded.sentence().startswith("after_demotion: cooldown until 2026-12-06, demoted v3 on ")
    assert recorded.active(dt.datetime(2026, 12, 5, 23, 59, tzinfo=dt.UTC))
    assert not recorded.active(dt.datetime(2026, 12, 6, tzinfo=dt.UTC))
    assert active_demotion(registry, NAME, now=dt.datetime(2026, 12, 7, tzinfo=dt.UTC)) is None
    assert demotion(registry, NAME) == recorded  # past its end, still on record until a promotion clears it


def test_clearing_removes_every_tag_and_returns_what_it_cleared(registry: Any) -> None:
    recorded = record_demotion(registry, NAME, version="3", reason="live error", requires="shadow", until="2026-12-06")

    assert clear_demotion(registry, NAME) == recorded
    assert not [key for key in registry.get_registered_model(NAME).tags if key.startswith("airflow_ml.demoted")]
    assert clear_demotion(registry, NAME) is None


@pytest.mark.parametrize(
    ("requires", "reason", "until", "fragment"),
    [
        ("approval", "x", None, r"requires 'approval' is not a rule; use one of \['require_approval', 'shadow'"),
        ("cooldown", "x", None, "a cooldown needs 'until'"),
        ("shadow", "  ", None, "a reason is needed"),
        ("shadow", "x", "next week", "'next week' is not an ISO date or time, e.g. 2026-12-06"),
    ],
)
def test_a_demotion_that_cannot_be_recorded_is_refused_naming_the_fix(
    registry: Any, requires: str, reason: str, until: str | None, fragment: str
) -> None:
    with pytest.raises(DemotionError, match=fragment):
        record_demotion(registry, NAME, version="3", reason=reason, requires=requires, until=until)
    assert demotion(registry, NAME) is None
