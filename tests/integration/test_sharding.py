"""Cities spread over shard DAG files; a task reads only its city's file; Params live on the DAG only."""

from __future__ import annotations

import ast
import logging
import shutil
from pathlib import Path

import pytest
from jsonschema import Draft7Validator

from airflow_ml.factory import Shard, register_dags
from airflow_ml.factory.params import SCHEMA_DIALECT
from airflow_ml.templates.training_spec import LightGBMParams
from tests.support import REPO

pytestmark = pytest.mark.integration


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "templates").mkdir()
    (tmp_path / "cities" / "spain").mkdir(parents=True)
    shutil.copy(REPO / "dag_templates" / "templates" / "ride_duration.yaml", tmp_path / "templates")
    for index in range(12):
        city = f"city_{index:02d}"
        (tmp_path / "cities" / f"{city}.yaml").write_text(f"city: {city}\ntemplate: ride_duration\n")
    return tmp_path


def _register(root: Path, shard: Shard | None = None) -> dict:
    return register_dags({}, templates_root=root, expectations_dir=REPO / "expectations", shard=shard)


def test_every_city_is_built_by_exactly_one_shard(root: Path) -> None:
    everything = set(_register(root))
    shards = [set(_register(root, Shard(index, 3))) for index in range(3)]

    assert len(everything) == 12
    assert set().union(*shards) == everything
    assert sum(len(s) for s in shards) == 12
    assert all(shards), "12 cities over 3 shards: each shard should hold some"
    assert shards == [set(_register(root, Shard(index, 3))) for index in range(3)], "shards must be stable"


def test_duplicate_city_files_land_in_one_shard_so_the_clash_is_still_found(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (root / "cities" / "spain" / "city_03.yaml").write_text("city: city_03\ntemplate: ride_duration\n")
    holder = next(index for index in range(3) if Shard(index, 3).holds("city_03"))

    with caplog.at_level(logging.ERROR, logger="airflow_ml.factory.dag_registration"):
        built = _register(root, Shard(holder, 3))

    assert "ride_duration.city_03" in built
    assert any("already given by" in r.getMessage() and "city_03" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("index", "count"), [(-1, 2), (2, 2), (0, 0)])
def test_a_shard_outside_its_count_is_refused(index: int, count: int) -> None:
    with pytest.raises(ValueError, match="need 0 <= index < count"):
        Shard(index, count)


def test_a_task_process_reads_only_its_own_city_file(
    root: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    (root / "cities" / "broken.yaml").write_text("city: broken\ntemplate: ride_duration\nnot_a_field: 1\n")
    with caplog.at_level(logging.ERROR, logger="airflow_ml.factory.dag_registration"):
        _register(root)
    assert any("broken.yaml" in r.getMessage() for r in caplog.records), "the DAG processor must see the broken file"

    caplog.clear()
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "ride_duration.city_05")
    with caplog.at_level(logging.ERROR, logger="airflow_ml.factory.dag_registration"):
        built = _register(root)

    assert list(built) == ["ride_duration.city_05"]
    assert caplog.records == [], "a task process must not read other cities' files"


def test_the_trigger_form_lives_on_the_dag_and_runs_still_see_it(root: Path) -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    dag = _register(root)["ride_duration.city_00"]
    serialized = DagSerialization.to_dict(dag)["dag"]

    assert {name for name, _ in serialized["params"]} >= {"promotion_mode", "num_leaves", "window_start"}
    assert all("params" not in task["__var"] for task in serialized["tasks"])
    restored = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    restored_schema = restored.params.get_param("num_leaves").schema
    # The form's bound is the template's (one source of truth: the model's JSON Schema), and survives serialization.
    most = LightGBMParams.model_json_schema()["properties"]["num_leaves"]["maximum"]
    validator = Draft7Validator(restored_schema)
    assert (validator.is_valid(most), validator.is_valid(most + 1)) == (True, False)
    assert restored_schema["$schema"] == SCHEMA_DIALECT, "the cheaper meta-schema must survive serialization"


def test_the_shipped_shard_files_cover_every_index_of_one_count() -> None:
    shards = []
    for path in sorted((REPO / "dags").glob("retrain_shard_*.py")):
        calls = [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Call)]
        shard = next(c for c in calls if getattr(c.func, "id", "") == "Shard")
        shards.append(tuple(ast.literal_eval(arg) for arg in shard.args))
    count = len(shards)

    assert count >= 2
    assert sorted(shards) == [(index, count) for index in range(count)]


def test_a_trigger_form_with_an_invalid_default_is_refused_every_time() -> None:
    import datetime as dt

    from airflow.sdk import DAG, Param

    from airflow_ml.factory.params import attach_trigger_form

    for attempt in range(2):  # a refused form is never remembered as proven
        dag = DAG(f"bad_form_{attempt}", schedule="@daily", start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
        with pytest.raises(ValueError, match="not allowed to define a Schedule"):
            attach_trigger_form(dag, {"rounds": Param(5, type="string")})


def test_every_city_gets_its_own_form_with_its_own_descriptions(root: Path) -> None:
    (root / "cities" / "city_01.yaml").write_text(
        "city: city_01\ntemplate: ride_duration\ntraining:\n  params:\n    num_leaves: 77\n"
    )
    dags = _register(root)
    first, second = dags["ride_duration.city_00"], dags["ride_duration.city_01"]

    assert first.params is not second.params
    assert "31" in first.params.get_param("num_leaves").description
    assert "77" in second.params.get_param("num_leaves").description
    assert first.params.validate() == second.params.validate()
    assert second.params.get_param("promotion_mode").schema["enum"] == [
        "auto",
        "require_approval",
        "shadow",
        "force",
        "dry_run",
    ]
