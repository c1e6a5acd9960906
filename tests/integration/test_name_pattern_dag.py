"""A template's ``registry.name_pattern`` end to end (dag.test(), LightGBM, MLflow): a three-part model name.

Two runs of one city whose template names its model ``main.ml.{template}_{city}``: the first registers and
promotes ``main.ml.name_pattern_lisbon``, the second is judged against that champion (drift and the gate check
that it is this city's, from the registered model's lineage tags, since the name does not parse). The world
copies the repo's template as ``name_pattern`` so its DAG never clashes with the other modules' worlds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.worlds import city_world, run_and_decision

pytestmark = pytest.mark.integration
CITY = "lisbon"
TEMPLATE = "name_pattern"
MODEL = f"main.ml.{TEMPLATE}_{CITY}"
CITY_EXTRA = "training:\n  num_boost_round: 20\ngate:\n  bootstrap: null\n  slices: []\n"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, airflow_db: Path, dags_dir: Path) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("name_pattern")
    with city_world(root, dags_dir, CITY, extra=CITY_EXTRA, template=TEMPLATE) as world:
        with (root / "templates" / f"{TEMPLATE}.yaml").open("a", encoding="utf-8") as handle:
            handle.write("\nregistry:\n  name_pattern: 'main.ml.{template}_{city}'\n")
        yield world


@pytest.fixture(scope="module")
def runs(world: dict[str, Any]) -> list[dict[str, Any]]:
    first = run_and_decision(world, TEMPLATE, CITY)
    second = run_and_decision(world, TEMPLATE, CITY, {"promotion_mode": "force", "reason": "name pattern test"})
    return [first, second]


def test_both_runs_use_the_patterned_name_and_the_second_is_judged_against_the_first(
    world: dict[str, Any], runs: list[dict[str, Any]]
) -> None:
    client = world["client"]
    first, second = runs

    assert [run["state"] for run in runs] == ["success", "success"]
    assert (first["decision"]["model_name"], first["decision"]["decision"]) == (MODEL, "promoted")
    assert (second["decision"]["baseline_version"], second["decision"]["decision"]) == ("1", "forced")
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "2"
    assert str(client.get_model_version_by_alias(MODEL, "previous-champion").version) == "1"
    assert {m.name for m in client.search_registered_models()} == {MODEL}  # never the default name
    tags = client.get_registered_model(MODEL).tags
    assert (tags["airflow_ml.template"], tags["airflow_ml.city"]) == (TEMPLATE, CITY)
    assert "model:" + MODEL in world["build"]().tags
