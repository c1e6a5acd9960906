"""model_registry on a real MLflow registry (SQLite): the champion's skill tag follows every move of the alias."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_ml.ml import model_registry as registry
from airflow_ml.ml.champion_skill import CHAMPION_SKILL_TAG
from airflow_ml.ml.markdown_cells import md_cell
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


#: A gate's decision record as the gate step writes it (the keys that matter here, and a few it must not tag).
RECORD: dict[str, Any] = {
    "decision": "kept",
    "reason": "challenger rmse 5.1 is not better than the champion's 4.9",
    "mode": "auto",
    "metric": "rmse",
    "challenger_score": 5.1,
    "champion_score": 4.9,
    "baseline_version": "1",
    "naive_baseline": {
        "metric": "rmse",
        "statistic": "mean",
        "value": 14.0,
        "training_rows": 300,
        "score": 9.0,
        "skill": 0.43,
        "min_skill": 0.0,
        "passed": True,
    },
    "refused_by": "better_than_champion",
    "bootstrap": {"resamples": 200, "confidence": 0.95, "seed": 7, "challenger": [5.0, 5.2]},
    "slices": [{"column": "zone", "value": "a", "judged": True, "breached": False, "regression": 0.01}],
    "rules": {"min_improvement": 0.01},
    "trigger_reason": "",
    "snapshot_hash": "ab" * 32,
    "airflow_dag_id": "ride_duration.lisbon",
    "airflow_run_id": "scheduled__2026-03-06T00:00:00+00:00",
    "airflow_run_url": "https://airflow.example.com/dags/ride_duration.lisbon/runs/scheduled__2026-03-06T00%3A00%3A00%2B00%3A00",
    "triggered_by_user": None,
}


def test_a_decision_sets_only_the_gate_tags_and_a_description_naming_the_airflow_run(client: Any) -> None:
    registry.tag_decision(client, NAME, "2", RECORD)

    version = client.get_model_version(NAME, "2")
    gate = {k: v for k, v in version.tags.items() if k.startswith("gate.")}
    assert set(gate) == {f"gate.{key}" for key in registry.GATE_TAGS}
    assert (gate["gate.decision"], gate["gate.mode"], gate["gate.metric"]) == ("kept", "auto", "rmse")
    assert (float(gate["gate.challenger_score"]), float(gate["gate.champion_score"])) == (5.1, 4.9)
    assert gate["gate.baseline_version"] == "1"
    assert json.loads(gate["gate.naive_baseline"]) == {
        k: v for k, v in RECORD["naive_baseline"].items() if k != "training_rows"
    }
    assert version.description.startswith(f"**kept**: {md_cell(RECORD['reason'], limit=None)}")
    assert f"run `{RECORD['airflow_run_id']}` of DAG `ride_duration.lisbon`" in version.description
    assert f"[open in Airflow]({RECORD['airflow_run_url']})" in version.description
    assert registry.DECISION_ARTIFACT in version.description


def test_a_description_without_airflows_base_url_names_the_run_without_a_link(client: Any) -> None:
    record = {**RECORD, "airflow_run_url": None}

    registry.tag_decision(client, NAME, "2", record)

    description = client.get_model_version(NAME, "2").description
    assert f"run `{RECORD['airflow_run_id']}`" in description
    assert "open in Airflow" not in description


@pytest.mark.parametrize("decision", ["kept", "rejected"])
def test_a_refused_version_loses_the_challenger_alias(client: Any, decision: str) -> None:
    client.set_registered_model_alias(NAME, registry.CHALLENGER, "2")

    registry.tag_decision(client, NAME, "2", {**RECORD, "decision": decision})

    assert registry.version_by_alias(client, NAME, registry.CHALLENGER) is None


@pytest.mark.parametrize("decision", ["shadow", "awaiting-approval", "dry-run"])
def test_a_version_in_shadow_or_awaiting_approval_keeps_the_challenger_alias(client: Any, decision: str) -> None:
    client.set_registered_model_alias(NAME, registry.CHALLENGER, "2")

    registry.tag_decision(client, NAME, "2", {**RECORD, "decision": decision})

    assert str(client.get_model_version_by_alias(NAME, registry.CHALLENGER).version) == "2"


def test_refusing_an_older_version_leaves_the_newer_challenger_alone(client: Any) -> None:
    client.set_registered_model_alias(NAME, registry.CHALLENGER, "3")

    registry.tag_decision(client, NAME, "2", RECORD)

    assert str(client.get_model_version_by_alias(NAME, registry.CHALLENGER).version) == "3"


def test_a_rolled_back_version_says_so_first_in_its_description(client: Any) -> None:
    registry.promote(client, NAME, "1", {"decision": "promoted", "reason": "first"})
    registry.tag_decision(client, NAME, "2", {"decision": "promoted", "reason": "beats v1"})
    registry.promote(client, NAME, "2", {"decision": "promoted", "reason": "beats v1"})

    record = registry.rollback(client, NAME, "live error [see](https://x.example)", {"by": "ana"})

    text = client.get_model_version(NAME, "2").description
    assert text.startswith(f"**rolled back** on {md_cell(record['at'])} by ana: live error \\[see\\]")
    assert "\n\n**promoted**: beats v1" in text


def test_a_rollback_expecting_another_champion_is_refused_and_moves_nothing(client: Any) -> None:
    # The health check found v1 failing, but v2 became champion meanwhile: v2 must not be demoted for v1's check.
    registry.promote(client, NAME, "1", gate_record(0.3))
    registry.promote(client, NAME, "2", gate_record(0.4))

    with pytest.raises(registry.RollbackRefused, match=r"the champion is v2, not v1 that was found failing"):
        registry.rollback(client, NAME, "health check failed", expected_version="1")

    assert str(registry.version_by_alias(client, NAME, registry.CHAMPION).version) == "2"
    assert str(registry.version_by_alias(client, NAME, registry.PREVIOUS_CHAMPION).version) == "1"
