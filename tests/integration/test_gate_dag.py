"""The gate's rules end to end (dag.test(), LightGBM, MLflow): determinism, a tie, and a planted slice regression.

The world copies the repo's template as ``gate_rules`` so its DAG (``gate_rules.lisbon``) and model never
clash with the other modules' worlds in the shared dags folder.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_ml.ml.markdown_cells import md_cell
from tests.support.worlds import city_world, run_and_decision

pytestmark = pytest.mark.integration
CITY = "lisbon"
TEMPLATE = "gate_rules"
MODEL = f"{TEMPLATE}.{CITY}"
PLANTED_ZONE = "belem"
# Small slices still count here (the demo city is small); drift is not what this module is about.
CITY_EXTRA = (
    "gate:\n  min_slice_rows: 50\n  slices:\n    - {column: pickup_zone}\n"
    "    - {column: pickup_hour, bins: [0, 6, 10, 16, 20, 24]}\ndrift:\n  enabled: false\n"
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, airflow_db: Path, dags_dir: Path) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("gate_rules")
    with city_world(root, dags_dir, CITY, extra=CITY_EXTRA, template=TEMPLATE) as world:
        yield world


def _run(world: dict[str, Any], conf: dict[str, Any] | None = None) -> dict[str, Any]:
    return run_and_decision(world, TEMPLATE, CITY, conf)


def _champion(client: Any) -> str:
    return str(client.get_model_version_by_alias(MODEL, "champion").version)


@pytest.fixture(scope="module")
def weak_champion(world: dict[str, Any]) -> dict[str, Any]:
    # One boosting round: a champion that any real model beats overall.
    return _run(world, {"num_boost_round": 1, "reason": "gate test: weak champion"})


@pytest.fixture(scope="module")
def same_again(world: dict[str, Any], weak_champion: dict[str, Any]) -> dict[str, Any]:
    return _run(world, {"num_boost_round": 1})


@pytest.fixture(scope="module")
def planted(world: dict[str, Any], same_again: dict[str, Any]) -> dict[str, Any]:
    """A full model trained on data where one zone's older trips (train rows only) take twice as long."""
    import pandas as pd

    files = sorted((world["data_root"] / "raw" / "trips" / CITY).glob("date=*/*.parquet"))
    frames = {path: pd.read_parquet(path) for path in files}
    # The oldest 60% of rows are training rows (the holdout is the newest 15%), so the holdout stays true.
    cutoff = pd.concat(frames.values())["pickup_at"].quantile(0.6)
    for path, frame in frames.items():
        rows = (frame["pickup_zone"] == PLANTED_ZONE).fillna(False) & (frame["pickup_at"] < cutoff)
        if rows.any():
            frame.loc[rows, "duration_min"] *= 2
            frame.to_parquet(path, index=False)
    return _run(world)


def test_a_first_model_is_promoted_and_its_record_holds_its_interval_and_slices(
    world: dict[str, Any], weak_champion: dict[str, Any]
) -> None:
    assert weak_champion["state"] == "success"
    decision = weak_champion["decision"]
    assert decision["decision"] == "promoted"
    assert decision["bootstrap"]["resamples"] == 1000
    low, high = decision["bootstrap"]["challenger"]
    assert low < decision["challenger_score"] < high
    assert decision["bootstrap"]["improvement"] is None  # nothing to compare with
    assert decision["bootstrap"]["block_auto"] is True
    assert 1 <= decision["bootstrap"]["block_length"] <= decision["holdout_rows"] // 3
    # The train task logged the challenger's predictions of this very holdout: the gate judged those.
    assert decision["challenger_predictions"]["source"] == "logged"
    assert decision["snapshot_hash"] in decision["challenger_predictions"]["reason"]
    assert {s["column"] for s in decision["slices"]} == {"pickup_zone", "pickup_hour"}
    assert not any(s["judged"] for s in decision["slices"])
    assert decision["run_type"] == "manual"
    assert decision["trigger_reason"] == "gate test: weak champion"
    assert _champion(world["client"]) == "1"


def test_the_same_data_and_config_twice_give_identical_predictions_and_a_tie_is_not_promoted(
    world: dict[str, Any], weak_champion: dict[str, Any], same_again: dict[str, Any]
) -> None:
    first, again = weak_champion["decision"], same_again["decision"]
    assert again["snapshot_hash"] == first["snapshot_hash"]
    assert again["challenger_score"] == again["champion_score"] == first["challenger_score"]
    assert again["bootstrap"]["challenger"] == again["bootstrap"]["champion"] == first["bootstrap"]["challenger"]
    assert again["bootstrap"]["improvement"] == [0.0, 0.0]
    assert again["decision"] == "kept"
    assert again["refused_by"] == "better_than_champion"
    assert all(s["regression"] == 0 for s in again["slices"] if s["regression"] is not None)
    assert _champion(world["client"]) == "1"


def test_a_planted_slice_regression_blocks_a_model_that_is_better_overall(
    world: dict[str, Any], planted: dict[str, Any]
) -> None:
    client = world["client"]
    assert planted["state"] == "success"
    decision = planted["decision"]
    assert decision["champion_score"] > decision["challenger_score"] * 1.2  # far better overall (rmse)
    assert decision["bootstrap"]["improvement"][0] > 0  # and not by chance
    assert decision["decision"] == "kept"
    assert decision["refused_by"] == "max_slice_regression"
    zone = next(s for s in decision["slices"] if s["column"] == "pickup_zone" and s["value"] == PLANTED_ZONE)
    assert zone["breached"] is True
    assert zone["regression"] > decision["max_slice_regression"] == 0.10
    assert f"pickup_zone={PLANTED_ZONE}" in decision["reason"]
    assert _champion(client) == "1"
    # The record: a few version tags, a description, and the full JSON (slices, intervals) on the challenger's run.
    version = client.get_model_version(MODEL, decision["challenger_version"])
    assert version.tags["gate.decision"] == "kept"
    assert version.tags["gate.baseline_version"] == "1"
    assert not {"gate.slices", "gate.bootstrap", "gate.refused_by"} & set(version.tags)
    # The reason is inert markdown in the description (a slice value could otherwise add links or paragraphs).
    assert version.description.startswith(f"**kept**: {md_cell(decision['reason'], limit=None)}")
    logged = client.download_artifacts(version.run_id, "gate/decision.json", str(world["data_root"].parent))
    assert json.loads(Path(logged).read_text()) == decision
