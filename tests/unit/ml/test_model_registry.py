"""model_registry on a real MLflow registry (SQLite): the champion's skill tag follows every move of the alias."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_ml.ml import model_registry as registry
from airflow_ml.ml.champion_skill import CHAMPION_SKILL_TAG
from tests.support.mlflow_stores import sqlite_registry

NAME = "ride_duration.lisbon"


@pytest.fixture
def client(tmp_path: Path) -> Any:
    client = sqlite_registry(tmp_path, NAME)
    for _ in range(3):
        client.create_model_version(NAME, f"file://{tmp_path}/model")
    return client


def skill_tag(client: Any) -> dict[str, Any] | None:
    raw = client.get_registered_model(NAME).tags.get(CHAMPION_SKILL_TAG)
    return None if raw is None else json.loads(raw)


def gate_record(skill: float) -> dict[str, Any]:
    return {"decision": "promoted", "naive_baseline": {"skill": skill, "score": 9.0}}


def test_promotion_records_the_champions_skill_and_rollback_restores_the_previous_ones(client: Any) -> None:
    registry.promote(client, NAME, "1", gate_record(0.3))
    assert skill_tag(client) == {"version": "1", "skill": 0.3}
    registry.promote(client, NAME, "2", gate_record(0.4))
    assert skill_tag(client) == {"version": "2", "skill": 0.4}

    registry.rollback(client, NAME, "live error")

    assert skill_tag(client) == {"version": "1", "skill": 0.3}  # from v1's gate.naive_baseline tag


def test_clearing_the_champion_clears_its_skill(client: Any) -> None:
    registry.promote(client, NAME, "1", gate_record(0.3))

    registry.rollback(client, NAME, "unhealthy first champion", without_previous="clear")

    assert skill_tag(client) is None


def test_a_shadow_promotion_takes_the_skill_the_gate_tagged_on_the_version(client: Any) -> None:
    registry.promote(client, NAME, "1", gate_record(0.3))
    registry.tag_decision(client, NAME, "2", {"decision": "shadow", "naive_baseline": {"skill": 0.35}})

    registry.promote(client, NAME, "2", {"decision": "promoted", "mode": "shadow"})  # promote_shadow's record

    assert skill_tag(client) == {"version": "2", "skill": 0.35}


def test_a_promotion_without_a_skill_removes_the_stale_one(client: Any) -> None:
    registry.promote(client, NAME, "1", gate_record(0.3))

    registry.promote(client, NAME, "3", {"decision": "forced", "naive_baseline": None})

    assert skill_tag(client) is None
