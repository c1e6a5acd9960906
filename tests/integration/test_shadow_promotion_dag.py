"""Shadow promotion end to end (dag.test(), LightGBM, MLflow): a city whose template says ``promotion_mode: shadow``.

Its scheduled-like runs (no promotion mode in the conf) follow the template's default: a first model is promoted
(there is nothing to shadow), a better second one is kept in shadow under ``challenger`` while ``champion``
stays; then the live comparison on the same rows, scored by both registered models, promotes it. Rolled back
and demoted with a cool-down, the city's next ``auto`` run wins on the holdout and still does not re-promote.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.worlds import city_world

pytestmark = pytest.mark.integration
CITY = "lisbon"
TEMPLATE = "shadow_promotion"
MODEL = f"{TEMPLATE}.{CITY}"
CITY_EXTRA = "gate:\n  promotion_mode: shadow\n  bootstrap: null\n  slices: []\ndrift:\n  enabled: false\n"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, airflow_db: Path, dags_dir: Path) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("shadow_promotion")
    with city_world(root, dags_dir, CITY, extra=CITY_EXTRA, template=TEMPLATE) as world:
        yield world


def _run(world: dict[str, Any], conf: dict[str, Any] | None = None) -> dict[str, Any]:
    from airflow_ml.data.snapshot import snapshot_location

    run = world["build"]().test(run_conf=conf)
    folder = Path(snapshot_location(str(world["data_root"] / "snapshots"), TEMPLATE, CITY, run.run_id))
    return {"state": str(run.state), "decision": json.loads((folder / "decision.json").read_text()), "folder": folder}


def _alias(client: Any, alias: str) -> str:
    return str(client.get_model_version_by_alias(MODEL, alias).version)


@pytest.fixture(scope="module")
def first(world: dict[str, Any]) -> dict[str, Any]:
    return _run(world, {"num_boost_round": 1, "reason": "shadow test: a weak first model"})


@pytest.fixture(scope="module")
def second(world: dict[str, Any], first: dict[str, Any]) -> dict[str, Any]:
    return _run(world)


def test_a_first_model_in_shadow_mode_is_promoted_since_there_is_nothing_to_shadow(
    world: dict[str, Any], first: dict[str, Any]
) -> None:
    decision = first["decision"]
    assert first["state"] == "success"
    assert (decision["mode"], decision["decision"]) == ("shadow", "promoted")  # the template's default mode
    assert decision["reason"].startswith("shadow mode, but no champion to shadow")
    assert _alias(world["client"], "champion") == "1"


@pytest.fixture(scope="module")
def promoted(world: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """The live comparison of the second run's shadow challenger with the champion, and its promotion."""
    from airflow_ml.data.snapshot import read_snapshot
    from airflow_ml.ml import model_registry as registry
    from airflow_ml.ml.shadow_promotion import promote_shadow
    from airflow_ml.ml.steps.step_settings import ShadowSettings
    from airflow_ml.monitoring.shadow_compare import compare_shadow

    client = world["client"]
    shadowed = {alias: _alias(client, alias) for alias in ("champion", "challenger")}
    # The live rows: every row of the snapshot, scored by both registered versions (as batch scoring would),
    # with its label and day.
    rows = read_snapshot(second["decision"]["snapshot_uri"])
    predictions = {}
    for alias in ("champion", "challenger"):
        model = registry.load_version(client, client.get_model_version_by_alias(MODEL, alias))
        predictions[alias] = model.predict(rows[model.metadata.get_input_schema().input_names()])
    live = rows.assign(
        prediction_id=[f"p{i}" for i in range(len(rows))],
        day=rows["pickup_at"].dt.date.astype(str),
        label=rows["duration_min"],
        champion=predictions["champion"],
        challenger=predictions["challenger"],
    )
    settings = ShadowSettings(min_labels=200, min_days=3, slices=({"column": "pickup_zone", "bins": None},))
    verdict = compare_shadow(live, "rmse", settings)
    record = None
    if verdict.promote:
        record = promote_shadow(client, MODEL, "2", verdict, {"airflow_run_id": "monitor"}, champion_version="1")
    return {"shadowed": shadowed, "verdict": verdict, "record": record}


def test_a_better_model_stays_in_shadow_and_the_live_comparison_promotes_it(
    world: dict[str, Any], second: dict[str, Any], promoted: dict[str, Any]
) -> None:
    client, decision = world["client"], second["decision"]
    assert second["state"] == "success"
    assert (decision["mode"], decision["decision"], decision["baseline_version"]) == ("shadow", "shadow", "1")
    assert decision["gate_reason"].startswith("challenger beats the champion by")
    assert promoted["shadowed"] == {"champion": "1", "challenger": "2"}

    assert promoted["verdict"].promote is True, promoted["verdict"].reason
    assert (_alias(client, "champion"), _alias(client, "previous-champion")) == ("2", "1")
    assert promoted["record"]["reason"].startswith("shadow promotion: challenger rmse")
    assert client.get_model_version(MODEL, "2").tags["gate.decision"] == "promoted"


def test_after_a_rollback_and_a_demotion_an_auto_run_does_not_re_promote_before_the_cooldown_ends(
    world: dict[str, Any], promoted: dict[str, Any]
) -> None:
    import datetime as dt

    from airflow_ml.ml import model_registry as registry
    from airflow_ml.ml.demotion_guard import active_demotion, record_demotion

    client = world["client"]
    assert _alias(client, "champion") == "2"  # promoted from shadow; the supervisor rolls it back
    registry.rollback(client, MODEL, "supervisor: live rmse 31% above holdout", {"by": "supervisor"})
    until = dt.datetime.now(dt.UTC) + dt.timedelta(days=7)
    record_demotion(client, MODEL, version="2", reason="live rmse 31% above holdout", requires="cooldown", until=until)

    run = _run(world, {"promotion_mode": "auto"})

    decision = run["decision"]
    assert run["state"] == "success"
    assert (decision["mode"], decision["decision"], decision["refused_by"]) == ("auto", "kept", "after_demotion")
    assert decision["after_demotion"].startswith(
        f"after_demotion: cooldown until {until.isoformat(timespec='seconds')}"
    )
    assert "demoted v2 on" in decision["after_demotion"]
    assert decision["gate_reason"].startswith("challenger beats the champion by")
    assert _alias(client, "champion") == "1"
    assert active_demotion(client, MODEL) is not None
