"""PromotionGateOperator: its settings, its template fields, and ``execute`` on a real MLflow store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_ml.ml.gate.modes import AWAITING_APPROVAL
from airflow_ml.ml.markdown_cells import md_cell
from airflow_ml.ml.model_registry import CHALLENGER, CHAMPION
from airflow_ml.ml.steps.step_settings import GateSettings
from airflow_ml.operators.gate_operator import PromotionGateOperator
from tests.support.task_runs import RUN_ID, OperatorWorld, operator_world, templated_yaml

MODEL = "ride_duration.lisbon"


def test_init_takes_the_factorys_gate_settings_as_one_dict(world: OperatorWorld) -> None:
    task = world.task("gate")

    assert isinstance(task, PromotionGateOperator)
    settings = GateSettings.from_dict(task.settings)
    assert (settings.model_name, settings.metric, settings.target) == ("ride_duration.lisbon", "rmse", "duration_min")
    assert settings.rules.bootstrap is None
    assert (task.mlflow_conn_id, task.aws_conn_id) == ("mlflow_default", "aws_default")


def test_template_fields_hold_only_the_upstream_xcoms(world: OperatorWorld) -> None:
    assert PromotionGateOperator.template_fields == ("registration", "snapshot")
    assert templated_yaml(world.task("gate")) == {}


def test_a_bad_settings_dict_is_refused_naming_the_key(world: OperatorWorld, snapshot: dict[str, Any]) -> None:
    task = PromotionGateOperator(
        task_id="gate", snapshot=snapshot, registration={"version": "1"}, settings={"modelname": "x"}
    )

    with pytest.raises(ValueError, match=r"unknown GateSettings key\(s\) \['modelname'\]"):
        task.execute(world.context("gate"))  # type: ignore[arg-type]


def test_a_dry_run_records_the_decision_and_moves_nothing(
    world: OperatorWorld, snapshot: dict[str, Any], registration: dict[str, Any]
) -> None:
    record, _ = world.run("gate", {"promotion_mode": "dry_run"}, snapshot=snapshot, registration=registration)

    assert record["challenger_version"] == registration["version"]
    assert CHAMPION not in world.client.get_registered_model("ride_duration.lisbon").aliases


def test_execute_promotes_the_first_model_and_links_it(
    world: OperatorWorld, registration: dict[str, Any], decision: dict[str, Any]
) -> None:
    assert decision["decision"] == "promoted"
    assert decision["challenger_version"] == registration["version"]
    assert (decision["airflow_run_id"], decision["triggered_by_user"]) == (RUN_ID, "tester")
    champion = world.client.get_model_version_by_alias("ride_duration.lisbon", CHAMPION)
    assert str(champion.version) == registration["version"]
    charts = decision["charts"]
    assert charts["run_id"] == champion.run_id  # on the challenger's own training run
    assert charts["artifacts"][0] == "gate/charts/scores.png"
    assert {a.path for a in world.client.list_artifacts(champion.run_id, "gate/charts")} == set(charts["artifacts"])
    assert not any(tag.startswith("gate.charts") for tag in champion.tags)


def test_a_decision_that_waits_for_a_person_leaves_the_approval_task_to_run(
    world: OperatorWorld, snapshot: dict[str, Any], registration: dict[str, Any]
) -> None:
    record, ti = world.run("gate", {"promotion_mode": "require_approval"}, snapshot=snapshot, registration=registration)

    assert record["decision"] == AWAITING_APPROVAL
    assert ti.skipped == []
    assert "return_value" not in ti.pushed  # returned, as by any task


def test_without_an_approval_task_the_gate_skips_nothing(
    world: OperatorWorld, snapshot: dict[str, Any], registration: dict[str, Any]
) -> None:
    task = world.task("gate")
    # A hand-written DAG's gate: its approval task then succeeds by itself, its health check skips itself.
    task.approval_task_id = task.health_task_id = None
    task.snapshot, task.registration = snapshot, registration
    context = {**world.context("gate", {"promotion_mode": "dry_run"}), "task": task}

    record = task.execute(context)

    assert record["decision"] == "dry-run"
    assert context["ti"].skipped == []


@pytest.fixture(scope="module")
def shadow_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A second city world: a weak first champion (1 boosting round, v1) and a better challenger (v2) to gate."""
    with operator_world(tmp_path_factory.mktemp("shadow_world")) as world:
        snapshot, _ = world.run("snapshot")
        versions = []
        for rounds in (1, 8):
            training, _ = world.run("train", {"num_boost_round": rounds}, snapshot=snapshot)
            versions.append(world.run("register", snapshot=snapshot, training=training)[0])
            if rounds == 1:
                world.run("gate", snapshot=snapshot, registration=versions[0])
        yield {"world": world, "snapshot": snapshot, "weak": versions[0], "better": versions[1]}


