"""The scoring DAGs end to end (dag.test(), real LightGBM models in a real MLflow registry, the prediction log).

The world's template ``score_rides`` has a ``scoring:`` section and ``fallback: {parent: global}``: berlin has a
champion (v1) and a challenger (v2) of its own; lisbon has no model, so the global parent's champion serves it;
sao_paulo is disabled by the kill switch.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_ml.data.prediction_log import PART_FILE, partition_location, read_predictions
from tests.support.airflow_runs import task_states
from tests.support.mlflow_stores import wire_mlflow
from tests.support.postgres import airflow_connection, postgres_admin
from tests.support.scoring import DAY, SCORING_YAML, ModelShelf
from tests.support.worlds import copy_template

pytestmark = pytest.mark.integration
TEMPLATE = "score_rides"
CITIES = ("berlin", "lisbon", "sao_paulo")


def _logical(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def _world(root: Path, dags_dir: Path, template: str, cities: dict[str, str]) -> dict[str, Any]:
    """A templates folder of ``template`` (with scoring and a global parent), its cities, data and DAG file."""
    from airflow_ml.data.demo import write_demo_data
    from airflow_ml.factory import register_score_dags

    copy_template(root, template, extra=SCORING_YAML + "fallback: {parent: global}\n")
    for city, extra in cities.items():
        (root / "cities" / f"{city}.yaml").write_text(
            f"city: {city}\ntemplate: {template}\ndag:\n  retries: 0\n{extra}", encoding="utf-8"
        )
    write_demo_data(root / "data", cities=list(cities), batch="initial", scale=0.05)
    (dags_dir / f"score_world_{template}.py").write_text(
        "from airflow_ml.factory import register_score_dags\n"
        f"register_score_dags(globals(), templates_root={str(root)!r})\n",
        encoding="utf-8",
    )
    return {
        "root": root,
        "data_root": root / "data",
        "build": lambda dag_id: register_score_dags({}, templates_root=root)[dag_id],
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, airflow_db: Path, dags_dir: Path) -> Iterator[dict[str, Any]]:
    from mlflow import MlflowClient

    from airflow_ml.ml import kill_switch

    root = tmp_path_factory.mktemp("score_world")
    built = _world(root, dags_dir, TEMPLATE, dict.fromkeys(CITIES, ""))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_ML_DATA_ROOT", str(built["data_root"]))
        store = wire_mlflow(root / "mlflow", mp)
        client = MlflowClient(tracking_uri=store["tracking_uri"], registry_uri=store["tracking_uri"])
        shelf = ModelShelf(client, store["artifact_root"])
        shelf.register(f"{TEMPLATE}.berlin", 5, alias="champion")
        shelf.register(f"{TEMPLATE}.berlin", 30, alias="challenger")
        shelf.register(f"{TEMPLATE}.global", 30, alias="champion")
        kill_switch.disable(client, f"{TEMPLATE}.sao_paulo", reason="upstream sends wrong distances", by="oncall")
        yield {**built, "client": client, "shelf": shelf, "store": store}


def _score(world: dict[str, Any], city: str, day: dt.date = DAY, dag: Any = None) -> dict[str, Any]:
    dag = dag or world["build"](f"{TEMPLATE}.{city}.score")
    # run_after = the logical date: the run id is the date's, so a second call reruns (clears) the same run.
    run = dag.test(run_after=_logical(day), logical_date=_logical(day))
    root = str(world["data_root"])
    return {
        "state": str(run.state),
        "run_id": run.run_id,
        "tasks": task_states(dag.dag_id, run.run_id),
        "log": read_predictions(root, TEMPLATE, city, day, day),
        "shadow": read_predictions(root, TEMPLATE, city, day, day, shadow=True),
    }


@pytest.fixture(scope="module")
def fleet(world: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """One night of the fleet: each city's scoring DAG for DAY."""
    return {city: _score(world, city) for city in CITIES}


def test_a_city_is_scored_by_its_champion_and_its_challenger_shadows_it(fleet: dict[str, dict[str, Any]]) -> None:
    berlin = fleet["berlin"]
    assert berlin["state"] == "success", berlin["tasks"]
    assert berlin["tasks"] == {"resolve": "success", "score": "success"}
    log, shadow = berlin["log"], berlin["shadow"]
    assert len(log) > 0
    assert set(log["model_name"]) == {f"{TEMPLATE}.berlin"}
    assert set(log["model_version"]) == {"1"}
    assert set(log["scoring_run_id"]) == {berlin["run_id"]}
    assert set(shadow["model_version"]) == {"2"}
    assert list(shadow["prediction_id"]) == list(log["prediction_id"])


