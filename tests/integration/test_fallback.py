"""Hierarchical fallback end to end (dag.test(), LightGBM, MLflow): a thin city is served by its parent.

The world has two demo cities of a ``fallback_rides`` template with ``fallback: {parent: global}``: berlin
with about 21k rows and lisbon with about 1.4k, below ``min_rows``. The global parent trains on both.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import REPO
from tests.support.airflow_runs import task_states
from tests.support.mlflow_stores import wire_mlflow
from tests.support.worlds import copy_template

pytestmark = pytest.mark.integration
TEMPLATE = "fallback_rides"
PARENT = f"{TEMPLATE}.global"
MIN_ROWS = 5000
SCALES = {"berlin": 0.3, "lisbon": 0.03}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, airflow_db: Path, dags_dir: Path) -> Iterator[dict[str, Any]]:
    from mlflow import MlflowClient

    from airflow_ml.data.demo import write_demo_data
    from airflow_ml.factory import register_dags, register_parent_dags

    root = tmp_path_factory.mktemp("fallback")
    copy_template(root, TEMPLATE, extra=f"\nfallback:\n  parent: global\n  min_rows: {MIN_ROWS}\n")
    for city, scale in SCALES.items():
        (root / "cities" / f"{city}.yaml").write_text(
            f"city: {city}\ntemplate: {TEMPLATE}\ndag:\n  retries: 0\n  schedule: null\ndrift:\n  enabled: false\n",
            encoding="utf-8",
        )
        write_demo_data(root / "data", cities=[city], batch="initial", scale=scale)
    kwargs = {"templates_root": str(root), "expectations_dir": str(REPO / "expectations")}
    (dags_dir / "fallback_world.py").write_text(
        "from airflow_ml.factory import register_dags, register_parent_dags\n"
        f"register_dags(globals(), **{kwargs!r})\nregister_parent_dags(globals(), **{kwargs!r})\n",
        encoding="utf-8",
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_ML_DATA_ROOT", str(root / "data"))
        store = wire_mlflow(root / "mlflow", mp)
        yield {
            "root": root,
            "data_root": root / "data",
            "store": store,
            "build": lambda dag_id: {**register_dags({}, **kwargs), **register_parent_dags({}, **kwargs)}[dag_id],
            "client": MlflowClient(tracking_uri=store["tracking_uri"], registry_uri=store["tracking_uri"]),
        }


def _run(world: dict[str, Any], dag_id: str) -> dict[str, Any]:
    from airflow_ml.data.snapshot import load_manifest, snapshot_location

    run = world["build"](dag_id).test()
    template, city = dag_id.split(".", 1)
    folder = Path(snapshot_location(str(world["data_root"] / "snapshots"), template, city, run.run_id))
    decision = folder / "decision.json"
    return {
        "state": str(run.state),
        "tasks": task_states(dag_id, run.run_id),
        "manifest": load_manifest(str(folder)) if (folder / "manifest.json").exists() else None,
        "decision": json.loads(decision.read_text()) if decision.exists() else None,
    }


def _serving(world: dict[str, Any], city: str) -> tuple[int, dict[str, Any]]:
    """``airflow-ml serving <city> --json`` as a user runs it: exit code and answer."""
    import contextlib
    import io

    from airflow_ml.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["serving", city, "--root", str(world["root"]), "--json"])  # the mlflow_default connection
    return code, json.loads(out.getvalue())


@pytest.fixture(scope="module")
def thin_city_before_parent(world: dict[str, Any]) -> dict[str, Any]:
    return {"run": _run(world, f"{TEMPLATE}.lisbon"), "serving": _serving(world, "lisbon")}


@pytest.fixture(scope="module")
def parent(world: dict[str, Any], thin_city_before_parent: dict[str, Any]) -> dict[str, Any]:
    return _run(world, PARENT)


@pytest.fixture(scope="module")
def big_city(world: dict[str, Any], parent: dict[str, Any]) -> dict[str, Any]:
    return _run(world, f"{TEMPLATE}.berlin")


def test_a_thin_city_trains_nothing_and_says_why(world: dict[str, Any], thin_city_before_parent: dict) -> None:
    run = thin_city_before_parent["run"]
    assert run["state"] == "success"
    assert run["tasks"]["snapshot"] == "success"
    assert run["tasks"]["train"] == "skipped"
    assert {run["tasks"][t] for t in ("register", "gate", "approve", "health_check")} == {"skipped"}
    rows = run["manifest"].row_count
    assert rows < MIN_ROWS
    model = world["client"].get_registered_model(f"{TEMPLATE}.lisbon")
    assert model.tags["airflow_ml.data.status"] == "too_little_data"
    assert model.tags["airflow_ml.data.rows"] == str(rows)
    assert model.tags["airflow_ml.parent_model"] == PARENT
    assert world["client"].search_model_versions(f"name='{TEMPLATE}.lisbon'") == []


def test_nothing_serves_a_thin_city_until_its_parent_has_a_champion(thin_city_before_parent: dict) -> None:
    code, answer = thin_city_before_parent["serving"]
    assert code == 1
    assert answer["source"] == "none"
    assert answer["model_uri"] is None
    assert f"parent {PARENT!r} has no champion yet" in answer["reason"]
    assert f"min_rows {MIN_ROWS}" in answer["reason"]


def test_the_parent_trains_on_the_union_of_its_cities(world: dict[str, Any], parent: dict[str, Any]) -> None:
    assert parent["state"] == "success", parent["tasks"]
    manifest = parent["manifest"]
    assert len(manifest.extra["sources"]) == 2
    assert {Path(s).name for s in manifest.extra["sources"]} == set(SCALES)
    one_city = _run_rows(world, "lisbon")
    assert manifest.row_count > one_city
    assert parent["decision"]["decision"] == "promoted"
    assert str(world["client"].get_model_version_by_alias(PARENT, "champion").version) == "1"


def _run_rows(world: dict[str, Any], city: str) -> int:
    import pandas as pd

    files = (world["data_root"] / "raw" / "trips" / city).glob("date=*/*.parquet")
    return sum(len(pd.read_parquet(path)) for path in files)


def test_then_the_parent_serves_the_thin_city(world: dict[str, Any], parent: dict[str, Any]) -> None:
    from airflow_ml.ml.fallback import which_model_serves

    code, answer = _serving(world, "lisbon")
    assert code == 0
    assert (answer["source"], answer["model_name"], answer["version"]) == ("parent", PARENT, "1")
    assert answer["model_uri"] == f"models:/{PARENT}@champion"
    assert "too thin" in answer["reason"]
    # The function behind the command gives the same answer.
    direct = which_model_serves(world["client"], f"{TEMPLATE}.lisbon", PARENT)
    assert answer["disabled"] is None  # the kill switch's mark, which `serving` adds to the answer
    assert direct.to_dict() == {key: value for key, value in answer.items() if key not in ("city", "disabled")}


def test_a_big_city_must_beat_the_parent_that_serves_it(world: dict[str, Any], big_city: dict[str, Any]) -> None:
    assert big_city["state"] == "success", big_city["tasks"]
    decision = big_city["decision"]
    assert decision["parent_baseline"] == {"model": PARENT, "version": "1"}
    assert decision["champion_score"] is not None  # scored against the parent, not "no champion yet"
    assert "which serves this city" in decision["reason"]
    code, answer = _serving(world, "berlin")
    assert code == 0
    if decision["decision"] == "promoted":
        assert (answer["source"], answer["model_name"]) == ("own", f"{TEMPLATE}.berlin")
    else:
        assert (answer["source"], answer["model_name"]) == ("parent", PARENT)
    model = world["client"].get_registered_model(f"{TEMPLATE}.berlin")
    assert model.tags["airflow_ml.data.status"] == "enough_data"


def test_serving_names_an_unknown_city_and_the_known_ones(world: dict[str, Any], capsys: Any) -> None:
    from airflow_ml.cli import main

    assert main(["serving", "berlim", "--root", str(world["root"])]) == 2
    err = capsys.readouterr().err
    assert "no city 'berlim'" in err
    assert "['berlin', 'lisbon']" in err