def _gate(shadow_world: dict[str, Any], conf: dict[str, Any] | None = None) -> dict[str, Any]:
    world = shadow_world["world"]
    record, _ = world.run("gate", conf, snapshot=shadow_world["snapshot"], registration=shadow_world["better"])
    return dict(record)


def _alias(world: OperatorWorld, alias: str) -> str:
    return str(world.client.get_model_version_by_alias(MODEL, alias).version)


def _weak_champion(shadow_world: dict[str, Any]) -> OperatorWorld:
    """The shadow world with its weak first model as champion again, whatever the tests before it moved."""
    world: OperatorWorld = shadow_world["world"]
    world.client.set_registered_model_alias(MODEL, CHAMPION, shadow_world["weak"]["version"])
    return world


def test_shadow_mode_records_a_winner_as_shadow_and_leaves_both_aliases(shadow_world: dict[str, Any]) -> None:
    world, weak, better = shadow_world["world"], shadow_world["weak"], shadow_world["better"]

    record = _gate(shadow_world, {"promotion_mode": "shadow"})

    assert (record["decision"], record["mode"], record["after_demotion"]) == ("shadow", "shadow", None)
    assert record["reason"].startswith("shadow: the gate would have promoted; champion stays")
    assert record["gate_reason"].startswith("challenger beats the champion by")
    assert (_alias(world, CHAMPION), _alias(world, CHALLENGER)) == (weak["version"], better["version"])
    assert world.client.get_model_version(MODEL, better["version"]).tags["gate.decision"] == "shadow"


def test_after_a_demotion_an_auto_win_waits_for_approval_then_a_cooldown_refuses_it_until_its_end(
    shadow_world: dict[str, Any],
) -> None:
    from airflow_ml.ml.demotion_guard import active_demotion, record_demotion

    world, weak, better = shadow_world["world"], shadow_world["weak"], shadow_world["better"]
    until = dt.datetime.now(dt.UTC) + dt.timedelta(days=7)
    record_demotion(
        world.client, MODEL, version="9", reason="live rmse 31% above holdout", requires="require_approval", until=until
    )

    asked = _gate(shadow_world)

    assert (asked["decision"], asked["mode"]) == (AWAITING_APPROVAL, "auto")
    assert asked["after_demotion"].startswith(f"after_demotion: require_approval until {until.date()}")
    assert "demoted v9 on" in asked["after_demotion"]
    assert asked["reason"].startswith(asked["after_demotion"])
    assert _alias(world, CHAMPION) == weak["version"]

    record_demotion(
        world.client, MODEL, version="9", reason="live rmse 31% above holdout", requires="cooldown", until=until
    )
    refused = _gate(shadow_world)

    assert (refused["decision"], refused["refused_by"]) == ("kept", "after_demotion")
    assert "no promotion before then; the gate alone would have promoted" in refused["reason"]
    assert _alias(world, CHAMPION) == weak["version"]

    # After the cool-down (its end is past), the same auto win moves the champion and clears the record.
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    record_demotion(
        world.client, MODEL, version="9", reason="live rmse 31% above holdout", requires="cooldown", until=past
    )
    promoted = _gate(shadow_world)

    assert (promoted["decision"], promoted["after_demotion"]) == ("promoted", None)
    assert _alias(world, CHAMPION) == better["version"]
    assert active_demotion(world.client, MODEL) is None
    assert "airflow_ml.demoted" not in world.client.get_registered_model(MODEL).tags


def test_an_approved_promotion_clears_the_demotion(shadow_world: dict[str, Any]) -> None:
    from airflow_ml.ml.demotion_guard import demotion, record_demotion
    from airflow_ml.ml.steps.approve_step import settle_approval

    world, weak, better = shadow_world["world"], shadow_world["weak"], shadow_world["better"]
    world.client.set_registered_model_alias(MODEL, CHAMPION, weak["version"])  # as a rollback leaves it
    record_demotion(
        world.client, MODEL, version=better["version"], reason="live error", requires="require_approval", until=None
    )
    asked = _gate(shadow_world)
    assert asked["decision"] == AWAITING_APPROVAL

    final = settle_approval(world.client, asked, approved=True, approver="ana")

    assert final["decision"] == "promoted"
    assert _alias(world, CHAMPION) == better["version"]
    assert demotion(world.client, MODEL) is None