def test_a_city_without_a_model_is_scored_by_its_parents_champion(fleet: dict[str, dict[str, Any]]) -> None:
    lisbon = fleet["lisbon"]
    assert lisbon["state"] == "success", lisbon["tasks"]
    assert len(lisbon["log"]) > 0
    assert set(lisbon["log"]["model_name"]) == {f"{TEMPLATE}.global"}
    assert set(lisbon["log"]["model_version"]) == {"1"}
    assert lisbon["shadow"].empty  # no challenger of its own


def test_the_kill_switch_skips_that_city_only(world: dict[str, Any], fleet: dict[str, dict[str, Any]]) -> None:
    sao_paulo = fleet["sao_paulo"]
    assert sao_paulo["state"] == "success"  # a disabled city does not turn the fleet's nightly red
    assert sao_paulo["tasks"] == {"resolve": "skipped", "score": "skipped"}
    assert sao_paulo["log"].empty
    assert not Path(partition_location(str(world["data_root"]), TEMPLATE, "sao_paulo", DAY)).exists()
    assert len(fleet["berlin"]["log"]) > 0
    assert len(fleet["lisbon"]["log"]) > 0


def test_rerunning_a_date_replaces_its_partition_with_identical_bytes(
    world: dict[str, Any], fleet: dict[str, dict[str, Any]]
) -> None:
    part = Path(partition_location(str(world["data_root"]), TEMPLATE, "berlin", DAY)) / PART_FILE
    first = part.read_bytes()
    part.unlink()  # whatever the rerun writes, it writes anew

    again = _score(world, "berlin")

    assert again["state"] == "success", again["tasks"]
    assert again["run_id"] == fleet["berlin"]["run_id"]
    assert part.read_bytes() == first


def test_an_alias_that_moves_mid_run_leaves_one_version_in_the_output(world: dict[str, Any]) -> None:
    client, name, day = world["client"], f"{TEMPLATE}.berlin", DAY + dt.timedelta(days=1)
    dag = world["build"](f"{name}.score")
    moved: list[str] = []

    def move_the_champion(context: Any) -> None:  # after resolve, before score: a promotion lands for real
        client.set_registered_model_alias(name, "champion", "2")
        moved.append(str(client.get_model_version_by_alias(name, "champion").version))

    dag.get_task("resolve").on_success_callback = [move_the_champion]
    try:
        run = _score(world, "berlin", day, dag=dag)
    finally:
        client.set_registered_model_alias(name, "champion", "1")

    assert moved == ["2"], "the alias must have moved while the run was under way"
    assert run["state"] == "success", run["tasks"]
    assert set(run["log"]["model_version"]) == {"1"}  # the version resolved at the start, for every row
    assert set(run["shadow"]["model_version"]) == {"2"}


def test_cities_without_scoring_get_no_scoring_dag(world: dict[str, Any]) -> None:
    from airflow_ml.factory import register_score_dags

    (world["root"] / "cities" / "berlin.yaml").write_text(
        f"city: berlin\ntemplate: {TEMPLATE}\ndag:\n  retries: 0\nscoring: {{enabled: false}}\n", encoding="utf-8"
    )
    try:
        built = register_score_dags({}, templates_root=world["root"])
    finally:
        (world["root"] / "cities" / "berlin.yaml").write_text(
            f"city: berlin\ntemplate: {TEMPLATE}\ndag:\n  retries: 0\n", encoding="utf-8"
        )
    assert sorted(built) == [f"{TEMPLATE}.lisbon.score", f"{TEMPLATE}.sao_paulo.score"]


