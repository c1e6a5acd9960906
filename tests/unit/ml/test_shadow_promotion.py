"""promote_shadow (airflow_ml.ml.shadow_promotion) on a real MLflow registry, with verdicts of the live comparison.

The gate's shadow mode on real LightGBM models, and a shadow promotion after it, are in
tests/unit/operators/test_gate_operator.py and tests/integration/test_shadow_promotion_dag.py.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from airflow_ml.ml import model_registry as registry
from airflow_ml.ml.demotion_guard import demotion, record_demotion
from airflow_ml.ml.shadow_promotion import ShadowPromotionRefused, promote_shadow
from airflow_ml.monitoring.shadow_compare import ShadowVerdict
from tests.support.mlflow_stores import sqlite_registry

NAME = "ride_duration.lisbon"


def verdict(promote: bool) -> ShadowVerdict:
    return ShadowVerdict(
        promote=promote,
        reason="challenger rmse 4.1 vs 4.6, +10.9% on 1400 live rows over 14 days" if promote else "not enough",
        rule="passed" if promote else "min_evidence",
        metric="rmse",
        labels=1400,
        days=14,
        min_labels=1000,
        min_days=7,
        champion_score=4.6,
        challenger_score=4.1,
        improvement=0.109,
        interval=(0.05, 0.16),
    )


@pytest.fixture
def client(tmp_path: Path) -> Any:
    """v1 champion, v2 challenger in shadow."""
    client = sqlite_registry(tmp_path, NAME)
    for _ in range(2):
        client.create_model_version(NAME, f"file://{tmp_path}/model")
    registry.promote(client, NAME, "1", {"decision": "promoted"})
    client.set_registered_model_alias(NAME, registry.CHALLENGER, "2")
    return client


def test_a_promote_verdict_moves_champion_records_the_figures_and_clears_a_demotion(client: Any) -> None:
    record_demotion(client, NAME, version="1", reason="live error", requires="shadow", until=None)

    record = promote_shadow(client, NAME, "2", verdict(True), {"airflow_run_id": "monitor-1"}, champion_version="1")

    assert str(client.get_model_version_by_alias(NAME, registry.CHAMPION).version) == "2"
    assert str(client.get_model_version_by_alias(NAME, registry.PREVIOUS_CHAMPION).version) == "1"
    assert (record["decision"], record["mode"], record["baseline_version"]) == ("promoted", "shadow", "1")
    assert record["reason"].startswith("shadow promotion: challenger rmse 4.1 vs 4.6")
    assert record["cleared_demotion"]["requires"] == "shadow"
    assert record["after_demotion"].startswith("after_demotion: shadow until a promotion with more evidence")
    assert record["after_demotion"].endswith(": met by the live comparison")
    assert demotion(client, NAME) is None
    version = client.get_model_version(NAME, "2")
    assert (version.tags["gate.mode"], version.tags["gate.reason"]) == ("shadow", record["reason"])
    assert version.tags["gate.airflow_run_id"] == "monitor-1"  # the fleet view's decision run: the monitor's
    assert "Decided by the Airflow run `monitor-1`" in version.description
    assert registry.SHADOW_ARTIFACT in version.description


def test_a_keep_verdict_moves_nothing(client: Any) -> None:
    with pytest.raises(ShadowPromotionRefused, match="the live comparison keeps the champion"):
        promote_shadow(client, NAME, "2", verdict(False))
    assert str(client.get_model_version_by_alias(NAME, registry.CHAMPION).version) == "1"


def test_a_verdict_about_a_replaced_challenger_or_a_moved_champion_moves_nothing(client: Any) -> None:
    with pytest.raises(ShadowPromotionRefused, match="the 'challenger' alias points at v2, not v1"):
        promote_shadow(client, NAME, "1", verdict(True))
    with pytest.raises(ShadowPromotionRefused, match="the champion moved from v3 to v1"):
        promote_shadow(client, NAME, "2", verdict(True), champion_version="3")
    assert str(client.get_model_version_by_alias(NAME, registry.CHAMPION).version) == "1"


def test_an_active_demotion_that_needs_approval_refuses_and_says_how_to_approve(client: Any) -> None:
    record_demotion(client, NAME, version="1", reason="live error", requires="require_approval", until=None)

    with pytest.raises(ShadowPromotionRefused, match="after_demotion: require_approval") as refused:
        promote_shadow(client, NAME, "2", verdict(True), champion_version="1")

    assert "needs approval" in str(refused.value)
    assert f"trigger the DAG {NAME} with promotion mode require_approval" in str(refused.value)
    assert str(client.get_model_version_by_alias(NAME, registry.CHAMPION).version) == "1"
    assert demotion(client, NAME) is not None


def test_a_cooldown_refuses_until_its_end_and_not_after(client: Any) -> None:
    now = dt.datetime.now(dt.UTC)
    record_demotion(
        client, NAME, version="1", reason="live error", requires="cooldown", until=now + dt.timedelta(days=3)
    )

    with pytest.raises(ShadowPromotionRefused, match=r"after_demotion: cooldown until .*no promotion before then"):
        promote_shadow(client, NAME, "2", verdict(True), champion_version="1")
    assert str(client.get_model_version_by_alias(NAME, registry.CHAMPION).version) == "1"

    record_demotion(
        client, NAME, version="1", reason="live error", requires="cooldown", until=now - dt.timedelta(days=1)
    )
    record = promote_shadow(client, NAME, "2", verdict(True), champion_version="1")

    assert record["after_demotion"] is None  # an ended cool-down no longer applies
    assert str(client.get_model_version_by_alias(NAME, registry.CHAMPION).version) == "2"


def test_a_shadow_promotion_logs_its_figures_on_the_versions_training_run(client: Any, tmp_path: Path) -> None:
    run_id = client.create_run(client.create_experiment("lisbon")).info.run_id
    version = str(client.create_model_version(NAME, f"file://{tmp_path}/model", run_id=run_id).version)
    client.set_registered_model_alias(NAME, registry.CHALLENGER, version)

    record = promote_shadow(client, NAME, version, verdict(True), champion_version="1")

    logged = client.download_artifacts(run_id, registry.SHADOW_ARTIFACT, str(tmp_path))
    assert json.loads(Path(logged).read_text(encoding="utf-8"))["shadow"] == record["shadow"]
    assert record["shadow"]["interval"] == [0.05, 0.16]


def test_a_version_awaiting_approval_is_never_shadow_promoted(client: Any) -> None:
    # require_approval keeps the challenger alias on the version it asks about: the person decides, not the monitor.
    registry.tag_decision(client, NAME, "2", {"decision": "awaiting-approval", "reason": "recommended"})

    with pytest.raises(ShadowPromotionRefused, match="v2: it awaits approval") as refused:
        promote_shadow(client, NAME, "2", verdict(True), champion_version="1")

    assert "never promotes what a person was asked to approve" in str(refused.value)
    assert str(client.get_model_version_by_alias(NAME, registry.CHAMPION).version) == "1"


def test_a_rejection_touches_only_the_version_it_judged_and_never_the_champion(client: Any) -> None:
    from airflow_ml.ml.steps.approve_step import ChampionMovedError, settle_approval

    asked = {"model_name": NAME, "challenger_version": "2", "baseline_version": "1", "gate_reason": "better"}
    registry.promote(client, NAME, "2", {"decision": "promoted"})  # v2 became champion meanwhile (as v1 was)

    with pytest.raises(ChampionMovedError, match="v2 became champion after the gate asked for approval"):
        settle_approval(client, asked, approved=False, approver="ana")
    with pytest.raises(ValueError, match="v2 is the champion"):
        registry.tag_decision(client, NAME, "2", {"decision": "rejected", "reason": "no"})

    v2 = client.get_model_version(NAME, "2")
    assert v2.tags.get("gate.decision") == "promoted"
    assert "rejected" not in (v2.description or "")
    assert str(client.get_model_version_by_alias(NAME, registry.CHAMPION).version) == "2"
    registry.rollback(client, NAME, "back to v1")
    client.set_registered_model_alias(NAME, registry.CHALLENGER, "2")
    final = settle_approval(client, {**asked, "baseline_version": "1"}, approved=False, approver="ana")
    assert final["decision"] == "rejected"
    assert registry.CHALLENGER not in client.get_registered_model(NAME).aliases
    assert str(client.get_model_version_by_alias(NAME, registry.CHAMPION).version) == "1"


def test_a_hostile_slice_value_in_the_reason_stays_inert_text_in_the_description(client: Any) -> None:
    hostile = "pickup_zone=x\n\n**promoted**: all good ![p](https://evil.example/p.png) [docs](https://evil.example)"
    record = {
        "decision": "kept",
        "reason": f"slice {hostile} worse",
        "airflow_run_id": "manual`x",
        "airflow_dag_id": "d",
    }

    registry.tag_decision(client, NAME, "2", record)

    text = client.get_model_version(NAME, "2").description
    assert text.startswith("**kept**: slice pickup\\_zone=x \\*\\*promoted\\*\\*: all good \\!\\[p\\]\\(https:")
    assert "\n\n**promoted**" not in text
    assert "![p](" not in text
    assert "[docs](" not in text
    assert "run `manual'x` of DAG `d`" in text