def test_a_refused_challenger_is_linked_described_and_loses_its_alias(
    shadow_world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_ml.links.mlflow_links import MlflowModelVersionLink
    from airflow_ml.ml.model_registry import GATE_TAGS

    monkeypatch.setenv("AIRFLOW_ML_MLFLOW_UI_URL", "http://mlflow.example.com")
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://airflow.example.com")
    world, snapshot = shadow_world["world"], shadow_world["snapshot"]
    champion = _alias(world, CHAMPION)
    training, _ = world.run("train", {"num_boost_round": 1}, snapshot=snapshot)
    weak, _ = world.run("register", snapshot=snapshot, training=training)
    assert _alias(world, CHALLENGER) == weak["version"]

    record, ti = world.run("gate", snapshot=snapshot, registration=weak)

    assert record["decision"] == "kept"
    assert _alias(world, CHAMPION) == champion
    assert ti.skipped == ["approve", "health_check"]  # the champion stayed: there is no new one to check
    assert world.client.get_registered_model(MODEL).aliases.get(CHALLENGER) is None  # shadow scoring skips it
    link = ti.pushed[MlflowModelVersionLink().xcom_key]
    assert link == f"http://mlflow.example.com/#/models/{MODEL}/versions/{weak['version']}"  # not the champion
    version = world.client.get_model_version(MODEL, weak["version"])
    assert {k for k in version.tags if k.startswith("gate.")} == {f"gate.{k}" for k in GATE_TAGS}
    assert version.description.startswith(f"**kept**: {md_cell(record['reason'], limit=None)}")
    run_url = f"http://airflow.example.com/dags/{MODEL}/runs/manual__2026-03-06T00%3A00%3A00%2B00%3A00"
    assert record["airflow_run_url"] == run_url
    assert f"run `{RUN_ID}` of DAG `{MODEL}`: [open in Airflow]({run_url})" in version.description


def test_a_chart_that_fails_does_not_stop_the_promotion(
    shadow_world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_ml.ml.charts import chart_drawing

    def broken(*args: object, **kwargs: object) -> list[str]:
        raise RuntimeError("no space left on device")

    monkeypatch.setattr(chart_drawing, "log_charts", broken)
    world, weak, better = shadow_world["world"], shadow_world["weak"], shadow_world["better"]
    world.client.set_registered_model_alias(MODEL, CHAMPION, weak["version"])

    record = _gate(shadow_world)

    assert (record["decision"], record["charts"]) == ("promoted", None)
    assert _alias(world, CHAMPION) == better["version"]


def test_a_promotion_skips_only_the_approval_task_and_leaves_the_new_champion_to_its_health_check(
    shadow_world: dict[str, Any],
) -> None:
    world = _weak_champion(shadow_world)

    record, ti = world.run("gate", snapshot=shadow_world["snapshot"], registration=shadow_world["better"])

    assert record["decision"] == "promoted"
    assert world.task("gate").health_task_id == "health_check"
    assert ti.skipped == ["approve"]


def test_a_retry_after_the_alias_moved_leaves_the_new_champion_to_its_health_check(
    shadow_world: dict[str, Any],
) -> None:
    world, better = shadow_world["world"], shadow_world["better"]
    # What a first try left when it promoted and then failed (writing its record, say): this version is champion.
    world.client.set_registered_model_alias(MODEL, CHAMPION, better["version"])

    record, ti = world.run("gate", {"promotion_mode": "shadow"}, snapshot=shadow_world["snapshot"], registration=better)

    assert record["decision"] != "promoted"  # judged against itself, the retry decides nothing moves now
    assert record["baseline_version"] == better["version"]
    assert ti.skipped == ["approve"]  # the champion this run made is still checked, and announced when healthy


def test_a_decision_that_asks_nobody_skips_the_approval_task_and_keeps_its_record(
    shadow_world: dict[str, Any],
) -> None:
    world = _weak_champion(shadow_world)
    assert world.task("gate").approval_task_id == "approve"  # the factory's gate skips the factory's approval

    record, ti = world.run(
        "gate", {"promotion_mode": "dry_run"}, snapshot=shadow_world["snapshot"], registration=shadow_world["better"]
    )

    # No process is started for a task that would only say "not needed" (nothing moved: nothing to check).
    assert ti.skipped == ["approve", "health_check"]
    assert ti.pushed["return_value"] is record  # the decision is the gate's XCom, as a returned value would be
    assert record["decision"] == "dry-run"
    assert _alias(world, CHAMPION) == shadow_world["weak"]["version"]


def test_a_gate_that_pushes_no_xcom_pushes_none_when_it_skips_the_approval_task(
    shadow_world: dict[str, Any],
) -> None:
    from airflow.sdk.exceptions import DownstreamTasksSkipped

    world = _weak_champion(shadow_world)
    task = world.task("gate")
    task.do_xcom_push = False  # as for a returned value, which Airflow then does not store
    task.snapshot, task.registration = shadow_world["snapshot"], shadow_world["better"]
    context = {**world.context("gate", {"promotion_mode": "dry_run"}), "task": task}

    with pytest.raises(DownstreamTasksSkipped) as skipped:
        task.execute(context)

    assert skipped.value.tasks == ["approve", "health_check"]
    assert "return_value" not in context["ti"].pushed
