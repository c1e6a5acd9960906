"""Feature/model sync end to end (dag.test(), LightGBM, MLflow): a changed categorical level set is refused by the gate.

The world copies the repo's template as ``gate_schema`` (DAG ``gate_schema.lisbon``). A first run promotes; then
one zone of the city's rows is renamed, so the next challenger's preprocessor learns another level set than the
champion's: its gate refuses it (``refused_by: schema_change``) with the diff and its fingerprint in the record,
and accepts it once the city file declares that change (``gate.accept_schema_change`` with the fingerprint); a
declaration written without one accepts nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.worlds import city_world, run_and_decision

pytestmark = pytest.mark.integration
CITY = "lisbon"
TEMPLATE = "gate_schema"
MODEL = f"{TEMPLATE}.{CITY}"
# Quick runs: drift (the renamed zone would stop the run there) and the bootstrap are not what this is about.
CITY_EXTRA = "training:\n  num_boost_round: 20\ngate:\n  bootstrap: null\n  slices: []\ndrift:\n  enabled: false\n"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, airflow_db: Path, dags_dir: Path) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("gate_schema")
    with city_world(root, dags_dir, CITY, extra=CITY_EXTRA, template=TEMPLATE) as world:
        world["root"] = root
        yield world


def _run(world: dict[str, Any], conf: dict[str, Any] | None = None) -> dict[str, Any]:
    return run_and_decision(world, TEMPLATE, CITY, conf)


def _champion(client: Any) -> str:
    return str(client.get_model_version_by_alias(MODEL, "champion").version)


def _rename_zone(world: dict[str, Any], old: str, new: str) -> None:
    import pandas as pd

    for path in sorted((world["data_root"] / "raw" / "trips" / CITY).glob("date=*/*.parquet")):
        frame = pd.read_parquet(path)
        frame["pickup_zone"] = frame["pickup_zone"].replace({old: new})
        frame.to_parquet(path, index=False)


def test_a_changed_level_set_is_refused_without_a_declaration_and_promoted_with_one(world: dict[str, Any]) -> None:
    client = world["client"]
    first = _run(world)
    assert first["decision"]["decision"] == "promoted"
    champion = _champion(client)
    levels = json.loads(client.get_model_version(MODEL, champion).tags["airflow_ml.schema"])["categories"]
    old = levels["pickup_zone"][0]
    _rename_zone(world, old, "parque_novo")

    refused = _run(world)

    record = refused["decision"]
    assert (record["decision"], record["refused_by"]) == ("kept", "schema_change")
    diff = record["schema_diff"]["diff"]
    assert (diff["levels_added"], diff["levels_removed"]) == ({"pickup_zone": ["parque_novo"]}, {"pickup_zone": [old]})
    assert f"pickup_zone levels removed ['{old}']" in record["reason"]
    assert _champion(client) == champion
    tags = client.get_model_version(MODEL, record["challenger_version"]).tags
    assert (tags["gate.decision"], tags["gate.reason"]) == ("kept", record["reason"])

    # Both levels held a whole zone's trips (the old one of the champion's training rows): both count, no churn.
    assert "levels_removed" not in (record["schema_diff"]["tolerated"] or {})
    change = record["schema_diff"]["fingerprint"]
    assert len(change) == 2
    assert f"change: {change}" in record["reason"]

    city_file = world["root"] / "cities" / f"{CITY}.yaml"
    original = city_file.read_text()
    unfingerprinted = f"  accept_schema_change:\n    reason: zone {old} renamed\n    columns: [pickup_zone]\n"
    city_file.write_text(original.replace("gate:\n", "gate:\n" + unfingerprinted), encoding="utf-8")

    still_refused = _run(world)["decision"]

    assert still_refused["refused_by"] == "schema_change"
    assert "names no change (no change: field)" in still_refused["reason"]

    declaration = unfingerprinted + f"    change: {change}\n"
    city_file.write_text(original.replace("gate:\n", "gate:\n" + declaration), encoding="utf-8")

    accepted = _run(world)

    record = accepted["decision"]
    assert record["schema_diff"]["accepted"] is True
    assert record["schema_diff"]["declared"] == f"zone {old} renamed"
    assert record["refused_by"] != "schema_change"
