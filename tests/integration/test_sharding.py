"""Cities spread over shard DAG files; a task reads only its city's file; Params live on the DAG only."""

from __future__ import annotations

import ast
import logging
import shutil
from pathlib import Path

import pytest
from jsonschema import Draft7Validator

from airflow_ml.factory import Shard, city_problems, register_dags
from airflow_ml.factory.params import SCHEMA_DIALECT
from airflow_ml.templates.training_spec import LightGBMParams
from tests.support import REPO
from tests.support.claim_fleets import refused_before_a_rival

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


def _on_pattern(root: Path, pattern: str, templates: dict[str, str]) -> None:
    """Copies of ride_duration named as ``templates``' keys, on ``pattern``, each with its value's YAML appended."""
    source = (root / "templates" / "ride_duration.yaml").read_text(encoding="utf-8")
    for template, extra in templates.items():
        text = f"{source}\nregistry:\n  name_pattern: '{pattern}'\n{extra}"
        (root / "templates" / f"{template}.yaml").write_text(text, encoding="utf-8")


def _cross_shard_clash(root: Path) -> tuple[Path, Path]:
    """Two templates on '{template}_{city}' whose cities 'oslo' (shard 0 of 2) and 'duration_oslo' (1 of 2) meet."""
    _on_pattern(root, "{template}_{city}", {"ride": "", "ride_duration": ""})
    keeper = root / "cities" / "duration_oslo.yaml"  # first in path order: keeps ride_duration_oslo
    keeper.write_text("city: duration_oslo\ntemplate: ride\n")
    loser = root / "cities" / "oslo.yaml"
    loser.write_text("city: oslo\ntemplate: ride_duration\n")
    assert (Shard(0, 2).holds("oslo"), Shard(1, 2).holds("duration_oslo")) == (True, True)
    return keeper, loser