@pytest.fixture
def store_world(
    tmp_path: Path, airflow_db: Path, dags_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    """berlin of a ``store_rides`` template whose scoring also upserts into a fresh table of the test database."""
    from mlflow import MlflowClient

    admin = postgres_admin()  # skips (or fails under AIRFLOW_ML_REQUIRE_SERVICES=1) without PostgreSQL
    table = f"airflow_ml_test_{uuid.uuid4().hex[:10]}"
    store_yaml = f"scoring:\n  store: {{conn_id: predictions_test, table: {table}}}\n"
    built = _world(tmp_path / "world", dags_dir, "store_rides", {"berlin": store_yaml})
    monkeypatch.setenv("AIRFLOW_CONN_PREDICTIONS_TEST", json.dumps(airflow_connection()))
    monkeypatch.setenv("AIRFLOW_ML_DATA_ROOT", str(built["data_root"]))
    store = wire_mlflow(tmp_path / "mlflow", monkeypatch)
    client = MlflowClient(tracking_uri=store["tracking_uri"], registry_uri=store["tracking_uri"])
    ModelShelf(client, store["artifact_root"]).register("store_rides.berlin", 5, alias="champion")
    try:
        yield {**built, "admin": admin, "table": table}
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
        admin.close()


@pytest.mark.services
def test_the_store_upsert_twice_keeps_one_row_per_prediction(store_world: dict[str, Any]) -> None:
    def rows() -> int:
        with store_world["admin"].cursor() as cursor:
            cursor.execute(f"SELECT count(*), count(DISTINCT prediction_id) FROM {store_world['table']}")
            total, distinct = cursor.fetchone()
        assert total == distinct
        return int(total)

    first = store_world["build"]("store_rides.berlin.score").test(logical_date=_logical(DAY))
    after_first = rows()
    second = store_world["build"]("store_rides.berlin.score").test(logical_date=_logical(DAY))

    logged = read_predictions(str(store_world["data_root"]), "store_rides", "berlin", DAY, DAY)
    assert (str(first.state), str(second.state)) == ("success", "success")
    assert after_first == rows() == len(logged) > 0


def _parse_shipped_dags(tmp_path: Path, parsing_dag_id: str | None = None) -> dict[str, Any]:
    """The shipped dags/ loaders pointed at a fleet whose template scores, parsed in a fresh interpreter."""
    import os
    import subprocess
    import sys
    import textwrap

    from tests.support import REPO

    root = tmp_path / "templates_root"
    copy_template(root, "ride_duration", extra=SCORING_YAML)
    for city in CITIES:
        (root / "cities" / f"{city}.yaml").write_text(f"city: {city}\ntemplate: ride_duration\n", encoding="utf-8")
    dags = tmp_path / "dags"
    dags.mkdir()
    for source in sorted((REPO / "dags").glob("*.py")):
        text = source.read_text().replace('Path(__file__).resolve().parent.parent / "dag_templates"', repr(str(root)))
        (dags / source.name).write_text(text.replace('_REPO / "dag_templates"', repr(str(root))), encoding="utf-8")
    heavy = ["pandas", "numpy", "mlflow", "great_expectations", "lightgbm", "pyarrow", "sklearn"]
    script = textwrap.dedent(
        f"""
        import json, sys
        from airflow.dag_processing.dagbag import DagBag
        bag = DagBag(dag_folder={str(dags)!r})
        print(json.dumps({{
            "dags": sorted(bag.dags),
            "files": {{dag_id: dag.fileloc for dag_id, dag in bag.dags.items()}},
            "errors": {{k: str(v) for k, v in bag.import_errors.items()}},
            "heavy": sorted(m for m in {heavy!r} if m in sys.modules),
        }}))
        """
    )
    env = {key: value for key, value in os.environ.items() if key != "_AIRFLOW_PARSING_CONTEXT_DAG_ID"}
    if parsing_dag_id:
        env["_AIRFLOW_PARSING_CONTEXT_DAG_ID"] = parsing_dag_id
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True, env=env
    )
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_the_shipped_shard_files_build_each_scoring_dag_beside_its_retraining_dag_without_a_heavy_import(
    tmp_path: Path,
) -> None:
    parsed = _parse_shipped_dags(tmp_path)

    assert parsed["errors"] == {}
    assert parsed["heavy"] == []
    scoring = [dag_id for dag_id in parsed["dags"] if dag_id.endswith(".score")]
    assert scoring == [f"ride_duration.{city}.score" for city in CITIES]
    files = parsed["files"]
    for city in CITIES:  # one shard file reads the city's file once for both of its DAGs
        assert Path(files[f"ride_duration.{city}.score"]).name.startswith("retrain_shard_")
        assert files[f"ride_duration.{city}.score"] == files[f"ride_duration.{city}"]


def test_a_scoring_task_process_builds_only_its_own_dag(tmp_path: Path) -> None:
    parsed = _parse_shipped_dags(tmp_path, parsing_dag_id="ride_duration.lisbon.score")

    assert parsed["errors"] == {}
    assert [dag_id for dag_id in parsed["dags"] if dag_id.startswith("ride_duration.")] == [
        "ride_duration.lisbon.score"
    ]