def test_a_city_losing_its_model_name_to_another_shard_is_built_by_no_shard_file_and_reported_once(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    keeper, loser = _cross_shard_clash(root)

    with caplog.at_level(logging.ERROR, logger="airflow_ml.factory.dag_registration"):
        shards = [_register(root, Shard(index, 2)) for index in range(2)]
    logged = [r.getMessage() for r in caplog.records]

    built = set().union(*shards)
    assert "ride.duration_oslo" in built
    assert "ride_duration.oslo" not in built, "two cities would fight over one registered model"
    assert built == set(_register(root)), "the shard files build what one file of the whole fleet builds"
    (skipped,) = [message for message in logged if "ride_duration_oslo" in message]
    assert str(loser) in skipped
    assert str(keeper) in skipped
    assert "put a '.' between" in skipped
    reports = [city_problems(root, Shard(index, 2)) for index in range(2)]
    named = [str(e) for report in reports for e in report]
    assert len(named) == 1
    assert "ride_duration_oslo" in named[0]
    assert str(loser) in named[0]
    assert named == [str(e) for e in city_problems(root)]


def test_a_task_process_of_the_losing_city_builds_nothing(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _cross_shard_clash(root)
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "ride_duration.oslo")

    assert _register(root, Shard(0, 2)) == {}


def test_the_sharded_reports_together_name_what_the_whole_fleet_report_names(root: Path) -> None:
    _cross_shard_clash(root)
    cities = root / "cities"
    (cities / "city_00.yaml").write_text("city: city_00\ntemplate: ride_duration\nnot_a_field: 1\n")
    (cities / "city_01.yaml").write_text("city: city_01\ntemplate: [unclosed\n")
    (cities / "city_02.yaml").write_text("city: city_02\ntemplate: nowhere\n")
    (cities / "city_03.yml").write_text("city: city_03\ntemplate: ride_duration\n")  # misnamed
    (cities / "spain" / "city_04.yaml").write_text("city: city_04\ntemplate: ride_duration\n")  # twice
    (cities / "city_05.yaml").write_text("city: city_05\ntemplate: ride_duration\nscoring: {on_new_data: true}\n")
    (root / "templates" / "late.yml").write_text("dataset: {}\n")  # a misnamed layer file: a whole-fleet error
    (root / "groups").mkdir()
    (root / "groups" / "norway.yaml").write_text("fallback: {parent: group}\ntraining: {num_boost_round: -1}\n")
    (cities / "city_06.yaml").write_text("city: city_06\ntemplate: ride_duration\ngroup: norway\n")
    (root / "templates" / "bad.yaml").write_text("dataset: {}\n")  # breaks each of its cities
    bad_cities = [f"bad_{index}" for index in range(6)]
    for city in bad_cities:
        (cities / f"{city}.yaml").write_text(f"city: {city}\ntemplate: bad\n")

    whole = city_problems(root)
    parents = [str(e) for e in whole if e.file.endswith("norway.yaml")]  # load_parent_configs's
    [bad] = [str(e) for e in whole if e.file.endswith("bad.yaml")]  # once in a load, however many cities
    for count in (2, 3):
        shards = [[str(e) for e in city_problems(root, Shard(index, count))] for index in range(count)]

        named = [problem for shard in shards for problem in shard]
        assert set(named) == {str(e) for e in whole}, f"{count} report files: the whole-fleet problems, as a set"
        holding = [any(Shard(index, count).holds(city) for city in bad_cities) for index in range(count)]
        assert [shard.count(bad) for shard in shards] == [int(held) for held in holding]
        assert sum(holding) >= 2, "the broken template is named by several report files: a set, not a list"
        assert sorted(problem for problem in named if problem != bad) == sorted(str(e) for e in whole if str(e) != bad)
        assert [any("late.yml" in e for e in shard) for shard in shards] == [True] + [False] * (count - 1)
        assert [sum(e in parents for e in shard) for shard in shards] == [len(parents)] + [0] * (count - 1)
    assert len(parents) == 1
    assert len(whole) >= 10


def _parent_clash(root: Path) -> tuple[Path, Path]:
    """Template 'ride' with city 'x_global' and 'ride_x' with a global parent (of 'lisbon'): one model name.

    Under 'main.ml.{template}_{city}' both are 'main.ml.ride_x_global'; the two cities lie in different shards of 2.
    """
    _on_pattern(root, "main.ml.{template}_{city}", {"ride": "", "ride_x": "fallback: {parent: global}\n"})
    (root / "cities" / "lisbon.yaml").write_text("city: lisbon\ntemplate: ride_x\n")
    city = root / "cities" / "x_global.yaml"
    city.write_text("city: x_global\ntemplate: ride\n")
    assert (Shard(1, 2).holds("lisbon"), Shard(0, 2).holds("x_global")) == (True, True)
    return city, root / "templates" / "ride.yaml"


def test_a_city_giving_a_fallback_parents_model_name_is_built_by_no_file_and_reported_at_the_pattern(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_ml.exceptions import BrokenCityFiles
    from airflow_ml.factory import register_parent_dags, report_broken_cities
    from tests.support.city_files import line_of

    city, ride = _parent_clash(root)

    whole = set(_register(root))
    shards = [set(_register(root, Shard(index, 2))) for index in range(2)]
    parents = register_parent_dags({}, templates_root=root, expectations_dir=REPO / "expectations")

    assert "ride_x.lisbon" in whole
    assert "ride.x_global" not in whole, "the city and the parent would train into one registered model"
    assert set().union(*shards) == whole, "the shard files build what one file of the whole fleet builds"
    assert list(parents) == ["ride_x.global"], "the parent keeps its name"
    [error] = city_problems(root)
    assert (error.file, error.located[0].line) == (str(ride), line_of(ride, "name_pattern"))
    assert str(city) in str(error)
    assert "the model of the fallback parent 'ride_x.global'" in str(error)
    assert [str(e) for index in range(2) for e in city_problems(root, Shard(index, 2))] == [str(error)]
    with pytest.raises(BrokenCityFiles) as raised:
        report_broken_cities(templates_root=root, shard=Shard(0, 2))
    assert f"{ride}: 1 problem(s)\n  - line {line_of(ride, 'name_pattern')}: registry.name_pattern" in str(raised.value)
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "ride.x_global")
    assert _register(root, Shard(0, 2)) == {}, "a task process of the city builds nothing either"


def test_a_city_whose_rival_a_declared_parents_name_refuses_is_kept_by_every_shard_as_by_the_whole_fleet(
    root: Path,
) -> None:
    refused, kept = refused_before_a_rival(root)
    assert (Shard(0, 2).holds("a_c"), Shard(1, 2).holds("c")) == (True, True), "the two cities in two shards"

    whole = set(_register(root))
    problems = sorted(str(e) for e in city_problems(root))

    assert "ride_group_a.c" in whole, "a_c is refused, so it never claims main.ml.ride_group_a_c"
    assert "ride_group.a_c" not in whole
    assert [str(refused) in error for error in problems].count(True) == 1, "a_c is named once, with its parent"
    assert not any(str(kept) in error for error in problems)
    for count in (2, 3):
        shards = [set(_register(root, Shard(index, count))) for index in range(count)]
        reports = [str(e) for index in range(count) for e in city_problems(root, Shard(index, count))]
        assert set().union(*shards) == whole, f"{count} shard files build what the whole-fleet file builds"
        assert sorted(reports) == problems, f"{count} report files name what the whole-fleet report names"
